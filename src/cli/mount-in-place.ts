// fuse-overlayfs's form as root, started by ovlfs.sh: this process mounts, tells the script its exit
// status on a pipe (the script then returns, with the mount live: the kernel queues requests until they
// are answered), leaves the caller and serves the mount itself. Only one Node starts before the first
// reply, where mountAndDaemonize (spawn-daemon.ts) starts a second one for the daemon.
import { closeSync, openSync, writeFileSync } from 'node:fs';

import { fuseMountFlags } from './fuse-flags.js';
import type { MountRequest } from './mount-args.js';
import { checkLayers, EXIT_FAIL } from './spawn-daemon.js';

function log(line: string): void {
  process.stderr.write(`ovlfs: ${line}\n`);
}

/** `report` says the command's exit status to the script (once; later calls do nothing). */
export async function mountInPlace(req: MountRequest, report: (status: number) => void): Promise<number> {
  let device: number | undefined;
  try {
    checkLayers(req);
    device = openSync('/dev/fuse', 'r+');
    const { fuseMountData, mountFuseSyscall } = await import('../fuse/mount-syscall.js');
    mountFuseSyscall(req.source, req.mountpoint, 'fuse.ovlfs', fuseMountData(device, fuseMountFlags(req, undefined)));
  } catch (e) {
    if (device !== undefined) closeSync(device);
    log(`mount failed: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_FAIL;
  }
  if (req.pidfile !== undefined) writeFileSync(req.pidfile, `${process.pid}\n`);
  (await import('./detach.js')).detachFromCaller(req.log);
  report(0);
  const { serveMounted } = await import('./daemon.js');
  return serveMounted(req, device);
}
