// Another process's open files, through pidfd_open(2) and pidfd_getfd(2) (Linux 5.6+): a duplicate of the
// open file itself, of any kind (a socket too, which reopening /proc/PID/fd/N cannot give) and with its
// offset and flags. The caller needs ptrace rights over the process (same user, or CAP_SYS_PTRACE).
import { check, declare } from './libc.js';

// The same numbers on every architecture: both came after the syscall tables were unified.
const SYS_pidfd_open = 434;
const SYS_pidfd_getfd = 438;

const rawPidfdOpen = declare<(nr: number, pid: number, flags: number) => number>('long syscall(long nr, int pid, unsigned int flags)');
const rawPidfdGetfd = declare<(nr: number, pidfd: number, targetfd: number, flags: number) => number>(
  'long syscall(long nr, int pidfd, int targetfd, unsigned int flags)',
);

export function pidfdOpen(pid: number): number {
  return check(rawPidfdOpen(SYS_pidfd_open, pid, 0), 'pidfd_open');
}

/** A new fd (close-on-exec) for the file that `targetfd` is in the process of `pidfd`. */
export function pidfdGetfd(pidfd: number, targetfd: number): number {
  return check(rawPidfdGetfd(SYS_pidfd_getfd, pidfd, targetfd, 0), 'pidfd_getfd');
}
