// The synchronous node:fs surface over an overlay. Everything else in src/fs wraps this: the core
// is synchronous, so callback and promise forms are this plus a later tick.
//
// This file only parses arguments and maps Node's path-based calls onto the core's node-based
// operations; the semantics live in src/overlay.
import * as fs from 'node:fs';
import * as posix from 'node:path/posix';
import { fsError, relabel } from '../errors.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../layer/types.js';
import { isNormalName, MAX_SYMLINKS, type OpenFile, type Overlay, type OverlayNode } from '../overlay/index.js';
import { encodeName, secondsToNs, toPath, type EncodingOption } from './args.js';
import { nameFromBytes } from '../names.js';
import { cp, cpAsync, type CpFs } from './cp.js';
import { direntOf, type Dirent } from './dirent.js';
import { makeBigIntStats, makeStatFs, makeStats } from './stats.js';
import { WatchHub, type WatchEvent } from './watch.js';
import {
  ERR_FS_FILE_TOO_LARGE, ERR_INVALID_ARG_VALUE, emitRecursiveRmdirWarning, getOptions, getValidatedFd, getValidatedFdNative,
  getValidatedPath, getValidFileModeNative, kIoMaxLength, kMaxUserId, kValidateObjectAllowNullable, parseFileMode,
  stringToFlags, toPathIfFileURL, toUnixTimestamp, validateBoolean, validateBuffer, validateBufferArray, validateCpOptions,
  validateEncoding, validateInt32, validateInteger, validateObject, validateOffsetLengthRead, validateOffsetLengthWrite, validatePosition,
  validateRmdirOptions, validateRmOptionsShape, validateStringAfterArrayBufferView, validateSymlinkType,
  warnOnNonPortableTemplate, type FsOptions, type RmdirOptions,
} from './validate.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_TRUNC, O_EXCL, O_NOFOLLOW, O_DIRECTORY, COPYFILE_EXCL, COPYFILE_FICLONE_FORCE } = fs.constants;

type StatOptions = { bigint?: boolean; throwIfNoEntry?: boolean };


/** Runs a call, re-labelling host errors with the overlay path so no host path leaks out. */
function call<T>(syscall: string, path: string | undefined, fn: () => T, dest?: string): T {
  try {
    return fn();
  } catch (err) {
    // Argument errors (ERR_*) pass through as they are: they are not system errors.
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && code.startsWith('ERR_')) throw err;
    throw relabel(err, syscall, path, dest);
  }
}

/** Runs a call on two paths; every system error names both, as Node's do (`link 'a' -> 'b'`). */
function call2<T>(syscall: string, from: string, to: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && !code.startsWith('ERR_') && (err as { dest?: unknown }).dest === undefined) {
      throw fsError(code, syscall, from, to);
    }
    throw relabel(err, syscall, from, to);
  }
}

/** Node's isFd for readFile/writeFile: an int32 is a descriptor, anything else a path. */
export function isFd(path: unknown): path is number {
  return typeof path === 'number' && (path | 0) === path;
}

/**
 * The directory name Node reports in Dirent.parentPath and returned paths: the caller's own
 * spelling for a string, the overlay path otherwise.
 */
function shownPath(original: unknown, normalized: string, joined?: string): string {
  if (joined !== undefined) return joined.startsWith('/') ? posix.normalize(joined) : toPath(joined);
  if (typeof original === 'string' && original.startsWith('/')) return original.length > 1 && original.endsWith('/') ? original.slice(0, -1) : original;
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** rm on a directory without `recursive`: Node's SystemError ERR_FS_EISDIR. */
function fsEisdir(path: string): Error {
  const context = { code: 'EISDIR', message: 'is a directory', path, syscall: 'rm', errno: 21 };
  const err = new Error(`Path is a directory: rm returned EISDIR (is a directory) ${path}`) as Error & Record<string, unknown>;
  Object.defineProperty(err, 'name', { value: 'SystemError', enumerable: false, writable: true, configurable: true });
  err.code = 'ERR_FS_EISDIR';
  Object.defineProperty(err, 'info', { value: context, enumerable: true, configurable: true });
  for (const key of ['errno', 'syscall', 'path'] as const) {
    Object.defineProperty(err, key, { get: () => context[key], set: (v: never) => { context[key] = v; }, enumerable: true, configurable: true });
  }
  return err;
}

function trimTrailing(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

function childPath(parent: OverlayNode, name: string): string {
  const dir = parent.path();
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

let truncateWarned = false;

/** DEP0081: truncate(fd) (once per process). */
export function showTruncateDeprecation(): void {
  if (truncateWarned || process.noDeprecation) return;
  truncateWarned = true;
  process.emitWarning('Using fs.truncate with a file descriptor is deprecated. Please use fs.ftruncate with a file descriptor instead.', 'DeprecationWarning', 'DEP0081');
}

/**
 * truncateSync as Node's lib/fs.js does it, through `f`'s own openSync, ftruncateSync and closeSync
 * (the module object, for calls a caller may replace there); a number is the deprecated fd form.
 */
export function truncateThrough(f: { openSync(path: unknown, flags: string): unknown; ftruncateSync(fd: unknown, len?: unknown): void; closeSync(fd: unknown): void }, path: unknown, len?: unknown): void {
  if (typeof path === 'number') {
    showTruncateDeprecation();
    f.ftruncateSync(path, len);
    return;
  }
  const fd = f.openSync(path, 'r+');
  try {
    f.ftruncateSync(fd, len ?? 0);
  } finally {
    f.closeSync(fd);
  }
}

export class SyncFs {
  private readonly files = new Map<number, OpenFile>();
  private readonly freeFds: number[] = [];
  private nextFd = 1000;

  /** fs.watch and friends: told of every change made here (watch.ts). */
  readonly watchers: WatchHub;

  constructor(readonly overlay: Overlay) {
    this.watchers = new WatchHub(this);
  }

  /** Tells watchers that the entry at `path` changed. */
  private changed(path: string, event: WatchEvent): void {
    if (this.watchers.active) this.watchers.notify(trimTrailing(path), event);
  }

  private changedFile(file: OpenFile, event: WatchEvent): void {
    if (this.watchers.active) this.watchers.notify(this.overlay.nodeOf(file).path(), event);
  }

  // --- descriptors ---------------------------------------------------------------------------------

  /** The open overlay file behind a virtual fd. */
  fileOf(fd: unknown, syscall: string): OpenFile {
    const file = typeof fd === 'number' ? this.files.get(fd) : undefined;
    if (file === undefined) throw fsError('EBADF', syscall);
    return file;
  }

  allocate(file: OpenFile): number {
    const fd = this.freeFds.pop() ?? this.nextFd++;
    this.files.set(fd, file);
    return fd;
  }

  // --- lookups -------------------------------------------------------------------------------------

  /** A validated path argument as an overlay path. */
  pathOf(path: unknown, name = 'path'): string {
    const p = getValidatedPath(path, name);
    return toPath(p);
  }

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

  existsSync(path: unknown): boolean {
    let p: string;
    try {
      p = this.pathOf(path);
    } catch {
      return false;
    }
    try {
      this.node(p, true, 'access');
      return true;
    } catch {
      return false;
    }
  }

  accessSync(path: unknown, mode?: unknown): void {
    const p = this.pathOf(path);
    const m = getValidFileModeNative(mode, 'access');
    call('access', p, () => this.overlay.access(this.node(p, true, 'access'), m));
  }

  statSync(path: unknown, options: StatOptions = { bigint: false, throwIfNoEntry: true }): fs.Stats | fs.BigIntStats | undefined {
    return this.statPath(this.pathOf(path), true, 'stat', options);
  }

  lstatSync(path: unknown, options: StatOptions = { bigint: false, throwIfNoEntry: true }): fs.Stats | fs.BigIntStats | undefined {
    return this.statPath(this.pathOf(path), false, 'lstat', options);
  }

  private statPath(p: string, follow: boolean, syscall: string, options: StatOptions): fs.Stats | fs.BigIntStats | undefined {
    let st;
    try {
      st = this.overlay.getattr(this.node(p, follow, syscall));
    } catch (err) {
      const code = (err as { code?: string }).code;
      // As Node's binding: only "no such entry" answers undefined.
      if (options?.throwIfNoEntry === false && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined;
      throw relabel(err, syscall, p);
    }
    return options?.bigint ? makeBigIntStats(st) : makeStats(st);
  }

  fstatSync(fd: unknown, options: { bigint?: boolean } = { bigint: false }): fs.Stats | fs.BigIntStats {
    const file = this.fileOf(getValidatedFdNative(fd), 'fstat');
    const st = call('fstat', undefined, () => this.overlay.fstat(file));
    return options?.bigint ? makeBigIntStats(st) : makeStats(st);
  }

  statfsSync(path: unknown, options: { bigint?: boolean } = { bigint: false }): fs.StatsFs | fs.BigIntStatsFs {
    const p = this.pathOf(path);
    call('statfs', p, () => this.node(p, true, 'statfs'));
    return makeStatFs(call('statfs', p, () => this.overlay.statfs()), options?.bigint === true);
  }

  // --- open files ----------------------------------------------------------------------------------

  openSync(path: unknown, flags?: unknown, mode?: unknown): number {
    const p = this.pathOf(path);
    const f = stringToFlags(flags);
    const m = parseFileMode(mode, 'mode', 0o666);
    const file = call('open', p, () => this.openPath(p, f, m, 0));
    return this.allocate(file);
  }

  private openPath(p: string, flags: number, mode: number, depth: number): OpenFile {
    const follow = (flags & O_NOFOLLOW) === 0;
    if ((flags & O_CREAT) === 0) {
      const node = this.node(p, follow, 'open');
      if ((flags & O_DIRECTORY) !== 0 && !node.isDir) throw fsError('ENOTDIR', 'open', p);
      const opened = this.overlay.open(node, flags);
      if ((flags & O_TRUNC) !== 0) this.changedFile(opened, 'change');
      return opened;
    }
    // Linux refuses O_CREAT|O_DIRECTORY outright (since 6.4).
    if ((flags & O_DIRECTORY) !== 0) throw fsError('EINVAL', 'open', p);
    const { parent, name, trailingSlash } = this.overlay.resolveParent(p, 'open');
    if (trailingSlash) throw fsError('EISDIR', 'open', p);
    const existing = isNormalName(name) ? this.overlay.lookup(parent, name) : this.node(p, true, 'open');
    if (existing === null) {
      if (trailingSlash) throw fsError('EISDIR', 'open', p);
      const created = this.overlay.create(parent, name, flags, mode);
      this.changed(childPath(parent, name), 'rename');
      return created;
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
    const opened = this.overlay.open(existing, flags);
    if ((flags & O_TRUNC) !== 0) this.changedFile(opened, 'change');
    return opened;
  }

  closeSync(fd: unknown): void {
    const n = getValidatedFdNative(fd);
    const file = this.fileOf(n, 'close');
    this.files.delete(n);
    this.freeFds.push(n);
    this.overlay.release(file);
  }

  /** fs.readSync, with Node's argument shapes and checks in Node's order. */
  readSync(fd: unknown, buffer: unknown, offsetOrOptions?: unknown, length?: unknown, position?: unknown): number {
    const n = getValidatedFd(fd);
    validateBuffer(buffer);
    let offset = offsetOrOptions;
    let len = length;
    let pos = position;
    if (arguments.length <= 3 || typeof offsetOrOptions === 'object') {
      if (offsetOrOptions !== undefined) validateObject(offsetOrOptions, 'options', kValidateObjectAllowNullable);
      const o = (offsetOrOptions ?? {}) as { offset?: unknown; length?: unknown; position?: unknown };
      offset = o.offset ?? 0;
      len = o.length ?? buffer.byteLength - (offset as number);
      pos = o.position ?? null;
    }
    if (offset === undefined) offset = 0;
    else validateInteger(offset, 'offset', 0);
    const l = (len as number) | 0;
    if (l === 0) return 0;
    if (buffer.byteLength === 0) throw ERR_INVALID_ARG_VALUE('buffer', buffer, 'is empty and cannot be written');
    validateOffsetLengthRead(offset as number, l, buffer.byteLength);
    if (pos == null) pos = -1;
    validatePosition(pos, 'position');
    return this.readAt(n, buffer, offset as number, l, pos);
  }

  /** A validated read: position -1 (or -1n) reads at the file position, as the binding does. */
  readAt(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | bigint | null): number {
    const file = this.fileOf(fd, 'read');
    // No file reaches past 2^53 bytes: a valid bigint position beyond that is past the end.
    if (typeof position === 'bigint' && position > BigInt(Number.MAX_SAFE_INTEGER)) return 0;
    const at = position === null || position === -1 || position === -1n ? null : Number(position);
    if (at !== null && at < 0) throw fsError('EINVAL', 'read');
    return call('read', undefined, () => this.overlay.read(file, buffer, offset, length, at));
  }

  /** A validated write at `position` (null: at the file position). */
  writeAt(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | bigint | null): number {
    const file = this.fileOf(fd, 'write');
    const at = position === null || typeof position !== 'number' && typeof position !== 'bigint' ? null : Number(position);
    const n = call('write', undefined, () => this.overlay.write(file, buffer, offset, length, at !== null && at < 0 ? null : at));
    this.changedFile(file, 'change');
    return n;
  }

  /** fs.writeSync, with Node's argument shapes and checks in Node's order. */
  writeSync(fd: unknown, buffer: unknown, offsetOrOptions?: unknown, length?: unknown, position?: unknown): number {
    const n = getValidatedFd(fd);
    let offset = offsetOrOptions;
    let len = length;
    let pos = position;
    if (ArrayBuffer.isView(buffer)) {
      if (typeof offset === 'object') {
        const o = (offsetOrOptions ?? {}) as { offset?: unknown; length?: unknown; position?: unknown };
        offset = o.offset ?? 0;
        len = o.length ?? buffer.byteLength - (offset as number);
        pos = o.position ?? null;
      }
      if (pos === undefined) pos = null;
      if (offset == null) offset = 0;
      else validateInteger(offset, 'offset', 0);
      if (typeof len !== 'number') len = buffer.byteLength - (offset as number);
      validateOffsetLengthWrite(offset as number, len as number, buffer.byteLength);
      return this.writeAt(n, buffer as NodeJS.ArrayBufferView, offset as number, len as number, typeof pos === 'number' || typeof pos === 'bigint' ? pos : null);
    }
    validateStringAfterArrayBufferView(buffer, 'buffer');
    validateEncoding(buffer, len);
    const encoding = (typeof len === 'string' && Buffer.isEncoding(len) ? len : 'utf8') as BufferEncoding;
    const data = Buffer.from(buffer, encoding);
    return this.writeAt(n, data, 0, data.length, typeof offset === 'number' ? offset : null);
  }

  readvSync(fd: unknown, buffers: unknown, position?: unknown): number {
    const n = getValidatedFd(fd);
    const list = validateBufferArray(buffers);
    let pos = typeof position === 'number' ? position : null;
    let total = 0;
    for (const b of list) {
      if (b.byteLength === 0) continue;
      const got = this.readAt(n, b, 0, b.byteLength, pos);
      total += got;
      if (pos !== null) pos += got;
      if (got < b.byteLength) break;
    }
    return total;
  }

  writevSync(fd: unknown, buffers: unknown, position?: unknown): number {
    const n = getValidatedFd(fd);
    const list = validateBufferArray(buffers);
    if (list.length === 0) return 0;
    let pos = typeof position === 'number' ? position : null;
    let total = 0;
    for (const b of list) {
      const put = this.writeAt(n, b, 0, b.byteLength, pos);
      total += put;
      if (pos !== null) pos += put;
    }
    return total;
  }

  fsyncSync(fd: unknown): void {
    const file = this.fileOf(getValidatedFdNative(fd), 'fsync');
    call('fsync', undefined, () => this.overlay.fsync(file));
  }

  fdatasyncSync(fd: unknown): void {
    const file = this.fileOf(getValidatedFdNative(fd), 'fdatasync');
    call('fdatasync', undefined, () => this.overlay.fsync(file, true));
  }

  ftruncateSync(fd: unknown, len: unknown = 0): void {
    validateInteger(len, 'len');
    const file = this.fileOf(getValidatedFdNative(fd), 'ftruncate');
    call('ftruncate', undefined, () => this.overlay.ftruncate(file, Math.max(0, len)));
    this.changedFile(file, 'change');
  }

  /**
   * fallocate(2), which node:fs lacks: `mode` is FALLOC_FL_* bits (0 allocates and extends the
   * size; KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE, COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE as the upper
   * filesystem supports each). The descriptor must be open for writing.
   */
  fallocateSync(fd: unknown, mode: unknown, offset: unknown, length: unknown): void {
    // Types are checked as Node checks them; values (a negative offset, a zero length) get the
    // errno fallocate(2) answers, from the core.
    validateInt32(mode, 'mode');
    validateInteger(offset, 'offset');
    validateInteger(length, 'length');
    const file = this.fileOf(getValidatedFdNative(fd), 'fallocate');
    call('fallocate', undefined, () => this.overlay.fallocate(file, offset, length, mode));
    this.changedFile(file, 'change');
  }

  truncateSync(path: unknown, len?: unknown): void {
    truncateThrough(this, path, len);
  }

  fchmodSync(fd: unknown, mode: unknown): void {
    const n = getValidatedFdNative(fd);
    const m = parseFileMode(mode, 'mode');
    const file = this.fileOf(n, 'fchmod');
    call('fchmod', undefined, () => this.overlay.fsetattr(file, { mode: m }, 'fchmod'));
    this.changedFile(file, 'change');
  }

  fchownSync(fd: unknown, uid: unknown, gid: unknown): void {
    validateInteger(uid, 'uid', -1, kMaxUserId);
    validateInteger(gid, 'gid', -1, kMaxUserId);
    const file = this.fileOf(getValidatedFdNative(fd), 'fchown');
    call('fchown', undefined, () => this.overlay.fsetattr(file, { uid, gid }, 'fchown'));
    this.changedFile(file, 'change');
  }

  futimesSync(fd: unknown, atime: unknown, mtime: unknown): void {
    const n = getValidatedFdNative(fd);
    const a = toUnixTimestamp(atime, 'atime');
    const m = toUnixTimestamp(mtime, 'mtime');
    const file = this.fileOf(n, 'futime');
    call('futime', undefined, () => this.overlay.fsetattr(file, { atimeNs: secondsToNs(a), mtimeNs: secondsToNs(m) }, 'futime'));
    this.changedFile(file, 'change');
  }

  // --- whole files ---------------------------------------------------------------------------------

  readFileSync(path: unknown, options?: unknown): string | Buffer {
    const o = getOptions(options, { flag: 'r' } as FsOptions);
    const isUserFd = isFd(path);
    const fd = isUserFd ? getValidatedFdNative(path) : this.openSync(path, o.flag, 0o666);
    try {
      const file = this.fileOf(fd, 'fstat');
      const st = call('fstat', undefined, () => this.overlay.fstat(file));
      if ((st.mode & S_IFMT) === S_IFDIR) throw fsError('EISDIR', 'read');
      // As node:fs does: read exactly the size fstat reports; only files that report 0 (like
      // /proc) are read in chunks until EOF.
      const size = (st.mode & S_IFMT) === S_IFREG ? st.size : 0;
      if (size > kIoMaxLength) throw ERR_FS_FILE_TOO_LARGE(size);
      let data: Buffer;
      if (size > 0) {
        data = Buffer.allocUnsafe(size);
        let total = 0;
        while (total < size) {
          const n = this.readAt(fd, data, total, size - total, null);
          if (n === 0) break;
          total += n;
        }
        if (total < size) data = data.subarray(0, total);
      } else {
        const chunks: Buffer[] = [];
        let total = 0;
        for (;;) {
          const chunk = Buffer.allocUnsafe(8192);
          const n = this.readAt(fd, chunk, 0, chunk.length, null);
          if (n === 0) break;
          chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
          total += n;
        }
        data = Buffer.concat(chunks, total);
      }
      return o.encoding && o.encoding !== 'buffer' ? data.toString(o.encoding) : data;
    } finally {
      if (!isUserFd) this.closeSync(fd);
    }
  }

  writeFileSync(path: unknown, data: unknown, options?: unknown): void {
    const o = getOptions(options, { encoding: 'utf8', mode: 0o666, flag: 'w', flush: false } as FsOptions);
    const flush = o.flush ?? false;
    validateBoolean(flush, 'options.flush');
    const flag = o.flag || 'w';
    let buffer: NodeJS.ArrayBufferView;
    if (ArrayBuffer.isView(data)) {
      buffer = data as NodeJS.ArrayBufferView;
    } else {
      validateStringAfterArrayBufferView(data, 'data');
      buffer = Buffer.from(data, (o.encoding || 'utf8') as BufferEncoding);
    }
    const isUserFd = isFd(path);
    const fd = isUserFd ? path : this.openSync(path, flag, o.mode);
    try {
      let offset = 0;
      let length = buffer.byteLength;
      while (length > 0) {
        const written = this.writeSync(fd, buffer, offset, length);
        offset += written;
        length -= written;
      }
      if (flush) this.fsyncSync(fd);
    } finally {
      if (!isUserFd) this.closeSync(fd);
    }
  }

  appendFileSync(path: unknown, data: unknown, options?: unknown): void {
    const o = { ...getOptions(options, { encoding: 'utf8', mode: 0o666, flag: 'a' } as FsOptions) };
    if (!o.flag || isFd(path)) o.flag = 'a';
    this.writeFileSync(path, data, o);
  }

  // --- directories ---------------------------------------------------------------------------------

  readdirSync(path: unknown, options?: unknown): Array<string | Buffer | Dirent<string> | Dirent<Buffer>> {
    const o = getOptions(options) as FsOptions & { withFileTypes?: boolean; recursive?: unknown };
    const p = this.pathOf(path);
    if (o.recursive != null) validateBoolean(o.recursive, 'options.recursive');
    const encoding = o.encoding;
    const root = call('scandir', p, () => this.node(p, true, 'scandir'));
    if (!root.isDir) throw fsError('ENOTDIR', 'scandir', p);
    const out: Array<string | Buffer | Dirent<string> | Dirent<Buffer>> = [];
    const base = shownPath(path, p);
    const queue: Array<{ node: OverlayNode; rel: string; dir: string }> = [{ node: root, rel: '', dir: base }];
    for (let i = 0; i < queue.length; i++) {
      const { node, rel, dir } = queue[i];
      const entries = call('scandir', dir, () => this.overlay.readdir(node));
      for (const e of entries) {
        const relName = rel === '' ? e.name : `${rel}/${e.name}`;
        if (o.withFileTypes) out.push(direntOf(encodeName(e.name, encoding) as string, e.type, dir));
        else out.push(encodeName(o.recursive ? relName : e.name, encoding));
        if (o.recursive && (e.type & S_IFMT) === S_IFDIR) {
          const child = this.overlay.lookup(node, e.name);
          if (child !== null && child.isDir) queue.push({ node: child, rel: relName, dir: posix.join(dir, e.name) });
        }
      }
    }
    return out;
  }

  mkdirSync(path: unknown, options?: unknown): string | undefined {
    let mode: unknown = 0o777;
    let recursive: unknown = false;
    if (typeof options === 'number' || typeof options === 'string') {
      mode = options;
    } else if (options) {
      const o = options as { recursive?: unknown; mode?: unknown };
      if (o.recursive !== undefined) recursive = o.recursive;
      if (o.mode !== undefined) mode = o.mode;
    }
    const p = this.pathOf(path);
    validateBoolean(recursive, 'options.recursive');
    const m = parseFileMode(mode, 'mode');
    if (!recursive) {
      call('mkdir', p, () => {
        const { parent, name } = this.forCreate(p, 'mkdir', true);
        this.overlay.mkdir(parent, name, m);
        this.changed(childPath(parent, name), 'rename');
      });
      return undefined;
    }
    let first: string | undefined;
    let node = this.overlay.root;
    let sofar = '';
    const names = p.split('/').filter((s) => s !== '');
    names.forEach((name, i) => {
      sofar += '/' + name;
      const current = sofar;
      node = call('mkdir', p, () => {
        let child = this.overlay.lookup(node, name);
        if (child !== null && child.type === S_IFLNK) child = this.node(current, true, 'mkdir');
        if (child === null) {
          first ??= current;
          const made = this.overlay.mkdir(node, name, m);
          this.changed(current, 'rename');
          return made;
        }
        // A file in the middle of the path is ENOTDIR; the path itself being a file is EEXIST.
        if (!child.isDir) throw fsError(i === names.length - 1 ? 'EEXIST' : 'ENOTDIR', 'mkdir', p);
        return child;
      });
    });
    return first === undefined ? undefined : encodeName(first, undefined) as string;
  }

  mkdtempSync(prefix: unknown, options?: unknown): string | Buffer {
    const o = getOptions(options);
    const valid = getValidatedPath(prefix, 'prefix');
    warnOnNonPortableTemplate(valid);
    const text = typeof valid === 'string' ? valid : valid.toString();
    const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    for (let attempt = 0; ; attempt++) {
      let suffix = '';
      for (let i = 0; i < 6; i++) suffix += chars[Math.floor(Math.random() * chars.length)];
      const p = toPath(text + suffix);
      try {
        call('mkdtemp', p, () => {
          const { parent, name } = this.forCreate(p, 'mkdtemp', true);
          this.overlay.mkdir(parent, name, 0o700);
          this.changed(childPath(parent, name), 'rename');
        });
        return encodeName(shownPath(valid, p, text + suffix), o.encoding);
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST' || attempt > 100) throw relabel(err, 'mkdtemp', toPath(text) + 'XXXXXX');
      }
    }
  }

  /**
   * `removeEmptied`, when given, removes each directory whose entries were removed first (Node's
   * rimraf does that through the fs module: module-calls.ts); a directory found empty goes here.
   */
  rmdirSync(path: unknown, options?: unknown, removeEmptied?: (path: string) => void): void {
    const p = this.pathOf(path);
    if ((options as { recursive?: unknown } | undefined)?.recursive) {
      emitRecursiveRmdirWarning();
      const o = validateRmOptionsShape({ ...(options as object), force: false });
      // Node checks with lstat first: a missing path fails there, a non-directory falls through to
      // rmdir(2) and its ENOTDIR, never to a recursive removal.
      const st = this.lstatSync(p) as fs.Stats;
      if (st.isDirectory()) {
        this.removeTree(p, o, removeEmptied);
        return;
      }
    } else {
      validateRmdirOptions(options);
    }
    this.rmdirOne(p);
  }

  private rmdirOne(p: string): void {
    call('rmdir', p, () => {
      const { parent, name } = this.overlay.resolveParent(p, 'rmdir');
      if (name === '') throw fsError('EBUSY', 'rmdir', p);
      if (name === '.') throw fsError('EINVAL', 'rmdir', p);
      if (name === '..') throw fsError('ENOTEMPTY', 'rmdir', p);
      this.overlay.rmdir(parent, name);
      this.changed(childPath(parent, name), 'rename');
    });
  }

  /** `removeEmptied` as for rmdirSync. */
  rmSync(path: unknown, options?: unknown, removeEmptied?: (path: string) => void): void {
    const p = this.pathOf(path);
    const o = validateRmOptionsShape(options);
    let isDir: boolean | undefined;
    if (!o.force || !o.recursive) {
      isDir = (this.lstatSync(p, { throwIfNoEntry: !o.force }) as fs.Stats | undefined)?.isDirectory();
      if (isDir && !o.recursive) throw fsEisdir(p);
    }
    let node: OverlayNode;
    try {
      node = this.node(p, false, 'lstat');
    } catch (err) {
      if (o.force && (err as { code?: string }).code === 'ENOENT') return;
      throw relabel(err, 'lstat', p);
    }
    if (node.isDir) this.removeTree(p, o, removeEmptied);
    else this.unlinkSync(p);
  }

  private removeTree(p: string, _o: RmdirOptions, removeEmptied?: (path: string) => void): void {
    const node = this.node(p, false, 'lstat');
    if (node.isDir) {
      const entries = call('scandir', p, () => this.overlay.readdir(node));
      for (const e of entries) this.removeTree(posix.join(p, e.name), _o, removeEmptied);
      if (entries.length > 0 && removeEmptied !== undefined) removeEmptied(p);
      else this.rmdirOne(p);
    } else {
      this.unlinkSync(p);
    }
  }

  unlinkSync(path: unknown): void {
    const p = this.pathOf(path);
    call('unlink', p, () => {
      const { parent, name, trailingSlash } = this.overlay.resolveParent(p, 'unlink');
      if (!isNormalName(name)) throw fsError('EISDIR', 'unlink', p);
      if (trailingSlash) {
        const node = this.overlay.lookup(parent, name);
        throw fsError(node === null ? 'ENOENT' : node.isDir ? 'EISDIR' : 'ENOTDIR', 'unlink', p);
      }
      this.overlay.unlink(parent, name);
      this.changed(childPath(parent, name), 'rename');
    });
  }

  renameSync(oldPath: unknown, newPath: unknown): void {
    const from = this.pathOf(oldPath, 'oldPath');
    const to = this.pathOf(newPath, 'newPath');
    call2('rename', from, to, () => {
      // Both parents resolve before either name is judged, as in do_renameat2.
      const a = this.overlay.resolveParent(from, 'rename');
      const b = this.overlay.resolveParent(to, 'rename');
      if (!isNormalName(a.name) || !isNormalName(b.name)) throw fsError('EBUSY', 'rename', from, to);
      if (a.trailingSlash || b.trailingSlash) {
        const node = this.overlay.lookup(a.parent, a.name);
        if (node !== null && !node.isDir) throw fsError('ENOTDIR', 'rename', from, to);
      }
      this.overlay.rename(a.parent, a.name, b.parent, b.name);
      this.changed(childPath(a.parent, a.name), 'rename');
      this.changed(childPath(b.parent, b.name), 'rename');
    });
  }

  // --- links ---------------------------------------------------------------------------------------

  symlinkSync(target: unknown, path: unknown, type?: unknown): void {
    const t = getValidatedPath(target, 'target');
    const p = this.pathOf(path);
    validateSymlinkType(type);
    const text = typeof t === 'string' ? t : nameFromBytes(t);
    call2('symlink', text, p, () => {
      const { parent, name } = this.forCreate(p, 'symlink', false);
      this.overlay.symlink(parent, name, text);
      this.changed(childPath(parent, name), 'rename');
    });
  }

  readlinkSync(path: unknown, options?: unknown): string | Buffer {
    const o = getOptions(options);
    const p = this.pathOf(path, 'oldPath');
    const target = call('readlink', p, () => this.overlay.readlink(this.node(p, false, 'readlink')));
    return encodeName(target, o.encoding);
  }

  /**
   * fs.realpathSync as Node's JavaScript implementation walks it: one lstat per component and a
   * readlink per link, so a failure names `lstat` and the component that failed.
   */
  realpathSync(path: unknown, options?: unknown): string | Buffer {
    const o = getOptions(options);
    let raw = toPathIfFileURL(path);
    if (typeof raw !== 'string') raw = `${raw as string}`;
    const start = this.pathOf(raw);
    const seen = new Map<string, string>();
    let p = start.length > 1 && start.endsWith('/') ? start.slice(0, -1) : start;
    let pos = 1;
    let current = '/';
    let links = 0;
    while (pos < p.length) {
      const next = p.indexOf('/', pos);
      const part = next === -1 ? p.slice(pos) : p.slice(pos, next);
      pos = next === -1 ? p.length : next + 1;
      const base = current === '/' ? `/${part}` : `${current}/${part}`;
      const node = call('lstat', base, () => this.node(base, false, 'lstat'));
      if (node.type !== S_IFLNK) {
        current = base;
        continue;
      }
      if (++links > MAX_SYMLINKS) throw fsError('ELOOP', 'stat', base);
      let target = seen.get(base);
      if (target === undefined) {
        call('stat', base, () => this.node(base, true, 'stat'));
        target = this.overlay.readlink(node);
        seen.set(base, target);
      }
      const resolved = posix.resolve(current, target);
      p = posix.resolve(resolved, p.slice(pos));
      current = '/';
      pos = 1;
    }
    return encodeName(current, o.encoding);
  }

  /** fs.realpathSync.native: one realpath(3) call, whose failures name `realpath`. */
  realpathNativeSync(path: unknown, options?: unknown): string | Buffer {
    const o = getOptions(options);
    const p = this.pathOf(path);
    const node = call('realpath', p, () => this.node(p, true, 'realpath'));
    return encodeName(node.path(), o.encoding);
  }

  linkSync(existingPath: unknown, newPath: unknown): void {
    const from = this.pathOf(existingPath, 'existingPath');
    const to = this.pathOf(newPath, 'newPath');
    call2('link', from, to, () => {
      const node = this.node(from, false, 'link');
      const { parent, name } = this.forCreate(to, 'link', false);
      this.overlay.link(node, parent, name);
      this.changed(childPath(parent, name), 'rename');
    });
  }

  // --- attributes ----------------------------------------------------------------------------------

  chmodSync(path: unknown, mode: unknown): void {
    const p = this.pathOf(path);
    const m = parseFileMode(mode, 'mode');
    call('chmod', p, () => this.overlay.setattr(this.node(p, true, 'chmod'), { mode: m }, 'chmod'));
    this.changed(p, 'change');
  }

  chownSync(path: unknown, uid: unknown, gid: unknown): void {
    const p = this.pathOf(path);
    validateInteger(uid, 'uid', -1, kMaxUserId);
    validateInteger(gid, 'gid', -1, kMaxUserId);
    call('chown', p, () => this.overlay.setattr(this.node(p, true, 'chown'), { uid, gid }, 'chown'));
    this.changed(p, 'change');
  }

  lchownSync(path: unknown, uid: unknown, gid: unknown): void {
    const p = this.pathOf(path);
    validateInteger(uid, 'uid', -1, kMaxUserId);
    validateInteger(gid, 'gid', -1, kMaxUserId);
    call('lchown', p, () => this.overlay.setattr(this.node(p, false, 'lchown'), { uid, gid }, 'lchown'));
    this.changed(p, 'change');
  }

  utimesSync(path: unknown, atime: unknown, mtime: unknown): void {
    const p = this.pathOf(path);
    const a = toUnixTimestamp(atime);
    const m = toUnixTimestamp(mtime);
    call('utime', p, () => this.overlay.setattr(this.node(p, true, 'utime'), { atimeNs: secondsToNs(a), mtimeNs: secondsToNs(m) }, 'utime'));
    this.changed(p, 'change');
  }

  lutimesSync(path: unknown, atime: unknown, mtime: unknown): void {
    const p = this.pathOf(path);
    const a = toUnixTimestamp(atime);
    const m = toUnixTimestamp(mtime);
    call('lutime', p, () => this.overlay.setattr(this.node(p, false, 'lutime'), { atimeNs: secondsToNs(a), mtimeNs: secondsToNs(m) }, 'lutime'));
    this.changed(p, 'change');
  }

  // --- copies --------------------------------------------------------------------------------------

  /**
   * Copies the source's current data (never a stale lower copy: the source is opened through the
   * overlay), into a destination created like any new file. Where both have host files the data is
   * cloned (COPYFILE_FICLONE) when the filesystem can, and copied by the kernel otherwise;
   * COPYFILE_FICLONE_FORCE fails with the filesystem's error when it cannot clone.
   */
  copyFileSync(src: unknown, dest: unknown, mode?: unknown): void {
    const from = this.pathOf(src, 'src');
    const to = this.pathOf(dest, 'dest');
    const flags = getValidFileModeNative(mode, 'copyFile');
    call2('copyfile', from, to, () => this.copyFile(from, to, flags));
  }

  private copyFile(from: string, to: string, flags: number): void {
    const input = call('copyfile', from, () => this.allocate(this.openPath(from, O_RDONLY, 0, 0)), to);
    try {
      const inputFile = this.fileOf(input, 'copyfile');
      const st = call('copyfile', from, () => this.overlay.fstat(inputFile), to);
      if ((st.mode & S_IFMT) === S_IFDIR) throw fsError('EISDIR', 'copyfile', from, to);
      const outFlags = O_WRONLY | O_CREAT | O_TRUNC | ((flags & COPYFILE_EXCL) !== 0 ? O_EXCL : 0);
      const output = this.allocate(this.openPath(to, outFlags, st.mode & 0o7777, 0));
      try {
        const outputFile = this.fileOf(output, 'copyfile');
        const force = (flags & COPYFILE_FICLONE_FORCE) !== 0;
        call('copyfile', from, () => this.overlay.cloneFile(inputFile, outputFile, force), to);
      } finally {
        this.closeSync(output);
      }
    } finally {
      this.closeSync(input);
    }
  }

  cpSync(src: unknown, dest: unknown, options?: unknown): void {
    const o = validateCpOptions(options);
    cp(this as unknown as CpFs, this.pathOf(src, 'src'), this.pathOf(dest, 'dest'), o);
  }

  /** fs.cp's work for the callback and promise forms: arguments checked now, the filter awaited. */
  cpAsync(src: unknown, dest: unknown, options?: unknown): Promise<void> {
    const o = validateCpOptions(options);
    return cpAsync(this as unknown as CpFs, this.pathOf(src, 'src'), this.pathOf(dest, 'dest'), o);
  }


}

