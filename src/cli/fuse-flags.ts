// How an ovlfs mount is made, shared by the command (which mounts as root before it starts the daemon)
// and the daemon (which mounts through fusermount3, or in the foreground): both must ask the kernel for
// the same mount.
import { readFileSync } from 'node:fs';

import type { FuseMountFlags } from '../fuse/mount-syscall.js';
import type { MountRequest } from './mount-args.js';

/** Whether fusermount3 lets a plain user pass allow_other. */
export function userAllowOther(): boolean {
  try {
    return /^\s*user_allow_other\s*$/m.test(readFileSync('/etc/fuse.conf', 'utf8'));
  } catch {
    return false;
  }
}

/** The mount's flags; `fusermount` is the fusermount3 a plain user mounts through, if any. */
export function fuseMountFlags(req: MountRequest, fusermount: string | undefined): FuseMountFlags {
  return {
    readOnly: req.flags.readOnly,
    extraOptions: req.flags.extra,
    // A plain user mounts through fusermount3, which allows allow_other only with user_allow_other.
    allowOther: fusermount === undefined || userAllowOther(),
    defaultPermissions: true,
  };
}
