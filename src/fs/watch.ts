// fs.watch, fs.watchFile and fs.promises.watch over the merged view.
//
// Two sources feed a watcher, as inotify on a kernel overlay mount would:
// - changes made through this facade: SyncFs reports each one (the merged path and Node's event
//   name) to the hub, which hands it to the watchers of that path and of its directory;
// - changes made to a layer directly: each watched merged directory has a host fs.watch (inotify)
//   on its copy in every DirLayer, and an event there is reported under the merged name unless a
//   higher layer hides that name (an entry, a whiteout, or an opaque directory above it). The upper
//   layer also sees the facade's own changes; those are dropped as echoes.
//
// `recursive` on Linux is Node 20's own JavaScript watcher (lib/internal/fs/recursive_watch.js)
// ported onto this facade: one non-recursive watcher per directory and file, filenames relative to
// the root, and an initial 'rename' for each entry found by the first scan.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as posix from 'node:path/posix';
import { fsError } from '../errors.js';
import type { Layer } from '../layer/types.js';
import type { Overlay } from '../overlay/index.js';
import { encodeName } from './args.js';
import { zeroBigIntStats } from './stats.js';
import {
  AbortError, ERR_INVALID_ARG_VALUE, getOptions, getValidatedPath, validateAbortSignal, validateBoolean, validateFunction,
  validateObject,
} from './validate.js';

export type WatchEvent = 'rename' | 'change';

/** What the hub needs from SyncFs: overlay paths in, stats out. */
export interface WatchFs {
  readonly overlay: Overlay;
  pathOf(path: unknown, name?: string): string;
  statSync(path: unknown, options?: { bigint?: boolean; throwIfNoEntry?: boolean }): fs.Stats | fs.BigIntStats | undefined;
  readdirSync(path: unknown, options?: unknown): unknown[];
}

interface Subscriber {
  /** The watched merged path (no trailing slash). */
  path: string;
  isDir: boolean;
  deliver(event: WatchEvent, name: string): void;
}

/** How long an event on the upper layer counts as the echo of the facade's own change. */
const ECHO_MS = 250;

/** Every watcher of one facade, and the host watchers on the layers behind them. */
export class WatchHub {
  private readonly subscribers = new Set<Subscriber>();
  /** Host watchers per merged directory: one per layer that has the directory. */
  private readonly hosts = new Map<string, { users: number; watchers: Map<number, fs.FSWatcher> }>();
  private readonly recent = new Map<string, number>();
  private readonly closables = new Set<{ close(): void }>();

  constructor(private readonly sfs: WatchFs) {}

  get active(): boolean {
    return this.subscribers.size > 0;
  }

  /** Called by SyncFs after each change it makes: `path` is the merged path of the entry. */
  notify(path: string, event: WatchEvent): void {
    if (this.subscribers.size === 0) return;
    this.recent.set(path, Date.now());
    const dir = posix.dirname(path);
    const name = posix.basename(path);
    // A new upper copy of a watched directory (copy-up) gets its host watcher now.
    if (this.hosts.has(dir)) this.refreshHosts(dir);
    for (const s of [...this.subscribers]) {
      if (s.isDir && s.path === dir) s.deliver(event, name);
      else if (s.path === path) s.deliver(event, name);
    }
  }

  subscribe(s: Subscriber): void {
    this.subscribers.add(s);
    const dir = s.isDir ? s.path : posix.dirname(s.path);
    const h = this.hosts.get(dir) ?? { users: 0, watchers: new Map() };
    h.users++;
    this.hosts.set(dir, h);
    this.refreshHosts(dir);
  }

  unsubscribe(s: Subscriber): void {
    if (!this.subscribers.delete(s)) return;
    const dir = s.isDir ? s.path : posix.dirname(s.path);
    const h = this.hosts.get(dir);
    if (h === undefined) return;
    if (--h.users === 0) {
      for (const w of h.watchers.values()) w.close();
      this.hosts.delete(dir);
    }
  }

  /** Registers something (a watcher, a stat poller) to close with the overlay. */
  track(c: { close(): void }): void {
    this.closables.add(c);
  }

  untrack(c: { close(): void }): void {
    this.closables.delete(c);
  }

  /** The overlay is closing: every watcher closes. */
  closeAll(): void {
    for (const c of [...this.closables]) c.close();
    for (const h of this.hosts.values()) for (const w of h.watchers.values()) w.close();
    this.hosts.clear();
    this.subscribers.clear();
  }

  /** Layers top-most first (upper, then lowers), as the core stacks them. */
  private layers(): readonly Layer[] {
    return this.sfs.overlay.layers;
  }

  private refreshHosts(dir: string): void {
    const h = this.hosts.get(dir);
    if (h === undefined) return;
    const rel = dir === '/' ? '' : dir.slice(1);
    this.layers().forEach((layer, index) => {
      if (h.watchers.has(index) || layer.root === undefined) return;
      const host = rel === '' ? layer.root : posix.join(layer.root, rel);
      try {
        if (!fs.lstatSync(host).isDirectory()) return;
        const w = fs.watch(host, { persistent: false }, (event, name) => {
          if (typeof name === 'string') this.fromLayer(dir, rel, index, event as WatchEvent, name);
        });
        w.on('error', () => {
          w.close();
          h.watchers.delete(index);
        });
        h.watchers.set(index, w);
      } catch {
        // The layer has no such directory (yet).
      }
    });
  }

  /** An event from a layer's host directory, reported under the merged name unless hidden. */
  private fromLayer(dir: string, rel: string, index: number, event: WatchEvent, name: string): void {
    const merged = dir === '/' ? `/${name}` : `${dir}/${name}`;
    if (index === 0 && !this.sfs.overlay.readOnly) {
      const at = this.recent.get(merged);
      if (at !== undefined && Date.now() - at < ECHO_MS) return;
    }
    const layers = this.layers();
    const entryRel = rel === '' ? name : `${rel}/${name}`;
    for (let j = 0; j < index; j++) {
      try {
        if (layers[j].lookup(entryRel) !== undefined) return;
        const d = layers[j].lookup(rel);
        if (d !== undefined && (d.opaque || d.whiteout || (d.stat.mode & 0o170000) !== 0o040000)) return;
      } catch {
        // Unreadable above: treat as not hiding.
      }
    }
    for (const s of [...this.subscribers]) {
      if (s.isDir && s.path === dir) s.deliver(event, name);
      else if (s.path === merged) s.deliver(event, name);
    }
  }
}


function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** Keeps the event loop alive while a persistent watcher is referenced, as a libuv handle does. */
class LoopRef {
  private timer: NodeJS.Timeout | undefined;
  constructor(persistent: boolean) {
    if (persistent) this.timer = setInterval(() => {}, 2 ** 30);
  }
  ref(): void {
    this.timer?.ref();
  }
  unref(): void {
    this.timer?.unref();
  }
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** fs.FSWatcher for one merged path (inotify semantics: a directory's entries, or one file). */
export class OverlayFSWatcher extends EventEmitter {
  private sub: Subscriber | undefined;
  private loop: LoopRef | undefined;
  private closed = false;

  constructor(private readonly hub: WatchHub) {
    super();
  }

  /** Starts watching `p` (an overlay path); a missing path throws ENOENT with syscall 'watch'. */
  start(sfs: WatchFs, p: string, shown: string, persistent: boolean, encoding: string | undefined): void {
    let st: fs.Stats;
    try {
      st = sfs.statSync(p) as fs.Stats;
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ENOENT';
      const e = fsError(code, 'watch', shown) as Error & { filename?: string };
      e.filename = shown;
      throw e;
    }
    const path = trimSlash(p);
    const self = this;
    this.sub = {
      path,
      isDir: st.isDirectory(),
      deliver(event: WatchEvent, name: string) {
        const filename = encodeName(name, encoding);
        // inotify events reach JavaScript on a later turn of the loop.
        setImmediate(() => {
          if (!self.closed) self.emit('change', event, filename);
        });
      },
    };
    this.loop = new LoopRef(persistent);
    this.hub.subscribe(this.sub);
    this.hub.track(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sub !== undefined) this.hub.unsubscribe(this.sub);
    this.hub.untrack(this);
    this.loop?.close();
    process.nextTick(() => this.emit('close'));
  }

  ref(): this {
    this.loop?.ref();
    return this;
  }

  unref(): this {
    this.loop?.unref();
    return this;
  }
}

/** Node 20's recursive watcher for Linux, on this facade. */
export class RecursiveWatcher extends EventEmitter {
  private closed = false;
  private readonly files = new Map<string, fs.Stats>();
  private readonly watchers = new Map<string, OverlayFSWatcher>();
  private readonly symbolic = new Set<string>();
  private root = '/';
  private watchingFile = false;
  private readonly options: { persistent?: boolean; encoding?: string; signal?: AbortSignal };

  constructor(private readonly hub: WatchHub, private readonly sfs: WatchFs, options: { persistent?: unknown; recursive?: unknown; signal?: unknown; encoding?: unknown } = {}) {
    super();
    const { persistent, recursive, signal, encoding } = options;
    if (recursive != null) validateBoolean(recursive, 'options.recursive');
    if (persistent != null) validateBoolean(persistent, 'options.persistent');
    if (signal != null) validateAbortSignal(signal, 'options.signal');
    if (encoding != null && typeof encoding !== 'string') throw ERR_INVALID_ARG_VALUE(encoding as string, 'options.encoding');
    this.options = { persistent: persistent as boolean | undefined, encoding: encoding as string | undefined, signal: signal as AbortSignal | undefined };
  }

  private rel(file: string): string {
    return posix.relative(this.root, file);
  }

  private out(name: string): string | Buffer {
    return encodeName(name, this.options.encoding);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const file of this.files.keys()) {
      this.watchers.get(file)?.close();
      this.watchers.delete(file);
    }
    this.files.clear();
    this.symbolic.clear();
    this.hub.untrack(this);
    this.emit('close');
  }

  private unwatchFiles(file: string): void {
    this.symbolic.delete(file);
    for (const name of [...this.files.keys()]) {
      if (name.startsWith(file)) {
        this.files.delete(name);
        this.watchers.get(name)?.close();
        this.watchers.delete(name);
      }
    }
  }

  private watchFolder(folder: string): void {
    try {
      const entries = this.sfs.readdirSync(folder, { withFileTypes: true }) as fs.Dirent[];
      for (const entry of entries) {
        if (this.closed) break;
        const f = posix.join(folder, entry.name);
        if (!this.files.has(f)) {
          this.emit('change', 'rename', this.out(this.rel(f)));
          if (entry.isSymbolicLink()) this.symbolic.add(f);
          try {
            this.watchFile(f);
            if (entry.isDirectory() && !entry.isSymbolicLink()) this.watchFolder(f);
          } catch (err) {
            if ((err as { code?: string }).code !== 'ENOENT') throw err;
          }
        }
      }
    } catch (error) {
      this.emit('error', error);
    }
  }

  private watchFile(file: string): void {
    if (this.closed || this.files.has(file)) return;
    this.files.set(file, this.sfs.statSync(file) as fs.Stats);
    const watcher = new OverlayFSWatcher(this.hub);
    watcher.start(this.sfs, file, file, this.options.persistent !== false, undefined);
    watcher.on('change', () => {
      const existing = this.files.get(file);
      let current: fs.Stats | undefined;
      try {
        current = this.sfs.statSync(file) as fs.Stats;
        this.files.set(file, current);
      } catch {
        // Gone: reported below.
      }
      if (current === undefined || (current.birthtimeMs === 0 && existing !== undefined && existing.birthtimeMs !== 0)) {
        this.files.delete(file);
        this.watchers.delete(file);
        watcher.close();
        this.emit('change', 'rename', this.out(this.rel(file)));
        this.unwatchFiles(file);
      } else if (file === this.root && this.watchingFile) {
        this.emit('change', 'change', this.out(posix.basename(file)));
      } else if (this.symbolic.has(file)) {
        this.emit('change', 'rename', this.out(this.rel(file)));
      } else if (current.isDirectory()) {
        this.watchFolder(file);
      } else {
        this.emit('change', 'change', this.out(this.rel(file)));
      }
    });
    this.watchers.set(file, watcher);
  }

  start(path: string): void {
    const filename = trimSlash(path);
    try {
      const st = this.sfs.statSync(filename) as fs.Stats;
      this.root = filename;
      this.closed = false;
      this.watchingFile = st.isFile();
      this.hub.track(this);
      this.watchFile(filename);
      if (st.isDirectory()) this.watchFolder(filename);
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') {
        (error as { filename?: string }).filename = filename;
        throw error;
      }
    }
  }

  ref(): this {
    for (const w of this.watchers.values()) w.ref();
    return this;
  }

  unref(): this {
    for (const w of this.watchers.values()) w.unref();
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterator<{ eventType: string; filename: string | Buffer }> {
    const { signal } = this.options;
    const executor = (resolve: (v: IteratorResult<{ eventType: string; filename: string | Buffer }>) => void, reject: (e: unknown) => void): void => {
      const onAbort = (): void => {
        this.close();
        reject(new AbortError(undefined, { cause: signal?.reason }));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.once('change', (eventType: string, filename: string | Buffer) => {
        signal?.removeEventListener('abort', onAbort);
        resolve({ done: false, value: { eventType, filename } });
      });
    };
    return {
      next: () => (this.closed ? Promise.resolve({ done: true, value: undefined }) : new Promise(executor)),
      return: () => {
        this.close();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}

/** fs.watch(filename[, options][, listener]). */
export function watch(hub: WatchHub, sfs: WatchFs, filename: unknown, options?: unknown, listener?: unknown): OverlayFSWatcher | RecursiveWatcher {
  if (typeof options === 'function') listener = options;
  const o = { ...getOptions(options) } as { persistent?: boolean; recursive?: boolean; encoding?: string; signal?: AbortSignal };
  if (o.persistent === undefined) o.persistent = true;
  if (o.recursive === undefined) o.recursive = false;
  const valid = getValidatedPath(filename);
  const p = sfs.pathOf(valid);
  let watcher: OverlayFSWatcher | RecursiveWatcher;
  if (o.recursive) {
    const r = new RecursiveWatcher(hub, sfs, o);
    r.start(p);
    watcher = r;
  } else {
    const w = new OverlayFSWatcher(hub);
    w.start(sfs, p, typeof valid === 'string' ? valid : valid.toString(), o.persistent, o.encoding ?? undefined);
    watcher = w;
  }
  if (listener) watcher.addListener('change', listener as (...args: unknown[]) => void);
  const signal = o.signal;
  if (signal) {
    if (signal.aborted) {
      process.nextTick(() => watcher.close());
    } else {
      const onAbort = (): void => watcher.close();
      signal.addEventListener('abort', onAbort);
      watcher.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }
  return watcher;
}

/** fs.promises.watch(filename[, options]): an async iterator of { eventType, filename }. */
export async function* watchPromise(hub: WatchHub, sfs: WatchFs, filename: unknown, options: unknown = {}): AsyncGenerator<{ eventType: string; filename: string | Buffer }> {
  validateObject(options, 'options');
  const o = options as { persistent?: unknown; recursive?: unknown; encoding?: unknown; signal?: AbortSignal };
  if (o.recursive != null) {
    validateBoolean(o.recursive, 'options.recursive');
    if (o.recursive) {
      const r = new RecursiveWatcher(hub, sfs, o);
      r.start(sfs.pathOf(filename));
      yield* { [Symbol.asyncIterator]: () => r[Symbol.asyncIterator]() };
      return;
    }
  }
  const valid = getValidatedPath(filename);
  const { persistent = true, recursive = false, encoding = 'utf8', signal } = o;
  validateBoolean(persistent, 'options.persistent');
  validateBoolean(recursive, 'options.recursive');
  validateAbortSignal(signal, 'options.signal');
  if (encoding && !Buffer.isEncoding(encoding as string) && encoding !== 'buffer') {
    throw ERR_INVALID_ARG_VALUE('encoding', encoding, 'is invalid encoding');
  }
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal?.reason });
  const w = new OverlayFSWatcher(hub);
  const queue: Array<{ eventType: string; filename: string | Buffer }> = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  const onAbort = (): void => {
    failure = new AbortError(undefined, { cause: signal?.reason });
    wake?.();
  };
  try {
    signal?.addEventListener('abort', onAbort, { once: true });
    w.start(sfs, sfs.pathOf(valid), typeof valid === 'string' ? valid : valid.toString(), persistent as boolean, encoding as string);
    w.on('change', (eventType: string, name: string | Buffer) => {
      queue.push({ eventType, filename: name });
      wake?.();
    });
    for (;;) {
      while (queue.length === 0 && failure === undefined) await new Promise<void>((resolve) => (wake = resolve));
      if (queue.length > 0) {
        yield queue.shift()!;
        continue;
      }
      throw failure;
    }
  } finally {
    w.close();
    signal?.removeEventListener('abort', onAbort);
  }
}

const ZERO_STATS = (): fs.Stats => new (fs.Stats as unknown as new (...a: number[]) => fs.Stats)(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

/** fs.StatWatcher: polls the merged path's stat, as libuv's fs_poll does. */
export class OverlayStatWatcher extends EventEmitter {
  private timer: NodeJS.Timeout | undefined;
  private prev: fs.Stats | fs.BigIntStats | undefined;
  private refs = 1;
  private missing = false;

  constructor(private readonly hub: WatchHub, private readonly sfs: WatchFs, private readonly bigint: boolean) {
    super();
  }

  private statNow(path: string): fs.Stats | fs.BigIntStats | undefined {
    try {
      return this.sfs.statSync(path, { bigint: this.bigint });
    } catch {
      return undefined;
    }
  }

  private zero(): fs.Stats | fs.BigIntStats {
    return this.bigint ? zeroBigIntStats() : ZERO_STATS();
  }

  start(path: string, persistent: boolean, interval: number): void {
    this.prev = this.statNow(path);
    this.missing = this.prev === undefined;
    const first = this.missing;
    this.timer = setInterval(() => {
      const cur = this.statNow(path);
      if (cur === undefined) {
        if (!this.missing) {
          this.missing = true;
          const prev = this.prev!;
          this.prev = undefined;
          this.emit('change', this.zero(), prev);
        }
        return;
      }
      const prev = this.prev ?? this.zero();
      if (this.prev === undefined || changed(cur, this.prev)) {
        this.missing = false;
        this.prev = cur;
        this.emit('change', cur, prev);
      }
    }, Math.max(1, interval));
    if (!persistent) this.timer.unref();
    // libuv's first poll of a missing file reports once, with zeroed stats on both sides.
    if (first) setImmediate(() => this.emit('change', this.zero(), this.zero()));
    this.hub.track(this);
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.hub.untrack(this);
    process.nextTick(() => this.emit('stop'));
  }

  close(): void {
    this.stop();
  }

  addRef(): void {
    this.refs++;
  }

  /** Drops one watchFile reference; true when none is left. */
  release(): boolean {
    return --this.refs <= 0;
  }

  ref(): this {
    this.timer?.ref();
    return this;
  }

  unref(): this {
    this.timer?.unref();
    return this;
  }
}

function changed(a: fs.Stats | fs.BigIntStats, b: fs.Stats | fs.BigIntStats): boolean {
  for (const k of ['dev', 'ino', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'size', 'blocks', 'mtimeMs', 'ctimeMs', 'birthtimeMs'] as const) {
    if (a[k] !== b[k]) return true;
  }
  return false;
}

/** fs.watchFile / fs.unwatchFile, one poller per merged path as Node keeps one per resolved path. */
export class StatWatchers {
  private readonly byPath = new Map<string, OverlayStatWatcher>();

  constructor(private readonly hub: WatchHub, private readonly sfs: WatchFs) {}

  watchFile(filename: unknown, options?: unknown, listener?: unknown): OverlayStatWatcher {
    const p = trimSlash(this.sfs.pathOf(filename));
    if (options === null || typeof options !== 'object') {
      listener = options;
      options = null;
    }
    const o = { interval: 5007, persistent: true, ...(options as object | null) } as { interval: number; persistent: boolean; bigint?: boolean };
    validateFunction(listener, 'listener');
    let stat = this.byPath.get(p);
    if (stat === undefined) {
      stat = new OverlayStatWatcher(this.hub, this.sfs, o.bigint === true);
      stat.start(p, o.persistent, o.interval);
      this.byPath.set(p, stat);
    } else {
      stat.addRef();
    }
    stat.addListener('change', listener as (...args: unknown[]) => void);
    return stat;
  }

  unwatchFile(filename: unknown, listener?: unknown): void {
    const p = trimSlash(this.sfs.pathOf(filename));
    const stat = this.byPath.get(p);
    if (stat === undefined) return;
    if (typeof listener === 'function') {
      const before = stat.listenerCount('change');
      stat.removeListener('change', listener as (...args: unknown[]) => void);
      if (stat.listenerCount('change') < before) stat.release();
    } else {
      stat.removeAllListeners('change');
    }
    if (stat.listenerCount('change') === 0) {
      stat.stop();
      this.byPath.delete(p);
    }
  }
}
