// Names in a directory, relative to its fd: mknodat, mkdirat, symlinkat, linkat, unlinkat,
// readlinkat. None of them follows a symlink in the last component.
import { AT_REMOVEDIR } from './constants.js';
import { check, declare } from './libc.js';
import { nameFromBytes } from '../names.js';

const rawMknodat = declare<(dirfd: number, path: string, mode: number, dev: number) => number>(
  'int mknodat(int dirfd, const char *path, unsigned int mode, uint64_t dev)',
);
const rawMkdirat = declare<(dirfd: number, path: string, mode: number) => number>(
  'int mkdirat(int dirfd, const char *path, unsigned int mode)',
);
const rawSymlinkat = declare<(target: string, dirfd: number, path: string) => number>(
  'int symlinkat(const char *target, int dirfd, const char *path)',
);
const rawLinkat = declare<(olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number) => number>(
  'int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)',
);
const rawUnlinkat = declare<(dirfd: number, path: string, flags: number) => number>(
  'int unlinkat(int dirfd, const char *path, int flags)',
);
const rawReadlinkat = declare<(dirfd: number, path: string, buf: Buffer, size: number) => number>(
  'long readlinkat(int dirfd, const char *path, void *buf, size_t size)',
);

/** mknodat(2); `rdev` as Node reports st_rdev. A 0/0 character device is the overlay's whiteout. */
export function mknodat(dirfd: number, path: string, mode: number, rdev = 0): void {
  check(rawMknodat(dirfd, path, mode, rdev), 'mknodat', path);
}

export function mkdirat(dirfd: number, path: string, mode: number): void {
  check(rawMkdirat(dirfd, path, mode), 'mkdirat', path);
}

export function symlinkat(target: string, dirfd: number, path: string): void {
  check(rawSymlinkat(target, dirfd, path), 'symlinkat', path);
}

/** linkat(2) without AT_SYMLINK_FOLLOW: a symlink is linked itself, as link(2) does on Linux. */
export function linkat(olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags = 0): void {
  check(rawLinkat(olddirfd, oldpath, newdirfd, newpath, flags), 'linkat', oldpath, newpath);
}

export function unlinkat(dirfd: number, path: string, flags = 0): void {
  check(rawUnlinkat(dirfd, path, flags), flags & AT_REMOVEDIR ? 'rmdir' : 'unlinkat', path);
}

const linkBuf = Buffer.alloc(4096);

export function readlinkat(dirfd: number, path: string): string {
  const n = check(rawReadlinkat(dirfd, path, linkBuf, linkBuf.length), 'readlinkat', path);
  return nameFromBytes(linkBuf.subarray(0, n));
}
