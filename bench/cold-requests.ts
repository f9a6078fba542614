// What the overlay's part of a request costs when the daemon runs cold, as it does between a
// container's commands: each call below follows a wake-up from a blocking read while another process
// started /bin/true, so the caches hold someone else's work (the harm a daemon in JavaScript feels most:
// Node's C++ bindings and V8's runtime calls cost tens of µs there, plain JavaScript a few).
//
// One iteration is the requests of the container workload in bench/startup.ts (write a new file, start
// a program, read a 1 MiB file), made on the file system the mount serves (createOverlayFs: the node
// table, OverlayFs, the core, the layers) with the protocol's decoders and encoders around each, but no
// kernel connection. The baseline, in the same run, is the system calls each request makes, made
// directly. `--against=DIR` also runs another checkout's tree (say `git worktree add DIR REV`) in the
// same process, alternating with this one request by request, so that both see the same machine.
//
//   node --import tsx bench/cold-requests.ts [--n=ITERATIONS] [--warm] [--warmup=ITERATIONS] [--against=DIR]
//
// Prints, per request, the median µs of each and their ratio. Writes bench/results/cold-requests.json.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as sys from '../src/sys/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const N = Number(arg('n') ?? 300);
const warm = process.argv.includes('--warm');
const against = arg('against');
/** Warm iterations first, before any is timed (to see what the optimizing compiler changes). */
const warmup = Number(arg('warmup') ?? 0);

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_DIRECTORY } = fs.constants;
const CAP = 'security.capability';

const dir = fs.mkdtempSync(join(tmpdir(), 'ovlfs-cold-'));
let waker: ReturnType<typeof spawn> | undefined;
try {
  await main();
} finally {
  waker?.kill();
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Something to wait for that another process sends after it started a program. */
function coldWaits(): () => void {
  if (warm) return () => {};
  const req = join(dir, 'wake'), ack = join(dir, 'woken');
  for (const f of [req, ack]) if (spawnSync('mkfifo', [f]).status !== 0) throw new Error(`mkfifo ${f} failed`);
  waker = spawn('sh', ['-c', `while read -r x; do /bin/true; echo x; done < '${req}' > '${ack}'`], { stdio: 'ignore' });
  const tx = fs.openSync(req, 'w');
  const rx = fs.openSync(ack, 'r');
  const line = Buffer.alloc(2);
  return () => {
    fs.writeSync(tx, 'x\n');
    fs.readSync(rx, line, 0, 2, null);
  };
}

/** A lower layer with what the workload touches, and an empty upper and work directory per tree. */
function layers(tree: number): { lowerdir: string; upperdir: string; workdir: string } {
  const lower = join(dir, 'lower');
  if (!fs.existsSync(lower)) {
    for (const d of ['bin', 'data', 'tmp']) fs.mkdirSync(join(lower, d), { recursive: true });
    fs.copyFileSync('/bin/true', join(lower, 'bin', 'busybox'));
    fs.writeFileSync(join(lower, 'data', 'blob'), Buffer.alloc(1 << 20, 7));
  }
  const upperdir = join(dir, `upper${tree}`), workdir = join(dir, `work${tree}`);
  fs.mkdirSync(upperdir);
  fs.mkdirSync(workdir);
  return { lowerdir: lower, upperdir, workdir };
}

type Step = (i: number) => void;

async function treeSteps(root: string, tree: number): Promise<Map<string, Step>> {
  const { createOverlayFs } = await import(join(root, 'src/fuse/overlay-fs.ts'));
  const P = await import(join(root, 'src/fuse/protocol.ts'));
  const { lowerdir, upperdir, workdir } = layers(tree);
  const quiet = { invalInode() {}, invalEntry() {}, flush() {} };
  const rfs = createOverlayFs({ overlay: { lowerdir: [lowerdir], upperdir, workdir } }, quiet);
  const c = { unique: 1n, uid: 0, gid: 0, pid: 1 };
  const t = { entry: 1, attr: 1 };
  const id = (parent: number, name: string): number => rfs.lookup(c, parent, name).nodeid;
  const tmp = id(1, 'tmp'), bin = id(1, 'bin'), data = id(1, 'data');
  const exe = id(bin, 'busybox'), blob = id(data, 'blob');
  // The names as the kernel sends them, read by the protocol's decoder.
  const req = Buffer.alloc(512);
  const name = (s: string): string => {
    req.write(`${s}\0`, 40);
    return P.readName(req, 40, req.length)[0];
  };
  let created: { entry: { nodeid: number }; open: { fh: number } } | undefined;
  let exeFh = 0, blobFh = 0;
  return new Map<string, Step>([
    ['GETATTR the directory', () => P.encodeAttrOut(5n, rfs.getattr(c, tmp, undefined), t)],
    ['LOOKUP a new name', (i) => P.encodeEntryOut(5n, rfs.lookup(c, tmp, name(`f${i}`)), t)],
    ['CREATE it', (i) => {
      const r = rfs.create(c, tmp, name(`f${i}`), 0o100644, O_WRONLY | O_CREAT | O_TRUNC, 0o22);
      P.encodeCreateOut(5n, r.entry, r.open, t);
      created = r;
    }],
    ['GETXATTR before its write', () => rfs.getxattr(c, created!.entry.nodeid, name(CAP)) ?? P.encodeError(5n, 61)],
    ['RELEASE it', () => {
      rfs.release(c, created!.entry.nodeid, created!.open.fh, 0);
      P.allocReply(5n, 0);
    }],
    ['OPEN the program', () => {
      const r = rfs.open(c, exe, O_RDONLY);
      P.encodeOpenOut(5n, r);
      exeFh = r.fh;
    }],
    ['GETXATTR before exec', () => rfs.getxattr(c, exe, name(CAP)) ?? P.encodeError(5n, 61)],
    ['OPEN the 1 MiB file', () => {
      const r = rfs.open(c, blob, O_RDONLY);
      P.encodeOpenOut(5n, r);
      blobFh = r.fh;
    }],
    ['RELEASE it ', () => {
      rfs.release(c, blob, blobFh, 0);
      P.allocReply(5n, 0);
    }],
    ['RELEASE the program', () => {
      rfs.release(c, exe, exeFh, 0);
      P.allocReply(5n, 0);
    }],
  ]);
}

/** The same requests' system calls, made directly on the layers' directories. */
function rawSteps(): Map<string, Step> {
  const { lowerdir, upperdir } = layers(99);
  fs.mkdirSync(join(upperdir, 'tmp'));
  const at = (p: string): number => sys.openPath(p, O_DIRECTORY | O_RDONLY);
  const upperTmp = at(join(upperdir, 'tmp')), lowerTmp = at(join(lowerdir, 'tmp'));
  const lowerBin = at(join(lowerdir, 'bin')), lowerData = at(join(lowerdir, 'data'));
  const upperRoot = at(upperdir);
  let fd = -1, exeFd = -1, blobFd = -1;
  return new Map<string, Step>([
    ['GETATTR the directory', () => sys.statx(upperRoot, 'tmp')],
    ['LOOKUP a new name', (i) => {
      sys.tryStatx(upperTmp, `f${i}`);
      sys.tryStatx(lowerTmp, `f${i}`);
    }],
    ['CREATE it', (i) => {
      fd = sys.openat2(upperTmp, `f${i}`, O_WRONLY | O_CREAT | O_EXCL, { mode: 0o644 });
      sys.statx(upperTmp, `f${i}`);
    }],
    ['GETXATTR before its write', (i) => sys.getxattrAt(upperTmp, `f${i}`, CAP)],
    ['RELEASE it', () => fs.closeSync(fd)],
    ['OPEN the program', () => { exeFd = sys.openat2(lowerBin, 'busybox', O_RDONLY); }],
    ['GETXATTR before exec', () => sys.getxattrAt(lowerBin, 'busybox', CAP)],
    ['OPEN the 1 MiB file', () => { blobFd = sys.openat2(lowerData, 'blob', O_RDONLY); }],
    ['RELEASE it ', () => fs.closeSync(blobFd)],
    ['RELEASE the program', () => fs.closeSync(exeFd)],
  ]);
}

/** A checkout's revision as git names it (its directory's name when it is no checkout). */
function revisionOf(tree: string): string {
  const r = spawnSync('git', ['-C', tree, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? `at ${r.stdout.trim()}` : tree.split('/').pop()!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function main(): Promise<void> {
  const runs: Array<[string, Map<string, Step>]> = [['system calls', rawSteps()], ['this tree', await treeSteps(ROOT, 0)]];
  if (against !== undefined) runs.push([revisionOf(resolve(against)), await treeSteps(resolve(against), 1)]);
  for (let i = 0; i < warmup; i++) for (const [, steps] of runs) for (const [, step] of steps) step(N + i);
  const wait = coldWaits();
  const times = runs.map(() => new Map<string, number[]>());
  for (let i = 0; i < N; i++) {
    runs.forEach(([, steps], r) => {
      for (const [op, step] of steps) {
        wait();
        const t0 = process.hrtime.bigint();
        step(i);
        const us = Number(process.hrtime.bigint() - t0) / 1000;
        const list = times[r]!.get(op) ?? [];
        list.push(us);
        times[r]!.set(op, list);
      }
    });
    // The new files go now and then, so that the directories stay small.
    if (i % 50 === 49) {
      for (const d of fs.readdirSync(dir)) {
        if (!d.startsWith('upper')) continue;
        const t = join(dir, d, 'tmp');
        if (fs.existsSync(t)) for (const f of fs.readdirSync(t)) fs.rmSync(join(t, f));
      }
    }
  }
  const ops = [...runs[0]![1].keys()];
  const medians = times.map((m) => ops.map((op) => median(m.get(op)!)));
  const head = runs.map(([name]) => name.slice(-14).padStart(14)).join('');
  console.log(`${warm ? 'warm' : 'cold'}, ${N} iterations, median µs per request\n${'request'.padEnd(26)}${head}   tree / calls${against !== undefined ? '   tree / against' : ''}`);
  const row = (label: string, v: number[]): void => {
    const ratios = `${(v[1]! / v[0]!).toFixed(2).padStart(13)}${against !== undefined ? (v[1]! / v[2]!).toFixed(3).padStart(17) : ''}`;
    console.log(`${label.padEnd(26)}${v.map((x) => x.toFixed(1).padStart(14)).join('')}${ratios}`);
  };
  ops.forEach((op, k) => row(op.trim(), medians.map((m) => m[k]!)));
  const sums = medians.map((m) => m.reduce((a, b) => a + b, 0));
  row('one iteration', sums);
  const out = {
    date: new Date().toISOString(),
    mode: warm ? 'warm' : 'cold',
    iterations: N,
    columns: runs.map(([name]) => name),
    requests: Object.fromEntries(ops.map((op, k) => [op.trim(), medians.map((m) => +m[k]!.toFixed(1))])),
    iteration: sums.map((s) => +s.toFixed(1)),
  };
  fs.mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  fs.writeFileSync(join(ROOT, 'bench/results/cold-requests.json'), `${JSON.stringify(out, null, 2)}\n`);
}
