// Setuid, setgid and file capabilities through the ovlfs mount, next to the kernel overlay over identical
// layers (the oracle). The mount asks for HANDLE_KILLPRIV_V2, so the kernel leaves the clearing to us on
// WRITE, on OPEN with O_TRUNC and on SETATTR; a write by an unprivileged user drops the bits, root keeps
// them (CAP_FSETID), truncate and chown drop them as on the kernel overlay, and a write drops
// security.capability.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ok, sh } from '../support/shell.js';
import { mountSideBySide, type SideBySide } from '../support/side-by-side.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'the mounts need root (mount -t fuse, mount -t overlay)';
  if (!existsSync('/dev/fuse')) return 'the mount needs /dev/fuse';
  for (const program of ['su', 'setcap', 'getcap', 'truncate', 'dd']) {
    if (spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status !== 0) return `${program} is not installed`;
  }
  if (spawnSync('id', ['nobody'], { stdio: 'ignore' }).status !== 0) return 'there is no user nobody';
  return undefined;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping setuid/capability mount tests: ${reason}\n`);

const NOBODY = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim() || 65534);
const NOBODY_GID = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim() || 65534);

/** Lower files owned by nobody, each for one case of the script. */
const LOWER: Array<[name: string, mode: number]> = [
  ['write', 0o6755],
  ['write-sgid-noexec', 0o2664],
  ['write-root', 0o6755],
  ['write-large', 0o6755],
  ['truncate', 0o6755],
  ['truncate-root', 0o6755],
  ['open-trunc', 0o6755],
  ['chown', 0o6755],
  ['cap', 0o755],
  ['cap-root', 0o755],
];

function writeLayers(dir: string): void {
  for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d), { recursive: true });
  for (const [name, mode] of LOWER) {
    const path = join(dir, 'l', name);
    writeFileSync(path, 'lower\n');
    chownSync(path, NOBODY, NOBODY_GID);
    ok(`chmod ${mode.toString(8)} '${path}'`);
  }
  ok(`setcap cap_net_raw+ep '${dir}/l/cap' && setcap cap_net_raw+ep '${dir}/l/cap-root'`);
}

const AS_NOBODY = (cmd: string): string => `su nobody -s /bin/sh -c '${cmd}'`;

/** Each change once, then the modes and capabilities it left. */
const SCRIPT = `${AS_NOBODY('echo more >> write; echo more >> write-sgid-noexec')}
echo more >> write-root
head -c 200000 /dev/zero > large-by-root
${AS_NOBODY('head -c 196608 /dev/zero | dd of=write-large bs=196608 conv=notrunc 2>/dev/null')}
${AS_NOBODY('truncate -s 2 truncate; : > open-trunc')}
truncate -s 2 truncate-root
chown daemon chown
${AS_NOBODY('echo more >> cap')}
echo more >> cap-root
echo x > upper; chown nobody upper; chmod 6755 upper
${AS_NOBODY('echo more >> upper; echo more >> upper')}
echo x > upper-root; chown nobody upper-root; chmod 6755 upper-root; echo more >> upper-root
stat -c '%n %a %U %s' ${LOWER.map(([n]) => n).join(' ')} upper upper-root
getcap cap cap-root`;

function options(dir: string): string {
  return `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`;
}

describe('setuid, setgid and capabilities through the ovlfs mount', { skip: reason }, () => {
  let base = '';
  let kmnt = '';
  let omnt = '';
  let pair: SideBySide | undefined;

  before(async () => {
    pair = await mountSideBySide('ovlfs-killpriv-', writeLayers, options, (b) => ok(`chmod 755 '${b}'`));
    ({ base, kmnt, omnt } = pair);
  });

  after(() => pair?.close());

  test('writes, truncates, O_TRUNC opens and chown drop the bits as on the kernel overlay', () => {
    const k = sh(SCRIPT, kmnt);
    const o = sh(SCRIPT, omnt);
    assert.equal(k.stderr, '', 'the script runs cleanly on the kernel overlay');
    assert.equal(o.stdout, k.stdout);
    assert.equal(o.stderr, k.stderr);
    // What the kernel overlay did, so that a change of the oracle shows.
    assert.match(k.stdout, /^write 755 nobody/m);
    assert.match(k.stdout, /^write-sgid-noexec 2664 nobody/m);
    assert.match(k.stdout, /^write-root 6755 nobody/m);
    assert.match(k.stdout, /^write-large 755 nobody 196608/m);
    assert.match(k.stdout, /^truncate 755 nobody 2/m);
    assert.match(k.stdout, /^truncate-root 6755 nobody 2/m);
    assert.match(k.stdout, /^open-trunc 755 nobody 0/m);
    assert.match(k.stdout, /^upper 755 nobody/m);
    assert.match(k.stdout, /^upper-root 6755 nobody/m);
    assert.doesNotMatch(k.stdout, /cap_net_raw/);
    // And the upper files hold it, not only the kernel's cached attributes.
    const stored = sh(`stat -c '%n %a' write truncate open-trunc upper; getcap cap`, join(base, 'ovlfs', 'u'));
    assert.equal(stored.stdout, 'write 755\ntruncate 755\nopen-trunc 755\nupper 755\n');
  });
});
