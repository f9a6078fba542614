// ENOSPC during copy-up, on a small tmpfs upper layer, with metacopy off and on: `chmod 600` and then
// an append to a 50 MiB lower file. The caller gets ENOSPC; afterwards (and after a remount, by the
// kernel and by ovlfs) nothing is lost: what succeeded (the chmod, with metacopy=on) is still there, the
// old data is all there, and no half-copied file is visible.
//
// The kernel's answers (6.18): with metacopy=off the chmod copies the whole file up and fails with
// ENOSPC, leaving the file as it was; with metacopy=on the chmod copies metadata only and succeeds,
// and the append's data copy-up fails with ENOSPC while reads still come from the lower file.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import {
  attempt, cannotMount, isMounted, kernelMount, library as openLibrary, libraryView, must, questions, run, scratch, trio,
  type Build, type Question, type View,
} from '../support/hostile-env.js';

const SIZE = 50 * 1024 * 1024;

function tmpfs(t: TestContext, dir: string, size: string): void {
  fs.mkdirSync(dir, { recursive: true });
  must('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  t.after(() => {
    if (isMounted(dir) && run('umount', [dir]).status !== 0) run('umount', ['-l', dir]);
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex').slice(0, 16);
const q = (what: string, expected: string, fn: (v: View) => string): Question => [what, expected, fn];

for (const metacopy of [false, true]) {
  const name = `metacopy=${metacopy ? 'on' : 'off'}`;
  test(`ENOSPC in copy-up loses nothing (${name})`, { skip: cannotMount() }, async (t) => {
    const base = scratch(t, `enospc-${metacopy ? 'mc' : 'plain'}`);
    const lower = join(base, 'lower');
    fs.mkdirSync(lower);
    const data = randomBytes(SIZE);
    fs.writeFileSync(join(lower, 'big'), data, { mode: 0o644 });
    fs.chmodSync(join(lower, 'big'), 0o644);
    fs.writeFileSync(join(lower, 'small'), 'small\n');
    const want = `OK ${SIZE} ${sha(data)}`;
    const opts = (dir: string): string => `lowerdir=${lower},upperdir=${dir}/up/u,workdir=${dir}/up/w,metacopy=${metacopy ? 'on' : 'off'},redirect_dir=${metacopy ? 'on' : 'off'}`;
    const build: Build = (dir) => {
      tmpfs(t, join(dir, 'up'), '16m');
      fs.mkdirSync(join(dir, 'up', 'u'));
      fs.mkdirSync(join(dir, 'up', 'w'));
      return opts(dir);
    };
    const tr = await trio(t, base, build);
    const content = (v: View): string => attempt(() => {
      const b = v.fs.readFileSync(v.p('/big')) as Buffer;
      return `${b.length} ${sha(b)}`;
    }, String);
    const mode = (v: View): string => attempt(() => (v.fs.statSync(v.p('/big')).mode & 0o777).toString(8), String);

    await questions(t, tr, metacopy ? [
      q('chmod 600 copies metadata only', 'OK', (v) => attempt(() => v.fs.chmodSync(v.p('/big'), 0o600))),
      q('an append has no room to copy the data up: ENOSPC', 'ENOSPC', (v) => attempt(() => v.fs.appendFileSync(v.p('/big'), 'tail\n'))),
      q('the chmod stays', 'OK 600', mode),
      q('the old data is all there', want, content),
    ] : [
      q('chmod 600 has no room to copy up: ENOSPC', 'ENOSPC', (v) => attempt(() => v.fs.chmodSync(v.p('/big'), 0o600))),
      q('the file is as it was', 'OK 644', mode),
      q('an append: ENOSPC', 'ENOSPC', (v) => attempt(() => v.fs.appendFileSync(v.p('/big'), 'tail\n'))),
      q('the old data is all there', want, content),
      q('the failed copy-ups left no temp behind: a small copy-up fits', 'OK', (v) => attempt(() => v.fs.appendFileSync(v.p('/small'), 'more\n'))),
    ]);

    const expectMode = metacopy ? '600' : '644';
    await t.test('after a remount, the kernel and ovlfs see the same: nothing lost, no half file', async () => {
      // Unmount every candidate, then look at each one's layers afresh.
      if (tr.kernel) must('umount', [join(tr.dirs.kernel, 'm')]);
      if (tr.daemon) await tr.daemon.umount();
      tr.overlay.close();
      const bad: string[] = [];
      for (const [who, dir] of Object.entries(tr.dirs)) {
        if (!fs.existsSync(join(dir, 'up', 'u'))) continue;
        const mnt = join(dir, 'm2');
        kernelMount(t, opts(dir), mnt);
        const kv: View = { name: 'kernel', fs, p: (p) => mnt + p };
        const kernelSays = `${mode(kv)} | ${content(kv)}`;
        must('umount', [mnt]);
        const lib = openLibrary(t, opts(dir));
        const lv = libraryView(lib);
        const ovlfsSays = `${mode(lv)} | ${content(lv)}`;
        lib.close();
        const expected = `OK ${expectMode} | ${want}`;
        if (kernelSays !== expected) bad.push(`${who}'s layers, remounted by the kernel: ${kernelSays}, expected ${expected}`);
        if (ovlfsSays !== expected) bad.push(`${who}'s layers, reopened by ovlfs: ${ovlfsSays}, expected ${expected}`);
      }
      assert.deepEqual(bad, []);
    });
  });
}
