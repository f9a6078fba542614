// POSIX calls beyond read and write through the ovlfs mount, next to the kernel overlay over identical
// layers (the oracle): fallocate in each mode and SEEK_DATA/SEEK_HOLE, run by xfs_io on a lower file, with
// a read-only fd opened before the copy-up that must read the result; POSIX ACLs (setfacl, getfacl, the
// mode following the ACL, default ACLs inherited, and other users' access decided by them).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ok, sh } from '../support/shell.js';
import { mountSideBySide, type SideBySide } from '../support/side-by-side.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'the mounts need root (mount -t fuse, mount -t overlay)';
  if (!existsSync('/dev/fuse')) return 'the mount needs /dev/fuse';
  for (const program of ['xfs_io', 'setfacl', 'getfacl', 'su']) {
    if (spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status !== 0) return `${program} is not installed`;
  }
  return undefined;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping POSIX mount tests: ${reason}\n`);

const BLOCK = 4096;
const CONTENT = Buffer.concat([Buffer.alloc(BLOCK, 'a'), Buffer.alloc(BLOCK, 'b'), Buffer.alloc(BLOCK, 'c')]);

/** xfs_io commands, each on a lower file of its own. */
const CASES: Array<[name: string, command: string]> = [
  ['alloc', `falloc 0 ${4 * BLOCK}`],
  ['keep', `falloc -k ${3 * BLOCK} ${BLOCK}`],
  ['punch', `fpunch ${BLOCK} ${BLOCK}`],
  ['zero', `fzero ${2 * BLOCK} ${2 * BLOCK}`],
  ['zero-keep', `fzero -k ${2 * BLOCK} ${2 * BLOCK}`],
  ['collapse', `fcollapse ${BLOCK} ${BLOCK}`],
  ['insert', `finsert ${BLOCK} ${BLOCK}`],
  ['unshare', `funshare 0 ${BLOCK}`],
];

/**
 * Modes the kernel's FUSE client refuses with EOPNOTSUPP before any request is sent
 * (fuse_file_fallocate passes on keep size, punch hole and zero range only): no FUSE file system has them.
 */
const FUSE_REFUSES = new Set(['collapse', 'insert', 'unshare']);

function writeLayers(dir: string): void {
  for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d), { recursive: true });
  for (const [name] of CASES) writeFileSync(join(dir, 'l', name), CONTENT);
  // For the ACL tests: a lower file and a lower directory, both copied up by setfacl.
  writeFileSync(join(dir, 'l', 'acl-file'), 'lower\n', { mode: 0o644 });
  mkdirSync(join(dir, 'l', 'acl-dir'), { mode: 0o755 });
}

/**
 * setfacl and chmod in both directions, inheritance (also after entries were made in the directory
 * before its default ACL was set, and after it is removed), and access by users the ACL names.
 */
const ACL_SCRIPT = `umask 022
touch g; chmod 666 g
setfacl -m u:daemon:r,g::r,o::-,m::r g; ls -l g | cut -c1-10
chmod 640 g; getfacl -n --omit-header g
setfacl -m u:nobody:rw acl-file; ls -l acl-file | cut -c1-10; getfacl -n --omit-header acl-file
umask 077; touch acl-dir/v acl-dir/w; umask 022
setfacl -d -m u:nobody:rwx acl-dir; touch acl-dir/x; mkdir acl-dir/y; mkdir e; touch h; umask 077; touch i
ls -l acl-dir | grep -v '^total' | cut -c1-10; ls -ld e h i | cut -c1-10
getfacl -n --omit-header acl-dir/x acl-dir/y
su nobody -s /bin/sh -c 'echo by-nobody >> acl-file && cat acl-file; cat g'
su daemon -s /bin/sh -c 'cat g && echo read; echo x >> g'
setfacl -b acl-file; ls -l acl-file | cut -c1-10; getfacl -n --omit-header acl-file
setfacl -k acl-dir; touch acl-dir/z; ls -l acl-dir/z | cut -c1-10`;

function options(dir: string): string {
  return `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`;
}

/** Runs an xfs_io command on `name` with a read-only fd opened before it; what the fd then reads, and the size. */
function script(name: string, command: string): string {
  return `exec 3< ${name}
xfs_io -c '${command}' ${name} 2>&1 | sed 's/^[^:]*: //'
echo "size $(stat -c %s ${name})"
echo "read by the earlier fd: $(od -An -c <&3 | tr -s ' \\n' ' ' | md5sum | cut -c1-8)"
echo "read by name: $(od -An -c ${name} | tr -s ' \\n' ' ' | md5sum | cut -c1-8)"
exec 3<&-`;
}

describe('fallocate and SEEK_DATA/SEEK_HOLE through the ovlfs mount', { skip: reason }, () => {
  let base = '';
  let kmnt = '';
  let omnt = '';
  let pair: SideBySide | undefined;

  before(async () => {
    pair = await mountSideBySide('ovlfs-posix-', writeLayers, options);
    ({ base, kmnt, omnt } = pair);
  });

  after(() => pair?.close());

  for (const [name, command] of CASES) {
    test(`xfs_io ${command} on a lower file`, () => {
      const o = sh(script(name, command), omnt);
      assert.equal(o.status, 0, o.stderr);
      if (FUSE_REFUSES.has(name)) {
        assert.match(o.stdout, /^Operation not supported\nsize 12288\n/);
        // Refused before the request: the file is as it was, wherever it lives.
        assert.deepEqual(readFileSync(join(omnt, name)), CONTENT);
        return;
      }
      const k = sh(script(name, command), kmnt);
      assert.equal(o.stdout, k.stdout);
      assert.deepEqual(readFileSync(join(base, 'ovlfs', 'l', name)), CONTENT, 'the lower file is untouched');
      assert.deepEqual(readFileSync(join(base, 'ovlfs', 'u', name)), readFileSync(join(base, 'kernel', 'u', name)));
    });
  }

  test('SEEK_DATA and SEEK_HOLE map the upper file as the kernel overlay maps it', () => {
    const run = `xfs_io -c 'fpunch ${BLOCK} ${BLOCK}' -c 'seek -a -r 0' -c 'seek -d ${3 * BLOCK}' punch`;
    const o = sh(run, omnt);
    const k = sh(run, kmnt);
    assert.equal(o.stdout, k.stdout);
    assert.match(o.stdout, new RegExp(`HOLE\\s+${BLOCK}\\n`));
    assert.equal(o.stderr, k.stderr);
  });

  test('FIEMAP stops in the kernel: the VFS answers EOPNOTSUPP, as FUSE inodes have no fiemap operation', () => {
    // A kernel that starts passing FIEMAP to FUSE servers fails this test: then it is worth serving.
    const o = sh(`xfs_io -c 'fiemap' punch`, omnt);
    assert.match(o.stderr + o.stdout, /FS_IOC_FIEMAP.*Operation not supported/);
    const k = sh(`xfs_io -c 'fiemap' punch`, kmnt);
    assert.doesNotMatch(k.stderr + k.stdout, /Operation not supported/);
  });

  test('POSIX ACLs: the mode follows setfacl, chmod updates the ACL, default ACLs are inherited, access follows them', () => {
    const o = sh(ACL_SCRIPT, omnt);
    const k = sh(ACL_SCRIPT, kmnt);
    assert.equal(o.stdout, k.stdout);
    assert.equal(o.stderr, k.stderr);
    // The checks bit: nobody may write the file only through its ACL entry.
    assert.match(o.stdout, /lower\nby-nobody\n/);
    // And the lower file keeps no ACL and no change.
    assert.equal(readFileSync(join(base, 'ovlfs', 'l', 'acl-file'), 'utf8'), 'lower\n');
  });
});
