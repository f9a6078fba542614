// A 0/0 character device is what a whiteout looks like in the upper layer, so making one through the
// overlay would hide a name instead of creating it. The kernel refuses it (ovl_mknod: EPERM) and leaves
// nothing behind; ovlfs must do the same through the mount (mknod(2) from a real process) and through
// the library (the core's mknod: Node's fs has none). Other devices and FIFOs are made as usual.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { attempt, cannotMount, mknod, must, questions, scratch, trio, type Build, type Question, type Trio, type View } from '../support/hostile-env.js';

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

const build: Build = (dir) => {
  fs.mkdirSync(join(dir, 'l', 'merged'), { recursive: true });
  fs.writeFileSync(join(dir, 'l', 'lowerfile'), 'lower\n');
  fs.writeFileSync(join(dir, 'l', 'gone'), 'deleted through the overlay\n');
  fs.writeFileSync(join(dir, 'l', 'merged', 'inside'), 'lower\n');
  fs.mkdirSync(join(dir, 'u'));
  fs.mkdirSync(join(dir, 'w'));
  return `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`;
};

/** mknod through each face: python3's os.mknod on a mount, the core's mknod in the library. */
function makeNode(tr: Trio, path: string, type: 'c' | 'b' | 'p', major: number, minor: number) {
  return (v: View): string => {
    if (v.name !== 'library') return mknod(v.p(path), type, major, minor);
    const slash = path.lastIndexOf('/');
    const kind = type === 'c' ? S_IFCHR : type === 'b' ? S_IFBLK : S_IFIFO;
    return attempt(() => tr.overlay.mknod(tr.overlay.resolve(path.slice(0, slash) || '/'), path.slice(slash + 1), kind | 0o644, (major << 8) | minor));
  };
}

const root = process.getuid?.() === 0;
const EXISTING = 'mknod c 0 0 over an existing lower file';

const q = (what: string, expected: string, fn: (v: View) => string): Question => [what, expected, fn];

test('whiteout-looking devices made through the overlay are refused and leave nothing', async (t) => {
  const tr = await trio(t, scratch(t, 'mknod'), build);
  const exists = (path: string) => (v: View): string => attempt(() => v.fs.lstatSync(v.p(path)), () => 'exists');
  const listing = (path: string) => (v: View): string => attempt(() => (v.fs.readdirSync(v.p(path)) as string[]).sort().join(','), String);

  await questions(t, tr, [
    q('unlink a lower file (a real whiteout)', 'OK', (v) => attempt(() => v.fs.unlinkSync(v.p('/gone')))),
    q('mknod c 0 0 at a new name', 'EPERM', makeNode(tr, '/wh', 'c', 0, 0)),
    q('... leaves no such name', 'ENOENT', exists('/wh')),
    q('mknod c 0 0 in a merged directory', 'EPERM', makeNode(tr, '/merged/wh', 'c', 0, 0)),
    q('... leaves no such name there', 'ENOENT', exists('/merged/wh')),
    q('mknod c 0 0 over a whited-out name', 'EPERM', makeNode(tr, '/gone', 'c', 0, 0)),
    q('... the name stays deleted', 'ENOENT', exists('/gone')),
    q(EXISTING, 'EEXIST', makeNode(tr, '/lowerfile', 'c', 0, 0)),
    q('... the lower file is intact', 'OK "lower\\n"', (v) => attempt(() => v.fs.readFileSync(v.p('/lowerfile'), 'utf8'), JSON.stringify)),
    // Real devices need root in the upper layer too; without it only the FIFO is made.
    ...(root ? [
      q('mknod c 1 3 (a real device) works', 'OK', makeNode(tr, '/null', 'c', 1, 3)),
      q('mknod b 0 0 (not a whiteout) works', 'OK', makeNode(tr, '/blk', 'b', 0, 0)),
    ] : []),
    q('mkfifo works', 'OK', makeNode(tr, '/fifo', 'p', 0, 0)),
    q('the root lists only what was made', root ? 'OK blk,fifo,lowerfile,merged,null' : 'OK fifo,lowerfile,merged', listing('/')),
    q('the merged directory is unchanged', 'OK inside', listing('/merged')),
  ]);

  await t.test('mknod(1) through the mount fails the same way', { skip: cannotMount() }, () => {
    for (const v of tr.views.filter((x) => x.name !== 'library')) {
      const r = spawnMknod(v.p('/wh2'));
      assert.notEqual(r.status, 0, `${v.name}: mknod c 0 0 succeeded`);
      assert.match(r.stderr, /Operation not permitted/, `${v.name}: ${r.stderr}`);
      assert.equal(fs.existsSync(v.p('/wh2')), false);
    }
  });

  await t.test('no 0/0 device reached the upper layer except the whiteout of /gone', () => {
    for (const [name, dir] of Object.entries(tr.dirs)) {
      if (!fs.existsSync(join(dir, 'u'))) continue;
      const devices = must('find', [join(dir, 'u'), '-type', 'c', '-printf', '%P %D\n']).trim().split('\n').filter((l) => l !== '').map((l) => l.split(' ')[0]);
      assert.deepEqual(devices.filter((d) => d !== 'null').sort(), ['gone'], `${name}: character devices in the upper layer`);
    }
  });
});

function spawnMknod(path: string): { status: number | null; stderr: string } {
  const r = must('sh', ['-c', `mknod '${path}' c 0 0 2>&1; echo "status=$?"`]);
  const status = Number(/status=(\d+)/.exec(r)?.[1] ?? 'NaN');
  return { status, stderr: r };
}
