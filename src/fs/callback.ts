// The callback forms of node:fs over SyncFs: each runs the synchronous core call now and delivers
// its result on a later turn (see defer.ts). Optional arguments before the callback are handled as
// Node does: the callback is the last argument, and everything before it goes to the sync form,
// which accepts the same optional arguments.
//
// Typing: node:fs's callback functions are overloaded and each is merged with a namespace holding
// `__promisify__`, a type-only member Node itself does not have at runtime. `satisfies typeof
// fs.stat` can therefore never hold for a plain function, and `Omit<…, '__promisify__'>` (ZenFS's
// way) drops the call signatures and checks nothing. So the wrappers are generic over the sync
// method and the assembled object is given Node's exact types once, in `makeCallbackApi`.
import type * as fs from 'node:fs';
import { promisify } from 'node:util';
import { deliver, invalidCallback, type Callback } from './defer.js';
import { OverlayDir, type OpenDirOptions } from './dir.js';
import { readArgs, writeArgs } from './io-args.js';
import type { SyncFs } from './sync.js';

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
  unlink: 'unlinkSync', rename: 'renameSync', copyFile: 'copyFileSync', cp: 'cpSync', symlink: 'symlinkSync',
  readlink: 'readlinkSync', realpath: 'realpathSync', link: 'linkSync', chmod: 'chmodSync', fchmod: 'fchmodSync',
  chown: 'chownSync', lchown: 'lchownSync', fchown: 'fchownSync', utimes: 'utimesSync', lutimes: 'lutimesSync',
  futimes: 'futimesSync',
};

/** Splits off the trailing callback, which Node requires (it throws synchronously without one). */
function takeCallback(args: unknown[]): [unknown[], Callback] {
  const cb = args[args.length - 1];
  if (typeof cb !== 'function') throw invalidCallback(cb);
  return [args.slice(0, -1), cb as Callback];
}

function plain(sync: SyncFs, name: CallbackName, method: keyof SyncFs): Loose {
  const fn = (sync[method] as Loose).bind(sync);
  const isVoid = VOID_FORMS.has(name);
  const wrapper = (...all: unknown[]): void => {
    const [args, cb] = takeCallback(all);
    deliver(cb, () => {
      const result = fn(...args);
      return isVoid ? [] : [result];
    });
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
  const api: Record<string, Loose> = {};
  for (const name of CALLBACK_NAMES) {
    const method = SYNC_OF[name];
    if (method !== undefined) api[name] = plain(sync, name, method);
  }

  // close(fd) may omit its callback.
  const closeCb = api.close;
  api.close = function close(...all: unknown[]): void {
    if (all.length < 2 || all[1] === undefined) all = [all[0], () => {}];
    closeCb(...all);
  };

  api.exists = function exists(path: unknown, cb: unknown): void {
    if (typeof cb !== 'function') throw invalidCallback(cb);
    let found = false;
    try {
      found = sync.existsSync(path as fs.PathLike);
    } catch {
      found = false;
    }
    setImmediate(cb as (exists: boolean) => void, found);
  };
  Object.defineProperty(api.exists, promisify.custom, {
    value: (path: unknown): Promise<boolean> => new Promise((resolve) => api.exists(path, resolve)),
  });

  api.read = function read(...all: unknown[]): void {
    const [args, cb] = takeCallback(all);
    const fd = args[0] as number;
    const r = readArgs(args[1], args[2], args[3], args[4]);
    deliver(cb, () => [sync.readSync(fd, r.buffer, r.offset, r.length, r.position), r.buffer], [0, r.buffer]);
  };
  withCustomPromisify(api.read, ['bytesRead', 'buffer']);

  api.write = function write(...all: unknown[]): void {
    const [args, cb] = takeCallback(all);
    const fd = args[0] as number;
    const w = writeArgs(args[1], args[2], args[3], args[4]);
    deliver(cb, () => [sync.writeSync(fd, w.data, w.a, w.b, w.c), w.data], [0, w.data]);
  };
  withCustomPromisify(api.write, ['bytesWritten', 'buffer']);

  api.readv = function readv(...all: unknown[]): void {
    const [args, cb] = takeCallback(all);
    const buffers = args[1] as NodeJS.ArrayBufferView[];
    deliver(cb, () => [sync.readvSync(args[0] as number, buffers, positionOf(args[2])), buffers], [0, buffers]);
  };
  withCustomPromisify(api.readv, ['bytesRead', 'buffers']);

  api.writev = function writev(...all: unknown[]): void {
    const [args, cb] = takeCallback(all);
    const buffers = args[1] as NodeJS.ArrayBufferView[];
    deliver(cb, () => [sync.writevSync(args[0] as number, buffers, positionOf(args[2])), buffers], [0, buffers]);
  };
  withCustomPromisify(api.writev, ['bytesWritten', 'buffers']);

  api.opendir = function opendir(...all: unknown[]): void {
    const [args, cb] = takeCallback(all);
    deliver(cb, () => [OverlayDir.open(sync, args[0] as fs.PathLike, args[1] as OpenDirOptions | undefined)]);
  };

  // fs.realpath.native is the same call here: the overlay resolves its own paths either way.
  Object.defineProperty(api.realpath, 'native', { value: plain(sync, 'realpath', 'realpathSync'), enumerable: true });

  // The one place Node's exact types are given to the generic wrappers (see the header comment).
  return api as unknown as CallbackApi;
}

function positionOf(p: unknown): number | null {
  return typeof p === 'number' ? p : null;
}
