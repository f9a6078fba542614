// Namespace changes: whiteouts, opaque directories, renames with and without redirect_dir, links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as xattr from '@napi-rs/xattr';
import { openOverlay } from '../../src/index.js';
import { fixture, isWhiteout, testEachKind } from '../support/fixture.js';

testEachKind('unlink of a lower file leaves a whiteout; of an upper-only file, nothing', (t, kind) => {
  const f = fixture(t, [{ lower: 'x' }], {}, { kind });
  f.fs.unlinkSync('/lower');
  assert.ok(f.entry('upper', 'lower')?.whiteout);
  if (f.kind === 'dir') assert.ok(isWhiteout(f.up('lower')), 'on disk: the kernel\'s 0/0 device');
  f.fs.writeFileSync('/mine', 'y');
  assert.ok(f.entry('upper', 'mine'));
  f.fs.unlinkSync('/mine');
  assert.equal(f.entry('upper', 'mine'), undefined);
  assert.throws(() => f.fs.statSync('/lower'), { code: 'ENOENT' });
  assert.deepEqual(f.fs.readdirSync('/'), []);
  f.fs.writeFileSync('/lower', 'again');
  assert.equal(f.fs.readFileSync('/lower', 'utf8'), 'again');
  assert.equal(f.entry('upper', 'lower')?.whiteout, false);
});

testEachKind('mkdir over a whiteout makes an opaque directory', (t, kind) => {
  const f = fixture(t, [{ d: { old: '1' } }], {}, { kind });
  f.fs.rmSync('/d', { recursive: true });
  assert.ok(f.entry('upper', 'd')?.whiteout);
  f.fs.mkdirSync('/d');
  assert.deepEqual(f.fs.readdirSync('/d'), []);
  assert.ok(f.entry('upper', 'd')?.opaque);
  if (f.kind === 'dir') assert.equal(xattr.getAttributeSync(f.up('d'), `${f.prefix}opaque`)?.toString(), 'y');
  f.reopen();
  assert.deepEqual(f.fs.readdirSync('/d'), []);
});

testEachKind('rmdir: ENOTEMPTY while the merged view has entries; whiteout after', (t, kind) => {
  const f = fixture(t, [{ d: { a: '1' } }], {}, { kind });
  assert.throws(() => f.fs.rmdirSync('/d'), { code: 'ENOTEMPTY' });
  f.fs.unlinkSync('/d/a');
  f.fs.rmdirSync('/d');
  assert.ok(f.entry('upper', 'd')?.whiteout);
  if (f.kind === 'dir') assert.ok(isWhiteout(f.up('d')));
  assert.throws(() => f.fs.rmdirSync('/d'), { code: 'ENOENT' });
});

testEachKind('whiteouts, opaque directories and redirects survive reopening the overlay', (t, kind) => {
  const f = fixture(t, [{ d: { file: 'data', gone: 'x', keep: 'k' }, sub: { inner: '1' } }], { redirect_dir: 'on' }, { kind });
  f.fs.unlinkSync('/d/gone');
  f.fs.rmSync('/sub', { recursive: true });
  f.fs.mkdirSync('/sub');
  f.fs.renameSync('/d', '/e');
  assert.deepEqual((f.fs.readdirSync('/e') as string[]).sort(), ['file', 'keep']);
  assert.equal(f.entry('upper', 'e')?.redirect, 'd');
  assert.ok(f.entry('upper', 'e/gone')?.whiteout, 'the whiteout moved with its directory');
  assert.ok(f.entry('upper', 'sub')?.opaque);
  f.reopen({ redirect_dir: 'on' });
  assert.deepEqual((f.fs.readdirSync('/e') as string[]).sort(), ['file', 'keep']);
  assert.deepEqual((f.fs.readdirSync('/') as string[]).sort(), ['e', 'sub']);
  assert.deepEqual(f.fs.readdirSync('/sub'), []);
  assert.equal(f.fs.readFileSync('/e/file', 'utf8'), 'data');
});

testEachKind('renaming a lower directory gives EXDEV without redirect_dir, as the kernel does', (t, kind) => {
  const f = fixture(t, [{ d: { a: '1' } }], { redirect_dir: 'off' }, { kind });
  assert.throws(() => f.fs.renameSync('/d', '/e'), { code: 'EXDEV' });
  f.fs.mkdirSync('/mine');
  f.fs.renameSync('/mine', '/moved');
  assert.ok(f.fs.statSync('/moved').isDirectory());
});

testEachKind('with redirect_dir=on a lower directory renames in O(1) through a redirect', (t, kind) => {
  const f = fixture(t, [{ d: { a: '1', sub: { deep: '2' } } }], { redirect_dir: 'on' }, { kind });
  f.fs.renameSync('/d', '/e');
  // Within one directory the kernel writes the lower name alone.
  assert.equal(f.entry('upper', 'e')?.redirect, 'd');
  if (f.kind === 'dir') assert.equal(xattr.getAttributeSync(f.up('e'), `${f.prefix}redirect`)?.toString(), 'd');
  assert.deepEqual(f.inspect('upper', (layer) => layer.readdir('e')), [], 'no children were copied');
  assert.ok(f.entry('upper', 'd')?.whiteout);
  if (f.kind === 'dir') assert.ok(isWhiteout(f.up('d')));
  assert.equal(f.fs.readFileSync('/e/sub/deep', 'utf8'), '2');
  f.reopen({ redirect_dir: 'on' });
  assert.deepEqual((f.fs.readdirSync('/e') as string[]).sort(), ['a', 'sub']);
  assert.throws(() => f.fs.statSync('/d'), { code: 'ENOENT' });
});

testEachKind('rename over an existing file replaces it and whiteouts the old name', (t, kind) => {
  const f = fixture(t, [{ a: 'A', b: 'B' }], {}, { kind });
  f.fs.renameSync('/a', '/b');
  assert.equal(f.fs.readFileSync('/b', 'utf8'), 'A');
  assert.throws(() => f.fs.statSync('/a'), { code: 'ENOENT' });
  assert.ok(f.entry('upper', 'a')?.whiteout);
  if (f.kind === 'dir') assert.ok(isWhiteout(f.up('a')));
  assert.throws(() => f.fs.renameSync('/nope', '/c'), { code: 'ENOENT' });
});

testEachKind('rename errors follow rename(2)', (t, kind) => {
  const f = fixture(t, [{ file: 'x', dir: { a: '1' }, empty: {} }], { redirect_dir: 'on' }, { kind });
  assert.throws(() => f.fs.renameSync('/file', '/dir'), { code: 'EISDIR' });
  assert.throws(() => f.fs.renameSync('/empty', '/file'), { code: 'ENOTDIR' });
  assert.throws(() => f.fs.renameSync('/empty', '/dir'), { code: 'ENOTEMPTY' });
  assert.throws(() => f.fs.renameSync('/dir', '/dir/inside'), { code: 'EINVAL' });
});

testEachKind('link copies up and hard-links in the upper layer', (t, kind) => {
  const f = fixture(t, [{ file: 'x' }], {}, { kind });
  f.fs.linkSync('/file', '/again');
  assert.equal(f.entry('upper', 'file')?.stat.ino, f.entry('upper', 'again')?.stat.ino);
  assert.equal(f.entry('upper', 'again')?.stat.nlink, 2);
  assert.equal(f.fs.statSync('/again').nlink, 2);
  assert.equal(f.fs.statSync('/again').ino, f.fs.statSync('/file').ino);
  assert.throws(() => f.fs.linkSync('/', '/x'), { code: 'EPERM' });
});

testEachKind('a read-only overlay refuses every write with EROFS', (t, kind) => {
  const f = fixture(t, [{ file: 'x' }], {}, { kind });
  f.overlay.close();
  const ro = openOverlay({ lowerdir: f.lowerdir });
  t.after(() => ro.close());
  assert.throws(() => ro.fs.writeFileSync('/file', 'y'), { code: 'EROFS' });
  assert.throws(() => ro.fs.mkdirSync('/d'), { code: 'EROFS' });
  assert.throws(() => ro.fs.unlinkSync('/file'), { code: 'EROFS' });
  assert.equal(ro.fs.readFileSync('/file', 'utf8'), 'x');
});

testEachKind('exchange swaps two entries, lower or upper, files or directories', (t, kind) => {
  const f = fixture(t, [{ a: 'A', d: { x: '1' }, e: { y: '2' } }], { redirect_dir: 'on' }, { kind });
  f.fs.writeFileSync('/b', 'B');
  const root = f.overlay.root;
  const ro = f.fs.openSync('/a', 'r');
  f.overlay.exchange(root, 'a', root, 'b');
  assert.equal(f.fs.readFileSync('/a', 'utf8'), 'B');
  assert.equal(f.fs.readFileSync('/b', 'utf8'), 'A');
  const b = Buffer.alloc(4);
  assert.equal(b.subarray(0, f.fs.readSync(ro, b, 0, 4, 0)).toString(), 'A', 'an open handle follows its file');
  f.fs.closeSync(ro);
  f.overlay.exchange(root, 'd', root, 'e');
  assert.deepEqual(f.fs.readdirSync('/d'), ['y']);
  assert.deepEqual(f.fs.readdirSync('/e'), ['x']);
  f.reopen({ redirect_dir: 'on' });
  assert.deepEqual(f.fs.readdirSync('/d'), ['y']);
  assert.deepEqual(f.fs.readdirSync('/e'), ['x']);
  assert.equal(f.fs.readFileSync('/a', 'utf8'), 'B');
  assert.throws(() => f.overlay.exchange(f.overlay.root, 'a', f.overlay.root, 'nope'), { code: 'ENOENT' });
});

// --- the on-disk format (DirLayer only) ---

test('on disk: whiteouts are 0/0 devices that share one inode, as the kernel shares its whiteout', (t) => {
  const f = fixture(t, [{ a: '1', b: '2' }]);
  f.fs.unlinkSync('/a');
  f.fs.unlinkSync('/b');
  assert.ok(isWhiteout(f.up('a')) && isWhiteout(f.up('b')));
  assert.equal(fs.lstatSync(f.up('a')).ino, fs.lstatSync(f.up('b')).ino);
});
