// The async forms move data off the event loop (leases on libuv's pool) and copy up asynchronously,
// interleaved with sync calls on the same files: contents are checked byte for byte, and an open
// file never goes stale across either.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { once } from 'node:events';
import { fixture, testEachKind, type Fixture } from '../support/fixture.js';

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Lowercase letters, position-dependent, so a misplaced byte shows. */
function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = 97 + ((i * 7 + (i >> 10)) % 26);
  return b;
}

const MiB = 1 << 20;

testEachKind('a handle opened before an async copy-up reads what is written after it', async (t, kind) => {
  const lower = pattern(8 * MiB);
  const f = fixture(t, [{ big: lower.toString('latin1') }], {}, { kind });
  const handle = await f.fs.promises.open('/big', 'r');
  const appending = f.fs.promises.appendFile('/big', 'TAIL');
  await tick();
  // The copy is in flight or done; sync readers see the lower data until it lands.
  const during = f.fs.readFileSync('/big');
  assert.ok(during.equals(lower) || during.equals(Buffer.concat([lower, Buffer.from('TAIL')])));
  await appending;
  const { bytesRead, buffer } = await handle.read(Buffer.alloc(4), 0, 4, lower.length);
  assert.equal(buffer.subarray(0, bytesRead).toString(), 'TAIL');
  assert.ok((await handle.readFile()).equals(Buffer.concat([lower, Buffer.from('TAIL')])));
  await handle.close();
  assert.equal(f.overlay.copyUpState(f.overlay.resolve('/big')), 'upper');
});

testEachKind('a sync write during an async copy-up completes the copy; the async append lands after it', async (t, kind) => {
  const lower = pattern(16 * MiB);
  const f = fixture(t, [{ big: lower.toString('latin1') }], {}, { kind });
  const appending = f.fs.promises.appendFile('/big', 'TAIL');
  await tick();
  const inFlight = f.overlay.copyUpState(f.overlay.resolve('/big')) === 'lower';
  const fd = f.fs.openSync('/big', 'r+');
  f.fs.writeSync(fd, 'HEAD', 0);
  f.fs.closeSync(fd);
  await appending;
  const expected = Buffer.concat([Buffer.from('HEAD'), lower.subarray(4), Buffer.from('TAIL')]);
  assert.ok(f.fs.readFileSync('/big').equals(expected), `content after a sync write ${inFlight ? 'during' : 'after'} the copy-up`);
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
});

/**
 * Clients started together on one lower file: writers own a stripe each and write their marker byte
 * into it through FileHandle.write, the callback write and a write stream; readers read the whole
 * file through handles opened before the copy-up, and a sync client writes its stripe in between.
 * Every byte a reader sees is the lower byte or the stripe owner's marker; the end state is exact.
 */
async function parallelClients(f: Fixture, seed: number, lower: Buffer): Promise<void> {
  const random = rng(seed);
  const writers = 6;
  const stripe = Math.floor(lower.length / (writers + 1));
  const expected = Buffer.from(lower);
  const owner = (pos: number): number => Math.min(Math.floor(pos / stripe), writers);
  const marker = (w: number): number => 0x30 + w;
  const ranges: Array<Array<[number, number]>> = [];
  for (let w = 0; w <= writers; w++) {
    const list: Array<[number, number]> = [];
    for (let k = 0; k < 3; k++) {
      const start = w * stripe + random(stripe - 1);
      const length = 1 + random(Math.min(stripe - (start - w * stripe), 256 * 1024));
      list.push([start, length]);
      expected.fill(marker(w), start, start + length);
    }
    ranges.push(list);
  }
  const readersOpen = await Promise.all([0, 1].map(() => f.fs.promises.open('/shared', 'r')));
  const check = (data: Buffer, who: string): void => {
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== lower[i] && data[i] !== marker(owner(i))) assert.fail(`${who}, seed ${seed}: byte ${i} is ${data[i]}`);
    }
  };
  const writer = async (w: number): Promise<void> => {
    const via = (w + seed) % 3;
    for (const [start, length] of ranges[w]) {
      const data = Buffer.alloc(length, marker(w));
      if (via === 0) {
        const h = await f.fs.promises.open('/shared', 'r+');
        await h.write(data, 0, length, start);
        await h.close();
      } else if (via === 1) {
        const fd = await new Promise<number>((resolve, reject) => f.fs.open('/shared', 'r+', (err, n) => (err ? reject(err) : resolve(n))));
        await new Promise<void>((resolve, reject) => f.fs.write(fd, data, 0, length, start, (err) => (err ? reject(err) : resolve())));
        await new Promise<void>((resolve, reject) => f.fs.close(fd, (err) => (err ? reject(err) : resolve())));
      } else {
        const stream = f.fs.createWriteStream('/shared', { flags: 'r+', start });
        stream.end(data);
        await once(stream, 'close');
      }
      await tick();
    }
  };
  const reader = async (r: number): Promise<void> => {
    const h = readersOpen[r];
    for (let k = 0; k < 4; k++) {
      const data = Buffer.alloc(lower.length);
      const { bytesRead } = await h.read(data, 0, data.length, 0);
      assert.equal(bytesRead, lower.length);
      check(data, `reader ${r}`);
      check(await f.fs.promises.readFile('/shared'), 'readFile');
      await tick();
    }
  };
  const syncClient = async (): Promise<void> => {
    for (const [start, length] of ranges[writers]) {
      await tick();
      const fd = f.fs.openSync('/shared', 'r+');
      f.fs.writeSync(fd, Buffer.alloc(length, marker(writers)), 0, length, start);
      f.fs.closeSync(fd);
      check(f.fs.readFileSync('/shared'), 'sync reader');
    }
  };
  await Promise.all([...Array.from({ length: writers }, (_, w) => writer(w)), reader(0), reader(1), syncClient()]);
  const final = f.fs.readFileSync('/shared');
  assert.ok(final.equals(expected), `seed ${seed}: final content differs at byte ${final.findIndex((b, i) => b !== expected[i])}`);
  // The readers' handles were opened on the lower file: they read the final data now.
  for (const h of readersOpen) {
    assert.ok((await h.readFile()).equals(expected), `seed ${seed}: a handle opened before the copy-up is stale`);
    await h.close();
  }
}

testEachKind('seeded parallel async clients on one file during its copy-up see only whole data', async (t, kind) => {
  const lower = pattern(3 * MiB);
  for (const seed of [1, 2, 3]) {
    const f = fixture(t, [{ shared: lower.toString('latin1') }], {}, { kind });
    await parallelClients(f, seed, lower);
    if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
    f.cleanup();
  }
});

testEachKind('writes and reads at the file position take consecutive ranges across async and sync calls', async (t, kind) => {
  const f = fixture(t, [{}], {}, { kind });
  const fd = f.fs.openSync('/pos', 'w+');
  const first = new Promise<void>((resolve, reject) => f.fs.write(fd, 'aaaa', (err) => (err ? reject(err) : resolve())));
  f.fs.writeSync(fd, 'bb');
  const third = new Promise<void>((resolve, reject) => f.fs.write(fd, Buffer.from('cc'), (err) => (err ? reject(err) : resolve())));
  await Promise.all([first, third]);
  f.fs.writeSync(fd, 'd');
  assert.equal(f.fs.readFileSync('/pos', 'utf8'), 'aaaabbccd');
  f.fs.closeSync(fd);
  const rfd = f.fs.openSync('/pos', 'r');
  const reads = [3, 3, 3].map((n) => new Promise<string>((resolve, reject) =>
    f.fs.read(rfd, Buffer.alloc(n), 0, n, null, (err, got, b) => (err ? reject(err) : resolve(b.subarray(0, got).toString())))));
  assert.deepEqual(await Promise.all(reads), ['aaa', 'abb', 'ccd']);
  assert.equal(f.fs.readSync(rfd, Buffer.alloc(4)), 0, 'the position is at the end');
  f.fs.closeSync(rfd);
  // O_APPEND: async appends land at the end, one after the other, and a sync one between them too.
  const afd = f.fs.openSync('/pos', 'a');
  const appends = [new Promise<void>((resolve, reject) => f.fs.write(afd, 'X', (err) => (err ? reject(err) : resolve())))];
  f.fs.writeSync(afd, 'Y');
  appends.push(new Promise<void>((resolve, reject) => f.fs.write(afd, 'Z', (err) => (err ? reject(err) : resolve()))));
  await Promise.all(appends);
  f.fs.closeSync(afd);
  const text = f.fs.readFileSync('/pos', 'utf8');
  assert.equal(text.slice(0, 9), 'aaaabbccd');
  assert.deepEqual([...text.slice(9)].sort(), ['X', 'Y', 'Z']);
});

testEachKind('large files round-trip through the promise, callback and stream forms', async (t, kind) => {
  const data = Buffer.alloc(5 * MiB + 123);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, Math.min(i, data.length - 4));
  const f = fixture(t, [{ lowerfile: 'lower:' }], {}, { kind });
  await f.fs.promises.writeFile('/new', data);
  const back = await new Promise<Buffer>((resolve, reject) => f.fs.readFile('/new', (err, b) => (err ? reject(err) : resolve(b))));
  assert.ok(back.equals(data));
  await new Promise<void>((resolve, reject) => f.fs.appendFile('/lowerfile', data, (err) => (err ? reject(err) : resolve())));
  const hash = createHash('sha256');
  for await (const chunk of f.fs.createReadStream('/lowerfile')) hash.update(chunk as Buffer);
  assert.equal(hash.digest('hex'), createHash('sha256').update(Buffer.concat([Buffer.from('lower:'), data])).digest('hex'));
  const h = await f.fs.promises.open('/new', 'r+');
  await h.writeFile('short');
  await h.close();
  assert.equal(f.fs.readFileSync('/new').subarray(0, 5).toString(), 'short');
  assert.equal(f.fs.statSync('/new').size, data.length, 'FileHandle.writeFile writes at the position, without truncating');
});

testEachKind('an abort right after an async readFile or writeFile is honoured', async (t, kind) => {
  const f = fixture(t, [{ file: 'lower' }], {}, { kind });
  for (const start of [
    (signal: AbortSignal) => f.fs.promises.readFile('/file', { signal }),
    (signal: AbortSignal) => f.fs.promises.writeFile('/file', 'new', { signal }),
  ]) {
    const controller = new AbortController();
    const promise = start(controller.signal);
    await Promise.resolve();
    controller.abort();
    await assert.rejects(promise, { name: 'AbortError' });
  }
  assert.equal(f.fs.readFileSync('/file', 'utf8'), 'lower');
});

testEachKind('copyFile copies in chunks off the loop, and its errors name both paths', async (t, kind) => {
  const lower = pattern(3 * MiB + 5);
  const f = fixture(t, [{ src: lower.toString('latin1') }], {}, { kind });
  await f.fs.promises.copyFile('/src', '/dst');
  assert.ok(f.fs.readFileSync('/dst').equals(lower));
  await new Promise<void>((resolve, reject) => f.fs.copyFile('/src', '/dst2', (err) => (err ? reject(err) : resolve())));
  assert.ok(f.fs.readFileSync('/dst2').equals(lower));
  assert.equal(f.overlay.copyUpState(f.overlay.resolve('/src')), 'lower', 'the source is only read');
  await assert.rejects(f.fs.promises.copyFile('/src', '/dst', fs.constants.COPYFILE_EXCL), {
    code: 'EEXIST', syscall: 'copyfile', path: '/src', dest: '/dst',
  });
  await assert.rejects(f.fs.promises.copyFile('/missing', '/dst3'), { code: 'ENOENT', syscall: 'copyfile', path: '/missing', dest: '/dst3' });
  assert.throws(() => f.fs.copyFile('/src', '/dst4', 'bad' as unknown as number, () => {}), { code: 'ERR_INVALID_ARG_TYPE' });
});

testEachKind('truncate of a lower file copies it up asynchronously', async (t, kind) => {
  const lower = pattern(2 * MiB);
  const f = fixture(t, [{ a: lower.toString('latin1'), b: lower.toString('latin1') }], {}, { kind });
  const reader = f.fs.openSync('/a', 'r');
  await f.fs.promises.truncate('/a', 10);
  await new Promise<void>((resolve, reject) => f.fs.truncate('/b', MiB, (err) => (err ? reject(err) : resolve())));
  assert.ok(f.fs.readFileSync('/a').equals(lower.subarray(0, 10)));
  assert.ok(f.fs.readFileSync(reader).equals(lower.subarray(0, 10)), 'a handle opened before reads the truncated copy');
  assert.ok(f.fs.readFileSync('/b').equals(lower.subarray(0, MiB)));
  f.fs.closeSync(reader);
  await assert.rejects(f.fs.promises.truncate('/a', 'x' as unknown as number), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(f.fs.promises.truncate('/missing'), { code: 'ENOENT' });
});

testEachKind('chmod, chown and utimes copy a lower file up asynchronously (metacopy=off), and none with metacopy=on', async (t, kind) => {
  const lower = pattern(2 * MiB);
  const f = fixture(t, [{ a: lower.toString('latin1'), b: lower.toString('latin1'), c: lower.toString('latin1') }], {}, { kind });
  const reader = f.fs.openSync('/a', 'r');
  const changing = f.fs.promises.chmod('/a', 0o600);
  await tick();
  // The data moves on the pool in 1 MiB steps: one turn of the loop later it has not all landed.
  if (kind === 'dir') assert.equal(f.overlay.copyUpState(f.overlay.resolve('/a')), 'lower');
  assert.throws(() => f.fs.chmod('/b', 'bad' as unknown as number, () => {}), { code: 'ERR_INVALID_ARG_VALUE' });
  await changing;
  await new Promise<void>((resolve, reject) => f.fs.chown('/b', process.getuid!(), process.getgid!(), (err) => (err ? reject(err) : resolve())));
  await f.fs.promises.utimes('/c', 1000, 2000);
  for (const p of ['/a', '/b', '/c']) {
    assert.equal(f.overlay.copyUpState(f.overlay.resolve(p)), 'upper', p);
    assert.ok(f.fs.readFileSync(p).equals(lower), p);
  }
  assert.equal(f.fs.statSync('/a').mode & 0o777, 0o600);
  assert.equal(f.fs.statSync('/c').mtimeMs, 2_000_000);
  f.fs.appendFileSync('/a', 'x');
  assert.equal(f.fs.fstatSync(reader).size, lower.length + 1, 'the handle opened before follows the copy');
  f.fs.closeSync(reader);
  await assert.rejects(f.fs.promises.chmod('/missing', 0o600), { code: 'ENOENT', syscall: 'chmod' });
  // The same through a handle opened read-only on a lower file, and the callback fchmod.
  const d = fixture(t, [{ a: lower.toString('latin1'), b: lower.toString('latin1') }], {}, { kind });
  const handle = await d.fs.promises.open('/a', 'r');
  const fchmod = handle.chmod(0o640);
  await tick();
  if (kind === 'dir') assert.equal(d.overlay.copyUpState(d.overlay.resolve('/a')), 'lower');
  await fchmod;
  const fd = d.fs.openSync('/b', 'r');
  await new Promise<void>((resolve, reject) => d.fs.fchmod(fd, 0o604, (err) => (err ? reject(err) : resolve())));
  d.fs.closeSync(fd);
  assert.ok((await handle.readFile()).equals(lower));
  await handle.close();
  assert.equal(d.fs.statSync('/a').mode & 0o777, 0o640);
  assert.equal(d.fs.statSync('/b').mode & 0o777, 0o604);
  assert.equal(d.overlay.copyUpState(d.overlay.resolve('/b')), 'upper');

  const m = fixture(t, [{ a: lower.toString('latin1') }], { metacopy: 'on', redirect_dir: 'on' }, { kind });
  await m.fs.promises.chmod('/a', 0o600);
  assert.equal(m.overlay.copyUpState(m.overlay.resolve('/a')), 'metacopy', 'metacopy=on copies no data for chmod');
});
