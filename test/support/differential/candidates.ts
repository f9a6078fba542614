// The two sides of the differential test behind one interface: the kernel overlay (driven by a chrooted
// python3 child) and ovlfs, either in-process through overlay.fs or as a FUSE mount driven by the very same
// chrooted python3 child. Kernel-vs-kernel validates the harness.
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { constants, existsSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { LayerDirs } from './layers.js';
import type { Op, Result } from './ops.js';

export type TreeEntry = Entry | { path: string; error: string };

/** One name in a walk: lstat facts, plus the target or the content. */
export interface Entry {
  path: string;
  type: string;
  mode: number;
  nlink: number;
  size?: number;
  mtime: number | 'recent';
  /** The first path in walk order with the same st_dev/st_ino: equal labels mean one file. */
  ino: string;
  target?: string;
  content?: string;
  /** Set when the directory could not be listed. */
  list?: string;
}

export interface Candidate {
  readonly name: string;
  apply(op: Op): Promise<Result>;
  walk(): Promise<TreeEntry[]>;
  close(): Promise<void>;
}

export interface MountOptions {
  redirectDir: boolean;
  metacopy: boolean;
  /** The library candidate's node_cache= (the kernel has no such option): a small one evicts all the time. */
  nodeCache?: number;
}

const CHILD = fileURLToPath(new URL('./kernel-child.py', import.meta.url));

/** The same mount options for the kernel and for the ovlfs mount. */
function mountOptions(dirs: LayerDirs, opts: MountOptions): string {
  return [
    `lowerdir=${dirs.lowers.join(':')}`,
    `upperdir=${dirs.upper}`,
    `workdir=${dirs.work}`,
    // Explicit, so the module's compiled-in defaults cannot change what is being compared.
    `redirect_dir=${opts.redirectDir ? 'on' : 'off'}`,
    `metacopy=${opts.metacopy ? 'on' : 'off'}`,
    'index=off',
  ].join(',');
}

export function mountKernel(dirs: LayerDirs, opts: MountOptions): void {
  const o = mountOptions(dirs, opts);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', o, dirs.mnt], { stdio: 'pipe' });
  liveKernel.add(dirs.mnt);
}

export function umount(mnt: string): void {
  try {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
  } catch {
    // A handle still open in a dying child can keep it busy for a moment; detach it lazily.
    execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
  }
  liveKernel.delete(mnt);
}

// Every mount this process made and has not unmounted yet, so that a run cut short (an exception past the
// finally blocks, SIGINT, SIGTERM from a CI timeout) still leaves no mount and no ovlfs daemon behind.
const liveKernel = new Set<string>();
/** ovlfs FUSE mounts: mount point -> daemon pid. */
const liveFuse = new Map<string, number>();
function cleanUpMounts(): void {
  for (const [mnt, pid] of liveFuse) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
    spawnSync('umount', ['-l', mnt], { stdio: 'ignore', timeout: 5000 });
  }
  liveFuse.clear();
  for (const mnt of liveKernel) spawnSync('umount', ['-l', mnt], { stdio: 'ignore', timeout: 5000 });
  liveKernel.clear();
}
process.on('exit', cleanUpMounts);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    cleanUpMounts();
    process.kill(process.pid, sig);
  });
}

/** The kernel overlay mounted at `mnt`, driven by a python3 child chrooted into it. */
export class KernelCandidate implements Candidate {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffer = '';
  private readonly waiting: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  private exited: Error | null = null;

  constructor(readonly name: string, readonly mnt: string) {
    this.child = spawn('python3', [CHILD, mnt, String(process.umask())], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    this.child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    this.child.stdout.on('data', (d: Buffer) => {
      this.buffer += d.toString('utf8');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.waiting.shift()?.resolve(line);
      }
    });
    this.child.on('exit', (code) => {
      this.exited = new Error(`kernel child exited (${String(code)}): ${stderr}`);
      for (const w of this.waiting.splice(0)) w.reject(this.exited);
    });
  }

  private request(req: object): Promise<string> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  async apply(op: Op): Promise<Result> {
    return JSON.parse(await this.request(op)) as Result;
  }

  /** Kills the child outright: for a child stuck in a syscall on a mount that no longer answers. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  async walk(): Promise<TreeEntry[]> {
    const r = JSON.parse(await this.request({ op: 'walk' })) as Result;
    if (!r.ok) throw new Error(`kernel walk failed: ${r.code}`);
    return r.value as TreeEntry[];
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    await done;
  }
}

/** The subset of node:fs that the differential test drives. */
export interface FsLike {
  openSync(path: string, flags: number, mode?: number): number;
  closeSync(fd: number): void;
  readSync(fd: number, buffer: Buffer, offset: number, length: number, position: number | null): number;
  writeSync(fd: number, buffer: Buffer, offset: number, length: number, position: number | null): number;
  fstatSync(fd: number): Stats;
  statSync(path: string): Stats;
  lstatSync(path: string): Stats;
  readdirSync(path: string): string[];
  mkdirSync(path: string, mode: number): unknown;
  rmdirSync(path: string): void;
  unlinkSync(path: string): void;
  renameSync(from: string, to: string): void;
  symlinkSync(target: string, path: string): void;
  readlinkSync(path: string): string;
  linkSync(from: string, to: string): void;
  truncateSync(path: string, len: number): void;
  ftruncateSync(fd: number, len: number): void;
  chmodSync(path: string, mode: number): void;
  utimesSync(path: string, atime: number, mtime: number): void;
}

export interface OverlayLike {
  fs: FsLike;
  close(): void;
}

const RECENT = 1_500_000_000;
const S_IFMT = 0o170000;
const TYPES: Record<number, string> = {
  0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink', 0o020000: 'chr', 0o060000: 'blk', 0o010000: 'fifo',
  0o140000: 'sock',
};

function summary(st: Stats): Omit<Entry, 'path' | 'ino'> {
  const type = TYPES[st.mode & S_IFMT] ?? 'unknown';
  const out: Omit<Entry, 'path' | 'ino'> = { type, mode: st.mode & 0o7777, nlink: st.nlink, mtime: 0 };
  if (type !== 'dir') out.size = st.size;
  const secs = Math.floor(st.mtimeMs / 1000);
  out.mtime = secs < RECENT ? secs : 'recent';
  // Same key order as the python side, so JSON texts compare equal.
  return type === 'dir'
    ? { type, mode: out.mode, nlink: out.nlink, mtime: out.mtime }
    : { type, mode: out.mode, nlink: out.nlink, size: st.size, mtime: out.mtime };
}

function content(data: Buffer): string {
  if (data.length <= 256) return data.toString('latin1');
  return `<${data.length} bytes sha1=${createHash('sha1').update(data).digest('hex').slice(0, 12)}>`;
}

function codeOf(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code === 'EOPNOTSUPP' ? 'ENOTSUP' : code;
    return `THROW ${e.name}: ${e.message}`;
  }
  return `THROW ${String(e)}`;
}

class NoHandle extends Error {}

/** ovlfs in-process: every op is a sync call on overlay.fs. */
export class OvlfsCandidate implements Candidate {
  readonly name = 'ovlfs';
  private readonly fds = new Map<number, number>();

  constructor(private readonly overlay: OverlayLike) {}

  private fd(h: number): number {
    const fd = this.fds.get(h);
    if (fd === undefined) throw new NoHandle();
    return fd;
  }

  private readAll(path: string): Buffer {
    const fs = this.overlay.fs;
    const fd = fs.openSync(path, 0);
    try {
      const chunks: Buffer[] = [];
      for (;;) {
        const b = Buffer.alloc(65536);
        const n = fs.readSync(fd, b, 0, b.length, null);
        if (n === 0) return Buffer.concat(chunks);
        chunks.push(b.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  private read(fd: number, len: number, pos: number | null): string {
    const b = Buffer.alloc(len);
    const n = this.overlay.fs.readSync(fd, b, 0, len, pos);
    return content(b.subarray(0, n));
  }

  private run(op: Op): unknown {
    const fs = this.overlay.fs;
    switch (op.op) {
      case 'stat': return summary(fs.statSync(op.path));
      case 'lstat': return summary(fs.lstatSync(op.path));
      case 'readdir': return [...fs.readdirSync(op.path)].sort();
      case 'readlink': return fs.readlinkSync(op.path);
      case 'readFile': return content(this.readAll(op.path));
      case 'unlink': fs.unlinkSync(op.path); return null;
      case 'rmdir': fs.rmdirSync(op.path); return null;
      case 'mkdir': fs.mkdirSync(op.path, op.mode); return null;
      case 'chmod': fs.chmodSync(op.path, op.mode); return null;
      case 'truncate': fs.truncateSync(op.path, op.len); return null;
      case 'utime': fs.utimesSync(op.path, op.atime, op.mtime); return null;
      case 'writeFile': {
        // open + write + close, exactly as the python side does it, rather than writeFileSync's own path.
        const fd = fs.openSync(op.path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o666);
        try {
          const b = Buffer.from(op.data, 'latin1');
          fs.writeSync(fd, b, 0, b.length, null);
        } finally {
          fs.closeSync(fd);
        }
        return null;
      }
      case 'rename': fs.renameSync(op.from, op.to); return null;
      case 'link': fs.linkSync(op.from, op.to); return null;
      case 'sameIno': {
        const a = fs.lstatSync(op.from);
        const b = fs.lstatSync(op.to);
        return a.ino === b.ino && a.dev === b.dev;
      }
      case 'symlink': fs.symlinkSync(op.target, op.path); return null;
      case 'open':
        this.fds.set(op.h, fs.openSync(op.path, op.flags, op.mode));
        return null;
      case 'close': {
        const fd = this.fd(op.h);
        this.fds.delete(op.h);
        fs.closeSync(fd);
        return null;
      }
      case 'fstat': return summary(fs.fstatSync(this.fd(op.h)));
      case 'fstatIno': {
        const a = fs.fstatSync(this.fd(op.h));
        const b = fs.lstatSync(op.path);
        return a.ino === b.ino && a.dev === b.dev;
      }
      case 'read': return this.read(this.fd(op.h), op.len, null);
      case 'pread': return this.read(this.fd(op.h), op.len, op.pos);
      case 'write': {
        const b = Buffer.from(op.data, 'latin1');
        return fs.writeSync(this.fd(op.h), b, 0, b.length, null);
      }
      case 'ftruncate': fs.ftruncateSync(this.fd(op.h), op.len); return null;
    }
  }

  apply(op: Op): Promise<Result> {
    try {
      return Promise.resolve({ ok: true, value: this.run(op) });
    } catch (e) {
      return Promise.resolve(e instanceof NoHandle ? { ok: false, code: 'NOHANDLE' } : { ok: false, code: codeOf(e) });
    }
  }

  walk(): Promise<TreeEntry[]> {
    const fs = this.overlay.fs;
    const out: TreeEntry[] = [];
    const first = new Map<string, string>();
    const visit = (path: string): void => {
      let st: Stats;
      try {
        st = fs.lstatSync(path);
      } catch (err) {
        out.push({ path, error: codeOf(err) });
        return;
      }
      const key = `${st.dev}:${st.ino}`;
      if (!first.has(key)) first.set(key, path);
      const e: Entry = { ...summary(st), path, ino: first.get(key) ?? path };
      if (e.type === 'symlink') e.target = fs.readlinkSync(path);
      else if (e.type === 'file') {
        try {
          e.content = content(this.readAll(path));
        } catch (err) {
          e.content = `error ${codeOf(err)}`;
        }
      }
      out.push(e);
      if (e.type === 'dir') {
        let names: string[] = [];
        try {
          names = [...fs.readdirSync(path)].sort();
        } catch (err) {
          e.list = `error ${codeOf(err)}`;
        }
        for (const name of names) visit(`${path === '/' ? '' : path}/${name}`);
      }
    };
    visit('/');
    return Promise.resolve(out);
  }

  close(): Promise<void> {
    for (const fd of this.fds.values()) {
      try {
        this.overlay.fs.closeSync(fd);
      } catch {
        // already gone; close() below releases everything anyway
      }
    }
    this.fds.clear();
    this.overlay.close();
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------------------
// ovlfs as a FUSE mount: the `ovlfs mount` command over copy B, driven by the same chrooted python3 child as
// the kernel, so that every op is a real syscall through the kernel's FUSE client (its attribute and entry
// caches included) into the daemon.

const CLI = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
/** How long one op may take on the FUSE mount before the daemon is presumed hung and killed. */
const OP_TIMEOUT_MS = 20_000;

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function isMounted(mnt: string): boolean {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length > 4 && unescapeMount(f[4] as string) === mnt) return true;
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (!alive(pid)) return true;
  return !alive(pid);
}

/**
 * Mounts ovlfs over `dirs` with the CLI (which returns once the mount is live) and returns the daemon's pid.
 * Throws with the CLI's stderr and the daemon's log when the mount does not come up.
 */
export function mountOvlfsFuse(dirs: LayerDirs, opts: MountOptions, log: string): number {
  const pidfile = `${log}.pid`;
  const o = mountOptions(dirs, opts);
  const r = spawnSync(process.execPath, ['--import', TSX, CLI, 'mount', '-o', o, '--pidfile', pidfile, '--log', log, dirs.mnt], {
    encoding: 'utf8',
    timeout: 30_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8').trim()) : NaN;
  if (r.status !== 0 || !Number.isInteger(pid) || !isMounted(dirs.mnt)) {
    if (Number.isInteger(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    if (isMounted(dirs.mnt)) spawnSync('umount', ['-l', dirs.mnt], { stdio: 'ignore', timeout: 5000 });
    const why = r.error ? r.error.message : `exit ${String(r.status)}: ${r.stderr.trim()}`;
    throw new Error(`ovlfs mount failed (${why})${logTail(log)}`);
  }
  liveFuse.set(dirs.mnt, pid);
  return pid;
}

/**
 * Why a daemon may outlive its unmount: where its threads wait, and any other mount namespace that still
 * holds a copy of the mount (the connection lives until the last copy goes, which is not the daemon's fault).
 */
function lingering(pid: number, mnt: string): string {
  const out: string[] = [];
  try {
    const waits = readdirSync(`/proc/${pid}/task`).map((t) => {
      try {
        return readFileSync(`/proc/${pid}/task/${t}/wchan`, 'utf8').trim() || '-';
      } catch {
        return '?';
      }
    });
    out.push(`threads waiting in: ${[...new Set(waits)].join(', ')}`);
  } catch {
    // gone meanwhile
  }
  const mine = readlinkOr('/proc/self/ns/mnt');
  const holders = new Map<string, string>();
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const ns = readlinkOr(`/proc/${p}/ns/mnt`);
    if (ns === '' || ns === mine || holders.has(ns)) continue;
    try {
      if (readFileSync(`/proc/${p}/mountinfo`, 'utf8').split('\n').some((l) => unescapeMount(l.split(' ')[4] ?? '') === mnt)) {
        holders.set(ns, `pid ${p} (${readFileSync(`/proc/${p}/comm`, 'utf8').trim()})`);
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  out.push(holders.size > 0 ? `the mount lives on in other mount namespaces, e.g. of ${[...holders.values()].join(', ')}` : 'no other mount namespace holds the mount');
  return out.join('; ');
}

function readlinkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

function logTail(log: string): string {
  if (!existsSync(log)) return '';
  const text = readFileSync(log, 'utf8').trim();
  return text === '' ? '' : `\n  daemon log:\n${text.split('\n').slice(-15).map((l) => `    ${l}`).join('\n')}`;
}

/**
 * Unmounts an ovlfs FUSE mount and waits for its daemon to exit, so that everything it wrote is on disk.
 * Whatever happens, it leaves neither the mount nor the daemon behind; it says what was unclean by throwing.
 */
export async function umountOvlfsFuse(mnt: string, pid: number, log: string): Promise<void> {
  const trouble: string[] = [];
  const r = spawnSync('umount', [mnt], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) {
    trouble.push(`umount ${r.error ? `hung (${r.error.message})` : `failed: ${r.stderr.trim()}`}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
    spawnSync('umount', ['-l', mnt], { stdio: 'ignore', timeout: 5000 });
  }
  if (!(await waitGone(pid, 10_000))) {
    trouble.push(`daemon ${pid} still running 10 s after the unmount (${lingering(pid, mnt)}); killed`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
    await waitGone(pid, 5000);
  }
  if (isMounted(mnt)) {
    trouble.push('still mounted after all that');
    spawnSync('umount', ['-l', mnt], { stdio: 'ignore', timeout: 5000 });
  }
  liveFuse.delete(mnt);
  if (trouble.length > 0) throw new Error(`unclean ovlfs unmount of ${mnt}: ${trouble.join('; ')}${logTail(log)}`);
}

/** ovlfs mounted over copy B with FUSE, driven by the same chrooted python3 child as the kernel. */
export class FuseCandidate implements Candidate {
  readonly name = 'ovlfs-fuse';
  private readonly child: KernelCandidate;
  private mounted = true;
  private hung: string | null = null;

  private constructor(readonly mnt: string, private readonly pid: number, private readonly log: string) {
    this.child = new KernelCandidate('ovlfs-fuse', mnt);
  }

  /** Mounts; the caller must close() the candidate, which unmounts, whatever happens next. */
  static start(dirs: LayerDirs, opts: MountOptions, scratch: string): FuseCandidate {
    const log = join(scratch, 'ovlfs-fuse.log');
    return new FuseCandidate(dirs.mnt, mountOvlfsFuse(dirs, opts, log), log);
  }

  private async timed<T>(what: string, p: Promise<T>): Promise<T> {
    if (this.hung !== null) throw new Error(this.hung);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A request the daemon never answers: kill it, so the mount answers ENOTCONN and the child returns.
        this.hung = `ovlfs-fuse: ${what} got no answer in ${OP_TIMEOUT_MS} ms; the daemon was killed${logTail(this.log)}`;
        try {
          process.kill(this.pid, 'SIGKILL');
        } catch {
          // gone already
        }
        reject(new Error(this.hung));
      }, OP_TIMEOUT_MS);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  apply(op: Op): Promise<Result> {
    return this.timed(`op ${JSON.stringify(op)}`, this.child.apply(op));
  }

  walk(): Promise<TreeEntry[]> {
    return this.timed('walk', this.child.walk());
  }

  /** Ends the child, then unmounts and waits for the daemon. Safe to call twice. */
  async close(): Promise<void> {
    if (!this.mounted) return;
    this.mounted = false;
    if (this.hung !== null) this.child.kill();
    let timer: NodeJS.Timeout | undefined;
    try {
      const stuck = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.child.kill();
          resolve();
        }, 10_000);
      });
      await Promise.race([this.child.close(), stuck]);
    } finally {
      clearTimeout(timer);
      await umountOvlfsFuse(this.mnt, this.pid, this.log);
    }
  }
}
