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
const rawFallocate = declare<(fd: number, mode: number, offset: number | bigint, len: number | bigint) => number>(
  'int fallocate(int fd, int mode, int64_t offset, int64_t len)',
);
// 64-bit offsets go to koffi as they are: a number below 2^53, a bigint beyond (koffi returns the same).
const rawLseek = declare<(fd: number, offset: number | bigint, whence: number) => number | bigint>(
  'int64_t lseek(int fd, int64_t offset, int whence)',
);
const rawPwrite = declare<(fd: number, buf: NodeJS.ArrayBufferView, count: number, offset: number | bigint) => number>(
  'long pwrite(int fd, const void *buf, size_t count, int64_t offset)',
);
const rawFtruncate = declare<(fd: number, length: number | bigint) => number>('int ftruncate(int fd, int64_t length)');
const rawSyncfs = declare<(fd: number) => number>('int syncfs(int fd)');

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
export function copyFileRange(fdIn: number, posIn: number | bigint, fdOut: number, posOut: number | bigint, length: number): number {
  offIn[0] = BigInt(posIn);
  offOut[0] = BigInt(posOut);
  return check(rawCopyFileRange(fdIn, offIn, fdOut, offOut, length, 0), 'copy_file_range');
}

/**
 * fallocate(2) with any FALLOC_FL_* mode: allocate, keep size, punch hole, zero, collapse, insert or
 * unshare a range, as far as the filesystem supports each (EOPNOTSUPP where it does not).
 */
export function fallocate(fd: number, mode: number, offset: number | bigint, length: number | bigint): void {
  check(rawFallocate(fd, mode, offset, length), 'fallocate');
}

/**
 * lseek(2); for SEEK_DATA and SEEK_HOLE, the offset of the next data or hole at or after `offset`
 * (ENXIO at or past the end). It moves the fd's own position, which positional I/O never uses.
 */
export function lseek(fd: number, offset: number | bigint, whence: number): number | bigint {
  const ret = rawLseek(fd, offset, whence);
  if (typeof ret === 'bigint') return ret;
  return check(ret, 'lseek');
}

/**
 * pwrite(2) at an offset past 2^53, which node:fs cannot name (it writes a bigint position, or a
 * number it cannot take exactly, at the file position instead).
 */
export function pwrite64(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: bigint): number {
  const view = new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length);
  return check(rawPwrite(fd, view, length, position), 'write');
}

/** ftruncate(2) to a length past 2^53, which node:fs refuses. */
export function ftruncate64(fd: number, length: bigint): void {
  check(rawFtruncate(fd, length), 'ftruncate');
}

/** syncfs(2): everything written to the filesystem `fd` is on, flushed (not an O_PATH fd: EBADF). */
export function syncfs(fd: number): void {
  check(rawSyncfs(fd), 'syncfs');
}
