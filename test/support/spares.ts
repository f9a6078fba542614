// Stopping the spare daemons a test left (src/cli/spare.ts): a daemon that ovlfs.sh started waits, once
// its mount has ended, in the spare directory its environment names, for the next mount.
import { readdirSync, readFileSync } from 'node:fs';

/** Kills the processes started with OVLFS_SPARE_DIR under `dir` (ovlfs daemons, serving or waiting). */
export function stopSpares(dir: string): void {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let env: string;
    try {
      env = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (!env.split('\0').some((e) => e.startsWith(`OVLFS_SPARE_DIR=${dir}/`))) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
}
