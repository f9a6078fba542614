// Growth: memory of the overlay process against the number of files touched (stat + readFile each).
// In-process peers run in a child process of their own (heap and RSS deltas after a forced GC); for a
// mount, the serving process's RSS (VmRSS) is read while this process touches files through it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';

import type { MemoryJob, MemoryPoint } from './child.js';
import type { Row } from './lib/harness.js';
import { ROOT, TSX, type Peer } from './lib/peers.js';
import { tempDir } from './lib/sys.js';
import type { Ctx } from './workloads.js';

function vmRssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function memoryGrowth(ctx: Ctx): Promise<Row[]> {
  const checkpoints = ctx.quick ? [100, 1000, 3000] : [100, 1000, 10000, 30000];
  const total = checkpoints[checkpoints.length - 1]!;
  const perDir = 1000;
  const base = tempDir(ctx.cleanup, 'memory');
  const lowers = [0, 1, 2].map((i) => join(base, String(i)));
  const flat = join(base, 'flat');
  const content = Buffer.alloc(100, 120);
  const paths: string[] = [];
  for (let k = 0; k < total; k++) {
    const d = `/m${Math.floor(k / perDir)}`;
    if (k % perDir === 0) for (const l of [...lowers, flat]) fs.mkdirSync(join(l, d), { recursive: true });
    const p = `${d}/f${k}`;
    paths.push(p);
    fs.writeFileSync(join(lowers[k % 3]!, p), content);
    fs.writeFileSync(join(flat, p), content);
  }
  const reps = ctx.quick ? 1 : 2;
  const out: Row[] = [];
  const series = new Map<string, { peer: Peer; rss: number[][]; heap: number[][]; status: Row['status']; note?: string }>();
  for (const peer of ctx.peers) {
    const s = { peer, rss: checkpoints.map(() => [] as number[]), heap: checkpoints.map(() => [] as number[]), status: 'ok' as Row['status'], note: undefined as string | undefined };
    series.set(peer.id, s);
    if (peer.unavailable !== undefined) {
      s.status = 'error';
      s.note = peer.unavailable;
      continue;
    }
    if (peer.id === 'kernel') {
      s.status = 'n/a';
      s.note = 'kernel memory (dentry and inode caches) belongs to no process';
      continue;
    }
    for (let rep = 0; rep < reps; rep++) {
      const mark = ctx.cleanup.mark;
      try {
        const own = tempDir(ctx.cleanup, 'mem-peer', base);
        const stack = { lowers, upper: join(own, 'u'), work: join(own, 'w'), flat };
        fs.mkdirSync(stack.upper);
        fs.mkdirSync(stack.work);
        if (peer.mount && peer.id !== 'raw') {
          const view = await peer.open(stack, ctx.cleanup);
          try {
            const r0 = vmRssMiB(view.pid!);
            let done = 0;
            checkpoints.forEach((cp, i) => {
              for (; done < cp; done++) {
                fs.statSync(view.root + paths[done]!);
                fs.readFileSync(view.root + paths[done]!);
              }
              s.rss[i]!.push(vmRssMiB(view.pid!) - r0);
            });
          } finally {
            await view.close();
          }
        } else {
          const job: MemoryJob = { mode: 'memory', peer: peer.id, stack, paths, checkpoints };
          const jobFile = join(own, 'job.json');
          fs.writeFileSync(jobFile, JSON.stringify(job));
          const r = spawnSync(process.execPath, ['--expose-gc', '--import', TSX, join(ROOT, 'bench/child.ts'), jobFile], { encoding: 'utf8', maxBuffer: 16 << 20 });
          if (r.status !== 0) throw new Error(`child failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
          const pts = JSON.parse(r.stdout.trim().split('\n').pop()!) as MemoryPoint[];
          pts.forEach((pt, i) => {
            s.rss[i]!.push(pt.rssMiB);
            s.heap[i]!.push(pt.heapMiB);
          });
        }
      } catch (e) {
        s.status = 'error';
        s.note = (e as Error).message.slice(0, 200);
        ctx.log(`  ${peer.id}: ${s.note}`);
        break;
      } finally {
        ctx.cleanup.runFrom(mark);
      }
    }
  }
  for (const s of series.values()) {
    const note = s.note ?? (s.peer.id === 'memfs' ? 'holds the whole tree from the start; the delta is what touching adds' : s.peer.mount && s.peer.id !== 'raw' ? 'RSS of the serving process' : undefined);
    checkpoints.forEach((cp, i) => {
      out.push({ workload: 'memory', case: 'rss', x: cp, peer: s.peer.id, status: s.status, note, unit: 'MiB', values: s.rss[i]!, ops: 1, baseline: 'raw' });
      if (!s.peer.mount || s.peer.id === 'raw')
        out.push({ workload: 'memory', case: 'heap', x: cp, peer: s.peer.id, status: s.status, note, unit: 'MiB', values: s.heap[i]!, ops: 1, baseline: 'raw' });
    });
  }
  return out;
}
