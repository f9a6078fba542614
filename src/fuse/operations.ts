// The filesystem interface the FUSE session dispatches to, in the style of libfuse's low-level ops and
// go-fuse's RawFileSystem: node ids and file handles in, typed results out, errors thrown.
//
// Every method is synchronous, like the overlay core: the session serves one request at a time on one
// thread, so a method runs to completion without interleaving (see DESIGN.md, src/fuse/).
//
// Errors: throw anything with a string `code` naming an errno ('ENOENT', as node:fs errors carry). The
// session maps it through os.constants.errno; anything else becomes EIO and is logged.
//
// Lookup counting: every reply that carries a non-zero nodeid (lookup, mknod, mkdir, symlink, link, create,
// and each readdirplus entry except '.' and '..') makes the kernel add one to that node's lookup count;
// `forget` hands the counts back. A node must stay valid until its count falls to zero.
//
// Buffers handed *in* (write data) are views of the session's request buffer and are only valid during the
// call. Buffers handed *out* (read data) are copied to the kernel before the next request is read, so a
// method may return a view of a reused scratch buffer.

/** Who made the request. */
export interface FuseContext {
  readonly unique: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
}

/** struct fuse_attr. Times are whole seconds plus nanoseconds, as the kernel keeps them. */
export interface FuseAttr {
  ino: number | bigint;
  size: number | bigint;
  blocks: number | bigint;
  atime: number | bigint;
  atimensec: number;
  mtime: number | bigint;
  mtimensec: number;
  ctime: number | bigint;
  ctimensec: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
  flags?: number;
}

/** fuse_entry_out. A nodeid of 0 is a negative entry: the kernel caches "no such name" for entryTimeout. */
export interface EntryOut {
  nodeid: number;
  generation?: number;
  /** Seconds the kernel may cache the name; defaults to the session's entryTimeout. */
  entryTimeout?: number;
  /** Seconds the kernel may cache the attributes; defaults to the session's attrTimeout. */
  attrTimeout?: number;
  attr: FuseAttr;
}

export interface AttrOut {
  attrTimeout?: number;
  attr: FuseAttr;
}

/** fuse_open_out: the handle and FOPEN_* hints. */
export interface OpenOut {
  fh: number;
  /** FOPEN_KEEP_CACHE: the page cache is still valid from a previous open. */
  keepCache?: boolean;
  /** FOPEN_DIRECT_IO: bypass the page cache for this handle. */
  directIo?: boolean;
  /** FOPEN_CACHE_DIR: the kernel may cache this directory's listing. */
  cacheDir?: boolean;
  nonseekable?: boolean;
  /** Any further raw FOPEN_* bits. */
  flags?: number;
}

export interface CreateOut {
  entry: EntryOut;
  open: OpenOut;
}

export interface DirEntry {
  name: string;
  ino: number | bigint;
  /** S_IFMT bits of the entry (as in st_mode), or 0 when unknown. */
  type: number;
  /** The offset cookie that resumes the listing *after* this entry. */
  off: number;
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

export interface StatfsOut {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

export interface Timespec {
  sec: number;
  nsec: number;
}

/** fuse_setattr_in decoded: only the fields whose FATTR_* bit is set are present. */
export interface SetattrIn {
  /** Raw FATTR_* bits, for anything not decoded below. */
  valid: number;
  fh?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** 'now' when FATTR_ATIME_NOW is set. */
  atime?: Timespec | 'now';
  mtime?: Timespec | 'now';
  ctime?: Timespec;
  /** FATTR_KILL_SUIDGID (only with HANDLE_KILLPRIV_V2). */
  killSuidgid?: boolean;
}

export interface CopyFileRangeIn {
  nodeidIn: number;
  fhIn: number;
  offIn: number;
  nodeidOut: number;
  fhOut: number;
  offOut: number;
  len: number;
  flags: number;
}

/**
 * The filesystem. Every method is optional: the session answers ENOSYS to anything missing, and the kernel
 * then stops asking for most of them. Leaving out `open`/`opendir` (or throwing ENOSYS from them) turns on
 * the kernel's no-open mode: no OPEN/RELEASE round trips, and fh 0 in every call.
 */
export interface FuseOperations {
  /** Called once INIT is negotiated, with the flags both sides agreed on. */
  init?(info: { major: number; minor: number; flags: number; maxWrite: number }): void;
  /** Called when the connection ends (DESTROY or unmount). */
  destroy?(): void;

  lookup?(ctx: FuseContext, parent: number, name: string): EntryOut;
  forget?(nodeid: number, nlookup: number): void;
  getattr?(ctx: FuseContext, nodeid: number, fh: number | undefined): AttrOut;
  setattr?(ctx: FuseContext, nodeid: number, attr: SetattrIn): AttrOut;
  readlink?(ctx: FuseContext, nodeid: number): string | Buffer;
  symlink?(ctx: FuseContext, parent: number, name: string, target: string): EntryOut;
  mknod?(ctx: FuseContext, parent: number, name: string, mode: number, rdev: number, umask: number): EntryOut;
  mkdir?(ctx: FuseContext, parent: number, name: string, mode: number, umask: number): EntryOut;
  unlink?(ctx: FuseContext, parent: number, name: string): void;
  rmdir?(ctx: FuseContext, parent: number, name: string): void;
  /** `flags` are RENAME_NOREPLACE / RENAME_EXCHANGE / RENAME_WHITEOUT (0 for plain RENAME). */
  rename?(ctx: FuseContext, parent: number, name: string, newParent: number, newName: string, flags: number): void;
  link?(ctx: FuseContext, nodeid: number, newParent: number, newName: string): EntryOut;

  /** `flags` are the open(2) flags (O_CREAT/O_EXCL/O_NOCTTY removed by the kernel). */
  open?(ctx: FuseContext, nodeid: number, flags: number): OpenOut;
  read?(ctx: FuseContext, nodeid: number, fh: number, offset: number, size: number): Uint8Array;
  /** Returns the number of bytes written. `data` is only valid during the call. */
  write?(ctx: FuseContext, nodeid: number, fh: number, offset: number, data: Buffer, flags: number): number;
  flush?(ctx: FuseContext, nodeid: number, fh: number, lockOwner: bigint): void;
  release?(ctx: FuseContext, nodeid: number, fh: number, flags: number): void;
  fsync?(ctx: FuseContext, nodeid: number, fh: number, datasync: boolean): void;

  opendir?(ctx: FuseContext, nodeid: number, flags: number): OpenOut;
  /**
   * Entries from `offset` on (0 is the start). The session packs as many as fit and drops the rest, so
   * returning more than fits is allowed but wasteful; keep the listing per handle and slice it.
   */
  readdir?(ctx: FuseContext, nodeid: number, fh: number, offset: number): DirEntry[];
  /** Optional: without it the session builds READDIRPLUS from readdir + lookup. */
  readdirplus?(ctx: FuseContext, nodeid: number, fh: number, offset: number, out: DirPlusSink): void;
  releasedir?(ctx: FuseContext, nodeid: number, fh: number): void;
  fsyncdir?(ctx: FuseContext, nodeid: number, fh: number, datasync: boolean): void;

  statfs?(ctx: FuseContext, nodeid: number): StatfsOut;
  /** `flags` are XATTR_CREATE / XATTR_REPLACE. */
  setxattr?(ctx: FuseContext, nodeid: number, name: string, value: Buffer, flags: number): void;
  /** The value; the session answers size probes (size 0) and ERANGE itself. Throw ENODATA when absent. */
  getxattr?(ctx: FuseContext, nodeid: number, name: string): Buffer;
  listxattr?(ctx: FuseContext, nodeid: number): string[];
  removexattr?(ctx: FuseContext, nodeid: number, name: string): void;
  /** `mask` is R_OK/W_OK/X_OK/F_OK. Not sent when mounted with default_permissions. */
  access?(ctx: FuseContext, nodeid: number, mask: number): void;
  create?(ctx: FuseContext, parent: number, name: string, mode: number, flags: number, umask: number): CreateOut;
  fallocate?(ctx: FuseContext, nodeid: number, fh: number, offset: number, length: number, mode: number): void;
  /** SEEK_DATA / SEEK_HOLE (the kernel handles SEEK_SET/CUR/END itself). Returns the new offset. */
  lseek?(ctx: FuseContext, nodeid: number, fh: number, offset: number, whence: number): number;
  /** Returns the number of bytes copied. */
  copyFileRange?(ctx: FuseContext, args: CopyFileRangeIn): number;
}

/** What an ops factory gets besides its own argument: ways to tell the kernel to drop cached state. */
export interface FuseNotifier {
  /** Drop cached attributes and (len 0 = to the end) cached data of a node. */
  invalInode(nodeid: number, offset?: number, length?: number): void;
  /** Drop a cached name (and negative entries) in a directory. */
  invalEntry(parent: number, name: string): void;
}

/**
 * The shape of the module a worker-served mount loads: an export called with the caller's argument (it
 * must survive structured clone) that returns the filesystem.
 */
export type FuseOpsFactory = (arg: unknown, notify: FuseNotifier) => FuseOperations;
