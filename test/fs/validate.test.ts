// Argument validation as Node 20 does it: the same code, class and message for the same bad call,
// checked against node:fs itself on a real directory, and stacks that start at the caller.
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeOverlayFs, type FsFixture } from '../support/fixture.js';

let fx: FsFixture;
let real: string;
before(() => {
  fx = makeOverlayFs({ 'a.txt': 'hello', dir: {} });
  real = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-validate-'));
  nodeFs.writeFileSync(path.join(real, 'a.txt'), 'hello');
});
after(() => {
  fx.close();
  nodeFs.rmSync(real, { recursive: true, force: true });
});

type Call = (fs: typeof nodeFs, at: (p: string) => string, fd: number) => unknown;

/** What a call throws: class, code and message, for comparing ovlfs with node:fs. */
function thrown(fn: () => unknown): { name: string; code: unknown; message: string; ctor: string } | 'no throw' {
  try {
    fn();
  } catch (err) {
    const e = err as Error & { code?: unknown };
    return { name: e.name, code: e.code, message: e.message, ctor: e.constructor.name };
  }
  return 'no throw';
}

const CASES: Array<[string, Call]> = [
  ["closeSync('3')", (fs) => fs.closeSync('3' as unknown as number)],
  ['closeSync(-1)', (fs) => fs.closeSync(-1)],
  ['closeSync(1.5)', (fs) => fs.closeSync(1.5)],
  ['fstatSync(2 ** 31)', (fs) => fs.fstatSync(2 ** 31)],
  ["openSync(p, 'r', 'boom')", (fs, at) => fs.openSync(at('a.txt'), 'r', 'boom')],
  ["openSync(p, 'bogus')", (fs, at) => fs.openSync(at('a.txt'), 'bogus')],
  ['openSync(p, 1.5)', (fs, at) => fs.openSync(at('a.txt'), 1.5)],
  ['openSync(123)', (fs) => (fs.openSync as (p: unknown) => number)(123)],
  ['openSync(nul byte)', (fs) => (fs.openSync as (p: unknown) => number)('a\0b')],
  ['mkdtempSync(1)', (fs) => fs.mkdtempSync(1 as unknown as string)],
  ["symlinkSync type '🍏'", (fs, at) => fs.symlinkSync('x', at('link'), '🍏' as 'file')],
  ['readSync offset -1', (fs, _at, fd) => fs.readSync(fd, Buffer.alloc(4), -1, 1, 0)],
  ['readSync length too long', (fs, _at, fd) => fs.readSync(fd, Buffer.alloc(4), 0, 10, 0)],
  ["readSync position 'x'", (fs, _at, fd) => fs.readSync(fd, Buffer.alloc(4), 0, 1, 'x' as unknown as number)],
  ['readSync position 2 ** 63 as bigint', (fs, _at, fd) => fs.readSync(fd, Buffer.alloc(4), 0, 1, 2n ** 63n)],
  ['writeSync offset too big', (fs, _at, fd) => fs.writeSync(fd, Buffer.alloc(4), 5)],
  ['writeSync number data', (fs, _at, fd) => fs.writeSync(fd, 42 as unknown as string)],
  ['chownSync uid -2', (fs, at) => fs.chownSync(at('a.txt'), -2, 0)],
  ["chmodSync mode '9'", (fs, at) => fs.chmodSync(at('a.txt'), '9')],
  ["utimesSync atime 'soon'", (fs, at) => fs.utimesSync(at('a.txt'), 'soon', 0)],
  ['ftruncateSync len 1.5', (fs, _at, fd) => fs.ftruncateSync(fd, 1.5)],
  ['accessSync mode 8', (fs, at) => fs.accessSync(at('a.txt'), 8)],
  ['copyFileSync mode 8', (fs, at) => fs.copyFileSync(at('a.txt'), at('b.txt'), 8)],
  ['readdirSync recursive 1', (fs, at) => fs.readdirSync(at('dir'), { recursive: 1 as unknown as boolean })],
  ["readFileSync encoding 'nope'", (fs, at) => fs.readFileSync(at('a.txt'), { encoding: 'nope' as BufferEncoding })],
  ['rmSync force 1', (fs, at) => fs.rmSync(at('a.txt'), { force: 1 as unknown as boolean })],
  ['writevSync not an array', (fs, _at, fd) => fs.writevSync(fd, 'x' as unknown as Buffer[])],
  ['stat callback missing', (fs, at) => (fs.stat as unknown as (p: string) => void)(at('a.txt'))],
];

describe('argument errors match node:fs', () => {
  for (const [name, call] of CASES) {
    it(name, () => {
      const realFd = nodeFs.openSync(path.join(real, 'a.txt'), 'r+');
      const ovlFd = fx.fs.openSync('/a.txt', 'r+');
      try {
        const expected = thrown(() => call(nodeFs, (p) => path.join(real, p), realFd));
        const actual = thrown(() => call(fx.fs as unknown as typeof nodeFs, (p) => `/${p}`, ovlFd));
        assert.notEqual(expected, 'no throw', 'node:fs itself accepts this call');
        assert.deepEqual(actual, expected);
      } finally {
        nodeFs.closeSync(realFd);
        fx.fs.closeSync(ovlFd);
      }
    });
  }

  it('names the "fd" argument as Node does', () => {
    assert.throws(() => fx.fs.closeSync('3' as unknown as number), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
      message: 'The "fd" argument must be of type number. Received type string (\'3\')',
    });
  });

  it('keeps system errors as system errors', () => {
    assert.throws(() => fx.fs.readFileSync('/missing'), (err: NodeJS.ErrnoException) => {
      assert.equal(err.name, 'Error');
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.errno, -os.constants.errno.ENOENT);
      assert.equal(err.syscall, 'open');
      return true;
    });
  });

  it('starts stacks at the caller, with Node\'s "TypeError [CODE]" header', () => {
    let err: Error | undefined;
    try {
      fx.fs.openSync('/a.txt', 'r', 'boom');
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err !== undefined);
    const lines = err.stack!.split('\n');
    assert.match(lines[0], /^TypeError \[ERR_INVALID_ARG_VALUE\]: The argument 'mode' must be a 32-bit unsigned integer or an octal string/);
    assert.match(lines[1], /validate\.test\.ts/);
  });

  it('throws argument errors of callback forms synchronously and rejects them in promise forms', async () => {
    assert.throws(() => fx.fs.close('3' as unknown as number, () => {}), { code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(fx.fs.promises.mkdtemp(1 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
  });
});
