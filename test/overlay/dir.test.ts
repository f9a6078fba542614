// Namespace changes: whiteouts, opaque directories, renames with and without redirect_dir, links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as xattr from '@napi-rs/xattr';
import { Overlay } from '../../src/overlay/overlay.js';
import { SyncFs } from '../../src/fs/sync.js';
import { code, isRoot, isWhiteout, makeFixture } from '../support/fixture.js';

const skipNotRoot = isRoot ? false : 'needs root for 0/0 whiteouts and trusted xattrs';

test('unlink of a lower file leaves a 0/0 whiteout; of an upper-only file, nothing', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ lower: 'x' }]);
  try {
    f.fs.unlinkSync('/lower');
    assert.ok(isWhiteout(f.up('lower')));
    f.fs.writeFileSync('/mine', 'y');
    f.fs.unlinkSync('/mine');
    assert.equal(fs.existsSync(f.up('mine')), false);
    assert.equal(code(() => f.fs.statSync('/lower')), 'ENOENT');
    f.fs.writeFileSync('/lower', 'again');
    assert.equal(f.fs.readFileSync('/lower', 'utf8'), 'again');
  } finally {
    f.cleanup();
  }
});

test('whiteouts share one inode, as the kernel shares its whiteout', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ a: '1', b: '2' }]);
  try {
    f.fs.unlinkSync('/a');
    f.fs.unlinkSync('/b');
    assert.equal(fs.lstatSync(f.up('a')).ino, fs.lstatSync(f.up('b')).ino);
  } finally {
    f.cleanup();
  }
});

test('mkdir over a whiteout makes an opaque directory', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ d: { old: '1' } }]);
  try {
    f.fs.rmSync('/d', { recursive: true });
    assert.ok(isWhiteout(f.up('d')));
    f.fs.mkdirSync('/d');
    assert.deepEqual(f.fs.readdirSync('/d'), []);
    assert.equal(xattr.getAttributeSync(f.up('d'), 'trusted.overlay.opaque')?.toString(), 'y');
    f.reopen();
    assert.deepEqual(f.fs.readdirSync('/d'), []);
  } finally {
    f.cleanup();
  }
});

test('rmdir: ENOTEMPTY while the merged view has entries; whiteout after', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ d: { a: '1' } }]);
  try {
    assert.equal(code(() => f.fs.rmdirSync('/d')), 'ENOTEMPTY');
    f.fs.unlinkSync('/d/a');
    f.fs.rmdirSync('/d');
    assert.ok(isWhiteout(f.up('d')));
    assert.equal(code(() => f.fs.rmdirSync('/d')), 'ENOENT');
  } finally {
    f.cleanup();
  }
});

test('renaming a lower directory gives EXDEV without redirect_dir, as the kernel does', () => {
  const f = makeFixture([{ d: { a: '1' } }], { redirect_dir: 'off' });
  try {
    assert.equal(code(() => f.fs.renameSync('/d', '/e')), 'EXDEV');
    f.fs.mkdirSync('/mine');
    f.fs.renameSync('/mine', '/moved');
    assert.ok(f.fs.statSync('/moved').isDirectory());
  } finally {
    f.cleanup();
  }
});

test('with redirect_dir=on a lower directory renames in O(1) through the redirect xattr', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ d: { a: '1', sub: { deep: '2' } } }], { redirect_dir: 'on' });
  try {
    f.fs.renameSync('/d', '/e');
    // Within one directory the kernel writes the lower name alone.
    assert.equal(xattr.getAttributeSync(f.up('e'), 'trusted.overlay.redirect')?.toString(), 'd');
    assert.deepEqual(fs.readdirSync(f.up('e')), [], 'no children were copied');
    assert.ok(isWhiteout(f.up('d')));
    assert.equal(f.fs.readFileSync('/e/sub/deep', 'utf8'), '2');
    f.reopen({ redirect_dir: 'on' });
    assert.deepEqual((f.fs.readdirSync('/e') as string[]).sort(), ['a', 'sub']);
    assert.equal(code(() => f.fs.statSync('/d')), 'ENOENT');
  } finally {
    f.cleanup();
  }
});

test('rename over an existing file replaces it and whiteouts the old name', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ a: 'A', b: 'B' }]);
  try {
    f.fs.renameSync('/a', '/b');
    assert.equal(f.fs.readFileSync('/b', 'utf8'), 'A');
    assert.equal(code(() => f.fs.statSync('/a')), 'ENOENT');
    assert.ok(isWhiteout(f.up('a')));
    assert.equal(code(() => f.fs.renameSync('/nope', '/c')), 'ENOENT');
  } finally {
    f.cleanup();
  }
});

test('rename errors follow rename(2)', () => {
  const f = makeFixture([{ file: 'x', dir: { a: '1' }, empty: {} }], { redirect_dir: 'on' });
  try {
    assert.equal(code(() => f.fs.renameSync('/file', '/dir')), 'EISDIR');
    assert.equal(code(() => f.fs.renameSync('/empty', '/file')), 'ENOTDIR');
    assert.equal(code(() => f.fs.renameSync('/empty', '/dir')), 'ENOTEMPTY');
    assert.equal(code(() => f.fs.renameSync('/dir', '/dir/inside')), 'EINVAL');
  } finally {
    f.cleanup();
  }
});

test('link copies up and hard-links in the upper layer', () => {
  const f = makeFixture([{ file: 'x' }]);
  try {
    f.fs.linkSync('/file', '/again');
    assert.equal(fs.statSync(f.up('file')).ino, fs.statSync(f.up('again')).ino);
    assert.equal(f.fs.statSync('/again').nlink, 2);
    assert.equal(f.fs.statSync('/again').ino, f.fs.statSync('/file').ino);
    assert.equal(code(() => f.fs.linkSync('/', '/x')), 'EPERM');
  } finally {
    f.cleanup();
  }
});

test('a read-only overlay refuses every write with EROFS', () => {
  const f = makeFixture([{ file: 'x' }]);
  try {
    f.overlay.close();
    const ro = new Overlay({ lowerdir: f.lowers });
    const rofs = new SyncFs(ro);
    assert.equal(code(() => rofs.writeFileSync('/file', 'y')), 'EROFS');
    assert.equal(code(() => rofs.mkdirSync('/d')), 'EROFS');
    assert.equal(code(() => rofs.unlinkSync('/file')), 'EROFS');
    assert.equal(rofs.readFileSync('/file', 'utf8'), 'x');
    ro.close();
  } finally {
    f.cleanup();
  }
});


test('exchange swaps two entries, lower or upper, files or directories', () => {
  const f = makeFixture([{ a: 'A', d: { x: '1' }, e: { y: '2' } }], { redirect_dir: 'on' });
  try {
    f.fs.writeFileSync('/b', 'B');
    const root = f.overlay.root;
    const ro = f.fs.openSync('/a', 'r');
    f.overlay.exchange(root, 'a', root, 'b');
    assert.equal(f.fs.readFileSync('/a', 'utf8'), 'B');
    assert.equal(f.fs.readFileSync('/b', 'utf8'), 'A');
    const b = Buffer.alloc(4);
    assert.equal(b.subarray(0, f.fs.readSync(ro, b, 0, 4, 0)).toString(), 'A', 'an open handle follows its file');
    f.overlay.exchange(root, 'd', root, 'e');
    assert.deepEqual(f.fs.readdirSync('/d'), ['y']);
    assert.deepEqual(f.fs.readdirSync('/e'), ['x']);
    f.reopen({ redirect_dir: 'on' });
    assert.deepEqual(f.fs.readdirSync('/d'), ['y']);
    assert.deepEqual(f.fs.readdirSync('/e'), ['x']);
    assert.equal(f.fs.readFileSync('/a', 'utf8'), 'B');
    assert.throws(() => f.overlay.exchange(f.overlay.root, 'a', f.overlay.root, 'nope'), { code: 'ENOENT' });
  } finally {
    f.cleanup();
  }
});
