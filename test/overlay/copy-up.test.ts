// Copy-up: parents first, metadata kept, atomic through the work dir, st_ino stable.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { Layer } from '../../src/layer/types.js';
import { fixture, isRoot, testEachKind } from '../support/fixture.js';

const S = 1_000_000_000n;

function readAll(layer: Layer, rel: string): string {
  const file = layer.open(rel, fs.constants.O_RDONLY);
  try {
    const b = Buffer.alloc(4096);
    return b.subarray(0, file.read(b, 0, b.length, 0)).toString();
  } finally {
    file.close();
  }
}

testEachKind('a write copies the file and its parents up, keeping mode, owner, times and xattrs', (t, kind) => {
  const f = fixture(t, [{ a: { b: { c: { file: 'lower' } } } }], {}, { kind });
  // Only root may give a file away (and then still write it).
  const [uid, gid] = isRoot ? [1234, 5678] : [process.getuid!(), process.getgid!()];
  f.edit(0, (layer) => {
    layer.chmod('a/b/c/file', 0o640);
    layer.lchown('a/b/c/file', uid, gid);
    layer.lutimes('a/b/c/file', 1000n * S, 2000n * S);
    layer.setxattr('a/b/c/file', 'user.tag', Buffer.from('kept'));
    layer.lutimes('a/b/c', 3000n * S, 4000n * S);
  });
  f.fs.appendFileSync('/a/b/c/file', '+');
  const st = f.entry('upper', 'a/b/c/file')!.stat;
  assert.equal(st.mode & 0o7777, 0o640);
  assert.equal(st.uid, uid);
  assert.equal(st.gid, gid);
  assert.deepEqual(f.inspect('upper', (layer) => layer.getxattr('a/b/c/file', 'user.tag')), Buffer.from('kept'));
  assert.equal(f.inspect('upper', (layer) => readAll(layer, 'a/b/c/file')), 'lower+');
  assert.equal(f.fs.readFileSync('/a/b/c/file', 'utf8'), 'lower+');
  assert.equal(f.inspect(0, (layer) => readAll(layer, 'a/b/c/file')), 'lower', 'the lower layer is never written');
  // The parent was copied up with its times, and the child's copy-up did not change them.
  assert.equal(f.entry('upper', 'a/b/c')!.stat.mtimeNs, 4000n * S);
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
});

testEachKind('st_ino is the same before and after copy-up, and after reopening', (t, kind) => {
  const f = fixture(t, [{ file: 'x', dir: { y: '1' } }], {}, { kind });
  const before = f.fs.statSync('/file').ino;
  const dirBefore = f.fs.statSync('/dir').ino;
  f.fs.writeFileSync('/file', 'changed');
  f.fs.writeFileSync('/dir/new', 'n');
  assert.ok(f.entry('upper', 'file'), 'copied up');
  assert.equal(f.fs.statSync('/file').ino, before);
  assert.equal(f.fs.statSync('/dir').ino, dirBefore);
  f.reopen();
  assert.equal(f.fs.statSync('/file').ino, before);
});

testEachKind('a failed copy-up leaves nothing behind in the merged view', (t, kind) => {
  const f = fixture(t, [{ dir: { file: 'lower data' } }], {}, { kind });
  assert.equal(f.fs.readFileSync('/dir/file', 'utf8'), 'lower data');
  // Something takes the upper name behind the overlay's back, so the copy's final rename fails.
  f.behindBack('upper', (layer) => {
    layer.mkdir('dir', 0o755);
    layer.mkdir('dir/file', 0o755);
  });
  assert.throws(() => f.fs.appendFileSync('/dir/file', '+'), { code: 'EEXIST' });
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), [], 'the half-made copy was removed from the work dir');
  assert.equal(f.fs.readFileSync('/dir/file', 'utf8'), 'lower data', 'the merged view is unchanged');
  assert.equal(f.inspect(0, (layer) => readAll(layer, 'dir/file')), 'lower data');
});

testEachKind('a directory copy-up is not opaque, so the lower entries still show', (t, kind) => {
  const f = fixture(t, [{ d: { a: '1', b: '2' } }], {}, { kind });
  f.fs.writeFileSync('/d/c', '3');
  assert.equal(f.entry('upper', 'd')?.opaque, false);
  assert.deepEqual((f.fs.readdirSync('/d') as string[]).sort(), ['a', 'b', 'c']);
  f.reopen();
  assert.deepEqual((f.fs.readdirSync('/d') as string[]).sort(), ['a', 'b', 'c']);
});
