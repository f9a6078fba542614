// The re-bind benchmark: the cost of the open-file choke point (realFile() in src/overlay/file.ts).
//  1. Read throughput of a handle re-bound after a copy-up against a handle opened fresh on the same
//     upper file, in the same run (goal: the re-bound one at least 0.95× the fresh one).
//  2. Overlay 4 KiB reads against raw fs.readSync on the same real file (goal: within 1.1×).
// Run alone: node --import tsx bench/rebind.ts [--quick]; writes bench/results/rebind.json (rebind-quick.json).
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { openOverlay } from '../src/index.js';
import { ROOT } from './lib/peers.js';
import { pairedRatios, prng, spread, timeMs, type Spread } from './lib/stats.js';
import { Cleanup, tempDir } from './lib/sys.js';

export interface RebindFigure {
  name: string;
  /** Median time per read, µs, of each side. */
  aUs: number;
  bUs: number;
  /** Paired ratio a/b over the repetitions (throughput ratio for the re-bind figures). */
  ratio: Spread;
  goal: string;
  met: boolean;
}

export interface RebindResult {
  fileMiB: number;
  reps: number;
  figures: RebindFigure[];
}

const KiB = 1024;
const MiB = 1024 * KiB;

export async function rebindBench(opts: { quick: boolean; log?: (m: string) => void }): Promise<RebindResult> {
  const cleanup = new Cleanup();
  try {
    const size = (opts.quick ? 64 : 256) * MiB;
    const reps = opts.quick ? 15 : 41;
    const d = tempDir(cleanup, 'rebind');
    for (const x of ['lower', 'upper', 'work']) fs.mkdirSync(join(d, x));
    const chunk = Buffer.alloc(MiB, 3);
    const wfd = fs.openSync(join(d, 'lower', 'f'), 'w');
    for (let off = 0; off < size; off += MiB) fs.writeSync(wfd, chunk, 0, MiB, off);
    fs.closeSync(wfd);

    const ov = openOverlay({ lowerdir: [join(d, 'lower')], upperdir: join(d, 'upper'), workdir: join(d, 'work') });
    const ofs = ov.fs;
    try {
      const rebound = ofs.openSync('/f', 'r');
      // Copy up through another handle; the first read on `rebound` re-binds it to the upper file.
      const w = ofs.openSync('/f', 'r+');
      ofs.writeSync(w, Buffer.from('!'), 0, 1, 0);
      ofs.closeSync(w);
      const probe = Buffer.alloc(1);
      ofs.readSync(rebound, probe, 0, 1, 0);
      if (probe.toString() !== '!') throw new Error('the re-bound handle reads stale data');
      const fresh = ofs.openSync('/f', 'r');
      const raw = fs.openSync(join(d, 'upper', 'f'), 'r');

      const buf = Buffer.alloc(MiB);
      type ReadFn = (fd: number, b: Buffer, o: number, l: number, p: number) => number;
      const ovRead = ofs.readSync as unknown as ReadFn;
      const rawRead = fs.readSync as unknown as ReadFn;
      const plan = (bs: number, random: boolean): number[] => {
        const n = bs === 4 * KiB ? 5000 : Math.min(size / bs, 64);
        const r = prng(bs + (random ? 1 : 0));
        return Array.from({ length: n }, (_, i) => (random ? Math.floor(r() * (size / bs)) : i % (size / bs)) * bs);
      };
      const cases: { name: string; bs: number; offsets: number[]; a: () => number; b: () => number; goal: string; min?: number; max?: number }[] = [];
      for (const bs of [4 * KiB, MiB]) {
        for (const random of [false, true]) {
          const offsets = plan(bs, random);
          const reader = (fd: number) => () => timeMs(() => {
            for (const o of offsets) ovRead(fd, buf, 0, bs, o);
          });
          // Throughput ratio re-bound/fresh = time fresh / time re-bound: a = fresh, b = re-bound.
          cases.push({ name: `re-bound vs fresh, ${bs === MiB ? '1 MiB' : '4 KiB'} ${random ? 'random' : 'sequential'}`, bs, offsets, a: reader(fresh), b: reader(rebound), goal: '≥ 0.95×', min: 0.95 });
        }
      }
      const seq4k = plan(4 * KiB, false);
      cases.push({
        name: 'overlay read vs raw fs.readSync, 4 KiB sequential',
        bs: 4 * KiB,
        offsets: seq4k,
        a: () => timeMs(() => {
          for (const o of seq4k) ovRead(fresh, buf, 0, 4 * KiB, o);
        }),
        b: () => timeMs(() => {
          for (const o of seq4k) rawRead(raw, buf, 0, 4 * KiB, o);
        }),
        goal: '≤ 1.1×',
        max: 1.1,
      });

      const figures: RebindFigure[] = [];
      for (const c of cases) {
        c.a();
        c.b();
        const ta: number[] = [];
        const tb: number[] = [];
        for (let i = 0; i < reps; i++) {
          // Alternate which side goes first, so neither always runs on a warmer cache.
          if (i % 2 === 0) {
            ta.push(c.a());
            tb.push(c.b());
          } else {
            tb.push(c.b());
            ta.push(c.a());
          }
        }
        const ratio = spread(pairedRatios(ta, tb));
        const n = c.offsets.length;
        const med = (xs: number[]): number => spread(xs).median;
        const met = c.min !== undefined ? ratio.median >= c.min : ratio.median <= c.max!;
        figures.push({ name: c.name, aUs: (med(ta) * 1000) / n, bUs: (med(tb) * 1000) / n, ratio, goal: c.goal, met });
        opts.log?.(`  ${c.name}: ${ratio.median.toFixed(3)}× (${ratio.min.toFixed(3)}–${ratio.max.toFixed(3)}) goal ${c.goal} ${met ? 'met' : 'MISSED'}`);
      }
      ofs.closeSync(rebound);
      ofs.closeSync(fresh);
      fs.closeSync(raw);
      const result: RebindResult = { fileMiB: size / MiB, reps, figures };
      fs.mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
      fs.writeFileSync(join(ROOT, `bench/results/${opts.quick ? 'rebind-quick' : 'rebind'}.json`), `${JSON.stringify(result, null, 1)}\n`);
      return result;
    } finally {
      ov.close();
    }
  } finally {
    cleanup.runAll();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const r = await rebindBench({ quick: process.argv.includes('--quick'), log: (m) => void process.stderr.write(`${m}\n`) });
  for (const f of r.figures) console.log(`${f.name}: ${f.ratio.median.toFixed(3)}× [${f.ratio.min.toFixed(3)}–${f.ratio.max.toFixed(3)}], goal ${f.goal}: ${f.met ? 'met' : 'missed'}`);
}
