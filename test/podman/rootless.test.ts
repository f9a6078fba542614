// ovlfs as containers/storage's mount_program for rootless podman: a test user with subuid/subgid ranges
// made by the test (and removed after) runs podman, which runs the mount program as root in its user
// namespace. There ovlfs must use user.overlay.* xattrs (trusted.* is EPERM). Scenarios: run with a
// deletion, build with deletions and a COPY, and --userns=keep-id (a uidmapping of several ranges).
//
// What this machine needs, kept inside the test's private mount namespace and temp dir: /dev/fuse is
// 0600 here, so a 0666 node for the same device is bound over it; /etc is not searchable by other users
// here, so a searchable copy is bound over it (podman reads /etc/subuid itself to set up its namespace).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { buildOvlfs, makeImageTar, podmanSkipReason, unmountAll, type Run } from './harness.js';

function skipReason(): string | undefined {
  const r = podmanSkipReason();
  if (r) return r;
  for (const p of ['useradd', 'userdel', 'usermod', 'newuidmap', 'unshare', 'setpriv', 'mknod']) {
    if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) return `${p} is missing (uidmap, passwd, util-linux)`;
  }
  return undefined;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping rootless podman tests: ${reason}\n`);

describe('podman rootless with ovlfs as mount_program', { skip: reason, timeout: 600_000 }, () => {
  let base = '';
  let home = '';
  let user = '';
  let uid = -1;
  let gid = -1;
  let runner = '';

  function podman(args: string[], timeout = 180_000): Run {
    const r = spawnSync(runner, ['podman', ...args], { encoding: 'utf8', timeout });
    return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? r.error.message : '') };
  }
  function ok(r: Run, what: string): string {
    assert.equal(r.status, 0, `${what} failed (${r.status}):\n${r.stderr}`);
    return r.stdout;
  }
  function calls(): string[] {
    const log = join(home, 'mount-program.log');
    return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : [];
  }

  before(() => {
    base = mkdtempSync(join(tmpdir(), 'ovlfs-rootless-'));
    chmodSync(base, 0o755);
    home = join(base, 'home');
    const main = buildOvlfs(join(base, 'build'));
    const tar = makeImageTar(base);
    chmodSync(tar, 0o644);
    user = `ovlfst${process.pid % 100000}`;
    const add = spawnSync('useradd', ['-M', '-d', home, '-s', '/bin/sh', user], { encoding: 'utf8' });
    assert.equal(add.status, 0, add.stderr);
    // A range of its own besides any useradd gave it.
    const sub = spawnSync('usermod', ['--add-subuids', '400000-465535', '--add-subgids', '400000-465535', user], { encoding: 'utf8' });
    assert.equal(sub.status, 0, sub.stderr);
    uid = Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout);
    gid = Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout);
    for (const d of [home, join(base, 'xdg'), join(home, '.config/containers')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(home, 'mount-program'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${home}/mount-program.log\nexec ${join(dirname(main), 'ovlfs.sh')} "$@"\n`);
    chmodSync(join(home, 'mount-program'), 0o755);
    writeFileSync(join(home, 'storage.conf'), `[storage]\ndriver = "overlay"\n\n[storage.options.overlay]\nmount_program = "${home}/mount-program"\nmountopt = "nodev"\n`);
    writeFileSync(
      join(home, 'containers.conf'),
      `[containers]\nnetns = "none"\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n`,
    );
    writeFileSync(join(home, '.config/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n');
    writeFileSync(join(home, 'registries.conf'), 'unqualified-search-registries = []\n');
    const ctx = join(home, 'ctx');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'Containerfile'), 'FROM localhost/bb\nRUN echo built > /b && rm /data/gone && rm -r /dir1\nCOPY f /f\n');
    writeFileSync(join(ctx, 'f'), 'ctx\n');
    spawnSync('chown', ['-R', `${uid}:${gid}`, home, join(base, 'xdg')]);
    chmodSync(join(base, 'xdg'), 0o700);
    spawnSync('mknod', [join(base, 'fuse'), 'c', '10', '229']);
    chmodSync(join(base, 'fuse'), 0o666);
    cpSync('/etc', join(base, 'etc'), { recursive: true, verbatimSymlinks: true });
    chmodSync(join(base, 'etc'), 0o755);
    runner = join(base, 'as-user');
    const env = [
      'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
      `HOME=${home}`,
      `XDG_RUNTIME_DIR=${base}/xdg`,
      // Where ovlfs's spare daemons wait (the user's own; unmountAll stops them).
      `OVLFS_SPARE_DIR=${base}/xdg/ovlfs-spares`,
      `CONTAINERS_CONF=${home}/containers.conf`,
      `CONTAINERS_STORAGE_CONF=${home}/storage.conf`,
      `CONTAINERS_REGISTRIES_CONF=${home}/registries.conf`,
      'BUILDAH_ISOLATION=chroot',
    ].join(' ');
    writeFileSync(
      runner,
      `#!/bin/sh\nexec unshare --mount --propagation private sh -c 'mount --bind ${base}/fuse /dev/fuse && mount --bind ${base}/etc /etc && cd ${home} && exec setpriv --reuid ${uid} --regid ${gid} --init-groups env -i ${env} "$@"' sh "$@"\n`,
    );
    chmodSync(runner, 0o755);
    ok(podman(['import', tar, 'localhost/bb']), 'podman import');
  });

  after(() => {
    if (base === '') return;
    if (runner !== '' && user !== '') {
      podman(['rm', '-a', '-f', '-t', '0']);
      // The rootless pause process this test's podman started holds the user namespace.
      const pause = join(base, 'xdg/libpod/tmp/pause.pid');
      if (existsSync(pause)) {
        const pid = Number(readFileSync(pause, 'utf8'));
        if (pid > 1) spawnSync('kill', ['-9', String(pid)]);
      }
    }
    if (user !== '') {
      spawnSync('usermod', ['--del-subuids', '400000-465535', '--del-subgids', '400000-465535', user]);
      spawnSync('userdel', [user]);
    }
    unmountAll(base);
    rmSync(base, { recursive: true, force: true });
  });

  test('run, with user.overlay.* xattrs in the upper layer', () => {
    assert.equal(ok(podman(['run', '--rm', 'localhost/bb', 'sh', '-c', 'echo hi > /x && cat /x && rm /data/gone && rm -r /dir1 && mkdir /dir1 && ls /data /dir1']), 'podman run'), 'hi\n/data:\nblob\nkeep\n\n/dir1:\n');
    assert.match(calls().find((c) => c.includes('upperdir=')) ?? '', /^-o lowerdir=.*,upperdir=.*,workdir=.* \//);
  });

  test('build with deletions and a COPY', () => {
    ok(podman(['build', '--pull=never', '-t', 'localhost/rb', join(home, 'ctx')], 300_000), 'podman build');
    assert.equal(ok(podman(['run', '--rm', 'localhost/rb', 'sh', '-c', 'cat /b /f; ls /data; ls / | grep -c dir1; true']), 'run the build'), 'built\nctx\nblob\nkeep\n0\n');
  });

  test('--userns=keep-id: several ranges mapped both ways', () => {
    const out = ok(podman(['run', '--rm', '--userns=keep-id', '--user', '0', 'localhost/bb', 'sh', '-c', `stat -c %u:%g /data/keep; chmod 1777 /tmp; echo k > /tmp/k; stat -c %u:%g /tmp/k; chown ${uid}:${gid} /tmp/k; stat -c %u:%g /tmp/k`]), 'keep-id');
    assert.equal(out, `0:0\n0:0\n${uid}:${gid}\n`);
    const me = ok(podman(['run', '--rm', '--userns=keep-id', 'localhost/bb', 'id', '-u']), 'keep-id as the user').trim();
    assert.equal(me, String(uid));
    const call = calls().at(-1) ?? '';
    assert.ok((call.match(/uidmapping=([^,]*)/)?.[1]?.split(':').filter((x) => x !== '').length ?? 0) >= 6, `several ranges: ${call}`);
  });
});
