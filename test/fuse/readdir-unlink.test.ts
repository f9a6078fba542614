// A directory read in small pieces while names are removed from it. The reader's next getdents after an
// unlink must not show the name with d_ino 0 (the kernel asked for READDIRPLUS, and the entry of a name
// that is gone carried zero attributes), and in a directory only the upper layer holds it must not show
// the name at all, as the upper filesystem, which the kernel overlay reads such a directory from, does
// not. After a rewind no removed name is listed. Next to the kernel overlay.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { check, declare } from '../../src/sys/libc.js';
import { mountSideBySide, sideBySideSkip } from '../support/side-by-side.js';

const reason = sideBySideSkip('readdir after unlink tests');

const getdents64 = declare<(fd: number, buf: Buffer, size: number) => number>('long getdents64(int fd, _Out_ void *buf, size_t nbytes)');
const lseek = declare<(fd: number, offset: number, whence: number) => number>('long lseek(int fd, long offset, int whence)');
const SEEK_SET = 0;

/** One getdents64 of at most `size` bytes: [name, d_ino] pairs, '.' and '..' left out. */
function getdents(fd: number, size: number): Array<[string, number]> | null {
  const buf = Buffer.alloc(size);
  const n = check(Number(getdents64(fd, buf, size)), 'getdents64');
  if (n === 0) return null;
  const out: Array<[string, number]> = [];
  for (let off = 0; off < n; off += buf.readUInt16LE(off + 16)) {
    const end = buf.indexOf(0, off + 19);
    const name = buf.toString('utf8', off + 19, end);
    if (name !== '.' && name !== '..') out.push([name, Number(buf.readBigUInt64LE(off))]);
  }
  return out;
}

/** Everything from the fd's position on, in pieces of about 8 entries, as xfstests' t_dir_offset2 reads. */
function readRest(fd: number): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (let chunk = getdents(fd, 200); chunk !== null; chunk = getdents(fd, 200)) out.push(...chunk);
  return out;
}

function layers(dir: string): void {
  for (const d of ['l/merged', 'u/merged', 'w', 'm']) fs.mkdirSync(join(dir, d), { recursive: true });
  for (let i = 1; i <= 40; i++) fs.writeFileSync(join(dir, 'l/merged', `low${i}`), '');
  for (let i = 1; i <= 40; i++) fs.writeFileSync(join(dir, 'u/merged', `up${i}`), '');
}

interface Seen {
  /** The removed name as the open fd listed it afterwards: its d_ino, or undefined when not listed. */
  stale: number | undefined;
  /** Names listed with a d_ino that is not their st_ino. */
  wrongIno: string[];
  afterRewind: boolean;
}

/**
 * Reads the first piece of `dir`, removes a name the kernel's first READDIRPLUS page held but the reader
 * has not seen yet (its stat marks the directory for READDIRPLUS again), then reads on. The name is
 * chosen in the order of the upper layer's directory `real`, which both overlays list upper entries
 * in: a listing through the mount would complete the kernel's cache of it, and the reader would then
 * go on from that cache, never asking the mount.
 */
function unlinkWhileReading(dir: string, real: string): Seen {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const first = getdents(fd, 200) ?? [];
    const realFd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    const inLayerOrder = readRest(realFd).map(([n]) => n);
    fs.closeSync(realFd);
    const victim = inLayerOrder.filter((n) => !first.some(([f]) => f === n))[2]!;
    const ino = fs.lstatSync(join(dir, victim)).ino;
    assert.ok(ino > 0);
    fs.unlinkSync(join(dir, victim));
    const rest = readRest(fd);
    const wrongIno = [...first, ...rest].filter(([n, i]) => n !== victim && fs.lstatSync(join(dir, n)).ino !== i).map(([n]) => n);
    const stale = rest.find(([n]) => n === victim)?.[1];
    // A rewind on the same open directory reads it afresh.
    check(Number(lseek(fd, 0, SEEK_SET)), 'lseek');
    const again = readRest(fd);
    return { stale, wrongIno, afterRewind: again.some(([n]) => n === victim) };
  } finally {
    fs.closeSync(fd);
  }
}

test('a name unlinked while a directory is read is not listed with d_ino 0, nor after a rewind', { skip: reason }, async () => {
  const sbs = await mountSideBySide('ovlfs-readdir-unlink-', layers, (d) => `lowerdir=${d}/l,upperdir=${d}/u,workdir=${d}/w`);
  try {
    const results = new Map<string, Seen>();
    for (const [side, mnt] of [['kernel', sbs.kmnt], ['ovlfs', sbs.omnt]] as const) {
      // Made through the mount, as xfstests makes its test directory: only the upper layer holds it.
      const upper = join(mnt, 'upper');
      fs.mkdirSync(upper);
      for (let i = 1; i <= 100; i++) fs.writeFileSync(join(upper, String(i)), '');
      for (const dir of ['upper', 'merged']) {
        const seen = unlinkWhileReading(join(mnt, dir), join(mnt, '../u', dir));
        results.set(`${side} ${dir}`, seen);
        assert.notEqual(seen.stale, 0, `${side} ${dir}: the removed name listed with d_ino 0`);
        assert.deepEqual(seen.wrongIno, [], `${side} ${dir}: d_ino is the st_ino`);
        assert.equal(seen.afterRewind, false, `${side} ${dir}: listed after a rewind`);
      }
    }
    // A directory only the upper layer holds is read from the upper filesystem, which lists no removed name.
    assert.equal(results.get('kernel upper')!.stale, undefined);
    assert.equal(results.get('ovlfs upper')!.stale, undefined, 'ovlfs upper: the removed name listed after the unlink');
  } finally {
    await sbs.close();
  }
});
