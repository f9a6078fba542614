// Eviction: cached nodes nobody refers to are dropped, least recently used first, past node_cache=.
// A node with an open file, one a face retains, and a directory with live children stay; a name
// looked up again after its node was dropped is the same file (st_ino, content, copy-up state).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { fixture, testEachKind, type Tree } from '../support/fixture.js';

const { O_RDONLY, O_WRONLY } = fs.constants;

/** A lower layer with `count` files in /many, plus whatever `extra` adds. */
function manyFiles(count: number, extra: Tree = {}): Tree {
  const many: Tree = {};
  for (let i = 0; i < count; i++) many[`f${i}`] = `file ${i}`;
  return { many, ...extra };
}

/** Looks up every file in /many: enough to push anything unreferenced out of a small cache. */
function churn(f: ReturnType<typeof fixture>, count: number): void {
  for (let i = 0; i < count; i++) f.fs.statSync(`/many/f${i}`);
}

testEachKind('the cache of unreferenced nodes stays near node_cache, and close() empties it', (t, kind) => {
  const f = fixture(t, [manyFiles(300)], { node_cache: 20 }, { kind });
  churn(f, 300);
  // Nodes used by the last few operations are spared, so the bound has a little slack.
  assert.ok(f.overlay.cachedNodes <= 20 + 10, `${f.overlay.cachedNodes} cached`);
  assert.ok(f.overlay.cachedNodes >= 20);
  f.overlay.close();
  assert.equal(f.overlay.cachedNodes, 0);
});

testEachKind('a node with an open file is never evicted', (t, kind) => {
  const f = fixture(t, [manyFiles(100, { d: { kept: 'lower' } })], { node_cache: 2 }, { kind });
  const file = f.overlay.open(f.overlay.resolve('/d/kept'), O_RDONLY);
  churn(f, 100);
  assert.equal(f.overlay.resolve('/d/kept'), f.overlay.nodeOf(file), 'the same node, not a second one');
  // A copy-up through a new name lookup reaches the open file's node: the handle reads the new data.
  f.fs.appendFileSync('/d/kept', '+');
  const b = Buffer.alloc(16);
  assert.equal(b.subarray(0, f.overlay.read(file, b, 0, 16, 0)).toString(), 'lower+');
  f.overlay.release(file);
});

testEachKind('a retained node is never evicted; once released it may be, and comes back as the same file', (t, kind) => {
  const f = fixture(t, [manyFiles(100, { kept: 'lower' })], { node_cache: 2 }, { kind });
  const node = f.overlay.resolve('/kept');
  const ino = f.overlay.getattr(node).ino;
  f.overlay.retainNode(node);
  churn(f, 100);
  assert.equal(f.overlay.resolve('/kept'), node);
  f.overlay.releaseNode(node);
  churn(f, 100);
  const again = f.overlay.resolve('/kept');
  assert.notEqual(again, node, 'dropped, then looked up afresh');
  assert.equal(f.overlay.getattr(again).ino, ino);
  assert.equal(f.fs.readFileSync('/kept', 'utf8'), 'lower');
  assert.throws(() => f.overlay.releaseNode(node), { code: 'EINVAL' }, 'one release too many');
});

testEachKind('a directory with a live child stays cached with its whole path', (t, kind) => {
  const f = fixture(t, [manyFiles(100, { x: { y: { z: 'deep' } } })], { node_cache: 2 }, { kind });
  const x = f.overlay.resolve('/x');
  const y = f.overlay.resolve('/x/y');
  const file = f.overlay.open(f.overlay.resolve('/x/y/z'), O_RDONLY);
  churn(f, 100);
  assert.equal(f.overlay.resolve('/x/y'), y);
  assert.equal(f.overlay.resolve('/x'), x);
  assert.equal(f.overlay.nodeOf(file).parent, y);
  f.overlay.release(file);
  churn(f, 100);
  assert.notEqual(f.overlay.resolve('/x/y'), y, 'without the open file the path may go');
});

testEachKind('evicted nodes come back as they were: copied up, renamed, metacopy, untouched', (t, kind) => {
  const f = fixture(t, [manyFiles(100, { up: 'lower up', moved: 'lower moved', meta: 'lower meta', keep: 'lower keep' })],
    { node_cache: 2, metacopy: 'on', redirect_dir: 'on' }, { kind });
  const before = new Map<string, { ino: number; data: string }>();
  f.fs.appendFileSync('/up', '+');
  f.fs.renameSync('/moved', '/renamed');
  f.fs.chmodSync('/meta', 0o600);
  for (const p of ['/up', '/renamed', '/meta', '/keep']) before.set(p, { ino: f.fs.statSync(p).ino, data: f.fs.readFileSync(p, 'utf8') });
  const nodes = ['/up', '/renamed', '/meta', '/keep'].map((p) => f.overlay.resolve(p));
  churn(f, 100);
  for (const [p, { ino, data }] of before) {
    const node = f.overlay.resolve(p);
    assert.ok(!nodes.includes(node), `${p} was evicted`);
    assert.equal(f.fs.statSync(p).ino, ino, p);
    assert.equal(f.fs.readFileSync(p, 'utf8'), data, p);
  }
  assert.equal(f.overlay.copyUpState(f.overlay.resolve('/meta')), 'metacopy');
  assert.equal(f.fs.existsSync('/moved'), false);
  // A write to the evicted metacopy file copies its data up once, and keeps its mode.
  const w = f.overlay.open(f.overlay.resolve('/meta'), O_WRONLY);
  f.overlay.write(w, Buffer.from('L'), 0, 1, 0);
  f.overlay.release(w);
  assert.equal(f.fs.readFileSync('/meta', 'utf8'), 'Lower meta');
  assert.equal(f.fs.statSync('/meta').mode & 0o777, 0o600);
});

testEachKind('node_cache is a whole number of nodes', (t, kind) => {
  const f = fixture(t, [{}], {}, { kind });
  assert.throws(() => f.reopen({ node_cache: -1 }), { code: 'EINVAL', message: /node_cache=-1/ });
  assert.throws(() => f.reopen({ node_cache: 'lots' }), { code: 'EINVAL', message: /node_cache=lots/ });
});
