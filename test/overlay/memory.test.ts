// The overlay over MemoryLayers: in-memory use without any host directory or privilege.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLayer, openOverlay } from '../../src/index.js';

test('MemoryLayer lowers and upper: merge, copy-up, whiteouts, redirects, open files', (t) => {
  const lower = MemoryLayer.from({ 'a.txt': 'hello', dir: { b: 'x', c: 'y' } });
  const below = MemoryLayer.from({ 'z.txt': 'bottom', dir: { d: 'z' } });
  const upper = new MemoryLayer();
  const o = openOverlay({ lowerdir: [lower, below], upperdir: upper, redirect_dir: 'on' });
  t.after(() => o.close());
  const ro = o.fs.openSync('/a.txt', 'r');
  o.fs.appendFileSync('/a.txt', ' world');
  const b = Buffer.alloc(32);
  assert.equal(b.subarray(0, o.fs.readSync(ro, b, 0, 32, 0)).toString(), 'hello world');
  o.fs.closeSync(ro);
  assert.deepEqual((o.fs.readdirSync('/dir') as string[]).sort(), ['b', 'c', 'd']);
  o.fs.unlinkSync('/dir/b');
  assert.ok(upper.lookup('dir/b')?.whiteout);
  o.fs.renameSync('/dir', '/moved');
  assert.equal(upper.lookup('moved')?.redirect, 'dir');
  assert.deepEqual((o.fs.readdirSync('/moved') as string[]).sort(), ['c', 'd']);
  o.fs.mkdirSync('/dir');
  assert.deepEqual(o.fs.readdirSync('/dir'), []);
  assert.ok(upper.lookup('dir')?.opaque);
  assert.equal(lower.lookup('dir/b')?.whiteout, false, 'lower layers are never written');
  assert.equal(o.fs.readFileSync('/z.txt', 'utf8'), 'bottom');
});

test('a MemoryLayer-only overlay without upper is read-only', (t) => {
  const o = openOverlay({ lowerdir: MemoryLayer.from({ f: 'x' }) });
  t.after(() => o.close());
  assert.throws(() => o.fs.writeFileSync('/f', 'y'), { code: 'EROFS' });
  assert.equal(o.fs.readFileSync('/f', 'utf8'), 'x');
});
