// Open files (the kernel's file.c). An open overlay file holds the real file that was current when
// it was opened. Every operation takes its real file from `realFile()`, the one choke point (the
// kernel's ovl_real_fdget): if the node's data moved since (a copy-up by any path or handle), the
// file re-binds itself to the new real file once, and every later call goes straight through. The
// check is one integer comparison, so a re-bound handle costs what a fresh one does.
import { constants } from 'node:fs';
import { errorCode, fsError } from '../errors.js';
import {
  FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_UNSHARE_RANGE,
  FALLOC_FL_WRITE_ZEROES, FALLOC_FL_ZERO_RANGE, O_ACCMODE, S_IFDIR, SEEK_DATA, SEEK_HOLE, advanceOffset as advance, type FileOffset, type RealFile,
} from '../layer/types.js';
import { DirLayer } from '../layer/dir-layer.js';
import { refuseImmutableTarget, refuseProtectedAllocate } from './attr-flags.js';
import type { OverlayContext } from './context.js';
import type { OvlNode } from './node.js';
import { SharedReads, type SharedRead } from './shared-read.js';

const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_TRUNC, O_DIRECTORY, O_NOATIME } = constants;
/** Flags that make no difference to a reading open's real file: such opens of a lower file share one. */
const SHARE_NEUTRAL = O_NOATIME;

/** What the faces may read of an open overlay file; everything else stays inside src/overlay. */
export interface OpenFile {
  readonly flags: number;
  readonly readable: boolean;
  readonly writable: boolean;
  readonly closed: boolean;
  /** Opened on a directory (no data). */
  readonly isDirectory: boolean;
}

export class OvlFile implements OpenFile {
  /** The real file in use; replaced by realFile() after a copy-up. */
  real: RealFile | undefined;
  /** The node's dataGen that `real` belongs to. */
  boundGen: number;
  /** Set when `real` is shared with the node's other reading opens (shared-read.ts). */
  shared: SharedRead | undefined;
  /** The file position for reads and writes without an explicit one: a bigint past 2^53, as any offset. */
  position: FileOffset = 0;
  closed = false;
  readonly readable: boolean;
  readonly writable: boolean;
  readonly append: boolean;

  constructor(readonly ctx: OverlayContext, readonly node: OvlNode, readonly flags: number, real: RealFile | undefined) {
    this.real = real;
    this.boundGen = node.dataGen;
    const access = flags & O_ACCMODE;
    this.readable = access !== O_WRONLY;
    this.writable = access !== O_RDONLY;
    this.append = (flags & O_APPEND) !== 0;
    // An open file keeps its node cached: a later lookup of its name must give this node.
    ctx.pin(node);
    if (node.unnamed !== undefined) node.unnamed.opens++;
    // Only a file whose data may still move up needs tracking.
    if (!node.isDir && (node.upper === undefined || node.upper.metacopy)) (node.openFiles ??= new Set()).add(this);
  }

  get isDirectory(): boolean { return this.node.isDir; }
}

/** The flags to open a real file with: creation is the overlay's business, not the real file's. */
function realFlags(flags: number): number {
  return flags & ~(O_CREAT | O_EXCL | O_TRUNC);
}

/**
 * Reads touch atimes as the kernel's overlay lets them: a lower file's never (its real file opens with
 * O_NOATIME, as ovl_open_realfile's does), none with noatime, and an upper file's by the overlay's
 * atime rule, which the upper layer's private mount clone carries (DirLayer's `atime`; without the
 * privilege to clone, the host mount's rule). O_NOATIME needs the file's owner or CAP_FOWNER; without
 * either, the read may touch the atime, as the kernel's would. An upper file read through the clone is
 * opened without it even under noatime: the clone's flags say it, and a remount changes them for files
 * open already.
 */
function openReal(ctx: OverlayContext, node: OvlNode, flags: number): RealFile {
  const { layer, rel } = ctx.dataRef(node);
  if (layer === ctx.upper && (ctx.atime !== 'noatime' || (layer instanceof DirLayer && layer.atimeByClone))) return layer.open(rel, flags);
  try {
    return layer.open(rel, flags | O_NOATIME);
  } catch (err) {
    if (errorCode(err) !== 'EPERM') throw err;
    return layer.open(rel, flags);
  }
}

/**
 * The choke point: the real file that is current for `file`. Every file operation comes here and
 * nowhere else, so a handle opened before a copy-up reads what was written after it.
 */
export function realFile(file: OvlFile, syscall: string): RealFile {
  if (file.closed) throw fsError('EBADF', syscall);
  if (file.boundGen !== file.node.dataGen) rebind(file);
  const real = file.real;
  if (real === undefined) throw fsError('EISDIR', syscall, file.node.path());
  return real;
}

function rebind(file: OvlFile): void {
  const old = file.real;
  const shared = file.shared;
  file.real = openReal(file.ctx, file.node, realFlags(file.flags));
  file.shared = undefined;
  file.boundGen = file.node.dataGen;
  // Bound to the upper file now; nothing can move its data again, so stop tracking it.
  file.node.openFiles?.delete(file);
  if (shared !== undefined) file.ctx.sharedReads!.release(shared);
  else if (old !== undefined) retire(old);
}

const DAY_NS = 86_400n * 1_000_000_000n;

/**
 * Whether a read of `file` now would update its atime by the overlay's rule (the kernel's
 * atime_needs_update and relatime_need_update): a FUSE mount must then let the read reach the real
 * file rather than answer it from the kernel's page cache.
 */
export function readUpdatesAtime(file: OvlFile): boolean {
  const { ctx, node } = file;
  if (ctx.atime === 'noatime' || (file.flags & O_NOATIME) !== 0 || !file.readable) return false;
  const real = realFile(file, 'read');
  if (ctx.dataRef(node).layer !== ctx.upper) return false;
  if (ctx.atime === 'strictatime') return true;
  const st = real.stat();
  if (st.atimeNs <= st.mtimeNs || st.atimeNs <= st.ctimeNs) return true;
  return BigInt(Date.now()) * 1_000_000n - st.atimeNs >= DAY_NS;
}

/** A real file's host fd lent out for I/O off the core's thread; it stays open until released. */
export interface DataLease {
  readonly fd: number;
  release(): void;
}

/** Lent-out real files and how many leases each has; retired ones close when the last one ends. */
const leases = new Map<RealFile, { count: number; retired: boolean }>();

/** Closes a real file the core no longer uses, or lets its last lease close it. */
function retire(real: RealFile): void {
  const lease = leases.get(real);
  if (lease === undefined) real.close();
  else lease.retired = true;
}

/**
 * The current real file of `file` as a host fd that another thread may read or write at explicit
 * positions, through the choke point like every other file operation. Undefined when the real file
 * has no host fd (MemoryLayer): the caller then uses the synchronous calls. A copy-up or a close in
 * the meantime does not close the fd under the I/O; the next lease re-binds as usual.
 */
export function leaseData(file: OvlFile, access: 'read' | 'write'): DataLease | undefined {
  if (access === 'read' ? !file.readable : !file.writable) throw fsError('EBADF', access);
  const real = realFile(file, access);
  if (real.fd === undefined) return undefined;
  let lease = leases.get(real);
  if (lease === undefined) leases.set(real, lease = { count: 0, retired: false });
  lease.count++;
  let released = false;
  return {
    fd: real.fd,
    release(): void {
      if (released) return;
      released = true;
      if (--lease.count > 0) return;
      leases.delete(real);
      if (lease.retired) real.close();
    },
  };
}

/** A range of the file position taken for one read or write done off the core's thread. */
export interface PositionRange {
  /** Where the I/O starts. */
  readonly position: FileOffset;
  /** The I/O moved `bytes`: the position ends there (at the end of the file for O_APPEND). */
  done(bytes: number): void;
}

/**
 * Takes `length` bytes at the file position for I/O through a lease, as read(2) and write(2) move
 * the position: calls in the meantime start past the range, and `done` puts the position where the
 * I/O really ended (a short read) unless another call has moved it since.
 */
export function reservePosition(file: OvlFile, length: number): PositionRange {
  if (file.closed) throw fsError('EBADF', 'read');
  const start = file.position;
  const end = advance(start, length);
  file.position = end;
  return {
    position: start,
    done(bytes: number): void {
      if (file.closed || file.position !== end) return;
      // O_APPEND writes land at the end whatever the position; the position follows them there.
      file.position = file.append && file.real !== undefined ? sizeOf(file.real) : advance(start, bytes);
    },
  };
}

/**
 * Before a node's upper copy is unlinked or replaced, re-bind every open file that still holds an
 * older real file: afterwards the upper file can no longer be opened by name.
 */
export function settleOpenFiles(node: OvlNode): void {
  if (node.openFiles === undefined) return;
  for (const file of node.openFiles) {
    if (!file.closed && file.boundGen !== node.dataGen) rebind(file);
  }
}

/**
 * Opens an existing node. The caller has copied it up already when the flags write. `real`: the node's
 * data file already open with `flags` (a file its create made open).
 */
export function openNode(ctx: OverlayContext, node: OvlNode, flags: number, real?: RealFile): OvlFile {
  if (node.type === S_IFDIR) {
    if ((flags & O_ACCMODE) !== O_RDONLY) throw fsError('EISDIR', 'open', node.path());
    return new OvlFile(ctx, node, flags | O_DIRECTORY, undefined);
  }
  if ((flags & O_DIRECTORY) !== 0) throw fsError('ENOTDIR', 'open', node.path());
  const dataBelow = node.upper === undefined || node.upper.metacopy;
  if (real === undefined && dataBelow && (flags & ~SHARE_NEUTRAL) === O_RDONLY) return openShared(ctx, node, flags);
  return new OvlFile(ctx, node, flags, real ?? openReal(ctx, node, flags & ~(O_CREAT | O_EXCL)));
}

/** A reading open of a node whose data is below: on the real file its other reading opens share. */
function openShared(ctx: OverlayContext, node: OvlNode, flags: number): OvlFile {
  const reads = (ctx.sharedReads ??= new SharedReads(retire));
  const shared = reads.take(node) ?? reads.add(node, openReal(ctx, node, flags));
  const file = new OvlFile(ctx, node, flags, shared.real);
  file.shared = shared;
  return file;
}

export function closeFile(file: OvlFile): void {
  if (file.closed) throw fsError('EBADF', 'close');
  file.closed = true;
  file.node.openFiles?.delete(file);
  file.ctx.unpin(file.node);
  if (file.shared !== undefined) file.ctx.sharedReads!.release(file.shared);
  else if (file.real !== undefined) retire(file.real);
  file.real = undefined;
  file.shared = undefined;
  // An unnamed file closed for the last time leaves nothing in the work area (O_TMPFILE).
  const unnamed = file.node.unnamed;
  if (unnamed !== undefined && --unnamed.opens === 0) {
    file.node.unnamed = undefined;
    file.node.unlinked = true;
    file.ctx.upper!.removeTemp(file.node.upperRel());
  }
}

/** read(2)/pread(2): position null (or negative) reads at the file position and moves it. */
export function readData(file: OvlFile, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset | null): number {
  if (!file.readable) throw fsError('EBADF', 'read');
  const real = realFile(file, 'read');
  if (position === null || position < 0) {
    const n = real.read(buffer, offset, length, file.position);
    file.position = advance(file.position, n);
    return n;
  }
  return real.read(buffer, offset, length, position);
}

/** write(2)/pwrite(2): position null writes at the file position; O_APPEND always at the end. */
export function writeData(file: OvlFile, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset | null): number {
  if (!file.writable) throw fsError('EBADF', 'write');
  const real = realFile(file, 'write');
  if (file.append) {
    // O_APPEND writes land at the end whatever the position; the position follows them there.
    const n = real.write(buffer, offset, length, null);
    file.position = sizeOf(real);
    return n;
  }
  if (position === null || position < 0) {
    const n = real.write(buffer, offset, length, file.position);
    file.position = advance(file.position, n);
    return n;
  }
  return real.write(buffer, offset, length, position);
}

/** fsync(2)/fdatasync(2). A volatile overlay skips every sync, as the kernel's does. */
export function syncData(ctx: OverlayContext, file: OvlFile, datasync: boolean): void {
  const syscall = datasync ? 'fdatasync' : 'fsync';
  if (file.closed) throw fsError('EBADF', syscall);
  if (file.node.isDir || ctx.volatile) return;
  const real = realFile(file, syscall);
  if (datasync) real.datasync();
  else real.sync();
}

/** ftruncate(2): the handle must be open for writing (EINVAL otherwise, as Linux answers). */
export function truncateData(file: OvlFile, length: FileOffset): void {
  if (file.closed) throw fsError('EBADF', 'ftruncate');
  if (!file.writable || file.node.isDir) throw fsError('EINVAL', 'ftruncate');
  if (length < 0) throw fsError('EINVAL', 'ftruncate');
  realFile(file, 'ftruncate').truncate(length);
}

/**
 * fallocate(2): the checks every filesystem shares (the VFS's, made before any filesystem is asked),
 * then the current real file's own fallocate, which answers EOPNOTSUPP for a mode it lacks. The
 * handle is open for writing, so the file is upper already, as for a write; a handle opened before
 * its copy-up sees the change through the choke point.
 */
export function allocateData(file: OvlFile, offset: FileOffset, length: FileOffset, mode: number): void {
  if (file.closed) throw fsError('EBADF', 'fallocate');
  if (!isFileOffset(offset) || !isFileOffset(length) || offset < 0 || length <= 0) {
    throw fsError('EINVAL', 'fallocate', file.node.path());
  }
  if (!allocateModeValid(mode)) throw fsError('EOPNOTSUPP', 'fallocate', file.node.path());
  if (!file.writable) throw fsError('EBADF', 'fallocate');
  refuseProtectedAllocate(file.ctx, file.node, (mode & ~FALLOC_FL_KEEP_SIZE) === 0);
  if (file.node.isDir) throw fsError('EISDIR', 'fallocate', file.node.path());
  realFile(file, 'fallocate').allocate(mode, offset, length);
}

/** The mode combinations vfs_fallocate passes on: one operation, with KEEP_SIZE where it means something. */
function allocateModeValid(mode: number): boolean {
  const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
  switch (mode & ~FALLOC_FL_KEEP_SIZE) {
    case 0:
    case FALLOC_FL_UNSHARE_RANGE:
    case FALLOC_FL_ZERO_RANGE:
      return true;
    case FALLOC_FL_PUNCH_HOLE:
      return keepSize;
    case FALLOC_FL_COLLAPSE_RANGE:
    case FALLOC_FL_INSERT_RANGE:
    case FALLOC_FL_WRITE_ZEROES:
      return !keepSize;
    default:
      return false;
  }
}

/** lseek(2) with SEEK_DATA or SEEK_HOLE, answered by the current real file. */
export function seekData(file: OvlFile, offset: FileOffset, whence: number): FileOffset {
  if (file.closed) throw fsError('EBADF', 'lseek');
  if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw fsError('EINVAL', 'lseek', file.node.path());
  if (!isFileOffset(offset)) throw fsError('EINVAL', 'lseek', file.node.path());
  // A directory has no data to map: ENXIO, as lseek past the end of a file answers.
  if (file.node.isDir) throw fsError('ENXIO', 'lseek', file.node.path());
  return realFile(file, 'lseek').seekData(offset, whence);
}

/** An integer offset: a bigint (past 2^53), or a number that is exact. */
function isFileOffset(v: FileOffset): boolean {
  return typeof v === 'bigint' || Number.isSafeInteger(v);
}

/** The real file's size, exact past 2^53. */
function sizeOf(real: RealFile): FileOffset {
  const st = real.stat();
  return st.sizeExact ?? st.size;
}

let scratch = Buffer.allocUnsafe(1 << 16);

/** copy_file_range(2) between two open files, each through its current real file. */
export function copyDataRange(src: OvlFile, offIn: FileOffset, dst: OvlFile, offOut: FileOffset, length: number): number {
  if (!src.readable || !dst.writable) throw fsError('EBADF', 'copy_file_range');
  refuseImmutableTarget(dst.ctx, dst.node, 'copy_file_range');
  if (scratch.length < Math.min(length, 1 << 20)) scratch = Buffer.allocUnsafe(Math.min(length, 1 << 20));
  let done = 0;
  while (done < length) {
    const n = readData(src, scratch, 0, Math.min(scratch.length, length - done), advance(offIn, done));
    if (n === 0) break;
    for (let w = 0; w < n;) w += writeData(dst, scratch, w, n - w, advance(offOut, done + w));
    done += n;
  }
  return done;
}
