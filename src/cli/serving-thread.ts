// The serving thread of a mount, started ahead: under ovlfs.sh, in fuse-overlayfs's form as root, this
// process will serve the mount it makes (mount-in-place.ts), so main.ts starts the thread first thing and
// its start-up (a second Node environment, the core's code) overlaps with loading the command, parsing and
// mounting. The thread runs serving-entry.ts, bundled with the core into one file and loaded from a code
// cache (serving-boot.ts). mountFuse adopts it (MountOptions.worker); a command that ends another way
// leaves it unreferenced, so it does not keep the process alive.
import { Worker } from 'node:worker_threads';

let early: Worker | undefined;
let exited = false;

/** Starts the serving thread of the built command (dist/bin/serving-boot.cjs). */
export function startServingThreadEarly(): void {
  // The file system opens and closes fds outside Node's fs (koffi's openat2): no per-fd tracking warnings.
  early = new Worker(new URL('./serving-boot.cjs', import.meta.url), { trackUnmanagedFds: false });
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
