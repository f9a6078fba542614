// The serving thread of a mount, started ahead: under ovlfs.sh, in fuse-overlayfs's form as root, this
// process will serve the mount it makes (mount-in-place.ts), so main.ts starts the thread first thing and
// its start-up (a second Node environment, the core's modules) overlaps with loading the command,
// parsing and mounting. mountFuse adopts it (MountOptions.worker); a command that ends another way
// leaves it unreferenced, so it does not keep the process alive.
import { Worker } from 'node:worker_threads';

let early: Worker | undefined;
let exited = false;

/** Starts the serving thread of the built command (dist/bin/worker.js), warming `filesystem` meanwhile. */
export function startServingThreadEarly(filesystem: URL): void {
  early = new Worker(new URL('./worker.js', import.meta.url), { workerData: { preload: filesystem.href }, trackUnmanagedFds: false });
  early.unref();
  early.once('exit', () => (exited = true));
  early.on('error', () => {}); // it fails again, and is reported, when adopted
}

/** The thread started ahead, if any and still running; at most once. */
export function takeServingThread(): Worker | undefined {
  const w = exited ? undefined : early;
  early = undefined;
  w?.ref();
  return w;
}
