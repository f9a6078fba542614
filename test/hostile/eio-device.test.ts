// EIO from a lower file on a failing device: an ext4 filesystem on a loop device, seen through
// device-mapper with an `error` segment over the data blocks of one file. Reading that file gives EIO
// to the caller (through the kernel overlay, the ovlfs mount and the library alike), a copy-up of it
// fails with EIO and leaves nothing behind, and the other files and the daemon keep working.
//
// Needs root, losetup, mkfs.ext4, debugfs (e2fsprogs), dmsetup and a kernel with device-mapper; it skips
// with the reason otherwise.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import { alive, attempt, cannotMount, has, must, questions, run, scratch, trio, type Question, type View } from '../support/hostile-env.js';

const BLOCK = 4096;
const SECTORS_PER_BLOCK = BLOCK / 512;

function skipReason(): string | false {
  const root = cannotMount();
  if (root !== undefined) return root;
  const missing = ['losetup', 'mkfs.ext4', 'debugfs', 'dmsetup', 'blockdev'].filter((p) => !has(p));
  if (missing.length > 0) return `${missing.join(', ')} not installed`;
  const v = run('dmsetup', ['version']);
  if (v.status !== 0 || !/Driver version/.test(v.stdout)) return `device-mapper is not available in this kernel (${(v.stderr || v.stdout).trim().split('\n')[0]})`;
  return false;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping the failing-device test: ${reason}\n`);

/** A loop device over a new image file; detached in t.after. */
function loopDevice(t: TestContext, image: string, size: number): string {
  fs.writeFileSync(image, '');
  fs.truncateSync(image, size);
  const dev = must('losetup', ['-f', '--show', image]).trim();
  t.after(() => {
    run('losetup', ['-d', dev]);
  });
  return dev;
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

test('EIO from a lower file on a failing device (device-mapper error segment)', { skip: reason }, async (t) => {
  const base = scratch(t, 'eio');
  const loop = loopDevice(t, join(base, 'disk.img'), 64 * 1024 * 1024);
  must('mkfs.ext4', ['-q', '-F', '-b', String(BLOCK), loop]);
  const fill = join(base, 'fill');
  fs.mkdirSync(fill);
  must('mount', [loop, fill]);
  fs.writeFileSync(join(fill, 'bad'), Buffer.alloc(2 * 1024 * 1024, 'b'));
  fs.writeFileSync(join(fill, 'good'), 'good\n'.repeat(1000));
  fs.mkdirSync(join(fill, 'dir'));
  fs.writeFileSync(join(fill, 'dir', 'inner'), 'inner\n');
  must('umount', [fill]);
  const runs = blockRuns(loop, '/bad');
  assert.ok(runs.length > 0, 'debugfs found no blocks for /bad');

  const name = `ovlfs-hostile-${process.pid}-${Date.now()}`;
  const sectors = Number(must('blockdev', ['--getsz', loop]).trim());
  must('dmsetup', ['create', name, '--noudevsync', '--table', table(loop, sectors, runs)]);
  t.after(() => {
    for (let i = 0; i < 10 && run('dmsetup', ['remove', '--noudevsync', name]).status !== 0; i++) run('sleep', ['0.2']);
  });
  run('dmsetup', ['mknodes', name]);
  const dmdev = fs.existsSync(`/dev/mapper/${name}`) ? `/dev/mapper/${name}` : `/dev/${must('dmsetup', ['info', '-c', '--noheadings', '-o', 'blkdevname', name]).trim()}`;
  const lower = join(base, 'lower');
  fs.mkdirSync(lower);
  must('mount', ['-o', 'ro', dmdev, lower]);
  t.after(() => {
    if (run('umount', [lower]).status !== 0) run('umount', ['-l', lower]);
  });

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
    q('a directory lists', 'OK bad,dir,good', (v) => attempt(() => (v.fs.readdirSync(v.p('/')) as string[]).sort().join(','), String)),
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
});
