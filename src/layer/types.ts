// The contract between the overlay core and its backing stores.
//
// A layer addresses entries by a *relative path* inside itself: '' is the layer's root, 'a/b' a
// child, no leading or trailing slash. The core only ever passes a path whose parent components it
// has already looked up in this layer as real directories, so a layer checks the last component
// only (never following it if it is a symlink). `lookupPath` is the one call that walks a whole
// path itself, component by component, for redirects that jump to another place in the layer.
//
// A writable layer also owns a work area for atomic "create, then rename into place". Work paths
// come from `tempPath()` and start with '\0', which no real file name can contain, so every
// writing method accepts either kind of path.

/** The subset of `fs.Stats` the core needs; `fs.Stats` satisfies it. */
export interface RealStat {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
}

/** What a layer holds at one path, decoded from its on-disk format. */
export interface LayerEntry {
  stat: RealStat;
  /** A whiteout hides the same name in every layer below. */
  whiteout: boolean;
  /** Directories: the layers below are not merged into this one. */
  opaque: boolean;
  /** Directories (and metacopy files): where this entry's lower copy lives. '/a/b' is from the layer root, 'b' is a sibling. */
  redirect?: string;
  /** Regular files: only metadata is here, the data is in the lower origin. */
  metacopy: boolean;
  /** The inode number of the lower file this one was copied up from, when recorded. */
  originIno?: number;
}

export interface LayerDirent {
  name: string;
  /** The S_IFMT bits of the entry, 0 when unknown. */
  type: number;
  whiteout: boolean;
}

export interface LayerStatFs {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

/** An open real file. The overlay's open files hold one and swap it on copy-up. */
export interface RealFile {
  /** The host file descriptor, when there is one (DirLayer); enables clone and copy_file_range. */
  readonly fd: number | undefined;
  read(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number): number;
  /** position null appends (O_APPEND). */
  write(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | null): number;
  stat(): RealStat;
  truncate(length: number): void;
  sync(): void;
  datasync(): void;
  chmod(mode: number): void;
  chown(uid: number, gid: number): void;
  utimes(atime: number, mtime: number): void;
  close(): void;
}

/** The read side of a backing store. */
export interface Layer {
  /** For messages: the directory or a name. */
  readonly name: string;
  /** The host directory behind this layer, if any. The core never reads it directly. */
  readonly root: string | undefined;
  /** Identifies the backing filesystem, for st_dev/st_ino (xino) decisions. */
  readonly fsId: number;
  /** The entry at rel, or undefined when nothing is there (ENOENT/ENOTDIR). Never follows the last component. */
  lookup(rel: string): LayerEntry | undefined;
  /** Like lookup, but walks every component itself and stops at anything that is not a real directory. */
  lookupPath(rel: string): LayerEntry | undefined;
  /** A fresh object each call: the caller may change it (the core stamps st_ino/st_dev on it). */
  lstat(rel: string): RealStat;
  readdir(rel: string): LayerDirent[];
  readlink(rel: string): string;
  /** User-visible xattrs only: the overlay's private ones are filtered out. */
  listxattr(rel: string): string[];
  getxattr(rel: string, name: string): Buffer | undefined;
  /** Opens a regular file for reading or writing (flags without O_CREAT). */
  open(rel: string, flags: number): RealFile;
  statfs(): LayerStatFs;
  /** A host path to the entry, for clone and copy; undefined for layers without one. */
  hostPath(rel: string): string | undefined;
  /** Drops anything the layer holds (fds, locks). */
  close(): void;
}

export interface CopyUpMetadata {
  mode: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
  xattrs: Array<[string, Buffer]>;
  originIno?: number;
}

/** The upper layer: a layer the overlay may change. */
export interface WritableLayer extends Layer {
  /** A fresh path in the work area (starts with '\0'). */
  tempPath(): string;
  create(rel: string, flags: number, mode: number): RealFile;
  mkdir(rel: string, mode: number): void;
  symlink(target: string, rel: string): void;
  mknod(rel: string, mode: number, rdev: number): void;
  link(existing: string, rel: string): void;
  unlink(rel: string): void;
  rmdir(rel: string): void;
  /** rename(2); noReplace fails with EEXIST when to exists. */
  rename(from: string, to: string, noReplace?: boolean): void;
  /** Makes a whiteout at rel in this layer's format. */
  whiteout(rel: string): void;
  setOpaque(rel: string): void;
  setRedirect(rel: string, redirect: string): void;
  setMetacopy(rel: string, on: boolean): void;
  setxattr(rel: string, name: string, value: Uint8Array): void;
  removexattr(rel: string, name: string): void;
  chmod(rel: string, mode: number): void;
  lchown(rel: string, uid: number, gid: number): void;
  lutimes(rel: string, atimeMs: number, mtimeMs: number): void;
  truncate(rel: string, length: number): void;
  /** Copies the data of a regular file from another layer, cloning where the filesystem can. */
  copyData(from: Layer, fromRel: string, rel: string): void;
  /** Applies copied-up metadata (mode, owner, times, xattrs, origin) to rel. */
  setMetadata(rel: string, meta: CopyUpMetadata): void;
  /** Flushes a file's data to stable storage (fsync), before it is renamed into place. */
  fsync(rel: string): void;
  /** Removes a directory tree in the work area (after a replace). */
  removeTemp(rel: string): void;
}

/** The access-mode bits of open flags; node's fs.constants lacks O_ACCMODE. */
export const O_ACCMODE = 3;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;

export function isDir(mode: number): boolean {
  return (mode & S_IFMT) === S_IFDIR;
}
