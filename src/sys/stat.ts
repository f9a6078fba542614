// statx(2): attributes with nanosecond times, relative to a directory fd.
import { AT_SYMLINK_NOFOLLOW } from './constants.js';
import { check, declare, lastErrno } from './libc.js';

const rawStatx = declare<(dirfd: number, path: string, flags: number, mask: number, buf: Buffer) => number>(
  'int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)',
);

const STATX_BASIC_STATS = 0x7ff;
const STATX_BTIME = 0x800;
const buf = Buffer.alloc(256);
// Read through a DataView: Buffer's readUInt32LE checks its argument through wrappers that allocate,
// and a statx decodes some 40 fields.
const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

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
  return view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 0x100000000;
}

/** struct statx_timestamp { s64 tv_sec; u32 tv_nsec; }: the seconds as a number. */
function sec(offset: number): number {
  return view.getUint32(offset, true) + view.getInt32(offset + 4, true) * 0x100000000;
}

function ns(offset: number): bigint {
  const s = sec(offset);
  // Seconds past 2^53 (tmpfs keeps any s64) are read again exactly.
  return (Number.isSafeInteger(s) ? BigInt(s) : view.getBigInt64(offset, true)) * 1_000_000_000n + BigInt(view.getUint32(offset + 8, true));
}

function ms(offset: number): number {
  return sec(offset) * 1000 + view.getUint32(offset + 8, true) / 1e6;
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
  const hasBirth = (view.getUint32(0, true) & STATX_BTIME) !== 0;
  s.dev = makedev(view.getUint32(136, true), view.getUint32(140, true));
  s.ino = u64(32);
  s.mode = view.getUint16(28, true);
  s.nlink = view.getUint32(16, true);
  s.uid = view.getUint32(20, true);
  s.gid = view.getUint32(24, true);
  s.rdev = makedev(view.getUint32(128, true), view.getUint32(132, true));
  s.size = u64(40);
  if (!Number.isSafeInteger(s.size)) s.sizeExact = view.getBigUint64(40, true);
  else if (s.sizeExact !== undefined) delete s.sizeExact;
  s.blksize = view.getUint32(4, true);
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
