// Lookup across layers: whiteouts in every format, opaque directories, redirects, metacopy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as xattr from '@napi-rs/xattr';
import { code, isRoot, makeFixture } from '../support/fixture.js';

const skipNotRoot = isRoot ? false : 'needs root for trusted.* xattrs and 0/0 devices';

test('the top-most layer holding a name wins; directories merge', () => {
  const f = makeFixture([{ a: 'top', d: { x: '1' } }, { a: 'bottom', b: 'only-below', d: { y: '2' } }]);
  try {
    assert.equal(f.fs.readFileSync('/a', 'utf8'), 'top');
    assert.equal(f.fs.readFileSync('/b', 'utf8'), 'only-below');
    assert.deepEqual((f.fs.readdirSync('/d') as string[]).sort(), ['x', 'y']);
  } finally {
    f.cleanup();
  }
});

test('a 0/0 device whiteout hides the name below, in lookups and listings', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ gone: { whiteout: true }, d: { x: { whiteout: true } } }, { gone: 'hidden', d: { x: 'hidden', y: 'shown' } }]);
  try {
    assert.equal(code(() => f.fs.statSync('/gone')), 'ENOENT');
    assert.deepEqual(f.fs.readdirSync('/d'), ['y']);
    assert.ok(!(f.fs.readdirSync('/') as string[]).includes('gone'));
  } finally {
    f.cleanup();
  }
});

test('.wh. files and .wh..wh..opq markers (OCI, fuse-overlayfs) are honoured', () => {
  const f = makeFixture([{ '.wh.a': '', d: { '.wh..wh..opq': '', mine: '1' } }, { a: 'hidden', d: { below: 'hidden' } }]);
  try {
    assert.equal(code(() => f.fs.statSync('/a')), 'ENOENT');
    assert.deepEqual(f.fs.readdirSync('/d'), ['mine']);
    assert.ok(!(f.fs.readdirSync('/') as string[]).some((n) => n.startsWith('.wh.')));
  } finally {
    f.cleanup();
  }
});

test('an opaque directory (overlay.opaque=y) stops the merge', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ d: { top: '1' } }, { d: { below: '2' } }]);
  try {
    xattr.setAttributeSync(`${f.lowers[0]}/d`, 'trusted.overlay.opaque', 'y');
    f.reopen();
    assert.deepEqual(f.fs.readdirSync('/d'), ['top']);
    assert.equal(code(() => f.fs.statSync('/d/below')), 'ENOENT');
  } finally {
    f.cleanup();
  }
});

test('xattr whiteouts (overlay.whiteout in a directory marked opaque=x) hide names', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ d: { x: '', keep: '' } }, { d: { x: 'hidden', y: 'shown' } }]);
  try {
    xattr.setAttributeSync(`${f.lowers[0]}/d/x`, 'trusted.overlay.whiteout', '');
    xattr.setAttributeSync(`${f.lowers[0]}/d`, 'trusted.overlay.opaque', 'x');
    f.reopen();
    assert.deepEqual((f.fs.readdirSync('/d') as string[]).sort(), ['keep', 'y']);
    assert.equal(code(() => f.fs.statSync('/d/x')), 'ENOENT');
  } finally {
    f.cleanup();
  }
});

test('a redirect xattr sends the lower lookup to the named directory', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ old: { a: '1' } }], {}, { renamed: { b: '2' } });
  try {
    xattr.setAttributeSync(f.up('renamed'), 'trusted.overlay.redirect', '/old');
    f.reopen();
    assert.deepEqual((f.fs.readdirSync('/renamed') as string[]).sort(), ['a', 'b']);
    assert.equal(f.fs.readFileSync('/renamed/a', 'utf8'), '1');
  } finally {
    f.cleanup();
  }
});

test('a metacopy upper file reads its data from below', { skip: skipNotRoot }, () => {
  const f = makeFixture([{ m: 'lower data' }], { metacopy: 'on', redirect_dir: 'on' });
  try {
    f.fs.chmodSync('/m', 0o600);
    assert.equal(fs.statSync(f.up('m')).mode & 0o777, 0o600);
    assert.ok(xattr.getAttributeSync(f.up('m'), 'trusted.overlay.metacopy') !== null, 'metadata-only copy-up');
    assert.equal(f.fs.readFileSync('/m', 'utf8'), 'lower data');
    assert.equal(f.fs.statSync('/m').size, 10);
    f.fs.appendFileSync('/m', '!');
    assert.equal(xattr.getAttributeSync(f.up('m'), 'trusted.overlay.metacopy'), null, 'data copied on write');
    assert.equal(f.fs.readFileSync('/m', 'utf8'), 'lower data!');
    assert.equal(fs.statSync(f.up('m')).mode & 0o777, 0o600, 'the chmod survives the data copy-up');
  } finally {
    f.cleanup();
  }
});

test('errors: ENOTDIR through a file, ENOENT for missing parents, ELOOP for loops', () => {
  const f = makeFixture([{ file: 'x', loop1: { symlink: 'loop2' }, loop2: { symlink: 'loop1' } }]);
  try {
    assert.equal(code(() => f.fs.statSync('/file/x')), 'ENOTDIR');
    assert.equal(code(() => f.fs.statSync('/missing/x')), 'ENOENT');
    assert.equal(code(() => f.fs.statSync('/loop1')), 'ELOOP');
    assert.equal(code(() => f.fs.statSync('/file/')), 'ENOTDIR');
  } finally {
    f.cleanup();
  }
});
