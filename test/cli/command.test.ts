// Proves src/cli as a process: --help on every subcommand, and fuse-overlayfs's command line as
// containers/storage runs it (cwd the storage dir, relative paths, the empty option, unknown options
// warned about and ignored, stdin/stdout on /dev/null and stderr a pipe), live when the command returns,
// ids shifted both ways, and unmounted by fusermount3 -u as storage does it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

import { isMounted } from '../../src/mount-table.js';
import { fuseMountSkipReason } from '../support/command-fixture.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src/cli/main.ts');
const TSX = import.meta.resolve('tsx');

function ovlfs(args: string[], cwd = ROOT): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', TSX, CLI, ...args], { encoding: 'utf8', timeout: 60_000, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('every subcommand answers --help', () => {
  for (const [args, first] of [
    [['--help'], /^Usage:\n  ovlfs mount/],
    [['mount', '--help'], /^Usage: ovlfs mount -o/],
    [['umount', '--help'], /^Usage: ovlfs umount/],
    [['mount-helper', '--help'], /^Usage: ovlfs mount-helper/],
    [['-o', 'lowerdir=/x', '--help', '/m'], /^Usage: ovlfs mount -o/],
  ] as const) {
    const r = ovlfs([...args]);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, first);
  }
  assert.match(ovlfs(['--help']).stdout, /Without root/);
  const bad = ovlfs(['umount', '--bogus']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--bogus.*see ovlfs umount --help/);
});

const reason = fuseMountSkipReason();

test("fuse-overlayfs's form, as containers/storage runs it", { skip: reason }, (t) => {
  const base = mkdtempSync(join(tmpdir(), 'ovlfs-cli-fo-'));
  const mnt = join(base, 'merged');
  t.after(() => {
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
    rmSync(base, { recursive: true, force: true });
  });
  for (const d of ['l/A/diff', 'l/B/empty', 'c/diff', 'c/work', 'merged']) mkdirSync(join(base, d), { recursive: true });
  writeFileSync(join(base, 'l/A/diff/f'), 'from A\n');
  const r = ovlfs(['-o', 'lowerdir=l/A/diff:l/B/empty,upperdir=c/diff,workdir=c/work,,volatile,fsync=0,nodev,threaded=1,uidmapping=:0:100000:65536,gidmapping=:0:200000:65536', mnt], base);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^unknown argument ignored: threaded=1$/m);
  assert.equal(isMounted(mnt), true, 'live when the command returns');
  assert.equal(readFileSync(join(mnt, 'f'), 'utf8'), 'from A\n');
  const st = statSync(join(mnt, 'f'));
  assert.deepEqual([st.uid, st.gid], [100000, 200000], 'layer ids shown as mount ids');
  writeFileSync(join(mnt, 'new'), 'x');
  spawnSync('chown', ['100007:200009', join(mnt, 'new')]);
  const up = statSync(join(base, 'c/diff/new'));
  assert.deepEqual([up.uid, up.gid], [7, 9], 'mount ids stored as layer ids');
  const u = spawnSync('fusermount3', ['-u', mnt], { encoding: 'utf8' });
  assert.equal(u.status, 0, u.stderr);
  assert.equal(isMounted(mnt), false);
});

test('a plain user mounts through fusermount3', { skip: reason ?? (spawnSync('sh', ['-c', 'command -v unshare && command -v setpriv']).status !== 0 && 'needs unshare and setpriv') }, (t) => {
  const base = mkdtempSync(join(tmpdir(), 'ovlfs-cli-user-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  for (const d of ['lower', 'upper', 'work', 'mnt']) mkdirSync(join(base, d));
  writeFileSync(join(base, 'lower/f'), 'lower\n');
  spawnSync('chmod', ['755', base]);
  spawnSync('chown', ['-R', '65534:65534', join(base, 'upper'), join(base, 'work'), join(base, 'mnt')]);
  // This machine's /dev/fuse may be closed to other users (mode 0600): in a private mount namespace of
  // the test's own, a node for the same device with mode 0666 is bound over it, as most systems have it.
  const dev = join(base, 'fuse');
  const script = [
    `mknod ${dev} c 10 229 && chmod 666 ${dev} && mount --bind ${dev} /dev/fuse`,
    `setpriv --reuid=65534 --regid=65534 --clear-groups ${process.execPath} --import ${TSX} ${CLI} -o lowerdir=${base}/lower,upperdir=${base}/upper,workdir=${base}/work ${base}/mnt || exit 9`,
    `grep " ${base}/mnt " /proc/self/mountinfo`,
    `setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'cat ${base}/mnt/f && echo new > ${base}/mnt/n'`,
    `setpriv --reuid=65534 --regid=65534 --clear-groups ${process.execPath} --import ${TSX} ${CLI} umount ${base}/mnt`,
  ].join(' && ');
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 120_000, cwd: '/' });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /fuse\.ovlfs ovlfs rw,.*user_id=65534/);
  assert.match(r.stdout, /^lower$/m);
  assert.equal(readFileSync(join(base, 'upper/n'), 'utf8'), 'new\n');
  assert.equal(statSync(join(base, 'upper/n')).uid, 65534);
});

test('xattr_permissions=2 keeps chown and chmod in user.containers.override_stat', { skip: reason ?? (spawnSync('sh', ['-c', 'command -v getfattr']).status !== 0 && 'needs getfattr (attr)') }, (t) => {
  const base = mkdtempSync(join(tmpdir(), 'ovlfs-cli-xp-'));
  const mnt = join(base, 'mnt');
  t.after(() => {
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
    rmSync(base, { recursive: true, force: true });
  });
  for (const d of ['lower', 'upper', 'work', 'mnt']) mkdirSync(join(base, d));
  writeFileSync(join(base, 'lower/f'), 'x');
  const r = ovlfs(['-o', `lowerdir=${base}/lower,upperdir=${base}/upper,workdir=${base}/work,xattr_permissions=2`, mnt]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(spawnSync('chown', ['1234:5678', join(mnt, 'f')]).status, 0);
  assert.equal(spawnSync('chmod', ['600', join(mnt, 'f')]).status, 0);
  const shown = statSync(join(mnt, 'f'));
  assert.deepEqual([shown.uid, shown.gid, shown.mode & 0o7777], [1234, 5678, 0o600]);
  const real = statSync(join(base, 'upper/f'));
  assert.deepEqual([real.uid, real.gid], [0, 0], 'the upper file keeps its owner');
  const attr = spawnSync('getfattr', ['--only-values', '-n', 'user.containers.override_stat', join(base, 'upper/f')], { encoding: 'utf8' });
  assert.equal(attr.stdout, '1234:5678:600');
  assert.equal(spawnSync('umount', [mnt]).status, 0);
});
