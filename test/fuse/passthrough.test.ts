// FUSE passthrough through a real mount: opens of data that can no longer move (upper, not metacopy)
// are read and written by the kernel itself, and no READ or WRITE reaches the daemon; a handle opened
// on a lower file before its copy-up stays ours (cached mode), keeps the copy-up promise, and keeps
// every other open of that node cached while it is open, as the kernel requires.
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { mountFuse } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { ok } from '../support/shell.js';
import type { CountingArg } from './counting-overlay-fs.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'passthrough needs root (CAP_SYS_ADMIN)';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  const [major, minor] = (readFileSync('/proc/sys/kernel/osrelease', 'utf8').match(/^(\d+)\.(\d+)/) ?? []).slice(1).map(Number);
  if (major! < 6 || (major === 6 && minor! < 9)) return 'FUSE passthrough needs Linux 6.9';
  return undefined;
}

test('passthrough for upper files, cached handles for data that may still move', { skip: skipReason() }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'ovlfs-passthrough-'));
  const mnt = join(base, 'm');
  for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(base, d));
  writeFileSync(join(base, 'l/f'), 'lower data\n');
  const counters = new SharedArrayBuffer(16);
  const count = new Int32Array(counters);
  const data = (): number => Atomics.load(count, 3);
  const arg: CountingArg = { overlay: `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w`, counters };
  const mount = await mountFuse({
    mountpoint: mnt,
    fsname: 'ovlfs',
    source: 'ovlfs-passthrough-test',
    filesystem: { module: new URL('./counting-overlay-fs.ts', import.meta.url), export: 'createCountingOverlayFs', arg },
    options: { allowOther: true, defaultPermissions: true },
  });
  let early: number | undefined;
  try {
    // A new file is upper from the start: its data never reaches the daemon.
    let before = data();
    ok('dd if=/dev/urandom of=n bs=64k count=64 status=none && cmp n ../u/n && cat n n > /dev/null', mnt);
    assert.equal(data(), before, 'READ/WRITE of a passthrough file reached the daemon');

    // A read-only handle on the lower file, opened before the copy-up, with its pages cached.
    early = openSync(join(mnt, 'f'), 'r');
    const buf = Buffer.alloc(64);
    assert.equal(buf.toString('utf8', 0, readSync(early, buf, 0, 64, 0)), 'lower data\n');
    // While it is open, the node stays cached: these opens must not fail (EIO) and go through us.
    before = data();
    ok('printf "upper data\\n" > f && cat f > /dev/null', mnt);
    assert.ok(data() > before, 'opens next to a cached handle are served by the daemon');
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    assert.equal(buf.toString('utf8', 0, readSync(early, buf, 0, 64, 0)), 'upper data\n', 'the early handle reads the copied-up data');
    closeSync(early);
    early = undefined;

    // Now every open of f is passthrough, and a later read sees its writes.
    before = data();
    ok('printf "third\\n" >> f && cat f > ../seen', mnt);
    assert.equal(data(), before, 'READ/WRITE of f after its copy-up reached the daemon');
    assert.equal(readFileSync(join(base, 'seen'), 'utf8'), 'upper data\nthird\n');
    assert.equal(readFileSync(join(base, 'u/f'), 'utf8'), 'upper data\nthird\n');
    assert.equal(ok('stat -c %s f', mnt).trim(), String('upper data\nthird\n'.length));
  } finally {
    if (early !== undefined) closeSync(early);
    await mount.unmount();
    if (isMounted(mnt)) ok(`umount -l '${mnt}'`);
    rmSync(base, { recursive: true, force: true });
  }
});
