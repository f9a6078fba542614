// The parts of the layer contract both layers must keep alike: renameat2's flags, times in
// nanoseconds, whiteouts, and removeTemp of what is already gone. Each runs on a DirLayer (over a
// real temp dir) and on a MemoryLayer.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DirLayer } from '../../src/layer/dir-layer.js';
import { MemoryLayer } from '../../src/layer/memory-layer.js';
import { S_IFCHR, S_IFDIR, S_IFMT, S_IFREG, type RealFile, type WritableLayer } from '../../src/layer/types.js';

const { O_RDONLY, O_WRONLY, O_RDWR } = fs.constants;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function dirLayer(): WritableLayer {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-contract-'));
  dirs.push(base);
  fs.mkdirSync(path.join(base, 'upper'));
  fs.mkdirSync(path.join(base, 'work'));
  return new DirLayer(path.join(base, 'upper'), { workdir: path.join(base, 'work'), xattrPrefix: 'user.overlay.' });
}

function write(layer: WritableLayer, rel: string, text: string): void {
  const f = layer.create(rel, O_WRONLY, 0o644);
  f.write(Buffer.from(text), 0, text.length, 0);
  f.close();
}

function read(layer: WritableLayer, rel: string): string {
  const f = layer.open(rel, O_RDONLY);
  try {
    const buf = Buffer.alloc(1024);
    return buf.subarray(0, f.read(buf, 0, buf.length, 0)).toString();
  } finally {
    f.close();
  }
}

function type(layer: WritableLayer, rel: string): number {
  return layer.lstat(rel).mode & S_IFMT;
}

function code(expected: string): (err: unknown) => boolean {
  return (err) => {
    assert.equal((err as { code?: string }).code, expected);
    assert.ok(((err as { errno?: number }).errno ?? 0) < 0);
    return true;
  };
}

for (const [label, make] of [['DirLayer', dirLayer], ['MemoryLayer', () => new MemoryLayer()]] as const) {
  describe(`${label}: the writable layer contract`, () => {
    it('rename noReplace refuses an existing name and moves onto a free one', () => {
      const layer = make();
      write(layer, 'a', 'A');
      write(layer, 'b', 'B');
      assert.throws(() => layer.rename('a', 'b', { noReplace: true }), code('EEXIST'));
      assert.equal(read(layer, 'b'), 'B');
      layer.rename('a', 'c', { noReplace: true });
      assert.equal(read(layer, 'c'), 'A');
      assert.equal(layer.lookup('a'), undefined);
      layer.close();
    });

    it('rename exchange swaps a file and a directory, also across directories', () => {
      const layer = make();
      write(layer, 'f', 'F');
      layer.mkdir('d', 0o755);
      write(layer, 'd/inner', 'I');
      layer.mkdir('other', 0o755);
      layer.rename('f', 'd', { exchange: true });
      assert.equal(type(layer, 'f'), S_IFDIR);
      assert.equal(read(layer, 'f/inner'), 'I');
      assert.equal(read(layer, 'd'), 'F');
      layer.rename('f', 'other/x', { noReplace: true });
      layer.rename('other/x', 'd', { exchange: true });
      assert.equal(read(layer, 'other/x'), 'F');
      assert.equal(read(layer, 'd/inner'), 'I');
      assert.throws(() => layer.rename('d', 'missing', { exchange: true }), code('ENOENT'));
      layer.close();
    });

    it('rename whiteout moves a file or a directory and leaves a whiteout in one step', () => {
      const layer = make();
      write(layer, 'f', 'F');
      layer.mkdir('d', 0o755);
      write(layer, 'd/inner', 'I');
      layer.rename('f', 'g', { whiteout: true });
      layer.rename('d', 'e', { whiteout: true });
      for (const rel of ['f', 'd']) {
        const entry = layer.lookup(rel);
        assert.ok(entry?.whiteout, `${rel} is a whiteout`);
      }
      assert.equal(read(layer, 'g'), 'F');
      assert.equal(read(layer, 'e/inner'), 'I');
      assert.deepEqual(layer.readdir('').filter((d) => d.whiteout).map((d) => d.name).sort(), ['d', 'f']);
      layer.close();
    });

    it('rename whiteout with noReplace refuses an existing target and leaves the source alone', () => {
      const layer = make();
      write(layer, 'f', 'F');
      write(layer, 'g', 'G');
      assert.throws(() => layer.rename('f', 'g', { whiteout: true, noReplace: true }), code('EEXIST'));
      assert.equal(read(layer, 'f'), 'F');
      assert.equal(layer.lookup('f')?.whiteout, false);
      layer.close();
    });

    it('a directory goes over a whiteout by exchange, the whiteout then removed as a temp', () => {
      const layer = make();
      layer.whiteout('x');
      const temp = layer.tempPath();
      layer.mkdir(temp, 0o755);
      layer.setOpaque(temp);
      layer.rename(temp, 'x', { exchange: true });
      layer.removeTemp(temp);
      const entry = layer.lookup('x');
      assert.equal(entry?.stat.mode! & S_IFMT, S_IFDIR);
      assert.equal(entry?.opaque, true);
      assert.equal(layer.lookup(temp), undefined);
      layer.removeTemp(temp); // already gone: fine
      layer.close();
    });

    it('times are nanoseconds both ways; undefined leaves a time as it is', () => {
      const layer = make();
      write(layer, 'f', 'x');
      layer.lutimes('f', 1_234_567_891_123_456_789n, 987_654_321_987_654_321n);
      let st = layer.lstat('f');
      assert.equal(st.atimeNs, 1_234_567_891_123_456_789n);
      assert.equal(st.mtimeNs, 987_654_321_987_654_321n);
      assert.equal(st.mtimeMs, 987_654_321_987.654321);
      layer.lutimes('f', undefined, 5n);
      st = layer.lstat('f');
      assert.equal(st.atimeNs, 1_234_567_891_123_456_789n);
      assert.equal(st.mtimeNs, 5n);
      const file: RealFile = layer.open('f', O_RDWR);
      try {
        file.utimes(7_000_000_001n, undefined);
        assert.equal(file.stat().atimeNs, 7_000_000_001n);
        assert.equal(file.stat().mtimeNs, 5n);
        file.utimes(undefined, 9_000_000_009n);
        assert.equal(file.stat().mtimeNs, 9_000_000_009n);
        assert.equal(file.stat().mtimeMs, 9_000.000009);
      } finally {
        file.close();
      }
      assert.equal(typeof layer.lstat('f').ctimeNs, 'bigint');
      assert.equal(typeof layer.lstat('f').birthtimeNs, 'bigint');
      layer.close();
    });

    it('setMetadata takes nanosecond times', () => {
      const layer = make();
      write(layer, 'f', 'x');
      layer.setMetadata('f', { mode: 0o640, uid: process.getuid!(), gid: process.getgid!(), atimeNs: 11n, mtimeNs: 1_500_000_000_000_000_022n, xattrs: [] });
      const st = layer.lstat('f');
      assert.equal(st.mode, S_IFREG | 0o640);
      assert.equal(st.atimeNs, 11n);
      assert.equal(st.mtimeNs, 1_500_000_000_000_000_022n);
      layer.close();
    });

    it('whiteout() makes a 0/0 character device where the name is free', () => {
      const layer = make();
      layer.whiteout('w');
      const entry = layer.lookup('w')!;
      assert.equal(entry.whiteout, true);
      assert.equal(entry.stat.mode & S_IFMT, S_IFCHR);
      assert.equal(entry.stat.rdev, 0);
      assert.throws(() => layer.whiteout('w'), code('EEXIST'));
      layer.close();
    });
  });
}
