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
//
// Times cross this contract in one unit: nanoseconds since the epoch, as a bigint (what statx
// reports and utimensat takes). The *Ms fields of RealStat are the same times in Node's unit, for
// the faces that hand out fs.Stats.
import { constants as fsConstants } from 'node:fs';
import type { Statx } from '../sys/stat.js';

/** The subset of `fs.Stats` the core needs, plus exact nanosecond times: what statx reports. */
export type RealStat = Statx;

/**
 * An overlay xattr a layer found but cannot accept, decoded as the kernel decodes it: the core
 * answers a lookup that needs it with `code` (an errno name), as the kernel's lookup does.
 */
export interface InvalidXattr {
  /** The errno name the kernel's lookup fails with, e.g. 'EINVAL'. */
  code: string;
  /** What is wrong, for messages and logs: e.g. 'invalid redirect (a/b)'. */
  what: string;
}

/** What a layer holds at one path, decoded from its on-disk format. */
export interface LayerEntry {
  stat: RealStat;
  /** A whiteout hides the same name in every layer below. */
  whiteout: boolean;
  /** Directories: the layers below are not merged into this one. */
  opaque: boolean;
  /**
   * Directories (and metacopy files): where this entry's lower copy lives. '/a/b' is from the layer
   * root, 'b' is a sibling. Only set when valid: an absolute path of non-empty components, none of
   * them '.' or '..', or a single sibling name that is not '.' or '..'.
   */
  redirect?: string;
  /**
   * Set when an overlay xattr on this entry is malformed (today: the redirect; `redirect` is then
   * unset). The layer still reports the entry. The core must not follow it, and must fail the
   * lookup with `invalid.code` where the kernel's ovl_lookup would have read the redirect: when the
   * lookup goes on below this entry (a directory that is not opaque with layers below it, or a
   * metacopy file) and redirects are followed. Codes, as Linux 6.18 gives them: EINVAL for an empty
   * value, an empty component, or a relative value with a '/'; EACCES for a '.' or '..' component.
   * An over-long value or component is not invalid: it is a redirect that finds nothing.
   */
  invalid?: InvalidXattr;
  /** Regular files: only metadata is here, the data is in the lower origin. */
  metacopy: boolean;
  /** The inode number of the lower file this one was copied up from, when recorded. */
  originIno?: number;
  /**
   * Directories: marked "impure" (overlay.impure = "y"): it may hold entries copied up or moved in,
   * whose st_ino is not their real one, so a listing looks its entries up for their d_ino.
   */
  impure?: boolean;
  /** Directories: the kernel recorded the lower directory this one merges with (an overlay.origin xattr). */
  mergeOrigin?: boolean;
}

export interface LayerDirent {
  name: string;
  /** The S_IFMT bits of the entry, 0 when unknown. */
  type: number;
  whiteout: boolean;
  /** The real inode number (d_ino), when the layer knows it without a stat; MemoryLayer leaves it out. */
  ino?: number;
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

/**
 * A file offset or size: a number where that is exact (below 2^53), a bigint beyond it, up to the
 * 2^63 - 1 some filesystems (tmpfs, XFS) take.
 */
export type FileOffset = number | bigint;

/** `pos + n`, a bigint once past 2^53. */
export function advanceOffset(pos: FileOffset, n: number): FileOffset {
  if (typeof pos === 'bigint') return pos + BigInt(n);
  const next = pos + n;
  return Number.isSafeInteger(next) ? next : BigInt(pos) + BigInt(n);
}

/** An open real file. The overlay's open files hold one and swap it on copy-up. */
export interface RealFile {
  /** The host file descriptor, when there is one (DirLayer); enables clone and copy_file_range (see copyFileData). */
  readonly fd: number | undefined;
  read(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset): number;
  /** position null appends (O_APPEND). */
  write(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset | null): number;
  stat(): RealStat;
  truncate(length: FileOffset): void;
  /**
   * fallocate(2) with its FALLOC_FL_* mode bits, as the backing store supports each (EOPNOTSUPP
   * where it does not). The core has made the checks every filesystem shares (the VFS's).
   */
  allocate(mode: number, offset: FileOffset, length: FileOffset): void;
  /** lseek(2) with SEEK_DATA (3) or SEEK_HOLE (4): the next data or hole at or after offset, ENXIO at or past the end. */
  seekData(offset: FileOffset, whence: number): FileOffset;
  sync(): void;
  datasync(): void;
  chmod(mode: number): void;
  chown(uid: number, gid: number): void;
  /** Sets the times in nanoseconds; undefined leaves that time as it is (UTIME_OMIT). */
  utimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void;
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
  /**
   * The entry at rel, or undefined when nothing is there (ENOENT/ENOTDIR). Never follows the last
   * component. With `nameOnly`, a missing name is reported missing without looking for a whiteout kept
   * beside it under another name (`.wh.NAME`, see whiteoutBeside), which only matters where a layer
   * below has the name.
   */
  lookup(rel: string, nameOnly?: boolean): LayerEntry | undefined;
  /**
   * Whether rel is whited out by an AUFS/OCI-style `.wh.NAME` beside it (rel itself missing). Layers
   * that keep no such whiteouts leave it out.
   */
  whiteoutBeside?(rel: string): boolean;
  /** Like lookup, but walks every component itself and stops at anything that is not a real directory. */
  lookupPath(rel: string): LayerEntry | undefined;
  /** A fresh object each call: the caller may change it (the core stamps st_ino/st_dev on it). */
  lstat(rel: string): RealStat;
  /** A fresh array of fresh entries each call: the caller may keep and change them (the core keeps a lower directory's as its listing). */
  readdir(rel: string): LayerDirent[];
  readlink(rel: string): string;
  /** User-visible xattrs only: the overlay's private ones are filtered out. */
  listxattr(rel: string): string[];
  getxattr(rel: string, name: string): Buffer | undefined;
  /** Opens a regular file for reading or writing (flags without O_CREAT). */
  open(rel: string, flags: number): RealFile;
  statfs(): LayerStatFs;
  /** Drops anything the layer holds (fds, locks). */
  close(): void;
}

export interface CopyUpMetadata {
  mode: number;
  uid: number;
  gid: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  xattrs: Array<[string, Buffer]>;
  originIno?: number;
}

export interface RenameFlags {
  noReplace?: boolean;
  exchange?: boolean;
  whiteout?: boolean;
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
  /**
   * renameat2(2), each flag one atomic step: `noReplace` fails with EEXIST when `to` exists;
   * `exchange` swaps two existing entries (of any types); `whiteout` leaves a whiteout in this
   * layer's format at `from` as the entry moves (a directory too, over a whiteout or nothing).
   */
  rename(from: string, to: string, flags?: RenameFlags): void;
  /** Makes a whiteout at rel in this layer's format; rel must be free. */
  whiteout(rel: string): void;
  setOpaque(rel: string): void;
  /** Marks a directory "impure" (see LayerEntry.impure). */
  setImpure(rel: string): void;
  setRedirect(rel: string, redirect: string): void;
  setMetacopy(rel: string, on: boolean): void;
  setxattr(rel: string, name: string, value: Uint8Array): void;
  removexattr(rel: string, name: string): void;
  /** Never follows a symlink: a symlink's mode cannot change (EOPNOTSUPP). */
  chmod(rel: string, mode: number): void;
  lchown(rel: string, uid: number, gid: number): void;
  /** Times in nanoseconds, never following a symlink; undefined leaves that time as it is. */
  lutimes(rel: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void;
  truncate(rel: string, length: FileOffset): void;
  /** Copies the data of a regular file from another layer, cloning where the filesystem can. */
  copyData(from: Layer, fromRel: string, rel: string): void;
  /** Applies copied-up metadata (mode, owner, times, xattrs, origin) to rel. */
  setMetadata(rel: string, meta: CopyUpMetadata): void;
  /** Flushes a file's data to stable storage (fsync), before it is renamed into place. */
  fsync(rel: string): void;
  /** Flushes everything written to the filesystem the layer is on, open files' data included (syncfs). */
  syncfs(): void;
  /** Removes an entry or directory tree in the work area (after a replace); one already gone is fine. */
  removeTemp(rel: string): void;
}

/** Nanoseconds from Node's milliseconds (a double, as Date and fs.Stats carry them). */
export function msToNs(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
}

/** Node's milliseconds from nanoseconds: what fs.Stats shows for a time statx reported. */
export function nsToMs(ns: bigint): number {
  const sec = ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n);
  return Number(sec) * 1000 + Number(ns - sec * 1_000_000_000n) / 1e6;
}

// fallocate(2) modes and the lseek(2) whence values of RealFile.seekData, as Linux numbers them.
export {
  FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_UNSHARE_RANGE,
  FALLOC_FL_WRITE_ZEROES, FALLOC_FL_ZERO_RANGE, SEEK_DATA, SEEK_HOLE,
} from '../sys/constants.js';

/** The access-mode bits of open flags; node's fs.constants lacks O_ACCMODE. */
export const O_ACCMODE = 3;

// The file-type bits, as node:fs knows them (Linux's values).
export const { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } = fsConstants;
