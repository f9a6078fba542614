// openat2(2): open relative to a directory fd, resolved so that the path cannot leave it.
// glibc has no wrapper (before 2.41), so it goes through syscall(2); the number is 437 everywhere.
import { AT_FDCWD, O_CLOEXEC, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS } from './constants.js';
import { check, declare } from './libc.js';

const SYS_openat2 = 437;
const rawOpenat2 = declare<(nr: number, dirfd: number, path: string, how: Buffer, size: number) => number>(
  'long syscall(long nr, int dirfd, const char *path, void *how, size_t size)',
);
const openat = declare<(dirfd: number, path: string, flags: number, mode: number) => number>(
  'int openat(int dirfd, const char *path, int flags, unsigned int mode)',
);

/** struct open_how { u64 flags; u64 mode; u64 resolve; }, reused: calls are synchronous. */
const how = Buffer.alloc(24);
const howView = new DataView(how.buffer, how.byteOffset, how.byteLength);

export interface Openat2Options {
  mode?: number;
  /** Refuse every symlink on the way, not only magic links (RESOLVE_NO_SYMLINKS). */
  noSymlinks?: boolean;
}

/**
 * Opens `path` below `dirfd` with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS (and
 * RESOLVE_NO_SYMLINKS when asked): absolute paths, `..` above dirfd and /proc magic links fail
 * with EXDEV or ELOOP instead of leaving the tree. O_CLOEXEC is always added.
 */
export function openat2(dirfd: number, path: string, flags: number, options: Openat2Options = {}): number {
  let resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  if (options.noSymlinks) resolve |= RESOLVE_NO_SYMLINKS;
  // Each field is a u64 whose high half stays 0 from the allocation: only the low halves are written.
  howView.setUint32(0, (flags | O_CLOEXEC) >>> 0, true);
  howView.setUint32(8, options.mode ?? 0, true);
  howView.setUint32(16, resolve, true);
  return check(rawOpenat2(SYS_openat2, dirfd, path, how, 24), 'openat2', path);
}

/** openat(2) without resolve restrictions: only for paths the caller trusts (a layer's root at open). */
export function openPath(path: string, flags: number, mode = 0): number {
  return check(openat(AT_FDCWD, path, flags | O_CLOEXEC, mode), 'open', path);
}
