// The scratch setting of the tests that run the ovlfs command as installed: a temporary directory with
// the command built into it (build-ovlfs.ts), one lower layer `l` holding `f`, and container layouts
// made in it as containers/storage makes them.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { isMounted } from '../../src/mount-table.js';
import { buildOvlfs } from './build-ovlfs.js';

/** Why the command's mounts cannot be tested here, or undefined when they can. */
export function fuseMountSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting needs root';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  if (spawnSync('sh', ['-c', 'command -v fusermount3']).status !== 0) return 'no fusermount3 (fuse3)';
  return undefined;
}

/** A container's layout: diff (the upper layer), work, merged (the mount point), and files for the command. */
export interface ContainerLayout {
  dir: string;
  mnt: string;
  pidfile: string;
  log: string;
}

export class CommandFixture {
  /** The scratch directory: the layers (`l`) are given relative to it. */
  readonly base: string;
  /** The directory of the built command (ovlfs.sh, ovlfs.cjs). */
  readonly bin: string;
  private containers = 0;

  constructor(prefix: string) {
    this.base = mkdtempSync(join(tmpdir(), prefix));
    this.bin = dirname(buildOvlfs(this.base));
    mkdirSync(join(this.base, 'l'));
    writeFileSync(join(this.base, 'l/f'), 'from below\n');
  }

  /** A fresh container layout, as containers/storage makes one. */
  container(): ContainerLayout {
    const dir = join(this.base, `c${++this.containers}`);
    for (const d of ['diff', 'work', 'merged']) mkdirSync(join(dir, d), { recursive: true });
    return { dir, mnt: join(dir, 'merged'), pidfile: join(dir, 'pid'), log: join(dir, 'log') };
  }

  /** Detaches every container's mount still there, then removes the directory. */
  cleanup(): void {
    for (let i = 1; i <= this.containers; i++) {
      const m = join(this.base, `c${i}/merged`);
      if (isMounted(m)) spawnSync('umount', ['-l', m]);
    }
    rmSync(this.base, { recursive: true, force: true });
  }
}
