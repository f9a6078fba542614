// Data between fds without a trip through JavaScript: a reflink (FICLONE), copy_file_range,
// fallocate, lseek for SEEK_DATA/SEEK_HOLE; and ioctl(2) for the few requests that take an integer or
// a buffer.
import { FICLONE } from './constants.js';
import { check, declare } from './libc.js';

const rawIoctlInt = declare<(fd: number, request: number, arg: number) => number>(
  'int ioctl(int fd, unsigned long request, unsigned long arg)',
);
const rawIoctlBuf = declare<(fd: number, request: number, arg: Uint8Array) => number>(
  'int ioctl(int fd, unsigned long request, void *arg)',
);
const rawCopyFileRange = declare<(fdIn: number, offIn: BigInt64Array | null, fdOut: number, offOut: BigInt64Array | null, len: number, flags: number) => number>(
  'long copy_file_range(int fd_in, int64_t *off_in, int fd_out, int64_t *off_out, size_t len, unsigned int flags)',
);
const rawFallocate = declare<(fd: number, mode: number, offset: number, len: number) => number>(
  'int fallocate(int fd, int mode, int64_t offset, int64_t len)',
);
const rawLseek = declare<(fd: number, offset: number, whence: number) => number>(
  'int64_t lseek(int fd, int64_t offset, int whence)',
);

/** ioctl(2) with an integer argument, or a buffer the kernel reads or fills. */
export function ioctl(fd: number, request: number, arg: number | Uint8Array = 0): number {
  const ret = typeof arg === 'number' ? rawIoctlInt(fd, request, arg) : rawIoctlBuf(fd, request, arg);
  return check(ret, 'ioctl');
}

/** Makes `dst` share `src`'s blocks (reflink). EOPNOTSUPP/EXDEV/EINVAL where the filesystem cannot. */
export function ficlone(dst: number, src: number): void {
  check(rawIoctlInt(dst, FICLONE, src), 'ioctl');
}

const offIn = new BigInt64Array(1);
const offOut = new BigInt64Array(1);

/**
 * copy_file_range(2) at explicit offsets (the fds' own positions are left alone). Returns the
 * bytes copied, 0 at the end of the input. The kernel clones or copies inside the filesystem.
 */
export function copyFileRange(fdIn: number, posIn: number, fdOut: number, posOut: number, length: number): number {
  offIn[0] = BigInt(posIn);
  offOut[0] = BigInt(posOut);
  return check(rawCopyFileRange(fdIn, offIn, fdOut, offOut, length, 0), 'copy_file_range');
}

/**
 * fallocate(2) with any FALLOC_FL_* mode: allocate, keep size, punch hole, zero, collapse, insert or
 * unshare a range, as far as the filesystem supports each (EOPNOTSUPP where it does not).
 */
export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  check(rawFallocate(fd, mode, offset, length), 'fallocate');
}

/**
 * lseek(2); for SEEK_DATA and SEEK_HOLE, the offset of the next data or hole at or after `offset`
 * (ENXIO at or past the end). It moves the fd's own position, which positional I/O never uses.
 */
export function lseek(fd: number, offset: number, whence: number): number {
  return check(rawLseek(fd, offset, whence), 'lseek');
}
