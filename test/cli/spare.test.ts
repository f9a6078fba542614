// Spare daemons (src/cli/spare.ts), through ovlfs.sh as containers/storage runs it and built as `npm run
// build` builds it: a daemon whose mount has ended waits in the spare directory and takes the script's
// next mount (same process, the mount live when the script returns, errors and warnings on the script's
// stderr, its exit status); a script that runs otherwise than the spare was started is refused and
// starts a daemon of its own; a spare retires after its idle time; OVLFS_SPARE=0 turns spares off; a
// dead spare's files are passed over; of two scripts racing for one spare, one gets it and both mount.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CommandFixture, fuseMountSkipReason, type ContainerLayout } from '../support/command-fixture.js';
import { stopSpares } from '../support/spares.js';

const reason = fuseMountSkipReason();
if (reason) process.stdout.write(`# skipping spare daemon tests: ${reason}\n`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('spare daemons through ovlfs.sh', { skip: reason }, () => {
  let fixture: CommandFixture | undefined;
  let base = '';
  let bin = '';

  before(() => {
    fixture = new CommandFixture('ovlfs-spare-');
    ({ base, bin } = fixture);
  });

  after(() => {
    if (fixture === undefined) return;
    stopSpares(base);
    fixture.cleanup();
  });

  /** Each test's own spare directory, so that no spare of another test answers. */
  function spareEnv(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { ...process.env, OVLFS_SPARE_DIR: join(base, `spares-${name}`), ...extra };
  }

  function container(): ContainerLayout {
    return fixture!.container();
  }

  function args(c: ContainerLayout, lowerdir = 'l', extra = ''): string[] {
    return ['-o', `lowerdir=${lowerdir},upperdir=${c.dir}/diff,workdir=${c.dir}/work,,volatile${extra}`, '--pidfile', c.pidfile, c.mnt];
  }

  /** ovlfs.sh from `base` (relative layers), stdout and stderr pipes, as containers/storage runs it. */
  function mount(env: NodeJS.ProcessEnv, argv: string[], shell?: string): { status: number | null; stderr: string } {
    const [cmd, pre] = shell === undefined ? [join(bin, 'ovlfs.sh'), []] : ['sh', ['-c', `${shell}; exec "$0" "$@"`, join(bin, 'ovlfs.sh')]];
    const r = spawnSync(cmd, [...pre, ...argv], { cwd: base, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stderr: r.stderr };
  }

  function waiting(env: NodeJS.ProcessEnv): number[] {
    const dir = env.OVLFS_SPARE_DIR!;
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.ready')).map((f) => Number(f.split('.')[0])) : [];
  }

  function alive(pid: number): boolean {
    return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  }

  async function until(what: string, ok: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !ok(); i++) await sleep(25);
    assert.ok(ok(), what);
  }

  /** Mounts, checks the mount, unmounts; the daemon's pid. */
  function roundTrip(env: NodeJS.ProcessEnv): number {
    const c = container();
    const r = mount(env, args(c));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(readFileSync(join(c.mnt, 'f'), 'utf8'), 'from below\n');
    writeFileSync(join(c.mnt, 'new'), basename(c.dir));
    assert.equal(readFileSync(join(c.dir, 'diff/new'), 'utf8'), basename(c.dir));
    const pid = Number(readFileSync(c.pidfile, 'utf8'));
    const u = spawnSync('fusermount3', ['-u', c.mnt], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    return pid;
  }

  test('a daemon whose mount ended waits, and takes the next mount itself', async () => {
    const env = spareEnv('take');
    const first = roundTrip(env);
    await until('the daemon waits as a spare', () => waiting(env).includes(first));
    // The spare directory is the user's own and closed to others.
    assert.equal(spawnSync('stat', ['-c', '%a', env.OVLFS_SPARE_DIR!], { encoding: 'utf8' }).stdout.trim(), '700');
    const second = roundTrip(env);
    assert.equal(second, first, 'the spare served the second mount');
    await until('and waits again', () => waiting(env).includes(first));
    assert.equal(roundTrip(env), first);
  });

  test('a spare keeps no files of the mounts it served', async () => {
    const env = spareEnv('files');
    const first = roundTrip(env);
    await until('a spare waits', () => waiting(env).includes(first));
    assert.equal(roundTrip(env), first);
    await until('waits again', () => waiting(env).includes(first));
    const before = readdirSync(`/proc/${first}/fd`).length;
    for (let i = 0; i < 5; i++) {
      assert.equal(roundTrip(env), first);
      await until('waits again', () => waiting(env).includes(first));
    }
    assert.equal(readdirSync(`/proc/${first}/fd`).length, before, 'as many open files after five more mounts');
  });

  test('a spare serves data through its I/O threads mount after mount, the same bytes each time', async () => {
    const env = spareEnv('data');
    // Larger than the inline reads that start the I/O threads (16 MiB), in a lower layer of its own.
    mkdirSync(join(base, 'big'));
    const data = Buffer.alloc(24 << 20);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i ^ 0x5a5a5a5a, i);
    writeFileSync(join(base, 'big/blob'), data);
    let spare = 0;
    for (let round = 0; round < 3; round++) {
      const c = container();
      const r = mount(env, args(c, 'big'));
      assert.equal(r.status, 0, r.stderr);
      const pid = Number(readFileSync(c.pidfile, 'utf8'));
      if (round > 0) assert.equal(pid, spare, 'the spare took the mount');
      spare = pid;
      for (let i = 0; i < 2; i++) assert.ok(readFileSync(join(c.mnt, 'blob')).equals(data), `round ${round}: the lower bytes`);
      // The first write copies the file up, through the threads.
      appendFileSync(join(c.mnt, 'blob'), 'tail');
      assert.ok(readFileSync(join(c.dir, 'diff/blob')).equals(Buffer.concat([data, Buffer.from('tail')])), `round ${round}: the copy-up`);
      assert.equal(spawnSync('fusermount3', ['-u', c.mnt]).status, 0);
      await until('waits again', () => waiting(env).includes(spare));
    }
  });

  test('a spare says errors and warnings on the script\'s stderr, with the command\'s exit status', async () => {
    const env = spareEnv('errors');
    const first = roundTrip(env);
    await until('a spare waits', () => waiting(env).includes(first));
    const c = container();
    const warned = mount(env, args(c, 'l', ',bogus=1'));
    assert.equal(warned.status, 0, warned.stderr);
    assert.match(warned.stderr, /unknown argument ignored: bogus=1/);
    assert.equal(Number(readFileSync(c.pidfile, 'utf8')), first, 'the spare took it');
    assert.equal(spawnSync('fusermount3', ['-u', c.mnt]).status, 0);
    await until('a spare waits again', () => waiting(env).includes(first));
    const bad = mount(env, args(container(), 'l:missing'));
    assert.equal(bad.status, 32, bad.stderr);
    assert.match(bad.stderr, /lowerdir #2 '.*\/missing' does not exist/);
    // A spare whose mount failed ends, as a daemon would.
    await until('the spare ended', () => !alive(first));
    assert.deepEqual(waiting(env), []);
  });

  test('a script that runs otherwise than the spare started is refused, and mounts with a daemon of its own', async () => {
    const env = spareEnv('refused');
    const first = roundTrip(env);
    await until('a spare waits', () => waiting(env).includes(first));
    const c = container();
    const r = mount(env, args(c), 'umask 077');
    assert.equal(r.status, 0, r.stderr);
    const own = Number(readFileSync(c.pidfile, 'utf8'));
    assert.notEqual(own, first, 'another umask: not the spare');
    assert.equal(readFileSync(join(c.mnt, 'f'), 'utf8'), 'from below\n');
    await until('the refused spare ended', () => !alive(first));
    assert.equal(spawnSync('fusermount3', ['-u', c.mnt]).status, 0);
    // An environment ovlfs reads (OVLFS_*) that differs is refused as well.
    await until('the new daemon waits', () => waiting(env).includes(own));
    const d = container();
    assert.equal(mount({ ...env, OVLFS_SPIN: '0' }, args(d)).status, 0);
    assert.notEqual(Number(readFileSync(d.pidfile, 'utf8')), own);
    assert.equal(spawnSync('fusermount3', ['-u', d.mnt]).status, 0);
  });

  test('a spare retires after its idle time and leaves nothing; OVLFS_SPARE=0 makes none', async () => {
    const env = spareEnv('idle', { OVLFS_SPARE_IDLE_MS: '300' });
    const first = roundTrip(env);
    await until('the spare retired', () => !alive(first));
    assert.deepEqual(readdirSync(env.OVLFS_SPARE_DIR!), []);
    const off = spareEnv('off', { OVLFS_SPARE: '0' });
    const pid = roundTrip(off);
    await until('the daemon ended with its mount', () => !alive(pid));
    assert.equal(existsSync(off.OVLFS_SPARE_DIR!), false);
  });

  test('SIGTERM ends a waiting spare, and it leaves no files', async () => {
    const env = spareEnv('term');
    const first = roundTrip(env);
    await until('a spare waits', () => waiting(env).includes(first));
    process.kill(first, 'SIGTERM');
    await until('the spare ended', () => !alive(first));
    assert.deepEqual(readdirSync(env.OVLFS_SPARE_DIR!), []);
  });

  test('a spare that does not answer is killed after the wait, and the script mounts with a daemon of its own', async () => {
    const env = spareEnv('stopped');
    const first = roundTrip(env);
    await until('a spare waits', () => waiting(env).includes(first));
    process.kill(first, 'SIGSTOP');
    try {
      const c = container();
      const r = mount(env, args(c));
      assert.equal(r.status, 0, r.stderr);
      assert.notEqual(Number(readFileSync(c.pidfile, 'utf8')), first, 'a daemon of its own served the mount');
      assert.equal(readFileSync(join(c.mnt, 'f'), 'utf8'), 'from below\n');
      assert.equal(spawnSync('fusermount3', ['-u', c.mnt]).status, 0);
      await until('the spare that did not answer was killed', () => !alive(first));
    } finally {
      try {
        process.kill(first, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });

  test('a dead spare\'s files are passed over and cleared', async () => {
    const env = spareEnv('dead');
    mkdirSync(env.OVLFS_SPARE_DIR!, { mode: 0o700 });
    // No such process (pid_max is at most 2^22), and the start time of none.
    writeFileSync(join(env.OVLFS_SPARE_DIR!, '4194304999.1.ready'), '');
    const first = roundTrip(env);
    await until('the new spare waits', () => waiting(env).includes(first));
    assert.deepEqual(waiting(env), [first], 'the dead one\'s file is gone');
  });

  test('a spare file that another user put in the directory is passed over, and its process left alone', async () => {
    const env = spareEnv('foreign');
    mkdirSync(env.OVLFS_SPARE_DIR!, { mode: 0o700 });
    // A live process of this user's, named by a file that is not this user's: SIGUSR2 would end it.
    const victim = spawn('sleep', ['30'], { stdio: 'ignore' });
    await until('the process runs', () => alive(victim.pid!));
    const stat = readFileSync(`/proc/${victim.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    const planted = join(env.OVLFS_SPARE_DIR!, `${victim.pid}.${start}.ready`);
    writeFileSync(planted, '');
    chownSync(planted, 65534, 65534);
    try {
      const c = container();
      const r = mount(env, args(c));
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(c.mnt, 'f'), 'utf8'), 'from below\n');
      assert.equal(spawnSync('fusermount3', ['-u', c.mnt]).status, 0);
      assert.ok(alive(victim.pid!), 'the process the file named was not signalled');
    } finally {
      victim.kill('SIGKILL');
    }
  });

  test('while a spare serves the mount it took, no script can claim it; waiting again, it can be claimed', async () => {
    const env = spareEnv('serving');
    const first = roundTrip(env);
    await until('a spare waits', () => waiting(env).includes(first));
    const [claimFile] = readdirSync(env.OVLFS_SPARE_DIR!).filter((f) => f.startsWith(`${first}.`)).map((f) => join(env.OVLFS_SPARE_DIR!, f.replace(/\.ready$/, '.claim')));
    const c = container();
    const r = mount(env, args(c));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Number(readFileSync(c.pidfile, 'utf8')), first);
    // A script that found the spare just before it went makes its claim now, as ovlfs.sh does (O_EXCL):
    // it must fail, or the script would wait for an answer in vain and then kill the serving daemon.
    const late = spawnSync('sh', ['-c', 'set -C; printf x >"$0"', claimFile!], { encoding: 'utf8' });
    assert.notEqual(late.status, 0, 'a claim was made on a spare that serves a mount');
    assert.equal(readFileSync(join(c.mnt, 'f'), 'utf8'), 'from below\n');
    assert.equal(spawnSync('fusermount3', ['-u', c.mnt]).status, 0);
    await until('it waits again', () => waiting(env).includes(first));
    assert.equal(roundTrip(env), first, 'and takes the next claim');
  });

  test('of two scripts racing for one spare, one takes it, and both mount', async () => {
    const env = spareEnv('race');
    const first = roundTrip(env);
    await until('a spare waits', () => waiting(env).includes(first));
    const cs = [container(), container()];
    const runs = cs.map((c) => new Promise<number | null>((resolve) => {
      const p = spawn(join(bin, 'ovlfs.sh'), args(c), { cwd: base, env, stdio: ['ignore', 'ignore', 'inherit'] });
      p.on('exit', (code) => resolve(code));
    }));
    assert.deepEqual(await Promise.all(runs), [0, 0]);
    const pids = cs.map((c) => Number(readFileSync(c.pidfile, 'utf8')));
    assert.equal(pids.filter((p) => p === first).length, 1, `one of ${pids} is the spare ${first}`);
    for (const c of cs) {
      assert.equal(readFileSync(join(c.mnt, 'f'), 'utf8'), 'from below\n');
      assert.equal(spawnSync('fusermount3', ['-u', c.mnt]).status, 0);
    }
  });
});
