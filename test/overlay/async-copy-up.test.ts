// Copy-up in steps (startCopyUp / copyUpAsync): the data step off the core's thread, one copy per
// node however many callers need it, a synchronous caller completing a copy in flight itself, and
// nothing of a copy visible before it lands.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { fixture, testEachKind } from '../support/fixture.js';

const { O_RDONLY, O_WRONLY, O_RDWR } = fs.constants;

function read(f: ReturnType<typeof fixture>, file: ReturnType<typeof f.overlay.open>, length = 64): string {
  const b = Buffer.alloc(length);
  return b.subarray(0, f.overlay.read(file, b, 0, b.length, 0)).toString();
}

testEachKind('copyUpAsync copies a lower file up; a handle opened before sees later writes', async (t, kind) => {
  const f = fixture(t, [{ d: { file: 'lower data' } }], {}, { kind });
  const node = f.overlay.resolve('/d/file');
  const reader = f.overlay.open(node, O_RDONLY);
  const copying = f.overlay.copyUpAsync(node);
  // Until the copy lands, the merged view is the lower file's.
  assert.equal(f.overlay.copyUpState(node), 'lower');
  assert.equal(read(f, reader), 'lower data');
  await copying;
  assert.equal(f.overlay.copyUpState(node), 'upper');
  assert.equal(f.overlay.copyUpState(f.overlay.resolve('/d')), 'upper', 'the parent came first');
  const writer = f.overlay.open(node, O_WRONLY);
  f.overlay.write(writer, Buffer.from('UPPER'), 0, 5, 0);
  assert.equal(read(f, reader), 'UPPER data');
  assert.equal(f.overlay.getattr(node).ino, f.overlay.getattr(f.overlay.resolve('/d/file')).ino);
  f.overlay.release(reader);
  f.overlay.release(writer);
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
});

testEachKind('callers that need a node while it is copied up wait for the one copy', async (t, kind) => {
  const f = fixture(t, [{ file: 'x'.repeat(3 << 20) }], {}, { kind });
  const node = f.overlay.resolve('/file');
  const job = f.overlay.startCopyUp(node);
  assert.ok(job !== undefined && !(job instanceof Promise));
  // A second asynchronous caller gets the promise of the copy in flight, not a second copy.
  const second = f.overlay.startCopyUp(node);
  assert.ok(second instanceof Promise);
  let waiterDone = false;
  const waiter = f.overlay.copyUpAsync(node).then(() => (waiterDone = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(waiterDone, false, 'the waiter waits for the data');
  assert.equal(job.length, 3 << 20);
  await job.copyDataAsync();
  assert.equal(f.overlay.copyUpState(node), 'lower', 'nothing lands before finish()');
  job.finish();
  await second;
  await waiter;
  assert.equal(f.overlay.copyUpState(node), 'upper');
  assert.equal(f.fs.readFileSync('/file', 'utf8'), 'x'.repeat(3 << 20));
  assert.equal(f.overlay.startCopyUp(node), undefined, 'nothing left to copy');
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
});

testEachKind('a synchronous open during a copy-up completes it itself; the job then only cleans up', async (t, kind) => {
  const f = fixture(t, [{ file: 'lower' }], {}, { kind });
  const node = f.overlay.resolve('/file');
  const job = f.overlay.startCopyUp(node);
  assert.ok(job !== undefined && !(job instanceof Promise));
  const waiter = f.overlay.copyUpAsync(node);
  const writer = f.overlay.open(node, O_RDWR);
  assert.equal(f.overlay.copyUpState(node), 'upper');
  f.overlay.write(writer, Buffer.from('L'), 0, 1, 0);
  await waiter;
  await job.copyDataAsync();
  job.finish();
  assert.equal(read(f, writer), 'Lower', 'the late job did not overwrite the landed copy');
  f.overlay.release(writer);
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
});

testEachKind('an aborted copy-up leaves nothing; waiters are told, and the next try copies', async (t, kind) => {
  const f = fixture(t, [{ file: 'lower' }], {}, { kind });
  const node = f.overlay.resolve('/file');
  const job = f.overlay.startCopyUp(node);
  assert.ok(job !== undefined && !(job instanceof Promise));
  const pending = f.overlay.startCopyUp(node) as Promise<void>;
  job.abort(new Error('disk on fire'));
  await assert.rejects(pending, /disk on fire/);
  assert.equal(f.overlay.copyUpState(node), 'lower');
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
  await f.overlay.copyUpAsync(node);
  assert.equal(f.fs.readFileSync('/file', 'utf8'), 'lower');
});

testEachKind('a file unlinked during its copy-up stays gone', async (t, kind) => {
  const f = fixture(t, [{ file: 'lower' }], {}, { kind });
  const node = f.overlay.resolve('/file');
  const job = f.overlay.startCopyUp(node);
  assert.ok(job !== undefined && !(job instanceof Promise));
  f.fs.unlinkSync('/file');
  await job.copyDataAsync();
  job.finish();
  assert.equal(f.fs.existsSync('/file'), false);
  assert.deepEqual(f.fs.readdirSync('/'), []);
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
});

testEachKind('a metacopy file gets its data asynchronously, keeping its metadata', async (t, kind) => {
  const f = fixture(t, [{ file: 'lower data' }], { metacopy: 'on', redirect_dir: 'on' }, { kind });
  f.fs.chmodSync('/file', 0o600);
  const node = f.overlay.resolve('/file');
  assert.equal(f.overlay.copyUpState(node), 'metacopy');
  await f.overlay.copyUpAsync(node);
  assert.equal(f.overlay.copyUpState(node), 'upper');
  assert.equal(f.fs.statSync('/file').mode & 0o777, 0o600);
  assert.equal(f.fs.readFileSync('/file', 'utf8'), 'lower data');
});

testEachKind('copyUpForOpen checks permission first and copies nothing for reading opens', async (t, kind) => {
  const f = fixture(t, [{ file: 'lower' }], {}, { kind });
  const node = f.overlay.resolve('/file');
  await f.overlay.copyUpForOpen(node, O_RDONLY);
  assert.equal(f.overlay.copyUpState(node), 'lower');
  await f.overlay.copyUpForOpen(node, O_WRONLY);
  assert.equal(f.overlay.copyUpState(node), 'upper');
});
