// renameat2(2): the kernel overlay's atomic steps. RENAME_NOREPLACE refuses to clobber,
// RENAME_EXCHANGE swaps two names, RENAME_WHITEOUT moves a name and leaves a 0/0 whiteout behind.
import { check, declare } from './libc.js';

const rawRenameat2 = declare<(olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number) => number>(
  'int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)',
);

export function renameat2(olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags = 0): void {
  check(rawRenameat2(olddirfd, oldpath, newdirfd, newpath, flags), 'rename', oldpath, newpath);
}
