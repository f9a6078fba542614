// The library under load, against Node's own fs on the same files, in the same run:
//  1. Event-loop lag of one async call on a large file: the longest the loop waits for a 1 ms timer
//     while promises.readFile, promises.writeFile, promises.appendFile (a copy-up: the file's first
//     write; Node's side copies the file, appends and fsyncs the copy) and the callback readFile run.
//     Goal: at most 50 ms with ovlfs.
//  2. Heap after walking a lower directory of many files (readdir, then stat of each) with the default
//     node cache, and after close(), in a fresh process; Node's own fs walking the same tree is the
//     baseline. Goal: at most 50 MiB after walking 200k files.
// Short by default (64 MiB, 20k files); --big for the goals' sizes (300 MiB, 200k files).
// Run alone: node --import tsx bench/under-load.ts [--big]; writes bench/results/under-load.json.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { openOverlay } from '../src/index.js';
import { ROOT, TSX } from './lib/peers.js';
import { Cleanup, tempDir } from './lib/sys.js';

const MiB = 1024 * 1024;

export interface LagFigure {
  call: string;
  /** Median over the repetitions of the longest event-loop stall, ms. */
  ovlfsLagMs: number;
  nodeLagMs: number;
  /** Median time of the whole call, ms. */
  ovlfsMs: number;
  nodeMs: number;
  met: boolean;
}

export interface HeapFigure {
  files: number;
  /** Heap growth after the walk and after close(), MiB, over the heap before opening. */
  ovlfsWalkMiB: number;
  ovlfsClosedMiB: number;
  nodeWalkMiB: number;
  /** Unreferenced nodes cached after the walk. */
  cachedNodes: number;
  met: boolean;
}

export interface UnderLoadResult {
  fileMiB: number;
  reps: number;
  lag: LagFigure[];
  heap: HeapFigure;
}

const LAG_GOAL_MS = 50;
const HEAP_GOAL_MIB = 50;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Runs `call` with a 1 ms timer beside it: the longest gap between ticks (the call's own start and end included), and the call's time. */
async function stall(call: () => Promise<unknown>): Promise<{ lagMs: number; ms: number }> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  const t0 = performance.now();
  last = t0;
  await call();
  const t1 = performance.now();
  worst = Math.max(worst, t1 - last);
  clearInterval(timer);
  return { lagMs: worst, ms: t1 - t0 };
}

function writeBig(path: string, size: number): void {
  const chunk = Buffer.alloc(MiB, 7);
  const fd = fs.openSync(path, 'w');
  for (let off = 0; off < size; off += MiB) fs.writeSync(fd, chunk, 0, Math.min(MiB, size - off), off);
  fs.closeSync(fd);
}

export async function lagBench(opts: { big: boolean; log?: (m: string) => void }): Promise<{ fileMiB: number; reps: number; lag: LagFigure[] }> {
  const cleanup = new Cleanup();
  const size = (opts.big ? 300 : 64) * MiB;
  const reps = 3;
  try {
    const d = tempDir(cleanup, 'under-load');
    const lower = join(d, 'lower');
    const plain = join(d, 'plain');
    fs.mkdirSync(lower);
    fs.mkdirSync(plain);
    writeBig(join(lower, 'big'), size);
    const data = Buffer.alloc(size, 9);
    let run = 0;
    /** A fresh overlay over the shared lower layer (an empty upper: every first write copies up). */
    const overlay = (): ReturnType<typeof openOverlay> => {
      const own = join(d, `o${run++}`);
      fs.mkdirSync(join(own, 'u'), { recursive: true });
      fs.mkdirSync(join(own, 'w'));
      return openOverlay({ lowerdir: [lower], upperdir: join(own, 'u'), workdir: join(own, 'w') });
    };
    /** Node's own fs on a plain copy of the lower file, so its appendFile changes nothing shared. */
    const plainCopy = (): string => {
      const p = join(plain, `big${run++}`);
      fs.copyFileSync(join(lower, 'big'), p);
      return p;
    };
    const cases: Array<{ call: string; ovlfs: (o: ReturnType<typeof openOverlay>) => Promise<unknown>; node: (p: string) => Promise<unknown> }> = [
      { call: 'promises.readFile', ovlfs: (o) => o.fs.promises.readFile('/big'), node: (p) => fs.promises.readFile(p) },
      { call: 'promises.writeFile', ovlfs: (o) => o.fs.promises.writeFile('/new', data), node: (p) => fs.promises.writeFile(`${p}.new`, data) },
      {
        call: 'promises.appendFile (copy-up)',
        ovlfs: (o) => o.fs.promises.appendFile('/big', 'x'),
        // What a copy-up is, in Node's own calls: copy the file, append, and fsync the copy.
        node: async (p) => {
          await fs.promises.copyFile(p, `${p}.new`);
          const h = await fs.promises.open(`${p}.new`, 'a');
          await h.appendFile('x');
          await h.sync();
          await h.close();
        },
      },
      {
        call: 'callback readFile',
        ovlfs: (o) => new Promise((resolve, reject) => o.fs.readFile('/big', (err, b) => (err ? reject(err) : resolve(b)))),
        node: (p) => new Promise((resolve, reject) => fs.readFile(p, (err, b) => (err ? reject(err) : resolve(b)))),
      },
    ];
    const lag: LagFigure[] = [];
    for (const c of cases) {
      const o = { lag: [] as number[], ms: [] as number[] };
      const n = { lag: [] as number[], ms: [] as number[] };
      for (let rep = 0; rep < reps; rep++) {
        // Alternate which side goes first, so page-cache warmth favours neither.
        for (const side of rep % 2 === 0 ? ['ovlfs', 'node'] : ['node', 'ovlfs']) {
          if (side === 'ovlfs') {
            const ov = overlay();
            try {
              const r = await stall(() => c.ovlfs(ov));
              o.lag.push(r.lagMs);
              o.ms.push(r.ms);
            } finally {
              ov.close();
            }
          } else {
            const p = plainCopy();
            const r = await stall(() => c.node(p));
            n.lag.push(r.lagMs);
            n.ms.push(r.ms);
            fs.rmSync(p, { force: true });
            fs.rmSync(`${p}.new`, { force: true });
          }
        }
      }
      const fig: LagFigure = {
        call: c.call, ovlfsLagMs: median(o.lag), nodeLagMs: median(n.lag), ovlfsMs: median(o.ms), nodeMs: median(n.ms), met: median(o.lag) <= LAG_GOAL_MS,
      };
      opts.log?.(`  ${c.call}: lag ${fig.ovlfsLagMs.toFixed(1)} ms (Node ${fig.nodeLagMs.toFixed(1)} ms), time ${fig.ovlfsMs.toFixed(0)} ms = ${(fig.ovlfsMs / fig.nodeMs).toFixed(2)}× Node's`);
      lag.push(fig);
    }
    return { fileMiB: size / MiB, reps, lag };
  } finally {
    cleanup.runAll();
  }
}

interface HeapJob {
  lower: string;
  upper: string;
  work: string;
  side: 'ovlfs' | 'node';
}

/** In the child: heap growth after walking the tree (and after close()), with every collectable thing collected. */
async function heapChild(job: HeapJob): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const heap = (): number => {
    gc();
    gc();
    return process.memoryUsage().heapUsed / MiB;
  };
  const before = heap();
  if (job.side === 'node') {
    let n = 0;
    for (const dir of fs.readdirSync(job.lower)) for (const name of fs.readdirSync(join(job.lower, dir))) n += fs.statSync(join(job.lower, dir, name)).size >= 0 ? 1 : 0;
    process.stdout.write(`${JSON.stringify({ walk: heap() - before, closed: 0, cached: 0, n })}\n`);
    return;
  }
  const o = openOverlay({ lowerdir: [job.lower], upperdir: job.upper, workdir: job.work });
  let n = 0;
  for (const dir of o.fs.readdirSync('/') as string[]) for (const name of o.fs.readdirSync(`/${dir}`) as string[]) n += o.fs.statSync(`/${dir}/${name}`).size >= 0 ? 1 : 0;
  const walk = heap() - before;
  const cached = o.cachedNodes;
  o.close();
  const closed = heap() - before;
  process.stdout.write(`${JSON.stringify({ walk, closed, cached, n })}\n`);
}

export function heapBench(opts: { big: boolean; log?: (m: string) => void }): HeapFigure {
  const cleanup = new Cleanup();
  const files = opts.big ? 200_000 : 20_000;
  try {
    const d = tempDir(cleanup, 'under-load-heap');
    const lower = join(d, 'lower');
    // Directories of 10,000 files each: large listings, and many more files than the node cache holds.
    for (let i = 0; i < files; i++) {
      if (i % 10_000 === 0) fs.mkdirSync(join(lower, `d${i / 10_000}`), { recursive: true });
      fs.closeSync(fs.openSync(join(lower, `d${Math.floor(i / 10_000)}`, `file-${i}`), 'w'));
    }
    const measure = (side: 'ovlfs' | 'node'): { walk: number; closed: number; cached: number; n: number } => {
      const own = join(d, side);
      for (const x of ['u', 'w']) fs.mkdirSync(join(own, x), { recursive: true });
      const job: HeapJob = { lower, upper: join(own, 'u'), work: join(own, 'w'), side };
      const r = spawnSync(process.execPath, ['--expose-gc', '--import', TSX, fileURLToPath(import.meta.url), '--heap-child', JSON.stringify(job)], {
        encoding: 'utf8',
        cwd: ROOT,
      });
      if (r.status !== 0) throw new Error(`heap child failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
      const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as { walk: number; closed: number; cached: number; n: number };
      if (result.n !== files) throw new Error(`the ${side} walk saw ${result.n} of ${files} files`);
      return result;
    };
    const ovlfs = measure('ovlfs');
    const node = measure('node');
    const fig: HeapFigure = {
      files, ovlfsWalkMiB: ovlfs.walk, ovlfsClosedMiB: ovlfs.closed, nodeWalkMiB: node.walk, cachedNodes: ovlfs.cached, met: ovlfs.walk <= HEAP_GOAL_MIB,
    };
    opts.log?.(`  heap after walking ${files} files: ${fig.ovlfsWalkMiB.toFixed(1)} MiB (${fig.cachedNodes} nodes cached), after close() ${fig.ovlfsClosedMiB.toFixed(1)} MiB; Node's fs ${fig.nodeWalkMiB.toFixed(1)} MiB`);
    return fig;
  } finally {
    cleanup.runAll();
  }
}

export async function underLoadBench(opts: { big: boolean; log?: (m: string) => void }): Promise<UnderLoadResult> {
  const lag = await lagBench(opts);
  const heap = heapBench(opts);
  return { ...lag, heap };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const child = process.argv.indexOf('--heap-child');
  if (child >= 0) {
    await heapChild(JSON.parse(process.argv[child + 1]!) as HeapJob);
  } else {
    const big = process.argv.includes('--big');
    const log = (m: string): void => void process.stderr.write(`${m}\n`);
    const result = await underLoadBench({ big, log });
    const dir = join(ROOT, 'bench/results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(join(dir, big ? 'under-load.json' : 'under-load-quick.json'), `${JSON.stringify(result, null, 1)}\n`);
  }
}
