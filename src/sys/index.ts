// The system calls Node lacks, reached through koffi (see libc.ts). Everything Node does well on
// an fd (read, write, fsync, close, fstat) stays on Node. Only src/layer/ and src/fuse/ use this.
import { errorCode, fsError } from '../errors.js';
import { AT_EMPTY_PATH, O_DIRECTORY, O_PATH, RENAME_NOREPLACE } from './constants.js';
import { openat2 } from './open.js';
import { renameat2 } from './rename.js';
import { statx } from './stat.js';
import { closeSync } from 'node:fs';

export * from './constants.js';
export { errnoCode } from './libc.js';
export { openat2, openPath, type Openat2Options } from './open.js';
export { statx, tryStatx, type Statx } from './stat.js';
export { renameat2 } from './rename.js';
export { linkat, mkdirat, mknodat, readlinkat, symlinkat, unlinkat } from './namespace.js';
export { fchmodat, fchownat, futimens, utimensat } from './attr.js';
export {
  fgetxattr, flistxattr, fremovexattr, fsetxattr, getxattrAt, lgetxattr, llistxattr, lremovexattr, lsetxattr,
} from './xattr.js';
export { copyFileRange, fallocate, ficlone, ftruncate64, ioctl, lseek, pwrite64, syncfs } from './data.js';
export { eventfd, poll, type PollFd } from './poll.js';
export { tryLockExclusive } from './flock.js';
export { pidfdGetfd, pidfdOpen } from './pidfd.js';
export { listDirectory, type RawDirent } from './dir.js';

let probed: { call: string; code: string } | null | undefined;

/**
 * Checks once per process that the calls a layer cannot do without are there: a kernel before 5.6
 * has no openat2, and a seccomp filter (some container runtimes) may refuse it or renameat2.
 * Throws an error that names the missing call, so a layer fails when it is opened, not later.
 */
export function probe(dirfd: number, layer: string): void {
  probed ??= missingCall(dirfd);
  if (probed === null) return;
  const { call, code } = probed;
  throw fsError(code, call, layer, undefined,
    `${call}(2) is not available (${code}): ovlfs needs Linux 5.6 or later, without a seccomp filter that refuses ${call}`);
}

function missingCall(dirfd: number): { call: string; code: string } | null {
  const codeOf = (err: unknown): string => errorCode(err) ?? 'ENOSYS';
  try {
    closeSync(openat2(dirfd, '.', O_PATH | O_DIRECTORY, { noSymlinks: true }));
  } catch (err) {
    return { call: 'openat2', code: codeOf(err) };
  }
  try {
    statx(dirfd, '', AT_EMPTY_PATH);
  } catch (err) {
    return { call: 'statx', code: codeOf(err) };
  }
  try {
    // A name that is never there: ENOENT (or EROFS on a read-only mount, which the kernel checks
    // first) means the call and its flags are known. ENOSYS, EINVAL (flags unknown) and EPERM (a
    // seccomp filter's usual answer) mean they are not.
    renameat2(dirfd, '.ovlfs-probe\n', dirfd, '.ovlfs-probe\n2', RENAME_NOREPLACE);
  } catch (err) {
    const code = codeOf(err);
    if (code === 'ENOSYS' || code === 'EINVAL' || code === 'EPERM') return { call: 'renameat2', code };
  }
  return null;
}
