// `-o remount`: what mount(8) asks of a FUSE file system's helper for `mount -o remount,ro MNT` (it reads
// the mount's options back from the mount table and passes them with `remount` among them). As for any
// FUSE file system, the kernel changes the mount (fuse_reconfigure): a read-only superblock answers EROFS
// to every write and refuses opens for writing before a request reaches the daemon, so no second daemon
// is started and the one serving is not asked. The overlay's options are ignored, as the kernel overlay
// ignores them on a remount.
import { readMounts } from '../mount-table.js';
import type { MountRequest } from './mount-args.js';
import { UsageError } from './mount-args.js';

export async function remount(req: MountRequest): Promise<void> {
  const entry = readMounts().filter((m) => m.mountpoint === req.mountpoint).at(-1);
  if (entry === undefined) throw new UsageError(`${req.mountpoint} is not mounted`);
  if (entry.type !== 'fuse.ovlfs') throw new UsageError(`${req.mountpoint} is not an ovlfs mount (${entry.type})`);
  const { remountFuseSyscall } = await import('../fuse/mount-syscall.js');
  remountFuseSyscall(req.mountpoint, [...(req.flags.readOnly ? ['ro'] : []), ...req.flags.extra]);
}
