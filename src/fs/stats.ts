// Stats objects that are Node's own: `instanceof fs.Stats` holds and every method works.
import * as fs from 'node:fs';
import type { OvlStat } from '../overlay/index.js';

const S_IFMT = 0o170000;

export function makeStats(s: OvlStat): fs.Stats {
  if (s instanceof fs.Stats) return s;
  const stats = Object.create(fs.Stats.prototype) as fs.Stats;
  Object.assign(stats, {
    dev: s.dev, mode: s.mode, nlink: s.nlink, uid: s.uid, gid: s.gid, rdev: s.rdev, blksize: s.blksize,
    ino: s.ino, size: s.size, blocks: s.blocks,
    atimeMs: s.atimeMs, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, birthtimeMs: s.birthtimeMs,
    atime: new Date(s.atimeMs), mtime: new Date(s.mtimeMs), ctime: new Date(s.ctimeMs), birthtime: new Date(s.birthtimeMs),
  });
  return stats;
}

function toNs(ms: number): bigint {
  return BigInt(Math.floor(ms)) * 1000000n + BigInt(Math.round((ms % 1) * 1e6));
}

/** Node does not export its BigIntStats class; this one has the same fields and methods. */
export class BigIntStats implements fs.BigIntStats {
  dev: bigint; ino: bigint; mode: bigint; nlink: bigint; uid: bigint; gid: bigint; rdev: bigint;
  size: bigint; blksize: bigint; blocks: bigint;
  atimeMs: bigint; mtimeMs: bigint; ctimeMs: bigint; birthtimeMs: bigint;
  atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint; birthtimeNs: bigint;
  atime: Date; mtime: Date; ctime: Date; birthtime: Date;

  constructor(s: OvlStat) {
    this.dev = BigInt(s.dev); this.ino = BigInt(s.ino); this.mode = BigInt(s.mode); this.nlink = BigInt(s.nlink);
    this.uid = BigInt(s.uid); this.gid = BigInt(s.gid); this.rdev = BigInt(s.rdev); this.size = BigInt(s.size);
    this.blksize = BigInt(s.blksize); this.blocks = BigInt(s.blocks);
    this.atimeNs = toNs(s.atimeMs); this.mtimeNs = toNs(s.mtimeMs); this.ctimeNs = toNs(s.ctimeMs); this.birthtimeNs = toNs(s.birthtimeMs);
    this.atimeMs = this.atimeNs / 1000000n; this.mtimeMs = this.mtimeNs / 1000000n;
    this.ctimeMs = this.ctimeNs / 1000000n; this.birthtimeMs = this.birthtimeNs / 1000000n;
    this.atime = new Date(s.atimeMs); this.mtime = new Date(s.mtimeMs); this.ctime = new Date(s.ctimeMs); this.birthtime = new Date(s.birthtimeMs);
  }

  private type(): number { return Number(this.mode) & S_IFMT; }
  isFile(): boolean { return this.type() === 0o100000; }
  isDirectory(): boolean { return this.type() === 0o040000; }
  isSymbolicLink(): boolean { return this.type() === 0o120000; }
  isBlockDevice(): boolean { return this.type() === 0o060000; }
  isCharacterDevice(): boolean { return this.type() === 0o020000; }
  isFIFO(): boolean { return this.type() === 0o010000; }
  isSocket(): boolean { return this.type() === 0o140000; }
}

export function makeStatFs(s: { type: number; bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number }, bigint: boolean): fs.StatsFs | fs.BigIntStatsFs {
  if (!bigint) return { ...s } as fs.StatsFs;
  return {
    type: BigInt(s.type), bsize: BigInt(s.bsize), blocks: BigInt(s.blocks), bfree: BigInt(s.bfree),
    bavail: BigInt(s.bavail), files: BigInt(s.files), ffree: BigInt(s.ffree),
  } as fs.BigIntStatsFs;
}
