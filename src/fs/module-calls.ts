// The node:fs functions whose own code calls other fs functions through the fs module object rather
// than directly: writeFileSync calls fs.openSync, fs.writeSync, fs.fsyncSync and fs.closeSync
// (readFileSync fs.openSync, fs.readSync and fs.closeSync);
// appendFile calls fs.writeFile; rimraf (rmSync, rmdirSync with `recursive`) calls fs.rmdirSync on
// each directory it emptied. These make the same calls through the module object of this fs (the
// assembled facade, or an object standing in for it: index.ts), so a caller that replaces one of
// those functions there (a spy, a wrapper) sees the calls as it would with node:fs. Only the calls
// Node v20's lib/fs.js and internal/fs/rimraf.js make through the module go through it; everything
// else stays inside the overlay, and the promise forms never use the module, as in Node.
import { constants, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { errorCode, fsError } from '../errors.js';
import { hasRawBytes, nameToBytes } from '../names.js';
import { toBuffer } from './args.js';
import { asyncIoOf, CHUNK, deliverAsync } from './async-io.js';
import { deliver, later, type Callback } from './defer.js';
import { isFd, showTruncateDeprecation, truncateThrough, type SyncFs } from './sync.js';
import {
  abortError, checkAborted, emitRecursiveRmdirWarning, ERR_FS_FILE_TOO_LARGE, getOptions, kIoMaxLength, validateBoolean, validateFunction, validateInteger, validateRmOptionsShape,
  validateStringAfterArrayBufferView, type FsOptions,
} from './validate.js';

type Loose = (...args: unknown[]) => unknown;

/** The functions called through the module object, by their node:fs names. */
export type ModuleFs = Record<
  'openSync' | 'readSync' | 'writeSync' | 'fsyncSync' | 'closeSync' | 'ftruncateSync' | 'writeFileSync' | 'rmdirSync' |
  'open' | 'write' | 'fsync' | 'close' | 'ftruncate' | 'writeFile' | 'access' | 'exists' | 'lstat',
  Loose
>;

/** One callback-form call through the module, as a promise. */
function viaCallback<T>(start: (cb: Callback) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value as T))));
}

/** Node's writeFile options (the caller's object itself, never changed) and its checked `flush`. */
function writeOptions(options: unknown): { o: FsOptions; flush: boolean } {
  const o = getOptions(options, { encoding: 'utf8', mode: 0o666, flag: 'w', flush: false } as FsOptions);
  const flush = (o.flush as boolean | undefined) ?? false;
  validateBoolean(flush, 'options.flush');
  return { o, flush };
}

/** appendFile's options as it hands them to writeFile: a copy, flag 'a' unless another is given (always 'a' for an fd). */
function appendOptions(path: unknown, options: unknown): FsOptions {
  const o = { ...getOptions(options, { encoding: 'utf8', mode: 0o666, flag: 'a' } as FsOptions) };
  if (!o.flag || isFd(path)) o.flag = 'a';
  return o;
}

function dataBuffer(data: unknown, encoding: unknown): NodeJS.ArrayBufferView {
  if (ArrayBuffer.isView(data)) return data as NodeJS.ArrayBufferView;
  validateStringAfterArrayBufferView(data, 'data');
  return toBuffer(data, (encoding || 'utf8') as BufferEncoding);
}

export interface ModuleCalls {
  sync: Record<'readFileSync' | 'writeFileSync' | 'appendFileSync' | 'truncateSync' | 'rmdirSync' | 'rmSync', Loose>;
  callback: Record<'writeFile' | 'appendFile' | 'truncate' | 'exists' | 'rm' | 'rmdir', Loose>;
}

/** `module()` gives the object to call through at the time of each call. */
export function makeModuleCalls(sync: SyncFs, module: () => ModuleFs, plainRmdir: Loose): ModuleCalls {
  /** Node's rimraf removes a directory it emptied with fs.rmdirSync(path), and takes ENOENT as done. */
  const removeEmptied = (p: string): void => {
    try {
      module().rmdirSync(hasRawBytes(p) ? nameToBytes(p) : p);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
  };

  function readFileSync(path: unknown, options?: unknown): string | Buffer {
    const o = getOptions(options, { flag: 'r' } as FsOptions);
    // Node reads into a UTF-8 string with one native call, through nothing on the module.
    if (o.encoding === 'utf8' || o.encoding === 'utf-8') return sync.readFileSync(path, options);
    const m = module();
    const isUserFd = isFd(path);
    const fd = isUserFd ? path : m.openSync(path, o.flag, 0o666);
    let data: Buffer;
    try {
      const st = sync.fstatSync(fd) as Stats;
      if (st.isDirectory()) throw fsError('EISDIR', 'read');
      // Exactly the size fstat reports; only files that report 0 (like /proc) are read in chunks until EOF.
      const size = st.isFile() ? st.size : 0;
      if (size > kIoMaxLength) throw ERR_FS_FILE_TOO_LARGE(size);
      if (size > 0) {
        data = Buffer.allocUnsafe(size);
        let pos = 0;
        let n: number;
        do {
          n = m.readSync(fd, data, pos, size - pos) as number;
          pos += n;
        } while (n !== 0 && pos < size);
        if (pos < size) data = data.subarray(0, pos);
      } else {
        const chunks: Buffer[] = [];
        let total = 0;
        for (;;) {
          const chunk = Buffer.allocUnsafe(8192);
          const n = m.readSync(fd, chunk, 0, chunk.length) as number;
          if (n === 0) break;
          chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
          total += n;
        }
        data = Buffer.concat(chunks, total);
      }
    } catch (err) {
      if (!isUserFd) m.closeSync(fd);
      throw err;
    }
    if (!isUserFd) m.closeSync(fd);
    return o.encoding && o.encoding !== 'buffer' ? data.toString(o.encoding) : data;
  }

  function writeFileSync(path: unknown, data: unknown, options?: unknown): void {
    const { o, flush } = writeOptions(options);
    // Node writes a UTF-8 string with one native call, through nothing on the module.
    if (typeof data === 'string' && (o.encoding === 'utf8' || o.encoding === 'utf-8')) return sync.writeFileSync(path, data, options);
    const buffer = dataBuffer(data, o.encoding);
    const m = module();
    const isUserFd = isFd(path);
    const fd = isUserFd ? path : m.openSync(path, o.flag || 'w', o.mode);
    try {
      let offset = 0;
      let length = buffer.byteLength;
      while (length > 0) {
        const written = m.writeSync(fd, buffer, offset, length) as number;
        offset += written;
        length -= written;
      }
      if (flush) m.fsyncSync(fd);
    } finally {
      if (!isUserFd) m.closeSync(fd);
    }
  }

  function truncateSync(path: unknown, len?: unknown): void {
    truncateThrough(module() as Parameters<typeof truncateThrough>[0], path, len);
  }


  /** Node's writeAll: the data in writes of at most CHUNK, the signal looked at before each, then fsync and close. */
  async function writeAll(m: ModuleFs, fd: unknown, isUserFd: boolean, buffer: NodeJS.ArrayBufferView, signal: AbortSignal | undefined, flush: boolean): Promise<void> {
    let failed = false;
    let failure: unknown;
    try {
      let offset = 0;
      let length = buffer.byteLength;
      do {
        checkAborted(signal);
        const at = offset;
        const written = await viaCallback<number>((cb) => m.write(fd, buffer, at, Math.min(CHUNK, length), null, cb));
        offset += written;
        length -= written;
      } while (length > 0);
      if (flush) await viaCallback((cb) => m.fsync(fd, cb));
    } catch (err) {
      failed = true;
      failure = err;
    }
    if (!isUserFd) {
      try {
        await viaCallback((cb) => m.close(fd, cb));
      } catch (err) {
        if (!failed) [failed, failure] = [true, err];
      }
    }
    if (failed) throw failure;
  }

  function writeFile(path: unknown, data: unknown, options?: unknown, callback?: unknown): void {
    callback ||= options;
    validateFunction(callback, 'cb');
    const cb = callback as Callback;
    const { o, flush } = writeOptions(options);
    const buffer = dataBuffer(data, o.encoding);
    const m = module();
    if (isFd(path)) {
      deliverAsync(cb, () => writeAll(m, path, true, buffer, o.signal, flush), () => []);
      return;
    }
    if (o.signal?.aborted) {
      later(cb, abortError(o.signal));
      return;
    }
    m.open(path, o.flag || 'w', o.mode, (openErr: Error | null, fd: number) => {
      if (openErr) Reflect.apply(cb, undefined, [openErr]);
      else deliverAsync(cb, () => writeAll(m, fd, false, buffer, o.signal, flush), () => []);
    });
  }

  function appendFile(path: unknown, data: unknown, options?: unknown, callback?: unknown): void {
    callback ||= options;
    validateFunction(callback, 'cb');
    module().writeFile(path, data, appendOptions(path, options), callback);
  }

  function truncate(path: unknown, len?: unknown, callback?: unknown): void {
    const m = module();
    if (typeof path === 'number') {
      showTruncateDeprecation();
      m.ftruncate(path, len, callback);
      return;
    }
    if (typeof len === 'function') {
      callback = len;
      len = 0;
    } else if (len === undefined) {
      len = 0;
    }
    validateInteger(len, 'len');
    const size = Math.max(0, len);
    validateFunction(callback, 'cb');
    const cb = callback as Callback;
    m.open(path, 'r+', (openErr: Error | null, fd: number) => {
      if (openErr) return Reflect.apply(cb, undefined, [openErr]);
      let failure: unknown = null;
      try {
        sync.ftruncateSync(fd, size);
      } catch (err) {
        failure = err;
      }
      m.close(fd, (closeErr: Error | null) => Reflect.apply(cb, undefined, [failure ?? closeErr]));
    });
  }

  function exists(path: unknown, callback: unknown): void {
    validateFunction(callback, 'cb');
    try {
      module().access(path, constants.F_OK, (err: Error | null) => Reflect.apply(callback, undefined, [!err]));
    } catch {
      Reflect.apply(callback, undefined, [false]);
    }
  }
  Object.defineProperty(exists, promisify.custom, {
    value: function exists(path: unknown): Promise<boolean> {
      return new Promise((resolve) => module().exists(path, resolve));
    },
  });

  /** Node checks rm's target with fs.lstat before it removes anything. */
  function rm(path: unknown, options?: unknown, callback?: unknown): void {
    if (typeof options === 'function') [options, callback] = [undefined, options];
    validateFunction(callback, 'cb');
    const cb = callback as Callback;
    sync.pathOf(path);
    const o = validateRmOptionsShape(options);
    module().lstat(path, (err: Error | null) => {
      if (err && !(o.force && errorCode(err) === 'ENOENT')) return Reflect.apply(cb, undefined, [err]);
      deliver(cb, () => (sync.rmSync(path, options), []));
    });
  }

  /** rmdir with `recursive` checks its target with fs.lstat first, as rm does; without, it is plain rmdir(2). */
  function rmdir(...args: unknown[]): void {
    let [path, options, callback] = args;
    if (typeof options === 'function' || !(options as { recursive?: unknown } | null | undefined)?.recursive) {
      plainRmdir(...args);
      return;
    }
    validateFunction(callback, 'cb');
    const cb = callback as Callback;
    sync.pathOf(path);
    emitRecursiveRmdirWarning();
    validateRmOptionsShape({ ...(options as object), force: false });
    module().lstat(path, (err: Error | null) => {
      if (err) return Reflect.apply(cb, undefined, [err]);
      deliver(cb, () => (sync.rmdirSync(path, options), []));
    });
  }

  return {
    sync: {
      readFileSync,
      writeFileSync,
      appendFileSync: (path: unknown, data: unknown, options?: unknown) => module().writeFileSync(path, data, appendOptions(path, options)),
      truncateSync,
      rmdirSync: (path: unknown, options?: unknown) => sync.rmdirSync(path, options, removeEmptied),
      rmSync: (path: unknown, options?: unknown) => sync.rmSync(path, options, removeEmptied),
    },
    callback: { writeFile, appendFile, truncate, exists, rm, rmdir },
  };
}
