// Proves src/fuse's protocol and bridge (node ids, handles, snapshots, serving loop, worker-served mount)
// by mounting the loopback fixture over a temp
// directory and running real programs against the mount, then comparing with the backing directory.
//
// The mount is served by a worker thread (mountFuse), so this thread may block in spawnSync while the
// programs it runs make requests. Every program runs with a timeout, so a server bug fails a test instead
// of hanging the run, and the mount is always unmounted in `after`.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { mountFuse, type FuseMount } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { ok, sh, type Run } from '../support/shell.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'FUSE tests need Linux';
  if (process.getuid?.() !== 0) return 'FUSE tests need root (mount -t fuse)';
  if (!existsSync('/dev/fuse')) return 'FUSE tests need /dev/fuse';
  return undefined;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping FUSE bridge tests: ${reason}\n`);


/** A listing that must be the same on the mount and on the backing directory. */
function tree(dir: string): string {
  // Times to the millisecond: Node's utimes takes seconds as a double, which keeps about 0.2 us at today's dates.
  return ok(`cd '${dir}' && find . -printf '%P %y %s %m %U %G %n %l %T@\\n' | sort`).replace(/(\.\d{3})\d*$/gm, '$1');
}

describe('the bridge over the loopback fixture', { skip: reason }, () => {
  let base = '';
  let back = '';
  let mnt = '';
  let mount: FuseMount | undefined;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'ovlfs-fuse-'));
    back = join(base, 'back');
    mnt = join(base, 'mnt');
    mkdirSync(back);
    mkdirSync(mnt);
    writeFileSync(join(back, 'hello.txt'), 'hello, world\n');
    mkdirSync(join(back, 'sub'));
    writeFileSync(join(back, 'sub', 'inner.txt'), 'inner\n');
    mount = await mountFuse({
      mountpoint: mnt,
      fsname: 'ovlfs-test',
      source: 'loopback',
      filesystem: { module: new URL('../support/loopback.ts', import.meta.url), export: 'createLoopback', arg: back },
      options: { debug: process.env.OVLFS_FUSE_DEBUG === '1' },
    });
  });

  after(async () => {
    try {
      await mount?.unmount();
    } finally {
      if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
      assert.equal(isMounted(mnt), false, 'still mounted after unmount');
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('the mount is listed as fuse.<fsname>', () => {
    const line = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[1] === mnt);
    assert.ok(line, 'not in /proc/mounts');
    assert.match(line, /^loopback \S+ fuse\.ovlfs-test /);
  });

  test('cat, ls -l and stat agree with the backing directory', () => {
    assert.equal(ok(`cat '${mnt}/hello.txt'`), 'hello, world\n');
    assert.equal(ok(`cat '${mnt}/sub/inner.txt'`), 'inner\n');
    // '..' differs at the root (the mount's parent is not the backing dir's parent); compare the rest.
    const ls = (d: string): string =>
      ok(`ls -lan --time-style=full-iso '${d}'`)
        .split('\n')
        .filter((l) => !/ \.\.$/.test(l))
        .join('\n');
    assert.equal(ls(mnt), ls(back));
    const fmt = "%s %a %u %g %h %F %Y %X %i";
    assert.equal(ok(`stat -c '${fmt}' '${mnt}/hello.txt'`), ok(`stat -c '${fmt}' '${back}/hello.txt'`));
    assert.equal(ok(`stat -c '%F %a' '${mnt}'`), 'directory ' + ok(`stat -c '%a' '${back}'`));
  });

  test('ls -a shows . and ..', () => {
    assert.deepEqual(ok(`ls -a '${mnt}/sub'`).trim().split('\n'), ['.', '..', 'inner.txt']);
  });

  test('missing names are ENOENT, and errors come back as errno', () => {
    const r = sh(`cat '${mnt}/nope'`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /No such file or directory/);
    const r2 = sh(`rmdir '${mnt}/sub'`);
    assert.match(r2.stderr, /not empty/i);
    const r3 = sh(`mkdir '${mnt}/sub'`);
    assert.match(r3.stderr, /exists/i);
  });

  test('echo > file, append, truncate', () => {
    ok(`echo one > '${mnt}/w.txt'`);
    ok(`echo two >> '${mnt}/w.txt'`);
    assert.equal(readFileSync(join(back, 'w.txt'), 'utf8'), 'one\ntwo\n');
    ok(`: > '${mnt}/w.txt'`);
    assert.equal(readFileSync(join(back, 'w.txt'), 'utf8'), '');
    ok(`truncate -s 1000 '${mnt}/w.txt'`);
    assert.equal(statSync(join(back, 'w.txt')).size, 1000);
    ok(`rm '${mnt}/w.txt'`);
    assert.equal(existsSync(join(back, 'w.txt')), false);
  });

  test('mkdir, mv, rm, rmdir', () => {
    ok(`mkdir -p '${mnt}/a/b/c'`);
    ok(`echo x > '${mnt}/a/b/c/f'`);
    ok(`mv '${mnt}/a/b' '${mnt}/a/B'`);
    assert.equal(ok(`cat '${mnt}/a/B/c/f'`), 'x\n');
    assert.equal(readFileSync(join(back, 'a/B/c/f'), 'utf8'), 'x\n');
    ok(`mv '${mnt}/a/B/c/f' '${mnt}/f2'`);
    assert.equal(ok(`cat '${mnt}/f2'`), 'x\n');
    // Replacing rename: the old target's node must not be confused with the new file.
    ok(`echo y > '${mnt}/f3' && mv '${mnt}/f3' '${mnt}/f2'`);
    assert.equal(ok(`cat '${mnt}/f2'`), 'y\n');
    ok(`mv -n '${mnt}/hello.txt' '${mnt}/f2'`); // RENAME_NOREPLACE or a stat first; either way no clobber
    assert.equal(ok(`cat '${mnt}/f2'`), 'y\n');
    ok(`rm '${mnt}/f2'`);
    ok(`rmdir '${mnt}/a/B/c'`);
    ok(`rm -r '${mnt}/a'`);
    assert.equal(existsSync(join(back, 'a')), false);
  });

  test('ln -s, readlink, hard links', () => {
    ok(`ln -s hello.txt '${mnt}/sym'`);
    assert.equal(ok(`readlink '${mnt}/sym'`), 'hello.txt\n');
    assert.equal(ok(`cat '${mnt}/sym'`), 'hello, world\n');
    assert.equal(ok(`stat -c %F '${mnt}/sym'`), 'symbolic link\n');
    ok(`ln '${mnt}/hello.txt' '${mnt}/hard'`);
    assert.equal(ok(`stat -c %h '${mnt}/hello.txt'`), '2\n');
    assert.equal(ok(`stat -c %i '${mnt}/hard'`), ok(`stat -c %i '${mnt}/hello.txt'`));
    ok(`rm '${mnt}/hard' '${mnt}/sym'`);
    assert.equal(ok(`stat -c %h '${mnt}/hello.txt'`), '1\n');
  });

  test('chmod, chown, touch -d', () => {
    ok(`echo m > '${mnt}/m'`);
    ok(`chmod 640 '${mnt}/m'`);
    ok(`chown 1234:5678 '${mnt}/m'`);
    ok(`touch -d '2001-02-03 04:05:06.123456789' '${mnt}/m'`);
    const fmt = '%a %u %g %y';
    assert.equal(ok(`stat -c '${fmt}' '${mnt}/m'`), ok(`stat -c '${fmt}' '${back}/m'`));
    assert.match(ok(`stat -c '%a %u %g %y' '${back}/m'`), /^640 1234 5678 2001-02-03 04:05:06\.123456/);
    ok(`rm '${mnt}/m'`);
  });

  test('find sees what the backing directory has', () => {
    assert.equal(tree(mnt), tree(back));
  });

  test('cp -a into the mount keeps data, modes and times', () => {
    const src = join(base, 'cp-src');
    mkdirSync(src);
    ok(`cd '${src}' && mkdir -p d1/d2 && echo a > d1/a && printf 'b%.0s' $(seq 1 5000) > d1/d2/b && ln -s d2/b d1/l && chmod 600 d1/a && touch -d '2010-01-01 00:00:00' d1/a && mkfifo d1/fifo`);
    ok(`cp -a '${src}' '${mnt}/cp-dst'`);
    ok(`diff -r --no-dereference -x fifo '${src}' '${mnt}/cp-dst'`); // diff fails on any fifo
    assert.equal(tree(join(mnt, 'cp-dst')), tree(src));
    assert.equal(ok(`stat -c %F '${back}/cp-dst/d1/fifo'`), 'fifo\n');
    // Back out through the mount, too.
    ok(`cp -a '${mnt}/cp-dst' '${base}/cp-back'`);
    ok(`diff -r --no-dereference -x fifo '${src}' '${base}/cp-back'`);
  });

  test('python3: positional io, truncate, utime, xattrs, copy_file_range, lseek, fallocate, statvfs', () => {
    const py = `
import os, sys
p = sys.argv[1]
fd = os.open(p + '/py.bin', os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
os.pwrite(fd, b'0123456789', 0)
os.pwrite(fd, b'AB', 4)
assert os.pread(fd, 10, 0) == b'0123AB6789', os.pread(fd, 10, 0)
os.ftruncate(fd, 6)
assert os.fstat(fd).st_size == 6
os.fsync(fd)
os.fdatasync(fd)
assert os.lseek(fd, 0, os.SEEK_DATA) == 0
assert os.lseek(fd, 0, os.SEEK_HOLE) == 6
os.posix_fallocate(fd, 0, 100)
assert os.fstat(fd).st_size == 100
os.close(fd)
os.utime(p + '/py.bin', ns=(1_000_000_123_456_789, 1_100_000_987_654_321))
st = os.stat(p + '/py.bin')
assert st.st_mtime_ns // 1000 == 1_100_000_987_654, st.st_mtime_ns
with open(p + '/py.txt', 'w') as f:
    f.write('line\\n' * 1000)
with open(p + '/py.txt') as f:
    assert f.read() == 'line\\n' * 1000
src = os.open(p + '/py.txt', os.O_RDONLY)
dst = os.open(p + '/py.copy', os.O_CREAT | os.O_WRONLY, 0o644)
n = os.copy_file_range(src, dst, 5000)
assert n == 5000, n
os.close(src); os.close(dst)
assert open(p + '/py.copy').read() == 'line\\n' * 1000
os.setxattr(p + '/py.txt', 'user.k', b'value')
assert os.getxattr(p + '/py.txt', 'user.k') == b'value'
assert 'user.k' in os.listxattr(p + '/py.txt')
try:
    os.setxattr(p + '/py.txt', 'user.k', b'v2', os.XATTR_CREATE)
    raise SystemExit('XATTR_CREATE did not fail')
except FileExistsError:
    pass
os.removexattr(p + '/py.txt', 'user.k')
try:
    os.getxattr(p + '/py.txt', 'user.k')
    raise SystemExit('removed xattr still there')
except OSError as e:
    assert e.errno == 61, e
v = os.statvfs(p)
assert v.f_blocks > 0 and v.f_namemax == 255
os.mkfifo(p + '/py.fifo')
assert os.path.exists(p + '/py.fifo')
for n in ('py.bin', 'py.txt', 'py.copy', 'py.fifo'):
    os.unlink(p + '/' + n)
print('ok')
`;
    writeFileSync(join(base, 't.py'), py);
    assert.equal(ok(`python3 '${base}/t.py' '${mnt}'`), 'ok\n');
  });

  test('tar x into the mount, tar c out of it', () => {
    const src = join(base, 'tar-src');
    mkdirSync(src);
    ok(`cd '${src}' && mkdir -p x/y && seq 1 20000 > x/y/nums && echo z > x/z && ln -s y/nums x/link && ln x/z x/zz && chmod 750 x/y`);
    ok(`tar cf '${base}/in.tar' -C '${src}' x`);
    ok(`mkdir '${mnt}/tar' && tar xpf '${base}/in.tar' -C '${mnt}/tar'`);
    ok(`diff -r --no-dereference '${src}/x' '${mnt}/tar/x'`);
    assert.equal(ok(`stat -c %h '${mnt}/tar/x/zz'`), '2\n');
    assert.equal(tree(join(mnt, 'tar')), tree(join(back, 'tar')));
    ok(`tar cf '${base}/out.tar' -C '${mnt}/tar' x`);
    assert.equal(ok(`tar tvf '${base}/out.tar' | sort`), ok(`tar tvf '${base}/in.tar' | sort`));
  });

  test('large files round-trip (multi-page reads and writes)', () => {
    ok(`dd if=/dev/urandom of='${base}/big' bs=1M count=8 status=none`);
    ok(`dd if='${base}/big' of='${mnt}/big' bs=4M status=none`);
    const sum = (p: string): string => ok(`sha256sum < '${p}'`);
    assert.equal(sum(join(back, 'big')), sum(join(base, 'big')));
    ok(`echo 3 > /proc/sys/vm/drop_caches || true`);
    assert.equal(sum(join(mnt, 'big')), sum(join(base, 'big')));
    ok(`rm '${mnt}/big'`);
  });

  test('notifyInvalEntry makes a change behind the kernel visible', async () => {
    writeFileSync(join(back, 'behind'), 'v1\n');
    assert.equal(ok(`cat '${mnt}/behind'`), 'v1\n');
    rmSync(join(back, 'behind'));
    mount!.notifyInvalEntry(1, 'behind');
    assert.equal(sh(`cat '${mnt}/behind'`).status, 1);
  });

  test('request latency (informational)', () => {
    // Each lseek(SEEK_DATA) is one LSEEK round trip (the kernel caches no answer), and the loopback's own
    // work is one fstat, so this is close to the bare cost of a request through the server.
    const py = `
import os, sys, time
fd = os.open(sys.argv[1] + '/hello.txt', os.O_RDONLY)
n = 20000
t = time.perf_counter()
for _ in range(n):
    os.lseek(fd, 0, os.SEEK_DATA)
print('%.1f' % ((time.perf_counter() - t) / n * 1e6))
`;
    writeFileSync(join(base, 'lat.py'), py);
    const us = ok(`python3 '${base}/lat.py' '${mnt}'`).trim();
    const usHost = ok(`python3 '${base}/lat.py' '${back}'`).trim();
    process.stdout.write(`# lseek(SEEK_DATA) round trip: ${us} us through FUSE, ${usHost} us on the backing fs\n`);
  });
});

describe('mount defaults and lifecycle', { skip: reason }, () => {
  let base = '';
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'ovlfs-fuse-'));
  });
  after(() => {
    for (const d of ['m1', 'm2', 'm3', 'm4', 'm5']) for (let i = 0; i < 5 && isMounted(join(base, d)); i++) spawnSync('umount', ['-l', join(base, d)]);
    rmSync(base, { recursive: true, force: true });
  });

  test('a filesystem without open/opendir/write: no-open mode, ENOSYS, default statfs', async (t) => {
    const mnt = join(base, 'm1');
    mkdirSync(mnt);
    const m = await mountFuse({ mountpoint: mnt, filesystem: { module: new URL('../support/minimal-fs.ts', import.meta.url), export: 'createMinimal' } });
    t.after(() => m.unmount());
    assert.equal(ok(`cat '${mnt}/greeting'`), 'hi from minimal\n');
    assert.equal(ok(`cat '${mnt}/greeting'`), 'hi from minimal\n');
    assert.deepEqual(ok(`ls -a '${mnt}'`).trim().split('\n'), ['.', '..', 'd', 'greeting']);
    assert.equal(ok(`ls -A '${mnt}/d'`), '');
    const w = sh(`echo x > '${mnt}/new'`);
    assert.notEqual(w.status, 0);
    assert.match(w.stderr, /Function not implemented/);
    assert.match(sh(`mkdir '${mnt}/nd'`).stderr, /Function not implemented/);
    assert.match(sh(`ln -s x '${mnt}/l'`).stderr, /Function not implemented/);
    ok(`df '${mnt}'`);
    await m.unmount();
    assert.equal(isMounted(mnt), false);
  });

  test('allow_other + default_permissions: other users get in, and the kernel enforces modes', async (t) => {
    const mnt = join(base, 'm4');
    const backing = join(base, 'b4');
    mkdirSync(mnt);
    mkdirSync(backing);
    chmodSync(base, 0o755); // mkdtemp's 0700 would stop the other user before the mount does
    writeFileSync(join(backing, 'public'), 'open\n', { mode: 0o644 });
    writeFileSync(join(backing, 'secret'), 'closed\n', { mode: 0o600 });
    const m = await mountFuse({
      mountpoint: mnt,
      filesystem: { module: new URL('../support/loopback.ts', import.meta.url), export: 'createLoopback', arg: backing },
      options: { allowOther: true, defaultPermissions: true },
    });
    t.after(() => m.unmount());
    const asNobody = (cmd: string): Run => sh(`setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "${cmd}"`);
    assert.equal(asNobody(`cat '${mnt}/public'`).stdout, 'open\n');
    const denied = asNobody(`cat '${mnt}/secret'`);
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr, /Permission denied/);
    assert.match(asNobody(`touch '${mnt}/new'`).stderr, /Permission denied/);
    // Root made the mount, so ownership of what root creates stays root's.
    ok(`echo r > '${mnt}/byroot'`);
    assert.equal(ok(`stat -c '%u %g' '${backing}/byroot'`), '0 0\n');
    await m.unmount();
    assert.equal(isMounted(mnt), false);
  });

  test('a filesystem whose factory throws is never mounted', async () => {
    const mnt = join(base, 'm2');
    mkdirSync(mnt);
    await assert.rejects(
      mountFuse({ mountpoint: mnt, filesystem: { module: new URL('../support/minimal-fs.ts', import.meta.url), export: 'createBroken' } }),
      /broken on purpose/,
    );
    assert.equal(isMounted(mnt), false);
    await assert.rejects(mountFuse({ mountpoint: mnt, filesystem: { module: new URL('../support/minimal-fs.ts', import.meta.url), export: 'nope' } }), /no function export/);
    assert.equal(isMounted(mnt), false);
    // A factory cannot cross to a worker: it is taken only where this thread serves.
    const factory = (): never => {
      throw new Error('called');
    };
    await assert.rejects(mountFuse({ mountpoint: mnt, filesystem: { factory } }), /serveHere/);
    assert.equal(isMounted(mnt), false);
  });

  test('a busy mount is detached lazily', async () => {
    const mnt = join(base, 'm3');
    const backing = join(base, 'b3');
    mkdirSync(mnt);
    mkdirSync(backing);
    writeFileSync(join(backing, 'f'), 'busy\n');
    const m = await mountFuse({ mountpoint: mnt, filesystem: { module: new URL('../support/loopback.ts', import.meta.url), export: 'createLoopback', arg: backing } });
    // A shell sits in the mount for a moment, so plain umount gets EBUSY.
    const holder = spawn('sh', ['-c', 'sleep 1'], { cwd: mnt, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    await m.unmount();
    assert.equal(isMounted(mnt), false);
    holder.kill();
  });

  test('unmounted from outside, a mount leaves alone what is mounted at its path next', async (t) => {
    // containers/storage unmounts a layer with fusermount3 -u and may mount it again at the same path at
    // once, while the first daemon is still winding down.
    const mnt = join(base, 'm5');
    const backing = join(base, 'b5');
    const next = join(base, 'next5');
    for (const d of [mnt, backing, next]) mkdirSync(d);
    writeFileSync(join(next, 'mine'), 'the next mount\n');
    const m = await mountFuse({ mountpoint: mnt, filesystem: { module: new URL('../support/loopback.ts', import.meta.url), export: 'createLoopback', arg: backing } });
    t.after(() => {
      for (let i = 0; i < 5 && isMounted(mnt); i++) spawnSync('umount', ['-l', mnt]);
    });
    // Both before this thread's event loop turns again, so before the mount sees its serving end.
    assert.equal(spawnSync('umount', [mnt]).status, 0);
    assert.equal(spawnSync('mount', ['--bind', next, mnt]).status, 0);
    await m.done;
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(isMounted(mnt), 'the next mount was detached');
    assert.equal(readFileSync(join(mnt, 'mine'), 'utf8'), 'the next mount\n');
  });

  /** Starts test/support/mount-child.ts on a fresh loopback mount; resolves once it has mounted. */
  async function mountChild(t: { after(fn: () => void): void }, name: string, host: 'worker' | 'here'): Promise<{ child: ChildProcess; mnt: string; output: () => string }> {
    const mnt = join(base, `mnt-${name}`);
    const backing = join(base, `back-${name}`);
    mkdirSync(mnt);
    mkdirSync(backing);
    writeFileSync(join(backing, 'f'), 'sig\n');
    const child = spawn(process.execPath, [...process.execArgv.filter((a) => !a.startsWith('--test')), new URL('../support/mount-child.ts', import.meta.url).pathname, mnt, backing, host], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => {
      child.kill('SIGKILL');
      if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
    });
    let out = '';
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error('child did not mount')), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('mounted')) {
          clearTimeout(timer);
          res();
        }
      });
      child.on('exit', (code) => rej(new Error(`child exited early (${code})`)));
    });
    return { child, mnt, output: () => out };
  }

  /** The signal the child died of, or 'alive' if it still runs after `ms`. */
  function deathWithin(child: ChildProcess, ms: number): Promise<NodeJS.Signals | null | 'alive'> {
    return new Promise((res) => {
      const timer = setTimeout(() => res('alive'), ms);
      child.on('exit', (_c, s) => {
        clearTimeout(timer);
        res(s);
      });
    });
  }

  for (const host of ['worker', 'here'] as const) {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      test(`${sig} unmounts a mount made with handleSignals, served by ${host === 'here' ? 'the main thread' : 'a worker'}`, async (t) => {
        const { child, mnt } = await mountChild(t, `${sig}-${host}`, host);
        assert.equal(ok(`cat '${mnt}/f'`), 'sig\n');
        const exited = deathWithin(child, 20_000);
        child.kill(sig);
        assert.equal(await exited, sig);
        assert.equal(isMounted(mnt), false);
      });
    }
  }

  // Served on the main thread, requests that keep coming must not keep the event loop from its turns:
  // else a timer, a child's exit or a signal that lands while a request is being served waits for a
  // quiet moment that may never come.
  test('served on the main thread, a busy mount still gives its event loop turns, and SIGTERM ends it', async (t) => {
    const { child, mnt, output } = await mountChild(t, 'busy', 'here');
    const client = spawn('python3', ['-c', `
import os, time
end = time.time() + 30
i = 0
while time.time() < end:
    p = '${mnt}/c%d' % (i % 50)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    os.unlink(p)
    i += 1
`], { stdio: 'ignore' });
    t.after(() => client.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 300));
    const before = output().split('tick').length;
    await new Promise((r) => setTimeout(r, 1500));
    const ticks = output().split('tick').length - before;
    assert.ok(ticks >= 5, `only ${ticks} timer ticks in 1.5 s of serving a busy client`);
    const exited = deathWithin(child, 10_000);
    child.kill('SIGTERM');
    assert.equal(await exited, 'SIGTERM', 'SIGTERM while busy');
    client.kill('SIGKILL');
    for (let i = 0; i < 100 && isMounted(mnt); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(isMounted(mnt), false);
  });

  // kill(2) with the id of one thread delivers a signal to the process through that thread, whose
  // handler then only marks it for the event loop: the main thread, asleep on the device, must still
  // wake for it before the next request.
  test('served on the main thread, an idle mount hears a signal that another thread took', async (t) => {
    const { child, mnt } = await mountChild(t, 'other-thread', 'here');
    const pid = child.pid!;
    const other = readdirSync(`/proc/${pid}/task`).map(Number).find((tid) => tid !== pid);
    assert.ok(other !== undefined, 'the child has other threads');
    const exited = deathWithin(child, 10_000);
    process.kill(other, 'SIGTERM');
    assert.equal(await exited, 'SIGTERM');
    assert.equal(isMounted(mnt), false);
  });
});
