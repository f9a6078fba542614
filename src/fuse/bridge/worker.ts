// The serving thread of a mountFuse() mount (see session.ts for why it is a worker): build the
// filesystem from the named module, report ready, wait for the mount, then serve until unmounted.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

import type { FuseOpsFactory } from './operations.js';
import { Notifier, serveFuse } from './server.js';
import type { WorkerInit, WorkerMessage } from './session.js';

function post(m: WorkerMessage): void {
  parentPort?.postMessage(m);
}

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  const port = parentPort;
  if (isMainThread || !port) throw new Error('src/fuse/worker is a worker entry point');
  let factory: FuseOpsFactory;
  try {
    const mod = (await import(init.module)) as Record<string, unknown>;
    const f = mod[init.exportName];
    if (typeof f !== 'function') throw new Error(`${init.module} has no function export '${init.exportName}'`);
    factory = f as FuseOpsFactory;
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  // Notifications from inside the filesystem are queued until the current reply is out (see Notifier).
  const notifier = new Notifier(init.fd, true);
  const ops = factory(init.arg, notifier);
  await new Promise<void>((res) => {
    port.once('message', () => res());
    post({ type: 'ready' });
  });
  port.close(); // nothing more will be read: the loop below owns this thread until unmount
  serveFuse(init.fd, ops, init.serve, notifier);
}

await main();
