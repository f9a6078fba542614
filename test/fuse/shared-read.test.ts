// Through a real mount: programs that open the same lower file one after another share one host open
// of it (src/overlay/shared-read.ts), counted as this process's fds on the lower file (the mount is
// served by a worker of this process); a copy-up through the mount ends it once no handle uses it.
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { mountFuse } from '../../src/fuse/bridge/mount.js';
import type { OverlayFsArg } from '../../src/fuse/overlay-fs.js';
import { isMounted } from '../../src/mount-table.js';
import { fdsOn } from '../support/fds.js';
import { ok } from '../support/shell.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'the mount needs root';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  return undefined;
}

test('programs reading a lower file one after another share one open of it, until a copy-up', { skip: skipReason() }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'ovlfs-shared-read-'));
  const mnt = join(base, 'm');
  for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(base, d));
  const lower = join(base, 'l/f');
  writeFileSync(lower, 'lower data\n');
  const arg: OverlayFsArg = { overlay: `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w` };
  const mount = await mountFuse({
    mountpoint: mnt,
    fsname: 'ovlfs',
    source: 'ovlfs-shared-read-test',
    filesystem: { module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url), export: 'createOverlayFs', arg },
    options: { allowOther: true, defaultPermissions: true },
  });
  let early: number | undefined;
  try {
    ok('for i in 1 2 3 4 5; do cat f > /dev/null; done', mnt);
    assert.equal(fdsOn(lower), 1, 'five programs, one open of the lower file');
    early = openSync(join(mnt, 'f'), 'r');
    assert.equal(fdsOn(lower), 1, 'a handle opened now shares it too');
    ok('printf "upper data\\n" > f', mnt);
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    const buf = Buffer.alloc(64);
    assert.equal(buf.toString('utf8', 0, readSync(early, buf, 0, 64, 0)), 'upper data\n', 'the early handle reads the copied-up data');
    assert.equal(fdsOn(lower), 0, 'no handle uses the lower file any more');
    closeSync(early);
    early = undefined;
    ok('cat f > /dev/null', mnt);
    assert.equal(fdsOn(lower), 0);
  } finally {
    if (early !== undefined) closeSync(early);
    await mount.unmount();
    if (isMounted(mnt)) ok(`umount -l '${mnt}'`);
    rmSync(base, { recursive: true, force: true });
  }
});
