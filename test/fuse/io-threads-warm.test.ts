// The I/O threads' life: they start only once data traffic is sustained (a few MiB read once, a
// container's binaries at start-up, are served on the serving thread, which starts no Node thread for
// them; a long read moves to the threads partway and every byte still arrives in place), and they end
// by themselves when closed, also right after a copy started them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { WARM_BYTES } from '../../src/fuse/bridge/io-threads.js';
import { mountFuse } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { ok } from '../support/shell.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'needs root to mount';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  return undefined;
}

/** `size` bytes in which every 4-byte word holds its own index, so a misplaced chunk shows. */
function numbered(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let o = 0; o < size; o += 4) b.writeUInt32LE(o / 4, o);
  return b;
}

/** Threads of this process: the serving thread and its I/O threads run in it. */
function threads(): number {
  return readdirSync('/proc/self/task').length;
}

test('the I/O threads start on sustained data, not on a few MiB read once', { skip: skipReason(), timeout: 60_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'ovlfs-io-warm-'));
  const mnt = join(base, 'm');
  for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(base, d));
  const small = numbered(3 << 20);
  const big = numbered(WARM_BYTES + (8 << 20));
  writeFileSync(join(base, 'l/small'), small);
  writeFileSync(join(base, 'l/big'), big);
  const mount = await mountFuse({
    mountpoint: mnt,
    source: 'ovlfs-io-warm-test',
    filesystem: { module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url), export: 'createOverlayFs', arg: { overlay: `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w` } },
    options: { allowOther: true, defaultPermissions: true },
  });
  try {
    const before = threads();
    assert.ok(readFileSync(join(mnt, 'small')).equals(small), 'the small file reads back whole');
    assert.equal(threads(), before, 'no I/O thread started for 3 MiB');
    assert.ok(readFileSync(join(mnt, 'big')).equals(big), 'the big file reads back whole, across the hand-over');
    assert.ok(threads() > before, 'the I/O threads started once the data went past WARM_BYTES');
  } finally {
    await mount.unmount();
    if (isMounted(mnt)) ok(`umount -l '${mnt}'`);
    rmSync(base, { recursive: true, force: true });
  }
});

test('closing the I/O threads right after a copy started them lets each end by itself (no abort while one still loads)', { skip: process.platform !== 'linux' ? 'needs Linux' : undefined, timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ovlfs-io-close-'));
  try {
    writeFileSync(join(dir, 'src'), numbered(64 << 10));
    // A copy job starts the threads (six, to widen the window); the first to run takes it, and close()
    // follows at once, while others may still be loading koffi. Terminating one then aborted the process.
    const script = `
      import { closeSync, openSync, readFileSync } from 'node:fs';
      import { IoThreads } from ${JSON.stringify(new URL('../../src/fuse/bridge/io-threads.ts', import.meta.url).href)};
      for (let round = 0; round < 5; round++) {
        const io = new IoThreads(openSync('/dev/null', 'w'), 1 << 16, { threads: 6 });
        const src = openSync(${JSON.stringify(join(dir, 'src'))}, 'r');
        const dst = openSync(${JSON.stringify(join(dir, 'dst'))}, 'w');
        let errno = -1;
        io.copy(src, dst, 64 << 10, false, (e) => { errno = e; });
        io.close();
        if (errno !== 0) throw new Error('copy: errno ' + errno);
        if (!readFileSync(${JSON.stringify(join(dir, 'dst'))}).equals(readFileSync(${JSON.stringify(join(dir, 'src'))}))) throw new Error('copy differs');
        closeSync(src);
        closeSync(dst);
      }
      process.stdout.write('closed\\n');`;
    // A file, not -e: an eval'd worker would inherit --input-type=module and fail to start.
    writeFileSync(join(dir, 'close.mts'), script);
    const cwd = fileURLToPath(new URL('../..', import.meta.url));
    for (let i = 0; i < 2; i++) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, 'close.mts')], { cwd, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `run ${i}: status ${r.status}, signal ${r.signal}\n${r.stderr.slice(0, 2000)}`);
      assert.equal(r.stdout, 'closed\n');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
