// The parent half of daemonizing (see daemon.ts): start the command again as a detached child and
// wait for its one line. Kept apart from daemon.ts so that the process that only waits loads nothing of
// the FUSE bridge or the core.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

import type { MountRequest } from './mount-args.js';

export const EXIT_FAIL = 32;
export const DAEMON_ENV = 'OVLFS_DAEMON_FD';

function log(line: string): void {
  process.stderr.write(`ovlfs: ${line}\n`);
}

/** The parent half of daemonizing: start the child, wait for its one line, exit accordingly. */
export function daemonize(req: MountRequest, argv: string[]): Promise<number> {
  const logFd = req.log !== undefined ? openSync(req.log, 'a') : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, ...argv], {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'pipe'],
    env: { ...process.env, [DAEMON_ENV]: '3' },
  });
  if (typeof logFd === 'number') closeSync(logFd);
  return new Promise((resolveExit) => {
    let said = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.on('data', (d: Buffer) => (said += d.toString()));
    // The child closes the pipe once it has said its line; a child that dies closes it too.
    pipe.on('end', () => {
      const line = said.trim();
      if (line === 'ok') {
        child.unref();
        resolveExit(0);
      } else {
        log(line !== '' ? `mount failed: ${line}` : `the daemon exited (${child.exitCode}) before the mount was live${req.log ? `; see ${req.log}` : ''}`);
        resolveExit(EXIT_FAIL);
      }
    });
    child.on('error', (e) => {
      log(`cannot start the daemon: ${e.message}`);
      resolveExit(EXIT_FAIL);
    });
  });
}
