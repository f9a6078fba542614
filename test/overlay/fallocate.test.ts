// fallocate(2) in every mode and lseek(2) SEEK_DATA/SEEK_HOLE through the core, on both layer kinds.
// A DirLayer passes each call to the host filesystem, so a plain host file next to the layers is the
// oracle: the overlay's file must end up as the host's file does, or fail with the same errno.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import * as sys from '../../src/sys/index.js';
import { errorCode } from '../../src/errors.js';
import { fixture, testEachKind, type Fixture, type LayerKind } from '../support/fixture.js';

const BLOCK = 4096;
/** Three blocks, 'a', 'b' and 'c'. */
const CONTENT = 'a'.repeat(BLOCK) + 'b'.repeat(BLOCK) + 'c'.repeat(BLOCK);
const { KEEP, PUNCH, COLLAPSE, ZERO, INSERT, UNSHARE } = {
  KEEP: sys.FALLOC_FL_KEEP_SIZE, PUNCH: sys.FALLOC_FL_PUNCH_HOLE, COLLAPSE: sys.FALLOC_FL_COLLAPSE_RANGE,
  ZERO: sys.FALLOC_FL_ZERO_RANGE, INSERT: sys.FALLOC_FL_INSERT_RANGE, UNSHARE: sys.FALLOC_FL_UNSHARE_RANGE,
};

const zeros = (n: number): string => '\0'.repeat(n);

/** Each mode, a range, and the content it gives CONTENT (on a filesystem that has the mode). */
const CASES: Array<{ name: string; mode: number; offset: number; length: number; expect: string }> = [
  { name: 'allocate past the end', mode: 0, offset: 3 * BLOCK, length: BLOCK, expect: CONTENT + zeros(BLOCK) },
  { name: 'keep size', mode: KEEP, offset: 3 * BLOCK, length: BLOCK, expect: CONTENT },
  { name: 'punch hole', mode: PUNCH | KEEP, offset: BLOCK, length: BLOCK, expect: 'a'.repeat(BLOCK) + zeros(BLOCK) + 'c'.repeat(BLOCK) },
  { name: 'zero range past the end', mode: ZERO, offset: 2 * BLOCK, length: 2 * BLOCK, expect: 'a'.repeat(BLOCK) + 'b'.repeat(BLOCK) + zeros(2 * BLOCK) },
  { name: 'zero range keeping the size', mode: ZERO | KEEP, offset: 2 * BLOCK, length: 2 * BLOCK, expect: 'a'.repeat(BLOCK) + 'b'.repeat(BLOCK) + zeros(BLOCK) },
  { name: 'collapse range', mode: COLLAPSE, offset: BLOCK, length: BLOCK, expect: 'a'.repeat(BLOCK) + 'c'.repeat(BLOCK) },
  { name: 'insert range', mode: INSERT, offset: BLOCK, length: BLOCK, expect: 'a'.repeat(BLOCK) + zeros(BLOCK) + 'b'.repeat(BLOCK) + 'c'.repeat(BLOCK) },
  { name: 'unshare range', mode: UNSHARE, offset: 0, length: BLOCK, expect: CONTENT },
];

/** The host's answer for a mode on a plain file with CONTENT: undefined if it works, else its errno. */
function hostAnswer(t: TestContext, mode: number, offset: number, length: number): string | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-falloc-host-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, CONTENT);
  const fd = fs.openSync(file, 'r+');
  try {
    sys.fallocate(fd, mode, offset, length);
    return undefined;
  } catch (err) {
    return errorCode(err);
  } finally {
    fs.closeSync(fd);
  }
}

/** What the overlay must answer: the memory layer has every mode; a DirLayer has what the host has. */
function expectedError(t: TestContext, kind: LayerKind, mode: number, offset: number, length: number): string | undefined {
  return kind === 'memory' ? undefined : hostAnswer(t, mode, offset, length);
}

function read(f: Fixture, fd: number): string {
  const buffer = Buffer.alloc(8 * BLOCK);
  return buffer.subarray(0, f.fs.readSync(fd, buffer, 0, buffer.length, 0)).toString('latin1');
}

for (const c of CASES) {
  testEachKind(`fallocate ${c.name}: a lower file is copied up first and a read-only fd opened before sees the change`, (t, kind) => {
    const f = fixture(t, [{ file: CONTENT }], {}, { kind });
    const expected = expectedError(t, kind, c.mode, c.offset, c.length);
    const ro = f.fs.openSync('/file', 'r');
    const rw = f.fs.openSync('/file', 'r+');
    t.after(() => {
      f.fs.closeSync(ro);
      f.fs.closeSync(rw);
    });
    if (expected !== undefined) {
      assert.throws(() => f.fs.fallocateSync(rw, c.mode, c.offset, c.length), { code: expected, syscall: 'fallocate' });
      assert.equal(read(f, ro), CONTENT);
      return;
    }
    f.fs.fallocateSync(rw, c.mode, c.offset, c.length);
    assert.equal(read(f, ro), c.expect);
    assert.equal(f.fs.fstatSync(ro).size, c.expect.length);
    assert.equal(f.fs.statSync('/file').size, c.expect.length);
    // The lower file is untouched; the upper one has the change.
    assert.equal(f.inspect(0, (l) => l.lstat('file').size), CONTENT.length);
    assert.equal(f.inspect('upper', (l) => l.lstat('file').size), c.expect.length);
  });
}

testEachKind('fallocate refuses what every filesystem refuses, before any copy-up', (t, kind) => {
  const f = fixture(t, [{ file: CONTENT, dir: {} }], {}, { kind });
  const ro = f.fs.openSync('/file', 'r');
  const dir = f.fs.openSync('/dir', 'r');
  t.after(() => {
    f.fs.closeSync(ro);
    f.fs.closeSync(dir);
  });
  // A read-only handle, and a directory (which opens read-only only).
  assert.throws(() => f.fs.fallocateSync(ro, 0, 0, BLOCK), { code: 'EBADF' });
  assert.throws(() => f.fs.fallocateSync(dir, 0, 0, BLOCK), { code: 'EBADF' });
  assert.equal(f.entry('upper', 'file'), undefined);
  const rw = f.fs.openSync('/file', 'r+');
  t.after(() => f.fs.closeSync(rw));
  // The VFS's checks, in its order: range, then mode.
  assert.throws(() => f.fs.fallocateSync(rw, 0, 0, 0), { code: 'EINVAL' });
  assert.throws(() => f.fs.fallocateSync(rw, 0, -1, BLOCK), { code: 'EINVAL' });
  assert.throws(() => f.fs.fallocateSync(rw, PUNCH, 0, BLOCK), { code: 'EOPNOTSUPP' });
  assert.throws(() => f.fs.fallocateSync(rw, COLLAPSE | KEEP, 0, BLOCK), { code: 'EOPNOTSUPP' });
  assert.throws(() => f.fs.fallocateSync(rw, PUNCH | ZERO | KEEP, 0, BLOCK), { code: 'EOPNOTSUPP' });
  assert.throws(() => f.fs.fallocateSync(rw, 0x100, 0, BLOCK), { code: 'EOPNOTSUPP' });
  // Collapse and insert work in whole blocks, and collapse may not reach the end.
  for (const [mode, offset, length] of [[COLLAPSE, 1, BLOCK], [COLLAPSE, BLOCK, 2 * BLOCK], [INSERT, 0, 100], [INSERT, 3 * BLOCK, BLOCK]] as const) {
    const expected = expectedError(t, kind, mode, offset, length) ?? 'no error';
    const actual = ((): string => {
      try {
        f.fs.fallocateSync(rw, mode, offset, length);
        return 'no error';
      } catch (err) {
        return errorCode(err) ?? String(err);
      }
    })();
    assert.equal(actual, kind === 'memory' ? 'EINVAL' : expected, `mode ${mode} at ${offset}+${length}`);
  }
  assert.equal(read(f, rw), CONTENT);
  // Argument types are Node's business.
  assert.throws(() => f.fs.fallocateSync(rw, 'x' as unknown as number, 0, 1), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.fs.fallocateSync(rw, 0, 0.5, 1), { code: 'ERR_OUT_OF_RANGE' });
});

/** SEEK_DATA/SEEK_HOLE answers for offsets 0, one block and two blocks in, ENXIO as its code. */
function seekAnswers(seek: (offset: number, whence: number) => number): Array<number | string> {
  const out: Array<number | string> = [];
  for (const whence of [sys.SEEK_DATA, sys.SEEK_HOLE]) {
    for (const offset of [0, BLOCK, 2 * BLOCK, 3 * BLOCK]) {
      try {
        out.push(seek(offset, whence));
      } catch (err) {
        out.push(errorCode(err) ?? String(err));
      }
    }
  }
  return out;
}

testEachKind('SEEK_DATA and SEEK_HOLE answer from the current real file, also for a handle opened before the copy-up', (t, kind) => {
  const f = fixture(t, [{ file: CONTENT }], {}, { kind });
  const node = f.overlay.resolve('/file');
  const ro = f.overlay.open(node, fs.constants.O_RDONLY);
  const rw = f.overlay.open(node, fs.constants.O_RDWR);
  t.after(() => {
    f.overlay.release(ro);
    f.overlay.release(rw);
  });
  f.overlay.fallocate(rw, BLOCK, BLOCK, PUNCH | KEEP);
  const seen = seekAnswers((offset, whence) => Number(f.overlay.seekData(ro, offset, whence)));
  if (kind === 'memory') {
    // No holes are kept in memory: data up to the end, and the end is the one hole.
    assert.deepEqual(seen, [0, BLOCK, 2 * BLOCK, 'ENXIO', 3 * BLOCK, 3 * BLOCK, 3 * BLOCK, 'ENXIO']);
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-seek-host-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'f'), CONTENT);
    const fd = fs.openSync(path.join(dir, 'f'), 'r+');
    try {
      sys.fallocate(fd, PUNCH | KEEP, BLOCK, BLOCK);
      assert.deepEqual(seen, seekAnswers((offset, whence) => Number(sys.lseek(fd, offset, whence))));
    } finally {
      fs.closeSync(fd);
    }
  }
  assert.throws(() => f.overlay.seekData(ro, 0, 0), { code: 'EINVAL' });
});
