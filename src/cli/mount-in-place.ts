// fuse-overlayfs's form as root, started by ovlfs.sh: this process mounts, tells the script its exit
// status on a pipe (the script then returns, with the mount live: the kernel queues requests until they
// are answered), leaves the caller and serves the mount itself. Only one Node starts before the first
// reply, where mountAndDaemonize (spawn-daemon.ts) starts a second one for the daemon.
import { writeFileSync } from 'node:fs';

import type { MountRequest } from './mount-args.js';
import { EXIT_FAIL, mountDevice } from './spawn-daemon.js';

/** `report` says the command's exit status to the script (once; later calls do nothing). */
export async function mountInPlace(req: MountRequest, report: (status: number) => void): Promise<number> {
  const device = await mountDevice(req);
  if (device === undefined) return EXIT_FAIL;
  if (req.pidfile !== undefined) writeFileSync(req.pidfile, `${process.pid}\n`);
  (await import('./detach.js')).detachFromCaller(req.log);
  report(0);
  const { serveMounted } = await import('./daemon.js');
  return serveMounted(req, device);
}
