// `-o remount`: what mount(8) asks of a FUSE file system's helper for `mount -o remount,ro MNT` (it reads
// the mount's options back from the mount table and passes them with `remount` among them). As for any
// FUSE file system, the kernel changes the mount (fuse_reconfigure): a read-only superblock answers EROFS
// to every write and refuses opens for writing before a request reaches the daemon, so no second daemon
// is started. The daemon learns the new atime rule (none when read-only) from the mount's flags, which it
// reads again on the STATFS sent below. The overlay's options are ignored, as the kernel overlay ignores
// them on a remount.
import { statfsSync } from 'node:fs';

import { readMounts } from '../mount-table.js';
import type { MountRequest } from './mount-args.js';
import { UsageError } from './mount-args.js';

export async function remount(req: MountRequest): Promise<void> {
  const entry = readMounts().filter((m) => m.mountpoint === req.mountpoint).at(-1);
  if (entry === undefined) throw new UsageError(`${req.mountpoint} is not mounted`);
  if (entry.type !== 'fuse.ovlfs') throw new UsageError(`${req.mountpoint} is not an ovlfs mount (${entry.type})`);
  const { remountFuseSyscall } = await import('../fuse/mount-syscall.js');
  remountFuseSyscall(req.mountpoint, [...(req.flags.readOnly ? ['ro'] : []), ...req.flags.extra]);
  // The kernel tells the daemon nothing; a STATFS makes it read the mount's new flags back and apply
  // their atime rule (src/fuse/own-mount.ts), and its answer means that is done.
  statfsSync(req.mountpoint);
}
