// Proves src/fuse/bridge/spin-read.ts on a FIFO, which reads as /dev/fuse does for it (one read, one
// message; O_NONBLOCK gives EAGAIN): the reader spins while messages come close together, and goes back
// to the plain blocking read (O_NONBLOCK off) after idle gaps longer than its window, and waits for a
// longer run of close reads before it spins again after a spell of spinning that caught little.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import { DeviceReader, SPIN_US, spinWindowFromEnv } from '../../src/fuse/bridge/spin-read.js';

function nonblocking(fd: number): boolean {
  const flags = /flags:\s*([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  return (parseInt(flags!, 8) & fs.constants.O_NONBLOCK) !== 0;
}

test('OVLFS_SPIN: unset is the default window, 0 is off, a number is µs', () => {
  assert.equal(spinWindowFromEnv({}), SPIN_US);
  assert.equal(spinWindowFromEnv({ OVLFS_SPIN: '0' }), 0);
  assert.equal(spinWindowFromEnv({ OVLFS_SPIN: '120' }), 120);
  assert.equal(spinWindowFromEnv({ OVLFS_SPIN: 'no' }), 0);
});

/**
 * A DeviceReader with a wide window (30 ms, so that "close together" holds on a loaded machine: with 5 ms
 * a read of a message already queued once took longer, the process paused) on a FIFO opened O_RDWR (the
 * open does not wait for a writer, and reads never see end of file); undefined when mkfifo is missing. `readOne` retries EINTR and EAGAIN as the serving loop does (a child's SIGCHLD
 * breaks a poll).
 */
function fifoReader(t: TestContext): { fd: number; fifo: string; reader: DeviceReader; readOne: () => string } | undefined {
  const dir = fs.mkdtempSync(join(tmpdir(), 'spin-read-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'fifo');
  if (spawnSync('mkfifo', [fifo]).status !== 0) return undefined;
  const fd = fs.openSync(fifo, fs.constants.O_RDWR);
  t.after(() => fs.closeSync(fd));
  const reader = new DeviceReader(fd, 30_000);
  const buf = Buffer.alloc(16);
  const readOne = (): string => {
    for (;;) {
      try {
        return buf.toString('latin1', 0, reader.read(buf));
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== 'EINTR' && code !== 'EAGAIN') throw e;
      }
    }
  };
  return { fd, fifo, reader, readOne };
}

/** Another process writes `letters` into the FIFO one every 150 ms: each gap outlasts the window. */
function slowWriter(t: TestContext, fifo: string, letters: string): Promise<unknown> {
  const child = spawn(process.execPath, ['-e', `
    const fs = require('node:fs'); const fd = fs.openSync(${JSON.stringify(fifo)}, 'w'); let i = 0;
    const t = setInterval(() => { fs.writeSync(fd, ${JSON.stringify(letters)}[i++]); if (i === ${letters.length}) { clearInterval(t); fs.closeSync(fd); } }, 150);
  `], { stdio: 'ignore' });
  t.after(() => child.kill());
  return new Promise((res) => child.on('close', res));
}

test('spins while messages come close, and sleeps in a blocking read after long gaps', async (t) => {
  const f = fifoReader(t);
  if (f === undefined) return t.skip('mkfifo is not available');
  const { fd, fifo, readOne } = f;

  assert.equal(nonblocking(fd), false, 'starts with the blocking read');
  fs.writeSync(fd, 'a');
  assert.equal(readOne(), 'a');
  assert.equal(nonblocking(fd), true, 'a read that returned at once turns spinning on');
  fs.writeSync(fd, 'b');
  assert.equal(readOne(), 'b');

  const exited = slowWriter(t, fifo, 'cdefg');
  let got = '';
  const modes: boolean[] = [];
  for (let i = 0; i < 5; i++) {
    got += readOne();
    modes.push(nonblocking(fd));
  }
  assert.equal(got, 'cdefg', 'every message, in order, through spin, poll and blocking reads');
  assert.deepEqual(modes, [true, true, true, false, false], 'after 4 long gaps, the blocking read (O_NONBLOCK off) and it stays');
  await exited;
});

test('bursts that leave its windows unused make spinning wait for longer runs; a dense spell does not', async (t) => {
  const f = fifoReader(t);
  if (f === undefined) return t.skip('mkfifo is not available');
  const { fd, fifo, reader, readOne } = f;
  const gaps = async (letters: string): Promise<void> => {
    const exited = slowWriter(t, fifo, letters);
    let got = '';
    for (let i = 0; i < letters.length; i++) got += readOne();
    assert.equal(got, letters);
    await exited;
  };

  fs.writeSync(fd, 'a');
  readOne();
  assert.equal(nonblocking(fd), true, 'one close read turns spinning on at first');
  await gaps('bcde');
  assert.equal(nonblocking(fd), false, 'four expired windows: the blocking read');

  // That spell caught nothing: it now takes two close reads in a row.
  fs.writeSync(fd, 'f');
  readOne();
  assert.equal(nonblocking(fd), false, 'one close read is no longer enough');
  fs.writeSync(fd, 'g');
  readOne();
  assert.equal(nonblocking(fd), true, 'two in a row turn spinning on');

  // A dense spell (20 requests already queued) before the windows expire again: back to one.
  fs.writeSync(fd, 'x'.repeat(20));
  const one = Buffer.alloc(1);
  for (let i = 0; i < 20; i++) assert.equal(reader.read(one), 1); // queued: no poll, no EINTR
  await gaps('hijk');
  assert.equal(nonblocking(fd), false);
  fs.writeSync(fd, 'l');
  readOne();
  assert.equal(nonblocking(fd), true, 'after a dense spell one close read turns spinning on again');
});
