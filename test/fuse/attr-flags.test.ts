// File attribute flags through the mount: chattr and lsattr (FUSE_IOCTL with FS_IOC_FSGETXATTR,
// FS_IOC_GETFLAGS and FS_IOC_SETFLAGS from the kernel's fileattr_get/set), and every call an immutable
// or append-only file or directory refuses, run by the same shell script on the ovlfs mount and on the
// kernel overlay over identical layers, message for message. Then the flags after a remount, and as
// the kernel overlay reads them over the layers ovlfs wrote.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { mountFuse, type FuseMount } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { ok, sh } from '../support/shell.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'the mounts and chattr +i/+a need root';
  if (!existsSync('/dev/fuse')) return 'the mount needs /dev/fuse';
  for (const program of ['chattr', 'lsattr', 'setfattr', 'truncate']) {
    if (spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status !== 0) return `${program} is not installed`;
  }
  return undefined;
}

function writeLayers(dir: string): void {
  for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'l', 'lf'), 'lower\n');
  writeFileSync(join(dir, 'l', 'lf2'), 'x\n');
  writeFileSync(join(dir, 'l', 'lg'), 'g\n');
  mkdirSync(join(dir, 'l', 'dir'));
  writeFileSync(join(dir, 'l', 'dir', 'inside'), 'i\n');
}

const options = (dir: string): string => `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`;

/** Each call as "name: ok" or the error message its program printed (the errno's text). */
const SCRIPT = `
t() { name=$1; shift; if out=$("$@" 2>&1); then echo "$name: ok"; else echo "$name: \${out##*: }"; fi; }
mkdir di da; echo f > da/f; echo f > di/f; echo a > af
echo c > cf; stat cf > /dev/null; chattr +A cf
exec 3<>lg
t 'chattr +i lf lg di dir' chattr +i lf lg di dir
t 'chattr +a af da' chattr +a af da
lsattr -d lf lg af di da dir lf2
for p in lf af; do
  t "$p write" eval "echo x > $p"
  t "$p append" eval "echo x >> $p"
  t "$p truncate" truncate -s 0 $p
  t "$p chmod" chmod 600 $p
  t "$p chown" chown 0:0 $p
  t "$p touch" touch $p
  t "$p touch -d" touch -d @1 $p
  t "$p setfattr" setfattr -n user.t -v 1 $p
  t "$p setfattr -x" setfattr -x user.t $p
  t "$p unlink" unlink $p
  t "$p rename" mv -T $p $p.moved
  t "$p rename over" mv -T lf2 $p
  t "$p link" ln $p $p.link
done
cat af
t 'write through a handle opened before +i' eval 'echo w >&3'
exec 3>&-
for d in di da dir; do
  c=f; [ $d = dir ] && c=inside
  t "$d create" touch $d/new
  t "$d mkdir" mkdir $d/sub
  t "$d unlink child" unlink $d/$c
  t "$d rename out" mv -T $d/$c $d.out
  t "$d rename in" mv -T lf2 $d/lf2
  t "$d rmdir" rmdir $d
  t "$d chmod" chmod 700 $d
  t "$d touch" touch $d
done
t 'chattr -i lf' chattr -i lf
t 'unlink lf after -i' unlink lf
lsattr -d lg af di da dir
`;

const CLEAR = 'chattr -i -a lg af di da dir 2>/dev/null; true';

async function mountOvlfs(dir: string): Promise<FuseMount> {
  return mountFuse({
    mountpoint: join(dir, 'm'),
    fsname: 'ovlfs',
    source: 'ovlfs-test',
    filesystem: { module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url), export: 'createOverlayFs', arg: { overlay: options(dir) } },
    options: { allowOther: true, defaultPermissions: true },
  });
}

function mountKernel(dir: string): void {
  ok(`mount -t overlay overlay -o '${options(dir)}' '${join(dir, 'm')}'`);
}

test('chattr/lsattr on the mount: flags and every refused call as on the kernel overlay; the flags survive a remount and read the same on the kernel', async (t) => {
  const reason = skipReason();
  if (reason !== undefined) return t.skip(reason);
  const base = mkdtempSync(join(tmpdir(), 'ovlfs-fuse-flags-'));
  const kdir = join(base, 'kernel');
  const odir = join(base, 'ovlfs');
  let mount: FuseMount | undefined;
  // One hook, in order: the flags cleared on whatever is mounted, the mounts gone, then the files.
  t.after(async () => {
    try {
      for (const dir of [kdir, odir]) if (isMounted(join(dir, 'm'))) sh(CLEAR, join(dir, 'm'));
      await mount?.unmount();
    } finally {
      for (const dir of [kdir, odir]) if (isMounted(join(dir, 'm'))) spawnSync('umount', [join(dir, 'm')]);
      rmSync(base, { recursive: true, force: true });
    }
  });
  writeLayers(kdir);
  writeLayers(odir);
  mountKernel(kdir);
  mount = await mountOvlfs(odir);

  const kernel = sh(SCRIPT, join(kdir, 'm'));
  const ovlfs = sh(SCRIPT, join(odir, 'm'));
  assert.equal(kernel.stderr, '');
  assert.equal(ovlfs.stderr, '');
  assert.match(kernel.stdout, /^----i.* lg$/m, 'the kernel overlay took the flags');
  assert.deepEqual(ovlfs.stdout.split('\n'), kernel.stdout.split('\n'));
  // The kernel had cf's attributes cached when chattr gave it a new ctime: the mount shows that one.
  assert.equal(ok('stat -c %z cf', join(odir, 'm')), ok(`stat -c %z '${join(odir, 'u', 'cf')}'`));

  // A new mount over the same layers.
  await mount.unmount();
  mount = undefined;
  mount = await mountOvlfs(odir);
  const LIST = 'lsattr -d lg af di da dir; unlink lg 2>&1 | sed "s/.*: //"';
  const again = sh(LIST, join(odir, 'm'));
  const want = sh(LIST, join(kdir, 'm'));
  assert.equal(again.stdout, want.stdout);
  // The kernel overlay over the layers ovlfs wrote.
  await mount.unmount();
  mount = undefined;
  mountKernel(odir);
  assert.equal(sh(LIST, join(odir, 'm')).stdout, want.stdout);
});
