// POSIX ACLs in the core: the permission check honours system.posix_acl_access, copy-up keeps the
// ACLs, and an entry built aside in the work area inherits its parent's default ACL as it would in
// place. The host filesystem (the upper layer) is the oracle for inheritance: a file made in place
// under the same default ACL must get the same mode and ACL.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  ACL_GROUP, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_USER, ACL_USER_OBJ, decodeAcl, encodeAcl, inheritAcl, POSIX_ACL_ACCESS,
  POSIX_ACL_DEFAULT,
} from '../../src/overlay/acl.js';
import { permits } from '../../src/overlay/permission.js';
import * as sys from '../../src/sys/index.js';
import { openOverlay } from '../../src/index.js';
import { fixture, isRoot, testEachKind } from '../support/fixture.js';

const { R_OK, W_OK } = fs.constants;
const OWNER = { mode: 0o100640, uid: 1000, gid: 1000 };
/** user::rw- user:2000:rw- group::r-- group:3000:rwx mask::r-- other::--- */
const ACL = encodeAcl([
  { tag: ACL_USER_OBJ, perm: 6, id: 0 }, { tag: ACL_USER, perm: 6, id: 2000 }, { tag: ACL_GROUP_OBJ, perm: 4, id: 0 },
  { tag: ACL_GROUP, perm: 7, id: 3000 }, { tag: ACL_MASK, perm: 4, id: 0 }, { tag: ACL_OTHER, perm: 0, id: 0 },
]);

test('permits: an access ACL decides for named users and groups, through the mask', () => {
  assert.deepEqual(decodeAcl(ACL)?.length, 6);
  assert.equal(permits(OWNER, { uid: 1000, gid: 1 }, W_OK, ACL), true);
  // Named user: rw-, masked to r--.
  assert.equal(permits(OWNER, { uid: 2000, gid: 1 }, R_OK, ACL), true);
  assert.equal(permits(OWNER, { uid: 2000, gid: 1 }, W_OK, ACL), false);
  // Named group rwx masked to r--; the mode bits alone would deny other users everything.
  assert.equal(permits(OWNER, { uid: 4000, gid: 1, groups: [3000] }, R_OK, ACL), true);
  assert.equal(permits(OWNER, { uid: 4000, gid: 1, groups: [3000] }, W_OK, ACL), false);
  assert.equal(permits(OWNER, { uid: 4000, gid: 1 }, R_OK, ACL), false);
  assert.equal(permits(OWNER, { uid: 4000, gid: 1 }, R_OK), false);
  // A value that is not an ACL is ignored, as a file without one.
  assert.equal(permits(OWNER, { uid: 1000, gid: 1 }, W_OK, Buffer.from('junk')), true);
});

test('inheritAcl: the mode and the access ACL a new entry gets from a default ACL (posix_acl_create)', () => {
  const inherited = inheritAcl(ACL, 0o666, false)!;
  assert.equal(inherited.mode, 0o640);
  assert.equal(inherited.default, undefined);
  assert.deepEqual(decodeAcl(inherited.access!)!.map((e) => e.perm), [6, 6, 4, 7, 4, 0]);
  const dir = inheritAcl(ACL, 0o777, true)!;
  assert.equal(dir.mode, 0o640);
  assert.deepEqual(dir.default, ACL);
  // Only the three base entries: no access ACL, the mode says it all.
  const base = encodeAcl([{ tag: ACL_USER_OBJ, perm: 7, id: 0 }, { tag: ACL_GROUP_OBJ, perm: 5, id: 0 }, { tag: ACL_OTHER, perm: 0, id: 0 }]);
  assert.deepEqual(inheritAcl(base, 0o666, false), { mode: 0o640, access: undefined, default: undefined });
});

testEachKind('access() honours an ACL set through the overlay, and copy-up keeps the ACL', (t, kind) => {
  const f = fixture(t, [{ file: 'x', dir: { inner: 'y' } }], {}, { kind });
  const node = f.overlay.resolve('/file');
  // Neither is the owner, whoever runs the test (an unprivileged run owns every file it makes).
  const named = { uid: 2000, gid: 2000 };
  assert.throws(() => f.overlay.access(node, W_OK, named), { code: 'EACCES' });
  const acl = encodeAcl([
    { tag: ACL_USER_OBJ, perm: 6, id: 0 }, { tag: ACL_USER, perm: 6, id: 2000 }, { tag: ACL_GROUP_OBJ, perm: 4, id: 0 },
    { tag: ACL_MASK, perm: 6, id: 0 }, { tag: ACL_OTHER, perm: 4, id: 0 },
  ]);
  f.overlay.setxattr(node, POSIX_ACL_ACCESS, acl);
  f.overlay.access(node, W_OK, named);
  assert.throws(() => f.overlay.access(node, W_OK, { uid: 4000, gid: 4000 }), { code: 'EACCES' });
  assert.deepEqual(f.overlay.getxattr(node, POSIX_ACL_ACCESS), acl);
  // A directory with a default ACL, copied up by a metadata change, keeps it.
  const dir = f.overlay.resolve('/dir');
  f.overlay.setxattr(dir, POSIX_ACL_DEFAULT, acl);
  f.overlay.setattr(dir, { mode: 0o750 }, 'chmod');
  assert.deepEqual(f.overlay.getxattr(dir, POSIX_ACL_DEFAULT), acl);
});

test('an entry built aside in a merged directory inherits the default ACL as one made in place does', (t) => {
  const f = fixture(t, [{ dir: { lower: 'x' } }], {}, { kind: 'dir' });
  const acl = encodeAcl([
    { tag: ACL_USER_OBJ, perm: 7, id: 0 }, { tag: ACL_USER, perm: 7, id: 65534 }, { tag: ACL_GROUP_OBJ, perm: 5, id: 0 },
    { tag: ACL_MASK, perm: 7, id: 0 }, { tag: ACL_OTHER, perm: 5, id: 0 },
  ]);
  f.overlay.setxattr(f.overlay.resolve('/dir'), POSIX_ACL_DEFAULT, acl);
  // The oracle: the same default ACL on a plain host directory, entries made in place.
  const host = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-acl-host-'));
  t.after(() => fs.rmSync(host, { recursive: true, force: true }));
  sys.lsetxattr(host, POSIX_ACL_DEFAULT, acl);
  fs.mkdirSync(path.join(host, 'sub'), { mode: 0o775 });
  fs.closeSync(fs.openSync(path.join(host, 'file'), 'w', 0o664));
  // In a merged directory a new directory is built aside (opaque) and renamed in; a file over a whiteout too.
  f.overlay.mkdir(f.overlay.resolve('/dir'), 'sub', 0o775);
  f.overlay.unlink(f.overlay.resolve('/dir'), 'lower');
  f.overlay.release(f.overlay.create(f.overlay.resolve('/dir'), 'lower', fs.constants.O_WRONLY, 0o664));
  for (const [mine, theirs] of [['/dir/sub', 'sub'], ['/dir/lower', 'file']] as const) {
    const node = f.overlay.resolve(mine);
    assert.equal(f.overlay.getattr(node).mode, fs.statSync(path.join(host, theirs)).mode, mine);
    assert.deepEqual(f.overlay.getxattr(node, POSIX_ACL_ACCESS), sys.lgetxattr(path.join(host, theirs), POSIX_ACL_ACCESS), mine);
  }
  assert.deepEqual(f.overlay.getxattr(f.overlay.resolve('/dir/sub'), POSIX_ACL_DEFAULT), acl);
});

test('a lower layer on a filesystem without ACLs (ramfs): permission checks and new entries go on without them', (t) => {
  if (!isRoot) return t.skip('mounting ramfs needs root');
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-noacl-'));
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  let overlay: ReturnType<typeof openOverlay> | undefined;
  t.after(() => {
    overlay?.close();
    spawnSync('umount', [lower]);
    fs.rmSync(base, { recursive: true, force: true });
  });
  const mounted = spawnSync('mount', ['-t', 'ramfs', 'ramfs', lower], { encoding: 'utf8' });
  if (mounted.status !== 0) return t.skip(`cannot mount ramfs here: ${mounted.stderr.trim()}`);
  fs.mkdirSync(path.join(lower, 'dir'));
  fs.writeFileSync(path.join(lower, 'file'), 'x', { mode: 0o644 });
  assert.throws(() => sys.lgetxattr(path.join(lower, 'file'), POSIX_ACL_ACCESS), { code: 'ENOTSUP' });
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, d));
  overlay = openOverlay({ lowerdir: lower, upperdir: path.join(base, 'upper'), workdir: path.join(base, 'work') });
  const file = overlay.resolve('/file');
  assert.throws(() => overlay.access(file, W_OK, { uid: 2000, gid: 2000 }), { code: 'EACCES' });
  overlay.access(file, R_OK, { uid: 2000, gid: 2000 });
  assert.equal(overlay.acl(file, 'access'), undefined);
  assert.equal(overlay.acl(overlay.resolve('/dir'), 'default'), undefined);
  // A directory in a merged parent is built aside and asks its parent for a default ACL: none, no failure.
  overlay.mkdir(overlay.resolve('/dir'), 'sub', 0o755);
  assert.equal(overlay.getattr(overlay.resolve('/dir/sub')).mode & 0o777, 0o755);
});
