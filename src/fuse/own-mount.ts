// The atime rule of the daemon's own mount, read back from the kernel, so that a remount reaches it.
//
// The kernel tells a FUSE daemon nothing of a remount (fuse_reconfigure syncs and returns), yet the
// kernel overlay's atime rule is its mount's flags at each read: touch_atime on the overlay's path
// skips a read-only mount and follows noatime, relatime, strictatime and nodiratime as they are now.
// So the daemon reads its mount's flags where they are kept, with statmount(2) by the mount's unique
// id: one system call, no path walked, nothing asked of this daemon (which would wait on itself). It
// reads them on each STATFS, and the remount helper sends one right after its mount(2), so the new rule
// is in force before `mount -o remount` returns. A STATFS is a request the daemon gets anyway, from
// whoever may ask: it carries nothing to trust, it only makes the daemon look at the kernel's own record.
import { uniqueMountId, statmountFlags, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_RDONLY, MOUNT_ATTR_STRICTATIME, SB_RDONLY } from '../sys/mount-api.js';

export type AtimeRule = 'relatime' | 'strictatime' | 'noatime';

/** When reads update atimes on a mount. */
export interface MountAtime {
  atime: AtimeRule;
  nodiratime: boolean;
}

const FUSE_SUPER_MAGIC = 0x65735546n;

/** The rule a mount's flags say: none on a read-only mount (touch_atime cannot write), else its atime flags. */
export function atimeOfFlags(sbFlags: number, attr: number): MountAtime {
  const readOnly = (sbFlags & SB_RDONLY) !== 0 || (attr & MOUNT_ATTR_RDONLY) !== 0;
  const atime: AtimeRule = readOnly || (attr & MOUNT_ATTR_NOATIME) !== 0 ? 'noatime' : (attr & MOUNT_ATTR_STRICTATIME) !== 0 ? 'strictatime' : 'relatime';
  return { atime, nodiratime: (attr & MOUNT_ATTR_NODIRATIME) !== 0 };
}

export class OwnMount {
  /** The mount's unique id, found at the first look: it stays the same if the mount is moved. */
  private id: bigint | undefined;
  private last: MountAtime | undefined;

  constructor(private readonly mountpoint: string) {}

  /**
   * The mount's rule when it differs from the one last seen (or from `initial`, the rule the overlay
   * was opened with); undefined when it is the same or cannot be read (before Linux 6.8, or the mount
   * point no longer a FUSE mount).
   */
  changed(initial: MountAtime): MountAtime | undefined {
    let now: MountAtime;
    try {
      this.id ??= uniqueMountId(this.mountpoint);
      if (this.id === undefined) return undefined;
      const f = statmountFlags(this.id);
      if (f.magic !== FUSE_SUPER_MAGIC) {
        this.id = undefined;
        return undefined;
      }
      now = atimeOfFlags(f.sbFlags, f.attr);
    } catch {
      this.id = undefined; // unmounted or moved out of reach: look again next time
      return undefined;
    }
    const before = this.last ?? initial;
    this.last = now;
    return now.atime !== before.atime || now.nodiratime !== before.nodiratime ? now : undefined;
  }
}
