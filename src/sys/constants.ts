// Linux constants Node's fs.constants lacks. The values are the same on every architecture Node
// runs Linux on (x86-64, arm64, arm, riscv64, ...), except where fs.constants has them already.
import { constants } from 'node:fs';

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_EMPTY_PATH = 0x1000;

/** Open without access: a handle on the place, usable as a dirfd; fs.constants lacks it. */
export const O_PATH = 0o10000000;
export const O_CLOEXEC = 0o2000000;
export const { O_DIRECTORY, O_NOFOLLOW, O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = constants;

// openat2(2) resolve flags.
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

// renameat2(2) flags.
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;

// utimensat(2): tv_nsec values that mean "now" and "leave alone".
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;

// ioctl(2): FICLONE clones a whole file (reflink) on XFS, btrfs and the like.
export const FICLONE = 0x40049409;

// fallocate(2) modes.
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_COLLAPSE_RANGE = 0x08;
export const FALLOC_FL_ZERO_RANGE = 0x10;
export const FALLOC_FL_INSERT_RANGE = 0x20;
export const FALLOC_FL_UNSHARE_RANGE = 0x40;
export const FALLOC_FL_WRITE_ZEROES = 0x80;

// lseek(2) whence values beyond node's positional I/O: the next data, the next hole.
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

// poll(2) events.
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;

// eventfd(2) flags.
export const EFD_SEMAPHORE = 1;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

// *xattr(2) flags.
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
