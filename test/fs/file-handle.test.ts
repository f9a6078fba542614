// OverlayFileHandle: every method, Node's close semantics, and handles that stay coherent across a
// copy-up (written the way xfstests overlay/016 is: open read-only, modify elsewhere, look again).
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { makeOverlayFs, type FsFixture } from '../support/fixture.js';

let fx: FsFixture;
beforeEach(() => {
  fx = makeOverlayFs({ 'a.txt': 'hello world', 'lines.txt': 'one\ntwo\r\nthree\n', d: { e: { f: { 'deep.txt': 'deep' } } } });
});
afterEach(() => fx.close());

const lowerText = (rel: string): string => nodeFs.readFileSync(path.join(fx.lower, rel), 'utf8');

describe('OverlayFileHandle', () => {
  it('methods called on something else reject with ERR_INTERNAL_ASSERTION, as Node\'s do', async () => {
    const h = await fx.fs.promises.open('/a.txt');
    try {
      for (const name of ['stat', 'read', 'readFile', 'write', 'truncate', 'sync'] as const) {
        await assert.rejects(() => (h[name] as (...a: unknown[]) => Promise<unknown>).call({}), { code: 'ERR_INTERNAL_ASSERTION', message: /handle must be an instance of FileHandle/ }, name);
      }
      assert.equal((await h.stat()).size, 11);
    } finally {
      await h.close();
    }
  });

  it('read: (buffer, offset, length, position), (buffer, options), (options) and ()', async () => {
    const h = await fx.fs.promises.open('/a.txt');
    try {
      const buf = Buffer.alloc(11);
      const r1 = await h.read(buf, 0, 5, 0);
      assert.equal(r1.bytesRead, 5);
      assert.equal(r1.buffer, buf);
      assert.equal(buf.subarray(0, 5).toString(), 'hello');
      const r2 = await h.read(Buffer.alloc(5), { position: 6 });
      assert.equal(r2.buffer.subarray(0, r2.bytesRead).toString(), 'world');
      const r3 = await h.read({ buffer: Buffer.alloc(3), position: 1 });
      assert.equal(r3.buffer.toString(), 'ell');
      // No position: the file position, which explicit positions leave alone.
      const r4 = await h.read();
      assert.equal(r4.buffer.length, 16384);
      assert.equal(r4.buffer.subarray(0, r4.bytesRead).toString(), 'hello world');
      const r5 = await h.read(Buffer.alloc(4), 0, 4, null);
      assert.equal(r5.bytesRead, 0);
      const empty = await h.read(Buffer.alloc(4), 0, 0, 0);
      assert.equal(empty.bytesRead, 0);
    } finally {
      await h.close();
    }
  });

  it('write (buffer and string), readv, writev, stat, truncate, sync, datasync', async () => {
    const h = await fx.fs.promises.open('/a.txt', 'r+');
    const w1 = await h.write(Buffer.from('HELLO'), 0, 5, 0);
    assert.equal(w1.bytesWritten, 5);
    const w2 = await h.write('WORLD', 6, 'utf8');
    assert.deepEqual(w2, { bytesWritten: 5, buffer: 'WORLD' });
    const wv = await h.writev([Buffer.from('!'), Buffer.from('?')], 11);
    assert.equal(wv.bytesWritten, 2);
    const a = Buffer.alloc(6);
    const b = Buffer.alloc(7);
    const rv = await h.readv([a, b], 0);
    assert.equal(rv.bytesRead, 13);
    assert.equal(a.toString() + b.toString(), 'HELLO WORLD!?');
    assert.equal((await h.stat()).size, 13);
    assert.equal((await h.stat({ bigint: true })).size, 13n);
    await h.truncate(5);
    await h.sync();
    await h.datasync();
    assert.equal((await h.stat()).size, 5);
    await h.close();
    assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'HELLO');
    assert.equal(lowerText('a.txt'), 'hello world');
  });

  it('readFile reads from the current position; writeFile writes there', async () => {
    const h = await fx.fs.promises.open('/a.txt', 'r+');
    await h.read(Buffer.alloc(6), 0, 6, null);
    assert.equal(await h.readFile('utf8'), 'world');
    assert.equal((await h.readFile()).length, 0);
    await h.writeFile('!!');
    await h.writeFile(Buffer.from('?'));
    await h.close();
    assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'hello world!!?');
  });

  it('chmod, chown, utimes act on the file and copy it up', async () => {
    const h = await fx.fs.promises.open('/d/e/f/deep.txt');
    await h.chmod(0o640);
    await h.chown(process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    await h.utimes(100, 200);
    const st = await h.stat();
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(st.mtimeMs, 200_000);
    assert.equal(await h.readFile('utf8'), 'deep');
    await h.close();
    assert.ok(nodeFs.existsSync(path.join(fx.upper, 'd/e/f/deep.txt')));
  });

  it('close: emits close, later calls reject with EBADF "file closed", close twice is fine', async () => {
    const h = await fx.fs.promises.open('/a.txt');
    const fd = h.fd;
    let closed = 0;
    h.on('close', () => closed++);
    await h.close();
    await h.close();
    assert.equal(closed, 1);
    assert.equal(h.fd, -1);
    await assert.rejects(h.read(Buffer.alloc(1), 0, 1, 0), { code: 'EBADF', syscall: 'read', message: 'file closed' });
    await assert.rejects(h.stat(), { code: 'EBADF', syscall: 'fstat' });
    assert.throws(() => fx.fs.fstatSync(fd), { code: 'EBADF' });
  });

  it('Symbol.asyncDispose closes the handle', async () => {
    const h = await fx.fs.promises.open('/a.txt');
    await h[Symbol.asyncDispose]();
    assert.equal(h.fd, -1);
  });

  it('readLines splits lines with crlfDelay Infinity', async () => {
    const h = await fx.fs.promises.open('/lines.txt');
    const lines: string[] = [];
    for await (const line of h.readLines()) lines.push(line);
    assert.deepEqual(lines, ['one', 'two', 'three']);
    // The stream closed the handle with it.
    assert.equal(h.fd, -1);
  });

  it('readableWebStream yields the file', async () => {
    const h = await fx.fs.promises.open('/a.txt');
    const chunks: Buffer[] = [];
    for await (const chunk of h.readableWebStream()) chunks.push(Buffer.from(chunk as Uint8Array));
    assert.equal(Buffer.concat(chunks).toString(), 'hello world');
    assert.throws(() => h.readableWebStream(), { code: 'ERR_INVALID_STATE' });
    await h.close();
    assert.equal(h.fd, -1);
  });

  it('closing the handle closes its streams; the fd lives until they are done', async () => {
    const h = await fx.fs.promises.open('/a.txt');
    const rs = h.createReadStream({ highWaterMark: 2 });
    const fd = h.fd;
    await new Promise<void>((resolve) => rs.once('readable', () => resolve()));
    const closing = h.close();
    await new Promise<void>((resolve) => rs.once('close', () => resolve()));
    await closing;
    assert.equal(h.fd, -1);
    assert.throws(() => fx.fs.fstatSync(fd), { code: 'EBADF' });
  });
});

describe('handles across copy-up', () => {
  it('a read-only handle reads data written through another handle after the copy-up', async () => {
    const r = await fx.fs.promises.open('/d/e/f/deep.txt', 'r');
    assert.equal((await r.read(Buffer.alloc(2), 0, 2, null)).buffer.toString(), 'de');
    const w = await fx.fs.promises.open('/d/e/f/deep.txt', 'r+');
    await w.write('EP!', 2);
    await w.close();
    // Same offset, new data.
    assert.equal(await r.readFile('utf8'), 'EP!');
    assert.equal((await r.stat()).size, 5);
    await r.close();
    assert.equal(lowerText('d/e/f/deep.txt'), 'deep');
  });

  it('appendFile with O_APPEND appends to the copied-up file, seen by an earlier reader', async () => {
    const reader = await fx.fs.promises.open('/a.txt', 'r');
    const appender = await fx.fs.promises.open('/a.txt', 'a');
    await appender.appendFile('!');
    // A path write through another route, then the same handle again: both land at the end.
    fx.fs.appendFileSync('/a.txt', '?');
    await appender.appendFile(Buffer.from('#'));
    await appender.close();
    assert.equal(await reader.readFile('utf8'), 'hello world!?#');
    await reader.close();
    assert.equal(lowerText('a.txt'), 'hello world');
    assert.equal(nodeFs.readFileSync(path.join(fx.upper, 'a.txt'), 'utf8'), 'hello world!?#');
  });

  it('a read-only handle sees a truncate made through the path', async () => {
    const r = await fx.fs.promises.open('/a.txt');
    await fx.fs.promises.truncate('/a.txt', 5);
    assert.equal(await r.readFile('utf8'), 'hello');
    await r.close();
  });

  it('writeFile through the path while a handle is open: the handle reads the new file content', async () => {
    const r = await fx.fs.promises.open('/a.txt');
    await fx.fs.promises.writeFile('/a.txt', 'new');
    const { bytesRead, buffer } = await r.read(Buffer.alloc(10), 0, 10, 0);
    assert.equal(buffer.subarray(0, bytesRead).toString(), 'new');
    await r.close();
  });
});
