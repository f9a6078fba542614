// Stats objects that are Node's own: `instanceof fs.Stats` holds and every method works.
import * as fs from 'node:fs';
import type { OvlStat } from '../overlay/index.js';

const S_IFMT = 0o170000;

const NodeStats = fs.Stats as unknown as new (...fields: number[]) => fs.Stats;

/** Node's own Stats, built with its constructor, so its fields, dates and deep equality are Node's. */
export function makeStats(s: OvlStat): fs.Stats {
  return new NodeStats(s.dev, s.mode, s.nlink, s.uid, s.gid, s.rdev, s.blksize, s.ino, s.size, s.blocks, s.atimeMs, s.mtimeMs, s.ctimeMs, s.birthtimeMs);
}

/**
 * Node's BigIntStats prototype: the class is not exported, so it is taken from one stat of the host
 * root. Objects built on it are Node's own (`deepStrictEqual` with Node's BigIntStats holds).
 */
const BIGINT_PROTO = Object.getPrototypeOf(fs.statSync('/', { bigint: true })) as object;

function dateOfNs(ns: bigint): Date {
  return new Date(Number(ns / 1000000n) + (ns % 1000000n < 0n ? -1 : 0));
}

/** Floor division, as Node's BigIntStats computes milliseconds from nanoseconds. */
function msOf(ns: bigint): bigint {
  const q = ns / 1000000n;
  return ns % 1000000n < 0n ? q - 1n : q;
}

/** BigIntStats with Node's fields in Node's order; times come from the layer's nanoseconds. */
export function makeBigIntStats(s: OvlStat): fs.BigIntStats {
  const out = Object.create(BIGINT_PROTO) as Record<string, unknown>;
  out.dev = BigInt(s.dev); out.mode = BigInt(s.mode); out.nlink = BigInt(s.nlink); out.uid = BigInt(s.uid);
  out.gid = BigInt(s.gid); out.rdev = BigInt(s.rdev); out.blksize = BigInt(s.blksize); out.ino = BigInt(s.ino);
  out.size = s.sizeExact ?? BigInt(s.size); out.blocks = BigInt(s.blocks);
  out.atimeMs = msOf(s.atimeNs); out.mtimeMs = msOf(s.mtimeNs); out.ctimeMs = msOf(s.ctimeNs); out.birthtimeMs = msOf(s.birthtimeNs);
  out.atimeNs = s.atimeNs; out.mtimeNs = s.mtimeNs; out.ctimeNs = s.ctimeNs; out.birthtimeNs = s.birthtimeNs;
  out.atime = dateOfNs(s.atimeNs); out.mtime = dateOfNs(s.mtimeNs); out.ctime = dateOfNs(s.ctimeNs); out.birthtime = dateOfNs(s.birthtimeNs);
  return out as unknown as fs.BigIntStats;
}

/** Zeroed BigIntStats, as watchFile reports a missing file. */
export function zeroBigIntStats(): fs.BigIntStats {
  return makeBigIntStats({ dev: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0, ino: 0, size: 0, blocks: 0,
    atimeMs: 0, mtimeMs: 0, ctimeMs: 0, birthtimeMs: 0, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n, birthtimeNs: 0n } as OvlStat);
}

export function makeStatFs(s: { type: number; bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number }, bigint: boolean): fs.StatsFs | fs.BigIntStatsFs {
  if (!bigint) return { ...s } as fs.StatsFs;
  return {
    type: BigInt(s.type), bsize: BigInt(s.bsize), blocks: BigInt(s.blocks), bfree: BigInt(s.bfree),
    bavail: BigInt(s.bavail), files: BigInt(s.files), ffree: BigInt(s.ffree),
  } as fs.BigIntStatsFs;
}
