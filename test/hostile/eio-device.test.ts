// EIO from a lower file on a failing device: an ext4 filesystem whose blocks under one file fail to
// read. Reading that file gives EIO to the caller (through the kernel overlay, the ovlfs mount and the
// library alike), a copy-up of it fails with EIO and leaves nothing behind, and the other files and the
// daemon keep working.
//
// Two failing devices, whichever this kernel can make: device-mapper with an `error` segment over the
// file's blocks, or a loop device over a disk image served by a FUSE file system (the bridge's loopback
// fixture) that fails reads of those blocks, as a disk with bad sectors does. Needs root, losetup,
// mkfs.ext4, debugfs and blockdev, and dmsetup with device-mapper or /dev/fuse; each skips with its reason.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import { mountFuse } from '../../src/fuse/bridge/mount.js';
import { alive, attempt, cannotMount, has, must, questions, run, scratch, trio, type Question, type View } from '../support/hostile-env.js';

const BLOCK = 4096;
const SECTORS_PER_BLOCK = BLOCK / 512;

function skipReason(device: 'device-mapper' | 'fuse'): string | false {
  const root = cannotMount();
  if (root !== undefined) return root;
  const missing = ['losetup', 'mkfs.ext4', 'debugfs', 'blockdev', ...(device === 'device-mapper' ? ['dmsetup'] : [])].filter((p) => !has(p));
  if (missing.length > 0) return `${missing.join(', ')} not installed`;
  if (device === 'fuse') return false;
  const v = run('dmsetup', ['version']);
  if (v.status !== 0 || !/Driver version/.test(v.stdout)) return `device-mapper is not available in this kernel (${(v.stderr || v.stdout).trim().split('\n')[0]})`;
  return false;
}
const reasons = { 'device-mapper': skipReason('device-mapper'), fuse: skipReason('fuse') };
for (const [device, reason] of Object.entries(reasons)) {
  if (reason) process.stdout.write(`# skipping the failing-device test on ${device}: ${reason}\n`);
}

/** Detaches a loop device; one that is still in use detaches when its last user lets go. */
function detach(dev: string): void {
  run('losetup', ['-d', dev]);
}

/** Unmounts, lazily if something still uses the mount. */
function unmount(dir: string): void {
  if (run('umount', [dir]).status !== 0) run('umount', ['-l', dir]);
}

/**
 * A 64 MiB ext4 image at `image` holding /bad (2 MiB), /good and /dir/inner, on a loop device the caller
 * detaches; and the runs of /bad's blocks.
 */
function makeImage(image: string, fill: string): { loop: string; runs: Array<[number, number]> } {
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 64 * 1024 * 1024);
  const loop = must('losetup', ['-f', '--show', image]).trim();
  try {
    must('mkfs.ext4', ['-q', '-F', '-b', String(BLOCK), loop]);
    fs.mkdirSync(fill);
    must('mount', [loop, fill]);
    fs.writeFileSync(join(fill, 'bad'), Buffer.alloc(2 * 1024 * 1024, 'b'));
    fs.writeFileSync(join(fill, 'good'), 'good\n'.repeat(1000));
    fs.mkdirSync(join(fill, 'dir'));
    fs.writeFileSync(join(fill, 'dir', 'inner'), 'inner\n');
    must('umount', [fill]);
    const runs = blockRuns(loop, '/bad');
    assert.ok(runs.length > 0, 'debugfs found no blocks for /bad');
    return { loop, runs };
  } catch (e) {
    unmount(fill);
    detach(loop);
    throw e;
  }
}

/** The file's data blocks, as runs of [first block, count], from debugfs on the unmounted filesystem. */
function blockRuns(dev: string, file: string): Array<[number, number]> {
  const blocks = must('debugfs', ['-R', `blocks ${file}`, dev]).trim().split(/\s+/).map(Number).filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => a - b);
  const runs: Array<[number, number]> = [];
  for (const b of blocks) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === b) last[1]++;
    else runs.push([b, 1]);
  }
  return runs;
}

/** A dm table: the loop device linearly, except `error` over the given block runs. */
function table(dev: string, sectors: number, runs: Array<[number, number]>): string {
  const lines: string[] = [];
  let at = 0;
  for (const [first, count] of runs) {
    const start = first * SECTORS_PER_BLOCK;
    if (start > at) lines.push(`${at} ${start - at} linear ${dev} ${at}`);
    lines.push(`${start} ${count * SECTORS_PER_BLOCK} error`);
    at = start + count * SECTORS_PER_BLOCK;
  }
  if (at < sectors) lines.push(`${at} ${sectors - at} linear ${dev} ${at}`);
  return lines.join('\n');
}

const q = (what: string, expected: string, fn: (v: View) => string): Question => [what, expected, fn];
const read = (path: string) => (v: View): string => attempt(() => v.fs.readFileSync(v.p(path), 'utf8').length, String);

/** The same questions to the kernel overlay, the ovlfs mount and the library over a lower layer at `lower`. */
async function onFailingLower(t: TestContext, base: string, lower: string): Promise<void> {
  const tr = await trio(t, base, (dir) => {
    fs.mkdirSync(join(dir, 'u'), { recursive: true });
    fs.mkdirSync(join(dir, 'w'));
    return `lowerdir=${lower},upperdir=${dir}/u,workdir=${dir}/w`;
  });

  await questions(t, tr, [
    q('stat of the file on the failing blocks works (its inode is fine)', 'OK 2097152', (v) => attempt(() => v.fs.statSync(v.p('/bad')).size, String)),
    q('reading it: EIO', 'EIO', read('/bad')),
    q('a copy-up of it (append): EIO', 'EIO', (v) => attempt(() => v.fs.appendFileSync(v.p('/bad'), 'x'))),
    q('reading it again: still EIO', 'EIO', read('/bad')),
    q('a good file reads', 'OK 5000', read('/good')),
    q('a good file copies up', 'OK', (v) => attempt(() => v.fs.appendFileSync(v.p('/good'), 'more\n'))),
    q('a directory lists', 'OK bad,dir,good,lost+found', (v) => attempt(() => (v.fs.readdirSync(v.p('/')) as string[]).sort().join(','), String)),
    q('a file in a directory reads', 'OK 6', read('/dir/inner')),
    q('new files can be made', 'OK', (v) => attempt(() => v.fs.writeFileSync(v.p('/new'), 'new\n'))),
  ]);

  await t.test('the failed copy-up left no file in the upper layer', () => {
    for (const [who, dir] of Object.entries(tr.dirs)) {
      if (fs.existsSync(join(dir, 'u'))) assert.equal(fs.existsSync(join(dir, 'u', 'bad')), false, `${who}: a half copy of /bad in the upper layer`);
    }
  });

  await t.test('the daemon is alive', { skip: tr.daemon === undefined && 'no mount here' }, () => {
    assert.ok(alive(tr.daemon!.pid), `the ovlfs daemon died${tr.daemon!.logTail()}`);
  });
}

// The overlays over the failing lower are made in a subtest, so that they are unmounted (in the
// subtest's after hooks) before the lower and its device are taken down (in the test's finally).

test('EIO from a lower file on a failing device (device-mapper error segment)', { skip: reasons['device-mapper'] }, async (t) => {
  const base = scratch(t, 'eio-dm');
  const { loop, runs } = makeImage(join(base, 'disk.img'), join(base, 'fill'));
  const name = `ovlfs-hostile-${process.pid}-${Date.now()}`;
  const lower = join(base, 'lower');
  try {
    const sectors = Number(must('blockdev', ['--getsz', loop]).trim());
    must('dmsetup', ['create', name, '--noudevsync', '--table', table(loop, sectors, runs)]);
    run('dmsetup', ['mknodes', name]);
    const dmdev = fs.existsSync(`/dev/mapper/${name}`) ? `/dev/mapper/${name}` : `/dev/${must('dmsetup', ['info', '-c', '--noheadings', '-o', 'blkdevname', name]).trim()}`;
    fs.mkdirSync(lower);
    must('mount', ['-o', 'ro', dmdev, lower]);
    await t.test('on the failing lower', (st) => onFailingLower(st, base, lower));
  } finally {
    unmount(lower);
    for (let i = 0; i < 10 && run('dmsetup', ['remove', '--noudevsync', name]).status !== 0; i++) run('sleep', ['0.2']);
    detach(loop);
  }
});

test('EIO from a lower file on a failing device (a loop device over an image whose bad blocks a FUSE server fails)', { skip: reasons.fuse }, async (t) => {
  const base = scratch(t, 'eio-fuse');
  const back = join(base, 'back');
  fs.mkdirSync(back);
  const { loop, runs } = makeImage(join(back, 'disk.img'), join(base, 'fill'));
  detach(loop);
  const served = join(base, 'served');
  const lower = join(base, 'lower');
  fs.mkdirSync(served);
  fs.mkdirSync(lower);
  const failReads = { 'disk.img': runs.map(([first, count]): [number, number] => [first * BLOCK, (first + count) * BLOCK]) };
  const disk = await mountFuse({
    mountpoint: served,
    fsname: 'ovlfs-test',
    source: 'failing-disk',
    filesystem: { module: new URL('../support/loopback.ts', import.meta.url), export: 'createLoopback', arg: { dir: back, failReads } },
  });
  let device: string | undefined;
  try {
    device = must('losetup', ['-f', '--show', '-r', join(served, 'disk.img')]).trim();
    must('mount', ['-o', 'ro', device, lower]);
    await t.test('on the failing lower', (st) => onFailingLower(st, base, lower));
  } finally {
    unmount(lower);
    if (device !== undefined) detach(device);
    await disk.unmount();
  }
});
