// A write through a shared mapping changes the file's mtime and ctime, and stat shows it once the
// mapping's file is closed, on the mount as on the kernel overlay. An upper file is opened in FUSE
// passthrough, where the kernel writes the mapped pages to the backing file itself: no WRITE reaches
// the daemon, and nothing in the kernel drops the FUSE inode's attributes, which the mount lets it
// keep for a day. xfstests' generic/080 checks this.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { mountSideBySide, sideBySideSkip } from '../support/side-by-side.js';
import { ok } from '../support/shell.js';

function skipReason(): string | undefined {
  const reason = sideBySideSkip('the mmap times test');
  if (reason !== undefined) return reason;
  if (spawnSync('xfs_io', ['-V']).status !== 0) {
    process.stdout.write('# skipping the mmap times test: it needs xfs_io (xfsprogs) for mmap writes\n');
    return 'needs xfs_io';
  }
  return undefined;
}

const layers = (dir: string): void => {
  for (const d of ['l', 'u', 'w', 'm']) ok(`mkdir -p '${join(dir, d)}'`);
  writeFileSync(join(dir, 'l', 'lower'), 'lower data\n');
};
const options = (dir: string): string => `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`;
const times = (file: string): string => ok(`stat -c '%y %z' '${file}'`).trim();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('an mmap write shows in mtime and ctime after close, as on the kernel overlay', { skip: skipReason() }, async () => {
  const s = await mountSideBySide('ovlfs-mmap-times-', layers, options);
  try {
    for (const name of ['new', 'lower']) {
      const seen: Record<string, boolean> = {};
      for (const [side, mnt] of [['kernel', s.kmnt], ['ovlfs', s.omnt]] as const) {
        const file = join(mnt, name);
        // A new file, or a lower one copied up by the write: upper either way, so passthrough on ovlfs.
        ok(`xfs_io -f -c 'pwrite 0 4k' -c fsync '${file}'`);
        const before = times(file);
        // Coarse kernel timestamps advance with the tick: wait well past one.
        await sleep(50);
        ok(`xfs_io -c 'mmap 0 4k' -c 'mread 0 4k' -c 'mwrite 0 4k' '${file}'`);
        seen[side] = times(file) !== before;
      }
      assert.deepEqual(seen, { kernel: true, ovlfs: true }, `times changed by an mmap write of ${name}`);
    }
  } finally {
    await s.close();
  }
});
