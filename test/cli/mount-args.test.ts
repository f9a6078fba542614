// Proves src/cli/mount-args.ts and src/fuse/idmap.ts: the three command-line forms, containers/storage's
// exact invocation, fuse-overlayfs's options (fsync=0, uid/gid mappings, squashing), warnings for unknown
// options in the forms built for tools and errors in the form built for people.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { parseMountArgs, UsageError, type MountRequest } from '../../src/cli/mount-args.js';
import { OVERFLOW_ID, parseIdMapping, shownIds, storedGid, storedUid } from '../../src/fuse/idmap.js';
import { inUserNamespace, isIdentityMap, parseMountOptions, splitEscaped, unescapeOption } from '../../src/overlay/options.js';

function parse(args: string[], dialect: 'mount' | 'fuse-overlayfs' | 'helper'): MountRequest {
  const r = parseMountArgs(args, dialect);
  assert.ok(r !== undefined);
  return r;
}

test("containers/storage's invocation: empty option, volatile, relative paths, mountopt passed verbatim", () => {
  const r = parse(['-o', 'lowerdir=l/A/diff:l/B/diff,upperdir=u/diff,workdir=u/work,,volatile,fsync=0,nodev,noatime,threaded=1', '/mnt/merged'], 'fuse-overlayfs');
  assert.deepEqual(r.overlay.lowerdir, [`${process.cwd()}/l/A/diff`, `${process.cwd()}/l/B/diff`]);
  assert.equal(r.overlay.upperdir, `${process.cwd()}/u/diff`);
  assert.equal(r.overlay.workdir, `${process.cwd()}/u/work`);
  assert.equal(r.overlay.volatile, true);
  assert.deepEqual(r.flags.extra, ['nodev', 'noatime']);
  assert.deepEqual(r.warnings, ['unknown argument ignored: threaded=1']);
  assert.equal(r.mountpoint, '/mnt/merged');
  assert.equal(r.foreground, false);
});

test('read-only mounts pass lowerdir only; fsync=0 alone means volatile; -f and -d', () => {
  const r = parse(['-f', '-o', 'lowerdir=/s/A/diff:/s/B/empty', 'mnt'], 'fuse-overlayfs');
  assert.equal(r.overlay.upperdir, undefined);
  assert.equal(r.foreground, true);
  assert.equal(parse(['-o', 'lowerdir=/a,upperdir=/u,workdir=/w,fsync=0', '/m'], 'fuse-overlayfs').overlay.volatile, true);
  assert.equal(parse(['-o', 'lowerdir=/a,upperdir=/u,workdir=/w,fsync=1', '/m'], 'fuse-overlayfs').overlay.volatile, undefined);
  const d = parse(['-d', '-o', 'lowerdir=/a', '/m'], 'fuse-overlayfs');
  assert.equal(d.debug, true);
  assert.equal(d.foreground, true, '-d stays attached to log to stderr');
  assert.equal(parse(['-o', 'lowerdir=/a', '-o', 'ro', '/m'], 'fuse-overlayfs').flags.readOnly, true);
  assert.equal(parse(['-olowerdir=/a,debug', '/m'], 'fuse-overlayfs').debug, true);
});

test('escapes: one splitter; a comma or colon in a layer path survives both levels', () => {
  assert.deepEqual(splitEscaped('a,b\\,c', ','), ['a', 'b,c']);
  assert.deepEqual(splitEscaped('a,b\\,c', ',', true), ['a', 'b\\,c']);
  assert.equal(unescapeOption('x\\:y\\,z'), 'x:y,z');
  const r = parse(['-o', 'lowerdir=/l\\:1:/l\\,2,upperdir=/u\\,x,workdir=/w', '/m'], 'fuse-overlayfs');
  assert.deepEqual(r.overlay.lowerdir, ['/l:1', '/l,2']);
  assert.equal(r.overlay.upperdir, '/u,x');
  assert.deepEqual(parseMountOptions('lowerdir=/l1:/l\\:2').lowerdir, ['/l1', '/l:2']);
});

test('uid/gid mappings as containers/storage writes them, several ranges, squashing', () => {
  const r = parse(['-o', 'lowerdir=/a,uidmapping=:0:100000:65536,gidmapping=:0:100000:65536', '/m'], 'fuse-overlayfs');
  assert.deepEqual(r.idmap?.uid, [{ layer: 0, mount: 100000, count: 65536 }]);
  const m = r.idmap!;
  assert.deepEqual(shownIds(m, 0, 5), [100000, 100005]);
  assert.deepEqual(shownIds(m, 70000, 0), [OVERFLOW_ID, 100000]);
  assert.equal(storedUid(m, 100000), 0);
  assert.equal(storedGid(m, 100042), 42);
  assert.equal(storedUid(m, 7), OVERFLOW_ID);
  // --userns=keep-id in a rootless user namespace: container 1000 is the user (0 in podman's namespace).
  const keep = parseIdMapping(':0:1:1000:1000:0:1:1001:1001:64536');
  assert.equal(keep.length, 3);
  const k = { uid: keep, gid: keep };
  assert.deepEqual(shownIds(k, 1000, 0), [0, 1]);
  assert.equal(storedUid(k, 0), 1000);
  assert.equal(storedUid(k, 5000), 5000);
  const sq = parse(['-o', 'lowerdir=/a,squash_to_uid=1000,squash_to_gid=100', '/m'], 'fuse-overlayfs').idmap!;
  assert.deepEqual(shownIds(sq, 0, 0), [1000, 100]);
  assert.equal(storedUid(sq, 1000), 1000, 'squashing changes what is shown, not what is stored');
  assert.deepEqual(shownIds(parse(['-o', 'lowerdir=/a,squash_to_root', '/m'], 'fuse-overlayfs').idmap!, 5, 6), [0, 0]);
  assert.equal(parse(['-o', 'lowerdir=/a,xattr_permissions=2', '/m'], 'fuse-overlayfs').xattrPermissions, 2);
  assert.throws(() => parse(['-o', 'lowerdir=/a,uidmapping=0:1', '/m'], 'fuse-overlayfs'), /invalid uidmapping '0:1'/);
  assert.throws(() => parse(['-o', 'lowerdir=/a,squash_to_uid=x', '/m'], 'fuse-overlayfs'), /invalid value for squash_to_uid/);
  assert.throws(() => parse(['-o', 'lowerdir=/a,xattr_permissions=3', '/m'], 'fuse-overlayfs'), /xattr_permissions/);
});

test('the strict form refuses what it does not know; the helper form takes SOURCE MOUNTPOINT', () => {
  assert.throws(() => parse(['-o', 'lowerdir=/a,bogus=1', '/m'], 'mount'), (e: Error) => e instanceof UsageError && /unknown mount option 'bogus=1'/.test(e.message));
  assert.throws(() => parse(['-o', 'lowerdir=/a', '--bogus', '/m'], 'mount'), (e: Error) => e instanceof UsageError && /--bogus/.test(e.message));
  assert.throws(() => parse(['/m'], 'mount'), /missing -o lowerdir/);
  assert.throws(() => parse(['-o', 'upperdir=/u', '/m'], 'mount'), /missing -o lowerdir/);
  assert.throws(() => parse(['-o', 'lowerdir=/a', '/m', '/n'], 'fuse-overlayfs'), /exactly one MOUNTPOINT/);
  assert.equal(parse(['-o', 'lowerdir=/a,uidmapping=0:1:1', '/m'], 'mount').idmap?.uid.length, 1, 'people may use the mappings too');
  const h = parse(['ovlfs', '/m', '-n', '-t', 'fuse.ovlfs', '-o', 'rw,lowerdir=/a,x-systemd.foo,whatever=1'], 'helper');
  assert.equal(h.source, 'ovlfs');
  assert.deepEqual(h.warnings, ['unknown argument ignored: whatever=1']);
  assert.equal(parseMountArgs(['--help'], 'mount'), undefined);
});

test('user namespace detection: the identity uid_map is the initial namespace, any other is not', { skip: process.platform !== 'linux' && 'Linux only' }, (t) => {
  assert.equal(isIdentityMap('         0          0 4294967295\n'), true);
  assert.equal(isIdentityMap('         0       1000          1\n'), false);
  assert.equal(isIdentityMap('         0       1000          1\n         1     100000      65536\n'), false);
  assert.equal(inUserNamespace(), !isIdentityMap(readFileSync('/proc/self/uid_map', 'utf8')));
  // A real user namespace, where root must default to user.overlay.* xattrs.
  const r = spawnSync('unshare', ['--user', '--map-root-user', 'cat', '/proc/self/uid_map'], { encoding: 'utf8' });
  if (r.status !== 0) return t.skip(`unshare --user failed here: ${r.stderr || r.error?.message}`);
  assert.equal(isIdentityMap(r.stdout), false);
});
