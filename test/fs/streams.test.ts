// Read and write streams over the overlay: Node's own stream classes with Node's options, a
// pipeline copy, and a read stream that keeps reading, at the same offset, the data of a file that
// was copied up under it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import * as path from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { makeOverlayFs, type FsFixture } from '../support/fixture.js';

const BIG = randomBytes(300 * 1024 + 17);

let fx: FsFixture;
beforeEach(() => {
  fx = makeOverlayFs({ 'a.txt': 'hello world', 'big.bin': '', 'AAAA.txt': 'A'.repeat(64), dir: {} });
  nodeFs.writeFileSync(path.join(fx.lower, 'big.bin'), BIG);
});
afterEach(() => fx.close());

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

describe('createReadStream', () => {
  it('is a Node fs.ReadStream with open/ready/close events and the path', async () => {
    const rs = fx.fs.createReadStream('/a.txt');
    assert.ok(rs instanceof nodeFs.ReadStream);
    assert.ok(rs instanceof fx.fs.ReadStream);
    const [fd] = await once(rs, 'open');
    assert.equal(typeof fd, 'number');
    assert.equal(rs.path, '/a.txt');
    assert.equal((await collect(rs)).toString(), 'hello world');
    if (!rs.closed) await once(rs, 'close');
    assert.equal(rs.bytesRead, 11);
    assert.throws(() => fx.fs.fstatSync(fd as number), { code: 'EBADF' });
  });

  it('honours start, end, highWaterMark and encoding', async () => {
    const rs = fx.fs.createReadStream('/a.txt', { start: 2, end: 8, highWaterMark: 3, encoding: 'utf8' });
    const parts: string[] = [];
    for await (const chunk of rs) parts.push(chunk as string);
    assert.deepEqual(parts, ['llo', ' wo', 'r']);
    assert.equal((await collect(fx.fs.createReadStream('/a.txt', 'latin1'))).toString(), 'hello world');
  });

  it('reads from an fd without closing it when autoClose is false', async () => {
    const fd = fx.fs.openSync('/a.txt', 'r');
    const rs = fx.fs.createReadStream(null as unknown as string, { fd, autoClose: false, start: 6 });
    assert.equal((await collect(rs)).toString(), 'world');
    assert.equal(fx.fs.fstatSync(fd).size, 11);
    fx.fs.closeSync(fd);
  });

  it('emits a Node-shaped error for a missing file', async () => {
    const rs = fx.fs.createReadStream('/missing');
    const [err] = await once(rs, 'error');
    assert.equal((err as Error).message, "ENOENT: no such file or directory, open '/missing'");
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOENT');
    assert.equal((err as NodeJS.ErrnoException).syscall, 'open');
    assert.equal((err as NodeJS.ErrnoException).path, '/missing');
  });

  it('started before a copy-up continues with the new data at the same offset', async () => {
    const rs = fx.fs.createReadStream('/AAAA.txt', { highWaterMark: 16 });
    const chunks: string[] = [];
    let offsetAtWrite = -1;
    rs.on('data', (chunk: string | Buffer) => {
      chunks.push(chunk.toString());
      if (offsetAtWrite === -1) {
        // After the first chunk, overwrite the whole file through another handle: this copies it up.
        offsetAtWrite = rs.bytesRead;
        const fd = fx.fs.openSync('/AAAA.txt', 'r+');
        fx.fs.writeSync(fd, 'B'.repeat(64), 0);
        fx.fs.closeSync(fd);
      }
    });
    await once(rs, 'close');
    assert.equal(offsetAtWrite, 16);
    assert.equal(chunks[0], 'A'.repeat(16));
    assert.equal(chunks.join(''), 'A'.repeat(16) + 'B'.repeat(48));
    assert.equal(nodeFs.readFileSync(path.join(fx.lower, 'AAAA.txt'), 'utf8'), 'A'.repeat(64));
    assert.equal(nodeFs.readFileSync(path.join(fx.upper, 'AAAA.txt'), 'utf8'), 'B'.repeat(64));
  });
});

describe('createWriteStream', () => {
  it('pipeline copies a large lower file into the upper layer', async () => {
    await pipeline(fx.fs.createReadStream('/big.bin'), fx.fs.createWriteStream('/dir/copy.bin'));
    assert.ok(fx.fs.readFileSync('/dir/copy.bin').equals(BIG));
    assert.ok(nodeFs.readFileSync(path.join(fx.upper, 'dir/copy.bin')).equals(BIG));
  });

  it('is a Node fs.WriteStream; writes, writev (cork), bytesWritten, flush, close', async () => {
    const ws = fx.fs.createWriteStream('/out.txt', { flush: true });
    assert.ok(ws instanceof nodeFs.WriteStream);
    ws.cork();
    ws.write('ab');
    ws.write(Buffer.from('cd'));
    ws.uncork();
    ws.end('ef');
    await once(ws, 'close');
    assert.equal(ws.bytesWritten, 6);
    assert.equal(fx.fs.readFileSync('/out.txt', 'utf8'), 'abcdef');
  });

  it('honours flags, start, mode, and encoding', async () => {
    const append = fx.fs.createWriteStream('/a.txt', { flags: 'a' });
    append.end('!');
    await once(append, 'close');
    assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'hello world!');
    const at = fx.fs.createWriteStream('/a.txt', { flags: 'r+', start: 6 });
    at.end('WORLD');
    await once(at, 'close');
    assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'hello WORLD!');
    const moded = fx.fs.createWriteStream('/m.txt', { mode: 0o600, encoding: 'hex' });
    moded.end('414243');
    await once(moded, 'close');
    assert.equal(fx.fs.readFileSync('/m.txt', 'utf8'), 'ABC');
    assert.equal(fx.fs.statSync('/m.txt').mode & 0o777, 0o600 & ~process.umask());
    assert.equal(nodeFs.readFileSync(path.join(fx.lower, 'a.txt'), 'utf8'), 'hello world');
  });

  it('new fs.WriteStream(path) works like createWriteStream', async () => {
    const ws = new fx.fs.WriteStream('/ctor.txt');
    ws.end('x');
    await once(ws, 'close');
    assert.equal(fx.fs.readFileSync('/ctor.txt', 'utf8'), 'x');
  });

  it('emits Node-shaped errors (EISDIR, ENOENT parent)', async () => {
    const ws = fx.fs.createWriteStream('/dir');
    const [err] = await once(ws, 'error');
    assert.equal((err as NodeJS.ErrnoException).code, 'EISDIR');
    const ws2 = fx.fs.createWriteStream('/nope/x');
    const [err2] = await once(ws2, 'error');
    assert.equal((err2 as Error).message, "ENOENT: no such file or directory, open '/nope/x'");
  });
});

describe('streams over a FileHandle', () => {
  it('read and write through handle.createReadStream/createWriteStream, then close the handle', async () => {
    const w = await fx.fs.promises.open('/h.txt', 'w');
    const ws = w.createWriteStream();
    ws.end('via handle');
    await once(ws, 'close');
    assert.equal(w.fd, -1, 'autoClose closed the handle');
    const r = await fx.fs.promises.open('/h.txt');
    assert.equal((await collect(r.createReadStream({ encoding: 'utf8' }))).toString(), 'via handle');
    assert.equal(r.fd, -1);
  });

  it('a handle passed as fd to createReadStream; autoClose false leaves it open', async () => {
    const h = await fx.fs.promises.open('/a.txt');
    const rs = fx.fs.createReadStream(null as unknown as string, { fd: h, autoClose: false, start: 6 });
    assert.equal((await collect(rs)).toString(), 'world');
    assert.equal((await h.stat()).size, 11);
    await h.close();
    assert.equal(h.fd, -1);
  });
});
