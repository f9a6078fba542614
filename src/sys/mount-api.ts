// The new mount API's open_tree(2) and mount_setattr(2): a private, detached clone of a mount whose
// flags (atime rules) are ours to set without touching the host's mount. glibc wraps neither before
// 2.36, so both go through syscall(2); their numbers are the same on every architecture.
import { AT_EMPTY_PATH, AT_FDCWD, O_CLOEXEC } from './constants.js';
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

// statx's unique mount id and statmount(2) (Linux 6.8): a mount's flags by its id, in one call, with no
// path walked and no request sent to the file system (a FUSE daemon may ask about its own mount).
const SYS_statmount = 457;
const STATX_MNT_ID_UNIQUE = 0x4000;
const AT_STATX_DONT_SYNC = 0x4000;
const STATMOUNT_SB_BASIC = 0x1;
const STATMOUNT_MNT_BASIC = 0x2;
/** struct mount_attr's MOUNT_ATTR_RDONLY, as statmount reports it in mnt_attr. */
export const MOUNT_ATTR_RDONLY = 0x1;
/** SB_RDONLY in statmount's sb_flags. */
export const SB_RDONLY = 0x1;

const rawStatxMntId = declare<(dirfd: number, path: string, flags: number, mask: number, buf: Buffer) => number>(
  'int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)',
);
const rawStatmount = declare<(nr: number, req: Buffer, buf: Buffer, size: number, flags: number) => number>(
  'long syscall(long nr, void *req, void *buf, size_t size, unsigned int flags)',
);

/**
 * The unique id of the mount `path` is on, undefined before Linux 6.8. AT_STATX_DONT_SYNC: a FUSE
 * file system answers from its cache, so its own daemon may ask without deadlocking on itself.
 */
export function uniqueMountId(path: string): bigint | undefined {
  const buf = Buffer.alloc(256);
  check(rawStatxMntId(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_MNT_ID_UNIQUE, buf), 'statx', path);
  // struct statx: stx_mask at 0, stx_mnt_id at 0x90.
  if ((buf.readUInt32LE(0) & STATX_MNT_ID_UNIQUE) === 0) return undefined;
  return buf.readBigUInt64LE(0x90);
}

/** What statmount(2) reports of a mount's flags. */
export interface MountFlagsNow {
  /** The superblock's magic, e.g. FUSE_SUPER_MAGIC. */
  magic: bigint;
  /** SB_* flags of the superblock (SB_RDONLY). */
  sbFlags: number;
  /** MOUNT_ATTR_* flags of the mount (RDONLY, NOATIME, STRICTATIME, NODIRATIME). */
  attr: number;
}

/** statmount(2) of the mount with unique id `id`: its superblock's and its own flags. */
export function statmountFlags(id: bigint): MountFlagsNow {
  // struct mnt_id_req { u32 size; u32 spare; u64 mnt_id; u64 param; } (version 0, 24 bytes)
  const req = Buffer.alloc(24);
  req.writeUInt32LE(24, 0);
  req.writeBigUInt64LE(id, 8);
  req.writeBigUInt64LE(BigInt(STATMOUNT_SB_BASIC | STATMOUNT_MNT_BASIC), 16);
  const buf = Buffer.alloc(512);
  check(rawStatmount(SYS_statmount, req, buf, buf.length, 0), 'statmount');
  // struct statmount: sb_magic at 24, sb_flags at 32, mnt_attr at 64.
  return { magic: buf.readBigUInt64LE(24), sbFlags: buf.readUInt32LE(32), attr: Number(buf.readBigUInt64LE(64)) };
}
