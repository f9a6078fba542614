// A fresh process for measurements that must not share a heap with the suite: memory against files
// touched, and CPU profiles (`node --cpu-prof`). Run as: node --expose-gc --import tsx bench/child.ts JOB.json
import { readFileSync } from 'node:fs';

import { makePeers, type PeerId, type Stack } from './lib/peers.js';
import { Cleanup } from './lib/sys.js';

export interface MemoryJob {
  mode: 'memory';
  peer: PeerId;
  stack: Stack;
  paths: string[];
  checkpoints: number[];
}

export interface ProfileJob {
  mode: 'profile';
  peer: PeerId;
  stack: Stack;
  /** Overlay paths to stat + read, or directories to list. */
  paths: string[];
  op: 'stat+readFile' | 'readdir' | 'churn';
  seconds: number;
}

export interface MemoryPoint {
  n: number;
  rssMiB: number;
  heapMiB: number;
}

const MiB = 1024 * 1024;

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as MemoryJob | ProfileJob;
  const peer = makePeers().find((p) => p.id === job.peer)!;
  const cleanup = new Cleanup();
  try {
    const view = await peer.open(job.stack, cleanup);
    try {
      if (job.mode === 'memory') {
        gc();
        const m0 = process.memoryUsage();
        const points: MemoryPoint[] = [];
        let done = 0;
        for (const cp of job.checkpoints) {
          for (; done < cp && done < job.paths.length; done++) {
            view.fs.statSync(view.root + job.paths[done]!);
            view.fs.readFileSync(view.root + job.paths[done]!);
          }
          gc();
          const m = process.memoryUsage();
          points.push({ n: cp, rssMiB: (m.rss - m0.rss) / MiB, heapMiB: (m.heapUsed - m0.heapUsed) / MiB });
        }
        process.stdout.write(`${JSON.stringify(points)}\n`);
      } else {
        const end = Date.now() + job.seconds * 1000;
        let rounds = 0;
        while (Date.now() < end) {
          if (job.op === 'stat+readFile') {
            for (const p of job.paths) {
              view.fs.statSync(view.root + p);
              view.fs.readFileSync(view.root + p);
            }
          } else if (job.op === 'readdir') {
            for (const p of job.paths) view.fs.readdirSync(view.root + p);
          } else {
            const d = view.root + job.paths[0]!;
            for (let i = 0; i < 1000; i++) view.fs.writeFileSync(`${d}/n${i}`, 'x');
            for (let i = 0; i < 1000; i++) view.fs.renameSync(`${d}/n${i}`, `${d}/m${i}`);
            for (let i = 0; i < 1000; i++) view.fs.unlinkSync(`${d}/m${i}`);
          }
          rounds++;
        }
        process.stdout.write(`${JSON.stringify({ rounds })}\n`);
      }
    } finally {
      await view.close();
    }
  } finally {
    cleanup.runAll();
  }
}

await main();
