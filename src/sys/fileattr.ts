// File attribute flags (chattr/lsattr): FS_IOC_GETFLAGS/FS_IOC_SETFLAGS on an open fd, and the
// immutable/append-only attributes statx reports on any fd, an O_PATH one included.
import { AT_EMPTY_PATH } from './constants.js';
import { check, declare } from './libc.js';

/** _IOR('f', 1, long) and _IOW('f', 2, long); the kernel reads and writes an int either way. */
export const FS_IOC_GETFLAGS = 0x80086601;
export const FS_IOC_SETFLAGS = 0x40086602;
/** _IOR('X', 31, struct fsxattr) and _IOW('X', 32, struct fsxattr): 28 bytes each way. */
export const FS_IOC_FSGETXATTR = 0x801c581f;
export const FS_IOC_FSSETXATTR = 0x401c5820;

const rawIoctl = declare<(fd: number, request: number, arg: Buffer) => number>('int ioctl(int fd, unsigned long request, void *arg)');
const rawStatx = declare<(dirfd: number, path: string, flags: number, mask: number, buf: Buffer) => number>(
  'int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)',
);
const rawGetxattr = declare<(path: string, name: string, value: Buffer, size: number) => number>(
  'long getxattr(const char *path, const char *name, void *value, size_t size)',
);

const flagsBuf = Buffer.alloc(8);
const statxBuf = Buffer.alloc(256);
const xattrBuf = Buffer.alloc(64);

/** FS_IOC_GETFLAGS: the FS_*_FL bits of the file open at `fd` (a regular file or a directory). */
export function getFileFlags(fd: number): number {
  flagsBuf.fill(0);
  check(rawIoctl(fd, FS_IOC_GETFLAGS, flagsBuf), 'ioctl');
  return flagsBuf.readUInt32LE(0);
}

/** FS_IOC_SETFLAGS: sets every FS_*_FL bit of the file open at `fd` to `flags`. */
export function setFileFlags(fd: number, flags: number): void {
  flagsBuf.fill(0);
  flagsBuf.writeUInt32LE(flags >>> 0, 0);
  check(rawIoctl(fd, FS_IOC_SETFLAGS, flagsBuf), 'ioctl');
}

const STATX_ATTR_IMMUTABLE = 0x10;
const STATX_ATTR_APPEND = 0x20;
/** FS_IMMUTABLE_FL and FS_APPEND_FL, as FS_IOC_GETFLAGS numbers them. */
const FS_IMMUTABLE_FL = 0x10;
const FS_APPEND_FL = 0x20;

/**
 * The immutable and append-only flags of the file `fd` refers to (any type, any open mode, O_PATH
 * too), as FS_IMMUTABLE_FL | FS_APPEND_FL bits; 0 where the filesystem does not report them.
 */
export function protectionFlags(fd: number): number {
  check(rawStatx(fd, '', AT_EMPTY_PATH, 0, statxBuf), 'statx');
  // stx_attributes (u64 at 8) and stx_attributes_mask (u64 at 56): the low word holds both bits.
  const attributes = statxBuf.readUInt32LE(8) & statxBuf.readUInt32LE(56);
  return ((attributes & STATX_ATTR_IMMUTABLE) !== 0 ? FS_IMMUTABLE_FL : 0) | ((attributes & STATX_ATTR_APPEND) !== 0 ? FS_APPEND_FL : 0);
}

/**
 * A short xattr of the file `fd` refers to (an O_PATH fd too, through /proc/self/fd), or undefined
 * when it is not there or cannot be read: the overlay's own flags, which the kernel also reads this
 * leniently (ovl_check_protattr).
 */
export function shortXattrOfFd(fd: number, name: string): Buffer | undefined {
  const n = rawGetxattr(`/proc/self/fd/${fd}`, name, xattrBuf, xattrBuf.length);
  return n < 0 ? undefined : Buffer.from(xattrBuf.subarray(0, n));
}
