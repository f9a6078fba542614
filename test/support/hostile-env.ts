// The hostile suite's harness (test/hostile/): scratch directories that clean up after themselves, the
// kernel overlay and the ovlfs mount (the CLI daemon, as users run it) over copies of the same layers,
// the library over a third copy, and one way to ask each of them the same question and get an errno.
//
// Everything a test makes lives in its own scratch directory; every mount, loop and dm device is undone
// in t.after() hooks, which run even when the test fails.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

import { openOverlay, type OverlayWithFs } from '../../src/index.js';
import { AT_FDCWD, lsetxattr, mknodat } from '../../src/sys/index.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'src/cli/main.ts');
export const TSX = import.meta.resolve('tsx');

/** A whole-number knob from the environment, with the CI default. */
export function knob(name: string, fallback: number): number {
  const v = process.env[name];
  const n = v === undefined || v === '' ? NaN : Number(v);
  return Number.isFinite(n) ? n : fallback;
}

export function has(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

let rootReason: string | undefined | null = null;

/**
 * Why the root-only cases cannot run here (undefined when they can): root, /dev/fuse, python3 and a
 * working `mount -t overlay`. Printed once, so a skip always says why.
 */
export function cannotMount(): string | undefined {
  if (rootReason !== null) return rootReason;
  rootReason = probeMounts();
  if (rootReason !== undefined) process.stdout.write(`# skipping hostile mount cases: ${rootReason}\n`);
  return rootReason;
}

function probeMounts(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (mount -t overlay, /dev/fuse, trusted.* xattrs)';
  if (!fs.existsSync('/dev/fuse')) return 'needs /dev/fuse';
  if (!has('python3')) return 'needs python3';
  const probe = fs.mkdtempSync(join(tmpdir(), 'ovlfs-hostile-probe-'));
  try {
    for (const d of ['l', 'u', 'w', 'm']) fs.mkdirSync(join(probe, d));
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${probe}/l,upperdir=${probe}/u,workdir=${probe}/w`, `${probe}/m`], { encoding: 'utf8' });
    if (r.status !== 0) return `the kernel overlay cannot be mounted here: ${r.stderr.trim()}`;
    spawnSync('umount', [`${probe}/m`]);
    return undefined;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

/** Prints why and returns it, for `{ skip: need(...) }`; false when nothing is missing. */
export function needPrograms(...programs: string[]): string | false {
  const missing = programs.filter((p) => !has(p));
  if (missing.length === 0) return false;
  const why = `${missing.join(', ')} not installed`;
  process.stdout.write(`# skipping: ${why}\n`);
  return why;
}

// --- mounts ---------------------------------------------------------------------------------------------

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function mountPoints(): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => unescapeMount(l.split(' ')[4] ?? '')).filter((m) => m !== '');
}

export function isMounted(mnt: string): boolean {
  return mountPoints().includes(mnt);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (!alive(pid)) return true;
  return !alive(pid);
}

/**
 * A scratch directory for one test. Its t.after hook detaches whatever is still mounted below it
 * (deepest first) before removing it, so a failed test never leaves a mount or deletes through one.
 */
export function scratch(t: TestContext, name: string): string {
  const dir = fs.mkdtempSync(join(tmpdir(), `ovlfs-hostile-${name}-`));
  t.after(() => {
    const below = mountPoints().filter((m) => m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
    for (const m of below) spawnSync('umount', ['-l', m], { stdio: 'ignore', timeout: 10_000 });
    if (mountPoints().some((m) => m.startsWith(`${dir}/`))) {
      process.stdout.write(`# leaving ${dir} in place: still mounted below it\n`);
      return;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

export function run(cmd: string, args: string[], timeout = 60_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  return r;
}

export function must(cmd: string, args: string[], timeout = 60_000): string {
  const r = run(cmd, args, timeout);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Mounts the kernel overlay; unmounted in t.after. */
export function kernelMount(t: TestContext, options: string, mnt: string): void {
  fs.mkdirSync(mnt, { recursive: true });
  must('mount', ['-t', 'overlay', 'overlay', '-o', options, mnt]);
  t.after(() => {
    if (isMounted(mnt) && run('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt], { stdio: 'ignore' });
  });
}

export function kernelUmount(mnt: string): void {
  must('umount', [mnt]);
}

export interface Daemon {
  pid: number;
  mnt: string;
  log: string;
  /** umount(8), then waits for the daemon to exit; throws (with the log) if it does not. */
  umount(): Promise<void>;
  /** The daemon's log, for failure messages. */
  logTail(): string;
}

/**
 * Starts `ovlfs mount -o OPTIONS MNT`: by default the CLI as users run it, daemonized (it returns once
 * the mount is live); with `foreground`, `ovlfs mount --foreground` spawned directly, which serves from
 * the same code in one process instead of two (cheaper, for tests that mount many times).
 * t.after unmounts it and makes sure the serving process is gone (SIGKILL as a last resort).
 */
export async function ovlfsMount(t: TestContext, options: string, mnt: string, log = `${mnt}.log`, opts: { foreground?: boolean } = {}): Promise<Daemon> {
  fs.mkdirSync(mnt, { recursive: true });
  const pidfile = `${log}.pid`;
  fs.rmSync(pidfile, { force: true });
  const logTail = (): string => {
    try {
      return `\n--- daemon log ---\n${fs.readFileSync(log, 'utf8').split('\n').slice(-30).join('\n')}`;
    } catch {
      return '';
    }
  };
  let pid = NaN;
  let failure = '';
  if (opts.foreground) {
    const out = fs.openSync(log, 'a');
    const child = spawn(process.execPath, ['--import', TSX, CLI, 'mount', '--foreground', '-o', options, '--pidfile', pidfile, mnt], { cwd: ROOT, detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    let exited = false;
    child.once('exit', () => (exited = true));
    for (const end = Date.now() + 60_000; Date.now() < end && !exited && !(fs.existsSync(pidfile) && isMounted(mnt)); ) await sleep(20);
    pid = child.pid ?? NaN;
    child.unref();
    if (exited || !isMounted(mnt)) failure = exited ? `exit ${String(child.exitCode)}` : 'not mounted after 60 s';
  } else {
    const r = spawnSync(process.execPath, ['--import', TSX, CLI, 'mount', '-o', options, '--pidfile', pidfile, '--log', log, mnt], {
      encoding: 'utf8', timeout: 60_000, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    pid = fs.existsSync(pidfile) ? Number(fs.readFileSync(pidfile, 'utf8').trim()) : NaN;
    if (r.status !== 0 || !Number.isInteger(pid) || !isMounted(mnt)) failure = r.error?.message ?? `exit ${String(r.status)}: ${r.stderr.trim()}`;
  }
  if (failure !== '') {
    if (Number.isInteger(pid)) kill(pid);
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt], { stdio: 'ignore' });
    throw new Error(`ovlfs mount failed (${failure})${logTail()}`);
  }
  const daemon: Daemon = {
    pid, mnt, log, logTail,
    async umount() {
      const u = run('umount', [mnt], 20_000);
      if (u.status !== 0) throw new Error(`umount ${mnt} failed: ${u.stderr.trim()}${logTail()}`);
      if (!(await waitGone(pid, 15_000))) throw new Error(`daemon ${pid} still running 15 s after umount${logTail()}`);
    },
  };
  t.after(async () => {
    if (isMounted(mnt)) spawnSync('umount', [mnt], { stdio: 'ignore', timeout: 20_000 });
    if (!(await waitGone(pid, 10_000))) kill(pid);
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt], { stdio: 'ignore' });
    await waitGone(pid, 5_000);
  });
  return daemon;
}

export function kill(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

/** The library over one copy; closed in t.after. */
export function library(t: TestContext, options: string): OverlayWithFs {
  const overlay = openOverlay(options);
  t.after(() => overlay.close());
  return overlay;
}

// --- the same question to every candidate ------------------------------------------------------------

/** The sync node:fs surface every candidate offers (the library's facade is a drop-in for it). */
export type SyncFs = typeof fs;

export interface View {
  name: 'kernel' | 'mount' | 'library';
  fs: SyncFs;
  /** An overlay path ('/a/b') as this view's fs takes it. */
  p(path: string): string;
}

export function mountView(name: 'kernel' | 'mount', mnt: string): View {
  return { name, fs, p: (path) => (path === '/' ? mnt : mnt + path) };
}

export function libraryView(overlay: OverlayWithFs): View {
  return { name: 'library', fs: overlay.fs as unknown as SyncFs, p: (path) => path };
}

const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/**
 * 'OK' (with the value, when `show` is given), or the error's code. An error without a code (a
 * TypeError out of the core, say) is reported as such, so it can never pass for an errno.
 */
export function attempt(fn: () => unknown, show?: (v: unknown) => string): string {
  try {
    const v = fn();
    return show ? `OK ${show(v)}` : 'OK';
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
    // libuv has no name for some errnos (ESTALE): Node then says 'Unknown system error -116'.
    const errno = (err as { errno?: unknown }).errno;
    if (typeof errno === 'number' && ERRNO_NAMES.has(-errno)) return ERRNO_NAMES.get(-errno)!;
    const e = err as Error;
    return `THROWN ${e?.name ?? typeof err}: ${e?.message ?? String(err)}`;
  }
}

/** Writes layers for a case into `dir`; returns the overlay option string (without the mount point). */
export type Build = (dir: string) => string;

export interface Trio {
  /** Every candidate that runs here: the kernel and the mount only as root. */
  views: View[];
  kernel?: View;
  mount?: View;
  library: View;
  /** Each candidate's layer directory (its copy of the layers, built by the same function). */
  dirs: Record<View['name'], string>;
  daemon?: Daemon;
  overlay: OverlayWithFs;
}

/**
 * Builds the same layers three times (kernel/, mount/, library/ under `base`), mounts the kernel overlay
 * and the ovlfs mount over the first two (as root) and opens the library over the third.
 */
export async function trio(t: TestContext, base: string, build: Build, withMounts = cannotMount() === undefined): Promise<Trio> {
  const dirs = { kernel: join(base, 'kernel'), mount: join(base, 'mount'), library: join(base, 'library') };
  const views: View[] = [];
  const out: Partial<Trio> = { dirs };
  if (withMounts) {
    const kopts = build(dirs.kernel);
    kernelMount(t, kopts, join(dirs.kernel, 'm'));
    out.kernel = mountView('kernel', join(dirs.kernel, 'm'));
    const oopts = build(dirs.mount);
    out.daemon = await ovlfsMount(t, oopts, join(dirs.mount, 'm'));
    out.mount = mountView('mount', join(dirs.mount, 'm'));
    views.push(out.kernel, out.mount);
  }
  out.overlay = library(t, build(dirs.library));
  out.library = libraryView(out.overlay);
  views.push(out.library);
  out.views = views;
  return out as Trio;
}

/**
 * Asks every view the same question; returns { kernel, mount, library } answers. Pass `expect` for the
 * kernel's documented answer: where the kernel cannot run, the library and mount are held to it.
 */
export function ask(tr: Trio, fn: (v: View) => string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of tr.views) out[v.name] = fn(v);
  return out;
}

/**
 * The candidates must agree with the kernel; where there is no kernel, with `expected` (what the kernel
 * answered when this test was written). The kernel itself is held to `expected` too, so a kernel that
 * changes its mind shows up as such, not as an ovlfs failure.
 */
export function sameAsKernel(answers: Record<string, string>, expected: string, what: string): void {
  const oracle = answers.kernel ?? expected;
  if (answers.kernel !== undefined) assert.equal(answers.kernel, expected, `${what}: the kernel's answer changed (${JSON.stringify(answers)})`);
  for (const [name, got] of Object.entries(answers)) {
    if (name === 'kernel') continue;
    assert.equal(got, oracle, `${what}: ${name} answers ${got}, the kernel ${oracle} (${JSON.stringify(answers)})`);
  }
}

/**
 * Several questions at once: every answer of every candidate is checked against the kernel (or against
 * `expected` where there is no kernel), and one failure lists every mismatch, not just the first.
 */
export function agree(tr: Trio, questions: Array<[what: string, expected: string, fn: (v: View) => string]>): void {
  const bad: string[] = [];
  for (const [what, expected, fn] of questions) {
    const answers = ask(tr, fn);
    try {
      sameAsKernel(answers, expected, what);
    } catch (err) {
      bad.push((err as Error).message.split('\n')[0]!);
    }
  }
  if (bad.length > 0) assert.fail(bad.join('\n'));
}

export type Question = [what: string, expected: string, fn: (v: View) => string];

/**
 * One subtest per question, in order (later questions see what earlier ones changed). A question
 * named in `todo` is a known difference from the kernel: it runs as a todo subtest, so it reports but
 * does not fail the run.
 */
export async function questions(t: TestContext, tr: Trio, list: Question[], todo: Record<string, string> = {}): Promise<void> {
  for (const item of list) {
    await t.test(item[0], { todo: todo[item[0]] }, () => agree(tr, [item]));
  }
}

// --- trees ---------------------------------------------------------------------------------------------

/**
 * A listing of a tree with a hash of each file's content: path, type, mode, size, link target and sha256.
 * Reads through whatever fs it is given (a mount, a layer, the library's facade).
 */
export function treeState(f: SyncFs, root: string, opts: { skip?: (rel: string) => boolean; modes?: boolean } = {}): string[] {
  const out: string[] = [];
  // Names are walked as bytes, so that a name that is not UTF-8 is compared as it is on disk.
  const base = Buffer.from(root === '/' ? '' : root);
  const slash = Buffer.from('/');
  const walk = (rel: Buffer): void => {
    const names = (f.readdirSync(Buffer.concat([base, rel.length === 0 ? slash : Buffer.concat([slash, rel])]), { encoding: 'buffer' }) as Buffer[]).slice().sort(Buffer.compare);
    for (const name of names) {
      const rb = rel.length === 0 ? name : Buffer.concat([rel, slash, name]);
      const r = shownName(rb);
      if (opts.skip?.(r)) continue;
      const p = Buffer.concat([base, slash, rb]);
      const st = f.lstatSync(p);
      const mode = opts.modes === false ? '' : (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.push(`${r}|d|${mode}`);
        walk(rb);
      } else if (st.isSymbolicLink()) {
        out.push(`${r}|l|${shownName(f.readlinkSync(p, { encoding: 'buffer' }) as Buffer)}`);
      } else if (st.isFile()) {
        out.push(`${r}|f|${mode}|${st.size}|${createHash('sha256').update(f.readFileSync(p)).digest('hex').slice(0, 16)}`);
      } else {
        out.push(`${r}|${st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : 's'}|${mode}|${st.rdev}`);
      }
    }
  };
  walk(Buffer.alloc(0));
  return out;
}

/** A name's bytes as text, with bytes that are not UTF-8 shown as \xHH. */
function shownName(b: Buffer): string {
  if (isUtf8(b)) return b.toString('utf8');
  return [...b].map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
}

/** Lines only one side has, for a readable failure. */
export function difference(actual: string[], expected: string[]): string {
  const a = new Set(actual);
  const e = new Set(expected);
  return [...actual.filter((l) => !e.has(l)).map((l) => `+ ${l}`), ...expected.filter((l) => !a.has(l)).map((l) => `- ${l}`)].join('\n');
}

export function sameTree(actual: string[], expected: string[], what: string): void {
  if (actual.join('\n') !== expected.join('\n')) assert.fail(`${what} (+ actual, - expected):\n${difference(actual, expected)}`);
}

/** Sets an xattr on a host path without following a final symlink (no attr package needed). */
export function setXattr(path: string, name: string, value: string | Buffer): void {
  lsetxattr(path, name, Buffer.from(value));
}

let python: string | undefined;

/** The python3 interpreter itself, not a version manager's shell shim (which costs seconds a call on a busy machine). */
export function python3(): string {
  python ??= run('python3', ['-c', 'import sys; print(sys.executable)']).stdout.trim() || 'python3';
  return python;
}

/** mknod(2) on a host path (Node has none; the project's system-call module has): 'OK' or the errno's code. */
export function mknod(path: string, type: 'c' | 'b' | 'p', major = 0, minor = 0, mode = 0o644): string {
  const kind = type === 'c' ? 0o020000 : type === 'b' ? 0o060000 : 0o010000;
  return attempt(() => mknodat(AT_FDCWD, path, kind | mode, (major << 8) | minor));
}

/** A child process that keeps running after the test thread blocks: for daemons the test must not wait on. */
export function background(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ReturnType<typeof spawn> {
  return spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Processes (other than `self`) that hold /dev/fuse open. */
export function fuseHolders(self: number[] = []): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number)) {
    if (self.includes(pid)) continue;
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === '/dev/fuse') {
          out.push(pid);
          break;
        }
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}
