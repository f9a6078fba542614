// Leaving the caller, for a command that becomes the daemon of the mount it made (mount-in-place.ts):
// stdin on /dev/null, stdout and stderr on the log file or /dev/null (containers/storage reads the mount
// program's output until every copy of it is closed), and a session of its own, so that signals meant
// for the caller's process group (a ^C in its terminal) do not reach the daemon. dup2 keeps the fd
// numbers, so process.stderr, if it was opened already, writes to the log from then on.
import { createRequire } from 'node:module';
import { closeSync, openSync } from 'node:fs';

type Koffi = typeof import('koffi');

export function detachFromCaller(log: string | undefined): void {
  const libc = (createRequire(import.meta.url)('koffi') as Koffi).load('libc.so.6');
  const dup2 = libc.func('int dup2(int oldfd, int newfd)') as (oldfd: number, newfd: number) => number;
  const setsid = libc.func('int setsid(void)') as () => number;
  const nul = openSync('/dev/null', 'r+');
  const out = log !== undefined ? openSync(log, 'a') : nul;
  dup2(nul, 0);
  dup2(out, 1);
  dup2(out, 2);
  for (const fd of new Set([nul, out])) if (fd > 2) closeSync(fd);
  // Fails only for a process group leader, which a background job of a shell without job control is not.
  setsid();
}
