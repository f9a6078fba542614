// A layer that is a real directory in the kernel's on-disk format.
//
// Reads everything the kernel, Docker's overlay2 and fuse-overlayfs write: 0/0 character-device
// whiteouts, xattr whiteouts (overlay.whiteout in a directory marked overlay.opaque=x), `.wh.NAME`
// files and `.wh..wh..opq` markers, and the overlay.{opaque,redirect,metacopy} xattrs under the
// trusted.overlay. or user.overlay. prefix. Writes the kernel's format: 0/0 whiteouts wherever
// mknod allows them (any user since Linux 5.8), xattr whiteouts only where it does not.
//
// Confined by construction: the layer opens its root (and its work directory) once, when it is
// made, and never looks a host path up again. Every access is relative to those fds: a parent
// directory is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS)
// (the overlay walks components itself, so a symlink on the way is never right), then the `*at`
// call acts on the last component without following it. Parent fds are cached (DirFds below).
import * as fs from 'node:fs';
import { errorCode, fsError } from '../errors.js';
import { nameFromBytes } from '../names.js';
import * as sys from '../sys/index.js';
import { reopenWithAtime, setAtimeRule, type AtimeRule } from './atime-mount.js';
import { copyFileData } from './copy.js';
import { decodeRedirect } from './redirect.js';
import {
  S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
  type CopyUpMetadata, type FileOffset, type Layer, type LayerDirent, type LayerEntry, type LayerStatFs,
  type RealFile, type RealStat, type RenameFlags, type WritableLayer,
} from './types.js';

const { O_PATH, O_DIRECTORY, O_NOFOLLOW, O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC } = sys;
const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';
/** Our own private xattr: the origin's inode number, so st_ino survives copy-up and remount. */
const ORIGIN_NAME = 'ovlfs.origin';
const EMPTY = Buffer.alloc(0);

export interface DirLayerOptions {
  /** 'trusted.overlay.' (default) or 'user.overlay.' (userxattr). */
  xattrPrefix?: string;
  /**
   * How to write whiteouts: 'auto' (default) makes the kernel's 0/0 character device and falls back
   * to an xattr whiteout only where mknod of one fails; 'xattr' always writes xattr whiteouts.
   */
  whiteoutFormat?: 'auto' | 'chardev' | 'xattr';
  /** The work directory (upper layers only); temps live in its `work` subdirectory, as the kernel's do. */
  workdir?: string;
  /**
   * The layer never changes while in use (a lower layer): lookups may answer misses from a cached
   * listing of the directory instead of two failed lookups (the name and its `.wh.` form).
   */
  immutable?: boolean;
  /**
   * Upper layers: reach the layer and its work dir through a private clone of their mount with this
   * atime rule (and nodiratime), so that reads update atimes by the overlay's rule, not the host
   * mount's. Without the privilege to clone a mount the host mount's rule stays.
   */
  atime?: AtimeRule;
  nodiratime?: boolean;
  name?: string;
}

/**
 * fs.Stats as the layer hands them out: `instanceof fs.Stats` holds (so the fs facade hands them
 * on as they are), and the Date fields are made only when read.
 */
const STATS_PROTO: object = Object.create(fs.Stats.prototype, Object.fromEntries(
  (['atime', 'mtime', 'ctime', 'birthtime'] as const).map((name) => [name, {
    get(this: Record<string, unknown>): Date {
      const date = new Date(this[`${name}Ms`] as number);
      Object.defineProperty(this, name, { value: date, writable: true, enumerable: true, configurable: true });
      return date;
    },
    set(this: Record<string, unknown>, value: Date): void {
      Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
    },
    enumerable: true,
    configurable: true,
  }]),
));

function newStat(): RealStat {
  return Object.create(STATS_PROTO) as RealStat;
}

/**
 * Directory fds shared by every DirLayer in the process, least recently used first, so that a
 * lookup costs one statx and not an openat2 per component. Bounded: an overlay of many layers
 * must not run out of fds. An fd is never evicted while the call that fetched it is running,
 * because each call fetches at most two and the cache holds many more.
 */
class DirFds {
  private readonly fds = new Map<string, { fd: number; used: number }>();
  private tick = 0;
  constructor(private readonly max: number) {}

  get(key: string): number | undefined {
    const slot = this.fds.get(key);
    if (slot === undefined) return undefined;
    slot.used = ++this.tick;
    return slot.fd;
  }

  set(key: string, fd: number): void {
    this.fds.set(key, { fd, used: ++this.tick });
    if (this.fds.size > this.max) this.evict();
  }

  /** Closes the least recently used eighth in one pass, so eviction costs O(1) per insert on average. */
  private evict(): void {
    const slots = [...this.fds].sort((a, b) => a[1].used - b[1].used).slice(0, this.max >> 3);
    for (const [key, { fd }] of slots) {
      this.fds.delete(key);
      fs.closeSync(fd);
    }
  }

  /** Forgets `key` and every directory below it (after a rename or rmdir of a directory). */
  dropTree(key: string): void {
    for (const [k, { fd }] of this.fds) {
      if (k === key || (k.startsWith(key) && k.charCodeAt(key.length) === 0x2f /* '/' */)) {
        this.fds.delete(k);
        fs.closeSync(fd);
      }
    }
  }

  /** Forgets every directory of a layer (its keys start with `prefix`). */
  dropLayer(prefix: string): void {
    for (const [k, { fd }] of this.fds) {
      if (k.startsWith(prefix)) {
        this.fds.delete(k);
        fs.closeSync(fd);
      }
    }
  }
}

const dirFds = new DirFds(512);
let nextLayerId = 0;

/** An open host file: positional I/O on a real descriptor. */
export class HostFile implements RealFile {
  constructor(readonly fd: number) {}
  read(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset): number {
    return fs.readSync(this.fd, buffer, offset, length, position);
  }
  write(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset | null): number {
    if (typeof position === 'bigint') return sys.pwrite64(this.fd, buffer, offset, length, position);
    return fs.writeSync(this.fd, buffer, offset, length, position);
  }
  stat(): RealStat { return sys.statx(this.fd, '', sys.AT_EMPTY_PATH, newStat()); }
  truncate(length: FileOffset): void {
    if (typeof length === 'bigint') sys.ftruncate64(this.fd, length);
    else fs.ftruncateSync(this.fd, length);
  }
  allocate(mode: number, offset: FileOffset, length: FileOffset): void { sys.fallocate(this.fd, mode, offset, length); }
  seekData(offset: FileOffset, whence: number): FileOffset { return sys.lseek(this.fd, offset, whence); }
  sync(): void { fs.fsyncSync(this.fd); }
  datasync(): void { fs.fdatasyncSync(this.fd); }
  chmod(mode: number): void { fs.fchmodSync(this.fd, mode); }
  chown(uid: number, gid: number): void { fs.fchownSync(this.fd, uid, gid); }
  utimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void { sys.futimens(this.fd, atimeNs, mtimeNs); }
  close(): void { fs.closeSync(this.fd); }
}

/**
 * The entries of the directory open at `fd`, their names byte-exact: a name that is not UTF-8 (which
 * Node shows as U+FFFD) is read again as bytes and carried as names.ts says.
 */
function listDir(fd: number): fs.Dirent[] {
  const path = `/proc/self/fd/${fd}`;
  const dirents = fs.readdirSync(path, { withFileTypes: true });
  if (!dirents.some((d) => d.name.includes('\ufffd'))) return dirents;
  const raw = fs.readdirSync(path, { withFileTypes: true, encoding: 'buffer' }) as unknown as Array<fs.Dirent & { name: string | Buffer }>;
  for (const d of raw) d.name = nameFromBytes(d.name as Buffer);
  return raw as fs.Dirent[];
}

function isMissing(err: unknown): boolean {
  const code = errorCode(err);
  // ELOOP: a symlink where the overlay expected a directory; for a lookup that is "not here", as
  // is a name too long to exist (the kernel's lookup treats ENAMETOOLONG as a miss too).
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG';
}

let tempCounter = 0;

export class DirLayer implements WritableLayer {
  readonly name: string;
  readonly fsId: number;
  readonly prefix: string;
  private readonly rootFd: number;
  private readonly workFd: number | undefined;
  /** The private mount clone rootFd and workFd are on, when the layer has its own atime rule. */
  private readonly treeFd: number | undefined;
  /** A writable layer's in-use locks on its root and work directory (see lockInUse). */
  private readonly inUseFds: number[] = [];
  /** Prefix of this layer's keys in the shared DirFds cache. */
  private readonly key: string;
  private whiteoutFormat: 'auto' | 'chardev' | 'xattr';
  private readonly immutable: boolean;
  /** Immutable layers: the names in each small directory looked into; null when not worth listing. */
  private readonly listings = new Map<string, Set<string> | null>();
  /** Immutable layers: the sizes of directories already looked up, so a listing needs no second stat. */
  private readonly dirSizes = new Map<string, number>();
  /** Temps made as xattr whiteouts: their new parent gets the opaque=x marker when they move in. */
  private readonly xattrWhiteoutTemps = new Set<string>();
  /** The name in the work dir of the 0/0 device every whiteout is a link to. */
  private sharedWhiteout: string | undefined;
  private closed = false;

  constructor(readonly root: string, options: DirLayerOptions = {}) {
    this.name = options.name ?? root;
    this.prefix = options.xattrPrefix ?? 'trusted.overlay.';
    this.whiteoutFormat = options.whiteoutFormat ?? 'auto';
    this.immutable = options.immutable === true;
    this.key = `${nextLayerId++}:`;
    // The only lookups by path: from here on the layer is its fds, wherever its path goes.
    let rootFd = sys.openPath(root, O_PATH | O_DIRECTORY);
    let workFd: number | undefined;
    try {
      sys.probe(rootFd, root);
      this.fsId = sys.statx(rootFd, '', sys.AT_EMPTY_PATH).dev;
      if (options.workdir !== undefined) {
        const work = `${options.workdir}/work`;
        // Leftovers of a crashed copy-up were never visible; clear them, as the kernel does at mount. Not
        // those of a mount still using them: its next copy-up would find its work directory gone.
        if (this.lockInUse(root, options.workdir)) fs.rmSync(work, { recursive: true, force: true });
        if (!fs.existsSync(work)) fs.mkdirSync(work, { mode: 0o700 });
        workFd = sys.openPath(work, O_PATH | O_DIRECTORY | O_NOFOLLOW);
        if (options.atime !== undefined) {
          const clone = reopenWithAtime([rootFd, workFd], options.atime, options.nodiratime === true);
          if (clone !== undefined) {
            fs.closeSync(rootFd);
            fs.closeSync(workFd);
            [rootFd, workFd] = clone.fds;
            this.treeFd = clone.tree;
          }
        }
      }
    } catch (err) {
      fs.closeSync(rootFd);
      if (workFd !== undefined) fs.closeSync(workFd);
      for (const fd of this.inUseFds) fs.closeSync(fd);
      throw err;
    }
    this.rootFd = rootFd;
    this.workFd = workFd;
  }

  /**
   * New atime flags on the layer's private mount clone (a remount of the overlay); nothing where the
   * layer has no clone and reads by the host mount's rule.
   */
  setAtime(rule: AtimeRule, nodiratime: boolean): void {
    if (this.treeFd !== undefined) setAtimeRule(this.treeFd, rule, nodiratime);
  }

  /** Whether reads of the layer's files update atimes by its own mount clone's flags (see setAtime). */
  get atimeByClone(): boolean { return this.treeFd !== undefined; }

  /**
   * The kernel overlay marks its upper and work directories in use for the mount's life, and a second
   * mount of either (index=off, the only mode here) gets a warning and goes on; here the mark is an
   * exclusive flock on each, which another DirLayer, in this process or another, finds taken. True when
   * both were free.
   */
  private lockInUse(root: string, workdir: string): boolean {
    let free = true;
    for (const [what, dir] of [['upperdir', root], ['workdir', workdir]] as const) {
      const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      this.inUseFds.push(fd);
      if (sys.tryLockExclusive(fd, dir) !== 'busy') continue;
      free = false;
      process.emitWarning(`${what} ${dir} is in use as upperdir/workdir of another mount; accessing files from both mounts will result in undefined behavior`, { code: 'OVLFS_LAYER_IN_USE' });
    }
    return free;
  }

  // --- resolving -----------------------------------------------------------------------------------

  /** The directory fd a layer path or temp (which starts with '\0') is relative to, and the rest of it. */
  private base(rel: string): [number, string] {
    if (rel.charCodeAt(0) !== 0) return [this.rootFd, rel];
    if (this.workFd === undefined) throw fsError('EROFS', 'open', rel.slice(1));
    return [this.workFd, rel.slice(1)];
  }

  /** An O_PATH fd on the directory at rel (a layer path or temp), from the cache or opened beneath the layer. */
  private dirFd(rel: string): number {
    if (rel === '') return this.rootFd;
    const key = this.key + rel;
    let fd = dirFds.get(key);
    if (fd === undefined) {
      const [base, path] = this.base(rel);
      if (path === '') return base;
      fd = sys.openat2(base, path, O_PATH | O_DIRECTORY | O_NOFOLLOW, { noSymlinks: true });
      dirFds.set(key, fd);
    }
    return fd;
  }

  /** The parent directory fd of rel and its last component ('.' for the root itself). */
  private at(rel: string): [number, string] {
    if (rel === '') return [this.rootFd, '.'];
    const slash = rel.lastIndexOf('/');
    let dirfd: number;
    let name: string;
    if (slash < 0) [dirfd, name] = this.base(rel);
    else [dirfd, name] = [this.dirFd(rel.slice(0, slash)), rel.slice(slash + 1)];
    // The core hands over clean paths; '..' here could reach above the parent fd.
    if (name === '' || name === '.' || name === '..') throw fsError('EINVAL', 'lookup', rel);
    return [dirfd, name];
  }

  /** A path that reaches the entry through its parent fd, for the l*xattr calls (which never follow it). */
  private static procPath(dirfd: number, name: string): string {
    return `/proc/self/fd/${dirfd}/${name}`;
  }

  private xattrPath(rel: string): string {
    const [dirfd, name] = this.at(rel);
    return DirLayer.procPath(dirfd, name);
  }

  /** Forgets cached directory fds at and below rel, after it moved or went. */
  private forget(rel: string): void {
    dirFds.dropTree(this.key + rel);
  }

  private xattrGet(path: string, name: string): Buffer | undefined {
    try {
      return sys.lgetxattr(path, name);
    } catch {
      // ENOTSUP on filesystems without xattrs, EPERM for user.* on symlinks: nothing there.
      return undefined;
    }
  }

  /** An xattr of the entry `name` below `dirfd` (getxattrat), or undefined when it is not there. */
  private xattrAt(dirfd: number, name: string, xname: string): Buffer | undefined {
    try {
      return sys.getxattrAt(dirfd, name, xname);
    } catch {
      return undefined;
    }
  }

  // --- reading -------------------------------------------------------------------------------------

  lookup(rel: string, nameOnly = false): LayerEntry | undefined {
    if (this.immutable && rel !== '') {
      const slash = rel.lastIndexOf('/');
      const names = this.namesIn(slash < 0 ? '' : rel.slice(0, slash));
      const name = rel.slice(slash + 1);
      if (names !== null && !names.has(name)) {
        if (!names.has(WH_PREFIX + name)) return undefined;
        return this.ociWhiteout(rel);
      }
    }
    let dirfd: number;
    let name: string;
    try {
      [dirfd, name] = this.at(rel);
    } catch (err) {
      if (isMissing(err)) return undefined; // A parent is not a directory in this layer.
      throw err;
    }
    const stat = sys.tryStatx(dirfd, name, sys.AT_SYMLINK_NOFOLLOW, newStat());
    if (stat === undefined) {
      // An AUFS/OCI-style `.wh.NAME` beside a missing NAME is a whiteout too.
      return rel === '' || nameOnly ? undefined : this.ociWhiteout(rel);
    }
    return this.decode(rel, dirfd, name, stat);
  }

  whiteoutBeside(rel: string): boolean {
    if (rel === '') return false;
    try {
      return this.ociWhiteout(rel) !== undefined;
    } catch (err) {
      if (isMissing(err)) return false; // A parent is not a directory in this layer.
      throw err;
    }
  }

  private ociWhiteout(rel: string): LayerEntry | undefined {
    const slash = rel.lastIndexOf('/');
    const [dirfd] = this.at(rel);
    const stat = sys.tryStatx(dirfd, WH_PREFIX + rel.slice(slash + 1), sys.AT_SYMLINK_NOFOLLOW, newStat());
    if (stat === undefined) return undefined;
    return { stat, whiteout: true, opaque: false, metacopy: false };
  }

  /**
   * The names in a directory of an immutable layer, listed once. Only small directories are listed:
   * a listing must not cost more than the failed lookups it saves.
   */
  private namesIn(dir: string): Set<string> | null {
    let names = this.listings.get(dir);
    if (names !== undefined) return names;
    names = null;
    try {
      const fd = this.dirFd(dir);
      const size = this.dirSizes.get(dir) ?? sys.statx(fd, '', sys.AT_EMPTY_PATH).size;
      if (size <= 65536) names = new Set(listDir(fd).map((d) => d.name));
    } catch {
      names = null;
    }
    this.listings.set(dir, names);
    return names;
  }

  private decode(rel: string, dirfd: number, name: string, stat: RealStat): LayerEntry {
    const type = stat.mode & S_IFMT;
    const entry: LayerEntry = { stat, whiteout: false, opaque: false, metacopy: false };
    if (type === S_IFCHR) {
      entry.whiteout = stat.rdev === 0;
      if (entry.whiteout) return entry;
    }
    if (type === S_IFDIR) {
      if (this.immutable) this.dirSizes.set(rel, stat.size);
      const opaque = this.xattrAt(dirfd, name, this.prefix + 'opaque');
      // "x" only marks a directory that holds xattr whiteouts; it is not opaque.
      entry.opaque = (opaque !== undefined && opaque.toString() === 'y') || this.hasOpaqueMarker(rel);
      this.decodeRedirect(entry, dirfd, name);
      // As opaque: the kernel reads one byte, so only the value "y" marks the directory.
      if (this.xattrAt(dirfd, name, this.prefix + 'impure')?.toString() === 'y') entry.impure = true;
      if (this.xattrAt(dirfd, name, this.prefix + 'origin') !== undefined) entry.mergeOrigin = true;
    } else if (type === S_IFREG) {
      if (stat.size === 0 && this.isXattrWhiteout(dirfd, name)) {
        entry.whiteout = true;
        return entry;
      }
      if (this.xattrAt(dirfd, name, this.prefix + 'metacopy') !== undefined) {
        entry.metacopy = true;
        this.decodeRedirect(entry, dirfd, name);
      }
    }
    const origin = this.xattrAt(dirfd, name, this.prefix + ORIGIN_NAME);
    // Our own record, but on a layer someone else may have written: anything but a plain inode number is ignored.
    if (origin !== undefined && /^[1-9][0-9]{0,15}$/.test(origin.toString())) entry.originIno = Number(origin.toString());
    return entry;
  }

  private decodeRedirect(entry: LayerEntry, dirfd: number, name: string): void {
    const value = this.xattrAt(dirfd, name, this.prefix + 'redirect');
    if (value === undefined) return;
    const { redirect, invalid } = decodeRedirect(value);
    if (redirect !== undefined) entry.redirect = redirect;
    if (invalid !== undefined) entry.invalid = invalid;
  }

  /** An OCI `.wh..wh..opq` file inside the directory marks it opaque. */
  private hasOpaqueMarker(rel: string): boolean {
    try {
      return sys.tryStatx(this.dirFd(rel), WH_OPAQUE) !== undefined;
    } catch {
      return false;
    }
  }

  /** An empty file with overlay.whiteout, in a directory marked overlay.opaque=x (or y). */
  private isXattrWhiteout(dirfd: number, name: string): boolean {
    if (this.xattrAt(dirfd, name, this.prefix + 'whiteout') === undefined) return false;
    const marker = this.xattrAt(dirfd, '.', this.prefix + 'opaque');
    return marker !== undefined && (marker.toString() === 'x' || marker.toString() === 'y');
  }

  lookupPath(rel: string): LayerEntry | undefined {
    if (rel === '') return this.lookup('');
    const parts = rel.split('/');
    let current = '';
    for (let i = 0; i < parts.length; i++) {
      current = current === '' ? parts[i] : `${current}/${parts[i]}`;
      const entry = this.lookup(current);
      if (entry === undefined || entry.whiteout) return undefined;
      if (i < parts.length - 1 && (entry.stat.mode & S_IFMT) !== S_IFDIR) return undefined;
      if (i === parts.length - 1) return entry;
    }
    return undefined;
  }

  lstat(rel: string): RealStat {
    const [dirfd, name] = this.at(rel);
    return sys.statx(dirfd, name, sys.AT_SYMLINK_NOFOLLOW, newStat());
  }

  readdir(rel: string): LayerDirent[] {
    const dirfd = this.dirFd(rel);
    const dirents = sys.listDirectory(dirfd);
    let xwhiteouts: boolean | undefined;
    const out: LayerDirent[] = [];
    for (const d of dirents) {
      const name = d.name;
      if (name.startsWith(WH_PREFIX)) {
        if (name === WH_OPAQUE) continue;
        out.push({ name: name.slice(WH_PREFIX.length), type: S_IFCHR, whiteout: true });
        continue;
      }
      let type = d.type;
      if (type === 0) type = (sys.tryStatx(dirfd, name)?.mode ?? 0) & S_IFMT;
      let whiteout = false;
      if (type === S_IFCHR) {
        whiteout = sys.tryStatx(dirfd, name)?.rdev === 0;
      } else if (type === S_IFREG) {
        xwhiteouts ??= ['x', 'y'].includes(this.xattrAt(dirfd, '.', this.prefix + 'opaque')?.toString() ?? '');
        if (xwhiteouts && this.xattrAt(dirfd, name, this.prefix + 'whiteout') !== undefined) whiteout = true;
      }
      out.push({ name, type, whiteout, ino: d.ino });
    }
    return out;
  }

  readlink(rel: string): string {
    const [dirfd, name] = this.at(rel);
    return sys.readlinkat(dirfd, name);
  }

  private isPrivateXattr(name: string): boolean {
    return name.startsWith(this.prefix) || name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
  }

  listxattr(rel: string): string[] {
    let names: string[];
    try {
      names = sys.llistxattr(this.xattrPath(rel));
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return [];
      throw fsError(code ?? 'EIO', 'listxattr', rel);
    }
    return names.filter((n) => !this.isPrivateXattr(n));
  }

  getxattr(rel: string, name: string): Buffer | undefined {
    if (this.isPrivateXattr(name)) return undefined;
    try {
      // getxattrat(2) on the parent's fd: no walk through /proc (half the kernel time of a lookup there).
      const [dirfd, entry] = this.at(rel);
      return sys.getxattrAt(dirfd, entry, name);
    } catch (err) {
      throw fsError(errorCode(err) ?? 'EIO', 'getxattr', rel);
    }
  }

  open(rel: string, flags: number): RealFile {
    const [dirfd, name] = this.at(rel);
    return new HostFile(sys.openat2(dirfd, name, flags | O_NOFOLLOW, { noSymlinks: true }));
  }

  statfs(): LayerStatFs { return fs.statfsSync(`/proc/self/fd/${this.rootFd}`); }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    dirFds.dropLayer(this.key);
    fs.closeSync(this.rootFd);
    if (this.workFd !== undefined) fs.closeSync(this.workFd);
    if (this.treeFd !== undefined) fs.closeSync(this.treeFd);
    for (const fd of this.inUseFds) fs.closeSync(fd);
  }

  // --- writing -------------------------------------------------------------------------------------

  tempPath(): string {
    return `\0#${process.pid.toString(16)}-${(tempCounter++).toString(16)}`;
  }

  create(rel: string, flags: number, mode: number): RealFile {
    const [dirfd, name] = this.at(rel);
    return new HostFile(sys.openat2(dirfd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW, { mode, noSymlinks: true }));
  }

  mkdir(rel: string, mode: number): void {
    const [dirfd, name] = this.at(rel);
    sys.mkdirat(dirfd, name, mode);
  }

  symlink(target: string, rel: string): void {
    const [dirfd, name] = this.at(rel);
    sys.symlinkat(target, dirfd, name);
  }

  mknod(rel: string, mode: number, rdev: number): void {
    const [dirfd, name] = this.at(rel);
    const type = mode & S_IFMT;
    sys.mknodat(dirfd, name, (type === 0 ? S_IFREG : type) | (mode & 0o7777), rdev);
  }

  link(existing: string, rel: string): void {
    const [olddirfd, oldname] = this.at(existing);
    const [newdirfd, newname] = this.at(rel);
    sys.linkat(olddirfd, oldname, newdirfd, newname);
  }

  unlink(rel: string): void {
    const [dirfd, name] = this.at(rel);
    sys.unlinkat(dirfd, name);
  }

  rmdir(rel: string): void {
    const [dirfd, name] = this.at(rel);
    sys.unlinkat(dirfd, name, sys.AT_REMOVEDIR);
    this.forget(rel);
  }

  rename(from: string, to: string, flags: RenameFlags = {}): void {
    const [olddirfd, oldname] = this.at(from);
    const [newdirfd, newname] = this.at(to);
    let bits = 0;
    if (flags.noReplace) bits |= sys.RENAME_NOREPLACE;
    if (flags.exchange) bits |= sys.RENAME_EXCHANGE;
    if (flags.whiteout && this.whiteoutFormat !== 'xattr') {
      try {
        sys.renameat2(olddirfd, oldname, newdirfd, newname, bits | sys.RENAME_WHITEOUT);
        this.moved(from, to, flags);
        return;
      } catch (err) {
        // RENAME_WHITEOUT makes a 0/0 device: where mknod of one is refused, so is this (EPERM);
        // a filesystem without it says EINVAL. Either way, fall back to two steps below.
        const code = errorCode(err);
        if (code !== 'EPERM' && code !== 'EINVAL') throw err;
        if (code === 'EPERM' && this.whiteoutFormat === 'auto') this.whiteoutFormat = 'xattr';
      }
    }
    if (!flags.whiteout) {
      sys.renameat2(olddirfd, oldname, newdirfd, newname, bits);
      this.moved(from, to, flags);
      return;
    }
    // The whiteout is made aside first and moved in right after: the name is free for a moment
    // (a crash then shows the lower entry again, never loses the moved one).
    const wh = this.tempPath();
    this.whiteout(wh);
    try {
      sys.renameat2(olddirfd, oldname, newdirfd, newname, bits);
    } catch (err) {
      this.removeTemp(wh);
      throw err;
    }
    this.moved(from, to, flags);
    this.rename(wh, from, { noReplace: true });
  }

  /** Bookkeeping after a rename: cached fds of what moved, and xattr whiteouts that changed parent. */
  private moved(from: string, to: string, flags: RenameFlags): void {
    this.forget(from);
    this.forget(to);
    if (flags.exchange) {
      const fromTemp = this.xattrWhiteoutTemps.delete(from);
      if (this.xattrWhiteoutTemps.delete(to)) this.markXattrWhiteoutParent(from);
      if (fromTemp) this.markXattrWhiteoutParent(to);
    } else if (this.xattrWhiteoutTemps.delete(from)) {
      this.markXattrWhiteoutParent(to);
    }
  }

  whiteout(rel: string): void {
    if (this.whiteoutFormat !== 'xattr') {
      try {
        this.deviceWhiteout(rel);
        return;
      } catch (err) {
        if (this.whiteoutFormat === 'chardev' || errorCode(err) !== 'EPERM') throw err;
        // Before Linux 5.8, or inside some containers, mknod of 0/0 needs privilege.
        this.whiteoutFormat = 'xattr';
      }
    }
    const [dirfd, name] = this.at(rel);
    // user.* xattrs need write permission on the file, so it cannot start as mode 0.
    fs.closeSync(sys.openat2(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, { mode: 0o600, noSymlinks: true }));
    sys.lsetxattr(DirLayer.procPath(dirfd, name), this.prefix + 'whiteout', EMPTY);
    if (rel.charCodeAt(0) === 0) this.xattrWhiteoutTemps.add(rel);
    else this.markXattrWhiteoutParent(rel);
  }

  /**
   * A 0/0 character device, hard-linked to one in the work dir, as the kernel shares its whiteout
   * inode (ovl_whiteout); a new one is made when that one has too many links or went away.
   */
  private deviceWhiteout(rel: string): void {
    const [dirfd, name] = this.at(rel);
    if (this.workFd === undefined) {
      sys.mknodat(dirfd, name, S_IFCHR, 0);
      return;
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.sharedWhiteout === undefined) {
        const shared = this.tempPath().slice(1);
        sys.mknodat(this.workFd, shared, S_IFCHR, 0);
        this.sharedWhiteout = shared;
      }
      try {
        sys.linkat(this.workFd, this.sharedWhiteout, dirfd, name);
        return;
      } catch (err) {
        const code = errorCode(err);
        if (code !== 'EMLINK' && code !== 'ENOENT') throw err;
        this.sharedWhiteout = undefined;
      }
    }
    sys.mknodat(dirfd, name, S_IFCHR, 0);
  }

  private markXattrWhiteoutParent(rel: string): void {
    const slash = rel.lastIndexOf('/');
    const parent = this.xattrPath(slash < 0 ? '' : rel.slice(0, slash));
    if (this.xattrGet(parent, this.prefix + 'opaque')?.toString() === 'y') return;
    sys.lsetxattr(parent, this.prefix + 'opaque', Buffer.from('x'));
  }

  private setPrivate(rel: string, name: string, value: string): void {
    sys.lsetxattr(this.xattrPath(rel), this.prefix + name, Buffer.from(value));
  }

  setOpaque(rel: string): void { this.setPrivate(rel, 'opaque', 'y'); }

  setImpure(rel: string): void { this.setPrivate(rel, 'impure', 'y'); }

  setRedirect(rel: string, redirect: string): void { this.setPrivate(rel, 'redirect', redirect); }

  setMetacopy(rel: string, on: boolean): void {
    const path = this.xattrPath(rel);
    if (on) sys.lsetxattr(path, this.prefix + 'metacopy', EMPTY);
    else if (this.xattrGet(path, this.prefix + 'metacopy') !== undefined) sys.lremovexattr(path, this.prefix + 'metacopy');
  }

  setxattr(rel: string, name: string, value: Uint8Array): void {
    if (this.isPrivateXattr(name)) throw fsError('EPERM', 'setxattr', rel);
    sys.lsetxattr(this.xattrPath(rel), name, value);
  }

  removexattr(rel: string, name: string): void {
    if (this.isPrivateXattr(name)) throw fsError('ENODATA', 'removexattr', rel);
    sys.lremovexattr(this.xattrPath(rel), name);
  }

  chmod(rel: string, mode: number): void {
    const [dirfd, name] = this.at(rel);
    sys.fchmodat(dirfd, name, mode & 0o7777);
  }

  lchown(rel: string, uid: number, gid: number): void {
    const [dirfd, name] = this.at(rel);
    sys.fchownat(dirfd, name, uid, gid);
  }

  lutimes(rel: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    const [dirfd, name] = this.at(rel);
    sys.utimensat(dirfd, name, atimeNs, mtimeNs);
  }

  truncate(rel: string, length: FileOffset): void {
    const file = this.open(rel, O_WRONLY);
    try {
      file.truncate(length);
    } finally {
      file.close();
    }
  }

  copyData(from: Layer, fromRel: string, rel: string): void {
    const input = from.open(fromRel, O_RDONLY);
    try {
      const [dirfd, name] = this.at(rel);
      const output = new HostFile(sys.openat2(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, { mode: 0o600, noSymlinks: true }));
      try {
        // A reflink where the filesystem can (XFS, btrfs), copy_file_range inside the kernel otherwise.
        copyFileData(input, output);
      } finally {
        output.close();
      }
    } finally {
      input.close();
    }
  }

  setMetadata(rel: string, meta: CopyUpMetadata): void {
    const [dirfd, name] = this.at(rel);
    const stat = sys.statx(dirfd, name);
    const isLink = (stat.mode & S_IFMT) === S_IFLNK;
    try {
      sys.fchownat(dirfd, name, meta.uid, meta.gid);
    } catch (err) {
      // Unprivileged copy-up cannot give files away; the kernel needs privilege for that too.
      if (errorCode(err) !== 'EPERM') throw err;
    }
    // chown clears set-id bits, so the mode comes after it. Symlink modes are meaningless on Linux.
    if (!isLink) sys.fchmodat(dirfd, name, meta.mode & 0o7777);
    const path = DirLayer.procPath(dirfd, name);
    for (const [xname, value] of meta.xattrs) {
      try {
        sys.lsetxattr(path, xname, value);
      } catch (err) {
        const code = errorCode(err) ?? 'EIO';
        if (code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EPERM') throw fsError(code, 'setxattr', rel);
      }
    }
    if (meta.originIno !== undefined && !(isLink && this.prefix.startsWith('user.'))) {
      sys.lsetxattr(path, this.prefix + ORIGIN_NAME, Buffer.from(String(meta.originIno)));
    }
    sys.utimensat(dirfd, name, meta.atimeNs, meta.mtimeNs);
  }

  fsync(rel: string): void {
    const file = this.open(rel, O_RDONLY);
    try {
      file.sync();
    } finally {
      file.close();
    }
  }

  syncfs(): void {
    // The root fd is O_PATH, which syncfs(2) refuses: a plain open of the same directory.
    const fd = fs.openSync(`/proc/self/fd/${this.rootFd}`, O_RDONLY | O_DIRECTORY);
    try {
      sys.syncfs(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  removeTemp(rel: string): void {
    const [dirfd, name] = this.at(rel);
    this.removeTree(dirfd, name);
    this.forget(rel);
  }

  /** rm -rf of one entry below dirfd, through fds only; a missing entry is fine. */
  private removeTree(dirfd: number, name: string): void {
    const stat = sys.tryStatx(dirfd, name);
    if (stat === undefined) return;
    if ((stat.mode & S_IFMT) === S_IFDIR) {
      const fd = sys.openat2(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, { noSymlinks: true });
      try {
        for (const child of listDir(fd)) this.removeTree(fd, child.name);
      } finally {
        fs.closeSync(fd);
      }
      sys.unlinkat(dirfd, name, sys.AT_REMOVEDIR);
    } else {
      sys.unlinkat(dirfd, name);
    }
  }
}
