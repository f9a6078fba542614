// Open files never go stale: each test opens read-only, changes the file another way, and checks
// what the first handle sees (the shape of xfstests overlay/016).
import assert from 'node:assert/strict';
import { fixture, isRoot, testEachKind, type Fixture } from '../support/fixture.js';

function readAll(f: Fixture, fd: number): string {
  const buffer = Buffer.alloc(4096);
  const n = f.fs.readSync(fd, buffer, 0, buffer.length, 0);
  return buffer.subarray(0, n).toString();
}

testEachKind('a read-only fd opened before a copy-up reads the data written after it', (t, kind) => {
  const f = fixture(t, [{ a: { b: { c: { file: 'old' } } } }], {}, { kind });
  const ro = f.fs.openSync('/a/b/c/file', 'r');
  const rw = f.fs.openSync('/a/b/c/file', 'r+');
  f.fs.writeSync(rw, 'new');
  assert.equal(readAll(f, ro), 'new');
  f.fs.writeFileSync('/a/b/c/file', 'newer');
  assert.equal(readAll(f, ro), 'newer');
  f.fs.closeSync(ro);
  f.fs.closeSync(rw);
});

testEachKind('truncate through the path is seen by open handles, and the position carries over', (t, kind) => {
  const f = fixture(t, [{ file: '0123456789' }], {}, { kind });
  const ro = f.fs.openSync('/file', 'r');
  const buffer = Buffer.alloc(4);
  assert.equal(f.fs.readSync(ro, buffer, 0, 4, null), 4);
  assert.equal(buffer.toString(), '0123');
  f.fs.truncateSync('/file', 6);
  assert.equal(f.fs.readSync(ro, buffer, 0, 4, null), 2);
  assert.equal(buffer.subarray(0, 2).toString(), '45');
  f.fs.closeSync(ro);
});

testEachKind('a handle keeps reading its file after the name is unlinked or renamed', (t, kind) => {
  const f = fixture(t, [{ lower: 'lower data', other: 'o' }], {}, { kind });
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
});

testEachKind('copy-up, then unlink, while a stale handle is still open: the handle sees the copied data', (t, kind) => {
  const f = fixture(t, [{ file: 'v1' }], {}, { kind });
  const ro = f.fs.openSync('/file', 'r');
  f.fs.writeFileSync('/file', 'v2');
  f.fs.unlinkSync('/file');
  assert.equal(readAll(f, ro), 'v2');
  f.fs.closeSync(ro);
});

testEachKind('after unlink and re-create, an old handle reads the old file, never the new one', (t, kind) => {
  const f = fixture(t, [{ file: 'old' }], {}, { kind });
  const ro = f.fs.openSync('/file', 'r');
  f.fs.unlinkSync('/file');
  f.fs.writeFileSync('/file', 'new');
  assert.equal(readAll(f, ro), 'old');
  assert.equal(f.fs.readFileSync('/file', 'utf8'), 'new');
  f.fs.closeSync(ro);
});

testEachKind('O_APPEND keeps appending across a copy-up made through another handle', (t, kind) => {
  const f = fixture(t, [{ log: 'a' }], {}, { kind });
  const fd = f.fs.openSync('/log', 'a');
  f.fs.writeSync(fd, 'b');
  f.fs.writeFileSync('/log', 'XY', { flag: 'r+' });
  f.fs.writeSync(fd, 'c');
  assert.equal(f.fs.readFileSync('/log', 'utf8'), 'XYc');
  f.fs.closeSync(fd);
});

testEachKind('closed and unknown descriptors give EBADF; reading a write-only fd gives EBADF', (t, kind) => {
  const f = fixture(t, [{ file: 'x' }], {}, { kind });
  const fd = f.fs.openSync('/file', 'w');
  assert.throws(() => f.fs.readSync(fd, Buffer.alloc(1), 0, 1, 0), { code: 'EBADF' });
  f.fs.closeSync(fd);
  assert.throws(() => f.fs.closeSync(fd), { code: 'EBADF' });
  assert.throws(() => f.fs.fstatSync(99999), { code: 'EBADF' });
});

testEachKind('fchmod, fchown and futimes act on the handle\'s own inode after its name is re-used', (t, kind) => {
  const f = fixture(t, [{ file: 'lower' }], {}, { kind });
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

testEachKind('fsync and fdatasync on a volatile overlay sync nothing and still check the handle', (t, kind) => {
  const f = fixture(t, [{ file: 'x' }], { volatile: true }, { kind });
  const fd = f.fs.openSync('/file', 'r+');
  f.fs.fsyncSync(fd);
  f.fs.fdatasyncSync(fd);
  f.fs.closeSync(fd);
  assert.throws(() => f.fs.fsyncSync(fd), { code: 'EBADF' });
});

testEachKind('opening for writing a file its user may not write is EACCES, and copies nothing up', () => ({
  skip: isRoot ? 'root may write any file; unprivileged.test.ts runs this suite as nobody' : false,
}), (t, kind) => {
  const f = fixture(t, [{ readonly: 'ro' }], {}, { kind });
  f.edit(0, (layer) => layer.chmod('readonly', 0o444));
  assert.throws(() => f.fs.openSync('/readonly', 'r+'), { code: 'EACCES' });
  assert.throws(() => f.fs.writeFileSync('/readonly', 'x'), { code: 'EACCES' });
  assert.equal(f.entry('upper', 'readonly'), undefined, 'a refused open copies nothing up');
  assert.equal(f.fs.readFileSync('/readonly', 'utf8'), 'ro');
});
