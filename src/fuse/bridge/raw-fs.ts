// The request-level interface the serving loop (server.ts) dispatches to, in the style of libfuse's
// low-level ops and go-fuse's RawFileSystem: node ids and file handles in, typed results out, errors
// thrown. A file system with nodes and open files of its own implements NodeFileSystem (nodes.ts) instead,
// and NodeBridge turns it into one of these; implement this directly only for what the node API cannot
// say (no-open mode, the default statfs, a hand-made readdirplus).
//
// Every method is synchronous, like the overlay core: the loop calls them one at a time on one thread,
// so a method runs to completion without interleaving. Only the data of a large READ or WRITE moves
// off that thread, through a lease (leaseData).
//
// Errors: throw anything with a string `code` naming an errno ('ENOENT', as node:fs errors carry). The
// loop maps it through os.constants.errno; anything else becomes EIO and is logged.
//
// Lookup counting: every reply that carries a non-zero nodeid (lookup, mknod, mkdir, symlink, link, create,
// and each readdirplus entry except '.' and '..') makes the kernel add one to that node's lookup count;
// `forget` hands the counts back. A node must stay valid until its count falls to zero.
//
// Buffers handed *in* (write data) are views of the loop's request buffer and are only valid during the
// call. Buffers handed *out* (read data) are copied to the kernel before the next request is read, so a
// method may return a view of a reused scratch buffer.

import type { AttrOut, CopyFileRangeIn, DirEntry, EntryOut, FileOffset, OpenOut, SetattrIn, StatfsOut, StatxOut } from '../structs.js';
import type { DataLease } from './io-threads.js';

export type { DataLease } from './io-threads.js';

/** Who made the request (from fuse_in_header). */
export interface FuseCaller {
  readonly unique: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
}

export interface CreateOut {
  entry: EntryOut;
  open: OpenReply;
}

/**
 * An OPEN or CREATE answer. `backing`: the handle's real file, lent out so the kernel may read and
 * write it itself (FUSE passthrough, see passthrough.ts) where it allows; the loop releases it.
 */
export interface OpenReply extends OpenOut {
  backing?: DataLease;
  /** Asked only of an open that ends up cached with keepCache: whether its pages must go after all. */
  dropCacheIf?: () => boolean;
}

/** What a readdirplus implementation gets: `add` packs an entry if it fits and only then calls `lookup`. */
export interface DirPlusSink {
  /**
   * Reserves room for `entry`; returns false (and calls nothing) when the reply is full. When it fits,
   * `lookup` is called to produce the entry's fuse_entry_out, which counts as one lookup of that node;
   * return null to send the name without attributes (no lookup counted).
   */
  add(entry: DirEntry, lookup: () => EntryOut | null): boolean;
}

/**
 * The file system, request by request. Every method is optional: the loop answers ENOSYS to anything missing, and the kernel
 * then stops asking for most of them. Leaving out `open`/`opendir` (or throwing ENOSYS from them) turns on
 * the kernel's no-open mode: no OPEN/RELEASE round trips, and fh 0 in every call.
 */
export interface RawFileSystem {
  /** INIT flags this file system asks for on top of the loop's defaults (POSIX_ACL, say). */
  readonly wantFlags?: number;
  /** Called once INIT is negotiated, with the flags both sides agreed on. */
  init?(info: { major: number; minor: number; flags: number; maxWrite: number }): void;
  /** Called when the connection ends (DESTROY or unmount). */
  destroy?(): void;
  /** Called once before any request when the loop has I/O threads (see Background). */
  attachBackground?(background: Background): void;
  /** Called once before any request, with what the file system may tell the loop (see FuseConnection). */
  attachConnection?(connection: FuseConnection): void;

  lookup?(caller: FuseCaller, parent: number, name: string): EntryOut;
  forget?(nodeid: number, nlookup: number): void;
  getattr?(caller: FuseCaller, nodeid: number, fh: number | undefined): AttrOut;
  /**
   * statx(2) when the caller asks for more than stat(2) gives (the birth time): `sxFlags` are its
   * AT_STATX_* sync flags, `sxMask` the STATX_* fields wanted. Without it (or on ENOSYS) the kernel
   * sends GETATTR from then on and reports no birth time.
   */
  statx?(caller: FuseCaller, nodeid: number, fh: number | undefined, sxFlags: number, sxMask: number): StatxOut;
  setattr?(caller: FuseCaller, nodeid: number, attr: SetattrIn): AttrOut;
  readlink?(caller: FuseCaller, nodeid: number): string | Buffer;
  symlink?(caller: FuseCaller, parent: number, name: string, target: string): EntryOut;
  mknod?(caller: FuseCaller, parent: number, name: string, mode: number, rdev: number, umask: number): EntryOut;
  mkdir?(caller: FuseCaller, parent: number, name: string, mode: number, umask: number): EntryOut;
  unlink?(caller: FuseCaller, parent: number, name: string): void;
  rmdir?(caller: FuseCaller, parent: number, name: string): void;
  /** `flags` are RENAME_NOREPLACE / RENAME_EXCHANGE / RENAME_WHITEOUT (0 for plain RENAME). */
  rename?(caller: FuseCaller, parent: number, name: string, newParent: number, newName: string, flags: number): void;
  link?(caller: FuseCaller, nodeid: number, newParent: number, newName: string): EntryOut;

  /** `flags` are the open(2) flags (O_CREAT/O_EXCL/O_NOCTTY removed by the kernel); `openFlags` FUSE's (OPEN_KILL_SUIDGID). */
  open?(caller: FuseCaller, nodeid: number, flags: number, openFlags?: number): OpenReply;
  read?(caller: FuseCaller, nodeid: number, fh: number, offset: FileOffset, size: number): Uint8Array;
  /** Returns the number of bytes written. `data` is only valid during the call. */
  write?(caller: FuseCaller, nodeid: number, fh: number, offset: FileOffset, data: Buffer, flags: number): number;
  /**
   * The host fd behind handle `fh`, lent out so that an I/O thread can serve a large READ or WRITE at
   * the request's offset and reply itself (io-threads.ts); released once that I/O is done. Undefined:
   * no host fd, serve it through read/write. Checks as read/write would (EBADF on a wrong access mode), and
   * for a WRITE does on this thread what write would do with `writeFlags` (WRITE_KILL_SUIDGID).
   */
  leaseData?(caller: FuseCaller, nodeid: number, fh: number, access: 'read' | 'write', writeFlags?: number): DataLease | undefined;
  flush?(caller: FuseCaller, nodeid: number, fh: number, lockOwner: bigint): void;
  release?(caller: FuseCaller, nodeid: number, fh: number, flags: number): void;
  fsync?(caller: FuseCaller, nodeid: number, fh: number, datasync: boolean): void;

  opendir?(caller: FuseCaller, nodeid: number, flags: number): OpenOut;
  /**
   * Entries from `offset` on (0 is the start). The loop packs as many as fit and stops taking more, so
   * a generator over a listing kept per handle costs only what is sent.
   */
  readdir?(caller: FuseCaller, nodeid: number, fh: number, offset: number): Iterable<DirEntry>;
  /** Optional: without it the loop builds READDIRPLUS from readdir + lookup. */
  readdirplus?(caller: FuseCaller, nodeid: number, fh: number, offset: number, out: DirPlusSink): void;
  releasedir?(caller: FuseCaller, nodeid: number, fh: number): void;
  fsyncdir?(caller: FuseCaller, nodeid: number, fh: number, datasync: boolean): void;

  statfs?(caller: FuseCaller, nodeid: number): StatfsOut;
  /** `flags` are XATTR_CREATE / XATTR_REPLACE; `setxattrFlags` FUSE's (SETXATTR_ACL_KILL_SGID, with SETXATTR_EXT). */
  setxattr?(caller: FuseCaller, nodeid: number, name: string, value: Buffer, flags: number, setxattrFlags?: number): void;
  /**
   * The value; the loop answers size probes (size 0) and ERANGE itself. Undefined (or a thrown ENODATA)
   * when absent: the kernel asks for security.capability before every exec and first write, and an
   * exception per answer cost a cold serving thread about 20 µs.
   */
  getxattr?(caller: FuseCaller, nodeid: number, name: string): Buffer | undefined;
  listxattr?(caller: FuseCaller, nodeid: number): string[];
  removexattr?(caller: FuseCaller, nodeid: number, name: string): void;
  /** `mask` is R_OK/W_OK/X_OK/F_OK. Not sent when mounted with default_permissions. */
  access?(caller: FuseCaller, nodeid: number, mask: number): void;
  create?(caller: FuseCaller, parent: number, name: string, mode: number, flags: number, umask: number, openFlags?: number): CreateOut;
  /** open(2) of directory `parent` with O_TMPFILE: a new file with no name, open; LINK on its id names it. */
  tmpfile?(caller: FuseCaller, parent: number, mode: number, flags: number, umask: number): CreateOut;
  fallocate?(caller: FuseCaller, nodeid: number, fh: number, offset: FileOffset, length: FileOffset, mode: number): void;
  /** SEEK_DATA / SEEK_HOLE (the kernel handles SEEK_SET/CUR/END itself). Returns the new offset. */
  lseek?(caller: FuseCaller, nodeid: number, fh: number, offset: FileOffset, whence: number): FileOffset;
  /** Returns the number of bytes copied. */
  copyFileRange?(caller: FuseCaller, args: CopyFileRangeIn): number;
  /**
   * A restricted ioctl on an open file or directory (`fh`): `cmd` with its `input` (the bytes the
   * command's _IOW size names), answering at most `outSize` bytes for an _IOR command. The kernel's
   * fileattr_get/set send FS_IOC_GETFLAGS/SETFLAGS and FS_IOC_FSGETXATTR/FSSETXATTR this way.
   */
  ioctl?(caller: FuseCaller, nodeid: number, fh: number, cmd: number, input: Buffer, outSize: number): Uint8Array;
}

/**
 * Long data work off the serving thread, for a file system that wants it (attachBackground). The
 * request that needs the work throws `new Parked(work)`: the loop keeps it, and every later request on
 * the same node id except reads and attribute reads, and serves them again, in order, once `then` has
 * run. Requests on other nodes go on meanwhile.
 */
export interface Background {
  /**
   * Copies `length` bytes from `sourceFd` to `targetFd` at equal offsets on an I/O thread, then fsyncs
   * the target when `sync`; `then` runs on the serving thread with undefined or the error.
   */
  copy(job: { sourceFd: number; targetFd: number; length: number; sync: boolean }, then: (err: Error | undefined) => void): BackgroundWork;
}

/** What a file system may tell the loop that serves it. */
export interface FuseConnection {
  /**
   * The file system is shut down (FS_IOC_GOINGDOWN): from now on the loop answers EIO to every request
   * but those that only release state (FORGET, RELEASE, RELEASEDIR, FLUSH, INTERRUPT, DESTROY), STATFS
   * (which a shut-down XFS or ext4 still answers) and IOCTL (the file system answers a second shutdown
   * itself), until the connection ends. Requests parked on background work get EIO when served again.
   */
  shutDown(): void;
}

/** Work in flight on an I/O thread: what a parked request waits for. */
export interface BackgroundWork {
  readonly done: boolean;
}

/** Thrown by a request handler: serve this request again once `work` is done (see Background). */
export class Parked {
  constructor(readonly work: BackgroundWork) {}
}

/** What a file system factory gets besides its own argument: ways to tell the kernel to drop cached state. */
export interface FuseNotifier {
  /** Drop cached attributes and (len 0 = to the end) cached data of a node. */
  invalInode(nodeid: number, offset?: number, length?: number): void;
  /** Drop a cached name (and negative entries) in a directory. */
  invalEntry(parent: number, name: string): void;
}

/**
 * The shape of the module a worker-served mount loads: an export called with the mounter's argument (it
 * must survive structured clone) that returns the file system.
 */
export type RawFileSystemFactory = (arg: unknown, notify: FuseNotifier) => RawFileSystem;
