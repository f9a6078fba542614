// The program of the serving thread started ahead (serving-thread.ts), bundled to serving.cjs: the bridge's
// worker (src/fuse/bridge/worker.ts) for a mount the command has made already, with the overlay's file
// system built in instead of imported by name, so that the thread loads one file, from its code cache.
// mountFuse sends it the WorkerInit; it answers 'ready' once the file system is built, and serves after 'go'.
import { parentPort, type MessagePort } from 'node:worker_threads';

import type { WorkerInit, WorkerMessage } from '../fuse/bridge/mount.js';
import type { RawFileSystem } from '../fuse/bridge/raw-fs.js';
import { Notifier, serveFuse } from '../fuse/bridge/server.js';
import { createOverlayFs } from '../fuse/overlay-fs.js';

function start(port: MessagePort, init: WorkerInit): void {
  const post = (m: WorkerMessage): void => port.postMessage(m);
  // Notifications from inside the file system are queued until the current reply is out (see Notifier).
  const notifier = new Notifier(init.fd, true);
  let filesystem: RawFileSystem;
  try {
    // What daemon.ts asks of it; anything else is for the bridge's own worker.
    if (init.mount !== undefined || init.exportName !== 'createOverlayFs') throw new Error(`the serving thread serves only a mounted overlay, not ${init.module}#${init.exportName}`);
    filesystem = createOverlayFs(init.arg, notifier);
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  port.once('message', () => {
    port.close(); // nothing more will be read: the loop below owns this thread until unmount
    serveFuse(init.fd, filesystem, init.serve, notifier);
  });
  post({ type: 'ready' });
}

const port = parentPort;
if (port === null) throw new Error('serving-entry is a worker entry point');
port.once('message', (init: WorkerInit) => start(port, init));
