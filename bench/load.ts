// The mount under load, side by side in one run: the ovlfs mount, fuse-overlayfs and the kernel overlay
// (the baseline of every ratio). Sizes are short by default; `--big` runs the sizes (1 GiB,
// 200,000 entries, 10 s per client count).
//   parallel  N = 1, 4, 16 client processes, each looping create+write 4 KiB, read back, rename and
//             unlink in its own directory, plus a read of a shared lower file; ops/s per peer.
//             `--spin-ab` adds a second ovlfs mount with OVLFS_SPIN=0 (the serving loop's spin before
//             sleeping off, src/fuse/bridge/spin-read.ts), the order reversed every other round, and logs
//             every round and the medians with each daemon's CPU per op; `--rounds=K` sets the rounds.
//             Each round also logs the machine's CPU per op, and the end the bound it sets on any daemon
//             with ovlfs's round trips (logCeiling)
//   stall     the latency of a stat of a name not looked up yet while another client's first write
//             copies up a large lower file
//   forget    daemon RSS after stats of every entry of a large lower directory and drop_caches,
//             over two passes (flat means nodes are dropped), for the daemon as the suite runs it
//             (under tsx) and as installed (the esbuild bundle, built into bench/tmp for the run)
//   find      find over that directory after drop_caches
//   seq       sequential write and read of a large upper file (passthrough where it applies)
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

import type { Row } from './lib/harness.js';
import { ROOT, type Peer, type PeerId, type Stack, type View } from './lib/peers.js';
import { isMounted, tempDir, umount, type Cleanup } from './lib/sys.js';
import type { Ctx } from './workloads.js';

const MiB = 1 << 20;
const BIG = process.argv.includes('--big');
const MOUNT_PEERS: PeerId[] = ['kernel', 'fuse-overlayfs', 'ovlfs-mount'];

function mountPeers(ctx: Ctx): Peer[] {
  return ctx.peers.filter((p) => MOUNT_PEERS.includes(p.id) && p.unavailable === undefined);
}

/** A fresh stack over `lower` for one peer. */
function stackOver(ctx: Ctx, lower: string): Stack {
  const own = tempDir(ctx.cleanup, 'load');
  for (const d of ['upper', 'work', 'flat']) fs.mkdirSync(join(own, d));
  return { lowers: [lower], upper: join(own, 'upper'), work: join(own, 'work'), flat: join(own, 'flat') };
}

function row(workload: string, name: string, peer: PeerId, values: number[], unit: 'ms' | 'MiB', x?: number, note?: string): Row {
  return { workload, case: name, x, peer, status: 'ok', note, unit, values, ops: 1, baseline: 'kernel' };
}

function dropCaches(level: '1' | '2' | '3'): void {
  fs.writeFileSync('/proc/sys/vm/drop_caches', level);
}

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One client process: says ready, waits for a line on stdin, loops for `ms`, prints its operation count. */
const CLIENT = `
const fs = require('node:fs');
const [dir, shared, ms] = process.argv.slice(1);
fs.mkdirSync(dir, { recursive: true });
const data = Buffer.alloc(4096, 7);
console.log('ready');
process.stdin.once('data', () => {
const end = Date.now() + +ms;
let n = 0;
while (Date.now() < end) {
  const a = dir + '/a' + n, b = dir + '/b' + n;
  fs.writeFileSync(a, data);
  if (fs.readFileSync(a).length !== 4096) throw new Error('short read');
  fs.renameSync(a, b);
  fs.unlinkSync(b);
  fs.readFileSync(shared);
  n++;
}
console.log(n);
process.exit(0);
});
`;

/** Busy CPU time of the whole machine so far (all CPUs, every state but idle and iowait), in ms. */
function machineBusyMs(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
  return ((user + nice + system + irq + softirq + steal) * 1000) / 100; // clock ticks (USER_HZ = 100)
}

/**
 * Starts `n` clients (in directories under `root`/`tag`), lets them all go at once when every one is
 * ready, and returns their ops/s and the machine's busy CPU over the timed part (their start-up left out).
 */
async function clients(root: string, tag: string, n: number, seconds: number): Promise<{ ops: number; busyMs: number }> {
  const ready: Promise<void>[] = [];
  const procs = Array.from({ length: n }, (_, i) => {
    const p = spawn(process.execPath, ['-e', CLIENT, join(root, tag, `c${i}`), join(root, 'shared'), String(seconds * 1000)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    ready.push(new Promise<void>((res) => p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) res();
    })));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const done = new Promise<number>((res, rej) => p.on('exit', (code) => (code === 0 ? res(Number(out.slice(6).trim())) : rej(new Error(`client ${i}: ${err.trim().slice(0, 300)}`)))));
    return { p, done };
  });
  await Promise.all(ready);
  const busy0 = machineBusyMs();
  for (const { p } of procs) p.stdin.write('go\n');
  const counts = await Promise.all(procs.map((c) => c.done));
  return { ops: counts.reduce((a, b) => a + b, 0) / seconds, busyMs: machineBusyMs() - busy0 };
}

/**
 * Ops/s of N parallel clients; reported as ms per op so that the suite's ratios read as costs. The three
 * mounts are up together and take turns, each client count in each round, so that a busy moment of
 * the machine falls on every peer alike; each row holds every round, and the report takes the median.
 */
export async function parallelClients(ctx: Ctx): Promise<Row[]> {
  const seconds = BIG ? 10 : ctx.quick ? 1 : 3;
  const roundsArg = process.argv.find((a) => a.startsWith('--rounds='));
  const rounds = roundsArg !== undefined ? Number(roundsArg.slice(9)) : BIG ? 1 : 3;
  const spinAb = process.argv.includes('--spin-ab');
  const lower = tempDir(ctx.cleanup, 'par-lower');
  fs.writeFileSync(join(lower, 'shared'), Buffer.alloc(16 * 1024, 3));
  // others: the CPU per op of everything but the daemon (the clients, and the kernel serving them), in ms.
  type Turn = { peer: Peer; label: string; view: View; ms: Map<number, number[]>; cpu: Map<number, number[]>; others: Map<number, number[]> };
  const views: Turn[] = [];
  const extra: Turn[] = [];
  try {
    for (const peer of mountPeers(ctx)) {
      views.push({ peer, label: peer.id, view: await peer.open(stackOver(ctx, lower), ctx.cleanup), ms: new Map(), cpu: new Map(), others: new Map() });
      if (spinAb && peer.id === 'ovlfs-mount') {
        const view = await peer.open(stackOver(ctx, lower), ctx.cleanup, { ...process.env, OVLFS_SPIN: '0' });
        extra.push({ peer, label: 'ovlfs-mount OVLFS_SPIN=0', view, ms: new Map(), cpu: new Map(), others: new Map() });
      }
    }
    const all = [...views, ...extra];
    for (let round = 0; round < rounds; round++) {
      for (const n of [1, 4, 16]) {
        for (const v of spinAb && round % 2 === 1 ? [...all].reverse() : all) {
          // A fresh directory per round: every round starts from the same empty one.
          const cpu0 = daemonCpuMs(v.view.pid);
          const { ops, busyMs } = await clients(v.view.root, `r${round}`, n, seconds);
          const daemonMs = daemonCpuMs(v.view.pid) - cpu0;
          const cpuPerOp = daemonMs / (ops * seconds);
          const othersPerOp = (busyMs - daemonMs) / (ops * seconds);
          ctx.log(`  parallel round ${round + 1} ${v.label} N=${n}: ${ops.toFixed(0)} ops/s, machine ${((busyMs / (ops * seconds)) * 1000).toFixed(0)} µs CPU per op` +
            (v.view.pid !== undefined ? `, of which the daemon ${(cpuPerOp * 1000).toFixed(0)} µs` : ''));
          v.ms.set(n, [...(v.ms.get(n) ?? []), 1000 / ops]);
          v.cpu.set(n, [...(v.cpu.get(n) ?? []), cpuPerOp]);
          v.others.set(n, [...(v.others.get(n) ?? []), othersPerOp]);
        }
      }
    }
    if (spinAb) {
      for (const n of [1, 4, 16]) {
        const line = all.map((v) => `${v.label} ${(1000 / median(v.ms.get(n) ?? [])).toFixed(0)} ops/s` + (v.view.pid !== undefined ? ` (${(median(v.cpu.get(n) ?? []) * 1000).toFixed(0)} µs CPU/op)` : ''));
        ctx.log(`  parallel medians N=${n}: ${line.join(', ')}`);
      }
    }
    logCeiling(ctx, views);
  } finally {
    for (const v of [...views, ...extra]) await v.view.close();
  }
  return views.flatMap((v) => [1, 4, 16].map((n) => row('parallel', `N=${n} (ms per op; ops/s = 1000/value)`, v.peer.id, v.ms.get(n) ?? [], 'ms', n)));
}

/**
 * The most ops/s a daemon that cost no CPU at all could reach with ovlfs's round trips: the CPUs' time
 * over what everything else (the clients, and the kernel carrying each request to the daemon and the
 * reply back) spends per op in the ovlfs rounds. A bound at every N, close where the clients keep every
 * CPU busy (many clients), loose where they leave CPUs idle (one). Against fuse-overlayfs's median it
 * says whether a goal is within reach of any daemon on this machine.
 */
function logCeiling(ctx: Ctx, views: { peer: Peer; ms: Map<number, number[]>; cpu: Map<number, number[]>; others: Map<number, number[]> }[]): void {
  const ovlfs = views.find((v) => v.peer.id === 'ovlfs-mount');
  const fo = views.find((v) => v.peer.id === 'fuse-overlayfs');
  if (ovlfs === undefined) return;
  const cores = cpus().length;
  for (const n of [1, 4, 16]) {
    const others = median(ovlfs.others.get(n) ?? []);
    const ceiling = (cores * 1000) / others;
    const foOps = fo !== undefined ? 1000 / median(fo.ms.get(n) ?? []) : NaN;
    const foCpu = fo !== undefined ? median(fo.cpu.get(n) ?? []) : NaN;
    // A daemon as cheap per op as fuse-overlayfs's, with ovlfs's round trips.
    const asCheap = (cores * 1000) / (others + foCpu);
    ctx.log(`  parallel ceiling N=${n}: the clients and the kernel take ${(others * 1000).toFixed(0)} µs of CPU per op with ovlfs's round trips; ` +
      `on ${cores} CPUs a daemon costing nothing could reach at most ${ceiling.toFixed(0)} ops/s` +
      (Number.isFinite(foOps) ? ` (${(ceiling / foOps).toFixed(2)}× fuse-overlayfs's ${foOps.toFixed(0)}), one costing what fuse-overlayfs's does (${(foCpu * 1000).toFixed(0)} µs per op) ${asCheap.toFixed(0)} (${(asCheap / foOps).toFixed(2)}×)` : ''));
  }
}

/** User + system CPU of a process and all its threads so far, in ms (0 without a pid). */
function daemonCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Stat latency of fresh names while another client's first write copies a large file up. */
export async function statDuringCopyUp(ctx: Ctx): Promise<Row[]> {
  const size = BIG ? 1024 * MiB : 256 * MiB;
  const lower = tempDir(ctx.cleanup, 'stall-lower');
  const fd = fs.openSync(join(lower, 'big'), 'w');
  const chunk = Buffer.alloc(MiB, 5);
  for (let pos = 0; pos < size; pos += MiB) fs.writeSync(fd, chunk, 0, MiB, pos);
  fs.closeSync(fd);
  fs.mkdirSync(join(lower, 'd'));
  for (let i = 0; i < 100; i++) fs.writeFileSync(join(lower, 'd', `n${i}`), '');
  const out: Row[] = [];
  for (const peer of mountPeers(ctx)) {
    const view = await peer.open(stackOver(ctx, lower), ctx.cleanup);
    try {
      dropCaches('3');
      const t0 = performance.now();
      const writer = spawn('sh', ['-c', `echo x >> '${view.root}/big'`]);
      const done = new Promise<number>((res) => writer.on('exit', () => res(performance.now() - t0)));
      let finished = false;
      void done.then(() => (finished = true));
      await sleep(100);
      const lat: number[] = [];
      for (let i = 0; i < 20 && !finished; i++) {
        const t = performance.now();
        fs.statSync(join(view.root, 'd', `n${i}`));
        lat.push(performance.now() - t);
        await sleep(20);
      }
      const copy = await done;
      const worst = Math.max(...lat, 0);
      ctx.log(`  stall ${peer.id}: copy-up ${copy.toFixed(0)} ms, ${lat.length} stats during it, worst ${worst.toFixed(1)} ms`);
      out.push(row('stall', `worst stat during a ${size / MiB} MiB copy-up`, peer.id, [worst], 'ms', undefined, `${lat.length} stats`));
      out.push(row('stall', `${size / MiB} MiB copy-up (first append)`, peer.id, [copy], 'ms'));
    } finally {
      await view.close();
    }
  }
  return out;
}

function bigDir(ctx: Ctx, entries: number): string {
  const lower = tempDir(ctx.cleanup, 'forget-lower');
  fs.mkdirSync(join(lower, 'd'));
  for (let i = 0; i < entries; i++) fs.closeSync(fs.openSync(join(lower, 'd', `f${i}`), 'w'));
  return lower;
}

/** Stats every name of `dir` in a child process (the daemon may share nothing with it). */
function statAll(dir: string, entries: number): void {
  const r = spawnSync(process.execPath, ['-e', `const fs = require('fs'); for (let i = 0; i < ${entries}; i++) fs.statSync(${JSON.stringify(dir)} + '/f' + i);`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('stat pass failed');
}

/** CPU ticks (user + system) the process has used, all threads. */
function cpuTicks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

/**
 * RSS once the daemon has settled after drop_caches: the kernel sends its FORGETs over seconds on a busy
 * machine, and the daemon collects once they stop. Settled: a whole second in which RSS moved less than
 * 2 MiB and the daemon used at most 20 ms of CPU; at most 30 s. Returns it and how long that took.
 */
async function settledRss(pid: number): Promise<{ mib: number; ms: number }> {
  const t0 = performance.now();
  let rss = rssMiB(pid);
  let cpu = cpuTicks(pid);
  for (;;) {
    await sleep(1000);
    const [nowRss, nowCpu] = [rssMiB(pid), cpuTicks(pid)];
    const quiet = Math.abs(nowRss - rss) < 2 && nowCpu - cpu <= 2;
    [rss, cpu] = [nowRss, nowCpu];
    if (quiet || performance.now() - t0 > 30_000) return { mib: nowRss, ms: performance.now() - t0 - 1000 };
  }
}

/** The ovlfs daemon as installed: the esbuild bundle of the current sources, in the foreground. */
async function bundledDaemon(stack: Stack, cleanup: Cleanup): Promise<View> {
  const bin = join(ROOT, 'bench/tmp/bundle');
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts/bundle.mjs'), bin], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`bundle: ${built.stderr.slice(0, 300)}`);
  const mnt = tempDir(cleanup, 'mnt');
  const opts = `lowerdir=${stack.lowers.join(':')},upperdir=${stack.upper},workdir=${stack.work},redirect_dir=on`;
  const child = spawn(process.execPath, [join(bin, 'ovlfs.cjs'), 'mount', '-f', '-o', opts, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const end = Date.now() + 30_000;
  while (!isMounted(mnt)) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill();
      throw new Error(`the bundled daemon did not mount: ${stderr.trim().slice(0, 300)}`);
    }
    await sleep(20);
  }
  cleanup.add(`umount ${mnt}`, () => umount(mnt));
  return {
    fs: fs as unknown as View['fs'],
    root: mnt,
    pid: child.pid,
    async close() {
      umount(mnt);
      await exited;
    },
  };
}

/** Daemon RSS after stats of every entry and drop_caches, two passes; and find over the directory. */
export async function forgetAndFind(ctx: Ctx): Promise<Row[]> {
  const entries = BIG ? 200_000 : 20_000;
  const lower = bigDir(ctx, entries);
  const out: Row[] = [];
  const bundled: Peer | undefined = mountPeers(ctx).some((p) => p.id === 'ovlfs-mount')
    ? { id: 'ovlfs-mount', label: 'ovlfs mount (bundled daemon)', mount: true, open: bundledDaemon }
    : undefined;
  for (const peer of [...mountPeers(ctx), ...(bundled ? [bundled] : [])]) {
    const form = peer === bundled ? ' (bundled daemon)' : '';
    let view: View;
    try {
      view = await peer.open(stackOver(ctx, lower), ctx.cleanup);
    } catch (e) {
      out.push({ ...row('forget', `mount${form}`, peer.id, [], 'MiB'), status: 'error', note: (e as Error).message.slice(0, 200) });
      continue;
    }
    try {
      if (peer === bundled) {
        await forgetPasses(ctx, view, entries, form, peer.id, out);
        continue;
      }
      dropCaches('2');
      const t = performance.now();
      const r = spawnSync('find', [join(view.root, 'd')], { stdio: ['ignore', 'ignore', 'pipe'] });
      const findMs = performance.now() - t;
      if (r.status !== 0) throw new Error(`find failed: ${r.stderr.toString().slice(0, 200)}`);
      out.push(row('find', `find over ${entries} lower entries, cold`, peer.id, [findMs], 'ms', entries));
      ctx.log(`  find ${peer.id}: ${findMs.toFixed(0)} ms`);
      await forgetPasses(ctx, view, entries, form, peer.id, out);
    } catch (e) {
      ctx.log(`  forget ${peer.id} failed: ${(e as Error).message}`);
      out.push({ ...row('forget', 'run', peer.id, [], 'MiB'), status: 'error', note: (e as Error).message.slice(0, 200) });
    } finally {
      await view.close();
    }
  }
  return out;
}

/** Two passes of stats over every entry, each followed by drop_caches; RSS held and RSS once settled. */
async function forgetPasses(ctx: Ctx, view: View, entries: number, form: string, peer: PeerId, out: Row[]): Promise<void> {
  if (view.pid === undefined) return;
  const start = rssMiB(view.pid);
  for (let pass = 1; pass <= 2; pass++) {
    statAll(join(view.root, 'd'), entries);
    const held = rssMiB(view.pid);
    dropCaches('2');
    const after = await settledRss(view.pid);
    ctx.log(`  forget ${peer}${form} pass ${pass}: RSS ${start.toFixed(0)} MiB at start, ${held.toFixed(0)} MiB after ${entries} stats, ${after.mib.toFixed(0)} MiB after drop_caches (settled in ${(after.ms / 1000).toFixed(1)} s)`);
    out.push(row('forget', `daemon RSS after ${entries} stats + drop_caches, pass ${pass}${form}`, peer, [after.mib], 'MiB', pass, `held ${held.toFixed(0)} MiB, start ${start.toFixed(0)} MiB`));
  }
}

/** Sequential write then read (page cache dropped) of a large new file: upper data, passthrough where it applies. */
export async function sequential(ctx: Ctx): Promise<Row[]> {
  const mib = BIG ? 1024 : 256;
  const lower = tempDir(ctx.cleanup, 'seq-lower');
  const out: Row[] = [];
  for (const peer of mountPeers(ctx)) {
    const view = await peer.open(stackOver(ctx, lower), ctx.cleanup);
    try {
      const file = join(view.root, 'seq');
      const dd = (args: string): number => {
        const t = performance.now();
        const r = spawnSync('sh', ['-c', `dd ${args} bs=1M status=none`]);
        if (r.status !== 0) throw new Error(`dd ${args}: ${r.stderr.toString()}`);
        return performance.now() - t;
      };
      // Three rounds, each a new file: the best round, since the disk and the other tenants of the machine vary.
      const writes: number[] = [];
      const reads: number[] = [];
      for (let round = 0; round < 3; round++) {
        fs.rmSync(file, { force: true });
        writes.push(dd(`if=/dev/zero of='${file}' count=${mib} conv=fsync`));
        dropCaches('1');
        reads.push(dd(`if='${file}' of=/dev/null`));
      }
      const rate = (ms: number[]): string => (mib / (Math.min(...ms) / 1000)).toFixed(0);
      ctx.log(`  seq ${peer.id}: write ${rate(writes)} MiB/s, read ${rate(reads)} MiB/s (best of 3)`);
      out.push(row('seq', `write ${mib} MiB (dd bs=1M, fsync)`, peer.id, writes, 'ms'));
      out.push(row('seq', `read ${mib} MiB (dd bs=1M, cold)`, peer.id, reads, 'ms'));
    } finally {
      await view.close();
    }
  }
  return out;
}
