// SIGKILL at random points of copy-up, rename and whiteout creation, of the ovlfs mount daemon and of a
// process using the library. After each kill, a kernel overlay mounted over the same layers must show a
// consistent tree: each operation of the script either happened or did not, so the tree must be exactly
// the state after some prefix of the script (every file old or new, nothing half-copied, no stray name).
// ovlfs reopening the layers must then see the same tree as the kernel.
//
// Each kill has its own seeded script (which files, which operations, when to kill): a failure names
// the seed, and OVLFS_HOSTILE_SEED replays it (timing still varies from run to run).
//   OVLFS_HOSTILE_KILLS=20   how many kills (default 20; half the daemon, half a library process)
//   OVLFS_HOSTILE_SEED=1     the first seed
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

import {
  cannotMount, isMounted, kernelMount, kill, knob, library, ovlfsMount, ROOT, run, scratch, sleep, treeState, TSX, waitGone,
} from '../support/hostile-env.js';

const KILLS = knob('OVLFS_HOSTILE_KILLS', 20);
const FIRST_SEED = knob('OVLFS_HOSTILE_SEED', 1);
const BIG = 12 * 1024 * 1024;

/** mulberry32: a small seeded PRNG, the same sequence everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Op =
  | { kind: 'append'; path: string; text: string }
  | { kind: 'chmod'; path: string; mode: number }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'unlink'; path: string }
  | { kind: 'rmdir'; path: string };

type Entry = { kind: 'f'; mode: number; data: Buffer } | { kind: 'd'; mode: number };
type Model = Map<string, Entry>;

/** The lower layer: big files (slow copy-ups), small files, directories with a file, empty directories. */
function writeLower(dir: string): Model {
  const model: Model = new Map();
  fs.mkdirSync(dir);
  const rand = prng(12345);
  for (let i = 0; i < 3; i++) {
    const data = Buffer.alloc(BIG);
    for (let j = 0; j < BIG; j += 4) data.writeUInt32LE((rand() * 2 ** 32) >>> 0, j);
    fs.writeFileSync(join(dir, `big${i}`), data);
    model.set(`big${i}`, { kind: 'f', mode: 0o644, data });
  }
  for (let i = 0; i < 6; i++) {
    const data = Buffer.from(`small ${i}\n`);
    fs.writeFileSync(join(dir, `f${i}`), data);
    model.set(`f${i}`, { kind: 'f', mode: 0o644, data });
  }
  for (let i = 0; i < 3; i++) {
    fs.mkdirSync(join(dir, `d${i}`));
    fs.writeFileSync(join(dir, `d${i}`, 'x'), `in d${i}\n`);
    model.set(`d${i}`, { kind: 'd', mode: 0o755 });
    model.set(`d${i}/x`, { kind: 'f', mode: 0o644, data: Buffer.from(`in d${i}\n`) });
    fs.mkdirSync(join(dir, `e${i}`));
    model.set(`e${i}`, { kind: 'd', mode: 0o755 });
  }
  for (const [p, e] of model) fs.chmodSync(join(dir, p), e.mode);
  return model;
}

/** A seeded script of 4 to 6 operations, each valid after the ones before it. */
function script(rand: () => number): Op[] {
  const pick = <T>(xs: T[]): T => xs.splice(Math.floor(rand() * xs.length), 1)[0]!;
  const bigs = ['big0', 'big1', 'big2'];
  const smalls = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5'];
  const dirs = ['d0', 'd1', 'd2'];
  const empties = ['e0', 'e1', 'e2'];
  const ops: Op[] = [];
  const n = 4 + Math.floor(rand() * 3);
  // Start with a copy-up of a big file most of the time: it is the slowest step, where kills land.
  if (rand() < 0.7) ops.push({ kind: 'append', path: pick(bigs), text: 'appended\n' });
  while (ops.length < n) {
    const r = rand();
    if (r < 0.2 && bigs.length > 0) ops.push({ kind: 'append', path: pick(bigs), text: 'appended\n' });
    else if (r < 0.3 && bigs.length > 0) ops.push({ kind: 'chmod', path: pick(bigs), mode: 0o600 });
    else if (r < 0.45 && smalls.length > 0) ops.push({ kind: 'rename', from: pick(smalls), to: `n${ops.length}` });
    else if (r < 0.6 && smalls.length > 1) ops.push({ kind: 'rename', from: pick(smalls), to: pick(smalls) });
    else if (r < 0.75 && smalls.length > 0) ops.push({ kind: 'unlink', path: pick(smalls) });
    else if (r < 0.85 && empties.length > 0) ops.push({ kind: 'rmdir', path: pick(empties) });
    else if (dirs.length > 0) ops.push({ kind: 'rename', from: pick(dirs), to: `r${ops.length}` });
  }
  return ops;
}

function apply(model: Model, op: Op): Model {
  const next: Model = new Map(model);
  switch (op.kind) {
    case 'append': {
      const e = next.get(op.path) as Entry & { kind: 'f' };
      next.set(op.path, { ...e, data: Buffer.concat([e.data, Buffer.from(op.text)]) });
      break;
    }
    case 'chmod':
      next.set(op.path, { ...next.get(op.path)!, mode: op.mode });
      break;
    case 'unlink':
    case 'rmdir':
      next.delete(op.path);
      break;
    case 'rename':
      for (const [p, e] of model) {
        if (p === op.from || p.startsWith(`${op.from}/`)) {
          next.delete(p);
          next.set(op.to + p.slice(op.from.length), e);
        }
      }
      break;
  }
  return next;
}

/** The model as treeState lists a tree, sorted. */
function lines(model: Model): string[] {
  return [...model].map(([p, e]) => e.kind === 'd'
    ? `${p}|d|${e.mode.toString(8)}`
    : `${p}|f|${e.mode.toString(8)}|${e.data.length}|${createHash('sha256').update(e.data).digest('hex').slice(0, 16)}`).sort();
}

const OPS_WORKER = `
const [mode, root, opts, json] = process.argv.slice(1);
let f, P;
if (mode === 'library') {
  const m = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'src/index.ts')).href)});
  f = m.openOverlay(opts).fs;
  P = (p) => '/' + p;
} else {
  f = await import('node:fs');
  P = (p) => root + '/' + p;
}
process.stdout.write('go\\n');
for (const [i, op] of JSON.parse(json).entries()) {
  try {
    if (op.kind === 'append') f.appendFileSync(P(op.path), op.text);
    else if (op.kind === 'chmod') f.chmodSync(P(op.path), op.mode);
    else if (op.kind === 'rename') f.renameSync(P(op.from), P(op.to));
    else if (op.kind === 'unlink') f.unlinkSync(P(op.path));
    else if (op.kind === 'rmdir') f.rmdirSync(P(op.path));
    process.stdout.write('done ' + i + '\\n');
  } catch (e) {
    process.stdout.write('error ' + i + ' ' + (e.code ?? e.message) + '\\n');
    break;
  }
}
process.stdout.write('end\\n');
`;

function startWorker(mode: 'library' | 'mount', root: string, opts: string, ops: Op[]): { child: ChildProcess; out: () => string; started: Promise<void>; exited: Promise<void> } {
  const args = mode === 'library' ? ['--import', TSX] : [];
  const child = spawn(process.execPath, [...args, '--input-type=module', '-e', OPS_WORKER, mode, root, opts, JSON.stringify(ops)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const started = new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (out.includes('go\n')) resolve();
    };
    child.stdout!.on('data', check);
    void exited.then(() => (out.includes('go\n') ? resolve() : reject(new Error(`worker exited before starting: ${out}`))));
  });
  return { child, out: () => out, started, exited };
}

test(`SIGKILL of the daemon and of library processes in copy-up, rename and whiteout creation (${KILLS} kills)`, { skip: cannotMount() }, async (t) => {
  const base = scratch(t, 'sigkill');
  const lower = join(base, 'lower');
  const initial = writeLower(lower);
  const failures: string[] = [];
  const landed = { before: 0, middle: 0, after: 0 };

  for (let k = 0; k < KILLS; k++) {
    const seed = FIRST_SEED + k;
    const rand = prng(seed * 7919);
    const target: 'mount' | 'library' = k % 2 === 0 ? 'mount' : 'library';
    const ops = script(rand);
    const delay = Math.floor(rand() * 150);
    const dir = join(base, `kill${seed}`);
    for (const d of ['u', 'w']) fs.mkdirSync(join(dir, d), { recursive: true });
    const opts = `lowerdir=${lower},upperdir=${dir}/u,workdir=${dir}/w,redirect_dir=on`;
    const states: string[][] = [lines(initial)];
    let model = initial;
    for (const op of ops) states.push(lines((model = apply(model, op))));

    let daemonPid: number | undefined;
    if (target === 'mount') daemonPid = (await ovlfsMount(t, opts, join(dir, 'm'), join(dir, 'log'), { foreground: true })).pid;
    const w = startWorker(target, join(dir, 'm'), opts, ops);
    await w.started;
    await sleep(delay);
    const victim = target === 'mount' ? daemonPid! : w.child.pid!;
    kill(victim);
    if (!(await waitGone(victim, 10_000))) failures.push(`seed ${seed}: pid ${victim} survived SIGKILL`);
    if (target === 'mount') {
      // The connection is gone with the daemon: every request fails (ENOTCONN) and the mount can go.
      if (isMounted(join(dir, 'm')) && run('umount', [join(dir, 'm')]).status !== 0) run('umount', ['-l', join(dir, 'm')]);
    }
    await w.exited;
    const done = (w.out().match(/^done /gm) ?? []).length;
    if (w.out().includes('end\n') && !w.out().includes('error')) landed.after++;
    else if (done === 0) landed.before++;
    else landed.middle++;

    const where = `seed ${seed} (${target}, kill after ${delay} ms, ${done} of ${ops.length} ops reported done: ${ops.map((o) => JSON.stringify(o)).join(' ')})`;
    const kmnt = join(dir, 'k');
    let seen: string[];
    try {
      kernelMount(t, opts, kmnt);
    } catch (err) {
      failures.push(`${where}: the kernel cannot mount the layers: ${(err as Error).message}`);
      continue;
    }
    try {
      seen = treeState(fs, kmnt).sort();
    } finally {
      run('umount', [kmnt]);
    }
    const index = states.findIndex((s) => s.join('\n') === seen.join('\n'));
    if (index < 0) {
      const nearest = states[Math.min(done, states.length - 1)]!;
      const diff = [...seen.filter((l) => !nearest.includes(l)).map((l) => `+ ${l}`), ...nearest.filter((l) => !seen.includes(l)).map((l) => `- ${l}`)];
      failures.push(`${where}: the kernel sees a tree that no prefix of the script makes (vs after ${done} ops):\n  ${diff.join('\n  ')}`);
      continue;
    }
    if (index < done) failures.push(`${where}: ${done} ops were reported done but the tree is the state after ${index}`);
    // ovlfs over the same layers must see what the kernel saw.
    const overlay = library(t, opts);
    const again = treeState(overlay.fs as unknown as typeof fs, '/').sort();
    overlay.close();
    if (again.join('\n') !== seen.join('\n')) failures.push(`${where}: ovlfs reopening the layers sees another tree than the kernel`);
  }
  t.diagnostic(`kills landed: ${landed.before} before the first op finished, ${landed.middle} in the middle, ${landed.after} after the script ended`);
  assert.deepEqual(failures, []);
});
