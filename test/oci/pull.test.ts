// ovlfs pull against a real registry (docker-registry on 127.0.0.1), with images built by umoci and
// pushed by skopeo: the pulled layers, mounted by the kernel overlay and by ovlfs, show what
// `umoci unpack` of the same image shows.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { test } from 'node:test';

import { pull } from '../../src/oci/pull.js';
import { hostArchitecture, MediaType } from '../../src/oci/media-types.js';
import { cannotMountOverlay, isRoot, withKernelOverlay } from './layer-fixtures.js';
import { missingTools, noStaticBusybox, ovlfs, registryWithReference, sh, skopeoCopy, umociUnpack, view, zstdVariant } from './registry-fixture.js';

const skip = !isRoot ? 'needs root (umoci unpack keeps owners, the kernel overlay mounts)' : missingTools('docker-registry', 'skopeo', 'umoci', 'setfattr') ?? noStaticBusybox() ?? cannotMountOverlay();

/** The merged view of `lowerdirs` (top-most first), as the kernel overlay shows it. */
async function kernelView(lowerdirs: string[], mnt: string): Promise<string[]> {
  const layers = lowerdirs.length === 1 ? [lowerdirs[0]!, lowerdirs[0]!] : lowerdirs;
  return withKernelOverlay(`lowerdir=${layers.join(':')}`, mnt, () => view(mnt));
}

test('ovlfs pull', { skip }, async (t) => {
  const { dir, registry, layout } = await registryWithReference(t, 'pull');
  const expected = view(umociUnpack(layout, 'v1', path.join(dir, 'umoci-bundle')));

  await t.test('the pulled layers, mounted by the kernel overlay and by ovlfs, equal umoci unpack', async () => {
    const pulled = path.join(dir, 'pulled');
    const r = ovlfs(['pull', '--tls-verify=false', `docker://${registry.host}/ref/image:v1`, pulled]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no progress when stderr is not a terminal');
    const lowerdirs = r.stdout.trim().split(':');
    assert.equal(lowerdirs.length, 2);
    for (const d of lowerdirs) assert.ok(d.startsWith(path.join(pulled, 'layers') + '/'), d);
    assert.deepEqual(await kernelView(lowerdirs, path.join(dir, 'mnt-kernel')), expected);
    assert.ok(expected.some((l) => l.startsWith('/etc/hostname ') && l.includes('user.origin=')), 'the reference has an xattr to compare');
    assert.ok(!expected.some((l) => l.startsWith('/etc/motd.hard ') || l.startsWith('/usr/share/doc/old')), 'the reference has deletions to compare');

    // The same value mounted by ovlfs (FUSE).
    const mnt = path.join(dir, 'mnt-ovlfs');
    fs.mkdirSync(mnt);
    const m = ovlfs(['mount', '-o', `lowerdir=${r.stdout.trim()}`, mnt]);
    assert.equal(m.status, 0, m.stderr);
    try {
      assert.deepEqual(view(mnt), expected);
    } finally {
      ovlfs(['umount', mnt]);
    }
    // The layout is one skopeo reads back.
    sh('skopeo', ['inspect', '--raw', `oci:${pulled}:v1`]);
  });

  await t.test('a second pull reuses the blobs and unpacked layers it has', async () => {
    const target = path.join(dir, 'pulled');
    const before = fs.readdirSync(path.join(target, 'layers')).map((n) => fs.statSync(path.join(target, 'layers', n)).ino);
    const image = await pull(`docker://${registry.host}/ref/image:v1`, target, { tlsVerify: false });
    const after = image.lowerdirs.map((d) => fs.statSync(d).ino);
    assert.deepEqual(after.sort(), before.sort());
  });

  await t.test('zstd layers, and the linux/amd64 image of an index', { skip: missingTools('zstd') }, async () => {
    // An index whose other platform is another image: only the right one may be pulled.
    sh('umoci', ['new', '--image', `${layout}:other`]);
    const otherBundle = path.join(dir, 'other-bundle');
    sh('umoci', ['unpack', '--image', `${layout}:other`, otherBundle]);
    fs.writeFileSync(path.join(otherBundle, 'rootfs', 'wrong-platform'), 'x');
    sh('umoci', ['repack', '--image', `${layout}:other`, otherBundle]);
    const zstd = zstdVariant(layout, 'v1', 'v1-zstd');
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number; annotations: Record<string, string> }[] };
    const byTag = (tag: string) => index.manifests.find((m) => m.annotations['org.opencontainers.image.ref.name'] === tag)!;
    const arch = hostArchitecture();
    const list = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { mediaType: MediaType.ociManifest, digest: byTag('other').digest, size: byTag('other').size, platform: { os: 'linux', architecture: arch === 'arm64' ? 'amd64' : 'arm64' } },
        { mediaType: MediaType.ociManifest, digest: zstd.digest, size: zstd.size, platform: { os: 'linux', architecture: arch } },
      ],
    }));
    const { createHash } = await import('node:crypto');
    const hex = createHash('sha256').update(list).digest('hex');
    fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), list);
    index.manifests.push({ mediaType: MediaType.ociIndex, digest: `sha256:${hex}`, size: list.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } } as never);
    fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
    skopeoCopy(`oci:${layout}:multi`, `docker://${registry.host}/ref/multi:zstd`, ['--all']);
    const raw = JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/ref/multi:zstd`])) as { mediaType: string };
    assert.equal(raw.mediaType, MediaType.ociIndex);

    const image = await pull(`docker://${registry.host}/ref/multi:zstd`, path.join(dir, 'pulled-zstd'), { tlsVerify: false });
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'pulled-zstd', 'blobs', 'sha256', image.manifest.digest.slice(7)), 'utf8')) as { layers: { mediaType: string }[] };
    assert.ok(manifest.layers.every((l) => l.mediaType === MediaType.ociLayerZstd), 'skopeo pushed zstd layers');
    assert.deepEqual(await kernelView(image.lowerdirs, path.join(dir, 'mnt-zstd')), expected);
  });

  await t.test('oci: and oci-archive: sources', async () => {
    const archive = path.join(dir, 'image.tar');
    skopeoCopy(`oci:${layout}:v1`, `oci-archive:${archive}:v1`);
    const fromArchive = await pull(`oci-archive:${archive}:v1`, path.join(dir, 'pulled-archive'));
    const fromLayout = await pull(`oci:${layout}:v1`, path.join(dir, 'pulled-layout'));
    assert.deepEqual(await kernelView(fromArchive.lowerdirs, path.join(dir, 'mnt-archive')), expected);
    assert.deepEqual(fromLayout.lowerdirs.map((d) => path.basename(d)), fromArchive.lowerdirs.map((d) => path.basename(d)));
  });

  await t.test('a connection that breaks mid-blob is resumed with a Range request', async () => {
    // A proxy that cuts the first answer for each blob after half of it.
    const ranges: string[] = [];
    const cut = new Set<string>();
    const proxy = http.createServer((req, res) => {
      if (req.headers.range !== undefined) ranges.push(req.headers.range);
      const upstream = http.request({ host: '127.0.0.1', port: Number(registry.host.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode!, up.headers);
        const isBlob = /\/blobs\/sha256:/.test(req.url!) && req.method === 'GET' && up.statusCode === 200;
        const size = Number(up.headers['content-length']);
        if (!isBlob || cut.has(req.url!) || size < 10_000) return void up.pipe(res);
        cut.add(req.url!);
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= size / 2) return;
          const part = chunk.subarray(0, Math.max(0, Math.floor(size / 2) - sent));
          sent += part.length;
          res.write(part);
          if (sent >= size / 2) setTimeout(() => res.destroy(), 20);
        });
      });
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    t.after(() => proxy.close());
    const port = (proxy.address() as { port: number }).port;
    const image = await pull(`docker://127.0.0.1:${port}/ref/image:v1`, path.join(dir, 'pulled-resumed'), { tlsVerify: false, stallTimeout: 2000 });
    assert.ok(cut.size >= 1, 'the proxy cut a blob');
    assert.ok(ranges.length >= cut.size && ranges.every((r) => /^bytes=\d+-$/.test(r) && r !== 'bytes=0-'), `ranges: ${ranges.join(', ')}`);
    assert.deepEqual(await kernelView(image.lowerdirs, path.join(dir, 'mnt-resumed')), expected);
  });
});
