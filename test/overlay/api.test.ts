// The core's public API as the faces use it: refusals that no face may get around.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
