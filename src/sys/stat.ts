// statx(2): attributes with nanosecond times, relative to a directory fd.
import { AT_SYMLINK_NOFOLLOW } from './constants.js';
import { check, declare, lastErrno } from './libc.js';

const rawStatx = declare<(dirfd: number, path: string, flags: number, mask: number, buf: Buffer) => number>(
  'int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)',
);

const STATX_BASIC_STATS = 0x7ff;
const STATX_BTIME = 0x800;
const buf = Buffer.alloc(256);

/** What statx reports, in the shape of Node's Stats plus nanosecond times. */
export interface Statx {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  /** The size exactly, only where `size` rounds it (past 2^53: tmpfs and XFS take up to 2^63 - 1). */
  sizeExact?: bigint;
  blksize: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  birthtimeNs: bigint;
}

/** glibc's makedev, as Node reports st_dev and st_rdev. */
function makedev(major: number, minor: number): number {
  return (major & 0xfff) * 256 + (minor & 0xff) + (minor >>> 8) * 0x100000 + (major >>> 12) * 0x100000000000;
}

/** A u64 field as a number (exact below 2^53, as Node reports st_ino and st_size). */
function u64(offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * 0x100000000;
}

/** struct statx_timestamp { s64 tv_sec; u32 tv_nsec; }: the seconds as a number. */
function sec(offset: number): number {
  return buf.readUInt32LE(offset) + buf.readInt32LE(offset + 4) * 0x100000000;
}

function ns(offset: number): bigint {
  const s = sec(offset);
  // Seconds past 2^53 (tmpfs keeps any s64) are read again exactly.
  return (Number.isSafeInteger(s) ? BigInt(s) : buf.readBigInt64LE(offset)) * 1_000_000_000n + BigInt(buf.readUInt32LE(offset + 8));
}

function ms(offset: number): number {
  return sec(offset) * 1000 + buf.readUInt32LE(offset + 8) / 1e6;
}

/**
 * statx(dirfd, path, flags). `flags` defaults to AT_SYMLINK_NOFOLLOW; AT_EMPTY_PATH with path ''
 * stats dirfd itself. The fields are written onto `into` (a fresh object by default), so a caller
 * can choose the prototype of what it hands out.
 */
export function statx<T extends object = Statx>(dirfd: number, path: string, flags = AT_SYMLINK_NOFOLLOW, into?: T): T & Statx {
  check(rawStatx(dirfd, path, flags, STATX_BASIC_STATS | STATX_BTIME, buf), 'statx', path);
  return decode(into);
}

const ENOENT = 2;
const ENOTDIR = 20;
const ENAMETOOLONG = 36;

/**
 * statx, but undefined where nothing is there (ENOENT; ENOTDIR for a parent that is not a
 * directory; ENAMETOOLONG for a name no entry can have): lookups miss often, and an Error for
 * each miss would cost more than the call.
 */
export function tryStatx<T extends object = Statx>(dirfd: number, path: string, flags = AT_SYMLINK_NOFOLLOW, into?: T): (T & Statx) | undefined {
  const ret = rawStatx(dirfd, path, flags, STATX_BASIC_STATS | STATX_BTIME, buf);
  if (ret < 0) {
    const errno = lastErrno();
    if (errno === ENOENT || errno === ENOTDIR || errno === ENAMETOOLONG) return undefined;
    check(ret, 'statx', path);
  }
  return decode(into);
}

function decode<T extends object>(into: T | undefined): T & Statx {
  const s = (into ?? {}) as T & Statx;
  const hasBirth = (buf.readUInt32LE(0) & STATX_BTIME) !== 0;
  s.dev = makedev(buf.readUInt32LE(136), buf.readUInt32LE(140));
  s.ino = u64(32);
  s.mode = buf.readUInt16LE(28);
  s.nlink = buf.readUInt32LE(16);
  s.uid = buf.readUInt32LE(20);
  s.gid = buf.readUInt32LE(24);
  s.rdev = makedev(buf.readUInt32LE(128), buf.readUInt32LE(132));
  s.size = u64(40);
  if (!Number.isSafeInteger(s.size)) s.sizeExact = buf.readBigUInt64LE(40);
  else if (s.sizeExact !== undefined) delete s.sizeExact;
  s.blksize = buf.readUInt32LE(4);
  s.blocks = u64(48);
  s.atimeMs = ms(64);
  s.mtimeMs = ms(112);
  s.ctimeMs = ms(96);
  s.birthtimeMs = hasBirth ? ms(80) : 0;
  s.atimeNs = ns(64);
  s.mtimeNs = ns(112);
  s.ctimeNs = ns(96);
  s.birthtimeNs = hasBirth ? ns(80) : 0n;
  return s;
}
