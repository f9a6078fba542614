// The FUSE wire protocol of /usr/include/linux/fuse.h (7.38): opcodes, flags, struct sizes, and one small
// decoder or encoder per struct. All little-endian (x86-64/aarch64 Linux), all offsets in bytes.
//
// u64 fields are read into JS numbers: node ids and handles are ours to choose. File offsets and sizes are
// read exactly (readOffset: a bigint past 2^53). Inode numbers, which the layers choose, may be given as bigint.

import { nameFromRange, nameToBytes } from '../names.js';
import type { AttrOut, EntryOut, FileOffset, FuseAttr, InHeader, InitIn, InitOut, OpenOut, RenameIn, SetattrIn, StatfsOut, StatxOut, Timespec } from './structs.js';

export const FUSE_KERNEL_VERSION = 7;
/** The newest minor whose structs this file encodes; we reply with min(kernel's, this). */
export const FUSE_KERNEL_MINOR_VERSION = 38;
/** The oldest minor we speak: 7.31 brought the 64-byte init_out, max_pages and explicit inval data. */
export const FUSE_MIN_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  /** 7.39: statx(2) with the birth time; a kernel that gets ENOSYS once sends GETATTR from then on. */
  STATX: 52,
} as const;
type OpcodeName = keyof typeof Opcode;

const OPCODE_NAMES = new Map<number, OpcodeName>(
  (Object.entries(Opcode) as [OpcodeName, number][]).map(([name, code]) => [code, name]),
);
export function opcodeName(code: number): string {
  return OPCODE_NAMES.get(code) ?? `OPCODE_${code}`;
}

/** INIT flags (fuse_init_in/out.flags; bits 32.. travel in flags2 and are not used here). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  FILE_OPS: 1 << 2,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  HAS_IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  MAP_ALIGNMENT: 1 << 26,
  SUBMOUNTS: 1 << 27,
  HANDLE_KILLPRIV_V2: 1 << 28,
  SETXATTR_EXT: 1 << 29,
  INIT_EXT: 1 << 30,
  // 1 << 31 would be negative as an int32; keep the set unsigned.
  INIT_RESERVED: 0x80000000,
} as const;

const FopenFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
  PASSTHROUGH: 1 << 7,
} as const;

/** INIT flags of the second word (fuse_init_in/out.flags2: bit 32 + n of the 64-bit set). */
export const InitFlag2 = {
  /** FUSE_PASSTHROUGH (bit 37): opens may hand the kernel a backing file. */
  PASSTHROUGH: 1 << 5,
  /** FUSE_NO_EXPORT_SUPPORT (bit 38): file handles may be encoded as fids only, never opened. */
  NO_EXPORT_SUPPORT: 1 << 6,
} as const;

/** setattr valid bits. */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

const FUSE_GETATTR_FH = 1 << 0;
const FUSE_FSYNC_FDATASYNC = 1 << 0;

/** WRITE's write_flags: clear setuid/setgid as a write by the caller would (HANDLE_KILLPRIV_V2). */
export const WRITE_KILL_SUIDGID = 1 << 2;
/** OPEN's and CREATE's open_flags: the same for an O_TRUNC open. */
export const OPEN_KILL_SUIDGID = 1 << 0;

export const RENAME_NOREPLACE = 1 << 0;
export const RENAME_EXCHANGE = 1 << 1;
export const RENAME_WHITEOUT = 1 << 2;

export const NotifyCode = {
  POLL: 1,
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  STORE: 4,
  RETRIEVE: 5,
  DELETE: 6,
} as const;

// Struct sizes.
export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
const ATTR_SIZE = 88;
const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
const ATTR_OUT_SIZE = 16 + ATTR_SIZE;
const OPEN_OUT_SIZE = 16;
const WRITE_OUT_SIZE = 8;
const STATFS_OUT_SIZE = 80;
const INIT_OUT_SIZE = 64;
const GETXATTR_OUT_SIZE = 8;
const LSEEK_OUT_SIZE = 8;
const DIRENT_NAME_OFFSET = 24;
const DIRENTPLUS_NAME_OFFSET = ENTRY_OUT_SIZE + DIRENT_NAME_OFFSET;
const SETXATTR_IN_SIZE = 16;
const COMPAT_SETXATTR_IN_SIZE = 8;

const TWO32 = 0x1_0000_0000;

// ---------------------------------------------------------------------------------------------------------
// Primitive readers and writers.
//
// Through a DataView, taken once per decoder or encoder, not Buffer's readUInt32LE and kin: those check
// every argument through wrappers that allocate, and a request reads and writes dozens of fields.
// Between two requests of a container's loop the daemon's caches are cold, and there each of those calls
// cost microseconds. The request buffers and the reply buffers are reused, so each keeps its view.

const views = new WeakMap<Uint8Array, DataView>();

function view(buf: Uint8Array): DataView {
  let v = views.get(buf);
  if (v === undefined) {
    v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    views.set(buf, v);
  }
  return v;
}

function getU64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO32;
}

function getI64(v: DataView, off: number): FileOffset {
  const n = v.getUint32(off, true) + v.getInt32(off + 4, true) * TWO32;
  return Number.isSafeInteger(n) ? n : v.getBigInt64(off, true);
}

function getOffset(v: DataView, off: number): FileOffset {
  const high = v.getUint32(off + 4, true);
  return high < 0x20_0000 ? v.getUint32(off, true) + high * TWO32 : v.getBigUint64(off, true);
}

function putU64(v: DataView, off: number, n: number | bigint): void {
  if (typeof n === 'bigint') {
    v.setBigUint64(off, BigInt.asUintN(64, n), true);
  } else if (n >= 0 && n < TWO32) {
    v.setUint32(off, n, true);
    v.setUint32(off + 4, 0, true);
  } else if (n >= 0) {
    v.setUint32(off, n % TWO32, true);
    v.setUint32(off + 4, Math.floor(n / TWO32), true);
  } else {
    v.setBigUint64(off, BigInt.asUintN(64, BigInt(Math.trunc(n))), true);
  }
}

export function readU64(buf: Buffer, off: number): number {
  return getU64(view(buf), off);
}

/** An s64 the kernel sends as u64 (an lseek offset): negative in two's complement; a bigint past 2^53. */
export function readI64(buf: Buffer, off: number): FileOffset {
  return getI64(view(buf), off);
}

/** A file offset or size (u64, at most 2^63 - 1 from the kernel): a number below 2^53, a bigint from there on. */
export function readOffset(buf: Buffer, off: number): FileOffset {
  return getOffset(view(buf), off);
}

export function writeU64(buf: Buffer, off: number, n: number | bigint): void {
  putU64(view(buf), off, n);
}

/** A NUL-terminated name starting at `off`; returns the string and the offset after the NUL. */
export function readName(buf: Buffer, off: number, end: number): [string, number] {
  // A loop, not buf.indexOf: a call into C++, which costs more than the scan for a name's few bytes.
  let nul = off;
  while (nul < end && buf[nul] !== 0) nul++;
  return [nameFromRange(buf, off, nul), nul + 1];
}

const align8 = (n: number): number => (n + 7) & ~7;

/** Splits a timeout in seconds into the (u64 seconds, u32 nanoseconds) pair the kernel wants. */
function writeTimeout(v: DataView, secOff: number, nsecOff: number, seconds: number): void {
  const s = seconds > 0 ? seconds : 0;
  const whole = Math.floor(s);
  putU64(v, secOff, whole);
  v.setUint32(nsecOff, Math.min(999_999_999, Math.round((s - whole) * 1e9)), true);
}

// ---------------------------------------------------------------------------------------------------------
// Headers.

export function decodeInHeader(buf: Buffer): InHeader {
  const v = view(buf);
  return {
    len: v.getUint32(0, true),
    opcode: v.getUint32(4, true),
    unique: v.getBigUint64(8, true),
    nodeid: getU64(v, 16),
    uid: v.getUint32(24, true),
    gid: v.getUint32(28, true),
    pid: v.getUint32(32, true),
    extLen: v.getUint16(36, true) * 8,
  };
}

/** A header with room for `bodyLen` bytes after it; `error` is a negative errno or 0. */
export function encodeOutHeader(buf: Buffer, len: number, error: number, unique: bigint): void {
  const v = view(buf);
  v.setUint32(0, len, true);
  v.setInt32(4, error, true);
  v.setBigUint64(8, unique, true);
}

/**
 * Reply buffers, one per size, reused and zeroed for each reply: the server writes every reply before it
 * builds the next, and the fixed-size replies come in a few sizes. A fresh buffer of more than 64 bytes
 * is an allocation outside V8's heap (and a view of its own), and fill() a call into C++: cold, each cost
 * more than the loop. Notifications, which may wait in a queue, are built in fresh buffers (zeroed).
 */
const replies = new Map<number, Buffer>();

function replyBuffer(size: number): Buffer {
  const buf = replies.get(size);
  if (buf === undefined) {
    const fresh = Buffer.alloc(size);
    replies.set(size, fresh);
    views.set(fresh, new DataView(fresh.buffer, fresh.byteOffset, size));
    return fresh;
  }
  for (let i = 0; i < size; i++) buf[i] = 0;
  return buf;
}

function zeroed(size: number): Buffer {
  return Buffer.alloc(size);
}

/** A zeroed reply with its header, valid until the next reply of the same size is built. */
export function allocReply(unique: bigint, bodyLen: number): Buffer {
  const buf = replyBuffer(OUT_HEADER_SIZE + bodyLen);
  encodeOutHeader(buf, buf.length, 0, unique);
  return buf;
}

/** The header of a reply whose `dataLen` bytes are written after it from elsewhere (writev). */
export function encodeDataHeader(unique: bigint, dataLen: number): Buffer {
  const buf = replyBuffer(OUT_HEADER_SIZE);
  encodeOutHeader(buf, OUT_HEADER_SIZE + dataLen, 0, unique);
  return buf;
}

export function encodeError(unique: bigint, errno: number): Buffer {
  const buf = replyBuffer(OUT_HEADER_SIZE);
  encodeOutHeader(buf, OUT_HEADER_SIZE, -Math.abs(errno), unique);
  return buf;
}

// ---------------------------------------------------------------------------------------------------------
// INIT.

export function decodeInitIn(buf: Buffer, off: number, end: number): InitIn {
  const v = view(buf);
  return {
    major: v.getUint32(off, true),
    minor: v.getUint32(off + 4, true),
    maxReadahead: end - off >= 12 ? v.getUint32(off + 8, true) : 0,
    flags: end - off >= 16 ? v.getUint32(off + 12, true) : 0,
    // flags2 exists from 7.36 and only means anything when the kernel sets INIT_EXT.
    flags2: end - off >= 20 ? v.getUint32(off + 16, true) : 0,
  };
}

export function encodeInitOut(unique: bigint, o: InitOut): Buffer {
  const buf = allocReply(unique, INIT_OUT_SIZE);
  const v = view(buf);
  const b = OUT_HEADER_SIZE;
  v.setUint32(b, o.major, true);
  v.setUint32(b + 4, o.minor, true);
  v.setUint32(b + 8, o.maxReadahead, true);
  v.setUint32(b + 12, o.flags >>> 0, true);
  v.setUint16(b + 16, o.maxBackground, true);
  v.setUint16(b + 18, o.congestionThreshold, true);
  v.setUint32(b + 20, o.maxWrite, true);
  v.setUint32(b + 24, o.timeGran, true);
  v.setUint16(b + 28, o.maxPages, true);
  v.setUint16(b + 30, 0, true); // map_alignment: DAX only
  v.setUint32(b + 32, (o.flags2 ?? 0) >>> 0, true);
  v.setUint32(b + 36, o.maxStackDepth ?? 0, true);
  return buf;
}

// ---------------------------------------------------------------------------------------------------------
// Attributes and entries.

/** Writes struct fuse_attr (88 bytes) at `off`. */
function writeAttr(v: DataView, off: number, a: FuseAttr): void {
  putU64(v, off, a.ino);
  putU64(v, off + 8, a.size);
  putU64(v, off + 16, a.blocks);
  putU64(v, off + 24, a.atime);
  putU64(v, off + 32, a.mtime);
  putU64(v, off + 40, a.ctime);
  v.setUint32(off + 48, a.atimensec >>> 0, true);
  v.setUint32(off + 52, a.mtimensec >>> 0, true);
  v.setUint32(off + 56, a.ctimensec >>> 0, true);
  v.setUint32(off + 60, a.mode >>> 0, true);
  v.setUint32(off + 64, a.nlink >>> 0, true);
  v.setUint32(off + 68, a.uid >>> 0, true);
  v.setUint32(off + 72, a.gid >>> 0, true);
  v.setUint32(off + 76, a.rdev >>> 0, true);
  v.setUint32(off + 80, a.blksize >>> 0, true);
  v.setUint32(off + 84, (a.flags ?? 0) >>> 0, true);
}

export interface Timeouts {
  entry: number;
  attr: number;
}

/** Writes struct fuse_entry_out (128 bytes) at `off`. */
function writeEntryOut(v: DataView, off: number, e: EntryOut, t: Timeouts): void {
  putU64(v, off, e.nodeid);
  putU64(v, off + 8, e.generation ?? 0);
  writeTimeout(v, off + 16, off + 32, e.entryTimeout ?? t.entry);
  writeTimeout(v, off + 24, off + 36, e.attrTimeout ?? t.attr);
  writeAttr(v, off + 40, e.attr);
}

export function encodeEntryOut(unique: bigint, e: EntryOut, t: Timeouts): Buffer {
  const buf = allocReply(unique, ENTRY_OUT_SIZE);
  const v = view(buf);
  writeEntryOut(v, OUT_HEADER_SIZE, e, t);
  return buf;
}

export function encodeAttrOut(unique: bigint, a: AttrOut, t: Timeouts): Buffer {
  const buf = allocReply(unique, ATTR_OUT_SIZE);
  const v = view(buf);
  writeTimeout(v, OUT_HEADER_SIZE, OUT_HEADER_SIZE + 8, a.attrTimeout ?? t.attr);
  writeAttr(v, OUT_HEADER_SIZE + 16, a.attr);
  return buf;
}

const STATX_OUT_SIZE = 32 + 256;
const STATX_BASIC_STATS = 0x7ff;
const STATX_BTIME = 0x800;

/** fuse_sx_time: s64 seconds, u32 nanoseconds, s32 reserved. */
function writeSxTime(v: DataView, off: number, sec: number | bigint, nsec: number): void {
  v.setBigInt64(off, BigInt(sec), true);
  v.setUint32(off + 8, nsec >>> 0, true);
}

/**
 * fuse_statx_out: the timeout, then a fuse_statx (struct statx's first 144 bytes). Every basic field is
 * given, or the kernel would not update the attributes it keeps; the birth time when there is one.
 * st_rdev goes back into major and minor the way the kernel's new_decode_dev reads fuse_attr's.
 */
export function encodeStatxOut(unique: bigint, s: StatxOut, t: Timeouts): Buffer {
  const buf = allocReply(unique, STATX_OUT_SIZE);
  const v = view(buf);
  writeTimeout(v, OUT_HEADER_SIZE, OUT_HEADER_SIZE + 8, s.attrTimeout ?? t.attr);
  const off = OUT_HEADER_SIZE + 32;
  const a = s.attr;
  v.setUint32(off, STATX_BASIC_STATS | (s.btime !== undefined ? STATX_BTIME : 0), true);
  v.setUint32(off + 4, a.blksize >>> 0, true);
  putU64(v, off + 8, s.attributes ?? 0);
  v.setUint32(off + 16, a.nlink >>> 0, true);
  v.setUint32(off + 20, a.uid >>> 0, true);
  v.setUint32(off + 24, a.gid >>> 0, true);
  v.setUint16(off + 28, a.mode & 0xffff, true);
  putU64(v, off + 32, a.ino);
  putU64(v, off + 40, a.size);
  putU64(v, off + 48, a.blocks);
  putU64(v, off + 56, s.attributesMask ?? 0);
  writeSxTime(v, off + 64, a.atime, a.atimensec);
  if (s.btime !== undefined) writeSxTime(v, off + 80, s.btime.sec, s.btime.nsec);
  writeSxTime(v, off + 96, a.ctime, a.ctimensec);
  writeSxTime(v, off + 112, a.mtime, a.mtimensec);
  v.setUint32(off + 128, (a.rdev & 0xfff00) >>> 8, true);
  v.setUint32(off + 132, ((a.rdev & 0xff) | ((a.rdev >>> 12) & 0xfff00)) >>> 0, true);
  return buf;
}

/** fuse_statx_in: the handle (FUSE_GETATTR_FH), statx's sync flags and the fields asked for. */
export function decodeStatxIn(buf: Buffer, off: number): { fh: number | undefined; sxFlags: number; sxMask: number } {
  const v = view(buf);
  const flags = v.getUint32(off, true);
  return { fh: flags & FUSE_GETATTR_FH ? getU64(v, off + 8) : undefined, sxFlags: v.getUint32(off + 16, true), sxMask: v.getUint32(off + 20, true) };
}

export function openFlags(o: OpenOut): number {
  let f = o.flags ?? 0;
  if (o.directIo) f |= FopenFlag.DIRECT_IO;
  if (o.keepCache) f |= FopenFlag.KEEP_CACHE;
  if (o.nonseekable) f |= FopenFlag.NONSEEKABLE;
  if (o.cacheDir) f |= FopenFlag.CACHE_DIR;
  if (o.backingId !== undefined) f |= FopenFlag.PASSTHROUGH;
  return f;
}

function writeOpenOut(v: DataView, off: number, o: OpenOut): void {
  putU64(v, off, o.fh);
  v.setUint32(off + 8, openFlags(o) >>> 0, true);
  v.setInt32(off + 12, o.backingId ?? 0, true);
}

export function encodeOpenOut(unique: bigint, o: OpenOut): Buffer {
  const buf = allocReply(unique, OPEN_OUT_SIZE);
  const v = view(buf);
  writeOpenOut(v, OUT_HEADER_SIZE, o);
  return buf;
}

/** CREATE replies with fuse_entry_out followed by fuse_open_out. */
export function encodeCreateOut(unique: bigint, e: EntryOut, o: OpenOut, t: Timeouts): Buffer {
  const buf = allocReply(unique, ENTRY_OUT_SIZE + OPEN_OUT_SIZE);
  const v = view(buf);
  writeEntryOut(v, OUT_HEADER_SIZE, e, t);
  writeOpenOut(v, OUT_HEADER_SIZE + ENTRY_OUT_SIZE, o);
  return buf;
}

export function encodeWriteOut(unique: bigint, size: number): Buffer {
  const buf = allocReply(unique, WRITE_OUT_SIZE);
  const v = view(buf);
  v.setUint32(OUT_HEADER_SIZE, size >>> 0, true);
  return buf;
}

export function encodeStatfsOut(unique: bigint, s: StatfsOut): Buffer {
  const buf = allocReply(unique, STATFS_OUT_SIZE);
  const v = view(buf);
  const b = OUT_HEADER_SIZE;
  putU64(v, b, s.blocks);
  putU64(v, b + 8, s.bfree);
  putU64(v, b + 16, s.bavail);
  putU64(v, b + 24, s.files);
  putU64(v, b + 32, s.ffree);
  v.setUint32(b + 40, s.bsize >>> 0, true);
  v.setUint32(b + 44, s.namelen >>> 0, true);
  v.setUint32(b + 48, s.frsize >>> 0, true);
  return buf;
}

/** The reply to a getxattr/listxattr size probe (request size 0): just the size needed. */
export function encodeXattrSize(unique: bigint, size: number): Buffer {
  const buf = allocReply(unique, GETXATTR_OUT_SIZE);
  const v = view(buf);
  v.setUint32(OUT_HEADER_SIZE, size >>> 0, true);
  return buf;
}

export function encodeLseekOut(unique: bigint, offset: FileOffset): Buffer {
  const buf = allocReply(unique, LSEEK_OUT_SIZE);
  const v = view(buf);
  putU64(v, OUT_HEADER_SIZE, offset);
  return buf;
}

/** listxattr's value: each name NUL-terminated, back to back. */
export function encodeXattrNames(names: readonly string[]): Buffer {
  return Buffer.from(names.map((n) => `${n}\0`).join(''), 'utf8');
}

// ---------------------------------------------------------------------------------------------------------
// Directory entries: fuse_dirent / fuse_direntplus, each padded to 8 bytes.

export function direntSize(nameLen: number): number {
  return align8(DIRENT_NAME_OFFSET + nameLen);
}

export function direntplusSize(nameLen: number): number {
  return align8(DIRENTPLUS_NAME_OFFSET + nameLen);
}

/** S_IFMT bits → the DT_* type fuse_dirent carries. */
function modeToDirentType(mode: number): number {
  return (mode & 0o170000) >>> 12;
}

/** Writes a fuse_dirent at `off` (zeroing the padding); returns the offset after it. */
export function writeDirent(buf: Buffer, off: number, ino: number | bigint, next: number, type: number, name: Buffer): number {
  const v = view(buf);
  putU64(v, off, ino);
  putU64(v, off + 8, next);
  v.setUint32(off + 16, name.length, true);
  v.setUint32(off + 20, modeToDirentType(type), true);
  name.copy(buf, off + DIRENT_NAME_OFFSET);
  const end = off + direntSize(name.length);
  buf.fill(0, off + DIRENT_NAME_OFFSET + name.length, end);
  return end;
}

/**
 * Writes a fuse_direntplus at `off`: a fuse_entry_out (all zero when `entry` is null, which the kernel
 * takes as "name only") then a fuse_dirent. Returns the offset after it.
 */
export function writeDirentplus(
  buf: Buffer,
  off: number,
  entry: EntryOut | null,
  t: Timeouts,
  ino: number | bigint,
  next: number,
  type: number,
  name: Buffer,
): number {
  const v = view(buf);
  if (entry) writeEntryOut(v, off, entry, t);
  else buf.fill(0, off, off + ENTRY_OUT_SIZE);
  return writeDirent(buf, off + ENTRY_OUT_SIZE, ino, next, type, name);
}

// ---------------------------------------------------------------------------------------------------------
// Request bodies. Each decoder takes the request buffer and the offset of the body (after the header).

export function decodeForget(buf: Buffer, off: number): number {
  const v = view(buf);
  return getU64(v, off);
}

export function decodeBatchForget(buf: Buffer, off: number, end: number): Array<[nodeid: number, nlookup: number]> {
  const v = view(buf);
  const count = v.getUint32(off, true);
  const out: Array<[number, number]> = [];
  for (let i = 0, p = off + 8; i < count && p + 16 <= end; i++, p += 16) {
    out.push([getU64(v, p), getU64(v, p + 8)]);
  }
  return out;
}

export function decodeGetattrIn(buf: Buffer, off: number, end: number): number | undefined {
  const v = view(buf);
  if (end - off < 16) return undefined;
  const flags = v.getUint32(off, true);
  return flags & FUSE_GETATTR_FH ? getU64(v, off + 8) : undefined;
}

/** The seconds are an s64, exact: before 1970 they are negative, and tmpfs keeps any of them. */
function timespec(v: DataView, secOff: number, nsecOff: number): Timespec {
  return { sec: v.getBigInt64(secOff, true), nsec: v.getUint32(nsecOff, true) };
}

export function decodeSetattrIn(buf: Buffer, off: number): SetattrIn {
  const v = view(buf);
  const valid = v.getUint32(off, true);
  const out: SetattrIn = { valid };
  if (valid & Fattr.FH) out.fh = getU64(v, off + 8);
  if (valid & Fattr.SIZE) out.size = getOffset(v, off + 16);
  if (valid & Fattr.ATIME_NOW) out.atime = 'now';
  else if (valid & Fattr.ATIME) out.atime = timespec(v, off + 32, off + 56);
  if (valid & Fattr.MTIME_NOW) out.mtime = 'now';
  else if (valid & Fattr.MTIME) out.mtime = timespec(v, off + 40, off + 60);
  if (valid & Fattr.CTIME) out.ctime = timespec(v, off + 48, off + 64);
  if (valid & Fattr.MODE) out.mode = v.getUint32(off + 68, true);
  if (valid & Fattr.UID) out.uid = v.getUint32(off + 76, true);
  if (valid & Fattr.GID) out.gid = v.getUint32(off + 80, true);
  if (valid & Fattr.KILL_SUIDGID) out.killSuidgid = true;
  return out;
}

export function decodeSymlink(buf: Buffer, off: number, end: number): { name: string; target: string } {
  const [name, p] = readName(buf, off, end);
  const [target] = readName(buf, p, end);
  return { name, target };
}

export function decodeMknodIn(buf: Buffer, off: number, end: number): { mode: number; rdev: number; umask: number; name: string } {
  const v = view(buf);
  return {
    mode: v.getUint32(off, true),
    rdev: v.getUint32(off + 4, true),
    umask: v.getUint32(off + 8, true),
    name: readName(buf, off + 16, end)[0],
  };
}

export function decodeMkdirIn(buf: Buffer, off: number, end: number): { mode: number; umask: number; name: string } {
  const v = view(buf);
  return { mode: v.getUint32(off, true), umask: v.getUint32(off + 4, true), name: readName(buf, off + 8, end)[0] };
}

/** RENAME (fuse_rename_in, 8 bytes) or RENAME2 (fuse_rename2_in, 16 bytes), then old\0new\0. */
export function decodeRenameIn(buf: Buffer, off: number, end: number, v2: boolean): RenameIn {
  const v = view(buf);
  const newDir = getU64(v, off);
  const flags = v2 ? v.getUint32(off + 8, true) : 0;
  const [oldName, p] = readName(buf, off + (v2 ? 16 : 8), end);
  const [newName] = readName(buf, p, end);
  return { newDir, flags, oldName, newName };
}

export function decodeLinkIn(buf: Buffer, off: number, end: number): { oldNodeid: number; name: string } {
  const v = view(buf);
  return { oldNodeid: getU64(v, off), name: readName(buf, off + 8, end)[0] };
}

/** fuse_open_in: open(2) flags and FUSE_OPEN_* flags. */
export function decodeOpenIn(buf: Buffer, off: number): { flags: number; openFlags: number } {
  const v = view(buf);
  return { flags: v.getUint32(off, true), openFlags: v.getUint32(off + 4, true) };
}

export function decodeCreateIn(
  buf: Buffer,
  off: number,
  end: number,
): { flags: number; mode: number; umask: number; openFlags: number; name: string } {
  const v = view(buf);
  return {
    flags: v.getUint32(off, true),
    mode: v.getUint32(off + 4, true),
    umask: v.getUint32(off + 8, true),
    openFlags: v.getUint32(off + 12, true),
    name: readName(buf, off + 16, end)[0],
  };
}

export function decodeReleaseIn(buf: Buffer, off: number): { fh: number; flags: number; releaseFlags: number; lockOwner: bigint } {
  const v = view(buf);
  return {
    fh: getU64(v, off),
    flags: v.getUint32(off + 8, true),
    releaseFlags: v.getUint32(off + 12, true),
    lockOwner: v.getBigUint64(off + 16, true),
  };
}

export function decodeFlushIn(buf: Buffer, off: number): { fh: number; lockOwner: bigint } {
  const v = view(buf);
  return { fh: getU64(v, off), lockOwner: v.getBigUint64(off + 16, true) };
}

/** fuse_read_in of a READ. */
export function decodeReadIn(buf: Buffer, off: number): { fh: number; offset: FileOffset; size: number; readFlags: number; flags: number } {
  const v = view(buf);
  return {
    fh: getU64(v, off),
    offset: getOffset(v, off + 8),
    size: v.getUint32(off + 16, true),
    readFlags: v.getUint32(off + 20, true),
    flags: v.getUint32(off + 32, true),
  };
}

/** fuse_read_in of a READDIR or READDIRPLUS: the offset is a cookie of our own, a small number. */
export function decodeReaddirIn(buf: Buffer, off: number): { fh: number; offset: number; size: number } {
  const v = view(buf);
  return { fh: getU64(v, off), offset: getU64(v, off + 8), size: v.getUint32(off + 16, true) };
}

/** fuse_write_in then the data. The data is a view of `buf`, valid until the next read. */
export function decodeWriteIn(
  buf: Buffer,
  off: number,
  end: number,
): { fh: number; offset: FileOffset; size: number; writeFlags: number; flags: number; data: Buffer } {
  const v = view(buf);
  const size = v.getUint32(off + 16, true);
  const start = off + 40;
  return {
    fh: getU64(v, off),
    offset: getOffset(v, off + 8),
    size,
    writeFlags: v.getUint32(off + 20, true),
    flags: v.getUint32(off + 32, true),
    data: buf.subarray(start, Math.min(end, start + size)),
  };
}

export function decodeFsyncIn(buf: Buffer, off: number): { fh: number; datasync: boolean } {
  const v = view(buf);
  return { fh: getU64(v, off), datasync: (v.getUint32(off + 8, true) & FUSE_FSYNC_FDATASYNC) !== 0 };
}

/** fuse_setxattr_in is 16 bytes with SETXATTR_EXT negotiated, else the 8-byte compat form. */
export function decodeSetxattrIn(
  buf: Buffer,
  off: number,
  end: number,
  ext: boolean,
): { name: string; value: Buffer; flags: number; setxattrFlags: number } {
  const v = view(buf);
  const size = v.getUint32(off, true);
  const flags = v.getUint32(off + 4, true);
  const setxattrFlags = ext ? v.getUint32(off + 8, true) : 0;
  const [name, p] = readName(buf, off + (ext ? SETXATTR_IN_SIZE : COMPAT_SETXATTR_IN_SIZE), end);
  return { name, flags, setxattrFlags, value: buf.subarray(p, Math.min(end, p + size)) };
}

/** fuse_getxattr_in (also LISTXATTR, without the name). `size` 0 is a size probe. */
export function decodeGetxattrIn(buf: Buffer, off: number, end: number, withName: boolean): { size: number; name: string } {
  const v = view(buf);
  return { size: v.getUint32(off, true), name: withName ? readName(buf, off + 8, end)[0] : '' };
}

export function decodeAccessIn(buf: Buffer, off: number): number {
  const v = view(buf);
  return v.getUint32(off, true);
}

export function decodeFallocateIn(buf: Buffer, off: number): { fh: number; offset: FileOffset; length: FileOffset; mode: number } {
  const v = view(buf);
  return { fh: getU64(v, off), offset: getOffset(v, off + 8), length: getOffset(v, off + 16), mode: v.getUint32(off + 24, true) };
}

export function decodeLseekIn(buf: Buffer, off: number): { fh: number; offset: FileOffset; whence: number } {
  const v = view(buf);
  // Signed: SEEK_DATA/SEEK_HOLE from a negative offset reach the file system, which answers ENXIO.
  return { fh: getU64(v, off), offset: getI64(v, off + 8), whence: v.getUint32(off + 16, true) };
}

/** fuse_ioctl_in (32 bytes), then `in_size` bytes of input; `outSize` bytes of output are expected back. */
export function decodeIoctlIn(buf: Buffer, off: number, end: number): { fh: number; flags: number; cmd: number; input: Buffer; outSize: number } {
  const v = view(buf);
  const inSize = v.getUint32(off + 24, true);
  const input = buf.subarray(off + 32, Math.min(end, off + 32 + inSize));
  return { fh: getU64(v, off), flags: v.getUint32(off + 8, true), cmd: v.getUint32(off + 12, true), input, outSize: v.getUint32(off + 28, true) };
}

/** fuse_ioctl_out (result, no retry, no iovecs), then the output bytes. */
export function encodeIoctlOut(unique: bigint, result: number, output: Uint8Array): Buffer {
  // Fresh: the output's length varies, and replyBuffer keeps one buffer per size.
  const buf = zeroed(OUT_HEADER_SIZE + 16 + output.length);
  const v = view(buf);
  encodeOutHeader(buf, buf.length, 0, unique);
  v.setInt32(OUT_HEADER_SIZE, result, true);
  buf.set(output, OUT_HEADER_SIZE + 16);
  return buf;
}

export function decodeCopyFileRangeIn(
  buf: Buffer,
  off: number,
): { fhIn: number; offIn: FileOffset; nodeidOut: number; fhOut: number; offOut: FileOffset; len: number; flags: number } {
  const v = view(buf);
  return {
    fhIn: getU64(v, off),
    offIn: getOffset(v, off + 8),
    nodeidOut: getU64(v, off + 16),
    fhOut: getU64(v, off + 24),
    offOut: getOffset(v, off + 32),
    len: getU64(v, off + 40),
    flags: getU64(v, off + 48),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Notifications: unsolicited messages with unique 0 and the notify code in the error field.

export function encodeNotifyInvalInode(nodeid: number, offset: number, length: number): Buffer {
  const buf = zeroed(OUT_HEADER_SIZE + 24);
  const v = view(buf);
  encodeOutHeader(buf, buf.length, NotifyCode.INVAL_INODE, 0n);
  putU64(v, OUT_HEADER_SIZE, nodeid);
  putU64(v, OUT_HEADER_SIZE + 8, offset);
  putU64(v, OUT_HEADER_SIZE + 16, length);
  return buf;
}

/** The kernel wants the name NUL-terminated after fuse_notify_inval_entry_out. */
export function encodeNotifyInvalEntry(parent: number, name: string): Buffer {
  const nameBuf = nameToBytes(name);
  const buf = zeroed(OUT_HEADER_SIZE + 16 + nameBuf.length + 1);
  const v = view(buf);
  encodeOutHeader(buf, buf.length, NotifyCode.INVAL_ENTRY, 0n);
  putU64(v, OUT_HEADER_SIZE, parent);
  v.setUint32(OUT_HEADER_SIZE + 8, nameBuf.length, true);
  nameBuf.copy(buf, OUT_HEADER_SIZE + 16);
  return buf;
}
