// The callback forms of node:fs over SyncFs: each runs the synchronous core call now and delivers
// its result on a later turn (see defer.ts). Optional arguments before the callback are handled as
// Node does: the callback is the last argument, and everything before it goes to the sync form,
// which accepts the same optional arguments. The forms whose Node code calls other fs functions
// through the module object are module-calls.ts's, which index.ts puts in their place.
//
// Typing: node:fs's callback functions are overloaded and each is merged with a namespace holding
// `__promisify__`, a type-only member Node itself does not have at runtime. `satisfies typeof
// fs.stat` can therefore never hold for a plain function, and `Omit<…, '__promisify__'>` (ZenFS's
// way) drops the call signatures and checks nothing. So the wrappers are generic over the sync
// method and the assembled object is given Node's exact types once, in `makeCallbackApi`.
import type * as fs from 'node:fs';
import { promisify } from 'node:util';
import { asyncIoOf, deliverAsync } from './async-io.js';
import { deliver, later, makeCallback, type Callback } from './defer.js';
import { OverlayDir, type OpenDirOptions } from './dir.js';
import type { SyncFs } from './sync.js';
import {
  ERR_INVALID_ARG_VALUE, getValidatedFd, kValidateObjectAllowNullable, validateBuffer,
  validateBufferArray, validateEncoding, validateFunction, validateInteger, validateObject, validateOffsetLengthRead,
  validateOffsetLengthWrite, validatePosition, validateStringAfterArrayBufferView,
} from './validate.js';

type Loose = (...args: unknown[]) => unknown;

/** The names of every callback form this module provides. */
export const CALLBACK_NAMES = [
  'access', 'exists', 'stat', 'lstat', 'fstat', 'statfs', 'open', 'close', 'read', 'write', 'readv', 'writev',
  'fsync', 'fdatasync', 'readFile', 'writeFile', 'appendFile', 'truncate', 'ftruncate', 'readdir', 'opendir',
  'mkdir', 'mkdtemp', 'rmdir', 'rm', 'unlink', 'rename', 'copyFile', 'cp', 'symlink', 'readlink', 'realpath',
  'link', 'chmod', 'fchmod', 'chown', 'lchown', 'fchown', 'utimes', 'lutimes', 'futimes',
] as const;

export type CallbackName = (typeof CALLBACK_NAMES)[number];
export type CallbackApi = Pick<typeof fs, CallbackName>;

/** Forms whose callback gets `(err)` only; the rest get `(err, result)`. */
const VOID_FORMS = new Set<string>([
  'access', 'close', 'fsync', 'fdatasync', 'writeFile', 'appendFile', 'truncate', 'ftruncate', 'rmdir', 'rm',
  'unlink', 'rename', 'copyFile', 'cp', 'symlink', 'link', 'chmod', 'fchmod', 'chown', 'lchown', 'fchown',
  'utimes', 'lutimes', 'futimes',
]);

/** Same-named sync method for each plain form. */
const SYNC_OF: Partial<Record<CallbackName, keyof SyncFs>> = {
  access: 'accessSync', stat: 'statSync', lstat: 'lstatSync', fstat: 'fstatSync', statfs: 'statfsSync',
  open: 'openSync', close: 'closeSync', fsync: 'fsyncSync', fdatasync: 'fdatasyncSync', readFile: 'readFileSync',
  writeFile: 'writeFileSync', appendFile: 'appendFileSync', truncate: 'truncateSync', ftruncate: 'ftruncateSync',
  readdir: 'readdirSync', mkdir: 'mkdirSync', mkdtemp: 'mkdtempSync', rmdir: 'rmdirSync', rm: 'rmSync',
  unlink: 'unlinkSync', rename: 'renameSync', copyFile: 'copyFileSync', symlink: 'symlinkSync',
  readlink: 'readlinkSync', realpath: 'realpathSync', link: 'linkSync', chmod: 'chmodSync', fchmod: 'fchmodSync',
  chown: 'chownSync', lchown: 'lchownSync', fchown: 'fchownSync', utimes: 'utimesSync', lutimes: 'lutimesSync',
  futimes: 'futimesSync',
};

/** Each form's declared parameter count: where Node looks for the callback when the last argument is not one. */
const ARITY: Record<string, number> = {
  access: 3, stat: 3, lstat: 3, fstat: 3, statfs: 3, open: 4, fsync: 2, fdatasync: 2, readFile: 3, writeFile: 4,
  appendFile: 4, truncate: 3, ftruncate: 3, readdir: 3, opendir: 3, mkdir: 3, mkdtemp: 3, rmdir: 3, rm: 3, unlink: 2,
  rename: 3, copyFile: 4, cp: 4, symlink: 4, readlink: 3, realpath: 3, link: 3, chmod: 3, fchmod: 3, chown: 4,
  lchown: 4, fchown: 4, utimes: 4, lutimes: 4, futimes: 4,
};

/**
 * Splits off the callback, which Node requires (it throws synchronously without one): the last
 * argument when it is a function, else the one in the callback's declared position.
 */
function takeCallback(args: unknown[], name: string): [unknown[], Callback] {
  const last = args[args.length - 1];
  if (typeof last === 'function') return [args.slice(0, -1), last as Callback];
  const arity = ARITY[name] ?? args.length;
  return [args.slice(0, arity - 1), makeCallback(args[arity - 1])];
}

function plain(sync: SyncFs, name: CallbackName, method: keyof SyncFs): Loose {
  const fn = (sync[method] as Loose).bind(sync);
  const isVoid = VOID_FORMS.has(name);
  const wrapper = (...all: unknown[]): void => {
    const [args, cb] = takeCallback(all, name);
    const call = (): unknown[] => {
      const result = fn(...args);
      return isVoid ? [] : [result];
    };
    // A change that copies a lower file's data up (chmod with metacopy=off, say) copies on the pool first.
    const before = asyncIoOf(sync).copyUpBefore(name, args);
    if (before === undefined) deliver(cb, call);
    else deliverAsync(cb, () => before.then(call), (results) => results);
  };
  Object.defineProperty(wrapper, 'name', { value: name });
  return wrapper;
}

/** util.promisify(read) resolves to `{ bytesRead, buffer }` as Node's does, not to the count alone. */
function withCustomPromisify(fn: Loose, keys: [string, string]): void {
  const custom = (...args: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      fn(...args, (err: Error | null, a: unknown, b: unknown) => (err ? reject(err) : resolve({ [keys[0]]: a, [keys[1]]: b })));
    });
  Object.defineProperty(fn, promisify.custom, { value: custom });
}

export function makeCallbackApi(sync: SyncFs): CallbackApi {
  // Data moves on libuv's thread pool (async-io.ts); the other calls run now and answer later.
  const io = asyncIoOf(sync);
  const api: Record<string, Loose> = {};
  for (const name of CALLBACK_NAMES) {
    const method = SYNC_OF[name];
    if (method !== undefined) api[name] = plain(sync, name, method);
  }

  // close(fd) may omit its callback.
  api.close = function close(fd: unknown, cb?: unknown): void {
    const callback = cb === undefined ? () => {} : makeCallback(cb);
    deliver(callback, () => (sync.closeSync(fd), []));
  };

  // cp's filter may be async: the copy runs as a promise, its arguments checked at once.
  api.cp = function cp(src: unknown, dest: unknown, options?: unknown, cb?: unknown): void {
    if (typeof options === 'function') [options, cb] = [undefined, options];
    const callback = makeCallback(cb);
    sync.cpAsync(src, dest, options).then(() => later(callback, null), (err: Error) => later(callback, err));
  };

  // read(fd, buffer, offset, length, position, cb), read(fd, buffer, options, cb),
  // read(fd, options, cb) and read(fd, cb): Node's shapes and checks, in Node's order.
  api.read = function read(fd: unknown, buffer?: unknown, offsetOrOptions?: unknown, length?: unknown, position?: unknown, callback?: unknown): void {
    const n = getValidatedFd(fd);
    let offset = offsetOrOptions;
    let params: unknown = null;
    if (arguments.length <= 4) {
      if (arguments.length === 4) {
        validateObject(offsetOrOptions, 'options', kValidateObjectAllowNullable);
        callback = length;
        params = offsetOrOptions;
      } else if (arguments.length === 3) {
        if (!ArrayBuffer.isView(buffer)) {
          params = buffer;
          const given = (params as { buffer?: unknown } | null)?.buffer;
          buffer = given === undefined ? Buffer.alloc(16384) : given;
        }
        callback = offsetOrOptions;
      } else {
        callback = buffer;
        buffer = Buffer.alloc(16384);
      }
      if (params !== undefined) validateObject(params, 'options', kValidateObjectAllowNullable);
      // Destructuring defaults, as Node's: only undefined takes the default.
      const o = (params ?? {}) as { offset?: unknown; length?: unknown; position?: unknown };
      offset = o.offset === undefined ? 0 : o.offset;
      length = o.length === undefined ? ((buffer as NodeJS.ArrayBufferView | null | undefined)?.byteLength ?? NaN) - (offset as number) : o.length;
      position = o.position === undefined ? null : o.position;
    }
    validateBuffer(buffer);
    validateFunction(callback, 'cb');
    const cb = callback as Callback;
    if (offset == null) offset = 0;
    else validateInteger(offset, 'offset', 0);
    const len = (length as number) | 0;
    const buf = buffer;
    if (len === 0) {
      process.nextTick(() => Reflect.apply(cb, undefined, [null, 0, buf]));
      return;
    }
    if (buf.byteLength === 0) throw ERR_INVALID_ARG_VALUE('buffer', buf, 'is empty and cannot be written');
    validateOffsetLengthRead(offset as number, len, buf.byteLength);
    if (position == null) position = -1;
    else validatePosition(position, 'position');
    const pos = position as number | bigint;
    deliverAsync(cb, () => io.read(n, buf, offset as number, len, pos), (bytes) => [bytes, buf], [0, buf]);
  };
  withCustomPromisify(api.read, ['bytesRead', 'buffer']);

  api.write = function write(fd: unknown, buffer?: unknown, offsetOrOptions?: unknown, length?: unknown, position?: unknown, callback?: unknown): void {
    const n = getValidatedFd(fd);
    let offset = offsetOrOptions;
    if (ArrayBuffer.isView(buffer)) {
      callback ||= position || length || offset;
      validateFunction(callback, 'cb');
      if (typeof offset === 'object') {
        const o = (offsetOrOptions ?? {}) as { offset?: unknown; length?: unknown; position?: unknown };
        offset = o.offset ?? 0;
        length = o.length ?? buffer.byteLength - (offset as number);
        position = o.position ?? null;
      }
      if (offset == null || typeof offset === 'function') offset = 0;
      else validateInteger(offset, 'offset', 0);
      if (typeof length !== 'number') length = buffer.byteLength - (offset as number);
      if (typeof position !== 'number') position = null;
      validateOffsetLengthWrite(offset as number, length as number, buffer.byteLength);
      const buf = buffer as NodeJS.ArrayBufferView;
      const at = position as number | null;
      deliverAsync(callback as Callback, () => io.write(n, buf, offset as number, length as number, at), (bytes) => [bytes, buf], [0, buf]);
      return;
    }
    validateStringAfterArrayBufferView(buffer, 'buffer');
    if (typeof position !== 'function') {
      if (typeof offset === 'function') {
        position = offset;
        offset = null;
      } else {
        position = length;
      }
      length = 'utf8';
    }
    const str = buffer;
    validateEncoding(str, length);
    validateFunction(position, 'cb');
    const encoding = (typeof length === 'string' && Buffer.isEncoding(length) ? length : 'utf8') as BufferEncoding;
    const data = Buffer.from(str, encoding);
    const at = typeof offset === 'number' ? offset : null;
    deliverAsync(position as Callback, () => io.write(n, data, 0, data.length, at), (bytes) => [bytes, str], [0, str]);
  };
  withCustomPromisify(api.write, ['bytesWritten', 'buffer']);

  api.readv = function readv(fd: unknown, buffers: unknown, position?: unknown, callback?: unknown): void {
    const n = getValidatedFd(fd);
    const list = validateBufferArray(buffers);
    callback ||= position;
    validateFunction(callback, 'cb');
    deliverAsync(callback as Callback, () => io.readv(n, list, typeof position === 'number' ? position : null), (bytes) => [bytes, list], [0, list]);
  };
  withCustomPromisify(api.readv, ['bytesRead', 'buffers']);

  api.writev = function writev(fd: unknown, buffers: unknown, position?: unknown, callback?: unknown): void {
    const n = getValidatedFd(fd);
    const list = validateBufferArray(buffers);
    callback ||= position;
    validateFunction(callback, 'cb');
    if (list.length === 0) {
      process.nextTick(() => Reflect.apply(callback as Callback, undefined, [null, 0, list]));
      return;
    }
    deliverAsync(callback as Callback, () => io.writev(n, list, typeof position === 'number' ? position : null), (bytes) => [bytes, list], [0, list]);
  };
  withCustomPromisify(api.writev, ['bytesWritten', 'buffers']);

  // opendir names its callback "callback", and truncate/ftruncate check len before it, as Node's do.
  api.opendir = function opendir(path: unknown, options?: unknown, callback?: unknown): void {
    if (typeof options === 'function') {
      callback = options;
      options = undefined;
    }
    validateFunction(callback, 'callback');
    deliver(callback as Callback, () => [OverlayDir.open(sync, path as fs.PathLike, options as OpenDirOptions | undefined)]);
  };

  api.ftruncate = function ftruncate(fd: unknown, len: unknown = 0, callback?: unknown): void {
    if (typeof len === 'function') {
      callback = len;
      len = 0;
    }
    validateInteger(len, 'len');
    const cb = makeCallback(callback);
    deliver(cb, () => (sync.ftruncateSync(fd, len), []));
  };

  api.copyFile = function copyFile(...all: unknown[]): void {
    const [args, cb] = takeCallback(all, 'copyFile');
    deliverAsync(cb, () => io.copyFile(args[0], args[1], args[2]), () => []);
  };

  // open copies up off the thread; fsync and fdatasync wait on the pool.
  api.open = function open(...all: unknown[]): void {
    const [args, cb] = takeCallback(all, 'open');
    deliverAsync(cb, () => io.open(args[0], args[1], args[2]), (fd) => [fd]);
  };
  for (const name of ['fsync', 'fdatasync'] as const) {
    const form = function (fd: unknown, cb: unknown): void {
      const callback = makeCallback(cb);
      deliverAsync(callback, () => io.fsync(getValidatedFd(fd), name === 'fdatasync'), () => []);
    };
    Object.defineProperty(form, 'name', { value: name });
    api[name] = form;
  }

  // readFile moves its data in chunks on the pool, and looks at an AbortSignal before each, so an
  // abort right after the call is honoured, as in Node. (writeFile, appendFile, truncate, exists,
  // rm and a recursive rmdir call other fs functions through the module object: module-calls.ts.)
  api.readFile = function readFile(...all: unknown[]): void {
    const [args, cb] = takeCallback(all, 'readFile');
    deliverAsync(cb, () => io.readFile(args[0], args[1]), (data) => [data]);
  };

  // fs.realpath.native is the same call here: the overlay resolves its own paths either way.
  Object.defineProperty(api.realpath, 'native', { value: plain(sync, 'realpath', 'realpathNativeSync'), enumerable: true });

  // The one place Node's exact types are given to the generic wrappers (see the header comment).
  return api as unknown as CallbackApi;
}
