// An OCI image-layer tar unpacked into a directory in the kernel's overlay format: `.wh.NAME`
// becomes a 0/0 character-device whiteout (an xattr whiteout where mknod is refused), and
// `.wh..wh..opq` the opaque xattr on its directory.
//
// The tar is hostile input. Every host access goes through a DirLayer on `dir`: its root fd is
// opened once, parents are opened beneath it with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
// and the last component is never followed. The checks below (no '..', no path through a symlink,
// hard links inside the layer) give clear errors; the fds make sure a bug in them cannot escape.
import * as fs from 'node:fs';
import { errorCode, fsError, isFsError, type FsError } from '../errors.js';
import { DirLayer } from '../layer/dir-layer.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT } from '../layer/types.js';
import { makedev } from './devices.js';
import { MergedView, openLayers } from './merged-view.js';
import { isOverlayPrivateXattr, OPAQUE_MARKER, WHITEOUT_PREFIX } from './names.js';
import { TarFormatError, type TarEntry } from './tar-header.js';
import { readTar } from './tar-reader.js';

export interface UnpackOptions {
  /** 'trusted.overlay.' (root) or 'user.overlay.' (userxattr): the form the mount will read. */
  xattrPrefix: string;
  /** Device nodes (other than whiteouts) allowed; when false they are refused with an error naming the entry. */
  privileged: boolean;
  /** Refuse a layer whose content (sum of entry sizes) exceeds this many bytes: decompression bombs. Default 64 GiB. */
  maxBytes?: number;
  /**
   * The layers this one will be stacked on, top-most first. A directory the tar leaves implicit (a
   * parent with no entry of its own, as tools that write only the changed files leave it) then
   * takes its mode, owner, times and xattrs from what they show there, so that it does not hide
   * theirs; without them it is made 0755, owned by the unpacking user.
   */
  lowerdirs?: string[];
}

const DEFAULT_MAX_BYTES = 64 * 2 ** 30;
/** No path the kernel can name in one call is longer; a longer one in a tar is an attack on the unpacker. */
const PATH_MAX = 4096;
const SYSCALL = 'unpack';

/** An error that names the tar entry (as the archive spells it) and says what is wrong with it. */
function refuse(entry: string, why: string, code = 'EINVAL'): FsError {
  return fsError(code, SYSCALL, entry, undefined, why);
}

/**
 * The layer path of a tar name (or a hard link's target): a leading './' is dropped, and so are empty
 * and '.' components; '..' and absolute names are refused, whatever they would lead to, as a naive
 * extractor would write them outside the layer. '' is the layer's root.
 */
export function layerPath(name: string, entry: string): string {
  if (name.includes('\0')) throw refuse(entry, `a NUL byte in the name ${JSON.stringify(name)}`);
  if (name.startsWith('/')) throw refuse(entry, `an absolute name ${JSON.stringify(name)}: a layer's names are relative to its root`);
  if (Buffer.byteLength(name) >= PATH_MAX) throw refuse(entry, `a name longer than PATH_MAX (${PATH_MAX} bytes)`, 'ENAMETOOLONG');
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw refuse(entry, `'..' in the name ${JSON.stringify(name)} would leave the layer`);
  // A .wh. name is a marker, never a directory: the overlay would read it as a whiteout.
  if (parts.slice(0, -1).some((part) => part.startsWith(WHITEOUT_PREFIX))) {
    throw refuse(entry, `a whiteout marker used as a directory in ${JSON.stringify(name)}`);
  }
  return parts.join('/');
}

function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

interface DirTimes {
  mode: number;
  atimeNs: bigint;
  mtimeNs: bigint;
}

/** One unpack: the layer being written and what it has made so far. */
class Unpacker {
  private readonly maxBytes: number;
  private total = 0;
  /** Directories' modes and times, set after their content (creating entries changes a directory's mtime). */
  private readonly dirTimes = new Map<string, DirTimes>();
  /** Paths known to be real directories of this layer. */
  private readonly dirs = new Set<string>(['']);
  private readonly isRoot = process.geteuid?.() === 0;

  constructor(private readonly layer: DirLayer, private readonly options: UnpackOptions, private readonly lowers: MergedView | undefined) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  }

  async entry(entry: TarEntry, data: AsyncIterable<Buffer>): Promise<void> {
    const name = entry.path;
    const rel = layerPath(name, name);
    this.total += entry.size;
    if (this.total > this.maxBytes) {
      throw refuse(name, `the layer's content exceeds the limit of ${this.maxBytes} bytes`, 'EFBIG');
    }
    for (const xname of entry.xattrs.keys()) {
      if (isOverlayPrivateXattr(xname)) throw refuse(name, `the overlay's own xattr ${xname} is not allowed in a layer`, 'EPERM');
    }
    const base = baseOf(rel);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.marker(rel, name);
      return;
    }
    if (rel === '') {
      if (entry.type !== 'dir') throw refuse(name, `the layer's root must be a directory, not a ${entry.type}`);
      this.setDirMetadata(rel, entry);
      return;
    }
    this.parents(parentOf(rel), name);
    switch (entry.type) {
      case 'dir': {
        const existing = this.layer.lookup(rel);
        if (existing === undefined || existing.whiteout || (existing.stat.mode & S_IFMT) !== S_IFDIR) {
          const wasWhiteout = existing?.whiteout === true;
          if (existing !== undefined) this.remove(rel);
          this.layer.mkdir(rel, 0o700);
          // A whiteout of this name earlier in the layer hides the lower directory: this one replaces it.
          if (wasWhiteout) this.layer.setOpaque(rel);
        }
        this.dirs.add(rel);
        this.setDirMetadata(rel, entry);
        return;
      }
      case 'file': {
        this.clear(rel);
        const file = this.layer.create(rel, fs.constants.O_WRONLY, 0o600);
        try {
          let written = 0;
          for await (const chunk of data) {
            for (let off = 0; off < chunk.length;) off += file.write(chunk, off, chunk.length - off, written + off);
            written += chunk.length;
          }
        } finally {
          file.close();
        }
        break;
      }
      case 'symlink':
        if (entry.linkname.includes('\0')) throw refuse(name, 'a NUL byte in the symlink target');
        if (entry.linkname === '') throw refuse(name, 'a symlink with an empty target');
        this.clear(rel);
        this.layer.symlink(entry.linkname, rel);
        break;
      case 'link': {
        const target = layerPath(entry.linkname, name);
        const found = target === '' ? undefined : this.layer.lookup(target);
        if (found === undefined || found.whiteout) {
          throw refuse(name, `hard link to ${JSON.stringify(entry.linkname)}, which is not in this layer before it`, 'ENOENT');
        }
        if ((found.stat.mode & S_IFMT) === S_IFDIR) throw refuse(name, `hard link to the directory ${JSON.stringify(entry.linkname)}`, 'EPERM');
        if (target === rel) return;
        this.clear(rel);
        this.layer.link(target, rel);
        // A hard link shares its target's inode and metadata.
        return;
      }
      case 'char':
      case 'block': {
        if (entry.type === 'char' && entry.devmajor === 0 && entry.devminor === 0) {
          throw refuse(name, 'a 0/0 character device is an overlay whiteout; an OCI layer marks whiteouts with .wh. files');
        }
        if (!this.options.privileged) throw refuse(name, `${entry.type === 'char' ? 'character' : 'block'} device files are refused in an unprivileged unpack`, 'EPERM');
        this.clear(rel);
        this.layer.mknod(rel, (entry.type === 'char' ? S_IFCHR : S_IFBLK) | 0o600, makedev(entry.devmajor, entry.devminor));
        break;
      }
      case 'fifo':
        this.clear(rel);
        this.layer.mknod(rel, S_IFIFO | 0o600, 0);
        break;
    }
    this.setMetadata(rel, entry);
  }

  /** `.wh.NAME` and `.wh..wh..opq`: a whiteout, or an opaque directory. */
  private marker(rel: string, name: string): void {
    const dir = parentOf(rel);
    const base = baseOf(rel);
    this.parents(dir, name);
    if (base === OPAQUE_MARKER) {
      this.layer.setOpaque(dir);
      return;
    }
    const hidden = base.slice(WHITEOUT_PREFIX.length);
    if (hidden === '' || hidden === '.' || hidden === '..') throw refuse(name, `a whiteout of ${JSON.stringify(hidden)}`);
    const target = dir === '' ? hidden : `${dir}/${hidden}`;
    const existing = this.layer.lookup(target);
    // A whiteout hides the layers below only. An entry of this layer by that name already hides
    // them, except a directory, which merges with them unless it is opaque.
    if (existing === undefined) this.layer.whiteout(target);
    else if (!existing.whiteout && (existing.stat.mode & S_IFMT) === S_IFDIR) this.layer.setOpaque(target);
  }

  /** Makes sure the directories up to `dir` exist; refuses a path through anything else. */
  private parents(dir: string, name: string): void {
    if (this.dirs.has(dir)) return;
    const parts = dir.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join('/');
      if (this.dirs.has(path)) continue;
      const existing = this.layer.lookup(path);
      if (existing === undefined || existing.whiteout) {
        // Tars may leave parents implicit; a parent whited out earlier in the layer comes back opaque.
        if (existing !== undefined) this.layer.unlink(path);
        this.layer.mkdir(path, 0o755);
        if (existing !== undefined) this.layer.setOpaque(path);
        else this.inherit(path, name);
      } else if ((existing.stat.mode & S_IFMT) !== S_IFDIR) {
        const symlink = (existing.stat.mode & S_IFMT) === fs.constants.S_IFLNK;
        throw refuse(name, `the path goes through ${symlink ? 'a symlink' : 'a non-directory'} made earlier in the layer ('${path}')`, symlink ? 'ELOOP' : 'ENOTDIR');
      }
      this.dirs.add(path);
    }
  }

  /** An implicit directory takes the metadata of the directory the lower layers show by its name. */
  private inherit(rel: string, name: string): void {
    const node = this.lowers?.node(rel);
    if (node === undefined || !node.isDir) return;
    const stat = this.lowers!.overlay.getattr(node);
    this.chown(rel, stat.uid, stat.gid);
    this.setXattrs(rel, name, this.lowers!.xattrs(node));
    this.dirTimes.set(rel, { mode: stat.mode & 0o7777, atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs });
  }

  /** Makes room for a non-directory: a later entry replaces an earlier one of the same name. */
  private clear(rel: string): void {
    if (this.layer.lookup(rel) !== undefined) this.remove(rel);
  }

  private remove(rel: string): void {
    this.layer.removeTemp(rel);
    for (const dir of [...this.dirs]) {
      if (dir === rel || dir.startsWith(rel + '/')) this.dirs.delete(dir);
    }
    for (const dir of [...this.dirTimes.keys()]) {
      if (dir === rel || dir.startsWith(rel + '/')) this.dirTimes.delete(dir);
    }
  }

  private chown(rel: string, uid: number, gid: number): void {
    try {
      this.layer.lchown(rel, uid, gid);
    } catch (err) {
      // Without privilege, files keep the unpacking user's ids, as rootless tools keep them.
      if (this.isRoot || errorCode(err) !== 'EPERM') throw err;
    }
  }

  private setXattrs(rel: string, name: string, xattrs: Iterable<[string, Buffer]>): void {
    for (const [xname, value] of xattrs) {
      try {
        this.layer.setxattr(rel, xname, value);
      } catch (err) {
        const code = errorCode(err) ?? 'EIO';
        // What the filesystem cannot hold, or (without root) trusted.* and security.capability, is
        // skipped, as container engines skip it; any other failure refuses the layer.
        if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || (code === 'EPERM' && !this.isRoot)) continue;
        throw refuse(name, `cannot set the xattr ${xname} (${code})`, code);
      }
    }
  }

  private setMetadata(rel: string, entry: TarEntry): void {
    this.chown(rel, entry.uid, entry.gid);
    this.setXattrs(rel, entry.path, entry.xattrs);
    // chown clears set-id bits, so the mode comes after it; a symlink has no mode of its own.
    if (entry.type !== 'symlink') this.layer.chmod(rel, entry.mode);
    this.layer.lutimes(rel, entry.atimeNs ?? entry.mtimeNs, entry.mtimeNs);
  }

  private setDirMetadata(rel: string, entry: TarEntry): void {
    this.chown(rel, entry.uid, entry.gid);
    this.setXattrs(rel, entry.path, entry.xattrs);
    this.dirTimes.set(rel, { mode: entry.mode, atimeNs: entry.atimeNs ?? entry.mtimeNs, mtimeNs: entry.mtimeNs });
  }

  /** Modes and times of directories, deepest first, once nothing more is made inside them. */
  finish(): void {
    const dirs = [...this.dirTimes].sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0));
    for (const [rel, times] of dirs) {
      this.layer.chmod(rel, times.mode);
      this.layer.lutimes(rel, times.atimeNs, times.mtimeNs);
    }
  }
}

/** Unpacks one uncompressed OCI layer tar into `dir` (which must exist and be empty) in the kernel's format. */
export async function unpackLayer(tar: NodeJS.ReadableStream, dir: string, options: UnpackOptions): Promise<void> {
  const layer = new DirLayer(dir, { xattrPrefix: options.xattrPrefix });
  let lowerLayers: DirLayer[] = [];
  let lowers: MergedView | undefined;
  try {
    if (layer.readdir('').length > 0) throw fsError('ENOTEMPTY', SYSCALL, dir, undefined, 'the directory to unpack a layer into must be empty');
    lowerLayers = openLayers(options.lowerdirs ?? [], options.xattrPrefix);
    if (lowerLayers.length > 0) lowers = new MergedView(lowerLayers);
    const unpacker = new Unpacker(layer, options, lowers);
    let current = '';
    try {
      for await (const { entry, data } of readTar(tar)) {
        current = entry.path;
        await unpacker.entry(entry, data);
      }
      current = '';
      unpacker.finish();
    } catch (err) {
      if (err instanceof TarFormatError) throw fsError('EINVAL', SYSCALL, dir, undefined, `not a valid layer tar: ${err.message}`);
      // A host call's error names a layer path; the caller needs the entry that caused it.
      if (isFsError(err) && err.syscall !== SYSCALL && current !== '') throw fsError(err.code, err.syscall, current);
      throw err;
    }
  } finally {
    lowers?.close();
    for (const lower of lowerLayers) lower.close();
    layer.close();
  }
}
