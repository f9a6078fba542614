// The data copy-up of a metacopy file (src/overlay/copy-up.ts): it must never cost the metacopy
// file, and a metacopy file with no data below is an I/O error, as the kernel says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as xattr from '@napi-rs/xattr';
import { createHash } from 'node:crypto';
import { Overlay } from '../../src/overlay/overlay.js';
import { createOverlayFs } from '../../src/fs/index.js';
import { isRoot } from '../support/fixture.js';

const skip = isRoot ? false : 'needs root (tmpfs mount, trusted.overlay.* xattrs)';

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

test('a failed metacopy data copy-up (ENOSPC) leaves the metacopy file whole', { skip }, (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-metacopy-enospc-'));
  const small = path.join(base, 'small');
  let mounted = false;
  t.after(() => {
    if (mounted) execFileSync('umount', [small]);
    fs.rmSync(base, { recursive: true, force: true });
  });
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  const data = Buffer.alloc(3 << 20);
  for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
  fs.writeFileSync(path.join(lower, 'big'), data);
  fs.chmodSync(path.join(lower, 'big'), 0o644);
  fs.mkdirSync(small);
  // An upper layer too small for the data: 1 MiB of tmpfs, inside this test's own temp dir.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
  mounted = true;
  fs.mkdirSync(path.join(small, 'upper'));
  fs.mkdirSync(path.join(small, 'work'));
  const overlay = new Overlay({ lowerdir: lower, upperdir: path.join(small, 'upper'), workdir: path.join(small, 'work'), metacopy: 'on' });
  t.after(() => overlay.close());
  const ofs = createOverlayFs(overlay);

  ofs.chmodSync('/big', 0o600);
  const up = path.join(small, 'upper', 'big');
  assert.notEqual(xattr.getAttributeSync(up, 'trusted.overlay.metacopy'), null, 'chmod copied metadata only');
  const before = fs.lstatSync(up);

  assert.throws(() => ofs.appendFileSync('/big', 'more'), (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    assert.equal(e.code, 'ENOSPC');
    assert.equal(e.errno, -os.constants.errno.ENOSPC);
    return true;
  });

  const after = fs.lstatSync(up, { throwIfNoEntry: false });
  assert.ok(after !== undefined, 'the metacopy upper file is still there');
  assert.equal(after.ino, before.ino, 'and it is the same inode');
  assert.equal(after.mode & 0o7777, 0o600);
  assert.equal(after.size, data.length);
  assert.notEqual(xattr.getAttributeSync(up, 'trusted.overlay.metacopy'), null, 'still metacopy');
  assert.deepEqual(fs.readdirSync(path.join(small, 'work', 'work')), [], 'no temp left behind');
  // The merged view is unchanged: the new mode over the lower data.
  assert.equal(ofs.statSync('/big').mode & 0o7777, 0o600);
  assert.equal(sha(ofs.readFileSync('/big')), sha(data));
  overlay.close();
  const reopened = new Overlay({ lowerdir: lower, upperdir: path.join(small, 'upper'), workdir: path.join(small, 'work'), metacopy: 'on' });
  try {
    const again = createOverlayFs(reopened);
    assert.equal(sha(again.readFileSync('/big')), sha(data));
    assert.equal(again.statSync('/big').mode & 0o7777, 0o600);
  } finally {
    reopened.close();
  }
});

test('a metacopy data copy-up keeps the mode, owner, xattrs and redirect of the metacopy file', { skip }, (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-metacopy-data-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const lower = path.join(base, 'lower');
  fs.mkdirSync(path.join(lower, 'd'), { recursive: true });
  fs.writeFileSync(path.join(lower, 'd', 'f'), 'lower data');
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, d));
  const overlay = new Overlay({ lowerdir: lower, upperdir: path.join(base, 'upper'), workdir: path.join(base, 'work'), metacopy: 'on', redirect_dir: 'on' });
  t.after(() => overlay.close());
  const ofs = createOverlayFs(overlay);
  ofs.chmodSync('/d/f', 0o640);
  ofs.chownSync('/d/f', 1234, 5678);
  xattr.setAttributeSync(path.join(base, 'upper', 'd', 'f'), 'user.kept', Buffer.from('yes'));
  ofs.renameSync('/d/f', '/g');
  const ino = ofs.statSync('/g').ino;
  ofs.appendFileSync('/g', '+');
  const up = path.join(base, 'upper', 'g');
  const st = fs.lstatSync(up);
  assert.equal(st.mode & 0o7777, 0o640);
  assert.equal(st.uid, 1234);
  assert.equal(st.gid, 5678);
  assert.equal(fs.readFileSync(up, 'utf8'), 'lower data+');
  assert.equal(xattr.getAttributeSync(up, 'user.kept')?.toString(), 'yes');
  assert.equal(xattr.getAttributeSync(up, 'trusted.overlay.redirect')?.toString(), '/d/f');
  assert.equal(xattr.getAttributeSync(up, 'trusted.overlay.metacopy'), null);
  assert.equal(ofs.statSync('/g').ino, ino, 'st_ino is kept');
  assert.equal(ofs.readFileSync('/g', 'utf8'), 'lower data+');
});

test('a metacopy file with no data below gives EIO (with an errno), not a TypeError', { skip }, (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-metacopy-eio-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  fs.mkdirSync(path.join(base, 'upper'));
  fs.mkdirSync(path.join(base, 'work'));
  const up = path.join(base, 'upper', 'orphan');
  fs.writeFileSync(up, '');
  fs.truncateSync(up, 100);
  xattr.setAttributeSync(up, 'trusted.overlay.metacopy', Buffer.alloc(0));
  const overlay = new Overlay({ lowerdir: lower, upperdir: path.join(base, 'upper'), workdir: path.join(base, 'work'), metacopy: 'on' });
  t.after(() => overlay.close());
  const ofs = createOverlayFs(overlay);
  assert.throws(() => ofs.appendFileSync('/orphan', 'x'), (err: unknown) => {
    assert.ok(!(err instanceof TypeError), String(err));
    const e = err as NodeJS.ErrnoException;
    assert.equal(e.code, 'EIO');
    assert.equal(e.errno, -os.constants.errno.EIO);
    assert.equal(e.path, '/orphan');
    return true;
  });
  assert.equal(fs.lstatSync(up).size, 100, 'the upper file is untouched');
});

test('a metacopy file with no data below: lookup itself fails with EIO, as the kernel\'s ovl_lookup does', {
  skip,
}, (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-metacopy-eio-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  for (const d of ['lower', 'upper', 'work']) fs.mkdirSync(path.join(base, d));
  const up = path.join(base, 'upper', 'orphan');
  fs.writeFileSync(up, '');
  xattr.setAttributeSync(up, 'trusted.overlay.metacopy', Buffer.alloc(0));
  const overlay = new Overlay({ lowerdir: path.join(base, 'lower'), upperdir: path.join(base, 'upper'), workdir: path.join(base, 'work'), metacopy: 'on' });
  t.after(() => overlay.close());
  const ofs = createOverlayFs(overlay);
  for (const call of [() => ofs.statSync('/orphan'), () => ofs.readFileSync('/orphan')]) {
    assert.throws(call, (err: unknown) => (err as NodeJS.ErrnoException).code === 'EIO' && !(err instanceof TypeError));
  }
});
