// The two sides of the differential test behind one interface: the kernel overlay (driven by a chrooted
// python3 child) and ovlfs (driven in-process through overlay.fs). Kernel-vs-kernel validates the harness.
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { constants, type Stats } from 'node:fs';
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
}

const CHILD = fileURLToPath(new URL('./kernel-child.py', import.meta.url));

export function mountKernel(dirs: LayerDirs, opts: MountOptions): void {
  const o = [
    `lowerdir=${dirs.lowers.join(':')}`,
    `upperdir=${dirs.upper}`,
    `workdir=${dirs.work}`,
    // Explicit, so the module's compiled-in defaults cannot change what is being compared.
    `redirect_dir=${opts.redirectDir ? 'on' : 'off'}`,
    `metacopy=${opts.metacopy ? 'on' : 'off'}`,
    'index=off',
  ].join(',');
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', o, dirs.mnt], { stdio: 'pipe' });
}

export function umount(mnt: string): void {
  try {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
  } catch {
    // A handle still open in a dying child can keep it busy for a moment; detach it lazily.
    execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
  }
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

export type OpenOverlay = (options: {
  lowerdir: string[];
  upperdir: string;
  workdir: string;
  redirect_dir?: boolean;
  metacopy?: boolean;
}) => OverlayLike;

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
