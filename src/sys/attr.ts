// Attribute changes relative to a directory fd: utimensat with nanosecond times, fchmodat, fchownat.
import { AT_SYMLINK_NOFOLLOW, UTIME_OMIT } from './constants.js';
import { check, declare } from './libc.js';

const rawUtimensat = declare<(dirfd: number, path: string | null, times: Buffer, flags: number) => number>(
  'int utimensat(int dirfd, const char *path, void *times, int flags)',
);
const rawFutimens = declare<(fd: number, times: Buffer) => number>('int futimens(int fd, void *times)');
const rawFchmodat = declare<(dirfd: number, path: string, mode: number, flags: number) => number>(
  'int fchmodat(int dirfd, const char *path, unsigned int mode, int flags)',
);
const rawFchownat = declare<(dirfd: number, path: string, uid: number, gid: number, flags: number) => number>(
  'int fchownat(int dirfd, const char *path, unsigned int uid, unsigned int gid, int flags)',
);

const times = Buffer.alloc(32);

/** Fills struct timespec[2]; undefined leaves that time as it is (UTIME_OMIT). */
function fill(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): Buffer {
  for (const [offset, t] of [[0, atimeNs], [16, mtimeNs]] as const) {
    if (t === undefined) {
      times.writeBigInt64LE(0n, offset);
      times.writeBigInt64LE(BigInt(UTIME_OMIT), offset + 8);
    } else {
      // Floor division, so that times before 1970 keep 0 <= tv_nsec < 1e9.
      let sec = t / 1_000_000_000n;
      let nsec = t % 1_000_000_000n;
      if (nsec < 0n) {
        sec -= 1n;
        nsec += 1_000_000_000n;
      }
      times.writeBigInt64LE(sec, offset);
      times.writeBigInt64LE(nsec, offset + 8);
    }
  }
  return times;
}

/** utimensat(2) in nanoseconds; AT_SYMLINK_NOFOLLOW by default, undefined means UTIME_OMIT. */
export function utimensat(dirfd: number, path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined, flags = AT_SYMLINK_NOFOLLOW): void {
  check(rawUtimensat(dirfd, path, fill(atimeNs, mtimeNs), flags), 'utimensat', path);
}

/** futimens(3) in nanoseconds on an open fd. */
export function futimens(fd: number, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
  check(rawFutimens(fd, fill(atimeNs, mtimeNs)), 'futimens');
}

/**
 * fchmodat(2), AT_SYMLINK_NOFOLLOW by default: glibc then refuses a symlink (EOPNOTSUPP) instead of
 * changing whatever it points to, which may be outside the tree.
 */
export function fchmodat(dirfd: number, path: string, mode: number, flags = AT_SYMLINK_NOFOLLOW): void {
  check(rawFchmodat(dirfd, path, mode, flags), 'fchmodat', path);
}

/** fchownat(2), AT_SYMLINK_NOFOLLOW by default; -1 leaves an id as it is. */
export function fchownat(dirfd: number, path: string, uid: number, gid: number, flags = AT_SYMLINK_NOFOLLOW): void {
  check(rawFchownat(dirfd, path, uid >>> 0, gid >>> 0, flags), 'fchownat', path);
}
