// Copy-up (the kernel's copy_up.c): the first change to a lower entry copies it into the upper
// layer, parents first. Each copy is built in the work area and renamed into place, so the merged
// view never shows a half-copied file, not even after a crash.
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { errorCode, fsError } from '../errors.js';
import { copyFileData, nextData } from '../layer/copy.js';
import { S_IFDIR, S_IFLNK, S_IFREG, type CopyUpMetadata, type Layer, type RealFile, type RealStat, type WritableLayer } from '../layer/types.js';
import { carryFlags } from './attr-flags.js';
import type { OverlayContext } from './context.js';
import { markImpure } from './impure.js';
import type { OvlNode } from './node.js';
import { dataMoved } from './shared-read.js';

export interface CopyUpOptions {
  /** Copy metadata only and leave the data below (metacopy=on), for chmod, chown and the like. */
  metadataOnly?: boolean;
  /** The data is about to be truncated away (open with O_TRUNC): copy none of it, as the kernel does. */
  truncate?: boolean;
}

/** Makes sure `node` has an upper copy, with its data unless metadataOnly allows otherwise. */
export function copyUp(ctx: OverlayContext, node: OvlNode, syscall: string, options: CopyUpOptions = {}): void {
  const upper = ctx.writableUpper(syscall, node.path());
  // A copy-up in flight elsewhere (copyUpAsync): a synchronous caller cannot wait for it, so it
  // completes the copy itself, and the other one finds it done.
  if (node.copying !== undefined) completeInFlight(ctx, node, syscall);
  if (node.upper !== undefined) {
    if (node.upper.metacopy && !options.metadataOnly) {
      if (options.truncate) dropMetacopy(upper, node);
      else beginDataCopy(ctx, upper, node, syscall).runSync();
    }
    return;
  }
  if (node.unlinked) throw fsError('ENOENT', syscall, node.path());
  const parent = node.parent!;
  if (parent.upper === undefined) copyUp(ctx, parent, syscall);

  const source = node.lowers[0];
  const stat = source.layer.lstat(source.rel);
  const metadataOnly = options.metadataOnly === true && ctx.metacopy && node.type === S_IFREG && stat.size > 0;
  if (node.type === S_IFREG && !metadataOnly && !options.truncate) {
    beginFullCopy(ctx, upper, node, syscall, stat).runSync();
    return;
  }
  const temp = upper.tempPath();
  try {
    switch (node.type) {
      case S_IFDIR:
        upper.mkdir(temp, 0o700);
        break;
      case S_IFREG:
        upper.create(temp, fs.constants.O_WRONLY, 0o600).close();
        if (metadataOnly) {
          // The kernel keeps the size on a metacopy file so that stat needs no lower lookup.
          upper.truncate(temp, stat.sizeExact ?? stat.size);
          upper.setMetacopy(temp, true);
          if (node.lowers[node.lowers.length - 1].rel !== node.upperRel()) {
            upper.setRedirect(temp, '/' + node.lowers[node.lowers.length - 1].rel);
          }
        }
        break;
      case S_IFLNK:
        upper.symlink(source.layer.readlink(source.rel), temp);
        break;
      default:
        upper.mknod(temp, stat.mode, stat.rdev);
    }
    landCopy(ctx, upper, node, temp, stat);
  } catch (err) {
    upper.removeTemp(temp);
    throw err;
  }
  node.upper = upper.lookup(node.upperRel());
  if (node.upper === undefined) throw fsError('EIO', syscall, node.path());
  if (!node.upper.metacopy) dataMoved(node);
  if (!keepsIno(node, stat)) node.ino = ctx.inoOf(node.upper, []);
}

/**
 * Copying up one name of a lower hard link breaks the link (index=off); two files may not then
 * share a number, so the copy takes its own, as the kernel's does.
 */
function keepsIno(node: OvlNode, stat: RealStat): boolean {
  return node.type === S_IFDIR || stat.nlink === 1;
}

/** Gives a finished temp its metadata and renames it into place, keeping the parent's times. */
function landCopy(ctx: OverlayContext, upper: WritableLayer, node: OvlNode, temp: string, stat: RealStat): void {
  const source = node.lowers[0];
  carryFlags(source.layer, source.rel, false, upper, temp, node.type);
  upper.setMetadata(temp, metadataOf(source.layer, source.rel, stat, keepsIno(node, stat) ? node.ino : undefined));
  // The parent may now hold an entry whose st_ino is not its real one (ovl_do_copy_up).
  markImpure(ctx, node.parent!);
  // A copy-up is not a change the user made: keep the parent's times as they were, as the kernel does.
  const parentRel = node.parent!.upperRel();
  const parentStat = upper.lstat(parentRel);
  upper.rename(temp, node.upperRel(), { noReplace: true });
  upper.lutimes(parentRel, parentStat.atimeNs, parentStat.mtimeNs);
}

// --- copy-up of data in steps, so that the data can move off the core's thread ---------------------

/** A copy-up of one node's data in flight. */
export interface CopyUpInFlight {
  /** Settles when the copy landed (or failed): callers that need the node's data wait for it. */
  readonly done: Promise<void>;
  settle(err?: unknown): void;
  /** A synchronous caller landed the copy first; this one's data is dropped. */
  superseded: boolean;
}

/**
 * One node's data copy-up, split as the kernel's ovl_copy_up_start / copy data / ovl_copy_up_end:
 * the start (synchronous: parents copied up, a temp file made in the work area, the node marked as
 * being copied up) has happened; the data step copies `length` bytes from `sourceFd` to `tempFd`
 * at equal offsets and then fsyncs the temp (unless volatile), and may run on any thread; then
 * exactly one of `finish` (synchronous: metadata, rename into place, the node's data generation
 * bumped, waiters woken) or `abort` (the temp removed, waiters woken with the error).
 *
 * Until `finish`, readers go on reading the lower file, and the merged view shows nothing of the
 * copy. Meanwhile other asynchronous callers that need the node wait (`Overlay.startCopyUp` gives
 * them the promise); a synchronous caller completes the copy itself, and `finish` then only cleans
 * up. `finish` and `abort` must not run while the data step still writes to `tempFd`.
 */
export interface CopyUpJob {
  /** The data's host fd, open for reading; undefined where the layer has none (MemoryLayer): use copyDataSync. */
  readonly sourceFd: number | undefined;
  /** The temp file's host fd, open for writing; undefined where the layer has none. */
  readonly tempFd: number | undefined;
  /** The bytes to copy (the source's size at the start). */
  readonly length: number;
  /** Whether the data step must fsync the temp (false on a volatile overlay). */
  readonly sync: boolean;
  /** The data step on this thread: copy (a reflink where the filesystem can) and fsync. */
  copyDataSync(): void;
  /** The data step on libuv's thread pool: a reflink where the filesystem can, else chunks; the event loop stays free. */
  copyDataAsync(): Promise<void>;
  finish(): void;
  abort(err?: unknown): void;
  /** The whole job on this thread: the data step and finish, or abort (temp removed, node released) where the copy fails. */
  runSync(): void;
}

const { O_RDONLY, O_WRONLY } = fs.constants;
const readAsync = promisify(fs.read);
const writeAsync = promisify(fs.write);
const fsyncAsync = promisify(fs.fsync);
const ftruncateAsync = promisify(fs.ftruncate);

/** Chunks of the asynchronous data step: one read and one write on the pool each. */
const ASYNC_CHUNK = 1 << 20;

/**
 * The start of a data copy-up of `node`, or what there is instead: undefined when nothing is left
 * to copy (the data is up, or the node has no data and was copied up here synchronously), the
 * promise of a copy-up in flight (wait, then ask again).
 */
export function startCopyUp(ctx: OverlayContext, node: OvlNode, syscall: string): CopyUpJob | Promise<void> | undefined {
  const upper = ctx.writableUpper(syscall, node.path());
  if (node.copying !== undefined) return node.copying.done;
  if (node.upper !== undefined) return node.upper.metacopy ? beginDataCopy(ctx, upper, node, syscall) : undefined;
  if (node.type !== S_IFREG) {
    copyUp(ctx, node, syscall);
    return undefined;
  }
  if (node.unlinked) throw fsError('ENOENT', syscall, node.path());
  if (node.parent!.upper === undefined) copyUp(ctx, node.parent!, syscall);
  const source = node.lowers[0];
  return beginFullCopy(ctx, upper, node, syscall, source.layer.lstat(source.rel));
}


/** Lands the copy-up in flight on `node` here and now, with a copy of its own. */
function completeInFlight(ctx: OverlayContext, node: OvlNode, syscall: string): void {
  const flight = node.copying!;
  flight.superseded = true;
  node.copying = undefined;
  try {
    const job = startCopyUp(ctx, node, syscall);
    if (job !== undefined && !(job instanceof Promise)) job.runSync();
    flight.settle();
  } catch (err) {
    flight.settle(err);
    throw err;
  }
}

/** A regular lower file's copy-up: data into a temp, then metadata and the rename into place. */
function beginFullCopy(ctx: OverlayContext, upper: WritableLayer, node: OvlNode, syscall: string, stat: RealStat): CopyUpJob {
  return beginJob(ctx, upper, node, syscall, (temp) => {
    if (node.unlinked || node.upper !== undefined) return false;
    landCopy(ctx, upper, node, temp, stat);
    node.upper = upper.lookup(node.upperRel());
    if (node.upper === undefined) throw fsError('EIO', syscall, node.path());
    dataMoved(node);
    if (!keepsIno(node, stat)) node.ino = ctx.inoOf(node.upper, []);
    return true;
  });
}

/**
 * The data under a metacopy file. The data is built in a temp in the work area, takes the
 * metacopy file's metadata (mode, owner, times, xattrs, origin, redirect), and is renamed over it
 * in one step, so any failure (ENOSPC half way, say) leaves the metacopy file whole. Like the
 * kernel's in-place copy, the data copy-up gives the file a new mtime.
 */
function beginDataCopy(ctx: OverlayContext, upper: WritableLayer, node: OvlNode, syscall: string): CopyUpJob {
  // The kernel refuses a metacopy file whose data is nowhere below (ovl_lookup: EIO).
  if (node.lowers.length === 0) throw fsError('EIO', syscall, node.path(), undefined, 'metacopy file without its lower data');
  return beginJob(ctx, upper, node, syscall, (temp) => {
    if (node.unlinked || node.upper === undefined || !node.upper.metacopy) return false;
    const rel = node.upperRel();
    try {
      const before = upper.lstat(rel);
      const meta = metadataOf(upper, rel, before, node.upper.originIno);
      meta.mtimeNs = BigInt(Date.now()) * 1_000_000n;
      carryFlags(upper, rel, true, upper, temp, S_IFREG);
      upper.setMetadata(temp, meta);
      if (node.upper.redirect !== undefined) upper.setRedirect(temp, node.upper.redirect);
      upper.rename(temp, rel);
    } catch (err) {
      throw fsError(errorCode(err) ?? 'EIO', syscall, node.path());
    }
    node.upper = upper.lookup(rel);
    if (node.upper === undefined) throw fsError('EIO', syscall, node.path());
    dataMoved(node);
    return true;
  });
}

/**
 * Opens the data source and a temp, marks the node as being copied up, and returns the job.
 * `land` puts the finished temp in place; it answers false when the node no longer wants it
 * (unlinked meanwhile, or landed by a synchronous caller), and the temp is dropped.
 */
function beginJob(ctx: OverlayContext, upper: WritableLayer, node: OvlNode, syscall: string, land: (temp: string) => boolean): CopyUpJob {
  const data = node.lowers[node.lowers.length - 1];
  const input = data.layer.open(data.rel, O_RDONLY);
  const temp = upper.tempPath();
  let output: RealFile;
  let length: number;
  try {
    output = upper.create(temp, O_WRONLY, 0o600);
    length = input.stat().size;
  } catch (err) {
    input.close();
    upper.removeTemp(temp);
    throw err;
  }
  let settle!: (err?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err?: unknown) => (err === undefined ? resolve() : reject(err));
  });
  // Nobody may be waiting: a failure nobody awaits is still reported to the one who ran the job.
  done.catch(() => {});
  const flight: CopyUpInFlight = { done, settle, superseded: false };
  node.copying = flight;
  ctx.pin(node);
  let ended = false;
  const end = (err: unknown): void => {
    if (ended) return;
    ended = true;
    for (const file of [input, output]) {
      try {
        file.close();
      } catch {
        // Already closed with its layer: nothing to release.
      }
    }
    if (node.copying === flight) node.copying = undefined;
    ctx.unpin(node);
    if (!flight.superseded) flight.settle(err);
  };
  const sync = !ctx.volatile;
  return {
    sourceFd: input.fd,
    tempFd: output.fd,
    length,
    sync,
    copyDataSync(): void {
      copyFileData(input, output, { skipHoles: true });
      if (sync) output.sync();
    },
    copyDataAsync(): Promise<void> {
      if (input.fd === undefined || output.fd === undefined) {
        return new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.copyDataSync());
      }
      try {
        // A reflink shares the blocks in one quick call, where the filesystem can make one.
        copyFileData(input, output, { cloneOnly: true });
        return sync ? fsyncAsync(output.fd) : Promise.resolve();
      } catch {
        // Positions past 2^53 (data far into a sparse file) are beyond node:fs's: copied here.
        if (!Number.isSafeInteger(length)) return new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.copyDataSync());
        return copyFdsAsync(input.fd, output.fd, length, sync);
      }
    },
    finish(): void {
      if (ended) throw fsError('EINVAL', syscall, node.path(), undefined, 'copy-up already finished');
      let landed = false;
      try {
        if (!flight.superseded) landed = land(temp);
      } catch (err) {
        removeQuietly(upper, temp);
        end(err);
        throw err;
      }
      if (!landed) removeQuietly(upper, temp);
      end(undefined);
    },
    abort(err?: unknown): void {
      if (ended) return;
      removeQuietly(upper, temp);
      end(err ?? fsError('ECANCELED', syscall, node.path()));
    },
    runSync(): void {
      try {
        this.copyDataSync();
      } catch (err) {
        this.abort(err);
        throw err;
      }
      this.finish();
    },
  };
}

function removeQuietly(upper: WritableLayer, temp: string): void {
  try {
    upper.removeTemp(temp);
  } catch {
    // The work area is cleared at the next mount, as the kernel clears its work dir.
  }
}

/**
 * Copies a whole file of `length` bytes (below 2^53) between host fds with Node's async calls, holes
 * skipped as copyFileData skips them, then fsyncs the copy.
 */
async function copyFdsAsync(from: number, to: number, length: number, sync: boolean): Promise<void> {
  const buffer = Buffer.allocUnsafe(ASYNC_CHUNK);
  let dataPos = -1;
  let skipHoles = true;
  for (let pos = 0; ; ) {
    if (skipHoles && dataPos < pos) {
      const next = nextData(from, pos);
      if (next === null) {
        if (pos < length) await ftruncateAsync(to, length);
        break;
      }
      if (next === undefined) skipHoles = false;
      else if ((dataPos = Number(next)) > pos) pos = dataPos;
    }
    const { bytesRead } = await readAsync(from, buffer, 0, buffer.length, pos);
    if (bytesRead === 0) break;
    for (let done = 0; done < bytesRead; ) {
      done += (await writeAsync(to, buffer, done, bytesRead - done, pos + done)).bytesWritten;
    }
    pos += bytesRead;
  }
  if (sync) await fsyncAsync(to);
}

/** A metacopy file about to be truncated needs no data from below: it just stops being metacopy. */
function dropMetacopy(upper: WritableLayer, node: OvlNode): void {
  const rel = node.upperRel();
  upper.truncate(rel, 0);
  upper.setMetacopy(rel, false);
  node.upper = upper.lookup(rel);
  dataMoved(node);
}

export function metadataOf(layer: Layer, rel: string, stat: { mode: number; uid: number; gid: number; atimeNs: bigint; mtimeNs: bigint }, originIno: number | undefined): CopyUpMetadata {
  const xattrs: Array<[string, Buffer]> = [];
  for (const name of layer.listxattr(rel)) {
    const value = layer.getxattr(rel, name);
    if (value !== undefined) xattrs.push([name, value]);
  }
  return { mode: stat.mode, uid: stat.uid, gid: stat.gid, atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs, xattrs, originIno };
}
