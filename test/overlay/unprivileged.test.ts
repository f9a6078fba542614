// The library works without root: run a child as nobody and check it wrote user.overlay.* xattrs
// and whiteouts (0/0 devices, which any user may make since Linux 5.8) that it reads back after reopening.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { isRoot, writeTree } from '../support/fixture.js';

const NOBODY = 65534;

test('as an unprivileged user: user.overlay.* xattrs and 0/0 whiteouts', { skip: isRoot ? false : 'needs root to switch to an unprivileged user' }, () => {
  const base = fs.mkdtempSync('/tmp/ovlfs-unpriv-');
  try {
    writeTree(path.join(base, 'lower'), { d: { file: 'data', gone: 'x', keep: 'k' }, sub: { inner: '1' }, readonly: 'ro' });
    fs.chmodSync(path.join(base, 'lower', 'readonly'), 0o444);
    fs.mkdirSync(path.join(base, 'upper'));
    fs.mkdirSync(path.join(base, 'work'));
    spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, base]);
    fs.chmodSync(base, 0o755);
    const child = path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '../support/unprivileged-child.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, base], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', cwd: process.cwd() });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(out.uid, NOBODY);
    assert.equal(out.seen, 'data+', 'the read-only fd saw the copy-up');
    assert.equal(out.refused, 'EACCES');
    assert.equal(out.noCopy, true, 'a refused open copies nothing up');
    assert.deepEqual(out.listing, ['file', 'keep']);
    assert.equal(out.whiteoutXattr, false, 'the whiteout moved with its directory');
    assert.equal(out.opaque, 'y');
    assert.equal(out.redirect, 'd');
    assert.deepEqual(out.reopened, ['file', 'keep']);
    assert.deepEqual(out.reopenedRoot, ['e', 'readonly', 'sub']);
    const whiteout = fs.lstatSync(path.join(base, 'upper/e/gone'));
    assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'the kernel\'s 0/0 whiteout, made as nobody');
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
