// CPU profiles (`node --cpu-prof`) of the ovlfs library and the ovlfs mount on the workloads whose goals
// the suite checks. Each target runs in a process of its own; the profiles' self time is summed per
// function, and the top frames go into docs/benchmarks.md.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';

import type { ProfileJob } from './child.js';
import { ROOT, TSX, setOvlfsMountExecArgv, type Peer, type Stack } from './lib/peers.js';
import { nowMs } from './lib/stats.js';
import { Cleanup, tempDir } from './lib/sys.js';

export interface Frame {
  fn: string;
  file: string;
  selfPct: number;
  /** The nearest ovlfs (src/) function on the stack, where the frame itself is not one. */
  via?: string;
}

export interface ProfileResult {
  target: string;
  samples: number;
  top: Frame[];
  note?: string;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }[];
}

export function summarize(files: string[], n = 12): { samples: number; top: Frame[] } {
  const self = new Map<string, number>();
  const vias = new Map<string, Map<string, number>>();
  let total = 0;
  const short = (url: string): string => url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '').replace(/^.*node_modules\//, 'node_modules/') || '(native)';
  for (const f of files) {
    const prof = JSON.parse(fs.readFileSync(f, 'utf8')) as CpuProfile;
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const viaOf = (id: number): string | undefined => {
      for (let cur: number | undefined = parent.get(id); cur !== undefined; cur = parent.get(cur)) {
        const cf = byId.get(cur)!.callFrame;
        if (cf.url.includes('/src/')) return `${cf.functionName || '(anonymous)'} (${short(cf.url)})`;
      }
      return undefined;
    };
    for (const node of prof.nodes) {
      const hits = node.hitCount ?? 0;
      if (hits === 0) continue;
      const { functionName, url } = node.callFrame;
      if (functionName === '(idle)') continue;
      const file = short(url);
      const key = `${functionName || '(anonymous)'}\t${file}`;
      self.set(key, (self.get(key) ?? 0) + hits);
      if (!url.includes('/src/')) {
        const v = viaOf(node.id);
        if (v !== undefined) {
          const m = vias.get(key) ?? new Map<string, number>();
          m.set(v, (m.get(v) ?? 0) + hits);
          vias.set(key, m);
        }
      }
      total += hits;
    }
  }
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => {
      const [fn, file] = k.split('\t') as [string, string];
      const via = [...(vias.get(k) ?? new Map<string, number>()).entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
      return { fn, file, selfPct: (100 * v) / total, via };
    });
  return { samples: total, top };
}

function smallTree(base: string, n: number): { stack: Stack; paths: string[] } {
  const lowers = [0, 1, 2].map((i) => join(base, String(i)));
  const stack: Stack = { lowers, upper: join(base, 'u'), work: join(base, 'w'), flat: join(base, 'flat') };
  for (const d of [...lowers, stack.upper, stack.work, stack.flat]) fs.mkdirSync(d, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = `/src/d${i % 10}/f${i}.js`;
    paths.push(p);
    for (const l of lowers) fs.mkdirSync(join(l, dirname(p)), { recursive: true });
    fs.writeFileSync(join(lowers[i % 3]!, p), Buffer.alloc(200 + ((i * 37) % 3800), 97));
    if (i % 3 === 1) {
      fs.mkdirSync(join(stack.upper, dirname(p)), { recursive: true });
      fs.writeFileSync(join(stack.upper, p), 'copied up');
    }
  }
  for (const n2 of [1000, 10000]) {
    for (const l of lowers) fs.mkdirSync(join(l, `r${n2}`), { recursive: true });
    for (let k = 0; k < n2; k++) fs.writeFileSync(join(lowers[k % 3]!, `r${n2}`, `entry-${k}`), '');
  }
  fs.mkdirSync(join(lowers[2]!, 'churn'), { recursive: true });
  return { stack, paths };
}

function profileChild(job: ProfileJob, dir: string): string[] {
  const jobFile = join(dir, 'job.json');
  fs.writeFileSync(jobFile, JSON.stringify(job));
  const profDir = join(dir, 'prof');
  const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profDir, '--import', TSX, join(ROOT, 'bench/child.ts'), jobFile], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`profile child failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return fs.readdirSync(profDir).map((f) => join(profDir, f));
}

export async function profileAll(opts: { quick: boolean; peers: Peer[]; cleanup: Cleanup; log: (m: string) => void }): Promise<ProfileResult[]> {
  const out: ProfileResult[] = [];
  const cleanup = new Cleanup();
  const seconds = opts.quick ? 2 : 10;
  try {
    const base = tempDir(cleanup, 'profile');
    const { stack, paths } = smallTree(join(base, 'tree'), 1000);
    const targets: { target: string; op: ProfileJob['op']; paths: string[] }[] = [
      { target: 'ovlfs library: stat + readFile, 1,000 small files', op: 'stat+readFile', paths },
      { target: 'ovlfs library: readdir of merged dirs (1,000 and 10,000 entries)', op: 'readdir', paths: ['/r1000', '/r10000'] },
      { target: 'ovlfs library: create + rename + unlink', op: 'churn', paths: ['/churn'] },
    ];
    for (const t of targets) {
      try {
        const dir = tempDir(cleanup, 'prof', base);
        const files = profileChild({ mode: 'profile', peer: 'ovlfs-lib', stack, paths: t.paths, op: t.op, seconds }, dir);
        out.push({ target: t.target, ...summarize(files) });
        opts.log(`  ${t.target}: top ${out[out.length - 1]!.top.slice(0, 3).map((f) => f.fn).join(', ')}`);
      } catch (e) {
        out.push({ target: t.target, samples: 0, top: [], note: (e as Error).message });
      }
    }
    // The mount: profile the serving process while this process reads through it.
    const mount = opts.peers.find((p) => p.id === 'ovlfs-mount');
    const target = 'ovlfs mount (serving process): stat + readFile, 1,000 small files';
    if (mount && mount.unavailable === undefined) {
      const profDir = tempDir(cleanup, 'prof-mount', base);
      setOvlfsMountExecArgv(['--cpu-prof', '--cpu-prof-dir', profDir]);
      try {
        const view = await mount.open(stack, cleanup);
        try {
          const end = nowMs() + seconds * 1000;
          while (nowMs() < end) {
            for (const p of paths) {
              fs.statSync(view.root + p);
              fs.readFileSync(view.root + p);
            }
          }
        } finally {
          await view.close();
        }
        const files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(profDir, f));
        if (files.length === 0) throw new Error('the daemon wrote no profile (it must exit normally for --cpu-prof)');
        out.push({ target, ...summarize(files) });
      } catch (e) {
        out.push({ target, samples: 0, top: [], note: (e as Error).message });
      } finally {
        setOvlfsMountExecArgv([]);
      }
    } else out.push({ target, samples: 0, top: [], note: mount?.unavailable ?? 'not yet available' });
  } finally {
    cleanup.runAll();
  }
  return out;
}
