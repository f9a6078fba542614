// A layer held entirely in memory: for tests, for unprivileged use, and for browsers later.
//
// It stores the overlay's private state (whiteout, opaque, redirect, metacopy, origin) as plain
// fields on the inode instead of xattrs, but keeps the kernel's *shapes* so the core sees the same
// thing it would see from a DirLayer: a whiteout is a 0/0 character device, the flags live on the
// inode (so hard links share them), and errors carry the errno Linux would give.
//
// Paths are never resolved through symlinks: every component must be a real directory. Work paths
// from `tempPath()` ('\0' + name) resolve in a hidden work directory that is not under the root, so
// no readdir of the layer ever shows them, yet rename can move entries between the two trees.
import { constants } from 'node:fs';
import { Buffer } from 'node:buffer';
import { fsError } from '../errors.js';
import {
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  O_ACCMODE,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  type CopyUpMetadata,
  type FileOffset,
  type Layer,
  type LayerDirent,
  type LayerEntry,
  type LayerStatFs,
  type RealFile,
  type RealStat,
  type RenameFlags,
  type WritableLayer,
  nsToMs,
  FALLOC_FL_COLLAPSE_RANGE,
  FALLOC_FL_INSERT_RANGE,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_UNSHARE_RANGE,
  FALLOC_FL_ZERO_RANGE,
  SEEK_DATA,
  SEEK_HOLE,
} from './types.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = constants;
/** Not in fs.constants; the same on every Linux architecture. */

const BLKSIZE = 4096;
/** tmpfs's magic: the closest real filesystem to this one. */
const TMPFS_MAGIC = 0x01021994;
/** Directories report a fixed size, as ext4 does; tmpfs's entry-count size buys nothing here. */
const DIR_SIZE = 4096;
const COPY_CHUNK = 128 * 1024;

/** st_dev values well above real device numbers, so they cannot collide with a host filesystem. */
let nextFsId = 0x7e000000;

interface Inode {
  readonly ino: number;
  /** S_IFMT type bits plus permission bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  rdev: number;
  /** Regular files: bytes [0, size) are the content; the rest of the buffer is zeroed spare room. */
  data: Buffer;
  size: number;
  /** Symlinks: the target. */
  target: string;
  /** Directories: the entries, in creation order. */
  children: Map<string, Inode> | undefined;
  /** Times in nanoseconds, as the layer contract carries them. */
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  birthtimeNs: bigint;
  xattrs: Map<string, Buffer>;
  // The overlay's private state. On disk these are trusted.overlay.* xattrs of the inode, so hard
  // links share them here too.
  opaque: boolean;
  impure: boolean;
  redirect: string | undefined;
  metacopy: boolean;
  originIno: number | undefined;
}

/**
 * The nested object `MemoryLayer.from` builds a layer from. A key is a name in its directory and
 * its value says what lives there:
 * - a string or a Buffer/Uint8Array: a regular file with that content (strings as UTF-8);
 * - `{ symlink: 'target' }` (an object whose only key is `symlink`, with a string value): a symlink;
 * - any other object: a directory, holding its own keys the same way.
 * A directory that must hold a single file named `symlink` gives that file's content as a Buffer.
 *
 * @example MemoryLayer.from({ 'a.txt': 'hello', dir: { b: Buffer.from('x') }, link: { symlink: 'a.txt' } })
 */
export interface MemoryTree {
  [name: string]: string | Uint8Array | MemoryTree | { symlink: string };
}

export interface MemoryLayerOptions {
  /** For messages; 'memory' unless given. */
  name?: string;
  /** Owner of new inodes; the process's own ids (or 0 where there are none) unless given. */
  uid?: number;
  gid?: number;
}

function isType(inode: Inode, type: number): boolean {
  return (inode.mode & S_IFMT) === type;
}

/** The kernel's test (ovl_is_whiteout): a character device with device number 0/0. */
function isWhiteout(inode: Inode): boolean {
  return isType(inode, S_IFCHR) && inode.rdev === 0;
}

function statOf(inode: Inode, dev: number): RealStat {
  return {
    dev,
    ino: inode.ino,
    mode: inode.mode,
    nlink: inode.nlink,
    uid: inode.uid,
    gid: inode.gid,
    rdev: inode.rdev,
    size: inode.size,
    blksize: BLKSIZE,
    blocks: Math.ceil(inode.size / 512),
    atimeMs: nsToMs(inode.atimeNs),
    mtimeMs: nsToMs(inode.mtimeNs),
    ctimeMs: nsToMs(inode.ctimeNs),
    birthtimeMs: nsToMs(inode.birthtimeNs),
    atimeNs: inode.atimeNs,
    mtimeNs: inode.mtimeNs,
    ctimeNs: inode.ctimeNs,
    birthtimeNs: inode.birthtimeNs,
  };
}

/** The current time in nanoseconds (the clock's resolution is what Date gives). */
function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function asBuffer(view: NodeJS.ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

function checkRange(view: NodeJS.ArrayBufferView, offset: number, length: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > view.byteLength) {
    throw new RangeError(`offset ${offset} and length ${length} do not fit a buffer of ${view.byteLength} bytes`);
  }
}

/** Grows or shrinks a regular file. Shrinking zeroes the cut bytes so a later grow reads zeros. */
function resize(inode: Inode, size: number): void {
  if (size > inode.data.length) {
    // Double, so a run of small appends costs amortised O(1) per byte.
    const grown = Buffer.alloc(Math.max(size, inode.data.length * 2, 64));
    inode.data.copy(grown, 0, 0, inode.size);
    inode.data = grown;
  } else if (size < inode.size) {
    inode.data.fill(0, size, inode.size);
  }
  inode.size = size;
}

function touch(inode: Inode, mtime: boolean): void {
  const now = nowNs();
  inode.ctimeNs = now;
  if (mtime) inode.mtimeNs = now;
}

/** An open regular file. It holds the inode itself, so it keeps working after its name is unlinked. */
class MemoryFile implements RealFile {
  readonly fd = undefined;
  private closed = false;
  private readonly readable: boolean;
  private readonly writable: boolean;
  private readonly append: boolean;

  constructor(
    private readonly inode: Inode,
    private readonly dev: number,
    private readonly path: string,
    flags: number,
  ) {
    const access = flags & O_ACCMODE;
    this.readable = access === O_RDONLY || access === O_RDWR;
    this.writable = access === O_WRONLY || access === O_RDWR;
    this.append = (flags & O_APPEND) !== 0;
  }

  private check(syscall: string, needed?: 'read' | 'write'): Inode {
    if (this.closed) throw fsError('EBADF', syscall);
    if (needed === 'read' && !this.readable) throw fsError('EBADF', syscall);
    if (needed === 'write' && !this.writable) throw fsError('EBADF', syscall);
    return this.inode;
  }

  read(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset): number {
    const inode = this.check('read', 'read');
    if (isType(inode, S_IFDIR)) throw fsError('EISDIR', 'read', this.path);
    checkRange(buffer, offset, length);
    // Past 2^53: past the end of anything memory holds.
    if (typeof position === 'bigint') return 0;
    if (!Number.isInteger(position) || position < 0) throw fsError('EINVAL', 'read', this.path);
    if (position >= inode.size) return 0;
    const n = Math.min(length, inode.size - position);
    inode.data.copy(asBuffer(buffer), offset, position, position + n);
    return n;
  }

  write(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset | null): number {
    const inode = this.check('write', 'write');
    checkRange(buffer, offset, length);
    if (typeof position === 'bigint') throw fsError('EFBIG', 'write', this.path);
    // Linux appends on an O_APPEND file even when pwrite names a position.
    const at = position === null || this.append ? inode.size : position;
    if (!Number.isInteger(at) || at < 0) throw fsError('EINVAL', 'write', this.path);
    if (length === 0) return 0;
    if (at + length > inode.size) resize(inode, at + length);
    asBuffer(buffer).copy(inode.data, at, offset, offset + length);
    touch(inode, true);
    return length;
  }

  stat(): RealStat {
    return statOf(this.check('fstat'), this.dev);
  }

  truncate(length: FileOffset): void {
    const inode = this.check('ftruncate', 'write');
    if (typeof length === 'bigint') throw fsError('EFBIG', 'ftruncate', this.path);
    if (!Number.isInteger(length) || length < 0) throw fsError('EINVAL', 'ftruncate', this.path);
    resize(inode, length);
    touch(inode, true);
  }

  /**
   * fallocate(2) on a file with no extents: every mode but FALLOC_FL_WRITE_ZEROES, with the
   * block-size rules of collapse and insert that block filesystems have.
   */
  allocate(mode: number, offset: FileOffset, length: FileOffset): void {
    const inode = this.check('fallocate', 'write');
    if (typeof offset === 'bigint' || typeof length === 'bigint') throw fsError('EFBIG', 'fallocate', this.path);
    const end = offset + length;
    const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
    switch (mode & ~FALLOC_FL_KEEP_SIZE) {
      case 0:
      case FALLOC_FL_UNSHARE_RANGE:
        // Nothing to reserve or unshare: only the size can change.
        if (keepSize || end <= inode.size) return;
        resize(inode, end);
        break;
      case FALLOC_FL_PUNCH_HOLE:
      case FALLOC_FL_ZERO_RANGE:
        inode.data.fill(0, Math.min(offset, inode.size), Math.min(end, inode.size));
        if (!keepSize && end > inode.size) resize(inode, end);
        break;
      case FALLOC_FL_COLLAPSE_RANGE:
        if (offset % BLKSIZE !== 0 || length % BLKSIZE !== 0 || end >= inode.size) throw fsError('EINVAL', 'fallocate', this.path);
        inode.data.copy(inode.data, offset, end, inode.size);
        resize(inode, inode.size - length);
        break;
      case FALLOC_FL_INSERT_RANGE: {
        if (offset % BLKSIZE !== 0 || length % BLKSIZE !== 0 || offset >= inode.size) throw fsError('EINVAL', 'fallocate', this.path);
        const size = inode.size;
        resize(inode, size + length);
        inode.data.copy(inode.data, end, offset, size);
        inode.data.fill(0, offset, end);
        break;
      }
      default:
        throw fsError('EOPNOTSUPP', 'fallocate', this.path);
    }
    touch(inode, true);
  }

  /** No holes are kept: all of [0, size) is data, with the one hole at the end of the file. */
  seekData(offset: FileOffset, whence: number): FileOffset {
    const inode = this.check('lseek');
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw fsError('EINVAL', 'lseek', this.path);
    if (typeof offset === 'bigint') throw fsError('ENXIO', 'lseek', this.path);
    if (offset < 0 || offset >= inode.size) throw fsError('ENXIO', 'lseek', this.path);
    return whence === SEEK_DATA ? offset : inode.size;
  }

  sync(): void {
    this.check('fsync');
  }

  datasync(): void {
    this.check('fdatasync');
  }

  chmod(mode: number): void {
    const inode = this.check('fchmod');
    inode.mode = (inode.mode & S_IFMT) | (mode & 0o7777);
    touch(inode, false);
  }

  chown(uid: number, gid: number): void {
    const inode = this.check('fchown');
    // -1 leaves an id unchanged, as chown(2) does.
    if (uid !== -1) inode.uid = uid;
    if (gid !== -1) inode.gid = gid;
    touch(inode, false);
  }

  /** Times in nanoseconds, like `lutimes` and `CopyUpMetadata`; undefined leaves one as it is. */
  utimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    const inode = this.check('futime');
    if (atimeNs !== undefined) inode.atimeNs = atimeNs;
    if (mtimeNs !== undefined) inode.mtimeNs = mtimeNs;
    touch(inode, false);
  }

  close(): void {
    this.check('close');
    this.closed = true;
  }
}

/** Where a path points: its parent directory (undefined for a tree root) and last name. */
interface Slot {
  parent: Inode | undefined;
  name: string;
  /** The entry there, if any. */
  inode: Inode | undefined;
}

export class MemoryLayer implements WritableLayer {
  readonly name: string;
  readonly root = undefined;
  readonly fsId: number;

  private readonly uid: number;
  private readonly gid: number;
  private nextIno = 1;
  private nextTemp = 1;
  private tree: Inode;
  /** The hidden work directory that temp paths live in. */
  private work: Inode;

  constructor(options: MemoryLayerOptions = {}) {
    this.name = options.name ?? 'memory';
    this.fsId = nextFsId++;
    this.uid = options.uid ?? process.getuid?.() ?? 0;
    this.gid = options.gid ?? process.getgid?.() ?? 0;
    this.tree = this.newInode(S_IFDIR | 0o755);
    this.work = this.newInode(S_IFDIR | 0o700);
  }

  /** Builds a layer from a nested object; see `MemoryTree` for its shape. */
  static from(tree: MemoryTree, options?: MemoryLayerOptions): MemoryLayer {
    const layer = new MemoryLayer(options);
    layer.fill('', tree);
    return layer;
  }

  private fill(dir: string, tree: MemoryTree): void {
    for (const [name, value] of Object.entries(tree)) {
      const rel = dir === '' ? name : `${dir}/${name}`;
      if (typeof value === 'string' || value instanceof Uint8Array) {
        const file = this.create(rel, O_WRONLY | O_CREAT | O_EXCL, 0o644);
        const data = typeof value === 'string' ? Buffer.from(value) : value;
        file.write(data, 0, data.byteLength, 0);
        file.close();
      } else if (isSymlinkSpec(value)) {
        this.symlink(value.symlink, rel);
      } else {
        this.mkdir(rel, 0o755);
        this.fill(rel, value);
      }
    }
  }

  // ---- inodes and path walking ----

  private newInode(mode: number, rdev = 0): Inode {
    const now = nowNs();
    const dir = (mode & S_IFMT) === S_IFDIR;
    return {
      ino: this.nextIno++,
      mode,
      uid: this.uid,
      gid: this.gid,
      nlink: dir ? 2 : 1,
      rdev,
      data: Buffer.alloc(0),
      size: dir ? DIR_SIZE : 0,
      target: '',
      children: dir ? new Map() : undefined,
      atimeNs: now,
      mtimeNs: now,
      ctimeNs: now,
      birthtimeNs: now,
      xattrs: new Map(),
      opaque: false,
      impure: false,
      redirect: undefined,
      metacopy: false,
      originIno: undefined,
    };
  }

  /**
   * Walks to the slot for rel, requiring every component before the last to be a real directory.
   * Returns an errno code instead of throwing, so lookup can turn failure into undefined.
   */
  private walk(rel: string): Slot | 'ENOENT' | 'ENOTDIR' {
    const temp = rel.startsWith('\0');
    if (rel === '') return { parent: undefined, name: '', inode: this.tree };
    const names = rel.split('/');
    for (const name of names) {
      // The core hands over clean relative paths; anything else is a bug worth hearing about.
      if (name === '' || name === '.' || name === '..') throw fsError('EINVAL', 'lookup', display(rel));
    }
    let dir = temp ? this.work : this.tree;
    for (let i = 0; i < names.length - 1; i++) {
      const next = dir.children?.get(names[i]!);
      if (next === undefined) return 'ENOENT';
      if (next.children === undefined) return 'ENOTDIR';
      dir = next;
    }
    const name = names[names.length - 1]!;
    return { parent: dir, name, inode: dir.children!.get(name) };
  }

  /** The slot for rel, or the errno Linux would give for a missing or non-directory parent. */
  private slot(rel: string, syscall: string): Slot {
    const slot = this.walk(rel);
    if (typeof slot === 'string') throw fsError(slot, syscall, display(rel));
    return slot;
  }

  /** The existing inode at rel. */
  private get(rel: string, syscall: string): Inode {
    const { inode } = this.slot(rel, syscall);
    if (inode === undefined) throw fsError('ENOENT', syscall, display(rel));
    return inode;
  }

  /** A free slot for a new entry: the parent exists and nothing is there yet. */
  private free(rel: string, syscall: string): { parent: Inode; name: string } {
    const { parent, name, inode } = this.slot(rel, syscall);
    if (inode !== undefined || parent === undefined) throw fsError('EEXIST', syscall, display(rel));
    return { parent, name };
  }

  private attach(parent: Inode, name: string, inode: Inode): void {
    parent.children!.set(name, inode);
    if (inode.children !== undefined) parent.nlink++;
    touch(parent, true);
  }

  private detach(parent: Inode, name: string, inode: Inode): void {
    parent.children!.delete(name);
    if (inode.children !== undefined) {
      parent.nlink--;
      inode.nlink = 0;
    } else {
      inode.nlink--;
    }
    touch(parent, true);
    touch(inode, false);
  }

  private entryOf(inode: Inode): LayerEntry {
    const entry: LayerEntry = {
      stat: statOf(inode, this.fsId),
      whiteout: isWhiteout(inode),
      opaque: inode.children !== undefined && inode.opaque,
      metacopy: isType(inode, S_IFREG) && inode.metacopy,
    };
    if (inode.redirect !== undefined) entry.redirect = inode.redirect;
    if (inode.originIno !== undefined) entry.originIno = inode.originIno;
    if (inode.children !== undefined && inode.impure) entry.impure = true;
    return entry;
  }

  // ---- Layer: the read side ----

  lookup(rel: string): LayerEntry | undefined {
    const slot = this.walk(rel);
    if (typeof slot === 'string' || slot.inode === undefined) return undefined;
    return this.entryOf(slot.inode);
  }

  lookupPath(rel: string): LayerEntry | undefined {
    // walk already refuses to pass through anything but a real directory (whiteouts are character
    // devices, symlinks are not followed), which is exactly what redirects need.
    return this.lookup(rel);
  }

  lstat(rel: string): RealStat {
    return statOf(this.get(rel, 'lstat'), this.fsId);
  }

  readdir(rel: string): LayerDirent[] {
    const dir = this.get(rel, 'scandir');
    if (dir.children === undefined) throw fsError('ENOTDIR', 'scandir', display(rel));
    return [...dir.children].map(([name, inode]) => ({
      name,
      type: inode.mode & S_IFMT,
      whiteout: isWhiteout(inode),
    }));
  }

  readlink(rel: string): string {
    const inode = this.get(rel, 'readlink');
    if (!isType(inode, S_IFLNK)) throw fsError('EINVAL', 'readlink', display(rel));
    return inode.target;
  }

  listxattr(rel: string): string[] {
    return [...this.get(rel, 'listxattr').xattrs.keys()];
  }

  getxattr(rel: string, name: string): Buffer | undefined {
    const value = this.get(rel, 'getxattr').xattrs.get(name);
    return value === undefined ? undefined : Buffer.from(value);
  }

  open(rel: string, flags: number): RealFile {
    if (flags & O_CREAT) return this.create(rel, flags, 0o666);
    return this.openInode(this.get(rel, 'open'), rel, flags);
  }

  /** Opening never follows a symlink (O_NOFOLLOW) and only opens files and directories. */
  private openInode(inode: Inode, rel: string, flags: number): MemoryFile {
    const writing = (flags & O_ACCMODE) !== O_RDONLY;
    if (isType(inode, S_IFLNK)) throw fsError('ELOOP', 'open', display(rel));
    if (inode.children !== undefined) {
      if (writing || flags & O_TRUNC) throw fsError('EISDIR', 'open', display(rel));
    } else if (!isType(inode, S_IFREG)) {
      // Devices, fifos and sockets have no content here; the kernel's answer for a device with
      // no driver (a whiteout included) is ENXIO.
      throw fsError('ENXIO', 'open', display(rel));
    } else if (flags & O_TRUNC) {
      resize(inode, 0);
      touch(inode, true);
    }
    return new MemoryFile(inode, this.fsId, display(rel), flags);
  }

  statfs(): LayerStatFs {
    let inodes = 0;
    let used = 0;
    const seen = new Set<Inode>();
    const count = (inode: Inode): void => {
      if (seen.has(inode)) return;
      seen.add(inode);
      inodes++;
      used += Math.ceil(inode.data.length / BLKSIZE);
      for (const child of inode.children?.values() ?? []) count(child);
    };
    count(this.tree);
    count(this.work);
    // A notional 4 GiB and a million inodes, shrinking as the layer fills.
    const blocks = Math.max(1 << 20, used);
    const files = Math.max(1 << 20, inodes);
    return { type: TMPFS_MAGIC, bsize: BLKSIZE, blocks, bfree: blocks - used, bavail: blocks - used, files, ffree: files - inodes };
  }

  close(): void {
    // Open files keep their inodes; everything reachable by name goes.
    this.tree = this.newInode(S_IFDIR | 0o755);
    this.work = this.newInode(S_IFDIR | 0o700);
  }

  // ---- WritableLayer ----

  tempPath(): string {
    return `\0tmp${this.nextTemp++}`;
  }

  create(rel: string, flags: number, mode: number): RealFile {
    const { parent, name, inode } = this.slot(rel, 'open');
    if (inode !== undefined) {
      if (flags & O_EXCL) throw fsError('EEXIST', 'open', display(rel));
      return this.openInode(inode, rel, flags);
    }
    const file = this.newInode(S_IFREG | (mode & 0o7777));
    this.attach(parent!, name, file);
    return new MemoryFile(file, this.fsId, display(rel), flags);
  }

  mkdir(rel: string, mode: number): void {
    const { parent, name } = this.free(rel, 'mkdir');
    this.attach(parent, name, this.newInode(S_IFDIR | (mode & 0o7777)));
  }

  symlink(target: string, rel: string): void {
    const { parent, name } = this.free(rel, 'symlink');
    const link = this.newInode(S_IFLNK | 0o777);
    link.target = target;
    link.size = Buffer.byteLength(target);
    this.attach(parent, name, link);
  }

  mknod(rel: string, mode: number, rdev: number): void {
    const type = mode & S_IFMT;
    // mknod(2): type 0 means a regular file, a directory is refused, anything unknown is invalid.
    if (type === S_IFDIR) throw fsError('EPERM', 'mknod', display(rel));
    if (![0, S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK].includes(type)) throw fsError('EINVAL', 'mknod', display(rel));
    const { parent, name } = this.free(rel, 'mknod');
    const device = type === S_IFCHR || type === S_IFBLK;
    this.attach(parent, name, this.newInode((type || S_IFREG) | (mode & 0o7777), device ? rdev : 0));
  }

  link(existing: string, rel: string): void {
    const inode = this.get(existing, 'link');
    if (inode.children !== undefined) throw fsError('EPERM', 'link', display(existing), display(rel));
    const { parent, name, inode: there } = this.slot(rel, 'link');
    if (there !== undefined || parent === undefined) throw fsError('EEXIST', 'link', display(existing), display(rel));
    parent.children!.set(name, inode);
    inode.nlink++;
    touch(parent, true);
    touch(inode, false);
  }

  unlink(rel: string): void {
    const { parent, name, inode } = this.slot(rel, 'unlink');
    if (inode === undefined) throw fsError('ENOENT', 'unlink', display(rel));
    // Linux says EISDIR where POSIX allows EPERM.
    if (inode.children !== undefined || parent === undefined) throw fsError('EISDIR', 'unlink', display(rel));
    this.detach(parent, name, inode);
  }

  rmdir(rel: string): void {
    const { parent, name, inode } = this.slot(rel, 'rmdir');
    if (inode === undefined) throw fsError('ENOENT', 'rmdir', display(rel));
    if (inode.children === undefined) throw fsError('ENOTDIR', 'rmdir', display(rel));
    if (parent === undefined) throw fsError('EBUSY', 'rmdir', display(rel));
    if (inode.children.size > 0) throw fsError('ENOTEMPTY', 'rmdir', display(rel));
    this.detach(parent, name, inode);
  }

  rename(from: string, to: string, flags: RenameFlags = {}): void {
    const fail = (code: string): never => {
      throw fsError(code, 'rename', display(from), display(to));
    };
    if (flags.exchange && (flags.noReplace || flags.whiteout)) return fail('EINVAL');
    const src = this.walk(from);
    if (typeof src === 'string') return fail(src);
    if (src.inode === undefined) return fail('ENOENT');
    const dst = this.walk(to);
    if (typeof dst === 'string') return fail(dst);
    if (src.parent === undefined || dst.parent === undefined) return fail('EBUSY');
    const moving = src.inode;
    const target = dst.inode;
    if (flags.noReplace && target !== undefined) return fail('EEXIST');
    // A directory cannot move into its own subtree. No directory has a second name, so the path
    // prefix is the whole truth.
    if (moving.children !== undefined && to.startsWith(from + '/')) return fail('EINVAL');
    if (flags.exchange) {
      if (target === undefined) return fail('ENOENT');
      if (target.children !== undefined && from.startsWith(to + '/')) return fail('EINVAL');
      if (target === moving) return;
      src.parent.children!.set(src.name, target);
      dst.parent.children!.set(dst.name, moving);
      if ((moving.children !== undefined) !== (target.children !== undefined) && src.parent !== dst.parent) {
        const dirDelta = moving.children !== undefined ? 1 : -1;
        dst.parent.nlink += dirDelta;
        src.parent.nlink -= dirDelta;
      }
      touch(src.parent, true);
      touch(dst.parent, true);
      touch(moving, false);
      touch(target, false);
      return;
    }
    // Two names of one inode: rename(2) does nothing and succeeds.
    if (target === moving) return;
    if (target !== undefined) {
      if (moving.children !== undefined && target.children === undefined) return fail('ENOTDIR');
      if (moving.children === undefined && target.children !== undefined) return fail('EISDIR');
      // Also covers renaming onto one's own ancestor, which is never empty.
      if (target.children !== undefined && target.children.size > 0) return fail('ENOTEMPTY');
      this.detach(dst.parent, dst.name, target);
    }
    src.parent.children!.delete(src.name);
    if (moving.children !== undefined) src.parent.nlink--;
    touch(src.parent, true);
    this.attach(dst.parent, dst.name, moving);
    touch(moving, false);
    // RENAME_WHITEOUT: the old name turns into a whiteout in the same step.
    if (flags.whiteout) this.attach(src.parent, src.name, this.newInode(S_IFCHR, 0));
  }

  whiteout(rel: string): void {
    // Like mknod, it refuses an occupied name: the core removes what was there first (or makes the
    // whiteout at a temp path and renames it over).
    const { parent, name } = this.free(rel, 'mknod');
    this.attach(parent, name, this.newInode(S_IFCHR, 0));
  }

  setOpaque(rel: string): void {
    const inode = this.get(rel, 'setxattr');
    if (inode.children === undefined) throw fsError('ENOTDIR', 'setxattr', display(rel));
    inode.opaque = true;
    touch(inode, false);
  }

  setImpure(rel: string): void {
    const inode = this.get(rel, 'setxattr');
    if (inode.children === undefined) throw fsError('ENOTDIR', 'setxattr', display(rel));
    inode.impure = true;
    touch(inode, false);
  }

  setRedirect(rel: string, redirect: string): void {
    const inode = this.get(rel, 'setxattr');
    inode.redirect = redirect;
    touch(inode, false);
  }

  setMetacopy(rel: string, on: boolean): void {
    const inode = this.get(rel, 'setxattr');
    inode.metacopy = on;
    touch(inode, false);
  }

  setxattr(rel: string, name: string, value: Uint8Array): void {
    const inode = this.get(rel, 'setxattr');
    if (name === '') throw fsError('ERANGE', 'setxattr', display(rel));
    // Linux keeps user.* xattrs off symlinks and devices, whose permission bits mean nothing.
    if (name.startsWith('user.') && !isType(inode, S_IFREG) && inode.children === undefined) {
      throw fsError('EPERM', 'setxattr', display(rel));
    }
    inode.xattrs.set(name, Buffer.from(value));
    touch(inode, false);
  }

  removexattr(rel: string, name: string): void {
    const inode = this.get(rel, 'removexattr');
    if (!inode.xattrs.delete(name)) throw fsError('ENODATA', 'removexattr', display(rel));
    touch(inode, false);
  }

  chmod(rel: string, mode: number): void {
    const inode = this.get(rel, 'chmod');
    inode.mode = (inode.mode & S_IFMT) | (mode & 0o7777);
    touch(inode, false);
  }

  lchown(rel: string, uid: number, gid: number): void {
    const inode = this.get(rel, 'lchown');
    if (uid !== -1) inode.uid = uid;
    if (gid !== -1) inode.gid = gid;
    touch(inode, false);
  }

  lutimes(rel: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    const inode = this.get(rel, 'lutime');
    if (atimeNs !== undefined) inode.atimeNs = atimeNs;
    if (mtimeNs !== undefined) inode.mtimeNs = mtimeNs;
    touch(inode, false);
  }

  truncate(rel: string, length: FileOffset): void {
    const inode = this.get(rel, 'truncate');
    if (isType(inode, S_IFLNK)) throw fsError('ELOOP', 'truncate', display(rel));
    if (inode.children !== undefined) throw fsError('EISDIR', 'truncate', display(rel));
    if (typeof length === 'bigint') throw fsError('EFBIG', 'truncate', display(rel));
    if (!isType(inode, S_IFREG) || !Number.isInteger(length) || length < 0) throw fsError('EINVAL', 'truncate', display(rel));
    // truncate(2) stamps the times only when the size changes (ftruncate and O_TRUNC always do).
    if (length === inode.size) return;
    resize(inode, length);
    touch(inode, true);
  }

  copyData(from: Layer, fromRel: string, rel: string): void {
    const source = from.open(fromRel, O_RDONLY);
    try {
      // An existing file is overwritten in place; a new one starts private until setMetadata.
      const dest = this.create(rel, O_WRONLY | O_CREAT | O_TRUNC, 0o600);
      try {
        const chunk = Buffer.allocUnsafe(COPY_CHUNK);
        for (let pos = 0; ; ) {
          const n = source.read(chunk, 0, chunk.length, pos);
          if (n === 0) break;
          dest.write(chunk, 0, n, pos);
          pos += n;
        }
      } finally {
        dest.close();
      }
    } finally {
      source.close();
    }
  }

  setMetadata(rel: string, meta: CopyUpMetadata): void {
    const inode = this.get(rel, 'setattr');
    inode.mode = (inode.mode & S_IFMT) | (meta.mode & 0o7777);
    inode.uid = meta.uid;
    inode.gid = meta.gid;
    inode.atimeNs = meta.atimeNs;
    inode.mtimeNs = meta.mtimeNs;
    // No user.* check here: copy-up keeps whatever the lower file carried.
    for (const [name, value] of meta.xattrs) inode.xattrs.set(name, Buffer.from(value));
    if (meta.originIno !== undefined) inode.originIno = meta.originIno;
    touch(inode, false);
  }

  /** Memory has no stable storage to flush to. */
  fsync(_rel: string): void {}

  syncfs(): void {}

  removeTemp(rel: string): void {
    if (!rel.startsWith('\0')) throw fsError('EINVAL', 'rm', display(rel));
    const slot = this.walk(rel);
    // Like rm -rf: a temp that is already gone (renamed into place) is fine.
    if (typeof slot === 'string' || slot.inode === undefined) return;
    this.drop(slot.parent!, slot.name, slot.inode);
  }

  /** Removes an entry and, depth first, everything below it, keeping the link counts of shared inodes right. */
  private drop(parent: Inode, name: string, inode: Inode): void {
    for (const [childName, child] of inode.children ?? []) this.drop(inode, childName, child);
    this.detach(parent, name, inode);
  }
}

function isSymlinkSpec(value: MemoryTree | { symlink: string }): value is { symlink: string } {
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === 'symlink' && typeof value.symlink === 'string';
}

/** How a path appears in error messages: '/a/b', and a work path as '/<work>/name'. */
function display(rel: string): string {
  return rel.startsWith('\0') ? `/<work>/${rel.slice(1)}` : `/${rel}`;
}
