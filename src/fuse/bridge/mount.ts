// Mounting and unmounting a FUSE file system, served by a worker thread or by the calling thread.
//
// Why a worker: the request loop (server.ts) blocks in a synchronous read of /dev/fuse, because that costs
// the fewest wakeups per request. A thread blocked there runs no JavaScript, so it could never run a
// SIGINT handler, answer an unmount() call, or await anything. The main thread therefore keeps signals
// and umount(8); the worker mounts (mount(2)) and keeps the loop. Unmounting ends the worker by itself:
// the kernel fails the worker's pending read with ENODEV, and the loop returns.
//
// Why the calling thread (`serveHere`): a process that exists to serve one mount (the ovlfs daemon) pays
// for a worker with a second Node environment to start, about as long again as the process's own start,
// at every container start. Served here, the loop runs in slices (serveFuseInSlices) and gives the
// thread back to the event loop between them, so signals and umount(8) still get their turn.
//
// Why a module path: a worker shares no objects with its parent, and the file system (the overlay core,
// with its open files and caches) must live on the thread that serves it. So the caller names a module
// and an export (a RawFileSystemFactory) and passes an argument that survives structured clone (options,
// layer paths); the serving thread imports the module and builds the file system there. Served on the
// calling thread, the factory itself may be given instead: the ovlfs daemon runs as one bundle with the
// core in it, and has no module to load. For a thread that wants to serve in place, with no signal
// handling, server.ts's serveFuse(fd, filesystem) is the primitive.
import { closeSync, openSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';

import { isMounted } from '../../mount-table.js';
import { childProcess, workerThreads } from '../../sys/lazy-builtins.js';
import { fuseMountData, type FuseMountFlags } from '../mount-syscall.js';
import type { FuseNotifier, RawFileSystemFactory } from './raw-fs.js';
import type { ServeOptions } from './server.js';

export interface MountOptions extends ServeOptions, FuseMountFlags {
  /** Unmount on SIGINT/SIGTERM, then die of the same signal. Off by default: a library should not own signals. */
  handleSignals?: boolean;
  /**
   * Mount through this fusermount3 (setuid, from fuse3) instead of mount(8): how a user without root
   * mounts, on a mount point the user owns. It also unmounts through it (fusermount3 -u).
   */
  fusermount?: string;
  /**
   * A /dev/fuse fd that the caller has mounted at the mount point already: it is served as it is. The
   * ovlfs command mounts before it starts the daemon, so that it can return while the daemon starts.
   */
  mounted?: number;
  /**
   * Serve on this thread, in slices between turns of its event loop (serveFuseInSlices), instead of a
   * worker: for a process that does little else. It owns SIGALRM while it serves. Off by default.
   */
  serveHere?: boolean;
}

export interface FileSystemModule {
  /** Path or file URL of the module holding the factory. Relative paths resolve from process.cwd(). */
  module: string | URL;
  /** The export's name (a RawFileSystemFactory); default 'createFileSystem'. */
  export?: string;
  /** Handed to the factory; must survive structured clone. */
  arg?: unknown;
}

/** Served on this thread (serveHere), the factory itself: nothing to load, and nothing to clone. */
export interface FileSystemFactory {
  factory: RawFileSystemFactory;
  arg?: unknown;
}

export interface MountFuseArgs {
  mountpoint: string;
  /** The subtype: the mount shows as fuse.<fsname>. Default 'ovlfs'. */
  fsname?: string;
  /** What /proc/mounts shows as the source. Default the fsname. */
  source?: string;
  /** A factory (FileSystemFactory) only with serveHere: a worker must load its own. */
  filesystem: FileSystemModule | FileSystemFactory;
  options?: MountOptions;
}

export interface FuseMount {
  readonly mountpoint: string;
  /** Drop the kernel's cached attributes and data of a node (see FuseNotifier). */
  notifyInvalInode: FuseNotifier['invalInode'];
  /** Drop the kernel's cached lookup of `name` in `parent` (see FuseNotifier). */
  notifyInvalEntry: FuseNotifier['invalEntry'];
  /** Settles when serving has ended: after unmount, or if the filesystem failed. */
  readonly done: Promise<void>;
  /** umount, or umount -l if the mount is busy, then waits for the worker to end. */
  unmount(): Promise<void>;
}

/** Messages between this thread and the worker (worker.ts). */
export interface WorkerInit {
  fd: number;
  module: string;
  exportName: string;
  arg: unknown;
  serve: ServeOptions;
  /** mount(2) arguments, when the worker mounts (root, no fusermount3) once the file system is built. */
  mount?: { source: string; target: string; fstype: string; options: string };
}
export type WorkerMessage = { type: 'ready' } | { type: 'error'; message: string };

function run(cmd: string, args: string[], stdio: Array<'ignore' | 'pipe' | number>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = childProcess().spawn(cmd, args, { stdio });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolveRun({ status, stderr: stderr.trim() }));
  });
}


/** Where the file system is built and served: a worker, or this thread. */
interface ServingHost {
  /** Settles once the file system is built (and mounted, when init.mount asks): serving may begin. */
  readonly ready: Promise<void>;
  /** Begins serving; once ready. */
  go(): void;
  /** Settles when serving has ended: after unmount, or if the file system failed. */
  readonly done: Promise<void>;
  /** True once serving has ended, or never will begin. */
  readonly ended: boolean;
  /** Gives up before go(): ends what was started. */
  abandon(): Promise<void>;
}

/**
 * A worker serves. Its entry module has this module's extension: .js when built, .ts when running from
 * sources under tsx. Node 20 does not carry tsx's loader hooks into workers, so a .ts entry first
 * registers tsx in the worker by hand; a built package never takes that path.
 */
function workerHost(init: WorkerInit): ServingHost {
  const ext = extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./worker${ext}`, import.meta.url).href;
  let worker: Worker;
  const { Worker } = workerThreads();
  // The file system opens and closes fds outside Node's fs (koffi's openat2): no per-fd tracking warnings.
  if (ext !== '.ts') worker = new Worker(new URL(entry), { workerData: init, trackUnmanagedFds: false });
  else {
    const tsx = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry)}); });`;
    worker = new Worker(boot, { eval: true, workerData: init, trackUnmanagedFds: false });
  }
  let ended = false;
  let ready!: () => void;
  let failed!: (err: Error) => void;
  const readyP = new Promise<void>((res, rej) => {
    ready = res;
    failed = rej;
  });
  const done = new Promise<void>((res, rej) => {
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') ready();
      else failed(new Error(`fuse worker: ${m.message}`));
    });
    worker.on('error', (err) => {
      failed(err);
      rej(err);
    });
    worker.on('exit', (code) => {
      ended = true;
      failed(new Error(`fuse worker exited (${code}) before it was ready`));
      if (code === 0) res();
      else rej(new Error(`fuse worker exited with code ${code}`));
    });
  });
  done.catch(() => {}); // settled through mountFuse's own promise
  return {
    ready: readyP,
    // The worker waits for this before its first read: reading an unmounted /dev/fuse fd fails with EPERM.
    go: () => worker.postMessage('go'),
    done,
    get ended() {
      return ended;
    },
    abandon: async () => {
      await worker.terminate();
    },
  };
}

/** This thread builds the file system, from `factory` or else from init's module, and serves it in slices (see serveHere). */
function hereHost(init: WorkerInit, given: RawFileSystemFactory | undefined): ServingHost {
  let ended = false;
  let start!: () => void;
  const started = new Promise<void>((res) => (start = res));
  const built = (async () => {
    const factory = given ?? ((await import(init.module)) as Record<string, unknown>)[init.exportName];
    if (typeof factory !== 'function') throw new Error(`${init.module} has no function export '${init.exportName}'`);
    const { Notifier } = await import('./server.js');
    // Notifications from inside the file system are queued until the current reply is out (see Notifier).
    const notifier = new Notifier(init.fd, true);
    const filesystem = (factory as RawFileSystemFactory)(init.arg, notifier);
    if (init.mount !== undefined) {
      const { source, target, fstype, options } = init.mount;
      (await import('../mount-syscall.js')).mountFuseSyscall(source, target, fstype, options);
    }
    return { filesystem, notifier };
  })();
  const done = (async () => {
    try {
      const { filesystem, notifier } = await built;
      await started;
      const { serveFuseInSlices } = await import('./server.js');
      await serveFuseInSlices(init.fd, filesystem, init.serve, notifier);
    } finally {
      ended = true;
    }
  })();
  done.catch(() => {}); // settled through mountFuse's own promise
  return {
    ready: built.then(() => {}),
    go: start,
    done,
    get ended() {
      return ended;
    },
    abandon: async () => {
      ended = true;
    },
  };
}

/**
 * Mounts a FUSE file system at `mountpoint`, served by a worker thread (or this one: serveHere) that
 * builds it from `filesystem.module`. Resolves once mounted; the kernel's INIT is answered right after.
 */
export async function mountFuse(args: MountFuseArgs): Promise<FuseMount> {
  const mountpoint = resolve(args.mountpoint);
  const fsname = args.fsname ?? 'ovlfs';
  const source = args.source ?? fsname;
  const options = args.options ?? {};
  const given = 'factory' in args.filesystem ? args.filesystem.factory : undefined;
  if (given !== undefined && !options.serveHere) throw new TypeError('mountFuse: a factory is served on this thread only (serveHere); a worker needs a module');
  const module = 'module' in args.filesystem ? args.filesystem.module : '';
  const moduleUrl = module instanceof URL ? module.href : module === '' || module.startsWith('file:') ? module : pathToFileURL(resolve(module)).href;

  // fusermount3 opens the device and mounts it in one step and hands the fd back; mount(8) is given ours.
  const fusermount = options.fusermount;
  // Loaded only for it: koffi is not needed on this thread otherwise, and loading it costs start-up time.
  const fm = fusermount === undefined ? undefined : await import('../fusermount.js');
  const fd = options.mounted ?? (fusermount === undefined || fm === undefined
    ? openSync('/dev/fuse', 'r+')
    : fm.fusermountMount(fusermount, mountpoint, [`fsname=${source}`, `subtype=${fsname}`, ...fuseMountData(-1, options).split(',').slice(4)].join(',')));
  const { extraOptions: _e, allowOther: _a, defaultPermissions: _d, readOnly: _r, handleSignals: _h, fusermount: _f, mounted: _m, serveHere: _s, ...serve } = options;
  const detach = (lazy: boolean): { status: number | null; stderr: string } =>
    fusermount !== undefined && fm !== undefined ? fm.fusermountUnmount(fusermount, mountpoint, lazy) : childProcess().spawnSync('umount', lazy ? ['-l', mountpoint] : [mountpoint], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const exportName = 'export' in args.filesystem ? args.filesystem.export : undefined;
  const init: WorkerInit = { fd, module: moduleUrl, exportName: exportName ?? 'createFileSystem', arg: args.filesystem.arg, serve };
  // The serving thread calls mount(2) itself once the file system is built: koffi is loaded there already,
  // and forking this process for mount(8) was the largest single cost of a mount's start-up.
  if (fusermount === undefined && options.mounted === undefined) init.mount = { source, target: mountpoint, fstype: `fuse.${fsname}`, options: fuseMountData(fd, options) };
  const host = options.serveHere ? hereHost(init, given) : workerHost(init);

  // The file system is built first, so a broken module fails before anything is mounted.
  try {
    await host.ready;
  } catch (err) {
    // Mounted before the file system was built: a mount nobody will serve must not stay behind.
    if (fusermount !== undefined || options.mounted !== undefined) detach(true);
    await host.abandon();
    closeSync(fd);
    throw err;
  }

  let unmounting: Promise<void> | undefined;
  const { Notifier } = await import('./server.js');
  const notifier = new Notifier(fd, false);

  // Last resort if the process exits while still mounted: a dead server leaves an ENOTCONN mount behind.
  const onExit = (): void => {
    if (!host.ended) detach(true);
  };
  process.on('exit', onExit);

  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const onSignal = (sig: NodeJS.Signals): void => {
    void unmount().finally(() => {
      for (const s of signals) process.off(s, onSignal);
      process.kill(process.pid, sig);
    });
  };
  if (options.handleSignals) for (const s of signals) process.on(s, onSignal);

  const finished = host.done.finally(() => {
    process.off('exit', onExit);
    for (const s of signals) process.off(s, onSignal);
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  });
  // A serving thread that failed leaves a mount nobody answers; detach it. Serving that ended without an
  // error ended because the connection is gone (unmounted or aborted): whatever is mounted at the path
  // now is another mount (containers/storage mounts a layer again at the same path at once), not ours.
  finished.catch(() => {
    if (unmounting === undefined && isMounted(mountpoint)) detach(true);
  });

  function unmount(): Promise<void> {
    unmounting ??= (async () => {
      if (host.ended) return;
      let r = fusermount !== undefined ? detach(false) : await run('umount', [mountpoint], ['ignore', 'ignore', 'pipe']);
      if (r.status !== 0 && isMounted(mountpoint)) {
        // Busy: detach now; the connection ends when the last user lets go.
        r = fusermount !== undefined ? detach(true) : await run('umount', ['-l', mountpoint], ['ignore', 'ignore', 'pipe']);
        if (r.status !== 0 && isMounted(mountpoint)) throw new Error(`umount ${mountpoint} failed: ${r.stderr}`);
      }
      await finished;
    })();
    return unmounting;
  }

  // Serving begins once signals are handled: served here, its first slice makes them interrupt its reads.
  host.go();
  return {
    mountpoint,
    done: finished,
    unmount,
    notifyInvalInode: (nodeid, offset, length) => notifier.invalInode(nodeid, offset, length),
    notifyInvalEntry: (parent, name) => notifier.invalEntry(parent, name),
  };
}
