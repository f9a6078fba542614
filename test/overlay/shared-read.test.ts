// Reading opens of a lower file share one host open, kept for the next open after the last closes
// (src/overlay/shared-read.ts): counted as the process's fds on the lower file.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { IDLE_MAX } from '../../src/overlay/shared-read.js';
import { fixture, type Fixture } from '../support/fixture.js';
import { fdsOn } from '../support/fds.js';


function read(f: Fixture, fd: number, length: number, position: number | null): string {
  const b = Buffer.alloc(length);
  return b.subarray(0, f.fs.readSync(fd, b, 0, length, position)).toString();
}

test('reading opens of a lower file share one host open, which outlives them until the overlay closes', (t) => {
  const f = fixture(t, [{ file: '0123456789' }]);
  const lower = path.join(f.lowers[0]!, 'file');
  const a = f.fs.openSync('/file', 'r');
  const b = f.fs.openSync('/file', 'r');
  assert.equal(fdsOn(lower), 1, 'two opens, one host open');
  assert.equal(read(f, a, 3, null), '012');
  assert.equal(read(f, b, 4, null), '0123', 'each file has its own position');
  assert.equal(read(f, a, 3, null), '345');
  f.fs.closeSync(a);
  f.fs.closeSync(b);
  assert.equal(fdsOn(lower), 1, 'kept for the next open');
  const c = f.fs.openSync('/file', 'r');
  assert.equal(read(f, c, 10, 0), '0123456789');
  assert.equal(fdsOn(lower), 1, 'and used by it');
  f.fs.closeSync(c);
  f.overlay.close();
  assert.equal(fdsOn(lower), 0, 'the overlay\'s close closes it');
});

test('a reading open made before a copy-up sees the writes after it, and the shared lower open then closes', (t) => {
  const f = fixture(t, [{ file: '0123456789' }]);
  const lower = path.join(f.lowers[0]!, 'file');
  const r = f.fs.openSync('/file', 'r');
  assert.equal(read(f, r, 2, 0), '01');
  const w = f.fs.openSync('/file', 'r+');
  f.fs.writeSync(w, 'ab', 0);
  assert.equal(read(f, r, 2, 0), 'ab', 'the reader re-bound to the upper file');
  assert.equal(fdsOn(lower), 0, 'no one uses the lower file now');
  const again = f.fs.openSync('/file', 'r');
  assert.equal(read(f, again, 4, 0), 'ab23', 'a new reading open gets the upper file');
  assert.equal(fdsOn(lower), 0);
  for (const fd of [r, w, again]) f.fs.closeSync(fd);
});

test(`at most ${IDLE_MAX} shared lower opens wait unused`, (t) => {
  const names = Array.from({ length: IDLE_MAX + 16 }, (_, i) => `f${i}`);
  const f = fixture(t, [Object.fromEntries(names.map((n) => [n, n]))]);
  for (const n of names) f.fs.closeSync(f.fs.openSync(`/${n}`, 'r'));
  const open = names.filter((n) => fdsOn(path.join(f.lowers[0]!, n)) > 0);
  assert.equal(open.length, IDLE_MAX);
  assert.deepEqual(open, names.slice(16), 'the least recently released closed first');
});

test('a reading open with other flags has a real file of its own', (t) => {
  const f = fixture(t, [{ file: '0123456789' }]);
  const r = f.fs.openSync('/file', 'r');
  const sync = f.fs.openSync('/file', fs.constants.O_RDONLY | fs.constants.O_SYNC);
  assert.equal(fdsOn(path.join(f.lowers[0]!, 'file')), 2, 'O_SYNC opens its own');
  assert.equal(read(f, sync, 10, 0), '0123456789');
  f.fs.closeSync(sync);
  f.fs.closeSync(r);
});

test('a copy-up closes the shared lower open that no one uses', (t) => {
  const f = fixture(t, [{ file: '0123456789' }]);
  const lower = path.join(f.lowers[0]!, 'file');
  f.fs.closeSync(f.fs.openSync('/file', 'r'));
  assert.equal(fdsOn(lower), 1, 'kept for the next open');
  f.fs.appendFileSync('/file', 'x');
  assert.equal(fdsOn(lower), 0, 'the data is upper now');
  assert.equal(f.fs.readFileSync('/file', 'utf8'), '0123456789x');
  assert.equal(fdsOn(lower), 0);
});

test('a shared lower open lent out for I/O stays open past the overlay\'s close until the lease ends', (t) => {
  const f = fixture(t, [{ file: '0123456789' }]);
  const lower = path.join(f.lowers[0]!, 'file');
  const o = f.overlay;
  const file = o.open(o.resolve('/file'), fs.constants.O_RDONLY);
  const lease = o.leaseData(file, 'read')!;
  o.release(file);
  o.close();
  assert.equal(fdsOn(lower), 1, 'the I/O still holds it');
  const b = Buffer.alloc(4);
  assert.equal(fs.readSync(lease.fd, b, 0, 4, 0), 4);
  lease.release();
  assert.equal(fdsOn(lower), 0);
});
