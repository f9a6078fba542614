// The promise forms of node:fs (fs.promises) over SyncFs: each runs the synchronous core call at
// once and settles with its result, so validation and system errors alike become rejections, as
// in Node. `open` gives an OverlayFileHandle and `opendir` an OverlayDir.
//
// Typing: single-signature functions are checked with `satisfies typeof fsp.X`. The overloaded
// ones (stat, readdir, readFile, mkdir, ...) are generic over the sync method and receive Node's
// exact types once, where the object is assembled; writing each overload set out again would only
// restate @types/node.
import type * as fs from 'node:fs';
import type * as fsp from 'node:fs/promises';
import { constants } from 'node:fs';
import { toFlags, toMode } from './args.js';
import { abortError, checkAborted, ERR_METHOD_NOT_IMPLEMENTED, getOptions, validateBoolean, validateStringAfterArrayBufferView } from './validate.js';
import { OverlayDir, type OpenDirOptions } from './dir.js';
import { OverlayFileHandle, writeAll, type HandleStreams } from './file-handle.js';
import type { SyncFs } from './sync.js';
import { asyncIoOf } from './async-io.js';

export const PROMISE_NAMES = [
  'access', 'copyFile', 'cp', 'open', 'opendir', 'rename', 'truncate', 'rm', 'rmdir', 'mkdir', 'readdir',
  'readlink', 'symlink', 'lstat', 'stat', 'statfs', 'link', 'unlink', 'chmod', 'lchown', 'chown', 'utimes',
  'lutimes', 'realpath', 'mkdtemp', 'writeFile', 'appendFile', 'readFile',
] as const;

/** Node's promise forms, except that open's handle is ours: an EventEmitter with 'close', which Node's type omits. */
export type PromisesApi = Pick<typeof fsp, Exclude<(typeof PROMISE_NAMES)[number], 'open'> | 'constants' | 'watch'> & {
  open(path: fs.PathLike, flags?: string | number, mode?: fs.Mode): Promise<OverlayFileHandle>;
};

type Loose = (...args: unknown[]) => unknown;
type WriteData = Parameters<typeof fsp.writeFile>[1];
type WriteOptions = { encoding?: BufferEncoding | null; mode?: fs.Mode; flag?: fs.OpenMode; flush?: boolean; signal?: AbortSignal } | BufferEncoding | null | undefined;

/**
 * Runs `fn` on a later microtask, as Node's promise forms run after their first await; an error's
 * stack is captured there, so it shows the caller's async frames ("at async …") as Node's do.
 */
async function run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
  await undefined;
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Error) Error.captureStackTrace(err, run);
    throw err;
  }
}

/** A later turn of the event loop: where an abortable call looks at its signal again. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function objectOf(options: WriteOptions): Exclude<WriteOptions, string | null | undefined> {
  return typeof options === 'object' && options !== null ? options : {};
}

export function makePromisesApi(sync: SyncFs, streams: HandleStreams): PromisesApi {
  // Data moves on libuv's thread pool (async-io.ts); the other calls run at once.
  const io = asyncIoOf(sync);
  const generic = (method: keyof SyncFs): Loose => {
    const fn = (sync[method] as Loose).bind(sync);
    return (...args: unknown[]) => run(() => fn(...args));
  };

  const access = ((path: fs.PathLike, mode?: number) => run(() => sync.accessSync(path, mode))) satisfies typeof fsp.access;
  const copyFile = ((src: fs.PathLike, dest: fs.PathLike, mode?: number) => run(() => io.copyFile(src, dest, mode))) satisfies typeof fsp.copyFile;
  // An async filter cannot run inside the synchronous copy; filters must answer synchronously here.
  const cp = ((src: string | URL, dest: string | URL, opts?: fs.CopyOptions) =>
    run(() => sync.cpAsync(src, dest, opts)).then(() => {})) satisfies typeof fsp.cp;
  const open = ((path: fs.PathLike, flags?: string | number, mode?: fs.Mode) =>
    run(async () => new OverlayFileHandle(sync, await io.open(path, flags, mode), streams))) satisfies typeof fsp.open;
  const rename = ((from: fs.PathLike, to: fs.PathLike) => run(() => sync.renameSync(from, to))) satisfies typeof fsp.rename;
  // As Node's: opened first (copying a lower file up asynchronously), then len is checked by ftruncate.
  const truncate = ((path: fs.PathLike, len?: number) => run(() => io.truncate(path, (len === undefined ? 0 : len) as number))) satisfies typeof fsp.truncate;
  const rm = ((path: fs.PathLike, options?: fs.RmOptions) => run(() => sync.rmSync(path, options))) satisfies typeof fsp.rm;
  const rmdir = ((path: fs.PathLike, options?: fs.RmDirOptions) => run(() => sync.rmdirSync(path, options))) satisfies typeof fsp.rmdir;
  const symlink = ((target: fs.PathLike, path: fs.PathLike, type?: string | null) =>
    run(() => sync.symlinkSync(target, path, type as fs.symlink.Type | null | undefined))) satisfies typeof fsp.symlink;
  const link = ((from: fs.PathLike, to: fs.PathLike) => run(() => sync.linkSync(from, to))) satisfies typeof fsp.link;
  const unlink = ((path: fs.PathLike) => run(() => sync.unlinkSync(path))) satisfies typeof fsp.unlink;
  // A change that copies a lower file's data up (metacopy=off) copies on the pool first.
  const change = <A extends unknown[]>(name: string, fn: (...args: A) => void) => (...args: A) =>
    run(async () => {
      await io.copyUpBefore(name, args);
      return fn(...args);
    });
  const chmod = change('chmod', (path: fs.PathLike, mode: fs.Mode) => sync.chmodSync(path, mode)) satisfies typeof fsp.chmod;
  const chown = change('chown', (path: fs.PathLike, uid: number, gid: number) => sync.chownSync(path, uid, gid)) satisfies typeof fsp.chown;
  const lchown = change('lchown', (path: fs.PathLike, uid: number, gid: number) => sync.lchownSync(path, uid, gid)) satisfies typeof fsp.lchown;
  const utimes = change('utimes', (path: fs.PathLike, atime: fs.TimeLike, mtime: fs.TimeLike) => sync.utimesSync(path, atime, mtime)) satisfies typeof fsp.utimes;
  const lutimes = change('lutimes', (path: fs.PathLike, atime: fs.TimeLike, mtime: fs.TimeLike) => sync.lutimesSync(path, atime, mtime)) satisfies typeof fsp.lutimes;

  const opendir = (path: fs.PathLike, options?: OpenDirOptions) => run(() => OverlayDir.open(sync, path, options));

  // readFile, writeFile and appendFile honour an AbortSignal that fires after the call: the work
  // waits for a later turn (Node's opens and reads are on the thread pool) and checks it first.
  const readFile = async (path: fs.PathLike | OverlayFileHandle, options?: unknown) => {
    const o = getOptions(options, { flag: 'r' });
    checkAborted(o.signal);
    if (path instanceof OverlayFileHandle) return path.readFile(options as BufferEncoding);
    if (o.signal !== undefined) {
      await nextTurn();
      checkAborted(o.signal);
    }
    const data = await run(() => io.readFile(path, o));
    if (o.signal?.aborted) throw abortError(o.signal);
    return data;
  };

  /** writeFile and appendFile: strings and buffers in one core call, iterables and `flush` through an fd. */
  const writeWhole = async (path: fs.PathLike | OverlayFileHandle, data: WriteData, options: WriteOptions, flag: string): Promise<void> => {
    const o = objectOf(getOptions(options) as WriteOptions);
    validateBoolean(o.flush ?? false, 'options.flush');
    const iterable = data !== null && typeof data === 'object' && !ArrayBuffer.isView(data) && (Symbol.iterator in data || Symbol.asyncIterator in data);
    if (!ArrayBuffer.isView(data) && !iterable) validateStringAfterArrayBufferView(data, 'data');
    checkAborted(o.signal);
    if (path instanceof OverlayFileHandle) return path.writeFile(data as string, options as BufferEncoding);
    if (o.signal !== undefined) {
      await nextTurn();
      checkAborted(o.signal);
    }
    const simple = typeof data === 'string' || ArrayBuffer.isView(data);
    if (simple && !o.flush) {
      const opts = { encoding: typeof options === 'string' ? options : o.encoding, mode: o.mode, flag: o.flag === undefined ? flag : o.flag };
      await run(() => io.writeFile(path, data, opts, flag === 'a' ? 'a' : 'w'));
      return;
    }
    const fd = await run(() => io.open(path, o.flag ?? flag, o.mode ?? 0o666));
    try {
      // A Readable is an AsyncIterable at runtime, which is all writeAll needs.
      await writeAll(sync, fd, data as Parameters<typeof writeAll>[2], options);
      if (o.flush) await io.fsync(fd);
    } finally {
      sync.closeSync(fd);
    }
  };
  const writeFile = (path: fs.PathLike | OverlayFileHandle, data: WriteData, options?: WriteOptions) => writeWhole(path, data, options, 'w');
  const appendFile = (path: fs.PathLike | OverlayFileHandle, data: WriteData, options?: WriteOptions) => writeWhole(path, data, options, 'a');

  const api = {
    access, copyFile, cp, open, rename, truncate, rm, rmdir, symlink, link, unlink, chmod, chown, lchown, utimes, lutimes,
    opendir, readFile, writeFile, appendFile,
    // As in Node on Linux: present, and always refused.
    lchmod: async () => {
      throw ERR_METHOD_NOT_IMPLEMENTED('lchmod()');
    },
    mkdir: generic('mkdirSync'),
    readdir: generic('readdirSync'),
    readlink: generic('readlinkSync'),
    lstat: generic('lstatSync'),
    stat: generic('statSync'),
    statfs: generic('statfsSync'),
    realpath: generic('realpathSync'),
    mkdtemp: generic('mkdtempSync'),
    constants,
  };
  // The one place the overloaded forms receive Node's exact types (see the header comment).
  return api as unknown as PromisesApi;
}
