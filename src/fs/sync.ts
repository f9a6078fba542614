// The synchronous node:fs surface over an overlay. Everything else in src/fs wraps this: the core
// is synchronous, so callback and promise forms are this plus a later tick.
//
// This file only parses arguments and maps Node's path-based calls onto the core's node-based
// operations; the semantics live in src/overlay.
import * as fs from 'node:fs';
import * as posix from 'node:path/posix';
import { fsError, relabel } from '../errors.js';
import { S_IFDIR, S_IFLNK, S_IFMT } from '../layer/types.js';
import { isNormalName, type OpenFile, type Overlay, type OverlayNode } from '../overlay/index.js';
import { encodingOf, toBuffer, toFlags, toMode, toPath, toTimeMs, type EncodingOption } from './args.js';
import { Dirent } from './dirent.js';
import { BigIntStats, makeStatFs, makeStats } from './stats.js';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, F_OK, COPYFILE_EXCL, COPYFILE_FICLONE_FORCE } = fs.constants;
const MAX_SYMLINKS = 40;

type StatOptions = { bigint?: boolean; throwIfNoEntry?: boolean };
type ReaddirOptions = { encoding?: EncodingOption; withFileTypes?: boolean; recursive?: boolean } | BufferEncoding | 'buffer' | null | undefined;
type WriteFileOptions = { encoding?: BufferEncoding | null; mode?: fs.Mode; flag?: string | number } | BufferEncoding | null | undefined;

function encode(name: string, encoding: EncodingOption): string | Buffer {
  if (encoding === 'buffer') return Buffer.from(name);
  if (encoding === undefined || encoding === null || encoding === 'utf8' || encoding === 'utf-8') return name;
  return Buffer.from(name).toString(encoding);
}

/** Runs a call, re-labelling host errors with the overlay path so no host path leaks out. */
function call<T>(syscall: string, path: string | undefined, fn: () => T, dest?: string): T {
  try {
    return fn();
  } catch (err) {
    throw relabel(err, syscall, path, dest);
  }
}

export class SyncFs {
  private readonly files = new Map<number, OpenFile>();
  private readonly freeFds: number[] = [];
  private nextFd = 1000;

  constructor(readonly overlay: Overlay) {}

  // --- descriptors ---------------------------------------------------------------------------------

  /** The open overlay file behind a virtual fd. */
  fileOf(fd: number, syscall: string): OpenFile {
    const file = typeof fd === 'number' ? this.files.get(fd) : undefined;
    if (file === undefined) throw fsError('EBADF', syscall);
    return file;
  }

  private allocate(file: OpenFile): number {
    const fd = this.freeFds.pop() ?? this.nextFd++;
    this.files.set(fd, file);
    return fd;
  }

  // --- lookups -------------------------------------------------------------------------------------

  private node(path: string, follow: boolean, syscall: string): OverlayNode {
    return this.overlay.resolve(path, follow, syscall);
  }

  /**
   * The parent and name for a new entry, checked in the kernel's order (filename_create): the
   * parent's errors first, then EEXIST for the root, dots and existing names, then ENOENT for a
   * trailing slash on anything but a directory.
   */
  private forCreate(p: string, syscall: string, isDir: boolean): { parent: OverlayNode; name: string } {
    const { parent, name, trailingSlash } = this.overlay.resolveParent(p, syscall);
    if (!isNormalName(name) || this.overlay.lookup(parent, name) !== null) throw fsError('EEXIST', syscall, p);
    if (trailingSlash && !isDir) throw fsError('ENOENT', syscall, p);
    return { parent, name };
  }

  existsSync(path: fs.PathLike): boolean {
    try {
      this.node(toPath(path), true, 'access');
      return true;
    } catch {
      return false;
    }
  }

  accessSync(path: fs.PathLike, mode: number = F_OK): void {
    const p = toPath(path);
    call('access', p, () => this.overlay.access(this.node(p, true, 'access'), mode));
  }

  statSync(path: fs.PathLike, options?: StatOptions): fs.Stats | fs.BigIntStats | undefined {
    return this.statPath(path, true, 'stat', options);
  }

  lstatSync(path: fs.PathLike, options?: StatOptions): fs.Stats | fs.BigIntStats | undefined {
    return this.statPath(path, false, 'lstat', options);
  }

  private statPath(path: fs.PathLike, follow: boolean, syscall: string, options?: StatOptions): fs.Stats | fs.BigIntStats | undefined {
    const p = toPath(path);
    let st;
    try {
      st = this.overlay.getattr(this.node(p, follow, syscall));
    } catch (err) {
      if (options?.throwIfNoEntry === false && (err as { code?: string }).code === 'ENOENT') return undefined;
      throw relabel(err, syscall, p);
    }
    return options?.bigint ? new BigIntStats(st) : makeStats(st);
  }

  fstatSync(fd: number, options?: { bigint?: boolean }): fs.Stats | fs.BigIntStats {
    const file = this.fileOf(fd, 'fstat');
    const st = call('fstat', undefined, () => this.overlay.fstat(file));
    return options?.bigint ? new BigIntStats(st) : makeStats(st);
  }

  statfsSync(path: fs.PathLike, options?: { bigint?: boolean }): fs.StatsFs | fs.BigIntStatsFs {
    const p = toPath(path);
    this.node(p, true, 'statfs');
    return makeStatFs(call('statfs', p, () => this.overlay.statfs()), options?.bigint === true);
  }

  // --- open files ----------------------------------------------------------------------------------

  openSync(path: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode | null): number {
    const p = toPath(path);
    const f = toFlags(flags);
    const file = call('open', p, () => this.openPath(p, f, toMode(mode, 0o666), 0));
    return this.allocate(file);
  }

  private openPath(p: string, flags: number, mode: number, depth: number): OpenFile {
    const follow = (flags & O_NOFOLLOW) === 0;
    if ((flags & O_CREAT) === 0) {
      const node = this.node(p, follow, 'open');
      if ((flags & O_DIRECTORY) !== 0 && !node.isDir) throw fsError('ENOTDIR', 'open', p);
      return this.overlay.open(node, flags);
    }
    // Linux refuses O_CREAT|O_DIRECTORY outright (since 6.4).
    if ((flags & O_DIRECTORY) !== 0) throw fsError('EINVAL', 'open', p);
    const { parent, name, trailingSlash } = this.overlay.resolveParent(p, 'open');
    if (trailingSlash) throw fsError('EISDIR', 'open', p);
    const existing = isNormalName(name) ? this.overlay.lookup(parent, name) : this.node(p, true, 'open');
    if (existing === null) {
      if (trailingSlash) throw fsError('EISDIR', 'open', p);
      return this.overlay.create(parent, name, flags, mode);
    }
    if ((flags & O_EXCL) !== 0) throw fsError('EEXIST', 'open', p);
    if (existing.type === S_IFLNK && (follow || trailingSlash)) {
      // O_CREAT through a dangling symlink creates its target, as open(2) does.
      if (depth >= MAX_SYMLINKS) throw fsError('ELOOP', 'open', p);
      if (!follow) throw fsError('ELOOP', 'open', p);
      const target = this.overlay.readlink(existing);
      const next = target.startsWith('/') ? target : posix.join(parent.path(), target);
      return this.openPath(posix.resolve('/', next) + (trailingSlash ? '/' : ''), flags, mode, depth + 1);
    }
    if (existing.isDir) throw fsError('EISDIR', 'open', p);
    if (trailingSlash) throw fsError('ENOTDIR', 'open', p);
    return this.overlay.open(existing, flags);
  }

  closeSync(fd: number): void {
    const file = this.fileOf(fd, 'close');
    this.files.delete(fd);
    this.freeFds.push(fd);
    this.overlay.release(file);
  }

  readSync(fd: number, buffer: NodeJS.ArrayBufferView, offsetOrOptions?: number | fs.ReadSyncOptions | null, length?: number, position?: fs.ReadPosition | null): number {
    let offset = 0;
    let len: number | undefined = length;
    let pos: fs.ReadPosition | null | undefined = position;
    if (offsetOrOptions !== null && typeof offsetOrOptions === 'object') {
      offset = offsetOrOptions.offset ?? 0;
      len = offsetOrOptions.length;
      pos = offsetOrOptions.position;
    } else if (typeof offsetOrOptions === 'number') {
      offset = offsetOrOptions;
    }
    len ??= buffer.byteLength - offset;
    if (offset < 0 || len < 0 || offset + len > buffer.byteLength) {
      const err = new RangeError(`The value of "length" is out of range.`) as RangeError & { code: string };
      err.code = 'ERR_OUT_OF_RANGE';
      throw err;
    }
    const file = this.fileOf(fd, 'read');
    if (len === 0) return 0;
    const at = typeof pos === 'bigint' ? Number(pos) : pos ?? null;
    return call('read', undefined, () => this.overlay.read(file, buffer, offset, len!, at));
  }

  writeSync(fd: number, data: NodeJS.ArrayBufferView | string, offsetOrPosition?: number | null, lengthOrEncoding?: number | BufferEncoding | null, position?: number | null): number {
    const file = this.fileOf(fd, 'write');
    if (typeof data === 'string') {
      const buffer = Buffer.from(data, (typeof lengthOrEncoding === 'string' ? lengthOrEncoding : 'utf8'));
      const pos = typeof offsetOrPosition === 'number' ? offsetOrPosition : null;
      return call('write', undefined, () => this.overlay.write(file, buffer, 0, buffer.length, pos));
    }
    const offset = typeof offsetOrPosition === 'number' ? offsetOrPosition : 0;
    const length = typeof lengthOrEncoding === 'number' ? lengthOrEncoding : data.byteLength - offset;
    const pos = typeof position === 'number' ? position : null;
    return call('write', undefined, () => this.overlay.write(file, data, offset, length, pos));
  }

  readvSync(fd: number, buffers: readonly NodeJS.ArrayBufferView[], position?: number | null): number {
    let total = 0;
    let pos = typeof position === 'number' ? position : null;
    for (const b of buffers) {
      const n = this.readSync(fd, b, 0, b.byteLength, pos);
      total += n;
      if (pos !== null) pos += n;
      if (n < b.byteLength) break;
    }
    return total;
  }

  writevSync(fd: number, buffers: readonly NodeJS.ArrayBufferView[], position?: number | null): number {
    let total = 0;
    let pos = typeof position === 'number' ? position : null;
    for (const b of buffers) {
      const n = this.writeSync(fd, b, 0, b.byteLength, pos);
      total += n;
      if (pos !== null) pos += n;
    }
    return total;
  }

  fsyncSync(fd: number): void {
    const file = this.fileOf(fd, 'fsync');
    call('fsync', undefined, () => this.overlay.fsync(file));
  }

  fdatasyncSync(fd: number): void {
    const file = this.fileOf(fd, 'fdatasync');
    call('fdatasync', undefined, () => this.overlay.fsync(file, true));
  }

  ftruncateSync(fd: number, len = 0): void {
    const file = this.fileOf(fd, 'ftruncate');
    call('ftruncate', undefined, () => this.overlay.ftruncate(file, len));
  }

  truncateSync(path: fs.PathLike, len = 0): void {
    const p = toPath(path);
    call('open', p, () => {
      const node = this.node(p, true, 'open');
      if (node.isDir) throw fsError('EISDIR', 'open', p);
      this.overlay.setattr(node, { size: len }, 'truncate');
    });
  }

  fchmodSync(fd: number, mode: fs.Mode): void {
    const file = this.fileOf(fd, 'fchmod');
    call('fchmod', undefined, () => this.overlay.fsetattr(file, { mode: toMode(mode, 0) }, 'fchmod'));
  }

  fchownSync(fd: number, uid: number, gid: number): void {
    const file = this.fileOf(fd, 'fchown');
    call('fchown', undefined, () => this.overlay.fsetattr(file, { uid, gid }, 'fchown'));
  }

  futimesSync(fd: number, atime: fs.TimeLike, mtime: fs.TimeLike): void {
    const file = this.fileOf(fd, 'futime');
    call('futime', undefined, () => this.overlay.fsetattr(file, { atimeMs: toTimeMs(atime), mtimeMs: toTimeMs(mtime) }, 'futime'));
  }

  // --- whole files ---------------------------------------------------------------------------------

  readFileSync(path: fs.PathOrFileDescriptor, options?: { encoding?: BufferEncoding | null; flag?: string } | BufferEncoding | null): string | Buffer {
    const encoding = encodingOf(options) as BufferEncoding | null | undefined;
    const flag = typeof options === 'object' && options !== null ? options.flag : undefined;
    const isFd = typeof path === 'number';
    const fd = isFd ? path : this.openSync(path, flag ?? 'r');
    try {
      const file = this.fileOf(fd, 'read');
      if (file.isDirectory) throw fsError('EISDIR', 'read');
      // As node:fs does: read exactly the size fstat reports; only files that report 0 (like
      // /proc) are read in chunks until EOF.
      const size = isFd ? 0 : call('fstat', undefined, () => this.overlay.fstat(file).size);
      let data: Buffer;
      if (size > 0) {
        data = Buffer.allocUnsafe(size);
        let total = 0;
        while (total < size) {
          const n = this.readSync(fd, data, total, size - total, null);
          if (n === 0) break;
          total += n;
        }
        if (total < size) data = data.subarray(0, total);
      } else {
        const chunks: Buffer[] = [];
        let total = 0;
        for (;;) {
          const chunk = Buffer.allocUnsafe(8192);
          const n = this.readSync(fd, chunk, 0, chunk.length, null);
          if (n === 0) break;
          chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
          total += n;
        }
        data = Buffer.concat(chunks, total);
      }
      return encoding ? data.toString(encoding) : data;
    } finally {
      if (!isFd) this.closeSync(fd);
    }
  }

  writeFileSync(path: fs.PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView, options?: WriteFileOptions): void {
    this.writeWhole(path, data, options, 'w');
  }

  appendFileSync(path: fs.PathOrFileDescriptor, data: string | Uint8Array, options?: WriteFileOptions): void {
    this.writeWhole(path, data, options, 'a');
  }

  private writeWhole(path: fs.PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView, options: WriteFileOptions, defaultFlag: string): void {
    const o = typeof options === 'string' ? { encoding: options } : options ?? {};
    const buffer = toBuffer(data, o.encoding);
    const isFd = typeof path === 'number';
    const fd = isFd ? path : this.openSync(path, o.flag ?? defaultFlag, o.mode ?? 0o666);
    try {
      for (let done = 0; done < buffer.length;) done += this.writeSync(fd, buffer, done, buffer.length - done, null);
    } finally {
      if (!isFd) this.closeSync(fd);
    }
  }

  // --- directories ---------------------------------------------------------------------------------

  readdirSync(path: fs.PathLike, options?: ReaddirOptions): Array<string | Buffer | Dirent<string> | Dirent<Buffer>> {
    const p = toPath(path);
    const encoding = encodingOf(options);
    const o = typeof options === 'object' && options !== null ? options : {};
    const root = call('scandir', p, () => this.node(p, true, 'scandir'));
    if (!root.isDir) throw fsError('ENOTDIR', 'scandir', p);
    const out: Array<string | Buffer | Dirent<string> | Dirent<Buffer>> = [];
    const queue: Array<{ node: OverlayNode; rel: string; dir: string }> = [{ node: root, rel: '', dir: p.replace(/\/$/, '') || '/' }];
    while (queue.length > 0) {
      const { node, rel, dir } = queue.shift()!;
      const entries = call('scandir', dir, () => this.overlay.readdir(node));
      for (const e of entries) {
        const relName = rel === '' ? e.name : `${rel}/${e.name}`;
        if (o.withFileTypes) out.push(new Dirent(encode(e.name, encoding) as string, e.type, dir));
        else out.push(encode(o.recursive ? relName : e.name, encoding));
        if (o.recursive && (e.type & S_IFMT) === S_IFDIR) {
          const child = this.overlay.lookup(node, e.name);
          if (child !== null && child.isDir) queue.push({ node: child, rel: relName, dir: posix.join(dir, e.name) });
        }
      }
    }
    return out;
  }

  mkdirSync(path: fs.PathLike, options?: fs.Mode | fs.MakeDirectoryOptions | null): string | undefined {
    const p = toPath(path);
    const o = typeof options === 'object' && options !== null ? options : { mode: options ?? undefined };
    const mode = toMode(o.mode, 0o777);
    if (!o.recursive) {
      call('mkdir', p, () => {
        const { parent, name } = this.forCreate(p, 'mkdir', true);
        this.overlay.mkdir(parent, name, mode);
      });
      return undefined;
    }
    let first: string | undefined;
    let node = this.overlay.root;
    let sofar = '';
    for (const name of p.split('/').filter((s) => s !== '')) {
      sofar += '/' + name;
      const current = sofar;
      node = call('mkdir', p, () => {
        let child = this.overlay.lookup(node, name);
        if (child !== null && child.type === S_IFLNK) child = this.node(current, true, 'mkdir');
        if (child === null) {
          first ??= current;
          return this.overlay.mkdir(node, name, mode);
        }
        if (!child.isDir) throw fsError('EEXIST', 'mkdir', p);
        return child;
      });
    }
    return first;
  }

  mkdtempSync(prefix: string, options?: { encoding?: EncodingOption } | BufferEncoding | 'buffer' | null): string | Buffer {
    const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    for (let attempt = 0; ; attempt++) {
      let suffix = '';
      for (let i = 0; i < 6; i++) suffix += chars[Math.floor(Math.random() * chars.length)];
      const p = toPath(prefix + suffix);
      try {
        this.mkdirSync(p, 0o700);
        return encode(p, encodingOf(options));
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST' || attempt > 100) throw relabel(err, 'mkdtemp', prefix + 'XXXXXX');
      }
    }
  }

  rmdirSync(path: fs.PathLike, options?: fs.RmDirOptions): void {
    const p = toPath(path);
    if (options?.recursive) {
      this.rmSync(p, { recursive: true, force: false });
      return;
    }
    call('rmdir', p, () => {
      const { parent, name } = this.overlay.resolveParent(p, 'rmdir');
      if (name === '') throw fsError('EBUSY', 'rmdir', p);
      if (name === '.') throw fsError('EINVAL', 'rmdir', p);
      if (name === '..') throw fsError('ENOTEMPTY', 'rmdir', p);
      this.overlay.rmdir(parent, name);
    });
  }

  rmSync(path: fs.PathLike, options?: fs.RmOptions): void {
    const p = toPath(path);
    let node: OverlayNode;
    try {
      node = this.node(p, false, 'rm');
    } catch (err) {
      if (options?.force && (err as { code?: string }).code === 'ENOENT') return;
      throw relabel(err, 'rm', p);
    }
    if (node.isDir && !options?.recursive) {
      const err = new Error(`Path is a directory: rm returned EISDIR (is a directory) ${p}`) as Error & { code: string; errno: number; syscall: string; path: string };
      err.code = 'ERR_FS_EISDIR';
      err.errno = 21;
      err.syscall = 'rm';
      err.path = p;
      throw err;
    }
    this.removeTree(p);
  }

  private removeTree(p: string): void {
    const node = this.node(p, false, 'rm');
    if (node.isDir) {
      for (const e of call('scandir', p, () => this.overlay.readdir(node))) this.removeTree(posix.join(p, e.name));
      this.rmdirSync(p);
    } else {
      this.unlinkSync(p);
    }
  }

  unlinkSync(path: fs.PathLike): void {
    const p = toPath(path);
    call('unlink', p, () => {
      const { parent, name, trailingSlash } = this.overlay.resolveParent(p, 'unlink');
      if (!isNormalName(name)) throw fsError('EISDIR', 'unlink', p);
      if (trailingSlash) {
        const node = this.overlay.lookup(parent, name);
        throw fsError(node === null ? 'ENOENT' : node.isDir ? 'EISDIR' : 'ENOTDIR', 'unlink', p);
      }
      this.overlay.unlink(parent, name);
    });
  }

  renameSync(oldPath: fs.PathLike, newPath: fs.PathLike): void {
    const from = toPath(oldPath);
    const to = toPath(newPath);
    call('rename', from, () => {
      // Both parents resolve before either name is judged, as in do_renameat2.
      const a = this.overlay.resolveParent(from, 'rename');
      const b = this.overlay.resolveParent(to, 'rename');
      if (!isNormalName(a.name) || !isNormalName(b.name)) throw fsError('EBUSY', 'rename', from, to);
      if (a.trailingSlash || b.trailingSlash) {
        const node = this.overlay.lookup(a.parent, a.name);
        if (node !== null && !node.isDir) throw fsError('ENOTDIR', 'rename', from, to);
      }
      this.overlay.rename(a.parent, a.name, b.parent, b.name);
    }, to);
  }

  // --- links ---------------------------------------------------------------------------------------

  symlinkSync(target: fs.PathLike, path: fs.PathLike, _type?: fs.symlink.Type | null): void {
    const p = toPath(path);
    const t = typeof target === 'string' ? target : Buffer.isBuffer(target) ? target.toString() : toPath(target);
    call('symlink', t, () => {
      const { parent, name } = this.forCreate(p, 'symlink', false);
      this.overlay.symlink(parent, name, t);
    }, p);
  }

  readlinkSync(path: fs.PathLike, options?: { encoding?: EncodingOption } | BufferEncoding | 'buffer' | null): string | Buffer {
    const p = toPath(path);
    const target = call('readlink', p, () => this.overlay.readlink(this.node(p, false, 'readlink')));
    return encode(target, encodingOf(options));
  }

  realpathSync(path: fs.PathLike, options?: { encoding?: EncodingOption } | BufferEncoding | null): string | Buffer {
    const p = toPath(path);
    const node = call('realpath', p, () => this.node(p, true, 'realpath'));
    return encode(node.path(), encodingOf(options));
  }

  linkSync(existingPath: fs.PathLike, newPath: fs.PathLike): void {
    const from = toPath(existingPath);
    const to = toPath(newPath);
    call('link', from, () => {
      const node = this.node(from, false, 'link');
      const { parent, name } = this.forCreate(to, 'link', false);
      this.overlay.link(node, parent, name);
    }, to);
  }

  // --- attributes ----------------------------------------------------------------------------------

  chmodSync(path: fs.PathLike, mode: fs.Mode): void {
    const p = toPath(path);
    call('chmod', p, () => this.overlay.setattr(this.node(p, true, 'chmod'), { mode: toMode(mode, 0) }, 'chmod'));
  }

  chownSync(path: fs.PathLike, uid: number, gid: number): void {
    const p = toPath(path);
    call('chown', p, () => this.overlay.setattr(this.node(p, true, 'chown'), { uid, gid }, 'chown'));
  }

  lchownSync(path: fs.PathLike, uid: number, gid: number): void {
    const p = toPath(path);
    call('lchown', p, () => this.overlay.setattr(this.node(p, false, 'lchown'), { uid, gid }, 'lchown'));
  }

  utimesSync(path: fs.PathLike, atime: fs.TimeLike, mtime: fs.TimeLike): void {
    const p = toPath(path);
    call('utime', p, () => this.overlay.setattr(this.node(p, true, 'utime'), { atimeMs: toTimeMs(atime), mtimeMs: toTimeMs(mtime) }, 'utime'));
  }

  lutimesSync(path: fs.PathLike, atime: fs.TimeLike, mtime: fs.TimeLike): void {
    const p = toPath(path);
    call('lutime', p, () => this.overlay.setattr(this.node(p, false, 'lutime'), { atimeMs: toTimeMs(atime), mtimeMs: toTimeMs(mtime) }, 'lutime'));
  }

  // --- copies --------------------------------------------------------------------------------------

  /**
   * Copies the source's current data (never a stale lower copy: the source is opened through the
   * overlay), into a destination created like any new file. Where both have host files the data is
   * cloned (COPYFILE_FICLONE) when the filesystem can, and copied by the kernel otherwise;
   * COPYFILE_FICLONE_FORCE fails with the filesystem's error when it cannot clone.
   */
  copyFileSync(src: fs.PathLike, dest: fs.PathLike, mode = 0): void {
    const from = toPath(src);
    const to = toPath(dest);
    const input = this.openSync(from, 'r');
    try {
      const inputFile = this.fileOf(input, 'copyfile');
      const st = this.fstatSync(input) as fs.Stats;
      if (st.isDirectory()) throw fsError('EISDIR', 'copyfile', from, to);
      const output = call('copyfile', from, () => this.openSync(to, (mode & COPYFILE_EXCL) !== 0 ? 'wx' : 'w', st.mode & 0o7777), to);
      try {
        const outputFile = this.fileOf(output, 'copyfile');
        const force = (mode & COPYFILE_FICLONE_FORCE) !== 0;
        call('copyfile', from, () => this.overlay.cloneFile(inputFile, outputFile, force), to);
      } finally {
        this.closeSync(output);
      }
    } finally {
      this.closeSync(input);
    }
  }

  cpSync(src: string | URL, dest: string | URL, options?: fs.CopySyncOptions): void {
    const from = toPath(src);
    const to = toPath(dest);
    const o = options ?? {};
    if (o.filter && !o.filter(from, to)) return;
    const st = (o.dereference ? this.statSync(from) : this.lstatSync(from)) as fs.Stats;
    if (st.isDirectory()) {
      if (!o.recursive) {
        const err = new Error(`Recursive option is required to copy a directory: cp returned EISDIR (${from} is a directory (not copied)) ${from}`) as Error & { code: string };
        err.code = 'ERR_FS_EISDIR';
        throw err;
      }
      if (to === from || to.startsWith(from + '/')) {
        const err = new Error(`Cannot copy ${from} to a subdirectory of self ${to}`) as Error & { code: string };
        err.code = 'ERR_FS_CP_EINVAL';
        throw err;
      }
      if (!this.existsSync(to)) this.mkdirSync(to, { mode: st.mode & 0o7777 });
      for (const name of this.readdirSync(from) as string[]) this.cpSync(posix.join(from, name), posix.join(to, name), o);
      if (o.preserveTimestamps) this.utimesSync(to, st.atime, st.mtime);
      return;
    }
    const existing = this.lstatSync(to, { throwIfNoEntry: false }) as fs.Stats | undefined;
    if (existing !== undefined) {
      if (o.errorOnExist && o.force === false) {
        const err = new Error(`Target already exists: cp returned EEXIST (${to} already exists) ${to}`) as Error & { code: string };
        err.code = 'ERR_FS_CP_EEXIST';
        throw err;
      }
      if (o.force === false) return;
      if (!existing.isDirectory()) this.unlinkSync(to);
    }
    if (st.isSymbolicLink()) {
      let target = this.readlinkSync(from) as string;
      if (!o.verbatimSymlinks && !target.startsWith('/')) target = posix.resolve(posix.dirname(from), target);
      this.symlinkSync(target, to);
    } else if (st.isFile()) {
      this.copyFileSync(from, to);
      if (o.preserveTimestamps) this.utimesSync(to, st.atime, st.mtime);
    } else {
      const err = new Error(`Cannot copy a special file: cp returned EINVAL ${from}`) as Error & { code: string };
      err.code = 'ERR_FS_CP_NON_DIR_TO_DIR';
      throw err;
    }
  }


}

