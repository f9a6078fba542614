// Options: mount(8) names and escapes, and validation errors that say what to fix.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Overlay } from '../../src/overlay/overlay.js';
import { parseMountOptions, splitEscaped } from '../../src/overlay/options.js';
import { fdsOn } from '../support/fds.js';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-opt-'));
}

test('mount option strings parse with the kernel escapes', () => {
  assert.deepEqual(splitEscaped('a:b\\:c:d', ':'), ['a', 'b:c', 'd']);
  const o = parseMountOptions('lowerdir=/l1:/l\\:2,upperdir=/u,workdir=/w,redirect_dir=on,metacopy=on');
  assert.deepEqual(o.lowerdir, ['/l1', '/l:2']);
  assert.equal(o.upperdir, '/u');
  assert.equal(o.redirect_dir, 'on');
  assert.throws(() => parseMountOptions('upperdir=/u'), /missing lowerdir/);
  assert.throws(() => parseMountOptions('lowerdir=/a,bogus=1'), /unknown overlay option 'bogus'/);
});

test('validation: missing dirs, overlapping layers, separate subtrees, in use', (t) => {
  const base = tmp();
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  for (const d of ['l', 'u', 'w']) fs.mkdirSync(path.join(base, d));
  const l = path.join(base, 'l'), u = path.join(base, 'u'), w = path.join(base, 'w');
  assert.throws(() => new Overlay({ lowerdir: path.join(base, 'nope') }), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && /lowerdir #1 .* does not exist/.test(e.message));
  assert.throws(() => new Overlay({ lowerdir: l, upperdir: u }), /needs a workdir/);
  assert.throws(() => new Overlay({ lowerdir: u, upperdir: u, workdir: w }), (e: NodeJS.ErrnoException) => e.code === 'ELOOP' && /overlapping/.test(e.message));
  fs.mkdirSync(path.join(u, 'w2'));
  assert.throws(() => new Overlay({ lowerdir: l, upperdir: u, workdir: path.join(u, 'w2') }), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && /separate subtrees/.test(e.message));
  assert.throws(() => new Overlay({ lowerdir: l, upperdir: u, workdir: w, index: 'on' }), /index=on is not supported/);
  const first = new Overlay({ lowerdir: l, upperdir: u, workdir: w });
  t.after(() => first.close());
  assert.throws(() => new Overlay({ lowerdir: l, upperdir: u, workdir: w }), (e: NodeJS.ErrnoException) => e.code === 'EBUSY' && /in use/.test(e.message));
  first.close();
  new Overlay({ lowerdir: l, upperdir: u, workdir: w }).close();
  const fromString = new Overlay(`lowerdir=${l},upperdir=${u},workdir=${w}`);
  fromString.close();
});

const NO_SHM = fs.existsSync('/dev/shm') ? false : 'needs /dev/shm (tmpfs) as a second filesystem';

/** A temp dir and one in /dev/shm, removed after the test; undefined (the test skipped) where both are on one filesystem. */
function twoFilesystems(t: TestContext): { base: string; shm: string } | undefined {
  const base = tmp();
  const shm = fs.mkdtempSync('/dev/shm/ovlfs-opt-');
  t.after(() => {
    fs.rmSync(base, { recursive: true, force: true });
    fs.rmSync(shm, { recursive: true, force: true });
  });
  if (fs.statSync(shm).dev !== fs.statSync(base).dev) return { base, shm };
  t.skip('/dev/shm is on the same filesystem here');
  return undefined;
}

test('workdir on another filesystem than upperdir gives EXDEV', { skip: NO_SHM }, (t) => {
  const dirs = twoFilesystems(t);
  if (dirs === undefined) return;
  const { base, shm } = dirs;
  fs.mkdirSync(path.join(base, 'l'));
  fs.mkdirSync(path.join(base, 'u'));
  assert.throws(() => new Overlay({ lowerdir: path.join(base, 'l'), upperdir: path.join(base, 'u'), workdir: shm }), (e: NodeJS.ErrnoException) => e.code === 'EXDEV' && /same filesystem/.test(e.message));
});


test('a construction that fails after making its layers releases them: fds, in-use locks and claims', { skip: NO_SHM }, async (t) => {
  const dirs = twoFilesystems(t);
  if (dirs === undefined) return;
  const { base, shm } = dirs;
  for (const d of ['u', 'w']) fs.mkdirSync(path.join(base, d));
  const u = path.join(base, 'u'), w = path.join(base, 'w');
  // xino=off over layers on two filesystems is refused once every layer is open.
  assert.throws(() => new Overlay({ lowerdir: shm, upperdir: u, workdir: w, xino: 'off' }), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && /xino=off/.test(e.message));
  assert.deepEqual([shm, u, w].map(fdsOn), [0, 0, 0], 'no fd is left on the lower, the upper or the workdir');
  // Neither claimed (EBUSY) nor locked (the in-use warning) any more.
  const warnings: string[] = [];
  const onWarning = (warning: Error & { code?: string }): void => void warnings.push(warning.code ?? warning.message);
  process.on('warning', onWarning);
  try {
    new Overlay({ lowerdir: shm, upperdir: u, workdir: w }).close();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings, []);
});
