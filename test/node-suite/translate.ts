// A node:fs-shaped object that sends every call on a path under `hostRoot` to an overlay's fs, with
// the path rewritten to its overlay name (hostRoot/a/b -> /a/b), and every path that comes back
// (errors, realpath, mkdtemp, Dirent.parentPath, ...) rewritten to its host name again. Node's own
// tests then run unchanged against the overlay: their fixtures and tmpdir live under hostRoot.
//
// Calls on paths outside hostRoot (process.execPath, /dev/null, os.tmpdir()) and on the process's
// own descriptors below FIRST_VIRTUAL_FD (stdin, stdout, fds opened on outside paths) go to the
// real fs: the overlay cannot hold them. Arguments that are not paths at all go to the overlay, so
// its own argument validation is what the tests see.
import * as realFs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { OverlayFs } from '../../src/index.js';
import { setModuleObject } from '../../src/fs/index.js';

/** The overlay facade numbers its descriptors from here; lower numbers are the process's own. */
const FIRST_VIRTUAL_FD = 1000;

type Fn = (...args: unknown[]) => unknown;
type AnyObj = Record<string | symbol, unknown>;

/** Which arguments of each function are paths ('p'), paths or fds ('F'), symlink targets ('t') or fds ('f'). */
const SHAPES: Record<string, string> = {
  access: 'p', exists: 'p', stat: 'p', lstat: 'p', statfs: 'p', open: 'p', openAsBlob: 'p', readFile: 'F', writeFile: 'F',
  appendFile: 'F', truncate: 'F', readdir: 'p', opendir: 'p', mkdir: 'p', mkdtemp: 'x', rmdir: 'p', rm: 'p',
  unlink: 'p', readlink: 'p', realpath: 'p', chmod: 'p', lchmod: 'p', chown: 'p', lchown: 'p', utimes: 'p',
  lutimes: 'p', createReadStream: 'p', createWriteStream: 'p', watch: 'p', watchFile: 'p', unwatchFile: 'p',
  rename: 'pp', link: 'pp', copyFile: 'pp', cp: 'pp', symlink: 'tp',
  close: 'f', fstat: 'f', read: 'f', write: 'f', readv: 'f', writev: 'f', fsync: 'f', fdatasync: 'f',
  ftruncate: 'f', fchmod: 'f', fchown: 'f', futimes: 'f',
};

/** Functions whose (first) result is a path to map back. */
const PATH_RESULTS = new Set(['realpath', 'mkdtemp', 'mkdir', 'readlink']);

export interface Translator {
  fs: AnyObj;
  toHost(p: string): string;
}

export function makeTranslatingFs(ovl: OverlayFs, hostRoot: string): Translator {
  const rootBuf = Buffer.from(hostRoot);

  /** The overlay name of a host path, or undefined when it lies outside hostRoot. */
  function inside(abs: string): string | undefined {
    if (abs === hostRoot) return '/';
    if (abs.startsWith(hostRoot + '/')) return abs.slice(hostRoot.length);
    return undefined;
  }

  function toHost(p: string): string {
    return p === '/' ? hostRoot : p.startsWith('/') ? hostRoot + p : p;
  }

  /** [overlay form of p, or undefined if outside; whether p was a path at all]. */
  function mapPath(p: unknown, prefixOnly = false): { value: unknown; outside: boolean } {
    if (typeof p === 'string') {
      if (p.includes('\0')) return { value: p, outside: false };
      let abs = path.resolve(p);
      // path.resolve drops a trailing slash, which mkdtemp prefixes and ENOTDIR checks need.
      if ((p.endsWith('/') || (prefixOnly && p.endsWith('/'))) && abs !== '/') abs += '/';
      const o = inside(abs.endsWith('/') && abs !== '/' ? abs.slice(0, -1) : abs);
      if (o === undefined) return { value: p, outside: true };
      return { value: abs.endsWith('/') && o !== '/' ? o + '/' : o, outside: false };
    }
    if (Buffer.isBuffer(p) || p instanceof Uint8Array) {
      const b = Buffer.from(p);
      if (b.includes(0)) return { value: p, outside: false };
      // Bytes, not text: a non-UTF-8 name must reach the overlay byte for byte.
      const absBuf = b[0] === 0x2f ? b : Buffer.concat([Buffer.from(process.cwd() + '/'), b]);
      if (absBuf.equals(rootBuf)) return { value: Buffer.from('/'), outside: false };
      if (absBuf.length > rootBuf.length && absBuf.subarray(0, rootBuf.length).equals(rootBuf) && absBuf[rootBuf.length] === 0x2f) {
        return { value: absBuf.subarray(rootBuf.length), outside: false };
      }
      return { value: p, outside: true };
    }
    if (p instanceof URL) {
      if (p.protocol !== 'file:') return { value: p, outside: false };
      let s: string;
      try {
        s = fileURLToPath(p);
      } catch {
        return { value: p, outside: false };
      }
      const o = inside(path.resolve(s));
      if (o === undefined) return { value: p, outside: true };
      return { value: pathToFileURL(o), outside: false };
    }
    return { value: p, outside: false };
  }

  /**
   * The host form of an overlay path the overlay passes back in (see moduleView below): the
   * inverse of mapPath for what lies inside. Anything else is passed as it is.
   */
  function hostForm(p: unknown): unknown {
    if (typeof p === 'string' && p.startsWith('/')) return toHost(p);
    if (Buffer.isBuffer(p) && p[0] === 0x2f) return p.length === 1 ? Buffer.from(rootBuf) : Buffer.concat([rootBuf, p]);
    if (p instanceof URL && p.protocol === 'file:') return pathToFileURL(toHost(fileURLToPath(p)));
    return p;
  }

  /** Errors already rewritten: one that passed through the wrapper twice (moduleView) keeps its host paths. */
  const fixedErrors = new WeakSet<object>();

  /** Rewrites overlay paths in an error to host paths. */
  function fixError(err: unknown): unknown {
    if (err === null || typeof err !== 'object') return err;
    if (fixedErrors.has(err)) return err;
    fixedErrors.add(err);
    const e = err as { path?: unknown; dest?: unknown; filename?: unknown; message?: string };
    const names: Array<[string, string]> = [];
    for (const key of ['path', 'dest', 'filename'] as const) {
      const v = e[key];
      if (typeof v === 'string' && v.startsWith('/')) {
        const host = toHost(v);
        names.push([v, host]);
        try {
          e[key] = host;
        } catch { /* read-only */ }
      }
    }
    if (typeof e.message === 'string' && names.length > 0) {
      let m = e.message;
      for (const [o, h] of names) m = m.split(`'${o}'`).join(`'${h}'`);
      try {
        Object.defineProperty(err, 'message', { value: m, writable: true, configurable: true, enumerable: false });
        const stack = (err as { stack?: string }).stack;
        if (typeof stack === 'string') {
          let s = stack;
          for (const [o, h] of names) s = s.split(`'${o}'`).join(`'${h}'`);
          Object.defineProperty(err, 'stack', { value: s, writable: true, configurable: true, enumerable: false });
        }
      } catch { /* frozen */ }
    }
    return err;
  }

  /** The encoding a call asked its path result in (its second argument), when not UTF-8. */
  function resultEncoding(args: unknown[]): BufferEncoding | undefined {
    const o = args[1];
    const e = typeof o === 'string' ? o : typeof o === 'object' && o !== null ? (o as { encoding?: unknown }).encoding : undefined;
    return typeof e === 'string' && Buffer.isEncoding(e) && !['utf8', 'utf-8'].includes(e.toLowerCase()) ? e : undefined;
  }

  function fixResult(name: string, r: unknown, encoding?: BufferEncoding): unknown {
    if (PATH_RESULTS.has(name.replace(/Sync$/, ''))) {
      if (name === 'readlink' && typeof r === 'string' && !r.startsWith('/')) return r;
      // A path in another encoding: its bytes are the overlay path's, prefixed with the root's.
      if (typeof r === 'string' && encoding !== undefined) {
        const bytes = Buffer.from(r, encoding);
        return bytes[0] === 0x2f ? Buffer.concat([rootBuf, bytes]).toString(encoding) : r;
      }
      if (typeof r === 'string') return toHost(r);
      if (Buffer.isBuffer(r) && r[0] === 0x2f) return Buffer.concat([rootBuf, r]);
      return r;
    }
    if (Array.isArray(r)) for (const d of r) fixDirent(d);
    else fixDirent(r);
    return r;
  }

  function fixDirent(d: unknown): void {
    if (d === null || typeof d !== 'object') return;
    const o = d as AnyObj;
    for (const key of ['parentPath', 'path'] as const) {
      const desc = Object.getOwnPropertyDescriptor(o, key);
      if (desc !== undefined && typeof desc.value === 'string' && desc.value.startsWith('/')) {
        try {
          o[key] = toHost(desc.value);
        } catch { /* read-only */ }
      }
    }
    if (o.constructor === ovl.Dir || (typeof o.readSync === 'function' && typeof o.closeSync === 'function' && 'path' in o)) wrapDir(o);
  }

  function wrapDir(dir: AnyObj): void {
    for (const m of ['read', 'readSync']) {
      const orig = dir[m] as Fn;
      if (typeof orig !== 'function') continue;
      dir[m] = function (this: unknown, ...args: unknown[]) {
        const last = args[args.length - 1];
        if (typeof last === 'function') {
          args[args.length - 1] = function (this: unknown, err: unknown, d: unknown) {
            fixDirent(d);
            return (last as Fn).call(this, err, d);
          };
        }
        const r = orig.apply(this, args);
        if (r instanceof Promise) return r.then((d) => (fixDirent(d), d));
        fixDirent(r);
        return r;
      };
    }
    const iter = dir[Symbol.asyncIterator] as Fn | undefined;
    if (typeof iter === 'function') {
      dir[Symbol.asyncIterator] = async function* (this: unknown) {
        for await (const d of iter.call(this) as AsyncIterable<unknown>) {
          fixDirent(d);
          yield d;
        }
      };
    }
  }

  /** Decides where a call goes and rewrites its path arguments. */
  function route(name: string, args: unknown[], sync: boolean): { target: 'real' | 'ovl'; args: unknown[] } {
    const shape = SHAPES[name.replace(/Sync$/, '')] ?? '';
    const out = [...args];
    let outside = false;
    let insideSeen = false;
    for (let i = 0; i < shape.length; i++) {
      const kind = shape[i];
      const a = args[i];
      if (kind === 'f' || (kind === 'F' && typeof a === 'number')) {
        if (typeof a === 'number' && Number.isInteger(a) && a >= 0 && a < FIRST_VIRTUAL_FD) outside = true;
        continue;
      }
      if (kind === 't') {
        // A symlink target is text stored in the link: absolute host targets under the root become
        // overlay-absolute, relative ones stay as they are.
        if ((typeof a === 'string' && a.startsWith('/')) || (Buffer.isBuffer(a) && a[0] === 0x2f)) {
          const m = mapPath(a);
          if (!m.outside) out[i] = m.value;
        } else if (a instanceof URL) {
          const m = mapPath(a);
          if (!m.outside) out[i] = m.value;
        }
        continue;
      }
      const m = mapPath(a, name.startsWith('mkdtemp'));
      if (m.outside) outside = true;
      else if (m.value !== a) insideSeen = true;
      out[i] = m.value;
    }
    if (name.startsWith('mkdtemp')) {
      const a = args[0];
      if (typeof a === 'string' || Buffer.isBuffer(a) || a instanceof URL) {
        const m = mapPath(a, true);
        if (m.outside) outside = true;
        else out[0] = m.value;
      }
    }
    void sync;
    if (outside && !insideSeen) return { target: 'real', args };
    // cp's filter sees the paths cp walks; the test wrote it for host paths.
    const options = out[2] as { filter?: unknown } | undefined;
    if (name.startsWith('cp') && typeof options === 'object' && options !== null && typeof options.filter === 'function') {
      const filter = options.filter as Fn;
      out[2] = { ...options, filter: (src: string, dest: string) => filter(toHost(src), toHost(dest)) };
    }
    return { target: 'ovl', args: out };
  }

  function wrapFn(name: string, ovlFn: Fn, realFn: Fn | undefined, kind: 'sync' | 'callback' | 'promise'): Fn {
    const wrapped = function (this: unknown, ...args: unknown[]): unknown {
      const r = route(name, args, kind === 'sync');
      if (r.target === 'real' && realFn !== undefined) return realFn.apply(realFs, args);
      const a = r.args;
      if (kind === 'callback' && !name.includes('atch')) {
        const last = a.length - 1;
        if (typeof a[last] === 'function') {
          const cb = a[last] as Fn;
          a[last] = function (this: unknown, err: unknown, ...rest: unknown[]) {
            if (name === 'exists') return cb.call(this, err, ...rest);
            if (rest.length > 0) rest[0] = fixResult(name, rest[0], resultEncoding(args));
            return cb.call(this, fixError(err), ...rest);
          };
        }
      }
      let result: unknown;
      try {
        result = ovlFn.apply(this === undefined || this === api ? ovlTarget(kind) : this, a);
      } catch (err) {
        throw fixError(err);
      }
      if (result instanceof Promise) {
        return result.then((v) => fixResult(name, v, resultEncoding(args)), (err) => {
          throw fixError(err);
        });
      }
      if (kind === 'sync') return fixResult(name, result, resultEncoding(args));
      return result;
    };
    Object.defineProperty(wrapped, 'name', { value: name });
    for (const key of Reflect.ownKeys(ovlFn)) {
      if (key === 'length' || key === 'name' || key === 'prototype' || (key === promisify.custom && name === 'exists')) continue;
      const d = Reflect.getOwnPropertyDescriptor(ovlFn, key);
      if (d !== undefined && key !== 'native') Reflect.defineProperty(wrapped, key, d);
    }
    return wrapped;
  }

  const api: AnyObj = {};
  const promisesApi: AnyObj = {};
  const ovlTarget = (kind: string): unknown => (kind === 'promise' ? ovl.promises : ovl);

  const ovlAny = ovl as unknown as AnyObj;
  const realAny = realFs as unknown as AnyObj;
  for (const key of Reflect.ownKeys(realFs)) {
    if (typeof key !== 'string' || key === 'promises') continue;
    const ov = ovlAny[key];
    if (ov === undefined) {
      // Not offered by the overlay: absent, so a test that needs it fails visibly.
      continue;
    }
    if (typeof ov === 'function' && /^[a-z]/.test(key) && key !== 'Dirent') {
      const base = key.replace(/Sync$/, '');
      const kind = key.endsWith('Sync') ? 'sync' : 'callback';
      if (SHAPES[base] !== undefined || PATH_RESULTS.has(base) || key in SHAPES) {
        api[key] = wrapFn(key, ov as Fn, realAny[key] as Fn | undefined, kind);
        const native = (ov as unknown as AnyObj).native;
        if (typeof native === 'function') {
          (api[key] as AnyObj).native = wrapFn(key, native as Fn, (realAny[key] as unknown as AnyObj | undefined)?.native as Fn | undefined, kind);
        }
        continue;
      }
    }
    api[key] = ov;
  }
  // util.promisify(fs.exists) must go through the translating exists too.
  Object.defineProperty(api.exists as object, promisify.custom, {
    value: (p: unknown) => new Promise((resolve) => (api.exists as Fn)(p, resolve)),
  });

  // Things the overlay offers that this Node's fs does not list as own keys.
  for (const key of Object.keys(ovlAny)) if (!(key in api) && key !== 'promises') api[key] = ovlAny[key];

  // Streams keep the caller's (host) path in stream.path, as Node's do, and reach the overlay through
  // the documented `fs` option: this translating object, so that a test that replaces fs.open or
  // fs.close sees its streams call the replacement, as with Node's own fs.
  const wrapStream = (name: string): void => {
    const Ovl = ovlAny[name] as Fn & { prototype: object };
    const Real = realAny[name] as Fn;
    const ctor = function (this: unknown, path: unknown, options?: unknown): unknown {
      if (!(this instanceof ctor)) return new (ctor as unknown as new (p: unknown, o?: unknown) => unknown)(path, options);
      const o = typeof options === 'string' ? { encoding: options } : (options ?? {}) as AnyObj;
      if (typeof o !== 'object') return Ovl.call(this, path, options);
      const m = mapPath(path);
      if (m.outside && o.fd === undefined) return Real.call(this, path, options);
      if ((o.fd !== undefined && typeof o.fd === 'object') || o.fs !== undefined) return Ovl.call(this, path, o);
      const copy: AnyObj = {};
      for (const key in o) copy[key] = o[key];
      copy.fs = api;
      return Ovl.call(this, path, copy);
    } as unknown as Fn & { prototype: object };
    ctor.prototype = Ovl.prototype;
    Object.setPrototypeOf(ctor, Object.getPrototypeOf(Ovl));
    Object.defineProperty(ctor, 'name', { value: name });
    api[name] = ctor;
    const create = `create${name}`;
    api[create] = function (path: unknown, options?: unknown) {
      return new (ctor as unknown as new (p: unknown, o?: unknown) => unknown)(path, options);
    };
  };
  wrapStream('ReadStream');
  wrapStream('WriteStream');

  const ovlPromises = ovl.promises as unknown as AnyObj;
  const realPromises = realFs.promises as unknown as AnyObj;
  for (const key of new Set([...Reflect.ownKeys(realPromises), ...Reflect.ownKeys(ovlPromises)])) {
    if (typeof key !== 'string') continue;
    const ov = ovlPromises[key];
    if (ov === undefined) continue;
    if (typeof ov === 'function' && SHAPES[key] !== undefined) {
      promisesApi[key] = wrapFn(key, ov as Fn, realPromises[key] as Fn | undefined, 'promise');
    } else {
      promisesApi[key] = ov;
    }
  }
  api.promises = promisesApi;

  // Node's fs functions call some others through the fs module (writeFileSync calls fs.fsyncSync,
  // rimraf calls fs.rmdirSync), and so do the overlay's, through the object set here: this wrapper,
  // looked up at each call, so a test that replaces fs.fsyncSync on the module it holds sees those
  // calls. They come with overlay paths, which go back to host paths on the way in.
  const moduleView = new Proxy(api, {
    get(target, key) {
      const value = target[key];
      if (typeof key !== 'string' || typeof value !== 'function') return value;
      const shape = SHAPES[key.replace(/Sync$/, '')] ?? '';
      return function (this: unknown, ...args: unknown[]) {
        for (let i = 0; i < shape.length; i++) if (shape[i] === 'p' || shape[i] === 'F') args[i] = hostForm(args[i]);
        return (value as Fn).apply(target, args);
      };
    },
  });
  setModuleObject(ovl, moduleView);
  return { fs: api, toHost };
}
