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
import { fixture, isRoot, testEachKind, xattrPrefix } from '../support/fixture.js';

const prefix = xattrPrefix();

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

test('on disk: a failed metacopy data copy-up (ENOSPC) leaves the metacopy file whole', { skip: isRoot ? false : 'needs root to mount a 1 MiB tmpfs as the upper layer' }, (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-metacopy-enospc-'));
  const small = path.join(base, 'small');
  let mounted = false;
  const open: Overlay[] = [];
  // One hook, in this order: the overlays hold fds on the tmpfs, which must go before it can.
  t.after(() => {
    for (const o of open) o.close();
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
  open.push(overlay);
  const ofs = createOverlayFs(overlay);

  ofs.chmodSync('/big', 0o600);
  const up = path.join(small, 'upper', 'big');
  assert.notEqual(xattr.getAttributeSync(up, `${prefix}metacopy`), null, 'chmod copied metadata only');
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
  assert.notEqual(xattr.getAttributeSync(up, `${prefix}metacopy`), null, 'still metacopy');
  assert.deepEqual(fs.readdirSync(path.join(small, 'work', 'work')), [], 'no temp left behind');
  // The merged view is unchanged: the new mode over the lower data.
  assert.equal(ofs.statSync('/big').mode & 0o7777, 0o600);
  assert.equal(sha(ofs.readFileSync('/big')), sha(data));
  overlay.close();
  const reopened = new Overlay({ lowerdir: lower, upperdir: path.join(small, 'upper'), workdir: path.join(small, 'work'), metacopy: 'on' });
  open.push(reopened);
  const again = createOverlayFs(reopened);
  assert.equal(sha(again.readFileSync('/big')), sha(data));
  assert.equal(again.statSync('/big').mode & 0o7777, 0o600);
});

testEachKind('a metacopy data copy-up keeps the mode, owner, xattrs and redirect of the metacopy file', (t, kind) => {
  const f = fixture(t, [{ d: { f: 'lower data' } }], { metacopy: 'on', redirect_dir: 'on' }, { kind });
  // Only root may give a file away (and then still write it).
  const [uid, gid] = isRoot ? [1234, 5678] : [process.getuid!(), process.getgid!()];
  f.fs.chmodSync('/d/f', 0o640);
  f.fs.chownSync('/d/f', uid, gid);
  assert.ok(f.entry('upper', 'd/f')?.metacopy, 'metadata-only copy-up');
  f.behindBack('upper', (layer) => layer.setxattr('d/f', 'user.kept', Buffer.from('yes')));
  f.fs.renameSync('/d/f', '/g');
  const ino = f.fs.statSync('/g').ino;
  f.fs.appendFileSync('/g', '+');
  const up = f.entry('upper', 'g')!;
  assert.equal(up.stat.mode & 0o7777, 0o640);
  assert.equal(up.stat.uid, uid);
  assert.equal(up.stat.gid, gid);
  assert.equal(up.stat.size, 11);
  assert.deepEqual(f.inspect('upper', (layer) => layer.getxattr('g', 'user.kept')), Buffer.from('yes'));
  assert.equal(up.metacopy, false);
  // The redirect stays on the file, as the kernel leaves it; a layer reports it only on a metacopy file.
  if (f.kind === 'dir') {
    assert.equal(xattr.getAttributeSync(f.up('g'), `${f.prefix}redirect`)?.toString(), '/d/f');
    assert.equal(xattr.getAttributeSync(f.up('g'), `${f.prefix}metacopy`), null);
    assert.equal(fs.readFileSync(f.up('g'), 'utf8'), 'lower data+');
  }
  assert.equal(f.fs.statSync('/g').ino, ino, 'st_ino is kept');
  assert.equal(f.fs.readFileSync('/g', 'utf8'), 'lower data+');
});

testEachKind('a metacopy file with no data below gives EIO (with an errno), not a TypeError', (t, kind) => {
  const f = fixture(t, [{}], { metacopy: 'on' }, { kind, upper: { orphan: '' } });
  f.edit('upper', (layer) => {
    layer.truncate('orphan', 100);
    layer.setMetacopy('orphan', true);
  });
  assert.throws(() => f.fs.appendFileSync('/orphan', 'x'), (err: unknown) => {
    assert.ok(!(err instanceof TypeError), String(err));
    const e = err as NodeJS.ErrnoException;
    assert.equal(e.code, 'EIO');
    assert.equal(e.errno, -os.constants.errno.EIO);
    assert.equal(e.path, '/orphan');
    return true;
  });
  assert.equal(f.entry('upper', 'orphan')?.stat.size, 100, 'the upper file is untouched');
  assert.equal(f.entry('upper', 'orphan')?.metacopy, true);
});

testEachKind('a metacopy file with no data below: lookup itself fails with EIO, as the kernel\'s ovl_lookup does', (t, kind) => {
  const f = fixture(t, [{}], { metacopy: 'on' }, { kind, upper: { orphan: '' } });
  f.edit('upper', (layer) => layer.setMetacopy('orphan', true));
  for (const call of [() => f.fs.statSync('/orphan'), () => f.fs.readFileSync('/orphan')]) {
    assert.throws(call, (err: unknown) => (err as NodeJS.ErrnoException).code === 'EIO' && !(err instanceof TypeError));
  }
});
