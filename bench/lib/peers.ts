// The peers: every implementation the suite measures, behind one small synchronous fs surface. A peer
// opens a view of a Stack (lower layers, its own upper and work dir, and a flat copy of the merged tree
// for the peers that have no layers) and the workloads run the same code on every view.
import { spawn, type ChildProcess } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CopyOnWrite, Passthrough, configureSingle, fs as zenFs, type MountConfiguration, type Backend } from '@zenfs/core';
import { Volume, createFsFromVolume } from 'memfs';
import { Union } from 'unionfs';

import { openOverlay } from '../../src/index.js';
import { Cleanup, hasCommand, isMounted, run, tempDir, umount, waitMounted } from './sys.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = join(ROOT, 'src/cli/main.ts');
export const TSX = import.meta.resolve('tsx');

export interface StatLike {
  size: number;
  isDirectory(): boolean;
}

/** The part of node:fs the workloads use, which every peer offers. */
export interface SyncFs {
  statSync(p: string): StatLike;
  lstatSync(p: string): StatLike;
  readFileSync(p: string): Uint8Array | string;
  readdirSync(p: string): unknown[];
  openSync(p: string, flags: string): number;
  readSync(fd: number, buf: Uint8Array, off: number, len: number, pos: number): number;
  writeSync(fd: number, buf: Uint8Array, off: number, len: number, pos: number): number;
  closeSync(fd: number): void;
  fsyncSync(fd: number): void;
  writeFileSync(p: string, data: Uint8Array | string, opts?: { mode?: number }): void;
  mkdirSync(p: string, opts?: { recursive?: boolean; mode?: number }): unknown;
  renameSync(a: string, b: string): void;
  unlinkSync(p: string): void;
  existsSync(p: string): boolean;
}

/** Layers for one peer: lowers top-most first; upper and work are the peer's own. */
export interface Stack {
  lowers: string[];
  upper: string;
  work: string;
  /** A flat copy of the merged tree, for raw fs and memfs. */
  flat: string;
}

export interface View {
  fs: SyncFs;
  /** Prefix that turns an overlay path '/a/b' into a path for `fs`. */
  root: string;
  /** The serving process of a mount, for its memory. */
  pid?: number;
  close(): Promise<void>;
}

export type PeerId = 'raw' | 'kernel' | 'fuse-overlayfs' | 'ovlfs-lib' | 'ovlfs-mount' | 'zenfs' | 'unionfs' | 'memfs';

export interface Peer {
  id: PeerId;
  label: string;
  /** A real mount that any process (git, tar) can use. */
  mount: boolean;
  /** Why the peer cannot run here at all, or undefined. */
  unavailable?: string;
  /** `env`, where a peer takes it: the environment of its daemon (an A/B of a switch read from it). */
  open(stack: Stack, cleanup: Cleanup, env?: NodeJS.ProcessEnv): Promise<View>;
}

const realFs = nodeFs as unknown as SyncFs;

function mountpoint(cleanup: Cleanup): string {
  return tempDir(cleanup, 'mnt');
}

/** Kernel overlay options; relative layer paths (resolved against cwd) keep 128 lowers inside one page. */
function kernelOptions(stack: Stack): { opts: string; cwd: string | undefined } {
  const parent = dirname(stack.lowers[0]!);
  const same = stack.lowers.every((l) => dirname(l) === parent);
  const lowers = same ? stack.lowers.map((l) => relative(parent, l)) : stack.lowers;
  return { opts: `lowerdir=${lowers.join(':')},upperdir=${stack.upper},workdir=${stack.work},redirect_dir=on`, cwd: same ? parent : undefined };
}

function fuseOptions(stack: Stack): string {
  return `lowerdir=${stack.lowers.join(':')},upperdir=${stack.upper},workdir=${stack.work}`;
}

/** A foreground FUSE daemon as our child: its pid is known and it ends when the mount does. */
async function daemonMount(cmd: string, args: string[], mnt: string, cleanup: Cleanup, env?: NodeJS.ProcessEnv): Promise<View> {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  let failed = false;
  child.once('exit', () => (failed = !isMounted(mnt)));
  const end = Date.now() + 30_000;
  while (!isMounted(mnt)) {
    if (failed || Date.now() > end) {
      child.kill();
      throw new Error(`${cmd} did not mount: ${stderr.trim().slice(0, 400)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const mark = cleanup.mark;
  cleanup.add(`umount ${mnt}`, () => umount(mnt));
  return {
    fs: realFs,
    root: mnt,
    pid: child.pid,
    async close() {
      umount(mnt);
      const t = setTimeout(() => child.kill('SIGTERM'), 10_000);
      await exited;
      clearTimeout(t);
      void mark;
    },
  };
}

function rootedNodeFs(root: string): object {
  // unionfs unions fs modules that share one path space; each layer becomes node:fs seen from its dir.
  const twoPaths = new Set(['renameSync', 'linkSync', 'copyFileSync']);
  return new Proxy(nodeFs, {
    get(target, key) {
      const v: unknown = Reflect.get(target, key);
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if (typeof args[0] === 'string') args[0] = root + args[0];
        if (twoPaths.has(String(key)) && typeof args[1] === 'string') args[1] = root + args[1];
        return fn.apply(target, args);
      };
    },
  });
}

function copyIntoMemfs(src: string, vol: InstanceType<typeof Volume>): void {
  const walk = (rel: string): void => {
    for (const e of nodeFs.readdirSync(join(src, rel), { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) {
        vol.mkdirSync(r, { recursive: true });
        walk(r);
      } else if (e.isFile()) vol.writeFileSync(r, nodeFs.readFileSync(join(src, r)));
    }
  };
  vol.mkdirSync('/', { recursive: true });
  walk('');
}

let zenOpen = false;

export function makePeers(): Peer[] {
  const fuseOk = hasCommand('fuse-overlayfs') ? undefined : 'fuse-overlayfs is not installed (apt-get install fuse-overlayfs)';
  const rootOk = process.getuid?.() === 0 ? undefined : 'needs root to mount';
  return [
    {
      id: 'raw',
      label: 'raw fs (flat copy)',
      mount: true,
      async open(stack) {
        return { fs: realFs, root: stack.flat, async close() {} };
      },
    },
    {
      id: 'kernel',
      label: 'kernel overlay',
      mount: true,
      unavailable: rootOk,
      async open(stack, cleanup) {
        const mnt = mountpoint(cleanup);
        const { opts, cwd } = kernelOptions(stack);
        run('mount', ['-t', 'overlay', 'overlay', '-o', opts, mnt], { cwd });
        cleanup.add(`umount ${mnt}`, () => umount(mnt));
        return { fs: realFs, root: mnt, async close() { umount(mnt); } };
      },
    },
    {
      id: 'fuse-overlayfs',
      label: 'fuse-overlayfs',
      mount: true,
      unavailable: rootOk ?? fuseOk,
      async open(stack, cleanup) {
        const mnt = mountpoint(cleanup);
        return daemonMount('fuse-overlayfs', ['-f', '-o', fuseOptions(stack), mnt], mnt, cleanup);
      },
    },
    {
      id: 'ovlfs-lib',
      label: 'ovlfs library',
      mount: false,
      async open(stack) {
        const ov = openOverlay({ lowerdir: stack.lowers, upperdir: stack.upper, workdir: stack.work, redirect_dir: 'on' });
        return { fs: ov.fs as unknown as SyncFs, root: '', async close() { ov.close(); } };
      },
    },
    {
      id: 'ovlfs-mount',
      label: 'ovlfs mount',
      mount: true,
      unavailable: rootOk ?? ovlfsMountProblem(),
      async open(stack, cleanup, env) {
        const mnt = mountpoint(cleanup);
        const args = [...ovlfsExecArgv(), '--import', TSX, CLI, 'mount', '-f', '-o', `${fuseOptions(stack)},redirect_dir=on`, mnt];
        return daemonMount(process.execPath, args, mnt, cleanup, env);
      },
    },
    {
      id: 'zenfs',
      label: 'ZenFS CopyOnWrite/Passthrough',
      mount: false,
      async open(stack) {
        if (zenOpen) throw new Error('one ZenFS view at a time (its VFS is global)');
        // CopyOnWrite has one readable layer: stack it, each lower the writable side over the ones below.
        const pass = (prefix: string): MountConfiguration<Backend> => ({ backend: Passthrough, fs: nodeFs, prefix }) as MountConfiguration<Backend>;
        const lowers = [...stack.lowers].reverse();
        let conf: MountConfiguration<Backend> = pass(lowers[0]!);
        for (const l of lowers.slice(1)) conf = { backend: CopyOnWrite, readable: conf, writable: pass(l) } as MountConfiguration<Backend>;
        await configureSingle({ backend: CopyOnWrite, readable: conf, writable: pass(stack.upper) } as MountConfiguration<Backend>);
        zenOpen = true;
        return { fs: zenFs as unknown as SyncFs, root: '', async close() { zenOpen = false; } };
      },
    },
    {
      id: 'unionfs',
      label: 'unionfs over node fs',
      mount: false,
      async open(stack) {
        const u = new Union();
        for (const l of [...stack.lowers].reverse()) u.use(rootedNodeFs(l) as typeof nodeFs);
        u.use(rootedNodeFs(stack.upper) as typeof nodeFs);
        return { fs: u as unknown as SyncFs, root: '', async close() {} };
      },
    },
    {
      id: 'memfs',
      label: 'memfs (flat, in memory)',
      mount: false,
      async open(stack) {
        const vol = new Volume();
        copyIntoMemfs(stack.flat, vol);
        return { fs: createFsFromVolume(vol) as unknown as SyncFs, root: '', async close() { vol.reset(); } };
      },
    },
  ];
}

/** Extra node flags for the ovlfs mount daemon (e.g. --cpu-prof from the profiler). */
let mountExecArgv: string[] = [];
export function setOvlfsMountExecArgv(args: string[]): void {
  mountExecArgv = args;
}
function ovlfsExecArgv(): string[] {
  return mountExecArgv;
}

function ovlfsMountProblem(): string | undefined {
  if (!nodeFs.existsSync(CLI)) return 'not yet available (src/cli/main.ts does not exist)';
  return undefined;
}

/** Tries the ovlfs mount once on a tiny stack; a peer that cannot mount is marked unavailable. */
export async function probe(peer: Peer): Promise<void> {
  if (peer.unavailable !== undefined || !peer.mount || peer.id === 'raw') return;
  const cleanup = new Cleanup();
  try {
    const d = tempDir(cleanup, 'probe');
    for (const x of ['l0', 'l1', 'u', 'w', 'flat']) nodeFs.mkdirSync(join(d, x));
    nodeFs.writeFileSync(join(d, 'l1', 'f'), 'x');
    const v = await peer.open({ lowers: [join(d, 'l0'), join(d, 'l1')], upper: join(d, 'u'), work: join(d, 'w'), flat: join(d, 'flat') }, cleanup);
    try {
      if (v.fs.readFileSync(`${v.root}/f`).toString() !== 'x') throw new Error('reads wrong data');
    } finally {
      await v.close();
    }
  } catch (e) {
    peer.unavailable = `${peer.id === 'ovlfs-mount' ? 'not yet available: ' : ''}${(e as Error).message.split('\n')[0]}`;
  } finally {
    cleanup.runAll();
  }
}

export function waitForMount(path: string): void {
  waitMounted(path);
}
