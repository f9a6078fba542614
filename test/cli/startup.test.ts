// Proves the command's fast start-up path, built as `npm run build` builds it (scripts/bundle.mjs): in
// fuse-overlayfs's form as root the command mounts and returns before its daemon has started, and the
// mount is live for the caller all the same (the kernel queues requests until the daemon answers). The
// daemon then ends with the mount: unmounted right away, unmounted once serving, or SIGTERM. A layer
// that is not a directory fails in the command; a layout only the overlay refuses is detached. Each
// test runs for both entries: ovlfs.cjs, whose daemon is a second Node, and ovlfs.sh, whose one Node
// mounts, leaves the caller (a session of its own, none of the caller's pipes) and serves.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { isMounted } from '../../src/mount-table.js';
import { CommandFixture, fuseMountSkipReason, type ContainerLayout } from '../support/command-fixture.js';

// A daemon here ends with its mount, as it does with spares off (test/cli/spare.test.ts has spares).
const NO_SPARES = { ...process.env, OVLFS_SPARE: '0' };

const reason = fuseMountSkipReason();

let fixture: CommandFixture | undefined;
let base = '';
let bin = '';
/** The two ways to run the command: node ovlfs.cjs, and ovlfs.sh as containers/storage would exec it. */
const ENTRIES = ['ovlfs.cjs', 'ovlfs.sh'] as const;
type Entry = (typeof ENTRIES)[number];

before(() => {
  if (reason) return;
  fixture = new CommandFixture('ovlfs-cli-startup-');
  ({ base, bin } = fixture);
});

after(() => fixture?.cleanup());

function container(): ContainerLayout {
  return fixture!.container();
}

function mount(entry: Entry, c: ContainerLayout, lowerdir = 'l'): { status: number | null; stderr: string } {
  const [cmd, pre] = entry === 'ovlfs.sh' ? [join(bin, 'ovlfs.sh'), []] : [process.execPath, [join(bin, 'ovlfs.cjs')]];
  // stdout and stderr are pipes: spawnSync returns only once every copy of them is closed, so a daemon
  // that kept the caller's output open would show here as a timeout.
  const r = spawnSync(cmd, [...pre, '-o', `lowerdir=${lowerdir},upperdir=${c.dir}/diff,workdir=${c.dir}/work,,volatile`, '--pidfile', c.pidfile, '--log', c.log, c.mnt], {
    cwd: base,
    env: NO_SPARES,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stderr: r.stderr };
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/** The session id of a process (the sixth field of /proc/PID/stat, after the parenthesized name). */
function session(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

async function gone(pid: number, mnt: string): Promise<void> {
  for (let i = 0; i < 300 && (alive(pid) || isMounted(mnt)); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(isMounted(mnt), false, 'still mounted');
  assert.equal(alive(pid), false, `daemon ${pid} still running`);
}

for (const entry of ENTRIES) {
  test(`${entry}: live when the command returns, though its daemon may still be starting; fusermount3 -u ends it`, { skip: reason }, async () => {
    const c = container();
    const r = mount(entry, c);
    assert.equal(r.status, 0, r.stderr);
    const pid = Number(readFileSync(c.pidfile, 'utf8'));
    assert.equal(isMounted(c.mnt), true, 'mounted when the command returns');
    assert.notEqual(session(pid), session('self'), 'the daemon has a session of its own');
    // This read waits in the kernel until the daemon has started and answers.
    assert.equal(readFileSync(join(c.mnt, 'f'), 'utf8'), 'from below\n');
    writeFileSync(join(c.mnt, 'new'), 'x');
    assert.equal(readFileSync(join(c.dir, 'diff/new'), 'utf8'), 'x');
    const u = spawnSync('fusermount3', ['-u', c.mnt], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    await gone(pid, c.mnt);
    assert.match(readFileSync(c.log, 'utf8'), /unmounted/);
  });

  test(`${entry}: unmounted before the daemon has answered anything, the daemon ends too`, { skip: reason }, async () => {
    const c = container();
    assert.equal(mount(entry, c).status, 0);
    const pid = Number(readFileSync(c.pidfile, 'utf8'));
    assert.equal(spawnSync('umount', [c.mnt]).status, 0);
    await gone(pid, c.mnt);
  });

  test(`${entry}: SIGTERM to the serving daemon unmounts`, { skip: reason }, async () => {
    const c = container();
    assert.equal(mount(entry, c).status, 0);
    const pid = Number(readFileSync(c.pidfile, 'utf8'));
    statSync(join(c.mnt, 'f')); // answered: the daemon serves
    process.kill(pid, 'SIGTERM');
    await gone(pid, c.mnt);
  });

  test(`${entry}: a layer that is not there fails in the command: status 32, nothing mounted`, { skip: reason }, () => {
    const c = container();
    const r = mount(entry, c, 'l:missing');
    assert.equal(r.status, 32, r.stderr);
    assert.match(r.stderr, /lowerdir #2 '.*\/missing' does not exist/);
    assert.equal(isMounted(c.mnt), false);
    assert.equal(existsSync(c.pidfile), false, 'no daemon was started');
  });

  test(`${entry}: a layout the overlay refuses after the mount was made is detached, and the log says why`, { skip: reason }, async () => {
    const c = container();
    // The upper layer inside a lower one: every path is a directory, only the overlay refuses it.
    const r = mount(entry, c, `${c.dir}`);
    assert.equal(r.status, 0, r.stderr);
    const pid = Number(readFileSync(c.pidfile, 'utf8'));
    await gone(pid, c.mnt);
    assert.match(readFileSync(c.log, 'utf8'), /detached: .*overlapping layers/);
  });
}

test('ovlfs.sh: a usage error is the command\'s exit status, said on its stderr', { skip: reason }, () => {
  const r = spawnSync(join(bin, 'ovlfs.sh'), ['-o', 'upperdir=/nowhere', join(base, 'l')], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000, env: NO_SPARES });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /missing -o lowerdir/);
});

test('ovlfs.sh: other forms run ovlfs.cjs as they are', { skip: reason }, () => {
  const r = spawnSync(join(bin, 'ovlfs.sh'), ['--version'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ovlfs \d/);
  // Installed as a link elsewhere (/usr/local/bin/ovlfs): it finds ovlfs.cjs next to where the link points.
  symlinkSync(join(bin, 'ovlfs.sh'), join(base, 'ovlfs-link'));
  const h = spawnSync(join(base, 'ovlfs-link'), ['help'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /mount/);
});

test('ovlfs.js, the path of the command before it was one CommonJS bundle, still runs it', { skip: reason }, () => {
  const r = spawnSync(process.execPath, [join(bin, 'ovlfs.js'), '--version'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ovlfs \d/);
  // As a mount(8) helper made then: a link named mount.fuse.ovlfs takes the helper form.
  symlinkSync(join(bin, 'ovlfs.js'), join(base, 'mount.fuse.ovlfs'));
  const h = spawnSync(join(base, 'mount.fuse.ovlfs'), [], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(h.status, 1);
  assert.match(h.stderr, /expected SOURCE MOUNTPOINT/);
});
