// Where node:fs's own functions call others through the fs module object, the facade's call them
// through its own object (or the one set with setModuleObject): a function replaced there sees the
// same calls it would see on node:fs. Each case is checked against node:fs itself in the same run.
import assert from 'node:assert/strict';
import nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { setModuleObject } from '../../src/fs/index.js';
import { cb, makeOverlayFs, type FsFixture } from '../support/fixture.js';

let fx: FsFixture;
let hostDir: string;
beforeEach(() => {
  fx = makeOverlayFs({ 'a.txt': 'hello' });
  hostDir = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-module-calls-'));
});
afterEach(() => {
  mock.restoreAll();
  fx.close();
  nodeFs.rmSync(hostDir, { recursive: true, force: true });
});

/** The names of the calls `fn` makes to `name` on `module`, as [arguments...] lists. */
function callsTo(module: object, name: string, fn: () => void): unknown[][] {
  const spy = mock.method(module as Record<string, () => unknown>, name);
  try {
    fn();
  } finally {
    spy.mock.restore();
  }
  return spy.mock.calls.map((c) => c.arguments as unknown[]);
}

describe('sync forms call through the module where node:fs does', () => {
  it('writeFileSync and appendFileSync with flush call fsyncSync once; a UTF-8 string without an options object calls nothing', () => {
    for (const [fs, dir] of [[nodeFs, hostDir], [fx.fs, '/']] as const) {
      const file = path.join(dir, 'f.txt');
      assert.equal(callsTo(fs, 'fsyncSync', () => fs.writeFileSync(file, 'data', { flush: true })).length, 1);
      assert.equal(callsTo(fs, 'fsyncSync', () => fs.appendFileSync(file, 'more', { flush: true })).length, 1);
      assert.equal(callsTo(fs, 'fsyncSync', () => fs.writeFileSync(file, 'data', { flush: false })).length, 0);
      assert.equal(callsTo(fs, 'openSync', () => fs.writeFileSync(file, 'data', 'utf8')).length, 0);
      assert.equal(callsTo(fs, 'writeFileSync', () => fs.appendFileSync(file, 'x')).length, 1);
      assert.equal(fs.readFileSync(file, 'utf8'), 'datax');
    }
  });

  it('readFileSync reads through openSync, readSync and closeSync, except into a UTF-8 string', () => {
    nodeFs.writeFileSync(path.join(hostDir, 'a.txt'), 'hello');
    for (const [fs, dir] of [[nodeFs, hostDir], [fx.fs, '/']] as const) {
      const file = path.join(dir, 'a.txt');
      for (const name of ['openSync', 'readSync', 'closeSync']) {
        assert.ok(callsTo(fs, name, () => assert.equal(fs.readFileSync(file).toString(), 'hello')).length >= 1, name);
        assert.equal(callsTo(fs, name, () => assert.equal(fs.readFileSync(file, 'latin1'), 'hello')).length >= 1, true, name);
        assert.equal(callsTo(fs, name, () => assert.equal(fs.readFileSync(file, 'utf8'), 'hello')).length, 0, name);
      }
    }
  });

  it('truncateSync opens, truncates and closes through the module', () => {
    nodeFs.writeFileSync(path.join(hostDir, 'a.txt'), 'hello');
    for (const [fs, dir] of [[nodeFs, hostDir], [fx.fs, '/']] as const) {
      const file = path.join(dir, 'a.txt');
      const calls = callsTo(fs, 'ftruncateSync', () => fs.truncateSync(file, 2));
      assert.equal(calls.length, 1);
      assert.equal(calls[0]![1], 2);
      assert.equal(fs.readFileSync(file, 'utf8'), 'he');
    }
  });

  it('rmSync and rmdirSync with recursive call rmdirSync, without options, once for each directory they emptied', () => {
    const shape = (dir: string, fs: typeof nodeFs): void => {
      fs.mkdirSync(path.join(dir, 'one', 'two'), { recursive: true });
      fs.mkdirSync(path.join(dir, 'empty'));
      fs.writeFileSync(path.join(dir, 'one', 'two', 'z.txt'), 'z');
    };
    for (const remove of ['rmSync', 'rmdirSync'] as const) {
      const seen: Record<string, unknown[][]> = {};
      for (const [name, fs, dir] of [['node', nodeFs, path.join(hostDir, 't')], ['ovlfs', fx.fs, '/t']] as const) {
        shape(dir, fs as typeof nodeFs);
        seen[name] = callsTo(fs, 'rmdirSync', () => (fs[remove] as (p: string, o: object) => void)(dir, { recursive: true }));
        assert.equal(fs.existsSync(dir), false);
      }
      // t, t/one and t/one/two were emptied first; t/empty went at once. rmdirSync's own call (with
      // its options) is seen too.
      const own = remove === 'rmdirSync' ? 1 : 0;
      assert.equal(seen.node!.length, 3 + own, remove);
      assert.equal(seen.ovlfs!.length, 3 + own, remove);
      assert.equal(seen.ovlfs!.filter((args) => args.length === 1).length, 3, remove);
    }
  });
});

describe('callback forms call through the module where node:fs does', () => {
  it('writeFile with flush calls fsync(fd, cb); appendFile calls writeFile', async () => {
    for (const [fs, dir] of [[nodeFs, hostDir], [fx.fs, '/']] as const) {
      const file = path.join(dir, 'f.txt');
      const fsync = mock.method(fs as unknown as Record<string, () => unknown>, 'fsync');
      await cb((done) => fs.writeFile(file, 'data', { flush: true }, done));
      fsync.mock.restore();
      assert.equal(fsync.mock.calls.length, 1);
      assert.equal(fsync.mock.calls[0]!.arguments.length, 2);
      const writeFile = mock.method(fs as unknown as Record<string, () => unknown>, 'writeFile');
      await cb((done) => fs.appendFile(file, '!', done));
      writeFile.mock.restore();
      assert.equal(writeFile.mock.calls.length, 1);
      assert.equal(fs.readFileSync(file, 'utf8'), 'data!');
    }
  });

  it('exists calls access', async () => {
    const access = mock.method(fx.fs as unknown as Record<string, () => unknown>, 'access');
    const found = await new Promise((resolve) => fx.fs.exists('/a.txt', resolve));
    assert.equal(found, true);
    assert.equal(access.mock.calls.length, 1);
  });
});

describe('setModuleObject', () => {
  it('sends those calls to the object set instead of the fs itself', () => {
    const seen: string[] = [];
    const stand = new Proxy(fx.fs, {
      get(target, key) {
        const value = Reflect.get(target, key) as unknown;
        if (typeof value !== 'function' || typeof key !== 'string') return value;
        return (...args: unknown[]) => {
          seen.push(key);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    setModuleObject(fx.fs, stand);
    fx.fs.writeFileSync('/b.txt', Buffer.from('b'), { flush: true });
    assert.deepEqual(seen, ['openSync', 'writeSync', 'fsyncSync', 'closeSync']);
    assert.equal(fx.fs.readFileSync('/b.txt', 'utf8'), 'b');
    assert.throws(() => setModuleObject({} as typeof fx.fs, stand), TypeError);
  });
});
