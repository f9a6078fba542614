// Open files never go stale: each test opens read-only, changes the file another way, and checks
// what the first handle sees (the shape of xfstests overlay/016).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { code, makeFixture } from '../support/fixture.js';

function readAll(f: ReturnType<typeof makeFixture>, fd: number): string {
  const buffer = Buffer.alloc(4096);
  const n = f.fs.readSync(fd, buffer, 0, buffer.length, 0);
  return buffer.subarray(0, n).toString();
}

test('a read-only fd opened before a copy-up reads the data written after it', () => {
  const f = makeFixture([{ a: { b: { c: { file: 'old' } } } }]);
  try {
    const ro = f.fs.openSync('/a/b/c/file', 'r');
    const rw = f.fs.openSync('/a/b/c/file', 'r+');
    f.fs.writeSync(rw, 'new');
    assert.equal(readAll(f, ro), 'new');
    f.fs.writeFileSync('/a/b/c/file', 'newer');
    assert.equal(readAll(f, ro), 'newer');
    f.fs.closeSync(ro);
    f.fs.closeSync(rw);
  } finally {
    f.cleanup();
  }
});

test('truncate through the path is seen by open handles, and the position carries over', () => {
  const f = makeFixture([{ file: '0123456789' }]);
  try {
    const ro = f.fs.openSync('/file', 'r');
    const buffer = Buffer.alloc(4);
    assert.equal(f.fs.readSync(ro, buffer, 0, 4, null), 4);
    assert.equal(buffer.toString(), '0123');
    f.fs.truncateSync('/file', 6);
    assert.equal(f.fs.readSync(ro, buffer, 0, 4, null), 2);
    assert.equal(buffer.subarray(0, 2).toString(), '45');
    f.fs.closeSync(ro);
  } finally {
    f.cleanup();
  }
});

test('a handle keeps reading its file after the name is unlinked or renamed', () => {
  const f = makeFixture([{ lower: 'lower data', other: 'o' }]);
  try {
    const ro = f.fs.openSync('/lower', 'r');
    f.fs.unlinkSync('/lower');
    assert.equal(readAll(f, ro), 'lower data');
    f.fs.writeFileSync('/upper', 'upper data');
    const ro2 = f.fs.openSync('/upper', 'r');
    f.fs.renameSync('/upper', '/moved');
    f.fs.unlinkSync('/moved');
    assert.equal(readAll(f, ro2), 'upper data');
    f.fs.closeSync(ro);
    f.fs.closeSync(ro2);
  } finally {
    f.cleanup();
  }
});

test('copy-up, then unlink, while a stale handle is still open: the handle sees the copied data', () => {
  const f = makeFixture([{ file: 'v1' }]);
  try {
    const ro = f.fs.openSync('/file', 'r');
    f.fs.writeFileSync('/file', 'v2');
    f.fs.unlinkSync('/file');
    assert.equal(readAll(f, ro), 'v2');
    f.fs.closeSync(ro);
  } finally {
    f.cleanup();
  }
});

test('after unlink and re-create, an old handle reads the old file, never the new one', () => {
  const f = makeFixture([{ file: 'old' }]);
  try {
    const ro = f.fs.openSync('/file', 'r');
    f.fs.unlinkSync('/file');
    f.fs.writeFileSync('/file', 'new');
    assert.equal(readAll(f, ro), 'old');
    assert.equal(f.fs.readFileSync('/file', 'utf8'), 'new');
    f.fs.closeSync(ro);
  } finally {
    f.cleanup();
  }
});

test('O_APPEND keeps appending across a copy-up made through another handle', () => {
  const f = makeFixture([{ log: 'a' }]);
  try {
    const fd = f.fs.openSync('/log', 'a');
    f.fs.writeSync(fd, 'b');
    f.fs.writeFileSync('/log', 'XY', { flag: 'r+' });
    f.fs.writeSync(fd, 'c');
    assert.equal(f.fs.readFileSync('/log', 'utf8'), 'XYc');
    f.fs.closeSync(fd);
  } finally {
    f.cleanup();
  }
});

test('closed and unknown descriptors give EBADF; reading a write-only fd gives EBADF', () => {
  const f = makeFixture([{ file: 'x' }]);
  try {
    const fd = f.fs.openSync('/file', 'w');
    assert.equal(code(() => f.fs.readSync(fd, Buffer.alloc(1), 0, 1, 0)), 'EBADF');
    f.fs.closeSync(fd);
    assert.equal(code(() => f.fs.closeSync(fd)), 'EBADF');
    assert.equal(code(() => f.fs.fstatSync(99999)), 'EBADF');
  } finally {
    f.cleanup();
  }
});

test('fchmod, fchown and futimes act on the handle\'s own inode after its name is re-used', (t) => {
  const f = makeFixture([{ file: 'lower' }]);
  t.after(() => f.cleanup());
  const fd = f.fs.openSync('/file', 'r+');
  f.fs.unlinkSync('/file');
  f.fs.writeFileSync('/file', 'new file');
  f.fs.chmodSync('/file', 0o644);
  f.fs.fchmodSync(fd, 0o600);
  f.fs.futimesSync(fd, 1_000_000, 1_000_000);
  const uid = process.getuid?.() ?? 0;
  f.fs.fchownSync(fd, uid, process.getgid?.() ?? 0);
  // The new file is untouched; the handle's unlinked inode took the changes.
  const fresh = f.fs.statSync('/file');
  assert.equal(fresh.mode & 0o777, 0o644);
  assert.notEqual(fresh.mtimeMs, 1_000_000_000);
  const held = f.fs.fstatSync(fd);
  assert.equal(held.mode & 0o777, 0o600);
  assert.equal(held.mtimeMs, 1_000_000_000);
  assert.equal(held.nlink, 0);
  f.fs.closeSync(fd);
});

test('fsync and fdatasync on a volatile overlay sync nothing and still check the handle', (t) => {
  const f = makeFixture([{ file: 'x' }], { volatile: true });
  t.after(() => f.cleanup());
  const fd = f.fs.openSync('/file', 'r+');
  f.fs.fsyncSync(fd);
  f.fs.fdatasyncSync(fd);
  f.fs.closeSync(fd);
  assert.throws(() => f.fs.fsyncSync(fd), { code: 'EBADF' });
});
