// Leaving the caller, for a command that becomes the daemon of the mount it made (mount-in-place.ts):
// stdin on /dev/null, stdout and stderr on the log file or /dev/null (containers/storage reads the mount
// program's output until every copy of it is closed), and a session of its own, so that signals meant
// for the caller's process group (a ^C in its terminal) do not reach the daemon. dup2 keeps the fd
// numbers, so process.stderr, if it was opened already, writes to the log from then on. A spare daemon
// (spare.ts) joins its next caller the same way, and leaves it again once it has mounted.
import { createRequire } from 'node:module';
import { closeSync, openSync } from 'node:fs';

type Koffi = typeof import('koffi');

type Calls = { dup2: (oldfd: number, newfd: number) => number; setsid: () => number };
let calls: Calls | undefined;

/** Declared once: a spare daemon leaves and joins a caller at every mount. */
function libc(): Calls {
  if (calls !== undefined) return calls;
  const lib = (createRequire(import.meta.url)('koffi') as Koffi).load('libc.so.6');
  calls = {
    dup2: lib.func('int dup2(int oldfd, int newfd)') as Calls['dup2'],
    setsid: lib.func('int setsid(void)') as Calls['setsid'],
  };
  return calls;
}

export function detachFromCaller(log: string | undefined): void {
  const { dup2, setsid } = libc();
  const nul = openSync('/dev/null', 'r+');
  const out = log !== undefined ? openSync(log, 'a') : nul;
  dup2(nul, 0);
  dup2(out, 1);
  dup2(out, 2);
  for (const fd of new Set([nul, out])) if (fd > 2) closeSync(fd);
  // Fails for a process group leader, which a background job of a shell without job control is not, and
  // for a spare that left a caller before: it has its own session already.
  setsid();
}

/** A spare taking a mount: its stdout and stderr become the claiming script's, until it detaches again. */
export function attachToCaller(stdoutFd: number, stderrFd: number): void {
  const { dup2 } = libc();
  dup2(stdoutFd, 1);
  dup2(stderrFd, 2);
  for (const fd of new Set([stdoutFd, stderrFd])) if (fd > 2) closeSync(fd);
}
