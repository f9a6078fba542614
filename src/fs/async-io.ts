// Data on libuv's thread pool, for the callback and promise forms, FileHandle and the streams.
// Each transfer takes a data lease from the core (through its choke point, so a handle opened
// before a copy-up reads and writes the upper file) and moves the bytes with Node's own async fs on
// the lent host fd. A writing open of a lower file copies it up the same way first. Whole files go
// in chunks, so no step holds the event loop for long, whatever the size. Where a file has no host
// fd (MemoryLayer), the synchronous call runs and its result arrives with the promise.
//
// Argument checks happen before anything starts and throw synchronously, so the callback forms can
// throw them as Node's do; everything after is the promise's.
import * as fs from 'node:fs';
import { errorCode, fsError } from '../errors.js';
import type { OpenFile } from '../overlay/index.js';
import { toBuffer } from './args.js';
import { isArgumentError, type Callback } from './defer.js';
import type { SyncFs } from './sync.js';
import {
  checkAborted, ERR_FS_FILE_TOO_LARGE, getOptions, getValidatedFdNative, getValidFileModeNative, kIoMaxLength, kMaxUserId, parseFileMode,
  stringToFlags, toUnixTimestamp, validateBoolean, validateInteger, validateStringAfterArrayBufferView, type FsOptions,
} from './validate.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW, O_APPEND, COPYFILE_EXCL, COPYFILE_FICLONE_FORCE } = fs.constants;
/** The access-mode bits of open flags (node:fs's constants lack O_ACCMODE). */
const O_ACCMODE = 3;

/** The most one step of readFile/writeFile moves: a few ms of pool time, nothing on the event loop. */
export const CHUNK = 1 << 20;

function hostRead(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | bigint): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buffer, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

function hostWrite(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | null): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, buffer, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

function hostSync(fd: number, datasync: boolean): Promise<void> {
  return new Promise((resolve, reject) => (datasync ? fs.fdatasync : fs.fsync)(fd, (err) => (err ? reject(err) : resolve())));
}

/**
 * With an AbortSignal, the work starts on a later turn and looks at the signal first: Node's opens
 * run on the pool, so an abort right after the call (even from a microtask) is honoured there too.
 */
async function settleSignal(signal: AbortSignal | null | undefined): Promise<void> {
  checkAborted(signal);
  if (signal == null) return;
  await new Promise((resolve) => setImmediate(resolve));
  checkAborted(signal);
}

/**
 * Metadata changes by path that copy a lower file's data up first (with metacopy=off): whether
 * they follow a last symlink, and their argument checks, made before any copy starts.
 */
const CHANGES: Record<string, { follow: boolean; fd?: true; check(args: unknown[]): void }> = {
  chmod: { follow: true, check: (a) => parseFileMode(a[1], 'mode') },
  chown: { follow: true, check: (a) => ids(a) },
  lchown: { follow: false, check: (a) => ids(a) },
  utimes: { follow: true, check: (a) => times(a) },
  lutimes: { follow: false, check: (a) => times(a) },
  // The same changes on an open file (a handle opened read-only on a lower file copies it up too).
  fchmod: { follow: true, fd: true, check: (a) => parseFileMode(a[1], 'mode') },
  fchown: { follow: true, fd: true, check: (a) => ids(a) },
  futimes: { follow: true, fd: true, check: (a) => times(a) },
};

function ids(args: unknown[]): void {
  validateInteger(args[1], 'uid', -1, kMaxUserId);
  validateInteger(args[2], 'gid', -1, kMaxUserId);
}

function times(args: unknown[]): void {
  toUnixTimestamp(args[1]);
  toUnixTimestamp(args[2]);
}

/** A copyFile error names both paths, as Node's do (`copyfile 'a' -> 'b'`). */
function copyfileError(err: unknown, from: string, to: string): unknown {
  const code = errorCode(err);
  if (code === undefined || code.startsWith('ERR_') || (err as { dest?: unknown }).dest !== undefined) return err;
  return fsError(code, 'copyfile', from, to);
}

/** Node's isFd for readFile/writeFile: an int32 is a descriptor, anything else a path. */
function isFd(path: unknown): path is number {
  return typeof path === 'number' && (path | 0) === path;
}

export class AsyncIo {
  constructor(private readonly sync: SyncFs) {}

  private file(fd: number, syscall: string): OpenFile {
    return this.sync.fileOf(fd, syscall);
  }

  /** read(2)/pread(2) of a virtual fd; position null (or -1) reads at the file position and moves it. */
  read(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | bigint | null): Promise<number> {
    const overlay = this.sync.overlay;
    const file = this.file(fd, 'read');
    // No file reaches past 2^53 bytes: a valid bigint position beyond that is past the end.
    if (typeof position === 'bigint' && position > BigInt(Number.MAX_SAFE_INTEGER)) return Promise.resolve(0);
    const at = position === null || position === -1 || position === -1n ? null : Number(position);
    if (at !== null && at < 0) throw fsError('EINVAL', 'read');
    const lease = overlay.leaseData(file, 'read');
    if (lease === undefined) return Promise.resolve(this.sync.readAt(fd, buffer, offset, length, position));
    const range = at === null ? overlay.reservePosition(file, length) : undefined;
    return hostRead(lease.fd, buffer, offset, length, range?.position ?? at!).then(
      (n) => {
        lease.release();
        range?.done(n);
        return n;
      },
      (err: unknown) => {
        lease.release();
        range?.done(0);
        throw err;
      },
    );
  }

  /** write(2)/pwrite(2) of a virtual fd; position null writes at the file position, O_APPEND at the end. */
  write(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | bigint | null): Promise<number> {
    const overlay = this.sync.overlay;
    const file = this.file(fd, 'write');
    const at = position === null || (typeof position !== 'number' && typeof position !== 'bigint') ? null : Number(position);
    const lease = overlay.leaseData(file, 'write');
    if (lease === undefined) return Promise.resolve(this.sync.writeAt(fd, buffer, offset, length, position));
    const range = at === null || at < 0 ? overlay.reservePosition(file, length) : undefined;
    // The host fd has O_APPEND too: write(2) without a position puts the data at the end, atomically.
    const where = (file.flags & O_APPEND) !== 0 ? null : range?.position ?? at;
    if (typeof where === 'bigint') {
      // A file position past 2^53, which Node's write takes for none (it writes at the fd's own offset): the core's write.
      lease.release();
      range?.done(0);
      return Promise.resolve(this.sync.writeAt(fd, buffer, offset, length, position));
    }
    return hostWrite(lease.fd, buffer, offset, length, where).then(
      (n) => {
        lease.release();
        range?.done(n);
        this.changed(file);
        return n;
      },
      (err: unknown) => {
        lease.release();
        range?.done(0);
        throw err;
      },
    );
  }

  private changed(file: OpenFile): void {
    if (this.sync.watchers.active) this.sync.watchers.notify(this.sync.overlay.nodeOf(file).path(), 'change');
  }

  async readv(fd: number, buffers: NodeJS.ArrayBufferView[], position: number | null): Promise<number> {
    let pos = position;
    let total = 0;
    for (const b of buffers) {
      if (b.byteLength === 0) continue;
      const got = await this.read(fd, b, 0, b.byteLength, pos);
      total += got;
      if (pos !== null) pos += got;
      if (got < b.byteLength) break;
    }
    return total;
  }

  async writev(fd: number, buffers: NodeJS.ArrayBufferView[], position: number | null): Promise<number> {
    let pos = position;
    let total = 0;
    for (const b of buffers) {
      const put = await this.writeAll(fd, b, 0, b.byteLength, pos);
      total += put;
      if (pos !== null) pos += put;
    }
    return total;
  }

  /** Writes all `length` bytes, in chunks; position null continues at the file position. */
  private async writeAll(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | null, signal?: AbortSignal | null): Promise<number> {
    let done = 0;
    while (done < length) {
      checkAborted(signal);
      const n = await this.write(fd, buffer, offset + done, Math.min(CHUNK, length - done), position === null ? null : position + done);
      done += n;
    }
    return done;
  }

  /** fsync(2)/fdatasync(2); nothing on a volatile overlay, as in the core's synchronous call. */
  fsync(fd: number, datasync = false): Promise<void> {
    const syscall = datasync ? 'fdatasync' : 'fsync';
    const overlay = this.sync.overlay;
    const file = this.file(getValidatedFdNative(fd), syscall);
    if (file.isDirectory || overlay.volatile || file.closed) {
      return Promise.resolve(datasync ? this.sync.fdatasyncSync(fd) : this.sync.fsyncSync(fd));
    }
    const lease = overlay.leaseData(file, file.writable ? 'write' : 'read');
    if (lease === undefined) return Promise.resolve(datasync ? this.sync.fdatasyncSync(fd) : this.sync.fsyncSync(fd));
    return hostSync(lease.fd, datasync).finally(() => lease.release());
  }

  /** open(2): a writing open of a lower file copies it up off the thread first. */
  open(path: unknown, flags?: unknown, mode?: unknown): Promise<number> {
    const p = this.sync.pathOf(path);
    const f = stringToFlags(flags);
    parseFileMode(mode, 'mode', 0o666);
    return this.copyUpFor(p, f).then(() => this.sync.openSync(path, flags, mode));
  }

  /** The copy-up that opening `p` with `flags` needs, done asynchronously; the open itself reports errors. */
  private async copyUpFor(p: string, flags: number): Promise<void> {
    if ((flags & O_ACCMODE) === O_RDONLY || (flags & O_TRUNC) !== 0) return;
    const overlay = this.sync.overlay;
    try {
      const node = overlay.resolve(p, (flags & O_NOFOLLOW) === 0, 'open');
      if (overlay.copyUpState(node) !== 'upper') await overlay.copyUpForOpen(node, flags);
    } catch {
      // The synchronous open that follows gives the error, with its own checks and in their order.
    }
  }

  /** readFile: the whole file (from the position, for an fd), read in chunks. */
  readFile(path: unknown, options?: unknown): Promise<string | Buffer> {
    const o = getOptions(options, { flag: 'r' } as FsOptions);
    const userFd = isFd(path);
    if (userFd) getValidatedFdNative(path);
    else {
      this.sync.pathOf(path);
      stringToFlags(o.flag);
    }
    return this.readWhole(path, o, userFd);
  }

  private async readWhole(path: unknown, o: FsOptions, userFd: boolean): Promise<string | Buffer> {
    await settleSignal(o.signal);
    const fd = userFd ? (path as number) : await this.open(path, o.flag, 0o666);
    try {
      const st = this.sync.fstatSync(fd) as fs.Stats;
      if (st.isDirectory()) throw fsError('EISDIR', 'read');
      // As node:fs does: read exactly the size fstat reports; only files that report 0 (like
      // /proc) are read until EOF.
      const size = st.isFile() ? st.size : 0;
      if (size > kIoMaxLength) throw ERR_FS_FILE_TOO_LARGE(size);
      let data: Buffer;
      if (size > 0) {
        data = Buffer.allocUnsafe(size);
        let total = 0;
        while (total < size) {
          checkAborted(o.signal);
          const n = await this.read(fd, data, total, Math.min(CHUNK, size - total), null);
          if (n === 0) break;
          total += n;
        }
        if (total < size) data = data.subarray(0, total);
      } else {
        const chunks: Buffer[] = [];
        let total = 0;
        for (;;) {
          checkAborted(o.signal);
          const chunk = Buffer.allocUnsafe(64 * 1024);
          const n = await this.read(fd, chunk, 0, chunk.length, null);
          if (n === 0) break;
          chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
          total += n;
        }
        data = Buffer.concat(chunks, total);
      }
      checkAborted(o.signal);
      return o.encoding && o.encoding !== 'buffer' ? data.toString(o.encoding) : data;
    } finally {
      if (!userFd) this.sync.closeSync(fd);
    }
  }

  /**
   * Before the metadata change `name` (chmod, chown, lchown, utimes, lutimes, or an f- form) on args[0]: the data
   * copy-up it would make, done asynchronously; undefined when there is none (or when the arguments
   * are bad: the synchronous call then throws as Node's does). The change itself runs after.
   */
  copyUpBefore(name: string, args: unknown[]): Promise<void> | undefined {
    const change = CHANGES[name];
    if (change === undefined) return undefined;
    try {
      const overlay = this.sync.overlay;
      const node = change.fd ? overlay.nodeOf(this.file(getValidatedFdNative(args[0]), name)) : overlay.resolve(this.sync.pathOf(args[0]), change.follow, name);
      change.check(args);
      const pending = overlay.copyUpForChange(node, true);
      // A failed copy-up is the synchronous call's to report, with its own error.
      return pending?.catch(() => {});
    } catch {
      return undefined;
    }
  }

  /** truncate(path): opened for writing (so a lower file is copied up asynchronously), then cut. */
  truncate(path: unknown, len: number): Promise<void> {
    return this.open(path, 'r+').then((fd) => {
      try {
        this.sync.ftruncateSync(fd, len);
      } finally {
        this.sync.closeSync(fd);
      }
    });
  }

  /**
   * copyFile: a clone where the layers' filesystem can make one, else the data in chunks through
   * both files' leases. COPYFILE_FICLONE_FORCE (a clone or nothing) is the synchronous call.
   */
  copyFile(src: unknown, dest: unknown, mode?: unknown): Promise<void> {
    const from = this.sync.pathOf(src, 'src');
    const to = this.sync.pathOf(dest, 'dest');
    const flags = getValidFileModeNative(mode, 'copyFile');
    if ((flags & COPYFILE_FICLONE_FORCE) !== 0) return Promise.resolve(this.sync.copyFileSync(src, dest, mode));
    return this.copyWhole(from, to, flags).catch((err: unknown) => {
      throw copyfileError(err, from, to);
    });
  }

  private async copyWhole(from: string, to: string, flags: number): Promise<void> {
    const input = await this.open(from, O_RDONLY);
    try {
      const st = this.sync.fstatSync(input) as fs.Stats;
      if (st.isDirectory()) throw fsError('EISDIR', 'copyfile', from, to);
      const output = await this.open(to, O_WRONLY | O_CREAT | O_TRUNC | ((flags & COPYFILE_EXCL) !== 0 ? O_EXCL : 0), st.mode & 0o7777);
      try {
        try {
          // A clone shares blocks at once; where none can be made, the data is copied below.
          this.sync.overlay.cloneFile(this.file(input, 'copyfile'), this.file(output, 'copyfile'), true);
          return;
        } catch {
          // no clone between these files
        }
        const buffer = Buffer.allocUnsafe(CHUNK);
        for (let pos = 0; ; ) {
          const n = await this.read(input, buffer, 0, buffer.length, pos);
          if (n === 0) break;
          await this.writeAll(output, buffer, 0, n, pos);
          pos += n;
        }
      } finally {
        this.sync.closeSync(output);
      }
    } finally {
      this.sync.closeSync(input);
    }
  }

  /** writeFile (flag 'w') and appendFile (flag 'a'): strings and buffers, written in chunks. */
  writeFile(path: unknown, data: unknown, options: unknown, defaultFlag: 'w' | 'a'): Promise<void> {
    const o = { ...getOptions(options, { encoding: 'utf8', mode: 0o666, flag: defaultFlag, flush: false } as FsOptions) };
    const flush = (o.flush as boolean | undefined) ?? false;
    validateBoolean(flush, 'options.flush');
    const userFd = isFd(path);
    if (!o.flag || (userFd && defaultFlag === 'a')) o.flag = defaultFlag;
    let buffer: NodeJS.ArrayBufferView;
    if (ArrayBuffer.isView(data)) {
      buffer = data as NodeJS.ArrayBufferView;
    } else {
      validateStringAfterArrayBufferView(data, 'data');
      buffer = toBuffer(data, (o.encoding || 'utf8') as BufferEncoding);
    }
    if (userFd) getValidatedFdNative(path);
    else {
      this.sync.pathOf(path);
      stringToFlags(o.flag);
      parseFileMode(o.mode, 'mode', 0o666);
    }
    return this.writeWhole(path, buffer, o, userFd, flush);
  }

  private async writeWhole(path: unknown, buffer: NodeJS.ArrayBufferView, o: FsOptions, userFd: boolean, flush: boolean): Promise<void> {
    await settleSignal(o.signal);
    const fd = userFd ? (path as number) : await this.open(path, o.flag, o.mode);
    try {
      await this.writeAll(fd, buffer, 0, buffer.byteLength, null, o.signal);
      if (flush) await this.fsync(fd);
    } finally {
      if (!userFd) this.sync.closeSync(fd);
    }
  }
}

const instances = new WeakMap<SyncFs, AsyncIo>();

/** The one AsyncIo of a SyncFs (the facade's callback, promise, handle and stream forms share it). */
export function asyncIoOf(sync: SyncFs): AsyncIo {
  let io = instances.get(sync);
  if (io === undefined) instances.set(sync, io = new AsyncIo(sync));
  return io;
}

/**
 * Starts `fn` now and delivers its promise's outcome to `cb` as `(null, ...results)` or
 * `(err, ...onError)`, always on a later turn. Argument errors thrown before it starts are thrown,
 * as Node's callback forms throw them.
 */
export function deliverAsync<T>(cb: Callback, fn: () => Promise<T>, results: (value: T) => unknown[], onError: unknown[] = []): void {
  let promise: Promise<T>;
  try {
    promise = fn();
  } catch (err) {
    if (isArgumentError(err)) throw err;
    setImmediate(() => Reflect.apply(cb, undefined, [err, ...onError]));
    return;
  }
  promise.then(
    (value) => setImmediate(() => Reflect.apply(cb, undefined, [null, ...results(value)])),
    (err: unknown) => setImmediate(() => Reflect.apply(cb, undefined, [err, ...onError])),
  );
}
