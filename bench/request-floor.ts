// What one FUSE request costs, from the floor up: a Node process that answers STATFS and GETXATTR from
// canned replies and does nothing else (bench/lib/null-fuse.ts, through Node's fs binding and through
// koffi), ovlfs's serving loop over a file system that answers the same, the ovlfs daemon, and
// fuse-overlayfs, in the same run. `node --import tsx bench/request-floor.ts [--rounds=N] [--n=REQUESTS]` (as root, with fuse3,
// fuse-overlayfs and python3). Requests from a client looping on one: statfs(2) of the mount (STATFS,
// which no kernel cache answers); getxattr(2) of a name the mount's root does not have (GETXATTR,
// ENODATA: the kernel asks for security.capability so before every exec); and the same with a process
// started between requests (a fifth as many), which leaves the daemon's caches cold as a container's
// commands do. Each figure is the median of the rounds (servers interleaved): the client's time per
// request, and the daemon's CPU per request (user + system, all its threads, from /proc), with the ratio
// to fuse-overlayfs.
// Writes bench/results/request-floor.json.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { isMounted } from '../src/mount-table.js';
import { buildOvlfs } from '../test/support/build-ovlfs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 5);
const n = Number(process.argv.find((a) => a.startsWith('--n='))?.slice(4) ?? 20_000);
const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mount(2) of FUSE file systems)';
  for (const p of ['fuse-overlayfs', 'fusermount3', 'python3']) {
    if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) return `${p} is not installed`;
  }
  return undefined;
}

/** A server: how to start it in the foreground, and whether it is an overlay (takes layers). */
interface Server {
  argv: string[];
  env?: NodeJS.ProcessEnv;
  overlay: boolean;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, all threads
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

type Op = 'statfs' | 'getxattr' | 'getxattr, exec between';
const OPS: Op[] = ['statfs', 'getxattr', 'getxattr, exec between'];
const TITLES: Record<Op, string> = {
  statfs: 'STATFS (statfs(2) of the mount), back to back',
  getxattr: 'GETXATTR, ENODATA (getxattr(2) of a name the root lacks), back to back',
  'getxattr, exec between': 'GETXATTR, ENODATA, with a process started between requests (/bin/true) as in a container (client time includes it)',
};

/** `count` requests of `op` on `mnt` from a python3 client; its time per request in µs. */
function client(op: Op, mnt: string, count: number): number {
  const call = op === 'statfs' ? `os.statvfs(${JSON.stringify(mnt)})` : `os.getxattr(${JSON.stringify(mnt)}, 'user.none')`;
  // Between requests, a process start (as a container's shell runs its commands) leaves the daemon's
  // caches and TLB cold for the next one.
  const between = op === 'getxattr, exec between' ? "os.waitpid(os.posix_spawn('/bin/true', ['true'], {}), 0)" : 'pass';
  const script = `import os, time
def one():
    try: ${call}
    except OSError: pass
    ${between}
t = time.perf_counter()
for i in range(${count}): one()
print((time.perf_counter() - t) * 1e6 / ${count})`;
  const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`client failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

async function waitMounted(mnt: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (isMounted(mnt)) return;
    if (child.exitCode !== null) throw new Error(`the server for ${mnt} exited (${child.exitCode})`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${mnt} was not mounted within 10 s`);
}

async function main(): Promise<void> {
  const reason = skipReason();
  if (reason !== undefined) {
    process.stdout.write(`request-floor bench skipped: ${reason}\n`);
    return;
  }
  const base = join(ROOT, 'bench/tmp/request-floor');
  rmSync(base, { recursive: true, force: true });
  mkdirSync(join(base, 'lower'), { recursive: true });
  const ovlfs = buildOvlfs(join(base, 'build'));
  const tsx = ['--import', 'tsx', join(ROOT, 'bench/lib/null-fuse.ts')];
  const servers: Record<string, Server> = {
    'Node, nothing else (fs binding)': { argv: [process.execPath, ...tsx, 'node-fs'], overlay: false },
    'Node, nothing else (koffi)': { argv: [process.execPath, ...tsx, 'koffi'], overlay: false },
    "ovlfs's serving loop, no overlay": { argv: [process.execPath, ...tsx, 'loop'], overlay: false },
    ovlfs: { argv: [process.execPath, ovlfs, '-f'], env: { ...process.env, OVLFS_SPARE: '0' }, overlay: true },
    'fuse-overlayfs': { argv: ['fuse-overlayfs', '-f'], overlay: true },
  };
  const running: { name: string; mnt: string; child: ChildProcess }[] = [];
  const loadBefore = loadavg().map((x) => x.toFixed(1)).join(' ');
  try {
    let i = 0;
    for (const [name, s] of Object.entries(servers)) {
      const dir = join(base, `s${i++}`);
      const mnt = join(dir, 'mnt');
      for (const d of ['mnt', 'upper', 'work']) mkdirSync(join(dir, d), { recursive: true });
      const opts = s.overlay ? ['-o', `lowerdir=${base}/lower,upperdir=${dir}/upper,workdir=${dir}/work`] : [];
      const child = spawn(s.argv[0]!, [...s.argv.slice(1), ...opts, mnt], { cwd: ROOT, env: s.env ?? process.env, stdio: ['ignore', 'ignore', 'inherit'] });
      running.push({ name, mnt, child });
      await waitMounted(mnt, child);
    }
    const results = Object.fromEntries(OPS.map((op) => [op, {}])) as Record<Op, Record<string, { clientUs: number[]; daemonUs: number[] }>>;
    for (const op of OPS) {
      const count = op === 'getxattr, exec between' ? Math.ceil(n / 5) : n;
      for (const { name, mnt } of running) {
        results[op]![name] = { clientUs: [], daemonUs: [] };
        client(op, mnt, Math.min(2000, count)); // warm-up, not timed
      }
      for (let r = 0; r < rounds; r++) {
        for (const { name, mnt, child } of running) {
          const series = results[op]![name];
          if (series === undefined) continue;
          const before = cpuTicks(child.pid!);
          series.clientUs.push(client(op, mnt, count));
          series.daemonUs.push(((cpuTicks(child.pid!) - before) * TICK_US) / count);
        }
      }
    }
    const out: Record<string, unknown> = { date: new Date().toISOString(), rounds, requests: n, loadBefore, results: {} };
    process.stdout.write(`request floor: ${n} requests a round, medians of ${rounds} rounds, load before ${loadBefore}\n`);
    for (const op of OPS) {
      const byServer = results[op];
      const fo = byServer['fuse-overlayfs']!;
      const foClient = median(fo.clientUs);
      const foDaemon = median(fo.daemonUs);
      process.stdout.write(`${TITLES[op]}\n`);
      const rows: Record<string, unknown> = {};
      for (const [name, s] of Object.entries(byServer)) {
        const c = median(s.clientUs);
        const d = median(s.daemonUs);
        rows[name] = { clientUs: c, daemonUs: d, clientRatio: c / foClient, daemonRatio: d / foDaemon };
        process.stdout.write(`  ${name.padEnd(36)} client ${c.toFixed(1).padStart(6)} µs (${(c / foClient).toFixed(2)}×)   daemon CPU ${d.toFixed(1).padStart(6)} µs (${(d / foDaemon).toFixed(2)}×)\n`);
      }
      (out.results as Record<string, unknown>)[op] = rows;
    }
    writeFileSync(join(ROOT, 'bench/results/request-floor.json'), `${JSON.stringify(out, null, 2)}\n`);
  } finally {
    for (const { mnt, child } of running) {
      if (isMounted(mnt) && spawnSync('fusermount3', ['-u', mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
      child.kill('SIGTERM');
    }
  }
}

await main();
