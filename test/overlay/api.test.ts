// The core's public API as the faces use it: refusals that no face may get around.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryLayer, openOverlay } from '../../src/index.js';
import { fixture, testEachKind } from '../support/fixture.js';

const S_IFCHR = 0o020000;

testEachKind('mknod of a 0/0 character device is EPERM: it would be a whiteout in the upper layer', (t, kind) => {
  const f = fixture(t, [{ a: 'x' }], {}, { kind });
  const o = f.overlay;
  assert.throws(() => o.mknod(o.root, 'wh', S_IFCHR | 0o644, 0), { code: 'EPERM', syscall: 'mknod', path: '/wh' });
  assert.equal(o.lookup(o.root, 'wh'), null, 'nothing is left behind');
  assert.equal(f.entry('upper', 'wh'), undefined);
  assert.deepEqual(o.readdir(o.root).map((d) => d.name), ['a']);
});

test('xino=off is refused where layers span filesystems (st_ino would not be unique), accepted on one', (t) => {
  const lower = MemoryLayer.from({ a: 'x' });
  const other = MemoryLayer.from({ b: 'y' });
  assert.throws(() => openOverlay({ lowerdir: [lower, other], upperdir: new MemoryLayer(), xino: 'off' }), { code: 'EINVAL', message: /xino=off/ });
  const o = openOverlay({ lowerdir: [lower], xino: 'off' });
  t.after(() => o.close());
  assert.equal(o.fs.readFileSync('/a', 'utf8'), 'x');
});

test('a name changed in the upper layer behind the overlay gives ESTALE until the layer is whole again', (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-stale-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  for (const d of ['lower', 'upper', 'work', 'aside']) fs.mkdirSync(path.join(base, d));
  fs.writeFileSync(path.join(base, 'lower', 'copied'), 'lower data');
  fs.mkdirSync(path.join(base, 'lower', 'dir'));
  const o = openOverlay({ lowerdir: path.join(base, 'lower'), upperdir: path.join(base, 'upper'), workdir: path.join(base, 'work') });
  t.after(() => o.close());
  o.fs.writeFileSync('/new', 'upper only');
  o.fs.appendFileSync('/copied', ' and more');
  o.fs.writeFileSync('/renamed', 'x');
  o.fs.mkdirSync('/dir/sub');
  // The upper layer changes behind the overlay's back (xfstests overlay/012); inode numbers may be reused.
  const up = (p: string): string => path.join(base, 'upper', p);
  const aside = (p: string): string => path.join(base, 'aside', p);
  fs.renameSync(up('new'), aside('new'));
  fs.renameSync(up('copied'), aside('copied'));
  fs.renameSync(up('renamed'), aside('renamed'));
  fs.writeFileSync(up('renamed'), 'another inode');
  fs.renameSync(up('dir/sub'), aside('sub'));
  for (let attempt = 0; attempt < 2; attempt++) {
    assert.throws(() => o.fs.unlinkSync('/new'), { code: 'ESTALE', syscall: 'unlink', path: '/new' });
    assert.throws(() => o.fs.unlinkSync('/copied'), { code: 'ESTALE' });
    assert.throws(() => o.fs.renameSync('/renamed', '/elsewhere'), { code: 'ESTALE', syscall: 'rename' });
    assert.throws(() => o.fs.rmdirSync('/dir/sub'), { code: 'ESTALE', syscall: 'rmdir' });
  }
  // The layer is whole again: every call works, on the entries the overlay knew.
  fs.renameSync(aside('new'), up('new'));
  fs.renameSync(aside('copied'), up('copied'));
  fs.renameSync(aside('renamed'), up('renamed'));
  fs.renameSync(aside('sub'), up('dir/sub'));
  o.fs.unlinkSync('/new');
  assert.equal(o.fs.existsSync('/new'), false);
  o.fs.unlinkSync('/copied');
  assert.equal(o.fs.existsSync('/copied'), false);
  o.fs.renameSync('/renamed', '/elsewhere');
  assert.equal(o.fs.readFileSync('/elsewhere', 'utf8'), 'x');
  o.fs.rmdirSync('/dir/sub');
  assert.deepEqual(o.fs.readdirSync('/dir'), []);
});

test('a data lease keeps its fd open across a copy-up and a close, and the next lease sees the upper file', (t) => {
  const f = fixture(t, [{ file: 'lower' }]);
  const o = f.overlay;
  const file = o.open(o.resolve('/file'), fs.constants.O_RDONLY);
  const lease = o.leaseData(file, 'read');
  assert.ok(lease !== undefined);
  assert.throws(() => o.leaseData(file, 'write'), { code: 'EBADF' });
  f.fs.writeFileSync('/file', 'upper');
  o.release(file);
  // The lent-out fd still reads the lower file: neither the copy-up nor the close closed it.
  assert.equal(fs.readFileSync(lease.fd, 'utf8'), 'lower');
  lease.release();
  assert.throws(() => fs.fstatSync(lease.fd), { code: 'EBADF' });
  const again = o.open(o.resolve('/file'), fs.constants.O_RDONLY);
  const second = o.leaseData(again, 'read')!;
  assert.equal(fs.readFileSync(second.fd, 'utf8'), 'upper');
  second.release();
  o.release(again);
});
