// atime as the kernel's overlay updates it on reads: never on a lower file (its real file is read with
// O_NOATIME), never with noatime, and on an upper file by the overlay's atime option (relatime by
// default: a read updates an atime that is not newer than the mtime). On a relatime host the host's
// rule is the same, and the oracle: a plain file beside the layers, read the same way, must change as
// the upper file does. test/fuse/atime.test.ts compares every option with the kernel overlay.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { normalizeOptions } from '../../src/overlay/options.js';
import { fixture, type DirFixture } from '../support/fixture.js';

const OLD = new Date('2001-01-01T00:00:00Z');

/** The host filesystem's atime rule for /tmp, from its mount options. */
function hostAtime(): string {
  const r = spawnSync('findmnt', ['-no', 'OPTIONS', '-T', os.tmpdir()], { encoding: 'utf8' });
  const options = r.status === 0 ? r.stdout.trim().split(',') : [];
  return ['noatime', 'strictatime'].find((o) => options.includes(o)) ?? 'relatime';
}

function readThrough(f: DirFixture, file: string): void {
  f.fs.readFileSync(file);
}

/** A file whose atime is older than its mtime: relatime updates it on the next read. */
function staleAtime(f: DirFixture, file: string): void {
  f.fs.writeFileSync(file, 'data');
  f.fs.utimesSync(file, OLD, new Date());
}

function atimeOf(f: DirFixture, file: string): number {
  return f.fs.statSync(file).atimeMs;
}

test('relatime (the default): upper files by the relatime rule, lower files never', (t: TestContext) => {
  if (hostAtime() !== 'relatime') return t.skip(`${os.tmpdir()} is mounted ${hostAtime()}, not relatime`);
  const f = fixture(t, [{ low: 'lower' }], {}, { kind: 'dir' });
  const lower = path.join(f.lowers[0]!, 'low');
  fs.utimesSync(lower, OLD, new Date());
  readThrough(f, '/low');
  assert.equal(fs.statSync(lower).atimeMs, OLD.getTime(), 'the lower file was read with O_NOATIME');
  staleAtime(f, '/up');
  const ctime = f.fs.statSync('/up').ctimeMs;
  readThrough(f, '/up');
  assert.notEqual(atimeOf(f, '/up'), OLD.getTime(), 'the upper file got a new atime');
  assert.equal(f.fs.statSync('/up').ctimeMs, ctime, 'a read changes no ctime');
  // The oracle agrees: the same on a plain host file.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-atime-host-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'f'), 'data');
  fs.utimesSync(path.join(dir, 'f'), OLD, new Date());
  fs.readFileSync(path.join(dir, 'f'));
  assert.notEqual(fs.statSync(path.join(dir, 'f')).atimeMs, OLD.getTime());
});

test('noatime: no read updates an atime, upper or lower', (t: TestContext) => {
  const f = fixture(t, [{ low: 'lower' }], { atime: 'noatime' }, { kind: 'dir' });
  staleAtime(f, '/up');
  readThrough(f, '/up');
  assert.equal(atimeOf(f, '/up'), OLD.getTime());
  // A handle opened on the lower file, re-bound to the upper one after a copy-up, reads with O_NOATIME too.
  const fd = f.fs.openSync('/low', 'r');
  t.after(() => f.fs.closeSync(fd));
  f.fs.utimesSync('/low', OLD, new Date());
  f.fs.readSync(fd, Buffer.alloc(8), 0, 8, 0);
  assert.equal(atimeOf(f, '/low'), OLD.getTime());
});

test('the atime options parse as mount(8) gives them', () => {
  assert.equal(normalizeOptions('lowerdir=/a').atime, 'relatime');
  for (const atime of ['relatime', 'strictatime', 'noatime']) assert.equal(normalizeOptions(`lowerdir=/a,${atime}`).atime, atime);
  // A read-only mount touches no atimes, even with strictatime.
  assert.equal(normalizeOptions('lowerdir=/a,ro,strictatime').atime, 'noatime');
  assert.throws(() => normalizeOptions({ lowerdir: '/a', atime: 'sometimes' as 'noatime' }), { code: 'EINVAL', message: /atime=sometimes/ });
});
