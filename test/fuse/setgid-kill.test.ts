// Setgid on a file whose group the caller is not in, through the ovlfs mount next to the kernel overlay
// over identical layers (the oracle). The kernel drops setgid on a write, truncate, fallocate,
// copy_file_range, O_TRUNC open or chgrp by a caller who is neither in the file's group nor has
// CAP_FSETID, even when the file is not group-executable (setattr_should_drop_sgid), and keeps it for a
// member by a supplementary group; the mount asks for HANDLE_KILLPRIV_V2, so that is for us to decide.
// Setting an access ACL drops setgid the same way (SETXATTR_EXT's SETXATTR_ACL_KILL_SGID), and on the
// kernel overlay so does removing it, even one that is not there. Callers are made with setpriv: uid
// and gid 65534, with and without the supplementary group 4242.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ok, sh } from '../support/shell.js';
import { mountSideBySide, sideBySideSkip, type SideBySide } from '../support/side-by-side.js';

function skipReason(): string | undefined {
  const mount = sideBySideSkip('setgid mount tests');
  if (mount !== undefined) return mount;
  for (const program of ['setpriv', 'fallocate', 'truncate', 'xfs_io', 'setfacl', 'dd']) {
    if (spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status !== 0) return `${program} is not installed`;
  }
  return undefined;
}
const reason = skipReason();
if (reason !== undefined) process.stdout.write(`# skipping setgid mount tests: ${reason}\n`);

/** Lower files (6666, root's, group 0): the first change to each copies it up. */
const LOWER = ['lower-write', 'lower-truncate', 'lower-falloc', 'lower-large'];

function writeLayers(dir: string): void {
  for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d), { recursive: true });
  for (const name of LOWER) {
    writeFileSync(join(dir, 'l', name), 'lower\n');
    ok(`chmod 6666 '${join(dir, 'l', name)}'`);
  }
  writeFileSync(join(dir, 'l', 'lower-no-acl'), 'lower\n');
  ok(`chown 65534:4242 '${join(dir, 'l', 'lower-no-acl')}' && chmod 2755 '${join(dir, 'l', 'lower-no-acl')}'`);
}

const options = (dir: string): string => `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`;

/** Each change once, by a caller outside the file's group (U) or in it by a supplementary group (G), then the modes. */
const SCRIPT = `
U='setpriv --reuid=65534 --regid=65534 --clear-groups'
G='setpriv --reuid=65534 --regid=65534 --groups=4242'
for f in write truncate falloc punch zero keep copy large otrunc; do head -c 8192 /dev/zero > $f; chmod 6666 $f; done
echo src > src
$U sh -c 'echo y >> write'
$U truncate -s 10 truncate
$U fallocate -l 64k falloc
$U fallocate -p -o 0 -l 4096 punch
$U fallocate -z -o 0 -l 4096 zero
$U fallocate -n -o 0 -l 64k keep
$U xfs_io -c 'copy_range -s 0 -d 0 -l 3 src' copy
$U sh -c 'head -c 196608 /dev/zero | dd of=large bs=196608 conv=notrunc 2>/dev/null'
$U sh -c ': > otrunc'
$U sh -c 'echo y >> lower-write'
$U truncate -s 1 lower-truncate
$U fallocate -l 64k lower-falloc
$U sh -c 'head -c 196608 /dev/zero | dd of=lower-large bs=196608 conv=notrunc 2>/dev/null'
for f in member-write member-truncate; do echo x > $f; chgrp 4242 $f; chmod 2666 $f; done
$G sh -c 'echo y >> member-write'
$G truncate -s 1 member-truncate
for f in chgrp-noexec chgrp-exec chown-noexec chown-exec; do echo x > $f; chown 65534:4242 $f; done
chmod 2644 chgrp-noexec chown-noexec; chmod 6754 chgrp-exec chown-exec
$U chgrp 65534 chgrp-noexec; $U chgrp 65534 chgrp-exec
chown 0 chown-noexec chown-exec
echo x > chmod; chown 65534:4242 chmod; $U chmod 2666 chmod
for f in acl member-acl; do echo x > $f; chown 65534:4242 $f; chmod 2755 $f; done
mkdir acl-dir member-acl-dir; chown 65534:4242 acl-dir member-acl-dir; chmod 2755 acl-dir member-acl-dir
$U setfacl -m u::rwx,g::rwx,o::rwx acl acl-dir
$G setfacl -m u::rwx,g::rwx,o::rwx member-acl member-acl-dir
for f in acl-removed member-acl-removed no-acl; do echo x > $f; chown 65534:4242 $f; chmod 2755 $f; done
setfacl -m u:123:r acl-removed member-acl-removed
$U setfattr -x system.posix_acl_access acl-removed no-acl lower-no-acl
$G setfattr -x system.posix_acl_access member-acl-removed
stat -c '%n %a' write truncate falloc punch zero keep copy large otrunc ${LOWER.join(' ')} \\
  member-write member-truncate chgrp-noexec chgrp-exec chown-noexec chown-exec chmod acl acl-dir member-acl member-acl-dir \
  acl-removed member-acl-removed no-acl lower-no-acl`;

describe('setgid through the ovlfs mount, for callers outside the file group', { skip: reason }, () => {
  let pair: SideBySide | undefined;

  before(async () => {
    pair = await mountSideBySide('ovlfs-setgid-', writeLayers, options, (b) => ok(`chmod 755 '${b}'`));
  });

  after(() => pair?.close());

  test('writes, truncates, fallocate, copy_file_range, chgrp and ACL changes leave the modes the kernel overlay leaves', () => {
    const { base, kmnt, omnt } = pair!;
    const k = sh(SCRIPT, kmnt);
    if (/Operation not supported/.test(k.stderr)) {
      process.stdout.write(`# the kernel overlay here has no ACLs on its upper filesystem: ${k.stderr}\n`);
    }
    assert.equal(k.stderr, '', 'the script runs cleanly on the kernel overlay');
    const o = sh(SCRIPT, omnt);
    assert.equal(o.stderr, k.stderr);
    assert.equal(o.stdout, k.stdout);
    // What the kernel overlay did, so that a change of the oracle shows: not group-executable, and
    // still setgid gone for a non-member; kept for a member and for root.
    for (const name of ['write', 'truncate', 'falloc', 'punch', 'zero', 'keep', 'copy', 'large', 'otrunc', ...LOWER]) {
      assert.match(k.stdout, new RegExp(`^${name} 666$`, 'm'));
    }
    assert.match(k.stdout, /^member-write 2666$/m);
    assert.match(k.stdout, /^member-truncate 2666$/m);
    assert.match(k.stdout, /^chgrp-noexec 644$/m);
    assert.match(k.stdout, /^chgrp-exec 754$/m);
    assert.match(k.stdout, /^chown-noexec 2644$/m);
    assert.match(k.stdout, /^chown-exec 754$/m);
    assert.match(k.stdout, /^chmod 666$/m);
    assert.match(k.stdout, /^acl 777$/m);
    assert.match(k.stdout, /^acl-dir 777$/m);
    assert.match(k.stdout, /^member-acl 2777$/m);
    assert.match(k.stdout, /^member-acl-dir 2777$/m);
    assert.match(k.stdout, /^acl-removed 755$/m);
    assert.match(k.stdout, /^member-acl-removed 2755$/m);
    assert.match(k.stdout, /^no-acl 755$/m);
    assert.match(k.stdout, /^lower-no-acl 755$/m);
    // The upper files hold it, not only the kernel's cached attributes.
    const stored = sh(`stat -c '%n %a' write keep lower-write acl acl-dir`, join(base, 'ovlfs', 'u'));
    assert.equal(stored.stdout, 'write 666\nkeep 666\nlower-write 666\nacl 777\nacl-dir 777\n');
  });

  // CAP_FSETID in a user namespace of the caller's own (`unshare -Ur` as nobody) holds only over files whose
  // owner and group that namespace maps (capable_wrt_inode_uidgid): root's files lose setgid as for anyone.
  const NOBODY_IN_USERNS = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'unshare', '-Ur'];
  const usernsSkip = spawnSync(NOBODY_IN_USERNS[0]!, [...NOBODY_IN_USERNS.slice(1), 'true']).status === 0 ? undefined : 'this machine refuses unprivileged user namespaces';
  test('a capability held only in the caller\'s own user namespace does not keep setgid', { skip: usernsSkip }, () => {
    const { kmnt, omnt } = pair!;
    const script = `
N='${NOBODY_IN_USERNS.join(' ')}'
for f in userns-write userns-truncate; do echo x > $f; chmod 2666 $f; done
$N sh -c 'echo y >> userns-write'
$N truncate -s 1 userns-truncate
stat -c '%n %a' userns-write userns-truncate`;
    const k = sh(script, kmnt);
    assert.equal(k.stderr, '', 'the script runs cleanly on the kernel overlay');
    assert.equal(k.stdout, 'userns-write 666\nuserns-truncate 666\n');
    assert.deepEqual(sh(script, omnt), k);
  });
});
