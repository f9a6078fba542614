// Behaviours of node:fs that the facade must share, each found missing once by running Node's own
// fs tests against it: refusals, times, names, AbortSignal timing, callback `this`, large files,
// FileHandle clean-up, stream construction, bigint positions, truncate(fd) and Dirent.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as nodeFs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { makeOverlayFs, type FsFixture } from '../support/fixture.js';

let fx: FsFixture;
beforeEach(() => {
  fx = makeOverlayFs({ 'a.txt': 'hello world', dir: { 'x.txt': 'x' } });
});
afterEach(() => fx.close());

function warnings(code: string): { seen: string[]; stop(): void } {
  const seen: string[] = [];
  const onWarning = (w: Error & { code?: string }): void => {
    if (w.code === code) seen.push(w.message);
  };
  process.on('warning', onWarning);
  return { seen, stop: () => process.off('warning', onWarning) };
}

describe('refusals', () => {
  it('rmdir(file, { recursive: true }) refuses with ENOTDIR, warns DEP0147, and keeps the file', async () => {
    const w = warnings('DEP0147');
    try {
      assert.throws(() => fx.fs.rmdirSync('/a.txt', { recursive: true }), { code: 'ENOTDIR', syscall: 'rmdir' });
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'hello world');
      assert.ok(nodeFs.existsSync(path.join(fx.lower, 'a.txt')));
      assert.equal(w.seen.length, 1);
    } finally {
      w.stop();
    }
  });

  it('recursive mkdir through a file is ENOTDIR; the file itself is EEXIST', () => {
    assert.throws(() => fx.fs.mkdirSync('/a.txt/sub', { recursive: true }), { code: 'ENOTDIR', syscall: 'mkdir' });
    assert.throws(() => fx.fs.mkdirSync('/a.txt', { recursive: true }), { code: 'EEXIST', syscall: 'mkdir' });
  });

  it("realpath names lstat and the failing component, as Node's does; .native names realpath", () => {
    assert.throws(() => fx.fs.realpathSync('/dir/missing/deeper'), { code: 'ENOENT', syscall: 'lstat', path: '/dir/missing' });
    assert.throws(() => fx.fs.realpathSync.native('/dir/missing/deeper'), { code: 'ENOENT', syscall: 'realpath' });
  });
});

describe('names and times', () => {
  it('mkdtemp with a file: URL prefix creates under the URL\'s path', () => {
    const made = fx.fs.mkdtempSync(pathToFileURL('/dir/tmp-') as unknown as string);
    assert.match(made, /^\/dir\/tmp-[A-Za-z0-9]{6}$/);
    assert.ok(fx.fs.statSync(made).isDirectory());
    assert.ok(nodeFs.statSync(path.join(fx.upper, made)).isDirectory());
  });

  it('utimes before 1970 keeps the date, and BigIntStats carry the host\'s nanoseconds', () => {
    const past = new Date('1960-03-04T05:06:07.891Z');
    fx.fs.utimesSync('/a.txt', past, past);
    assert.equal(fx.fs.statSync('/a.txt').mtime.toISOString(), past.toISOString());
    const host = nodeFs.statSync(path.join(fx.upper, 'a.txt'), { bigint: true });
    const ours = fx.fs.statSync('/a.txt', { bigint: true });
    assert.equal(ours.mtimeNs, host.mtimeNs);
    assert.equal(ours.mtimeNs, BigInt(past.getTime()) * 1000000n);
    // A time with nanoseconds survives to the upper file.
    nodeFs.utimesSync(path.join(fx.upper, 'a.txt'), 1.000000123, 2.123456789);
    assert.equal(fx.fs.statSync('/a.txt', { bigint: true }).mtimeNs, nodeFs.statSync(path.join(fx.upper, 'a.txt'), { bigint: true }).mtimeNs);
  });
});

describe('async forms', () => {
  it('callbacks run with this undefined', async () => {
    const self = await new Promise((resolve) => fx.fs.stat('/a.txt', function (this: unknown) {
      resolve(this);
    }));
    assert.equal(self, undefined);
  });

  it('an AbortSignal aborted after the call rejects or calls back with AbortError', async () => {
    const c1 = new AbortController();
    const cbForm = new Promise<Error | null>((resolve) => fx.fs.readFile('/a.txt', { signal: c1.signal }, (err) => resolve(err)));
    c1.abort();
    assert.equal((await cbForm)?.name, 'AbortError');

    const c2 = new AbortController();
    const promiseForm = fx.fs.promises.readFile('/a.txt', { signal: c2.signal });
    process.nextTick(() => c2.abort());
    await assert.rejects(promiseForm, { name: 'AbortError' });

    const handle = await fx.fs.promises.open('/a.txt', 'r+');
    try {
      const c3 = new AbortController();
      const read = handle.readFile({ signal: c3.signal });
      process.nextTick(() => c3.abort());
      await assert.rejects(read, { name: 'AbortError' });
      const c4 = new AbortController();
      const write = handle.writeFile('changed', { signal: c4.signal });
      process.nextTick(() => c4.abort());
      await assert.rejects(write, { name: 'AbortError' });
    } finally {
      await handle.close();
    }
    assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'hello world');
  });

  it('callback readFile of a file over 2 GiB calls back with ERR_FS_FILE_TOO_LARGE', async () => {
    const big = path.join(fx.lower, 'big.bin');
    nodeFs.writeFileSync(big, '');
    nodeFs.truncateSync(big, 2 ** 31 + 1);
    let sync = true;
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      fx.fs.readFile('/big.bin', (e) => resolve(e));
      sync = false;
    });
    assert.equal(sync, false);
    assert.equal(err?.code, 'ERR_FS_FILE_TOO_LARGE');
    assert.equal(err?.name, 'RangeError');
    assert.throws(() => fx.fs.readFileSync('/big.bin'), { code: 'ERR_FS_FILE_TOO_LARGE' });
  });

  it('a FileHandle collected while open closes its fd with Node\'s warning', async (t) => {
    void t;
    // A gc() without --expose-gc on the command line.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const w = warnings('DEP0137');
    const messages: string[] = [];
    const onWarning = (warning: Error): void => {
      messages.push(warning.message);
    };
    process.on('warning', onWarning);
    try {
      let fd = -1;
      await (async () => {
        const h = await fx.fs.promises.open('/a.txt');
        fd = h.fd;
      })();
      for (let i = 0; i < 20 && !messages.some((m) => m.includes(`descriptor ${fd}`)); i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(messages.includes(`Closing file descriptor ${fd} on garbage collection`), messages.join('\n'));
      assert.throws(() => fx.fs.fstatSync(fd), { code: 'EBADF' });
    } finally {
      process.off('warning', onWarning);
      w.stop();
    }
  });
});

describe('streams', () => {
  it('are callable without new and on a subclass object, as graceful-fs does', async () => {
    const { ReadStream } = fx.fs as unknown as { ReadStream: (this: unknown, p: string, o?: object) => nodeFs.ReadStream };
    const rs = (ReadStream as unknown as (p: string) => nodeFs.ReadStream)('/a.txt');
    assert.ok(rs instanceof nodeFs.ReadStream);
    function Graceful(this: nodeFs.ReadStream, p: string): void {
      ReadStream.call(this, p);
    }
    Object.setPrototypeOf(Graceful.prototype, fx.fs.ReadStream.prototype);
    const g = new (Graceful as unknown as new (p: string) => nodeFs.ReadStream)('/a.txt');
    const chunks: Buffer[] = [];
    for await (const c of g) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'hello world');
    rs.destroy();
  });

  it('honour options.fs, custom open included', async () => {
    let opened = 0;
    const rs = fx.fs.createReadStream('/a.txt', {
      fs: {
        open: (...args: unknown[]) => {
          opened++;
          return (fx.fs.open as (...a: unknown[]) => void)(...args);
        },
        read: fx.fs.read,
        close: fx.fs.close,
      },
    } as object);
    const chunks: Buffer[] = [];
    for await (const c of rs) chunks.push(c as Buffer);
    assert.equal(opened, 1);
    assert.equal(Buffer.concat(chunks).toString(), 'hello world');
  });

  it("write through a FileHandle's own write method", async () => {
    const handle = await fx.fs.promises.open('/out.txt', 'w');
    let calls = 0;
    const write = handle.write.bind(handle);
    (handle as unknown as { write: typeof write }).write = ((...args: Parameters<typeof write>) => {
      calls++;
      return write(...args);
    }) as typeof write;
    const ws = handle.createWriteStream();
    ws.end('through the handle');
    await once(ws, 'close');
    assert.ok(calls >= 1);
    assert.equal(fx.fs.readFileSync('/out.txt', 'utf8'), 'through the handle');
  });
});

describe('positions, truncate(fd), Dirent', () => {
  it('bigint positions read where they say; -1n reads at the file position', () => {
    const fd = fx.fs.openSync('/a.txt', 'r');
    try {
      const b = Buffer.alloc(5);
      assert.equal(fx.fs.readSync(fd, b, 0, 5, 6n), 5);
      assert.equal(b.toString(), 'world');
      assert.equal(fx.fs.readSync(fd, b, 0, 5, -1n), 5);
      assert.equal(b.toString(), 'hello');
      assert.equal(fx.fs.readSync(fd, b, 0, 5, -1n), 5);
      assert.equal(b.toString(), ' worl');
    } finally {
      fx.fs.closeSync(fd);
    }
  });

  it('truncate(fd) truncates, with DEP0081', () => {
    const fd = fx.fs.openSync('/a.txt', 'r+');
    try {
      fx.fs.truncateSync(fd as unknown as string, 5);
      assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'hello');
    } finally {
      fx.fs.closeSync(fd);
    }
  });

  it('new fs.Dirent(name, UV_DIRENT_FILE) is a file entry, and listings give Node\'s Dirent', () => {
    const { UV_DIRENT_FILE } = nodeFs.constants as unknown as { UV_DIRENT_FILE: number };
    const d = new (fx.fs.Dirent as unknown as new (n: string, t: number, p: string) => nodeFs.Dirent)('f', UV_DIRENT_FILE, '/dir');
    assert.ok(d.isFile());
    assert.ok(!d.isDirectory());
    const [entry] = fx.fs.readdirSync('/dir', { withFileTypes: true });
    assert.ok(entry instanceof nodeFs.Dirent);
    assert.equal(entry.parentPath, '/dir');
    assert.ok(entry.isFile());
  });
});
