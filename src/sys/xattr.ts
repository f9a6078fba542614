// Extended attributes on an open fd (f*) or on a path whose last component is not followed (l*).
// A missing attribute is `undefined`, not an error: lookups ask for many that are not there, and
// building an Error for each would cost more than the call.
import { check, declare, koffi, lastErrno } from './libc.js';

type Get = (target: number | string, name: string, value: Buffer, size: number) => number;
type List = (target: number | string, list: Buffer, size: number) => number;
type Set = (target: number | string, name: string, value: Uint8Array, size: number, flags: number) => number;
type Remove = (target: number | string, name: string) => number;

const rawFget = declare<Get>('long fgetxattr(int fd, const char *name, void *value, size_t size)');
const rawLget = declare<Get>('long lgetxattr(const char *path, const char *name, void *value, size_t size)');
const rawFlist = declare<List>('long flistxattr(int fd, void *list, size_t size)');
const rawLlist = declare<List>('long llistxattr(const char *path, void *list, size_t size)');
const rawFset = declare<Set>('int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)');
const rawLset = declare<Set>('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
const rawFremove = declare<Remove>('int fremovexattr(int fd, const char *name)');
const rawLremove = declare<Remove>('int lremovexattr(const char *path, const char *name)');

const ENODATA = 61;
const ERANGE = 34;
/**
 * Most values and lists are short. The kernel allocates and zeroes as many bytes as the caller
 * offers, so a small buffer is tried first and the exact size asked for only when it is too small.
 */
const small = Buffer.alloc(1024);

function get(fn: Get, syscall: string, target: number | string, name: string): Buffer | undefined {
  const path = typeof target === 'string' ? target : undefined;
  let n = fn(target, name, small, small.length);
  if (n >= 0) return Buffer.from(small.subarray(0, n));
  for (;;) {
    const errno = lastErrno();
    if (errno === ENODATA) return undefined;
    if (errno !== ERANGE) check(n, syscall, path);
    const size = check(fn(target, name, small, 0), syscall, path);
    const big = Buffer.alloc(size);
    n = fn(target, name, big, size);
    if (n >= 0) return big.subarray(0, n);
  }
}

function list(fn: List, syscall: string, target: number | string): string[] {
  const path = typeof target === 'string' ? target : undefined;
  let buf = small;
  let n = fn(target, buf, buf.length);
  while (n < 0) {
    if (lastErrno() !== ERANGE) check(n, syscall, path);
    buf = Buffer.alloc(check(fn(target, small, 0), syscall, path));
    n = fn(target, buf, buf.length);
  }
  if (n === 0) return [];
  return buf.toString('utf8', 0, n - 1).split('\0');
}

/** fgetxattr(2); undefined when the attribute is not there (ENODATA). */
export function fgetxattr(fd: number, name: string): Buffer | undefined {
  return get(rawFget, 'fgetxattr', fd, name);
}

/** lgetxattr(2); undefined when the attribute is not there (ENODATA). */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  return get(rawLget, 'lgetxattr', path, name);
}

export function flistxattr(fd: number): string[] {
  return list(rawFlist, 'flistxattr', fd);
}

export function llistxattr(path: string): string[] {
  return list(rawLlist, 'llistxattr', path);
}

export function fsetxattr(fd: number, name: string, value: Uint8Array, flags = 0): void {
  check(rawFset(fd, name, value, value.byteLength, flags), 'fsetxattr');
}

export function lsetxattr(path: string, name: string, value: Uint8Array, flags = 0): void {
  check(rawLset(path, name, value, value.byteLength, flags), 'lsetxattr', path);
}

export function fremovexattr(fd: number, name: string): void {
  check(rawFremove(fd, name), 'fremovexattr');
}

export function lremovexattr(path: string, name: string): void {
  check(rawLremove(path, name), 'lremovexattr', path);
}

// getxattrat(2) (Linux 6.13): the l*xattr call relative to a directory fd, without a trip through
// /proc/self/fd. Where the kernel lacks it, the same read goes through /proc/self/fd/<dirfd>/<name>.
const SYS_getxattrat = 464;
const rawGetxattrat = declare<(nr: number, dirfd: number, path: string, flags: number, name: string, args: Buffer, size: number) => number>(
  'long syscall(long nr, int dirfd, const char *path, unsigned int flags, const char *name, void *args, size_t size)',
);
const ENOSYS = 38;
const AT_SYMLINK_NOFOLLOW = 0x100;
let haveXattrAt = true;
/** struct xattr_args { u64 value; u32 size; u32 flags; }: all of `small` (whose memory never moves), set once. */
const args = Buffer.alloc(16);
args.writeBigUInt64LE(koffi.address(small), 0);
args.writeUInt32LE(small.length, 8);

/**
 * The xattr `name` of the entry `path` below `dirfd`, never following a symlink at the end;
 * undefined when it is not there (ENODATA).
 */
export function getxattrAt(dirfd: number, path: string, name: string): Buffer | undefined {
  if (haveXattrAt) {
    const n = rawGetxattrat(SYS_getxattrat, dirfd, path, AT_SYMLINK_NOFOLLOW, name, args, 16);
    if (n >= 0) return Buffer.from(small.subarray(0, n));
    const errno = lastErrno();
    if (errno === ENODATA) return undefined;
    if (errno === ENOSYS) haveXattrAt = false;
    else if (errno !== ERANGE) check(n, 'getxattrat', path);
  }
  return lgetxattr(`/proc/self/fd/${dirfd}/${path}`, name);
}
