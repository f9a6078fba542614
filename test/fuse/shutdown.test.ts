// File system shutdown (FS_IOC_GOINGDOWN, what xfstests' godown and `xfs_io -x -c shutdown` send) through
// the ovlfs mount. The kernel overlay has no shutdown of its own (it answers ENOTTY, on a directory and on
// a file alike): xfstests shuts down the filesystem below it. So the oracle here is XFS's and ext4's
// answer, as measured on XFS: EPERM without CAP_SYS_ADMIN; then EIO to stat, open, read through a handle
// opened before, create and readdir, while close and statfs still work; a second shutdown succeeds; the
// unmount is clean; and what was written before the shutdown is there at the next mount.
//
// The upper layer is on an ext4 image of its own, which is itself shut down without flushing its journal
// after the mount is gone (a power cut): what ovlfs did not sync at its shutdown is lost there, so the
// remount shows whether the file written without fsync was synced too.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { mountFuse, type FuseMount } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { ioctl } from '../../src/sys/index.js';
import { attempt, cannotMount, has, must, python3, run } from '../support/hostile-env.js';

const FS_IOC_GOINGDOWN = 0x8004587d;
/** The flag that flushes nothing: the flags never reach a FUSE server, so ovlfs syncs whatever it gets. */
const GOING_FLAGS_NOLOGFLUSH = 2;

function skipReason(): string | undefined {
  const root = cannotMount();
  if (root !== undefined) return root;
  const missing = ['losetup', 'mkfs.ext4', 'setpriv'].filter((p) => !has(p));
  if (missing.length > 0) return `${missing.join(', ')} not installed`;
  if (run('python3', ['-c', 'import fcntl']).status !== 0) return 'python3 is not installed';
  return undefined;
}

function goingDown(fd: number): void {
  const flags = Buffer.alloc(4);
  flags.writeUInt32LE(GOING_FLAGS_NOLOGFLUSH);
  ioctl(fd, FS_IOC_GOINGDOWN, flags);
}

/** The shutdown ioctl from a process that `setpriv` makes with `args`: 'ok' or the errno's name. */
function goingDownAs(args: string[], path: string, python = python3()): string {
  const script = 'import errno, fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\ntry:\n  fcntl.ioctl(fd, 0x8004587d, bytearray(4)); print("ok")\nexcept OSError as e:\n  print(errno.errorcode[e.errno])\n';
  const r = run('setpriv', [...args, python, '-c', script, path]);
  return (r.stdout.trim() || r.stderr.trim());
}

/** Root without CAP_SYS_ADMIN (dropped from its bounding set before exec). */
const ROOT_WITHOUT_SYS_ADMIN = ['--inh-caps=-sys_admin', '--bounding-set=-sys_admin'];
/** Nobody with every capability in a user namespace of its own, which capable() does not count. */
const NOBODY_IN_OWN_USERNS = ['--reuid=65534', '--regid=65534', '--clear-groups', 'unshare', '-Ur'];

test('FS_IOC_GOINGDOWN on the mount: EPERM without CAP_SYS_ADMIN, then EIO to everything, a clean unmount, and everything written before it at the next mount', async (t) => {
  const reason = skipReason();
  if (reason !== undefined) return t.skip(reason);
  const base = fs.mkdtempSync(join(tmpdir(), 'ovlfs-fuse-shutdown-'));
  const disk = join(base, 'disk');
  const mnt = join(base, 'm');
  const image = join(base, 'upper.img');
  let mount: FuseMount | undefined;
  let loop: string | undefined;
  /** Handles on the mount, which would keep its connection alive after a lazy unmount. */
  const handles = new Set<number>();
  const open = (path: string, flags: string | number): number => {
    const fd = fs.openSync(path, flags);
    handles.add(fd);
    return fd;
  };
  const close = (fd: number): void => {
    handles.delete(fd);
    fs.closeSync(fd);
  };
  // One hook, in order: the handles, the ovlfs mount, the upper layer's disk, its loop device, then the files.
  t.after(async () => {
    try {
      for (const fd of handles) fs.closeSync(fd);
      await mount?.unmount();
    } finally {
      for (const m of [mnt, disk]) if (isMounted(m)) run('umount', ['-l', m]);
      if (loop !== undefined) run('losetup', ['-d', loop]);
      if (!isMounted(mnt) && !isMounted(disk)) fs.rmSync(base, { recursive: true, force: true });
    }
  });
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 32 * 1024 * 1024);
  loop = must('losetup', ['-f', '--show', image]).trim();
  must('mkfs.ext4', ['-q', '-F', loop]);
  fs.mkdirSync(disk);
  must('mount', [loop, disk]);
  for (const d of [join(base, 'l'), join(disk, 'u'), join(disk, 'w'), mnt]) fs.mkdirSync(d);
  fs.writeFileSync(join(base, 'l', 'lower'), 'lower\n');
  const p = (name: string): string => join(mnt, name);
  const options = `lowerdir=${base}/l,upperdir=${disk}/u,workdir=${disk}/w`;
  const mountOvlfs = (): Promise<FuseMount> => mountFuse({
    mountpoint: mnt,
    fsname: 'ovlfs',
    source: 'ovlfs-test',
    filesystem: { module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url), export: 'createOverlayFs', arg: { overlay: options } },
    options: { allowOther: true, defaultPermissions: true },
  });
  mount = await mountOvlfs();

  const synced = open(p('synced'), 'w');
  fs.writeSync(synced, 'synced\n');
  fs.fsyncSync(synced);
  close(synced);
  const unsynced = open(p('unsynced'), 'w');
  fs.writeSync(unsynced, 'unsynced\n');
  const lower = open(p('lower'), 'r');
  const dir = open(mnt, fs.constants.O_RDONLY);

  assert.equal(goingDownAs(ROOT_WITHOUT_SYS_ADMIN, mnt), 'EPERM', 'a caller without CAP_SYS_ADMIN');
  // A python3 that nobody may run (root's own may sit in root's home), where user namespaces are allowed.
  const nobodysPython = [python3(), '/usr/bin/python3'].find((py) => run('setpriv', [...NOBODY_IN_OWN_USERNS, py, '-c', 'import fcntl']).status === 0);
  if (nobodysPython !== undefined) {
    fs.chmodSync(base, 0o755);
    assert.equal(goingDownAs(NOBODY_IN_OWN_USERNS, mnt, nobodysPython), 'EPERM', 'a caller with CAP_SYS_ADMIN only in its own user namespace');
  } else process.stdout.write('# no user namespace with a python3 for nobody here: the user-namespace caller is not tried\n');
  assert.equal(attempt(() => goingDown(dir)), 'OK', 'the shutdown');
  // A second one succeeds and changes nothing, as on XFS and ext4.
  assert.equal(attempt(() => goingDown(dir)), 'OK', 'a second shutdown');

  const eio = 'EIO';
  assert.equal(attempt(() => fs.statSync(p('synced'))), eio, 'stat of a name the kernel knows');
  assert.equal(attempt(() => fs.statSync(p('lower'))), eio, 'stat of a lower file');
  assert.equal(attempt(() => fs.readFileSync(p('synced'))), eio, 'open');
  assert.equal(attempt(() => fs.readSync(lower, Buffer.alloc(16), 0, 16, 0)), eio, 'read through a handle opened before');
  assert.equal(attempt(() => fs.writeFileSync(p('after'), 'x')), eio, 'create');
  assert.equal(attempt(() => fs.mkdirSync(p('dir'))), eio, 'mkdir');
  assert.equal(attempt(() => fs.readdirSync(mnt)), eio, 'readdir');
  for (const fd of [unsynced, lower, dir]) close(fd);

  // The unmount is not lazy: nothing of the mount is left busy.
  assert.equal(run('umount', [mnt]).status, 0, 'umount after the shutdown');
  await mount.done;
  mount = undefined;

  // A power cut under the upper layer: only what reached its disk is left.
  const diskFd = fs.openSync(disk, fs.constants.O_RDONLY);
  try {
    goingDown(diskFd);
  } finally {
    fs.closeSync(diskFd);
  }
  must('umount', [disk]);
  must('mount', [loop, disk]);
  mount = await mountOvlfs();
  const read = (name: string): string => attempt(() => fs.readFileSync(p(name), 'utf8'), String);
  assert.equal(read('synced'), 'OK synced\n', 'the file written with fsync');
  assert.equal(read('unsynced'), 'OK unsynced\n', 'the file written without fsync, synced by the shutdown');
  assert.equal(read('after'), 'ENOENT', 'the file refused after the shutdown');
  assert.equal(read('lower'), 'OK lower\n', 'the lower file');
  await mount.unmount();
  mount = undefined;
  must('umount', [disk]);
});
