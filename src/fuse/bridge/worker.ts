// The serving thread of a mountFuse() mount (see mount.ts for why it is a worker): build the
// file system from the named module, mount it (or report ready and let the main thread mount it),
// then serve until unmounted.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

import type { WorkerInit, WorkerMessage } from './mount.js';
import type { RawFileSystemFactory } from './raw-fs.js';
import { Notifier, serveFuse } from './server.js';

function post(m: WorkerMessage): void {
  parentPort?.postMessage(m);
}

async function main(): Promise<void> {
  const port = parentPort;
  if (isMainThread || !port) throw new Error('src/fuse/bridge/worker is a worker entry point');
  const init = workerData as WorkerInit;
  let factory: RawFileSystemFactory;
  try {
    const mod = (await import(init.module)) as Record<string, unknown>;
    const f = mod[init.exportName];
    if (typeof f !== 'function') throw new Error(`${init.module} has no function export '${init.exportName}'`);
    factory = f as RawFileSystemFactory;
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  // Notifications from inside the file system are queued until the current reply is out (see Notifier).
  const notifier = new Notifier(init.fd, true);
  const filesystem = factory(init.arg, notifier);
  if (init.mount !== undefined) {
    // mount(2) from this thread, where koffi is loaded already (the file system's layers use it).
    try {
      const { source, target, fstype, options } = init.mount;
      (await import('../mount-syscall.js')).mountFuseSyscall(source, target, fstype, options);
    } catch (err) {
      post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      return;
    }
  }
  await new Promise<void>((res) => {
    port.once('message', () => res());
    post({ type: 'ready' });
  });
  port.close(); // nothing more will be read: the loop below owns this thread until unmount
  serveFuse(init.fd, filesystem, init.serve, notifier);
}

await main();
