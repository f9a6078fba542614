// Two mounts on one upper and work directory, ovlfs next to the kernel overlay. The kernel marks a mount's
// upper and work directories in use; a second mount of them (index=off) is warned about and goes on, and
// what the first mount does next is the same on both: a new directory in a merged directory (xfstests'
// generic/732 failed here with ENOENT, the second mount having cleared the work directory under the first).
// ovlfs's mark is an flock on each directory, held while the overlay is open.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { mountFuse, type FuseMount } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { attempt } from '../support/hostile-env.js';
import { sideBySideSkip } from '../support/side-by-side.js';

const reason = sideBySideSkip('in-use tests');

describe('a second mount of an upper and work directory in use', { skip: reason }, () => {
  let base = '';
  const fuse: FuseMount[] = [];
  const options = (side: string): string => `lowerdir=${base}/${side}/l,upperdir=${base}/${side}/u,workdir=${base}/${side}/w`;
  const mountOvlfs = async (mnt: string): Promise<FuseMount> => {
    const m = await mountFuse({
      mountpoint: mnt,
      fsname: 'ovlfs',
      source: 'ovlfs-test',
      filesystem: { module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url), export: 'createOverlayFs', arg: { overlay: options('ovlfs') } },
      options: { allowOther: true, defaultPermissions: true },
    });
    fuse.push(m);
    return m;
  };

  before(() => {
    base = fs.mkdtempSync(join(tmpdir(), 'ovlfs-in-use-'));
    for (const side of ['kernel', 'ovlfs']) {
      for (const d of ['l', 'u', 'w', 'm1', 'm2', 'm3']) fs.mkdirSync(join(base, side, d), { recursive: true });
      fs.writeFileSync(join(base, side, 'l', 'lower'), 'below\n');
    }
  });
  after(async () => {
    for (const m of fuse) await m.unmount().catch(() => {});
    for (const side of ['kernel', 'ovlfs']) {
      for (const d of ['m1', 'm2', 'm3']) if (isMounted(join(base, side, d))) spawnSync('umount', ['-l', join(base, side, d)]);
    }
    if (base !== '') fs.rmSync(base, { recursive: true, force: true });
  });

  test('both mount, and the first still makes directories in a merged directory', async () => {
    const k = (d: string): string => join(base, 'kernel', d);
    const o = (d: string): string => join(base, 'ovlfs', d);
    assert.equal(spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', options('kernel'), k('m1')]).status, 0);
    const first = await mountOvlfs(o('m1'));
    // Something of the first mount's in its work directory, as a copy-up in flight leaves there.
    fs.writeFileSync(join(o('w'), 'work', 'in-flight'), '');
    assert.equal(spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', options('kernel'), k('m2')]).status, 0, 'the kernel overlay mounts again (index=off)');
    await mountOvlfs(o('m2'));
    assert.ok(isMounted(o('m2')));

    for (const [what, fn] of [
      ['mkdir in the merged root', (m: string) => fs.mkdirSync(join(m, 'A'))],
      ['a file in the new directory', (m: string) => fs.writeFileSync(join(m, 'A', 'f'), 'x')],
      ['a second directory', (m: string) => fs.mkdirSync(join(m, 'B'))],
      ['rename between them', (m: string) => fs.renameSync(join(m, 'A', 'f'), join(m, 'B', 'f'))],
    ] as const) {
      const kernel = attempt(() => fn(k('m1')));
      assert.equal(attempt(() => fn(o('m1'))), kernel, `${what}: the kernel overlay answers ${kernel}`);
    }
    assert.ok(fs.existsSync(join(o('w'), 'work', 'in-flight')), 'the second mount left the first one\'s work directory as it was');

    // Once neither mount holds them, the next mount clears the work directory as usual.
    await fuse.pop()!.unmount();
    await first.unmount();
    fuse.length = 0;
    await mountOvlfs(o('m3'));
    assert.equal(fs.existsSync(join(o('w'), 'work', 'in-flight')), false, 'the locks went with the mounts');
  });
});
