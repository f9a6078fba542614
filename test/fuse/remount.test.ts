// `mount -o remount,ro` and back to rw, on the ovlfs mount next to the kernel overlay over identical layers.
// mount(8) hands a remount of a fuse.ovlfs mount to the helper with the options it reads back from the
// mount table and `remount` among them (the argument list below is what strace shows it passing): the
// helper must change the mount in place (MS_REMOUNT), start no second daemon, and leave a read-only mount
// that answers every write as the kernel overlay's does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { main } from '../../src/cli/commands.js';
import { readMounts } from '../../src/mount-table.js';
import { attempt } from '../support/hostile-env.js';
import { mountSideBySide, sideBySideSkip, type SideBySide } from '../support/side-by-side.js';

const reason = sideBySideSkip('remount tests');
/**
 * The helper as mount(8) runs it for `mount -o remount,OPT MNT` on a fuse.ovlfs mount, called in this
 * process (the command's code, without a Node start-up per call); its exit status.
 */
function helperRemount(mnt: string, opt: 'ro' | 'rw'): Promise<number> {
  const options = `${opt},relatime,remount,user_id=0,group_id=0,default_permissions,allow_other`;
  return main(['mount.fuse.ovlfs', 'ovlfs', mnt, '-o', options, '-t', 'fuse.ovlfs']);
}

function kernelRemount(mnt: string, opt: 'ro' | 'rw'): number | null {
  return spawnSync('mount', ['-o', `remount,${opt}`, mnt], { stdio: 'ignore' }).status;
}

/** Every kind of change, each answered 'OK' or with its error code, in the order given. */
function changes(m: string, tag: string): Record<string, string> {
  const p = (name: string): string => join(m, name);
  return {
    create: attempt(() => fs.writeFileSync(p(`new-${tag}`), 'x')),
    'open a lower file for writing': attempt(() => fs.closeSync(fs.openSync(p('lower'), 'r+'))),
    'append to an upper file': attempt(() => fs.appendFileSync(p('upper'), 'more\n')),
    truncate: attempt(() => fs.truncateSync(p('lower'), 1)),
    mkdir: attempt(() => fs.mkdirSync(p(`dir-${tag}`))),
    symlink: attempt(() => fs.symlinkSync('lower', p(`link-${tag}`))),
    link: attempt(() => fs.linkSync(p('upper'), p(`hard-${tag}`))),
    rename: attempt(() => fs.renameSync(p(`gone-${tag}`), p(`moved-${tag}`))),
    unlink: attempt(() => fs.unlinkSync(p(`victim-${tag}`))),
    chmod: attempt(() => fs.chmodSync(p('lower'), 0o600)),
    utimes: attempt(() => fs.utimesSync(p('lower'), 1, 1)),
    read: attempt(() => assert.equal(fs.readFileSync(p('lower'), 'utf8'), 'below\n')),
  };
}

describe('remount ro and rw, as the kernel overlay', { skip: reason }, () => {
  let s: SideBySide;

  before(async () => {
    s = await mountSideBySide('ovlfs-remount-', (dir) => {
      for (const d of ['l', 'u', 'w', 'm']) fs.mkdirSync(join(dir, d), { recursive: true });
      fs.writeFileSync(join(dir, 'l', 'lower'), 'below\n');
      fs.writeFileSync(join(dir, 'u', 'upper'), 'above\n');
      for (const tag of ['ro', 'rw']) {
        fs.writeFileSync(join(dir, 'l', `gone-${tag}`), '');
        fs.writeFileSync(join(dir, 'l', `victim-${tag}`), '');
      }
    }, (dir) => `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`);
  });
  after(async () => {
    await s?.close();
  });

  const mountsAt = (mnt: string): string[] => readMounts().filter((m) => m.mountpoint === mnt).map((m) => m.options.map(([k]) => k).filter((k) => k === 'ro' || k === 'rw').join());

  test('remount,ro refuses every change with EROFS; remount,rw allows them again', async () => {
    assert.equal(kernelRemount(s.kmnt, 'ro'), 0);
    assert.equal(await helperRemount(s.omnt, 'ro'), 0);
    assert.deepEqual(mountsAt(s.omnt), ['ro'], 'one read-only mount: changed in place, not a second mount on top');
    const kernelRo = changes(s.kmnt, 'ro');
    assert.deepEqual(changes(s.omnt, 'ro'), kernelRo);
    assert.equal(kernelRo.create, 'EROFS');

    assert.equal(kernelRemount(s.kmnt, 'rw'), 0);
    assert.equal(await helperRemount(s.omnt, 'rw'), 0);
    assert.deepEqual(mountsAt(s.omnt), ['rw']);
    const kernelRw = changes(s.kmnt, 'rw');
    assert.deepEqual(changes(s.omnt, 'rw'), kernelRw);
    assert.equal(kernelRw.create, 'OK');
  });

  test('remount,ro fails while a file is open for writing, and the mount stays writable', async () => {
    const kfd = fs.openSync(join(s.kmnt, 'upper'), 'r+');
    const ofd = fs.openSync(join(s.omnt, 'upper'), 'r+');
    try {
      const kernel = kernelRemount(s.kmnt, 'ro');
      assert.notEqual(kernel, 0, 'the kernel overlay refuses (EBUSY)');
      assert.equal(await helperRemount(s.omnt, 'ro'), kernel);
      assert.deepEqual(mountsAt(s.omnt), ['rw']);
    } finally {
      fs.closeSync(kfd);
      fs.closeSync(ofd);
    }
  });

  test('a remount of what is not an ovlfs mount is refused', async () => {
    assert.notEqual(await helperRemount(s.base, 'ro'), 0);
  });
});
