// SETATTR with a file handle on the ovlfs mount: futimens, fchmod and ftruncate of a file whose
// name is gone reach only the real file the handle holds (Overlay.fsetattr). The times cross the
// layer contract in nanoseconds; this once arrived in seconds and was divided by 1000 again.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { mountFuse, type FuseMount } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { sh } from '../support/shell.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'FUSE tests need Linux';
  if (process.getuid?.() !== 0) return 'FUSE tests need root (mount -t fuse)';
  if (!existsSync('/dev/fuse')) return 'FUSE tests need /dev/fuse';
  if (spawnSync('python3', ['-c', '']).status !== 0) return 'needs python3 for futimens on an fd';
  return undefined;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping SETATTR-with-handle tests: ${reason}\n`);

function near(actual: bigint, expected: bigint, what: string): void {
  const diff = actual > expected ? actual - expected : expected - actual;
  assert.ok(diff < 1000n, `${what}: ${actual} is not within 1 us of ${expected}`);
}

describe('SETATTR with a handle on the ovlfs mount', { skip: reason }, () => {
  let base = '';
  let mnt = '';
  let mount: FuseMount | undefined;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'ovlfs-fsetattr-'));
    for (const d of ['lower', 'upper', 'work', 'm']) mkdirSync(join(base, d));
    writeFileSync(join(base, 'lower', 'low'), 'lower file\n');
    mnt = join(base, 'm');
    mount = await mountFuse({
      mountpoint: mnt,
      fsname: 'ovlfs',
      source: 'ovlfs-test',
      filesystem: {
        module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url),
        export: 'createOverlayFs',
        arg: { overlay: `lowerdir=${join(base, 'lower')},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}` },
      },
      options: { allowOther: true, defaultPermissions: true },
    });
  });

  after(async () => {
    try {
      await mount?.unmount();
    } finally {
      if (mnt !== '' && isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
      if (base !== '') rmSync(base, { recursive: true, force: true });
    }
  });

  test('futimens, fchmod and ftruncate of an unlinked file through its fd', () => {
    // The SETATTR request carries nanoseconds; the core's SetAttr still takes Node's millisecond
    // doubles, which keep about 0.5 us at these dates, so the times are compared to the microsecond.
    const atime = 1_500_000_000_123_456_000n;
    const mtime = 1_600_000_000_654_321_000n;
    const script = [
      'import os, json',
      "fd = os.open('new', os.O_RDWR | os.O_CREAT, 0o644)",
      "os.write(fd, b'0123456789')",
      "os.unlink('new')",
      'os.ftruncate(fd, 4)',
      'os.fchmod(fd, 0o600)',
      `os.utime(fd, ns=(${atime}, ${mtime}))`,
      'st = os.fstat(fd)',
      'os.lseek(fd, 0, 0)',
      "print(json.dumps({'atime': str(st.st_atime_ns), 'mtime': str(st.st_mtime_ns), 'mode': st.st_mode & 0o7777, 'size': st.st_size, 'data': os.read(fd, 100).decode(), 'nlink': st.st_nlink}))",
      'os.close(fd)',
    ].join('\n');
    const r = sh(`python3 -c "${script.replaceAll('"', '\\"')}"`, mnt);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { atime: string; mtime: string; mode: number; size: number; data: string; nlink: number };
    near(BigInt(out.mtime), mtime, 'mtime (not in 1970: once divided by 1000 twice)');
    near(BigInt(out.atime), atime, 'atime');
    assert.equal(out.mode, 0o600);
    assert.equal(out.size, 4);
    assert.equal(out.data, '0123');
    assert.equal(out.nlink, 0);
  });

  test('futimens of a live file through its fd copies it up and sets the times', () => {
    const mtime = 1_234_567_890_000_001_000n;
    const script = [
      'import os',
      "fd = os.open('low', os.O_RDONLY)",
      `os.utime(fd, ns=(${mtime}, ${mtime}))`,
      'os.close(fd)',
      "print(os.stat('low').st_mtime_ns)",
    ].join('\n');
    const r = sh(`python3 -c "${script.replaceAll('"', '\\"')}"`, mnt);
    assert.equal(r.status, 0, r.stderr);
    near(BigInt(r.stdout.trim()), mtime, 'mtime');
    const upper = sh(`stat -c %Y.%y '${join(base, 'upper', 'low')}'`);
    assert.match(upper.stdout, /^1234567890\./);
  });
});
