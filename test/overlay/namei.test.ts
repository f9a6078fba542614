// Lookup across layers: whiteouts, opaque directories, redirects, metacopy; and, on disk, every
// format the kernel, Docker and fuse-overlayfs write them in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as xattr from '@napi-rs/xattr';
import { fixture, isWhiteout, testEachKind } from '../support/fixture.js';

testEachKind('the top-most layer holding a name wins; directories merge', (t, kind) => {
  const f = fixture(t, [{ a: 'top', d: { x: '1' } }, { a: 'bottom', b: 'only-below', d: { y: '2' } }], {}, { kind });
  assert.equal(f.fs.readFileSync('/a', 'utf8'), 'top');
  assert.equal(f.fs.readFileSync('/b', 'utf8'), 'only-below');
  assert.deepEqual((f.fs.readdirSync('/d') as string[]).sort(), ['x', 'y']);
});

testEachKind('a whiteout hides the name below, in lookups and listings', (t, kind) => {
  const f = fixture(t, [{ gone: { whiteout: true }, d: { x: { whiteout: true } } }, { gone: 'hidden', d: { x: 'hidden', y: 'shown' } }], {}, { kind });
  if (f.kind === 'dir') assert.ok(isWhiteout(`${f.lowers[0]}/gone`), 'on disk the whiteout is the kernel\'s 0/0 device');
  assert.throws(() => f.fs.statSync('/gone'), { code: 'ENOENT' });
  assert.throws(() => f.fs.statSync('/d/x'), { code: 'ENOENT' });
  assert.deepEqual(f.fs.readdirSync('/d'), ['y']);
  assert.deepEqual((f.fs.readdirSync('/') as string[]).sort(), ['d']);
});

testEachKind('an opaque directory stops the merge', (t, kind) => {
  const f = fixture(t, [{ d: { top: '1' } }, { d: { below: '2' } }], {}, { kind });
  assert.deepEqual((f.fs.readdirSync('/d') as string[]).sort(), ['below', 'top'], 'merged before it is made opaque');
  f.edit(0, (layer) => layer.setOpaque('d'));
  assert.deepEqual(f.fs.readdirSync('/d'), ['top']);
  assert.throws(() => f.fs.statSync('/d/below'), { code: 'ENOENT' });
});

testEachKind('a redirect sends the lower lookup to the named directory', (t, kind) => {
  const f = fixture(t, [{ old: { a: '1' } }], {}, { kind, upper: { renamed: { b: '2' } } });
  assert.deepEqual(f.fs.readdirSync('/renamed'), ['b'], 'no redirect yet: only the upper entries');
  f.edit('upper', (layer) => layer.setRedirect('renamed', '/old'));
  assert.deepEqual((f.fs.readdirSync('/renamed') as string[]).sort(), ['a', 'b']);
  assert.equal(f.fs.readFileSync('/renamed/a', 'utf8'), '1');
});

testEachKind('a metacopy upper file reads its data from below until the first write', (t, kind) => {
  const f = fixture(t, [{ m: 'lower data' }], { metacopy: 'on', redirect_dir: 'on' }, { kind });
  f.fs.chmodSync('/m', 0o600);
  const meta = f.entry('upper', 'm');
  assert.ok(meta?.metacopy, 'metadata-only copy-up');
  assert.equal(meta.stat.mode & 0o777, 0o600);
  assert.equal(meta.stat.size, 10, 'a metacopy file keeps the size of its data');
  if (f.kind === 'dir') assert.notEqual(xattr.getAttributeSync(f.up('m'), `${f.prefix}metacopy`), null, `${f.prefix}metacopy on disk`);
  assert.equal(f.fs.readFileSync('/m', 'utf8'), 'lower data');
  assert.equal(f.fs.statSync('/m').size, 10);
  f.fs.appendFileSync('/m', '!');
  const full = f.entry('upper', 'm');
  assert.equal(full?.metacopy, false, 'data copied on write');
  if (f.kind === 'dir') assert.equal(xattr.getAttributeSync(f.up('m'), `${f.prefix}metacopy`), null);
  assert.equal(f.fs.readFileSync('/m', 'utf8'), 'lower data!');
  assert.equal(full.stat.mode & 0o777, 0o600, 'the chmod survives the data copy-up');
});

testEachKind('errors: ENOTDIR through a file, ENOENT for missing parents, ELOOP for loops', (t, kind) => {
  const f = fixture(t, [{ file: 'x', loop1: { symlink: 'loop2' }, loop2: { symlink: 'loop1' } }], {}, { kind });
  assert.throws(() => f.fs.statSync('/file/x'), { code: 'ENOTDIR' });
  assert.throws(() => f.fs.statSync('/missing/x'), { code: 'ENOENT' });
  assert.throws(() => f.fs.statSync('/loop1'), { code: 'ELOOP' });
  assert.throws(() => f.fs.statSync('/file/'), { code: 'ENOTDIR' });
});

// --- the on-disk formats (DirLayer only) ---

test('on disk: .wh. files and .wh..wh..opq markers (OCI, fuse-overlayfs) are honoured', (t) => {
  const f = fixture(t, [{ '.wh.a': '', d: { '.wh..wh..opq': '', mine: '1' } }, { a: 'hidden', d: { below: 'hidden' } }]);
  assert.throws(() => f.fs.statSync('/a'), { code: 'ENOENT' });
  assert.deepEqual(f.fs.readdirSync('/d'), ['mine']);
  assert.ok(!(f.fs.readdirSync('/') as string[]).some((n) => n.startsWith('.wh.')));
});

test('on disk: a .wh. file in the upper layer (fuse-overlayfs without mknod) hides the name, before anything below is read', (t) => {
  const f = fixture(t, [{ a: 'hidden' }, { a: 'data' }], {}, { upper: { '.wh.a': '', b: 'mine' } });
  // Below the whiteout, a lookup that went on would be refused (a metacopy file on a metacopy=off mount).
  xattr.setAttributeSync(`${f.lowers[0]}/a`, `${f.prefix}metacopy`, '');
  f.reopen();
  assert.throws(() => f.fs.statSync('/a'), { code: 'ENOENT' });
  assert.deepEqual(f.fs.readdirSync('/'), ['b']);
  f.fs.writeFileSync('/new', 'x');
  assert.deepEqual((f.fs.readdirSync('/') as string[]).sort(), ['b', 'new']);
  fs.unlinkSync(f.up('.wh.a'));
  f.reopen();
  assert.throws(() => f.fs.statSync('/a'), { code: 'EPERM' }, 'without the whiteout the lower file is looked at');
});

test('on disk: an overlay.opaque=y xattr stops the merge', (t) => {
  const f = fixture(t, [{ d: { top: '1' } }, { d: { below: '2' } }]);
  xattr.setAttributeSync(`${f.lowers[0]}/d`, `${f.prefix}opaque`, 'y');
  f.reopen();
  assert.deepEqual(f.fs.readdirSync('/d'), ['top']);
  assert.throws(() => f.fs.statSync('/d/below'), { code: 'ENOENT' });
});

test('on disk: xattr whiteouts (overlay.whiteout in a directory marked opaque=x) hide names', (t) => {
  const f = fixture(t, [{ d: { x: '', keep: '' } }, { d: { x: 'hidden', y: 'shown' } }]);
  xattr.setAttributeSync(`${f.lowers[0]}/d/x`, `${f.prefix}whiteout`, '');
  f.reopen();
  assert.equal(f.fs.readFileSync('/d/x', 'utf8'), '', 'without the opaque=x marker on its parent it is a plain file');
  xattr.setAttributeSync(`${f.lowers[0]}/d`, `${f.prefix}opaque`, 'x');
  f.reopen();
  assert.deepEqual((f.fs.readdirSync('/d') as string[]).sort(), ['keep', 'y']);
  assert.throws(() => f.fs.statSync('/d/x'), { code: 'ENOENT' });
});

test('on disk: an overlay.redirect xattr sends the lower lookup to the named directory', (t) => {
  const f = fixture(t, [{ old: { a: '1' } }], {}, { upper: { renamed: { b: '2' } } });
  xattr.setAttributeSync(f.up('renamed'), `${f.prefix}redirect`, '/old');
  f.reopen();
  assert.deepEqual((f.fs.readdirSync('/renamed') as string[]).sort(), ['a', 'b']);
  assert.equal(f.fs.readFileSync('/renamed/a', 'utf8'), '1');
});
