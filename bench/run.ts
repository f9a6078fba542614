// The benchmark suite: `npm run bench` for the full run that docs/benchmarks.md shows,
// `npm run bench -- --quick` for a short one (under two minutes). Options:
//   --quick            smaller sizes and fewer repetitions; writes bench/results/quick.json, leaves docs alone
//   --only=a,b         run only these workloads (small, large, readdir, churn, copyup, job, layers, memory, parallel, stall,
//                      forget, seq, rebind, under-load, profile)
//   --big              under-load at the sizes (300 MiB files, 200k files walked) instead of 64 MiB / 20k;
//                      parallel, stall, forget and seq (the mount under load) likewise: 10 s per client count,
//                      1 GiB copy-up and sequential file, 200k entries
//   --peers=a,b        run only these peers (raw is always kept: it is the baseline)
//   --docs             regenerate docs/benchmarks.md from this run even when quick
//   --merge            keep the other workloads' results already in the results file (with --only)
//   --pinned           run everything on CPU 0 (taskset), the suite and the FUSE daemons it starts alike,
//                      since cross-CPU wakeups dominate FUSE latency on small virtual machines; writes pinned.json
import { execSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';

import type { Row } from './lib/harness.js';
import { ROOT, makePeers, probe } from './lib/peers.js';
import { nowMs } from './lib/stats.js';
import { Cleanup } from './lib/sys.js';
import { memoryGrowth } from './memory.js';
import { profileAll, type ProfileResult } from './profile.js';
import { rebindBench, type RebindResult } from './rebind.js';
import { underLoadBench, type UnderLoadResult } from './under-load.js';
import { writeReport } from './report.js';
import { churn, copyUp, largeFile, layerCount, readdirSizes, realJob, smallFiles, type Ctx } from './workloads.js';
import { forgetAndFind, parallelClients, sequential, statDuringCopyUp } from './load.js';

export interface Results {
  meta: {
    date: string;
    mode: 'quick' | 'full';
    node: string;
    kernel: string;
    cpu: string;
    cores: number;
    memGiB: number;
    load: string;
    versions: Record<string, string>;
    peers: { id: string; label: string; unavailable?: string }[];
    seconds: number;
  };
  rows: Row[];
  rebind?: RebindResult;
  underLoad?: UnderLoadResult;
  profile?: ProfileResult[];
}

const WORKLOADS: Record<string, (ctx: Ctx) => Promise<Row[]>> = {
  small: smallFiles,
  large: largeFile,
  readdir: readdirSizes,
  copyup: copyUp,
  job: realJob,
  layers: layerCount,
  memory: memoryGrowth,
  churn,
  // The mount under load (bench/load.ts): ovlfs mount, fuse-overlayfs and the kernel overlay side by side.
  parallel: parallelClients,
  stall: statDuringCopyUp,
  forget: forgetAndFind,
  seq: sequential,
};

function version(cmd: string): string {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0]!;
  } catch {
    return 'not installed';
  }
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--pinned') && process.env['OVLFS_BENCH_PINNED'] === undefined) {
    // Daemons started by the suite inherit the affinity, so client and servers share the CPU.
    const r = spawnSync('taskset', ['-c', '0', process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...argv], {
      stdio: 'inherit',
      env: { ...process.env, OVLFS_BENCH_PINNED: '1' },
    });
    process.exit(r.status ?? 1);
  }
  const pinned = argv.includes('--pinned');
  const quick = argv.includes('--quick');
  const arg = (name: string): string[] | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3).split(',');
  const only = arg('only');
  const peerIds = arg('peers');
  const t0 = nowMs();
  const log = (m: string): void => void process.stderr.write(`${m}\n`);

  let peers = makePeers();
  if (peerIds) peers = peers.filter((p) => p.id === 'raw' || p.id === 'kernel' || peerIds.includes(p.id));
  for (const p of peers) await probe(p);
  for (const p of peers) if (p.unavailable) log(`peer ${p.id}: ${p.unavailable}`);

  const results: Results = {
    meta: {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      node: process.version,
      kernel: release(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memGiB: Math.round(totalmem() / 2 ** 30),
      load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
      versions: {
        'fuse-overlayfs': version('fuse-overlayfs --version 2>&1 | grep -m1 "^fuse-overlayfs"'),
        '@zenfs/core': pkgVersion('@zenfs/core'),
        unionfs: pkgVersion('unionfs'),
        memfs: pkgVersion('memfs'),
        git: version('git --version'),
        'mkfs.xfs': version('mkfs.xfs -V'),
      },
      peers: peers.map((p) => ({ id: p.id, label: p.label, unavailable: p.unavailable })),
      seconds: 0,
    },
    rows: [],
  };

  // ZenFS syncs its vnodes (atime) in the background after reads; once a workload has removed its
  // layers, those syncs fail with nobody awaiting them. Log them; they must not end the run.
  let stray = 0;
  process.on('unhandledRejection', (e) => {
    if (stray++ < 3) log(`  (background error, ignored: ${(e as Error).message})`);
  });
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, pinned ? 'pinned.json' : quick ? 'quick.json' : 'full.json');
  let baseSeconds = 0;
  if (argv.includes('--merge') && existsSync(file)) {
    const old = JSON.parse(readFileSync(file, 'utf8')) as Results;
    const ran = (w: string): boolean => !only || only.includes(w);
    results.rows = old.rows.filter((r) => !ran(r.workload));
    baseSeconds = old.meta.seconds;
    if (!ran('rebind')) results.rebind = old.rebind;
    if (!ran('under-load')) results.underLoad = old.underLoad;
    if (!ran('profile')) results.profile = old.profile;
  }
  // Written after every workload, so an interrupted run keeps what it measured.
  const save = (): void => {
    results.meta.seconds = baseSeconds + Math.round((nowMs() - t0) / 1000);
    writeFileSync(file, `${JSON.stringify(results, null, 1)}\n`);
  };
  const cleanup = new Cleanup();
  const onSignal = (): void => {
    cleanup.runAll();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const ctx: Ctx = { quick, peers, cleanup, log };
    for (const [name, fn] of Object.entries(WORKLOADS)) {
      if (only && !only.includes(name)) continue;
      const t = nowMs();
      log(`${name}…`);
      const mark = cleanup.mark;
      try {
        results.rows = results.rows.filter((r) => r.workload !== name);
        results.rows.push(...(await fn(ctx)));
        save();
      } catch (e) {
        log(`  ${name} failed: ${(e as Error).stack}`);
      } finally {
        cleanup.runFrom(mark);
      }
      log(`  ${name}: ${((nowMs() - t) / 1000).toFixed(1)} s`);
    }
    if (!only || only.includes('rebind')) {
      log('rebind…');
      results.rebind = await rebindBench({ quick, log });
      save();
    }
    if (!only || only.includes('under-load')) {
      log('under-load…');
      results.underLoad = await underLoadBench({ big: argv.includes('--big'), log });
      save();
    }
    if (!only || only.includes('profile')) {
      log('profile…');
      results.profile = await profileAll({ quick, peers, cleanup, log });
    }
  } finally {
    cleanup.runAll();
  }
  save();
  log(`results: ${file} (${results.meta.seconds} s)`);
  if ((!quick && !pinned) || argv.includes('--docs')) {
    const page = writeReport(results);
    log(`report: ${page}`);
  }
}

await main();
