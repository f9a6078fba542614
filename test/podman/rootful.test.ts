// ovlfs as containers/storage's mount_program, with the real podman, buildah and runc, as root: the
// command line storage uses (proved from the logged argv), run, exec, cp, stop/start, diff and commit
// where deleted files stay deleted (also in a directory deleted and made again), export, podman mount,
// buildah from/run/copy/commit, podman build, a 100-layer image, --uidmap (layer paths in idmapped bind
// mounts that storage detaches as soon as the mount program returns) and a mountopt with fsync=0.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { buildOvlfs, makeDeepImageArchive, makeImageTar, makeSandbox, mountsUnder, podmanSkipReason, unmountAll, type Run, type Sandbox } from './harness.js';

const reason = podmanSkipReason();
if (reason) process.stdout.write(`# skipping podman tests: ${reason}\n`);

function ok(r: Run, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

describe('podman and buildah with ovlfs as mount_program (rootful)', { skip: reason, timeout: 600_000 }, () => {
  let base = '';
  let s: Sandbox;
  let ovlfs = '';
  let tar = '';

  before(() => {
    base = mkdtempSync(join(tmpdir(), 'ovlfs-podman-'));
    // ovlfs.sh, as the README configures it: one Node start-up before the mount answers.
    ovlfs = join(dirname(buildOvlfs(join(base, 'build'))), 'ovlfs.sh');
    tar = makeImageTar(base);
    s = makeSandbox(join(base, 'root'), { mountProgram: ovlfs });
    ok(s.podman(['import', tar, 'localhost/bb']), 'podman import');
  });

  after(() => {
    if (base === '') return;
    for (const sb of [s]) {
      if (!sb) continue;
      sb.podman(['rm', '-a', '-f', '-t', '0']);
      sb.buildah(['rm', '-a']);
      sb.podman(['unmount', '-a', '-f']);
    }
    unmountAll(base);
    rmSync(base, { recursive: true, force: true });
  });

  test('run: the mount is made with the command line containers/storage uses', () => {
    assert.equal(ok(s.podman(['run', '--rm', 'localhost/bb', 'sh', '-c', 'echo hi > /x && cat /x /data/keep']), 'podman run'), 'hi\nkeep\n');
    const call = s.calls().find((c) => c.includes('upperdir='));
    assert.match(call ?? '', /^-o lowerdir=[^,]+,upperdir=[^,]+,workdir=[^,]+(,.*)? \/\S+\/merged$/, `the logged call: ${call}`);
  });

  test('exec, cp, stop and start', () => {
    ok(s.podman(['run', '-d', '--name', 'c1', 'localhost/bb', 'sleep', '1000']), 'podman run -d');
    ok(s.podman(['exec', 'c1', 'sh', '-c', 'echo from-exec > /a']), 'podman exec');
    const out = join(base, 'a.out');
    ok(s.podman(['cp', 'c1:/a', out]), 'podman cp out');
    assert.equal(readFileSync(out, 'utf8'), 'from-exec\n');
    writeFileSync(join(base, 'in'), 'copied-in\n');
    ok(s.podman(['cp', join(base, 'in'), 'c1:/b']), 'podman cp in');
    assert.equal(ok(s.podman(['exec', 'c1', 'cat', '/b']), 'exec cat'), 'copied-in\n');
    ok(s.podman(['stop', '-t', '0', 'c1']), 'podman stop');
    ok(s.podman(['start', 'c1']), 'podman start');
    assert.equal(ok(s.podman(['exec', 'c1', 'cat', '/a', '/b']), 'exec after restart'), 'from-exec\ncopied-in\n');
  });

  test('diff and commit keep deletions, also in a directory deleted and made again', () => {
    ok(s.podman(['exec', 'c1', 'sh', '-c', 'rm /data/gone && rm -r /dir1 && mkdir /dir1 && echo c > /dir1/c']), 'changes');
    const diff = ok(s.podman(['diff', 'c1']), 'podman diff');
    assert.match(diff, /^D \/data\/gone$/m, diff);
    assert.match(diff, /^A \/a$/m, diff);
    ok(s.podman(['commit', 'c1', 'localhost/bb2']), 'podman commit');
    const seen = ok(s.podman(['run', '--rm', 'localhost/bb2', 'sh', '-c', 'ls /data; echo ---; ls -R /dir1; echo ---; cat /a']), 'run the commit');
    assert.equal(seen, 'blob\nkeep\n---\n/dir1:\nc\n---\nfrom-exec\n');
  });

  test('export and podman mount', () => {
    const out = join(base, 'c1.tar');
    ok(s.podman(['export', '-o', out, 'c1']), 'podman export');
    const list = spawnSync('tar', ['-tf', out], { encoding: 'utf8' }).stdout.split('\n');
    assert.ok(list.includes('a') || list.includes('./a'), 'exported /a');
    assert.ok(!list.some((l) => /data\/gone$/.test(l)), 'a deleted file is not exported');
    assert.ok(!list.some((l) => /dir1\/sub/.test(l)), 'the old contents of a re-made directory are not exported');
    ok(s.podman(['stop', '-t', '0', 'c1']), 'stop');
    const mnt = ok(s.podman(['mount', 'c1']), 'podman mount').trim();
    assert.equal(readFileSync(join(mnt, 'a'), 'utf8'), 'from-exec\n');
    ok(s.podman(['unmount', 'c1']), 'podman unmount');
    assert.ok(!mountsUnder(base).includes(mnt), 'unmounted');
  });

  test('buildah from, run, copy, commit', () => {
    const ctr = ok(s.buildah(['from', '--pull-never', 'localhost/bb']), 'buildah from').trim();
    ok(s.buildah(['run', ctr, '--', 'sh', '-c', 'echo built > /built && rm /data/gone']), 'buildah run');
    writeFileSync(join(base, 'copied'), 'buildah-copy\n');
    ok(s.buildah(['copy', ctr, join(base, 'copied'), '/copied']), 'buildah copy');
    ok(s.buildah(['commit', ctr, 'localhost/bb3']), 'buildah commit');
    ok(s.buildah(['rm', ctr]), 'buildah rm');
    assert.equal(ok(s.podman(['run', '--rm', 'localhost/bb3', 'sh', '-c', 'cat /built /copied; ls /data']), 'run it'), 'built\nbuildah-copy\nblob\nkeep\n');
  });

  test('podman build', () => {
    const ctx = join(base, 'ctx');
    spawnSync('mkdir', ['-p', ctx]);
    writeFileSync(join(ctx, 'Containerfile'), 'FROM localhost/bb\nRUN echo step1 > /s1 && rm -r /dir1\nCOPY file /file\nRUN cat /s1 /file > /both\n');
    writeFileSync(join(ctx, 'file'), 'ctx-file\n');
    ok(s.podman(['build', '--pull=never', '-t', 'localhost/built', ctx], { timeout: 300_000 }), 'podman build');
    assert.equal(ok(s.podman(['run', '--rm', 'localhost/built', 'sh', '-c', 'cat /both; ls / | grep -c dir1; true']), 'run the build').trim(), 'step1\nctx-file\n0');
  });

  test('a 100-layer image', () => {
    ok(s.podman(['load', '-i', makeDeepImageArchive(base, tar, 100, 'localhost/deep:latest')], { timeout: 300_000 }), 'podman load');
    const layers = ok(s.podman(['image', 'inspect', '--format', '{{len .RootFS.Layers}}', 'localhost/deep']), 'inspect').trim();
    assert.equal(layers, '101');
    assert.equal(ok(s.podman(['run', '--rm', 'localhost/deep', 'sh', '-c', 'ls /layers | wc -l; cat /layers/f0 /layers/f99; ls /data']), 'run 100 layers').trim(), '100\n0\n99\nblob\ngone\nkeep');
    const call = s.calls().filter((c) => c.includes('upperdir=')).at(-1) ?? '';
    const lower = /lowerdir=([^,]*)/.exec(call)?.[1] ?? '';
    assert.equal(lower.split(':').length, 101, `the mount of the last run: ${call}`);
  });

  test('--uidmap: owners shifted both ways, layer paths detached right after the mount', () => {
    const out = ok(
      s.podman(['run', '--rm', '--uidmap', '0:100000:65536', '--gidmap', '0:100000:65536', 'localhost/bb', 'sh', '-c', 'id -u; stat -c %u:%g /data/keep; echo x > /new; stat -c %u:%g /new; chown 5:6 /new; stat -c %u:%g /new; ls /data']),
      'podman run --uidmap',
    );
    assert.equal(out, '0\n0:0\n0:0\n5:6\nblob\ngone\nkeep\n');
    const call = s.calls().at(-1) ?? '';
    assert.match(call, /uidmapping=:?0:100000:65536/, call);
  });

  test('a mountopt with fsync=0', () => {
    const f = makeSandbox(join(base, 'fsync0'), { mountProgram: ovlfs, mountopt: 'nodev,fsync=0' });
    try {
      ok(f.podman(['import', tar, 'localhost/bb']), 'import');
      assert.equal(ok(f.podman(['run', '--rm', 'localhost/bb', 'sh', '-c', 'echo y > /y; sync; cat /y']), 'run with fsync=0'), 'y\n');
      assert.match(f.calls().find((c) => c.includes('upperdir=')) ?? '', /fsync=0/);
    } finally {
      f.podman(['rm', '-a', '-f', '-t', '0']);
    }
  });
});
