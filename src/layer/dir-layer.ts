// A layer that is a real directory in the kernel's on-disk format.
//
// Reads everything the kernel, Docker's overlay2 and fuse-overlayfs write: 0/0 character-device
// whiteouts, xattr whiteouts (overlay.whiteout in a directory marked overlay.opaque=x), `.wh.NAME`
// files and `.wh..wh..opq` markers, and the overlay.{opaque,redirect,metacopy} xattrs under the
// trusted.overlay. or user.overlay. prefix. Writes the kernel's format: 0/0 whiteouts hard-linked to
// one shared inode when privileged, xattr whiteouts otherwise.
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as xattr from '@napi-rs/xattr';
import { fsError, xattrErrorCode } from '../errors.js';
import {
  S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
  type CopyUpMetadata, type Layer, type LayerDirent, type LayerEntry, type LayerStatFs,
  type RealFile, type RealStat, type WritableLayer,
} from './types.js';

const { O_NOFOLLOW, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;
const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';
/** Our own private xattr: the origin's inode number, so st_ino survives copy-up and remount. */
const ORIGIN_NAME = 'ovlfs.origin';

export interface DirLayerOptions {
  /** 'trusted.overlay.' (default) or 'user.overlay.' (userxattr). */
  xattrPrefix?: string;
  /** How to write whiteouts: a 0/0 character device (needs privilege) or an xattr whiteout. */
  whiteoutFormat?: 'chardev' | 'xattr';
  /** The work directory (upper layers only); temps live in its `work` subdirectory, as the kernel's do. */
  workdir?: string;
  /**
   * The layer never changes while in use (a lower layer): lookups may answer misses from a cached
   * listing of the directory instead of two failed lstats (the name and its `.wh.` form).
   */
  immutable?: boolean;
  name?: string;
}

/** An open host file: positional I/O on a real descriptor. */
export class HostFile implements RealFile {
  constructor(readonly fd: number) {}
  read(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number): number {
    return fs.readSync(this.fd, buffer, offset, length, position);
  }
  write(buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | null): number {
    return fs.writeSync(this.fd, buffer, offset, length, position);
  }
  stat(): RealStat { return fs.fstatSync(this.fd); }
  truncate(length: number): void { fs.ftruncateSync(this.fd, length); }
  sync(): void { fs.fsyncSync(this.fd); }
  datasync(): void { fs.fdatasyncSync(this.fd); }
  chmod(mode: number): void { fs.fchmodSync(this.fd, mode); }
  chown(uid: number, gid: number): void { fs.fchownSync(this.fd, uid, gid); }
  utimes(atime: number, mtime: number): void { fs.futimesSync(this.fd, atime / 1000, mtime / 1000); }
  close(): void { fs.closeSync(this.fd); }
}

function xattrGet(path: string, name: string): Buffer | undefined {
  try {
    return xattr.getAttributeSync(path, name) ?? undefined;
  } catch {
    // ENOTSUP on filesystems without xattrs, EPERM for user.* on symlinks: nothing there.
    return undefined;
  }
}

function xattrCall(fn: () => void, syscall: string, path: string): void {
  try {
    fn();
  } catch (err) {
    throw fsError(xattrErrorCode(err), syscall, path);
  }
}

let tempCounter = 0;

export class DirLayer implements WritableLayer {
  readonly name: string;
  readonly fsId: number;
  readonly prefix: string;
  private readonly whiteoutFormat: 'chardev' | 'xattr';
  private readonly workTemp: string | undefined;
  private sharedWhiteout: string | undefined;
  private readonly immutable: boolean;
  /** Immutable layers: the names in each small directory looked into; null when not worth listing. */
  private readonly listings = new Map<string, Set<string> | null>();
  /** Temps made as xattr whiteouts: their new parent gets the opaque=x marker when they move in. */
  private readonly xattrWhiteoutTemps = new Set<string>();

  constructor(readonly root: string, options: DirLayerOptions = {}) {
    this.name = options.name ?? root;
    this.prefix = options.xattrPrefix ?? 'trusted.overlay.';
    this.whiteoutFormat = options.whiteoutFormat ?? 'chardev';
    this.immutable = options.immutable === true;
    this.fsId = fs.statSync(root).dev;
    if (options.workdir !== undefined) {
      this.workTemp = `${options.workdir}/work`;
      // Leftovers of a crashed copy-up were never visible; clear them, as the kernel does at mount.
      fs.rmSync(this.workTemp, { recursive: true, force: true });
      fs.mkdirSync(this.workTemp, { mode: 0o700 });
    }
  }

  /** The host path of a layer path or a work-area temp. */
  abs(rel: string): string {
    if (rel.charCodeAt(0) === 0) {
      if (this.workTemp === undefined) throw fsError('EROFS', 'open', rel.slice(1));
      return `${this.workTemp}/${rel.slice(1)}`;
    }
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  hostPath(rel: string): string { return this.abs(rel); }

  private statOrUndefined(path: string): fs.Stats | undefined {
    try {
      return fs.lstatSync(path, { throwIfNoEntry: false });
    } catch {
      return undefined; // ENOTDIR: a parent is not a directory in this layer.
    }
  }

  lookup(rel: string): LayerEntry | undefined {
    if (this.immutable && rel !== '') {
      const slash = rel.lastIndexOf('/');
      const names = this.namesIn(slash < 0 ? '' : rel.slice(0, slash));
      const name = rel.slice(slash + 1);
      if (names !== null && !names.has(name)) {
        if (!names.has(WH_PREFIX + name)) return undefined;
        const whPath = this.abs(`${rel.slice(0, slash + 1)}${WH_PREFIX}${name}`);
        return { stat: fs.lstatSync(whPath), whiteout: true, opaque: false, metacopy: false };
      }
    }
    const path = this.abs(rel);
    const stat = this.statOrUndefined(path);
    if (stat === undefined) {
      // An AUFS/OCI-style `.wh.NAME` beside a missing NAME is a whiteout too.
      const slash = rel.lastIndexOf('/');
      const whPath = this.abs(`${rel.slice(0, slash + 1)}${WH_PREFIX}${rel.slice(slash + 1)}`);
      if (rel !== '' && this.statOrUndefined(whPath) !== undefined) {
        return { stat: fs.lstatSync(whPath), whiteout: true, opaque: false, metacopy: false };
      }
      return undefined;
    }
    return this.decode(rel, path, stat);
  }

  /**
   * The names in a directory of an immutable layer, listed once. Only small directories are listed:
   * a listing must not cost more than the failed lookups it saves.
   */
  private namesIn(dir: string): Set<string> | null {
    let names = this.listings.get(dir);
    if (names !== undefined) return names;
    names = null;
    const stat = this.statOrUndefined(this.abs(dir));
    if (stat !== undefined && stat.isDirectory() && stat.size <= 65536) {
      try {
        names = new Set(fs.readdirSync(this.abs(dir)));
      } catch {
        names = null;
      }
    }
    this.listings.set(dir, names);
    return names;
  }

  private decode(rel: string, path: string, stat: RealStat): LayerEntry {
    const type = stat.mode & S_IFMT;
    const entry: LayerEntry = { stat, whiteout: false, opaque: false, metacopy: false };
    if (type === S_IFCHR) {
      entry.whiteout = stat.rdev === 0;
    } else if (type === S_IFDIR) {
      const opaque = xattrGet(path, this.prefix + 'opaque');
      // "x" only marks a directory that holds xattr whiteouts; it is not opaque.
      entry.opaque = (opaque !== undefined && opaque.toString() === 'y') ||
        this.statOrUndefined(`${path}/${WH_OPAQUE}`) !== undefined;
      const redirect = xattrGet(path, this.prefix + 'redirect');
      if (redirect !== undefined) entry.redirect = redirect.toString();
    } else if (type === S_IFREG) {
      if (stat.size === 0 && this.isXattrWhiteout(rel, path)) {
        entry.whiteout = true;
        return entry;
      }
      if (xattrGet(path, this.prefix + 'metacopy') !== undefined) {
        entry.metacopy = true;
        const redirect = xattrGet(path, this.prefix + 'redirect');
        if (redirect !== undefined) entry.redirect = redirect.toString();
      }
    }
    if (!entry.whiteout) {
      const origin = xattrGet(path, this.prefix + ORIGIN_NAME);
      if (origin !== undefined) entry.originIno = Number(origin.toString());
    }
    return entry;
  }

  private isXattrWhiteout(rel: string, path: string): boolean {
    if (xattrGet(path, this.prefix + 'whiteout') === undefined) return false;
    const slash = rel.lastIndexOf('/');
    const marker = xattrGet(this.abs(rel.slice(0, Math.max(slash, 0))), this.prefix + 'opaque');
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

  lstat(rel: string): RealStat { return fs.lstatSync(this.abs(rel)); }

  readdir(rel: string): LayerDirent[] {
    const path = this.abs(rel);
    const dirents = fs.readdirSync(path, { withFileTypes: true });
    let xwhiteouts: boolean | undefined;
    const out: LayerDirent[] = [];
    for (const d of dirents) {
      const name = d.name;
      if (name.startsWith(WH_PREFIX)) {
        if (name === WH_OPAQUE) continue;
        out.push({ name: name.slice(WH_PREFIX.length), type: S_IFCHR, whiteout: true });
        continue;
      }
      let type = 0;
      if (d.isFile()) type = S_IFREG;
      else if (d.isDirectory()) type = S_IFDIR;
      else if (d.isSymbolicLink()) type = S_IFLNK;
      else if (d.isCharacterDevice()) type = S_IFCHR;
      else {
        type = this.statOrUndefined(`${path}/${name}`)?.mode ?? 0;
        type &= S_IFMT;
      }
      let whiteout = false;
      if (type === S_IFCHR) {
        whiteout = this.statOrUndefined(`${path}/${name}`)?.rdev === 0;
      } else if (type === S_IFREG) {
        xwhiteouts ??= ['x', 'y'].includes(xattrGet(path, this.prefix + 'opaque')?.toString() ?? '');
        if (xwhiteouts && xattrGet(`${path}/${name}`, this.prefix + 'whiteout') !== undefined) whiteout = true;
      }
      out.push({ name, type, whiteout });
    }
    return out;
  }

  readlink(rel: string): string { return fs.readlinkSync(this.abs(rel)); }

  private isPrivateXattr(name: string): boolean {
    return name.startsWith(this.prefix) || name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
  }

  listxattr(rel: string): string[] {
    let names: string[];
    try {
      names = xattr.listAttributesSync(this.abs(rel));
    } catch (err) {
      const code = xattrErrorCode(err);
      if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return [];
      throw fsError(code, 'listxattr', rel);
    }
    return names.filter((n) => !this.isPrivateXattr(n));
  }

  getxattr(rel: string, name: string): Buffer | undefined {
    if (this.isPrivateXattr(name)) return undefined;
    try {
      return xattr.getAttributeSync(this.abs(rel), name) ?? undefined;
    } catch (err) {
      throw fsError(xattrErrorCode(err), 'getxattr', rel);
    }
  }

  open(rel: string, flags: number): RealFile {
    return new HostFile(fs.openSync(this.abs(rel), flags | O_NOFOLLOW));
  }

  statfs(): LayerStatFs { return fs.statfsSync(this.root); }

  close(): void { /* nothing held */ }

  // --- writing -----------------------------------------------------------------------------------

  tempPath(): string {
    return `\0#${process.pid.toString(16)}-${(tempCounter++).toString(16)}`;
  }

  create(rel: string, flags: number, mode: number): RealFile {
    return new HostFile(fs.openSync(this.abs(rel), flags | O_CREAT | O_EXCL | O_NOFOLLOW, mode));
  }

  mkdir(rel: string, mode: number): void { fs.mkdirSync(this.abs(rel), { mode }); }

  symlink(target: string, rel: string): void { fs.symlinkSync(target, this.abs(rel)); }

  mknod(rel: string, mode: number, rdev: number): void {
    const path = this.abs(rel);
    const perm = (mode & 0o7777).toString(8);
    const type = mode & S_IFMT;
    if (type === S_IFREG || type === 0) {
      fs.closeSync(fs.openSync(path, O_WRONLY | O_CREAT | O_EXCL, mode & 0o7777));
      return;
    }
    // Node has no mknod(2); mknod(1) makes fifos (unprivileged) and devices (privileged).
    const kind = type === 0o010000 ? ['p'] : type === S_IFCHR ? ['c', String(rdev >> 8), String(rdev & 0xff)] : type === 0o060000 ? ['b', String(rdev >> 8), String(rdev & 0xff)] : undefined;
    if (kind === undefined) throw fsError('EPERM', 'mknod', rel);
    if (this.statOrUndefined(path) !== undefined) throw fsError('EEXIST', 'mknod', rel);
    try {
      execFileSync('mknod', ['-m', perm, path, ...kind], { stdio: 'ignore' });
    } catch {
      throw fsError('EPERM', 'mknod', rel);
    }
  }

  link(existing: string, rel: string): void { fs.linkSync(this.abs(existing), this.abs(rel)); }

  unlink(rel: string): void { fs.unlinkSync(this.abs(rel)); }

  rmdir(rel: string): void { fs.rmdirSync(this.abs(rel)); }

  rename(from: string, to: string, noReplace = false): void {
    const dst = this.abs(to);
    // Without renameat2 in Node, NOREPLACE is a check then a rename: we are the upper's only writer.
    if (noReplace && this.statOrUndefined(dst) !== undefined) throw fsError('EEXIST', 'rename', from, to);
    fs.renameSync(this.abs(from), dst);
    if (this.xattrWhiteoutTemps.delete(from)) this.markXattrWhiteoutParent(to);
  }

  whiteout(rel: string): void {
    if (this.whiteoutFormat === 'xattr') {
      const path = this.abs(rel);
      // user.* xattrs need write permission on the file, so it cannot start as mode 0.
      fs.closeSync(fs.openSync(path, O_WRONLY | O_CREAT | O_EXCL, 0o600));
      xattrCall(() => xattr.setAttributeSync(path, this.prefix + 'whiteout', ''), 'setxattr', rel);
      if (rel.charCodeAt(0) === 0) this.xattrWhiteoutTemps.add(rel);
      else this.markXattrWhiteoutParent(rel);
      return;
    }
    // One 0/0 device, hard-linked for every whiteout, as the kernel shares its whiteout inode.
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.sharedWhiteout === undefined || this.statOrUndefined(this.sharedWhiteout) === undefined) {
        this.sharedWhiteout = this.abs(this.tempPath());
        try {
          execFileSync('mknod', ['-m', '000', this.sharedWhiteout, 'c', '0', '0'], { stdio: 'ignore' });
        } catch {
          throw fsError('EPERM', 'mknod', rel, undefined, 'cannot create a 0/0 whiteout (needs privilege; use userxattr)');
        }
      }
      try {
        fs.linkSync(this.sharedWhiteout, this.abs(rel));
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EMLINK' && code !== 'ENOENT') throw err;
        this.sharedWhiteout = undefined; // Too many links, or the kernel cleaned the work dir: make a new one.
      }
    }
    throw fsError('EMLINK', 'link', rel);
  }

  private markXattrWhiteoutParent(rel: string): void {
    const slash = rel.lastIndexOf('/');
    const parent = this.abs(slash < 0 ? '' : rel.slice(0, slash));
    if (xattrGet(parent, this.prefix + 'opaque')?.toString() === 'y') return;
    xattrCall(() => xattr.setAttributeSync(parent, this.prefix + 'opaque', 'x'), 'setxattr', rel);
  }

  setOpaque(rel: string): void {
    const path = this.abs(rel);
    xattrCall(() => xattr.setAttributeSync(path, this.prefix + 'opaque', 'y'), 'setxattr', rel);
  }

  setRedirect(rel: string, redirect: string): void {
    const path = this.abs(rel);
    xattrCall(() => xattr.setAttributeSync(path, this.prefix + 'redirect', redirect), 'setxattr', rel);
  }

  setMetacopy(rel: string, on: boolean): void {
    const path = this.abs(rel);
    if (on) xattrCall(() => xattr.setAttributeSync(path, this.prefix + 'metacopy', ''), 'setxattr', rel);
    else if (xattrGet(path, this.prefix + 'metacopy') !== undefined) {
      xattrCall(() => xattr.removeAttributeSync(path, this.prefix + 'metacopy'), 'removexattr', rel);
    }
  }

  setxattr(rel: string, name: string, value: Uint8Array): void {
    if (this.isPrivateXattr(name)) throw fsError('EPERM', 'setxattr', rel);
    xattrCall(() => xattr.setAttributeSync(this.abs(rel), name, value), 'setxattr', rel);
  }

  removexattr(rel: string, name: string): void {
    if (this.isPrivateXattr(name)) throw fsError('ENODATA', 'removexattr', rel);
    const path = this.abs(rel);
    if (xattrGet(path, name) === undefined) throw fsError('ENODATA', 'removexattr', rel);
    xattrCall(() => xattr.removeAttributeSync(path, name), 'removexattr', rel);
  }

  chmod(rel: string, mode: number): void { fs.chmodSync(this.abs(rel), mode & 0o7777); }

  lchown(rel: string, uid: number, gid: number): void { fs.lchownSync(this.abs(rel), uid, gid); }

  lutimes(rel: string, atimeMs: number, mtimeMs: number): void {
    fs.lutimesSync(this.abs(rel), atimeMs / 1000, mtimeMs / 1000);
  }

  truncate(rel: string, length: number): void { fs.truncateSync(this.abs(rel), length); }

  copyData(from: Layer, fromRel: string, rel: string): void {
    const src = from.hostPath(fromRel);
    const dst = this.abs(rel);
    if (src !== undefined) {
      // Clones where the filesystem can (XFS/btrfs reflink), copies otherwise.
      fs.copyFileSync(src, dst, fs.constants.COPYFILE_FICLONE);
      return;
    }
    const input = from.open(fromRel, fs.constants.O_RDONLY);
    const fd = fs.openSync(dst, fs.constants.O_WRONLY | O_CREAT | fs.constants.O_TRUNC | O_NOFOLLOW, 0o600);
    try {
      const buffer = Buffer.allocUnsafe(1 << 20);
      for (let pos = 0; ;) {
        const n = input.read(buffer, 0, buffer.length, pos);
        if (n === 0) break;
        fs.writeSync(fd, buffer, 0, n, pos);
        pos += n;
      }
    } finally {
      input.close();
      fs.closeSync(fd);
    }
  }

  setMetadata(rel: string, meta: CopyUpMetadata): void {
    const path = this.abs(rel);
    const stat = fs.lstatSync(path);
    const isLink = (stat.mode & S_IFMT) === S_IFLNK;
    try {
      fs.lchownSync(path, meta.uid, meta.gid);
    } catch (err) {
      // Unprivileged copy-up cannot give files away; the kernel needs privilege for that too.
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    }
    // chown clears set-id bits, so the mode comes after it. Symlink modes are meaningless on Linux.
    if (!isLink) fs.chmodSync(path, meta.mode & 0o7777);
    for (const [name, value] of meta.xattrs) {
      try {
        xattr.setAttributeSync(path, name, value);
      } catch (err) {
        const code = xattrErrorCode(err);
        if (code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EPERM') throw fsError(code, 'setxattr', rel);
      }
    }
    if (meta.originIno !== undefined && !(isLink && this.prefix.startsWith('user.'))) {
      xattrCall(() => xattr.setAttributeSync(path, this.prefix + ORIGIN_NAME, String(meta.originIno)), 'setxattr', rel);
    }
    fs.lutimesSync(path, meta.atimeMs / 1000, meta.mtimeMs / 1000);
  }

  fsync(rel: string): void {
    const fd = fs.openSync(this.abs(rel), fs.constants.O_RDONLY | O_NOFOLLOW);
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  removeTemp(rel: string): void { fs.rmSync(this.abs(rel), { recursive: true, force: true }); }
}
