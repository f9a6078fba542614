// Where a container's requests wait, as the kernel sees them: every FUSE request from the moment the
// kernel queues it (tracepoint fuse:fuse_request_send) until the daemon's reply ends it
// (fuse:fuse_request_end), for ovlfs and fuse-overlayfs serving the same lower layer, interleaved in
// one run. The workload is the container loop of bench/startup.ts (write a small file, run busybox cat
// on a 1 MiB file), run by busybox sh chrooted into the merged directory, after 20 warm-up iterations,
// with the options containers/storage passes. The upper and work directories are on a fresh ext4 with a
// journal, as container storage usually is: an ext4 without one (as some VMs have) skips every inode freed
// in the last minutes when it allocates one, which makes CREATE slow after any run that deleted files.
//
// A request is answered on the same CPU when the reply's CPU is the one the caller asked from: the
// daemon ran where its caller slept. On the other CPU, each side pays a cross-CPU wake-up, which on a
// small VM costs more than serving the request.
//
//   node --import tsx bench/request-latency.ts [--n=ITERATIONS] [--rounds=R] [--fs=ext4|host]
//
// --fs=host: the upper layers in the temp directory's own filesystem instead.
//
// Needs root, perf (with the fuse tracepoints), busybox-static and fuse-overlayfs; prints why not
// otherwise. Prints per request type: requests an iteration, median µs on the same and on the other
// CPU, the share on the other CPU; and per iteration the wall time and the summed latency of the
// requests a caller waits for (all but RELEASE and FORGET, which the kernel sends in the background).
// Writes bench/results/request-latency.json.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { makeImageTar, which } from '../test/podman/harness.js';
import { buildOvlfs } from '../test/support/build-ovlfs.js';
import { ROOT } from './lib/peers.js';
import { median } from './lib/stats.js';
import { Cleanup, hasCommand, loopFs, run, tempDir, tryRun, umount, waitMounted } from './lib/sys.js';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const N = Number(arg('n') ?? 200);
const ROUNDS = Number(arg('rounds') ?? 3);
const WARMUP = 20;
const FS = arg('fs') ?? 'ext4';
/** Requests the kernel sends in the background: no caller waits for their replies. */
const BACKGROUND = new Set(['RELEASE', 'RELEASEDIR', 'FORGET', 'BATCH_FORGET']);

type Daemon = 'ovlfs' | 'fuse-overlayfs';

interface Sample {
  /** Latency in µs of each request, by opcode, split by where the reply came from. */
  same: Map<string, number[]>;
  other: Map<string, number[]>;
  wallUs: number;
}

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mounts, chroot, perf -a)';
  if (FS !== 'ext4' && FS !== 'host') return `--fs=${FS}: ext4 or host`;
  for (const c of ['perf', 'fuse-overlayfs', 'fusermount3', 'chroot']) if (!hasCommand(c)) return `needs ${c}`;
  if (FS === 'ext4' && !hasCommand('mkfs.ext4')) return 'needs mkfs.ext4 (or --fs=host)';
  if (!hasCommand('busybox') || !/static/.test(run('file', ['-L', which('busybox')]))) return 'needs busybox-static';
  if (!tryRun('sh', ['-c', 'perf list 2>/dev/null | grep -q fuse:fuse_request_send'])) return 'perf lists no fuse:fuse_request_send tracepoint';
  return undefined;
}

/** The lower layer: the podman workload's image (bench/startup.ts), and a /dev/null to bind over. */
function makeLower(dir: string, work: string): void {
  run('tar', ['-xf', makeImageTar(work), '-C', dir]);
  writeFileSync(join(dir, 'dev/null'), '');
}

function loop(mnt: string, n: number, prefix: string): void {
  run('chroot', [mnt, '/bin/sh', '-c', `i=0; while [ $i -lt ${n} ]; do echo $i > /tmp/${prefix}$i; cat /data/blob > /dev/null; i=$((i+1)); done`]);
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** One mount of `daemon` with its upper layer under `layers`: warm-up, then N traced iterations. */
async function measure(daemon: Daemon, ovlfs: string, lower: string, layers: string, round: number): Promise<Sample> {
  const cleanup = new Cleanup();
  try {
    const base = join(layers, `${daemon}-${round}`);
    const [upper, wd, mnt] = ['upper', 'work', 'merged'].map((d) => join(base, d));
    for (const d of [upper, wd, mnt]) mkdirSync(d, { recursive: true });
    // As containers/storage passes them (the empty option included).
    const opts = `lowerdir=${lower},upperdir=${upper},workdir=${wd},,volatile`;
    const child =
      daemon === 'ovlfs'
        ? spawn(process.execPath, [ovlfs, '-f', '-o', opts, mnt], { stdio: 'ignore', env: { ...process.env, OVLFS_SPARE: '0' } })
        : spawn('fuse-overlayfs', ['-f', '-o', opts, mnt], { stdio: 'ignore' });
    cleanup.add(`stop ${daemon}`, () => child.kill());
    waitMounted(mnt);
    cleanup.add(`unmount ${mnt}`, () => umount(mnt));
    run('mount', ['--bind', '/dev/null', join(mnt, 'dev/null')]);
    cleanup.add('unbind /dev/null', () => umount(join(mnt, 'dev/null')));
    loop(mnt, WARMUP, 'w');

    const data = join(base, 'perf.data');
    const perf = spawn('perf', ['record', '-q', '-a', '-e', 'fuse:fuse_request_send', '-e', 'fuse:fuse_request_end', '-o', data], { stdio: 'ignore' });
    cleanup.add('stop perf', () => perf.kill('SIGINT'));
    await new Promise((r) => setTimeout(r, 500)); // perf has its events open
    const t0 = process.hrtime.bigint();
    loop(mnt, N, 'f');
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
    perf.kill('SIGINT');
    await exited(perf);
    return { ...parse(run('perf', ['script', '-i', data])), wallUs };
  } finally {
    cleanup.runAll();
  }
}

const EVENT = /\[(\d+)\]\s+(\d+\.\d+):\s+fuse:fuse_request_(send|end): connection (\d+) req (\d+)(?: opcode \d+ \(FUSE_(\w+)\))?/;

/** Pairs each request's send with its end, on the connection that carried the most requests (the loop's). */
function parse(script: string): Omit<Sample, 'wallUs'> {
  const events = script.split('\n').flatMap((line) => {
    const m = EVENT.exec(line);
    return m === null ? [] : [{ cpu: m[1]!, us: Number(m[2]) * 1e6, send: m[3] === 'send', conn: m[4]!, req: m[5]!, op: m[6] }];
  });
  const count = new Map<string, number>();
  for (const e of events) count.set(e.conn, (count.get(e.conn) ?? 0) + 1);
  const conn = [...count].sort((a, b) => b[1] - a[1])[0]?.[0];
  const pending = new Map<string, { cpu: string; us: number; op: string }>();
  const same = new Map<string, number[]>();
  const other = new Map<string, number[]>();
  for (const e of events) {
    if (e.conn !== conn) continue;
    if (e.send) {
      pending.set(e.req, { cpu: e.cpu, us: e.us, op: e.op ?? '?' });
      continue;
    }
    const s = pending.get(e.req);
    if (s === undefined) continue;
    pending.delete(e.req);
    const into = s.cpu === e.cpu ? same : other;
    (into.get(s.op) ?? into.set(s.op, []).get(s.op)!).push(e.us - s.us);
  }
  return { same, other };
}

interface Row {
  requestsPerIteration: number;
  sameCpuMedianUs: number | null;
  otherCpuMedianUs: number | null;
  otherCpuShare: number;
}

function summarize(samples: Sample[]): { rows: Record<string, Row>; wallUsPerIteration: number; waitedUsPerIteration: number } {
  const ops = new Set(samples.flatMap((s) => [...s.same.keys(), ...s.other.keys()]));
  const rows: Record<string, Row> = {};
  let waited = 0;
  for (const op of ops) {
    const same = samples.flatMap((s) => s.same.get(op) ?? []);
    const other = samples.flatMap((s) => s.other.get(op) ?? []);
    const n = same.length + other.length;
    rows[op] = {
      requestsPerIteration: n / (N * samples.length),
      sameCpuMedianUs: same.length > 0 ? median(same) : null,
      otherCpuMedianUs: other.length > 0 ? median(other) : null,
      otherCpuShare: other.length / n,
    };
    if (!BACKGROUND.has(op)) waited += [...same, ...other].reduce((a, b) => a + b, 0);
  }
  return { rows, wallUsPerIteration: median(samples.map((s) => s.wallUs / N)), waitedUsPerIteration: waited / (N * samples.length) };
}

const fmt = (x: number | null): string => (x === null ? '-' : x.toFixed(0));

async function main(): Promise<void> {
  const why = skipReason();
  if (why !== undefined) {
    console.log(`request-latency: skipped: ${why}`);
    return;
  }
  const cleanup = new Cleanup();
  try {
    const work = tempDir(cleanup, 'latency');
    const ovlfs = buildOvlfs(join(work, 'build'));
    const lower = join(work, 'lower');
    mkdirSync(lower);
    makeLower(lower, work);
    const layers = FS === 'ext4' ? loopFs(cleanup, 'ext4', 2) : work;
    const samples: Record<Daemon, Sample[]> = { ovlfs: [], 'fuse-overlayfs': [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const d of (r % 2 === 0 ? ['ovlfs', 'fuse-overlayfs'] : ['fuse-overlayfs', 'ovlfs']) as Daemon[]) samples[d].push(await measure(d, ovlfs, lower, layers, r));
    }
    const result = { ovlfs: summarize(samples.ovlfs), 'fuse-overlayfs': summarize(samples['fuse-overlayfs']) };
    console.log(`${N} iterations x ${ROUNDS} rounds, upper layers on ${FS === 'ext4' ? 'a fresh ext4' : 'the temp directory'}; latency in µs (median), same CPU / other CPU, and the share answered on the other CPU`);
    console.log(`${'request'.padEnd(10)} ${'ovlfs: n/iter'.padStart(13)} ${'same'.padStart(6)} ${'other'.padStart(6)} ${'share'.padStart(6)}   ${'fuse-overlayfs: n/iter'.padStart(22)} ${'same'.padStart(6)} ${'other'.padStart(6)} ${'share'.padStart(6)}`);
    const ops = new Set([...Object.keys(result.ovlfs.rows), ...Object.keys(result['fuse-overlayfs'].rows)]);
    for (const op of [...ops].sort()) {
      const a = result.ovlfs.rows[op];
      const b = result['fuse-overlayfs'].rows[op];
      const cols = (r: Row | undefined): string => (r === undefined ? '-'.padStart(13) + ' '.repeat(21) : `${r.requestsPerIteration.toFixed(2).padStart(13)} ${fmt(r.sameCpuMedianUs).padStart(6)} ${fmt(r.otherCpuMedianUs).padStart(6)} ${(r.otherCpuShare * 100).toFixed(0).padStart(5)}%`);
      console.log(`${op.padEnd(10)} ${cols(a)}   ${' '.repeat(9)}${cols(b)}`);
    }
    for (const d of ['ovlfs', 'fuse-overlayfs'] as Daemon[]) {
      console.log(`${d}: ${result[d].wallUsPerIteration.toFixed(0)} µs an iteration, of which ${result[d].waitedUsPerIteration.toFixed(0)} µs waiting for replies`);
    }
    const ratio = result.ovlfs.wallUsPerIteration / result['fuse-overlayfs'].wallUsPerIteration;
    console.log(`ovlfs / fuse-overlayfs: ${ratio.toFixed(2)}x wall`);
    writeFileSync(join(ROOT, 'bench/results/request-latency.json'), `${JSON.stringify({ date: new Date().toISOString(), iterations: N, rounds: ROUNDS, upperFs: FS, ...result, wallRatio: ratio }, null, 1)}\n`);
  } finally {
    cleanup.runAll();
  }
}

await main();
