// The structs of /usr/include/linux/fuse.h as the rest of src/fuse sees them: decoded requests and the
// replies to encode. protocol.ts reads and writes them; neither depends on anything else in the project.
//
// u64 fields are JavaScript numbers: node ids and handles are ours to choose. File offsets and sizes
// are FileOffset, exact up to 2^63 - 1. Inode numbers, which the layers choose, may be given as bigint.

/** A file offset or size: a number where that is exact (below 2^53), a bigint beyond it. */
export type FileOffset = number | bigint;

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

/** fuse_statx_out: the attributes of AttrOut and what only statx(2) reports. */
export interface StatxOut extends AttrOut {
  /** The birth time, when the file's filesystem keeps one. */
  btime?: { sec: number | bigint; nsec: number };
  /** STATX_ATTR_* bits, and the mask of those the file system knows about. */
  attributes?: number;
  attributesMask?: number;
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
  /** FOPEN_PASSTHROUGH: the kernel reads and writes this backing file itself (FUSE_DEV_IOC_BACKING_OPEN's id). */
  backingId?: number;
}


export interface DirEntry {
  name: string;
  ino: number | bigint;
  /** S_IFMT bits of the entry (as in st_mode), or 0 when unknown. */
  type: number;
  /** The offset cookie that resumes the listing *after* this entry. */
  off: number;
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
  /** Signed, and a bigint so that any s64 is exact. */
  sec: bigint;
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
  size?: FileOffset;
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
  offIn: FileOffset;
  nodeidOut: number;
  fhOut: number;
  offOut: FileOffset;
  len: number;
  flags: number;
}

/** fuse_in_header, the start of every request. */
export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  /** Length of extensions after the opcode's arguments, in bytes. */
  extLen: number;
}

/** fuse_init_in. */
export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  flags2: number;
}

/** fuse_init_out. */
export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
  flags2?: number;
  /** With FUSE_PASSTHROUGH: how deep backing files may be stacked below (1: a plain filesystem). */
  maxStackDepth?: number;
}

/** fuse_rename_in / fuse_rename2_in and the two names after it. */
export interface RenameIn {
  newDir: number;
  flags: number;
  oldName: string;
  newName: string;
}
