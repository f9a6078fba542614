// Parallel clients on one file while its copy-up runs on an I/O thread: the writing open that starts
// the copy waits for it (as the kernel's ovl_copy_up_start/end), readers of the lower file go on, other
// names are served meanwhile, and every byte ends where the clients' own model says it must.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { mountFuse } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { ok } from '../support/shell.js';

const SIZE = 64 << 20;
const BLOCK = 4096;

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'needs root to mount';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  return undefined;
}

/** A tiny seeded generator (mulberry32), so a failure can be replayed with the printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The lower file's block `i`: its number in every word, so any misplaced block shows. */
function lowerBlock(i: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let o = 0; o < BLOCK; o += 4) b.writeUInt32LE(i, o);
  return b;
}

/** The byte client `id` writes: a letter, so that it never looks like a lower block. */
function fill(id: number): string {
  return String.fromCharCode(0x41 + id);
}

/** A client process: `dd` writes of its own blocks (each a distinct byte) at seeded offsets, and reads of lower blocks. */
function client(mnt: string, id: number, blocks: number[], reads: number[]): Promise<{ code: number | null; out: string }> {
  const writes = blocks.map((b) => `head -c ${BLOCK} /dev/zero | tr '\\0' '${fill(id)}' | dd of=f bs=${BLOCK} seek=${b} conv=notrunc status=none`);
  const checks = reads.map((b) => `dd if=f bs=${BLOCK} skip=${b} count=1 status=none | od -An -tu4 -N4`);
  const p = spawn('sh', ['-c', [...writes, ...checks].join('\n')], { cwd: mnt });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': the last of stdout may arrive after the process has exited.
  return new Promise((res) => p.on('close', (code) => res({ code, out })));
}

test('seeded parallel clients on one file during its copy-up', { skip: skipReason(), timeout: 60_000 }, async () => {
  const seed = Number(process.env.OVLFS_SEED ?? Date.now() % 1_000_000);
  process.stdout.write(`# seed ${seed}\n`);
  const rand = prng(seed);
  const base = mkdtempSync(join(tmpdir(), 'ovlfs-copyup-load-'));
  const mnt = join(base, 'm');
  for (const d of ['l/other', 'u', 'w', 'm']) mkdirSync(join(base, d), { recursive: true });
  const fd = openSync(join(base, 'l/f'), 'w');
  for (let i = 0; i < SIZE / BLOCK; i++) writeSync(fd, lowerBlock(i));
  closeSync(fd);
  for (let i = 0; i < 50; i++) writeFileSync(join(base, 'l/other', `n${i}`), `${i}\n`);
  const mount = await mountFuse({
    mountpoint: mnt,
    fsname: 'ovlfs',
    source: 'ovlfs-copyup-load-test',
    filesystem: { module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url), export: 'createOverlayFs', arg: { overlay: `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w` } },
    options: { allowOther: true, defaultPermissions: true, debug: process.env.OVLFS_FUSE_DEBUG === '1' },
  });
  // A reader holds the lower file open from before the copy-up; it must see the writes afterwards.
  let early: number | undefined;
  try {
    early = openSync(join(mnt, 'f'), 'r');
    // Each client writes its own blocks (no two clients share one) and reads blocks nobody writes.
    const total = SIZE / BLOCK;
    const order = Array.from({ length: total }, (_, i) => i);
    for (let i = total - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const clients = 6;
    const per = 8;
    const mine = Array.from({ length: clients }, (_, c) => order.slice(c * per, (c + 1) * per));
    const untouched = order.slice(clients * per, clients * per + 8);
    const runs = mine.map((blocks, c) => client(mnt, c, blocks, untouched.slice(0, 3)));
    // Meanwhile other names answer, the copy-up notwithstanding.
    assert.equal(ok('cat other/n7 other/n49', mnt), '7\n49\n');
    const results = await Promise.all(runs);
    for (const [c, r] of results.entries()) {
      assert.equal(r.code, 0, `client ${c}: ${r.out}`);
      const got = r.out.trim().split(/\s+/).map(Number);
      assert.deepEqual(got, untouched.slice(0, 3), `client ${c} read lower blocks`);
    }
    assert.equal(statSync(join(mnt, 'f')).size, SIZE);
    // The model: lower blocks except each client's, which hold its byte.
    const expect = (i: number): Buffer => {
      const c = mine.findIndex((blocks) => blocks.includes(i));
      return c < 0 ? lowerBlock(i) : Buffer.alloc(BLOCK, fill(c));
    };
    for (const file of [join(mnt, 'f'), join(base, 'u/f')]) {
      const data = readFileSync(file);
      assert.equal(data.length, SIZE, file);
      for (let i = 0; i < total; i++) {
        if (!data.subarray(i * BLOCK, (i + 1) * BLOCK).equals(expect(i))) assert.fail(`${file}: block ${i} is wrong (seed ${seed})`);
      }
    }
    const seen = Buffer.alloc(BLOCK);
    const b = mine[0]![0]!;
    readSync(early, seen, 0, BLOCK, b * BLOCK);
    assert.ok(seen.equals(expect(b)), 'a handle opened before the copy-up reads what was written after it');
  } finally {
    if (early !== undefined) closeSync(early);
    await mount.unmount();
    if (isMounted(mnt)) ok(`umount -l '${mnt}'`);
    rmSync(base, { recursive: true, force: true });
  }
});

