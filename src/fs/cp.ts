// fs.cpSync over the facade, with the checks and errors of Node's own cp: the same ERR_FS_CP_* codes
// for copying a directory into itself (also through a symlinked parent of dest), over a non-directory,
// or a symlink over one that points back into src.
import type * as fs from 'node:fs';
import * as os from 'node:os';
import * as posix from 'node:path/posix';
import { types } from 'node:util';
import { nodeError, type CpOptions } from './validate.js';

/** The calls cp makes, on overlay paths. */
export interface CpFs {
  statSync(path: string, options?: { throwIfNoEntry?: boolean }): fs.Stats | undefined;
  lstatSync(path: string, options?: { throwIfNoEntry?: boolean }): fs.Stats | undefined;
  existsSync(path: string): boolean;
  mkdirSync(path: string, options?: { recursive?: boolean }): unknown;
  readdirSync(path: string): unknown;
  readlinkSync(path: string): unknown;
  symlinkSync(target: string, path: string): void;
  unlinkSync(path: string): void;
  chmodSync(path: string, mode: number): void;
  utimesSync(path: string, atime: Date, mtime: Date): void;
  copyFileSync(src: string, dest: string, mode?: number): void;
}

/** Node's ERR_FS_CP_* and ERR_FS_EISDIR: SystemErrors whose message names what cp refused. */
function cpError(code: string, errno: string, detail: string, path: string): Error {
  const prefixes: Record<string, string> = {
    ERR_FS_CP_EEXIST: 'Target already exists',
    ERR_FS_CP_DIR_TO_NON_DIR: 'Cannot overwrite directory with non-directory',
    ERR_FS_CP_NON_DIR_TO_DIR: 'Cannot overwrite non-directory with directory',
    ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY: 'Cannot overwrite symlink in subdirectory of self',
    ERR_FS_CP_SOCKET: 'Cannot copy a socket file',
    ERR_FS_CP_FIFO_PIPE: 'Cannot copy a FIFO pipe',
    ERR_FS_CP_UNKNOWN: 'Cannot copy an unknown file type',
    ERR_FS_EISDIR: 'Path is a directory',
  };
  const err = new Error(`${prefixes[code] ?? 'Invalid src or dest'}: cp returned ${errno} (${detail}) ${path}`) as NodeJS.ErrnoException;
  err.name = 'SystemError';
  err.code = code;
  err.errno = (os.constants.errno as Record<string, number>)[errno];
  err.syscall = 'cp';
  err.path = path;
  return err;
}

/** `inner` is `outer` or below it. */
function isWithin(outer: string, inner: string): boolean {
  const a = outer.split('/').filter(Boolean);
  const b = inner.split('/').filter(Boolean);
  return a.every((part, i) => b[i] === part);
}

const same = (a: fs.Stats, b: fs.Stats): boolean => a.ino === b.ino && a.dev === b.dev;

/**
 * The copy as steps: it yields [src, dest] wherever the filter decides, and takes its answer back, so
 * that one walk serves cpSync (a filter called in place) and cp (a filter that may be async).
 */
type Steps<T> = Generator<[string, string], T, unknown>;

/** fs.cpSync: a filter that returns a promise is refused, as Node refuses it. */
export function cp(fsys: CpFs, src: string, dest: string, o: CpOptions): void {
  const steps = copySteps(fsys, src, dest, o);
  for (let step = steps.next(); !step.done;) {
    const keep = o.filter!(...step.value);
    if (types.isPromise(keep)) {
      throw nodeError(TypeError, 'ERR_INVALID_RETURN_VALUE', 'Expected a boolean to be returned from the "filter" function but got instance of Promise.');
    }
    step = steps.next(keep);
  }
}

/** fs.cp and fs.promises.cp: the filter may return a promise. */
export async function cpAsync(fsys: CpFs, src: string, dest: string, o: CpOptions): Promise<void> {
  const steps = copySteps(fsys, src, dest, o);
  for (let step = steps.next(); !step.done;) step = steps.next(await o.filter!(...step.value));
}

function* copySteps(fsys: CpFs, src: string, dest: string, o: CpOptions): Steps<void> {
  const checked = yield* checkPaths(fsys, src, dest, o);
  if (checked === undefined) return;
  checkParentPaths(fsys, src, checked.srcStat, dest);
  const parent = posix.dirname(dest);
  if (!fsys.existsSync(parent)) fsys.mkdirSync(parent, { recursive: true });
  yield* copyEntry(fsys, checked.destStat, src, dest, o);
}

function statOf(fsys: CpFs, path: string, o: CpOptions, throwIfNoEntry: boolean): fs.Stats | undefined {
  return o.dereference ? fsys.statSync(path, { throwIfNoEntry }) : fsys.lstatSync(path, { throwIfNoEntry });
}

/** The filter, then the refusals that need only src and dest; undefined when the filter skips. */
function* checkPaths(fsys: CpFs, src: string, dest: string, o: CpOptions): Steps<{ srcStat: fs.Stats; destStat: fs.Stats | undefined } | undefined> {
  if (o.filter && !(yield [src, dest])) return undefined;
  const srcStat = statOf(fsys, src, o, true)!;
  const destStat = statOf(fsys, dest, o, false);
  if (destStat !== undefined) {
    if (same(srcStat, destStat)) throw cpError('ERR_FS_CP_EINVAL', 'EINVAL', 'src and dest cannot be the same', dest);
    if (srcStat.isDirectory() && !destStat.isDirectory()) throw cpError('ERR_FS_CP_DIR_TO_NON_DIR', 'EISDIR', `cannot overwrite directory ${src} with non-directory ${dest}`, dest);
    if (!srcStat.isDirectory() && destStat.isDirectory()) throw cpError('ERR_FS_CP_NON_DIR_TO_DIR', 'ENOTDIR', `cannot overwrite non-directory ${src} with directory ${dest}`, dest);
  }
  if (srcStat.isDirectory() && isWithin(src, dest)) throw cpError('ERR_FS_CP_EINVAL', 'EINVAL', `cannot copy ${src} to a subdirectory of self ${dest}`, dest);
  return { srcStat, destStat };
}

/** dest's parents, up to the first shared with src: none may be src itself (a symlinked parent). */
function checkParentPaths(fsys: CpFs, src: string, srcStat: fs.Stats, dest: string): void {
  const srcParent = posix.dirname(src);
  for (let parent = posix.dirname(dest); parent !== srcParent && parent !== '/'; parent = posix.dirname(parent)) {
    const st = fsys.statSync(parent, { throwIfNoEntry: false });
    if (st === undefined) return;
    if (same(srcStat, st)) throw cpError('ERR_FS_CP_EINVAL', 'EINVAL', `cannot copy ${src} to a subdirectory of self ${dest}`, dest);
  }
}

function* copyEntry(fsys: CpFs, destStat: fs.Stats | undefined, src: string, dest: string, o: CpOptions): Steps<void> {
  const st = statOf(fsys, src, o, true)!;
  if (st.isDirectory()) {
    if (!o.recursive) throw cpError('ERR_FS_EISDIR', 'EISDIR', `${src} is a directory (not copied)`, src);
    if (destStat === undefined) fsys.mkdirSync(dest);
    for (const name of fsys.readdirSync(src) as string[]) {
      const from = posix.join(src, name);
      const to = posix.join(dest, name);
      const checked = yield* checkPaths(fsys, from, to, o);
      if (checked !== undefined) yield* copyEntry(fsys, checked.destStat, from, to, o);
    }
    if (destStat === undefined) fsys.chmodSync(dest, st.mode & 0o7777);
  } else if (st.isFile() || st.isCharacterDevice() || st.isBlockDevice()) {
    if (destStat !== undefined) {
      if (o.force) fsys.unlinkSync(dest);
      else if (o.errorOnExist) throw cpError('ERR_FS_CP_EEXIST', 'EEXIST', `${dest} already exists`, dest);
      else return;
    }
    fsys.copyFileSync(src, dest, o.mode);
    if (o.preserveTimestamps) {
      // utimes needs a writable file; the mode below is the source's in the end anyway.
      if ((st.mode & 0o200) === 0) fsys.chmodSync(dest, (st.mode | 0o200) & 0o7777);
      const now = fsys.statSync(src)!;
      fsys.utimesSync(dest, now.atime, now.mtime);
    }
    fsys.chmodSync(dest, st.mode & 0o7777);
  } else if (st.isSymbolicLink()) {
    copyLink(fsys, destStat, src, dest, o);
  } else if (st.isSocket()) {
    throw cpError('ERR_FS_CP_SOCKET', 'EINVAL', `cannot copy a socket file: ${dest}`, dest);
  } else if (st.isFIFO()) {
    throw cpError('ERR_FS_CP_FIFO_PIPE', 'EINVAL', `cannot copy a FIFO pipe: ${dest}`, dest);
  } else {
    throw cpError('ERR_FS_CP_UNKNOWN', 'EINVAL', `cannot copy an unknown file type: ${dest}`, dest);
  }
}

/**
 * A symlink, pointed at its absolute target unless verbatimSymlinks. Over an existing symlink, what
 * would copy a directory into itself, or remove the source through dest, is refused.
 */
function copyLink(fsys: CpFs, destStat: fs.Stats | undefined, src: string, dest: string, o: CpOptions): void {
  let target = fsys.readlinkSync(src) as string;
  if (!o.verbatimSymlinks && !target.startsWith('/')) target = posix.resolve(posix.dirname(src), target);
  if (destStat === undefined) return fsys.symlinkSync(target, dest);
  let destTarget: string;
  try {
    destTarget = fsys.readlinkSync(dest) as string;
  } catch (e) {
    // dest is not a symlink: making ours over it fails with EEXIST, as in Node.
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') return fsys.symlinkSync(target, dest);
    throw e;
  }
  if (!destTarget.startsWith('/')) destTarget = posix.resolve(posix.dirname(dest), destTarget);
  if (fsys.statSync(src, { throwIfNoEntry: false })?.isDirectory() && isWithin(target, destTarget)) {
    throw cpError('ERR_FS_CP_EINVAL', 'EINVAL', `cannot copy ${target} to a subdirectory of self ${destTarget}`, dest);
  }
  if (fsys.statSync(dest)!.isDirectory() && isWithin(destTarget, target)) {
    throw cpError('ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY', 'EINVAL', `cannot overwrite ${destTarget} with ${target}`, dest);
  }
  fsys.unlinkSync(dest);
  fsys.symlinkSync(target, dest);
}
