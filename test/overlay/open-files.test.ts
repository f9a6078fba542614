// The promise, operation by operation, in the shape of xfstests overlay/016: open read-only,
// change the file through another handle or path, and check what the first handle sees. Each case
// runs on a lower file, a metacopy file, a file three levels down a lower-only directory, and a
// file inside a directory renamed through a redirect.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, forEachLayerKind, testEachKind, type Fixture, type LayerKind } from '../support/fixture.js';

interface Case {
  name: string;
  /** Path of the file under test, after setup. */
  path: string;
  setup(f: Fixture): void;
  metacopy?: boolean;
}

const cases: Case[] = [
  { name: 'a lower file', path: '/file', setup: () => {} },
  { name: 'a metacopy file', path: '/file', metacopy: true, setup: (f) => f.fs.chmodSync('/file', 0o600) },
  { name: 'a file three levels down a lower-only directory', path: '/a/b/c/file', setup: () => {} },
  { name: 'a file in a redirected directory', path: '/renamed/file', setup: (f) => f.fs.renameSync('/dir', '/renamed') },
];

const tree = { file: '0123456789', a: { b: { c: { file: '0123456789' } } }, dir: { file: '0123456789' } };

function withCase(t: TestContext, kind: LayerKind, c: Case): Fixture {
  const f = fixture(t, [tree], { redirect_dir: 'on', metacopy: c.metacopy ? 'on' : 'off' }, { kind });
  c.setup(f);
  return f;
}

function read(f: Fixture, fd: number, length = 64, position: number | null = 0): string {
  const b = Buffer.alloc(length);
  return b.subarray(0, f.fs.readSync(fd, b, 0, length, position)).toString();
}

forEachLayerKind((kind, label) => {
  for (const c of cases) {
    test(`${c.name}: read, readv and fstat see a write made through another handle${label}`, (t) => {
      const f = withCase(t, kind, c);
      const p = c.path;
      const ro = f.fs.openSync(p, 'r');
      assert.equal(read(f, ro, 4, null), '0123');
      const rw = f.fs.openSync(p, 'r+');
      f.fs.writeSync(rw, Buffer.from('ABCDEFGHIJKLMNOP'), 0, 16, 0);
      assert.equal(read(f, ro, 4, null), 'EFGH', 'the position carried over the re-bind');
      assert.equal(f.fs.fstatSync(ro).size, 16);
      const a = Buffer.alloc(2), b = Buffer.alloc(2);
      assert.equal(f.fs.readvSync(ro, [a, b], 0), 4);
      assert.equal(a.toString() + b.toString(), 'ABCD');
      f.fs.closeSync(rw);
      f.fs.closeSync(ro);
    });

    test(`${c.name}: truncate and writeFile through the path are seen by open handles${label}`, (t) => {
      const f = withCase(t, kind, c);
      const p = c.path;
      const ro = f.fs.openSync(p, 'r');
      f.fs.truncateSync(p, 3);
      assert.equal(read(f, ro), '012');
      f.fs.writeFileSync(p, 'new content');
      assert.equal(read(f, ro), 'new content');
      f.fs.closeSync(ro);
    });

    test(`${c.name}: fchmod, futimes, fsync and fdatasync on a read-only handle reach the current file${label}`, (t) => {
      const f = withCase(t, kind, c);
      const p = c.path;
      const ro = f.fs.openSync(p, 'r');
      f.fs.fchmodSync(ro, 0o640);
      f.fs.futimesSync(ro, 1000, 2000);
      assert.equal(f.fs.statSync(p).mode & 0o777, 0o640);
      assert.equal(f.fs.fstatSync(ro).mtimeMs, 2_000_000);
      f.fs.appendFileSync(p, '+');
      f.fs.fsyncSync(ro);
      f.fs.fdatasyncSync(ro);
      assert.equal(read(f, ro), '0123456789+');
      f.fs.closeSync(ro);
    });

    test(`${c.name}: copyFile and a read stream read the current data${label}`, async (t) => {
      const f = withCase(t, kind, c);
      const p = c.path;
      const ro = f.fs.openSync(p, 'r');
      f.fs.writeFileSync(p, 'copied up');
      f.fs.copyFileSync(p, '/copy');
      assert.equal(f.fs.readFileSync('/copy', 'utf8'), 'copied up');
      const chunks: Buffer[] = [];
      for await (const chunk of f.fs.createReadStream('', { fd: ro, start: 0, autoClose: true })) chunks.push(chunk as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), 'copied up');
    });
  }
});

testEachKind('concurrent async appends on one lower file copy it up once and lose nothing', async (t, kind) => {
  const f = fixture(t, [{ log: '' }], {}, { kind });
  const ro = await f.fs.promises.open('/log', 'r');
  await Promise.all(Array.from({ length: 50 }, (_, i) => f.fs.promises.appendFile('/log', `line ${i}\n`)));
  const lines = (await ro.readFile('utf8')).trim().split('\n');
  assert.equal(lines.length, 50);
  assert.equal(new Set(lines).size, 50);
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
  await ro.close();
});

testEachKind('a FileHandle opened before a copy-up writes and reads through the upper file', async (t, kind) => {
  const f = fixture(t, [{ data: 'lower' }], {}, { kind });
  const ro = await f.fs.promises.open('/data', 'r');
  const rw = await f.fs.promises.open('/data', 'a');
  await rw.appendFile(' appended');
  assert.equal(await ro.readFile('utf8'), 'lower appended');
  assert.equal((await ro.stat()).size, 14);
  await rw.close();
  await ro.close();
});
