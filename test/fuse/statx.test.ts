// statx(2)'s birth time through the mount (FUSE_STATX): the real file's, as the kernel overlay reports
// the real inode's statx. A lower file's is the lower file's, a new or upper file's the upper file's,
// and after a copy-up (a chmod, an open for writing, a name made in a lower directory) the copy's,
// also when the old one was read before the copy-up. An open file whose name is gone keeps its own, and
// a device's number survives the reply.
// Next to the kernel overlay, each side against its own copy of the layers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { mountSideBySide, sideBySideSkip } from '../support/side-by-side.js';

const reason = sideBySideSkip('statx birth time tests');

function layers(dir: string): void {
  for (const d of ['l/lower-dir', 'l/copied-dir', 'u/upper-dir', 'w', 'm']) fs.mkdirSync(join(dir, d), { recursive: true });
  for (const f of ['lower-file', 'chmod-file', 'write-file', 'copied-dir/f']) fs.writeFileSync(join(dir, 'l', f), f);
  fs.writeFileSync(join(dir, 'u/upper-file'), 'upper');
}

/** The birth time statx reports (libuv asks for STATX_BTIME; 0 when none came back). */
function btime(path: string): bigint {
  return fs.lstatSync(path, { bigint: true }).birthtimeNs;
}

/** Which real file each name's birth time is, 'l' or 'u', or the two times when it is neither. */
function sources(mnt: string, layerDir: string, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const seen = btime(join(mnt, name));
    const lower = fs.existsSync(join(layerDir, 'l', name)) ? btime(join(layerDir, 'l', name)) : undefined;
    const upper = fs.existsSync(join(layerDir, 'u', name)) ? btime(join(layerDir, 'u', name)) : undefined;
    assert.notEqual(seen, 0n, `${mnt} ${name}: a birth time`);
    out[name] = seen === upper ? 'u' : seen === lower ? 'l' : `neither (${seen}; lower ${lower}, upper ${upper})`;
  }
  return out;
}

test('statx reports the real file birth time, the copy\'s after a copy-up', { skip: reason }, async () => {
  const sbs = await mountSideBySide('ovlfs-statx-', layers, (d) => `lowerdir=${d}/l,upperdir=${d}/u,workdir=${d}/w`);
  try {
    const names = ['lower-file', 'chmod-file', 'write-file', 'copied-dir', 'lower-dir', 'upper-file', 'upper-dir', 'new-file', '.'];
    const results: Record<string, Array<Record<string, string>>> = {};
    for (const [side, mnt] of [['kernel', sbs.kmnt], ['ovlfs', sbs.omnt]] as const) {
      const layerDir = join(mnt, '..');
      fs.writeFileSync(join(mnt, 'new-file'), 'new');
      const before = sources(mnt, layerDir, names);
      // The copy-ups, each after its lower birth time was read (and may be cached by the kernel).
      fs.chmodSync(join(mnt, 'chmod-file'), 0o600);
      fs.appendFileSync(join(mnt, 'write-file'), '+');
      fs.writeFileSync(join(mnt, 'copied-dir/g'), 'g');
      const after = sources(mnt, layerDir, names);
      // An open file whose name is gone: fstat is statx on the fd, and it keeps the file's own birth time.
      const fd = fs.openSync(join(mnt, 'new-file'), 'r');
      try {
        const born = btime(join(mnt, 'new-file'));
        fs.unlinkSync(join(mnt, 'new-file'));
        assert.equal(fs.fstatSync(fd, { bigint: true }).birthtimeNs, born, `${side}: the unlinked open file's birth time`);
      } finally {
        fs.closeSync(fd);
      }
      // A device's number comes back from the statx reply's major and minor as mknod made it.
      assert.equal(spawnSync('mknod', [join(mnt, 'dev'), 'c', '259', '300000']).status, 0);
      assert.equal(fs.lstatSync(join(mnt, 'dev'), { bigint: true }).rdev, fs.lstatSync(join(layerDir, 'u/dev'), { bigint: true }).rdev, `${side}: st_rdev`);
      results[side] = [before, after];
    }
    assert.deepEqual(results.kernel![0], { ...Object.fromEntries(names.map((n) => [n, 'u'])), 'lower-file': 'l', 'chmod-file': 'l', 'write-file': 'l', 'copied-dir': 'l', 'lower-dir': 'l' });
    assert.deepEqual(results.kernel![1], { ...Object.fromEntries(names.map((n) => [n, 'u'])), 'lower-file': 'l', 'lower-dir': 'l' });
    assert.deepEqual(results.ovlfs, results.kernel);
  } finally {
    await sbs.close();
  }
});
