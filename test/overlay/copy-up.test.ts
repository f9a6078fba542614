// Copy-up: parents first, metadata kept, atomic through the work dir, st_ino stable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as xattr from '@napi-rs/xattr';
import { isRoot, makeFixture } from '../support/fixture.js';

test('a write copies the file and its parents up, keeping mode, owner, times and xattrs', { skip: isRoot ? false : 'needs root for chown and trusted xattrs' }, () => {
  const f = makeFixture([{ a: { b: { c: { file: 'lower' } } } }]);
  try {
    const lower = `${f.lowers[0]}/a/b/c/file`;
    fs.chmodSync(lower, 0o640);
    fs.chownSync(lower, 1234, 5678);
    fs.utimesSync(lower, 1000, 2000);
    xattr.setAttributeSync(lower, 'user.tag', 'kept');
    fs.utimesSync(`${f.lowers[0]}/a/b/c`, 3000, 4000);
    f.reopen();
    f.fs.appendFileSync('/a/b/c/file', '+');
    const st = fs.statSync(f.up('a/b/c/file'));
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 5678);
    assert.equal(xattr.getAttributeSync(f.up('a/b/c/file'), 'user.tag')?.toString(), 'kept');
    assert.equal(fs.readFileSync(f.up('a/b/c/file'), 'utf8'), 'lower+');
    assert.equal(fs.readFileSync(lower, 'utf8'), 'lower', 'the lower layer is never written');
    // The parent was copied up with its times, and the child's copy-up did not change them.
    assert.equal(fs.statSync(f.up('a/b/c')).mtimeMs, 4000 * 1000);
    assert.deepEqual(fs.readdirSync(`${f.work}/work`).filter((n) => !n.startsWith('#')), []);
  } finally {
    f.cleanup();
  }
});

test('st_ino is the same before and after copy-up, and after reopening', () => {
  const f = makeFixture([{ file: 'x', dir: { y: '1' } }]);
  try {
    const before = f.fs.statSync('/file').ino;
    const dirBefore = f.fs.statSync('/dir').ino;
    f.fs.writeFileSync('/file', 'changed');
    f.fs.writeFileSync('/dir/new', 'n');
    assert.equal(f.fs.statSync('/file').ino, before);
    assert.equal(f.fs.statSync('/dir').ino, dirBefore);
    f.reopen();
    assert.equal(f.fs.statSync('/file').ino, before);
  } finally {
    f.cleanup();
  }
});

test('a failed copy-up leaves nothing behind in the merged view', () => {
  const f = makeFixture([{ dir: { file: 'lower data' } }]);
  try {
    assert.equal(f.fs.readFileSync('/dir/file', 'utf8'), 'lower data');
    // Something takes the upper name behind the overlay's back, so the copy's final rename fails.
    fs.mkdirSync(f.up('dir/file'), { recursive: true });
    assert.throws(() => f.fs.appendFileSync('/dir/file', '+'), { code: 'EEXIST' });
    const leftovers = fs.readdirSync(`${f.work}/work`).filter((n) => !fs.lstatSync(`${f.work}/work/${n}`).isCharacterDevice());
    assert.deepEqual(leftovers, [], 'the half-made copy was removed from the work dir');
    assert.equal(f.fs.readFileSync('/dir/file', 'utf8'), 'lower data', 'the merged view is unchanged');
    assert.equal(fs.readFileSync(`${f.lowers[0]}/dir/file`, 'utf8'), 'lower data');
  } finally {
    f.cleanup();
  }
});

test('a directory copy-up is not opaque, so the lower entries still show', () => {
  const f = makeFixture([{ d: { a: '1', b: '2' } }]);
  try {
    f.fs.writeFileSync('/d/c', '3');
    assert.deepEqual((f.fs.readdirSync('/d') as string[]).sort(), ['a', 'b', 'c']);
    f.reopen();
    assert.deepEqual((f.fs.readdirSync('/d') as string[]).sort(), ['a', 'b', 'c']);
  } finally {
    f.cleanup();
  }
});
