// ovlfs commit and ovlfs run against a real registry: a commit pushed by ovlfs, pulled back by skopeo
// and unpacked by umoci, shows the change, deletions included; ovlfs run returns its command's status
// and leaves the image as it was.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { commit } from '../../src/oci/commit.js';
import { pull } from '../../src/oci/pull.js';
import { run } from '../../src/oci/run.js';
import { cannotMountOverlay, isRoot, snapshot, withKernelOverlay } from './layer-fixtures.js';
import { CLI, missingTools, noStaticBusybox, ovlfs, registryWithReference, sh, skopeoCopy, umociUnpack, view } from './registry-fixture.js';

const skip = !isRoot ? 'needs root (umoci unpack keeps owners, the kernel overlay mounts)' : missingTools('docker-registry', 'skopeo', 'umoci', 'setfattr', 'unshare') ?? noStaticBusybox() ?? cannotMountOverlay();

test('ovlfs commit and ovlfs run', { skip }, async (t) => {
  const { dir, registry, layout } = await registryWithReference(t, 'commit');
  const image = path.join(dir, 'image');
  const pulled = await pull(`docker://${registry.host}/ref/image:v1`, image, { tlsVerify: false });
  const pristine = snapshot(image);

  // An upper layer made by the kernel overlay: additions, a change, deletions of a lower file and
  // a lower directory, and a lower directory replaced by a new one (opaque).
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  fs.mkdirSync(upper);
  fs.mkdirSync(work);
  const rw = `lowerdir=${pulled.lowerdirs.join(':')},upperdir=${upper},workdir=${work}`;
  await withKernelOverlay(rw, path.join(dir, 'mnt-rw'), () => {
    const m = path.join(dir, 'mnt-rw');
    fs.writeFileSync(path.join(m, 'etc/new-file'), 'made in the upper layer\n');
    fs.appendFileSync(path.join(m, 'etc/hostname'), 'appended\n');
    fs.rmSync(path.join(m, 'etc/motd'));
    fs.rmSync(path.join(m, 'usr/share/doc/new'), { recursive: true });
    fs.rmSync(path.join(m, 'opt'), { recursive: true });
    fs.mkdirSync(path.join(m, 'opt'));
    fs.writeFileSync(path.join(m, 'opt/only-new'), 'new\n');
    fs.chmodSync(path.join(m, 'srv/secret'), 0o640);
    fs.writeFileSync(path.join(m, 'var/random.bin'), randomBytes(8192));
  });
  const expected = await withKernelOverlay(`lowerdir=${upper}:${pulled.lowerdirs.join(':')}`, path.join(dir, 'mnt-ro'), () => view(path.join(dir, 'mnt-ro')));

  await t.test('ovlfs diff lists the changes', () => {
    const r = ovlfs(['diff', '--image', image, upper]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    for (const line of ['A /etc/new-file', 'C /etc/hostname', 'D /etc/motd', 'D /usr/share/doc/new', 'C /opt', 'A /opt/only-new', 'C /srv/secret']) assert.ok(lines.includes(line), `${line} in:\n${r.stdout}`);
    const paths = lines.map((l) => l.slice(2));
    assert.deepEqual(paths, [...paths].sort(), 'sorted by path');
  });

  await t.test('a commit pushed by ovlfs, pulled back by skopeo and unpacked by umoci, shows the change', () => {
    const dest = `docker://${registry.host}/ref/committed:v2`;
    const r = ovlfs(['commit', '--tls-verify=false', '--from', image, upper, dest]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const back = path.join(dir, 'back');
    skopeoCopy(dest, `oci:${back}:v2`);
    const rootfs = umociUnpack(back, 'v2', path.join(dir, 'back-bundle'));
    const got = view(rootfs);
    assert.deepEqual(got, expected);
    assert.ok(!got.some((l) => l.startsWith('/etc/motd ') || l.startsWith('/usr/share/doc/new') || l.startsWith(`/opt/long-name`)), 'deletions reached umoci');
    const history = JSON.parse(sh('skopeo', ['inspect', '--config', `oci:${back}:v2`])) as { history: { created_by?: string }[]; rootfs: { diff_ids: string[] } };
    assert.equal(history.rootfs.diff_ids.length, 3);
    assert.equal(history.history.at(-1)?.created_by, 'ovlfs commit');
    assert.deepEqual(snapshot(image), pristine, 'commit only reads the image');
  });

  await t.test('base layers are mounted from the repository they came from; the new one goes up in chunks', async () => {
    const created = new Date('2026-01-02T03:04:05Z');
    const result = await commit(image, upper, `docker://${registry.host}/elsewhere/repo:v3`, { tlsVerify: false, chunkSize: 512, created });
    const baseLayers = Object.entries(result.blobs).filter(([, how]) => how === 'mounted').map(([digest]) => digest);
    assert.equal(baseLayers.length, pulled.lowerdirs.length, JSON.stringify(result.blobs));
    assert.equal(result.blobs[result.layer.digest], 'uploaded');
    assert.ok(result.layer.size > 2 * 512, 'the layer took several chunks');
    // The registry checked the chunks against the digest; skopeo reads the image back.
    const back = path.join(dir, 'elsewhere-back');
    skopeoCopy(`docker://${registry.host}/elsewhere/repo:v3`, `oci:${back}:v3`);
    assert.deepEqual(view(umociUnpack(back, 'v3', path.join(dir, 'elsewhere-bundle'))), expected);
    // The same commit again (at the same time): the layer tar is deterministic, so every blob is there already.
    const again = await commit(image, upper, `docker://${registry.host}/elsewhere/repo:v3`, { tlsVerify: false, created });
    assert.equal(again.layer.digest, result.layer.digest);
    assert.deepEqual(new Set(Object.values(again.blobs)), new Set(['present']));
  });

  await t.test('ovlfs run: the command\'s status, its changes on stderr, and the image untouched', async () => {
    const keep = path.join(dir, 'kept-upper');
    const r = ovlfs(['run', '--image', image, '--keep', keep, '--', '/bin/sh', '-c', 'echo hi > /etc/ran; rm /etc/hostname; test -d /proc/self; exit 7']);
    assert.equal(r.status, 7, r.stderr);
    assert.match(r.stderr, /^A \/etc\/ran$/m);
    assert.match(r.stderr, /^D \/etc\/hostname$/m);
    assert.equal(fs.readFileSync(path.join(keep, 'etc/ran'), 'utf8'), 'hi\n');
    assert.deepEqual(snapshot(image), pristine, 'the image is unchanged');
    // The library form: a throwaway upper, so the previous run left nothing.
    const again = await run(['/bin/sh', '-c', 'test "$(cat /etc/hostname)" = changed && test ! -e /etc/ran && exit 3'], { image });
    try {
      assert.equal(again.status, 3);
      assert.deepEqual(again.changes, []);
    } finally {
      again.cleanup();
    }
    assert.ok(!fs.existsSync(again.upper), 'the throwaway upper is gone');
    assert.deepEqual(snapshot(image), pristine, 'the image is unchanged');
  });

  await t.test('ovlfs run without privilege (root in a user namespace): a user namespace of its own, userxattr', (tt) => {
    const r = spawnSync('unshare', ['--user', '--map-root-user', process.execPath, '--import', 'tsx', CLI, 'run', '--image', image, '--', '/bin/sh', '-c', 'echo x > /etc/y; exit 5'], { encoding: 'utf8' });
    if (r.status !== 5 && /^unshare:/m.test(r.stderr)) return tt.skip(`no user namespaces here: ${r.stderr.trim()}`);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr, /^A \/etc\/y$/m);
    assert.deepEqual(snapshot(image), pristine, 'the image is unchanged');
  });

  await t.test('ovlfs run --commit pushes what the command changed', () => {
    const dest = `docker://${registry.host}/ref/ran:v1`;
    const r = ovlfs(['run', '--tls-verify=false', '--image', image, '--commit', dest, '--', '/bin/sh', '-c', 'mkdir /made && echo x > /made/file && rm -r /usr/share/doc']);
    assert.equal(r.status, 0, r.stderr);
    const back = path.join(dir, 'ran-back');
    skopeoCopy(dest, `oci:${back}:v1`);
    const rootfs = umociUnpack(back, 'v1', path.join(dir, 'ran-bundle'));
    assert.equal(fs.readFileSync(path.join(rootfs, 'made/file'), 'utf8'), 'x\n');
    assert.ok(!fs.existsSync(path.join(rootfs, 'usr/share/doc')));
    assert.deepEqual(snapshot(image), pristine, 'the image is unchanged');
  });
});
