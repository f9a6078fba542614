// FORGET through a real mount: once the kernel forgets the nodes it was given (drop_caches evicts its
// inodes), the bridge drops their ids and the core may evict them (node_cache=), and the mount goes on
// working: the same names, attributes and contents, writes and copy-ups included.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { mountFuse } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { ok } from '../support/shell.js';
import type { CountingArg } from './counting-overlay-fs.js';

const FILES = 3000;
const NODE_CACHE = 200;

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (mount, drop_caches)';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  return undefined;
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    writeFileSync('/proc/sys/vm/drop_caches', '2');
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('after FORGET the daemon drops the nodes, and the mount still works', { skip: skipReason() }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'ovlfs-forget-'));
  const mnt = join(base, 'm');
  for (const d of ['l/d', 'u', 'w', 'm']) mkdirSync(join(base, d), { recursive: true });
  for (let i = 0; i < FILES; i++) writeFileSync(join(base, 'l/d', `f${i}`), `file ${i}\n`);
  const counters = new SharedArrayBuffer(16);
  const count = new Int32Array(counters);
  const arg: CountingArg = { overlay: `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w,node_cache=${NODE_CACHE}`, counters };
  const mount = await mountFuse({
    mountpoint: mnt,
    fsname: 'ovlfs',
    source: 'ovlfs-forget-test',
    filesystem: { module: new URL('./counting-overlay-fs.ts', import.meta.url), export: 'createCountingOverlayFs', arg },
    options: { allowOther: true, defaultPermissions: true },
  });
  try {
    const listing = ok(`find d -type f -exec stat -c '%n %s %i' {} + | sort`, mnt);
    assert.equal(listing.trim().split('\n').length, FILES);
    assert.ok(Atomics.load(count, 0) > FILES, `the kernel was given every node (${Atomics.load(count, 0)} ids)`);

    await until('FORGET of the listed nodes', () => Atomics.load(count, 0) < FILES / 10);
    assert.ok(Atomics.load(count, 2) > 0, 'FORGET arrived');
    assert.ok(Atomics.load(count, 1) <= NODE_CACHE + 16, `the core keeps at most node_cache unreferenced nodes (${Atomics.load(count, 1)})`);

    // Looked up afresh: the same names, sizes and inode numbers, the same contents.
    assert.equal(ok(`find d -type f -exec stat -c '%n %s %i' {} + | sort`, mnt), listing);
    assert.equal(ok('cat d/f7 d/f2999', mnt), 'file 7\nfile 2999\n');
    // A copy-up and a new file after the nodes went, then forgotten once more and found again.
    ok('echo more >> d/f7 && echo new > d/new && mv d/f8 d/f8-moved', mnt);
    await until('FORGET after the changes', () => Atomics.load(count, 0) < FILES / 10);
    assert.equal(ok('cat d/f7 d/new d/f8-moved; ls d | wc -l', mnt), 'file 7\nmore\nnew\nfile 8\n3001\n');
    assert.equal(ok('cat d/f7', `${base}/u`), 'file 7\nmore\n');
  } finally {
    await mount.unmount();
    if (isMounted(mnt)) ok(`umount -l '${mnt}'`);
    rmSync(base, { recursive: true, force: true });
  }
});
