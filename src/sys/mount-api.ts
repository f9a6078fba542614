// The new mount API's open_tree(2) and mount_setattr(2): a private, detached clone of a mount whose
// flags (atime rules) are ours to set without touching the host's mount. glibc wraps neither before
// 2.36, so both go through syscall(2); their numbers are the same on every architecture.
import { AT_EMPTY_PATH, O_CLOEXEC } from './constants.js';
import { check, declare } from './libc.js';

const SYS_open_tree = 428;
const SYS_mount_setattr = 442;

/** open_tree(2): clone the mount at the path instead of opening it (a detached, private copy). */
export const OPEN_TREE_CLONE = 1;

// struct mount_attr's atime attributes: one of RELATIME (0), NOATIME, STRICTATIME, under the _ATIME mask.
export const MOUNT_ATTR_RELATIME = 0x00;
export const MOUNT_ATTR_NOATIME = 0x10;
export const MOUNT_ATTR_STRICTATIME = 0x20;
export const MOUNT_ATTR__ATIME = 0x70;
export const MOUNT_ATTR_NODIRATIME = 0x80;

const rawOpenTree = declare<(nr: number, dirfd: number, path: string, flags: number) => number>(
  'long syscall(long nr, int dirfd, const char *path, unsigned int flags)',
);
const rawMountSetattr = declare<(nr: number, dirfd: number, path: string, flags: number, attr: Buffer, size: number) => number>(
  'long syscall(long nr, int dirfd, const char *path, unsigned int flags, void *attr, size_t size)',
);

/**
 * A detached clone of the mount at `path` (only that mount, not the ones below it), as an fd on its
 * root. Needs CAP_SYS_ADMIN over the caller's mount namespace (EPERM otherwise).
 */
export function openTreeClone(dirfd: number, path: string): number {
  return check(rawOpenTree(SYS_open_tree, dirfd, path, OPEN_TREE_CLONE | O_CLOEXEC), 'open_tree', path);
}

/** mount_setattr(2) on the mount `fd` is open on: sets `set`, clears `clear` (MOUNT_ATTR_* bits). */
export function mountSetattr(fd: number, set: number, clear: number): void {
  // struct mount_attr { u64 attr_set; u64 attr_clr; u64 propagation; u64 userns_fd; }
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(set >>> 0, 0);
  attr.writeUInt32LE(clear >>> 0, 8);
  check(rawMountSetattr(SYS_mount_setattr, fd, '', AT_EMPTY_PATH, attr, 32), 'mount_setattr');
}
