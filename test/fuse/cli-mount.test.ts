// Proves src/cli/main.ts as a process: `ovlfs mount` returns only once the mount is live and leaves a
// daemon behind; a plain umount(8), `ovlfs umount` and SIGTERM each end that daemon; the mount(8) helper
// form takes SOURCE MOUNTPOINT -o … and ignores options it does not know; bad usage says what is wrong.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { isMounted, readMounts } from '../../src/mount-table.js';
import { attempt } from '../support/hostile-env.js';
import type { Run } from '../support/shell.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src/cli/main.ts');
const TSX = import.meta.resolve('tsx');

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'the mount needs root';
  if (!existsSync('/dev/fuse')) return 'the mount needs /dev/fuse';
  return undefined;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping ovlfs CLI tests: ${reason}\n`);

function ovlfs(args: string[], opts: { cwd?: string; uid?: number; gid?: number } = {}): Run {
  const r = spawnSync(process.execPath, ['--import', TSX, CLI, ...args], { encoding: 'utf8', timeout: 30_000, cwd: opts.cwd ?? ROOT, uid: opts.uid, gid: opts.gid });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function has(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

/**
 * The fsync(2) and fdatasync(2) calls daemon `pid` makes, every thread of it, while `work` runs: strace
 * attaches first (it reports each thread it attached to), then `work`, then strace detaches and counts.
 */
async function syncCallsDuring(pid: number, work: () => void): Promise<number> {
  const strace = spawn('strace', ['-f', '-qq', '-e', 'trace=fsync,fdatasync', '-e', 'signal=none', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  strace.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((res) => strace.on('exit', () => res()));
  // -qq hides the attach messages, so wait until ptrace shows in the daemon's status (TracerPid).
  for (let i = 0; i < 100 && !/^TracerPid:\s+[1-9]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300)); // the threads after the first
  work();
  strace.kill('SIGINT');
  await exited;
  return out.split('\n').filter((l) => /\b(fsync|fdatasync)\(/.test(l)).length;
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

async function gone(pid: number, mnt: string): Promise<void> {
  for (let i = 0; i < 200 && (alive(pid) || isMounted(mnt)); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(isMounted(mnt), false, 'still mounted');
  assert.equal(alive(pid), false, `daemon ${pid} still running`);
}

describe('the ovlfs command', () => {
  let base = '';
  let n = 0;

  before(() => {
    base = mkdtempSync(join(tmpdir(), 'ovlfs-cli-'));
    mkdirSync(join(base, 'lower'));
    writeFileSync(join(base, 'lower', 'hello'), 'hello from below\n');
  });

  after(() => {
    for (const name of existsSync(base) ? ['m1', 'm2', 'm3', 'm4', 'm5'] : []) {
      const m = join(base, name);
      if (isMounted(m)) spawnSync('umount', ['-l', m]);
    }
    if (base !== '') rmSync(base, { recursive: true, force: true });
  });

  /** Fresh upper, work and mount point; returns the -o string and the mount point. */
  function layout(): { opts: string; mnt: string; pidfile: string } {
    n++;
    const d = join(base, `set${n}`);
    for (const s of ['upper', 'work']) mkdirSync(join(d, s), { recursive: true });
    const mnt = join(base, `m${n}`);
    mkdirSync(mnt);
    return { opts: `lowerdir=${base}/lower,upperdir=${d}/upper,workdir=${d}/work`, mnt, pidfile: join(d, 'pid') };
  }

  test('--help and bad usage', () => {
    const help = ovlfs(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage:/);
    const bad = ovlfs(['mount', join(base, 'nowhere')]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /missing -o lowerdir/);
    const unknown = ovlfs(['mount', '-o', `lowerdir=${base}/lower,bogus=1`, base]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /unknown mount option 'bogus=1'/);
  });

  test('without root it says so', { skip: reason ?? (spawnSync('id', ['nobody']).status !== 0 && 'no user nobody') }, () => {
    const r = ovlfs(['mount', '-o', `lowerdir=${base}/lower`, base], { uid: 65534, gid: 65534, cwd: '/' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /needs root/);
  });

  test('a mount that cannot be made fails with the reason and status 32', { skip: reason }, () => {
    const { mnt } = layout();
    const r = ovlfs(['mount', '-o', `lowerdir=${base}/missing`, mnt]);
    assert.equal(r.status, 32, r.stderr);
    assert.match(r.stderr, /lowerdir #1 '.*missing' does not exist/);
    assert.equal(isMounted(mnt), false);
  });

  test('a mount without upperdir is read-only, as the kernel overlay makes it', { skip: reason }, async () => {
    const { mnt, pidfile } = layout();
    const kmnt = join(base, 'kernel-ro');
    mkdirSync(kmnt);
    mkdirSync(join(base, 'lower2'));
    // The kernel takes a mount without upperdir only with two lower layers or more.
    const lowers = `lowerdir=${base}/lower:${base}/lower2`;
    const flagsOf = (m: string): string | undefined => readMounts().filter((e) => e.mountpoint === m).at(-1)?.options.map(([k]) => k).find((k) => k === 'ro' || k === 'rw');
    const answers = (m: string): string[] => [
      attempt(() => accessSync(m, constants.W_OK)),
      attempt(() => writeFileSync(join(m, 'new'), 'x')),
      attempt(() => readFileSync(join(m, 'hello'), 'utf8')),
    ];
    try {
      assert.equal(spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', lowers, kmnt]).status, 0);
      const r = ovlfs(['mount', '-o', lowers, '--pidfile', pidfile, mnt]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(flagsOf(kmnt), 'ro');
      assert.equal(flagsOf(mnt), 'ro', 'the FUSE mount itself is read-only, so statvfs and findmnt say so');
      assert.deepEqual(answers(mnt), answers(kmnt));
      assert.deepEqual(answers(kmnt), ['EROFS', 'EROFS', 'OK']);
    } finally {
      if (isMounted(kmnt)) spawnSync('umount', ['-l', kmnt]);
      if (isMounted(mnt)) spawnSync('umount', [mnt]);
    }
  });

  test('mount daemonizes once live; a plain umount ends the daemon', { skip: reason }, async () => {
    const { opts, mnt, pidfile } = layout();
    const r = ovlfs(['mount', '-o', opts, '--pidfile', pidfile, mnt]);
    assert.equal(r.status, 0, r.stderr);
    // Live the moment the command returns: no polling here.
    assert.equal(isMounted(mnt), true);
    assert.equal(readFileSync(join(mnt, 'hello'), 'utf8'), 'hello from below\n');
    writeFileSync(join(mnt, 'new'), 'x');
    const pid = Number(readFileSync(pidfile, 'utf8'));
    assert.ok(alive(pid), 'no daemon');
    assert.equal(spawnSync('umount', [mnt]).status, 0);
    await gone(pid, mnt);
  });

  test('ovlfs umount ends the daemon', { skip: reason }, async () => {
    const { opts, mnt, pidfile } = layout();
    assert.equal(ovlfs(['mount', '-o', opts, '--pidfile', pidfile, mnt]).status, 0);
    const pid = Number(readFileSync(pidfile, 'utf8'));
    const r = ovlfs(['umount', mnt]);
    assert.equal(r.status, 0, r.stderr);
    await gone(pid, mnt);
    const again = ovlfs(['umount', mnt]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /not mounted/);
  });

  test('SIGTERM unmounts cleanly', { skip: reason }, async () => {
    const { opts, mnt, pidfile } = layout();
    assert.equal(ovlfs(['mount', '-o', opts, '--pidfile', pidfile, mnt]).status, 0);
    const pid = Number(readFileSync(pidfile, 'utf8'));
    process.kill(pid, 'SIGTERM');
    await gone(pid, mnt);
  });

  // The core skips every sync to the upper layer on a volatile overlay; through the mount only the
  // daemon's system calls show it, so strace counts them for the same fsync(2) with and without volatile.
  for (const volatile of [false, true]) {
    test(`FUSE fsync ${volatile ? 'skips the sync on a volatile overlay' : 'syncs the upper file'}`, { skip: reason ?? (!has('strace') && 'strace not installed') ?? (!has('python3') && 'python3 not installed') }, async (t) => {
      const { opts, mnt, pidfile } = layout();
      assert.equal(ovlfs(['mount', '-o', volatile ? `${opts},volatile` : opts, '--pidfile', pidfile, mnt]).status, 0);
      const pid = Number(readFileSync(pidfile, 'utf8'));
      t.after(async () => {
        spawnSync('umount', [mnt]);
        await gone(pid, mnt);
      });
      // Copied up first, so that only the FSYNC request itself can sync anything while strace watches.
      writeFileSync(join(mnt, 'hello'), 'changed\n');
      const py = "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.write(fd, b'x'); os.fsync(fd); os.fdatasync(fd); os.close(fd)";
      const calls = await syncCallsDuring(pid, () => {
        const r = spawnSync('python3', ['-c', py, join(mnt, 'hello')], { encoding: 'utf8', timeout: 30_000 });
        assert.equal(r.status, 0, r.stderr);
      });
      process.stdout.write(`# fsync(2) + fdatasync(2) through a ${volatile ? 'volatile' : 'plain'} mount: ${calls} sync calls in the daemon\n`);
      if (volatile) assert.equal(calls, 0, 'a volatile overlay must not sync');
      else assert.ok(calls >= 2, `fsync and fdatasync should each reach the upper file (saw ${calls} calls)`);
    });
  }

  test('the mount(8) helper form: SOURCE MOUNTPOINT -o, unknown options ignored', { skip: reason }, async () => {
    const { opts, mnt, pidfile } = layout();
    const r = ovlfs(['mount-helper', 'ovlfs', mnt, '-o', `rw,${opts},dev,suid,x-systemd.foo,whatever=1`, '--pidfile', pidfile]);
    assert.equal(r.status, 0, r.stderr);
    const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mnt);
    assert.match(line ?? '', /^ovlfs \S+ fuse\.ovlfs rw,/);
    assert.equal(readFileSync(join(mnt, 'hello'), 'utf8'), 'hello from below\n');
    const pid = Number(readFileSync(pidfile, 'utf8'));
    assert.equal(spawnSync('umount', [mnt]).status, 0);
    await gone(pid, mnt);
  });
});
