// One node:fs-shaped object over an overlay: the sync methods (bound, so they can be passed
// around as Node's can), the callback forms, `promises`, the streams, and the classes and
// constants callers reach for on `fs`.
import * as fs from 'node:fs';
import type { Overlay } from '../overlay/index.js';
import { makeCallbackApi, type CallbackApi } from './callback.js';
import { Dirent } from './dirent.js';
import { OverlayDir, type OpenDirOptions } from './dir.js';
import { makeModuleCalls, type ModuleFs } from './module-calls.js';
import { makePromisesApi, type PromisesApi } from './promises.js';
import { makeStreams, type FacadeRef, type OverlayStreams } from './streams.js';
import { SyncFs } from './sync.js';
import { publicApi, toUnixTimestamp } from './validate.js';
import { OverlayFSWatcher, OverlayStatWatcher, StatWatchers, watch, watchPromise } from './watch.js';

export const SYNC_NAMES = [
  'existsSync', 'accessSync', 'statSync', 'lstatSync', 'fstatSync', 'statfsSync', 'openSync', 'closeSync', 'readSync',
  'writeSync', 'readvSync', 'writevSync', 'fsyncSync', 'fdatasyncSync', 'readFileSync', 'writeFileSync',
  'appendFileSync', 'truncateSync', 'ftruncateSync', 'readdirSync', 'mkdirSync', 'mkdtempSync', 'rmdirSync', 'rmSync',
  'unlinkSync', 'renameSync', 'copyFileSync', 'cpSync', 'symlinkSync', 'readlinkSync', 'realpathSync', 'linkSync',
  'chmodSync', 'fchmodSync', 'chownSync', 'lchownSync', 'fchownSync', 'utimesSync', 'lutimesSync', 'futimesSync',
] as const satisfies ReadonlyArray<keyof SyncFs & keyof typeof fs>;

export type SyncApi = Pick<typeof fs, (typeof SYNC_NAMES)[number] | 'opendirSync'>;

export type OverlayFs = SyncApi & CallbackApi & Pick<typeof fs,
  'createReadStream' | 'createWriteStream' | 'constants' | 'Stats' | 'watch' | 'watchFile' | 'unwatchFile'
> & {
  /** Subclasses of Node's fs.ReadStream/WriteStream bound to this overlay: `new ReadStream(path, options)`. */
  ReadStream: OverlayStreams['ReadStream'];
  WriteStream: OverlayStreams['WriteStream'];
  /** Node 20 still has these on fs itself; @types/node no longer declares them. */
  F_OK: number;
  R_OK: number;
  W_OK: number;
  X_OK: number;
  /** fallocate(2) on a descriptor open for writing: `mode` is FALLOC_FL_* bits (0: allocate, extending the size). */
  fallocateSync(fd: number, mode: number, offset: number, length: number): void;
  promises: PromisesApi;
  Dirent: typeof Dirent;
  Dir: typeof OverlayDir;
};

/** Each assembled fs's reference to its module object (setModuleObject). */
const moduleRefs = new WeakMap<object, FacadeRef>();

/**
 * Makes `module` the object that this fs's own functions call through where Node's call through
 * the fs module (writeFileSync calls fs.fsyncSync: module-calls.ts), and that its streams use as
 * their `fs`: for an object that stands in for this fs (a wrapper that rewrites paths, say), so
 * that functions replaced on it are seen as with node:fs. It must offer the same functions, taking
 * this fs's own paths. By default it is the fs object itself.
 */
export function setModuleObject(overlayFs: OverlayFs, module: object): void {
  const ref = moduleRefs.get(overlayFs);
  if (ref === undefined) throw new TypeError('not an fs made by createOverlayFs');
  ref.current = module;
}

export function createOverlayFs(overlay: Overlay): OverlayFs {
  const sync = new SyncFs(overlay);
  const facade: FacadeRef = {};
  const streams = makeStreams(sync, facade);
  const plainCallbacks = makeCallbackApi(sync) as unknown as Record<string, (...args: unknown[]) => unknown>;
  const throughModule = makeModuleCalls(sync, () => facade.current as ModuleFs, plainCallbacks.rmdir);

  // Every public function is wrapped so that the errors it throws have stacks that start at its
  // caller, as Node's do (validate.ts, publicApi).
  const bound: Record<string, unknown> = {};
  const own = throughModule.sync as Record<string, (...args: unknown[]) => unknown>;
  for (const name of SYNC_NAMES) bound[name] = publicApi(own[name] ?? (sync[name] as (...args: unknown[]) => unknown).bind(sync), name);
  Object.defineProperty(bound.realpathSync, 'native', {
    value: publicApi(sync.realpathNativeSync.bind(sync), 'realpathSync'),
    enumerable: true,
  });
  // fallocate(2) has no node:fs form; a drop-in fs lacks it only because Node does.
  bound.fallocateSync = publicApi(sync.fallocateSync.bind(sync), 'fallocateSync');
  bound.opendirSync = publicApi((path: fs.PathLike, options?: OpenDirOptions) => OverlayDir.open(sync, path, options), 'opendirSync');

  const callbacks: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries({ ...plainCallbacks, ...throughModule.callback })) {
    const wrapped = publicApi(fn as (...args: unknown[]) => unknown, name);
    for (const key of Reflect.ownKeys(fn)) {
      if (key === 'name' || key === 'length' || key === 'prototype') continue;
      Reflect.defineProperty(wrapped, key, Reflect.getOwnPropertyDescriptor(fn, key)!);
    }
    callbacks[name] = wrapped;
  }

  const statWatchers = new StatWatchers(sync.watchers, sync);
  const promises = makePromisesApi(sync, streams) as PromisesApi & Record<string, unknown>;
  promises.watch = ((filename: unknown, options?: unknown) => watchPromise(sync.watchers, sync, filename, options)) as unknown as PromisesApi['watch'];

  // Watchers close when the overlay closes.
  const closeOverlay = overlay.close.bind(overlay);
  overlay.close = () => {
    sync.watchers.closeAll();
    closeOverlay();
  };

  const api = {
    ...bound,
    ...callbacks,
    watch: publicApi((filename: unknown, options?: unknown, listener?: unknown) => watch(sync.watchers, sync, filename, options, listener), 'watch'),
    watchFile: publicApi((filename: unknown, options?: unknown, listener?: unknown) => statWatchers.watchFile(filename, options, listener), 'watchFile'),
    unwatchFile: publicApi((filename: unknown, listener?: unknown) => statWatchers.unwatchFile(filename, listener), 'unwatchFile'),
    FSWatcher: OverlayFSWatcher,
    StatWatcher: OverlayStatWatcher,
    // Node exposes its timestamp conversion on fs; its own tests call it.
    _toUnixTimestamp: toUnixTimestamp,
    promises,
    createReadStream: streams.createReadStream,
    createWriteStream: streams.createWriteStream,
    ReadStream: streams.ReadStream,
    WriteStream: streams.WriteStream,
    constants: fs.constants,
    // Stats objects are built on Node's own prototype (stats.ts), so `instanceof fs.Stats` holds.
    Stats: fs.Stats,
    Dirent,
    Dir: OverlayDir,
    F_OK: fs.constants.F_OK,
    R_OK: fs.constants.R_OK,
    W_OK: fs.constants.W_OK,
    X_OK: fs.constants.X_OK,
  };
  facade.current = api;
  moduleRefs.set(api, facade);
  // SyncFs's own signatures are looser unions than Node's overloads; callers get Node's types, which
  // describe what the methods do.
  return api as unknown as OverlayFs;
}
