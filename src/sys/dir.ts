// Directory listings with getdents64(2): Node's readdir gives no inode numbers, and the overlay
// passes a real directory's d_ino through (as the kernel's overlay does) instead of a lookup per entry.
import { closeSync } from 'node:fs';
import { nameFromBytes } from '../names.js';
import { check, declare } from './libc.js';
import { O_DIRECTORY, O_RDONLY } from './constants.js';
import { openat2 } from './open.js';

const getdents64 = declare<(fd: number, buf: Buffer, size: number) => number>('long getdents64(int fd, _Out_ void *buf, size_t nbytes)');

export interface RawDirent {
  name: string;
  /** d_ino: the entry's inode number in its own directory's filesystem. */
  ino: number;
  /** S_IFMT bits from d_type, 0 when the filesystem does not say (DT_UNKNOWN). */
  type: number;
}

/** glibc's readdir buffer size: a few hundred entries per call. */
const BUF_SIZE = 32768;
let buffer: Buffer | undefined;

/** The entries of the directory at dirfd (an O_PATH fd will do), without '.' and '..'. */
export function listDirectory(dirfd: number): RawDirent[] {
  const fd = openat2(dirfd, '.', O_RDONLY | O_DIRECTORY);
  try {
    return readAll(fd);
  } finally {
    closeSync(fd);
  }
}

function readAll(fd: number): RawDirent[] {
  const buf = (buffer ??= Buffer.alloc(BUF_SIZE));
  const out: RawDirent[] = [];
  for (;;) {
    const n = check(Number(getdents64(fd, buf, BUF_SIZE)), 'getdents64');
    if (n === 0) return out;
    // struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[] (NUL-ended).
    // One latin1 string per buffer: an ASCII name is a slice of it, not a native call of its own.
    const text = buf.toString('latin1', 0, n);
    for (let off = 0; off < n;) {
      const reclen = buf[off + 16]! | (buf[off + 17]! << 8);
      const nameStart = off + 19;
      const recEnd = off + reclen;
      let nameEnd = nameStart;
      let ascii = true;
      for (let c = buf[nameEnd]!; nameEnd < recEnd && c !== 0; c = buf[++nameEnd]!) if (c >= 0x80) ascii = false;
      const len = nameEnd - nameStart;
      const isDot = buf[nameStart] === 0x2e && (len === 1 || (len === 2 && buf[nameStart + 1] === 0x2e));
      if (!isDot) {
        // Two 32-bit halves: exact for every number below 2^53, without a BigInt per entry.
        const ino = buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x1_0000_0000;
        const name = ascii ? text.slice(nameStart, nameEnd) : nameFromBytes(buf.subarray(nameStart, nameEnd));
        // DT_* values are the S_IFMT bits shifted down by 12.
        out.push({ name, ino, type: buf[off + 18]! << 12 });
      }
      off += reclen;
    }
  }
}
