// Hostile images: ovlfs pull refuses them with an error that names the blob or the entry, and
// writes nothing outside its DIR (nor leaves a half-unpacked layer in it). Blobs are corrupted in a
// real registry's storage, the rest is crafted as OCI layouts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { pull } from '../../src/oci/pull.js';
import { isRoot, listing, scratch, tarOf } from './layer-fixtures.js';
import { CLI, craftImage, missingTools, skopeoCopy, startRegistry } from './registry-fixture.js';

/** Pulls `src` into `dir/pulled`; asserts it is refused with `code` and a message naming `names`, and that nothing else changed. */
async function refused(dir: string, src: string, code: string, names: (string | RegExp)[], options: Parameters<typeof pull>[2] = {}): Promise<void> {
  const target = path.join(dir, 'pulled');
  // Everything in the test's temp dir but DIR itself (whose parent's mtime changes when DIR is made).
  const outsideOf = (): string[] => listing(path.dirname(dir)).split('\n').filter((l) => !l.startsWith(target) && !l.startsWith(`${dir} `));
  const outside = outsideOf();
  await assert.rejects(pull(src, target, options), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, code, e.message);
    for (const name of names) assert.match(e.message, typeof name === 'string' ? new RegExp(name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : name);
    return true;
  });
  if (fs.existsSync(path.join(target, 'layers'))) assert.deepEqual(fs.readdirSync(path.join(target, 'layers')), [], 'no layer, not even a partial one');
  if (fs.existsSync(path.join(target, 'blobs', 'sha256'))) assert.ok(!fs.readdirSync(path.join(target, 'blobs', 'sha256')).some((n) => n.includes('partial')), 'no partial blob');
  assert.deepEqual(outsideOf(), outside, 'nothing outside DIR changed');
}

const SENTINEL = 'sentinel';

test('hostile images are refused', async (t) => {
  const root = scratch(t, 'hostile');
  fs.mkdirSync(path.join(root, SENTINEL));
  fs.writeFileSync(path.join(root, SENTINEL, 'file'), 'keep\n');
  let n = 0;
  const caseDir = (): string => {
    const d = path.join(root, `case-${n++}`);
    fs.mkdirSync(d);
    return d;
  };
  const file = (name: string, data = 'x'): { name: string; data: string } => ({ name, data });

  await t.test('a blob that does not match its digest, served by a registry', { skip: missingTools('docker-registry', 'skopeo') }, async () => {
    const dir = caseDir();
    const registry = await startRegistry(t, dir);
    const image = craftImage(path.join(dir, 'layout'), [await tarOf([file('a', 'a'.repeat(5000))])]);
    skopeoCopy(`oci:${image.layout}:v1`, `docker://${registry.host}/bad/blob:v1`);
    const hex = image.layers[0]!.digest.slice(7);
    const data = path.join(registry.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const bytes = fs.readFileSync(data);
    bytes[bytes.length - 20] ^= 0xff;
    fs.writeFileSync(data, bytes);
    await refused(dir, `docker://${registry.host}/bad/blob:v1`, 'EBADMSG', [image.layers[0]!.digest, 'does not match its digest'], { tlsVerify: false });
  });

  await t.test('a manifest whose config is not an image config, served by a registry', { skip: missingTools('docker-registry', 'skopeo') }, async () => {
    const dir = caseDir();
    const registry = await startRegistry(t, dir);
    const image = craftImage(path.join(dir, 'layout'), [await tarOf([file('a')])], {
      manifest: (m) => ((m.config as { mediaType: string }).mediaType = 'application/vnd.example.not-an-image+json'),
    });
    skopeoCopy(`oci:${image.layout}:v1`, `docker://${registry.host}/bad/type:v1`);
    await refused(dir, `docker://${registry.host}/bad/type:v1`, 'EBADMSG', ['application/vnd.example.not-an-image+json', 'not an image config'], { tlsVerify: false });
  });

  await t.test('manifests of the wrong media type', async () => {
    let dir = caseDir();
    let image = craftImage(path.join(dir, 'layout'), [await tarOf([file('a')])], {
      manifestType: 'application/vnd.docker.distribution.manifest.v1+json',
      manifest: (m) => delete m.mediaType,
    });
    await refused(dir, `oci:${image.layout}:v1`, 'EBADMSG', ['wrong media type application/vnd.docker.distribution.manifest.v1+json']);
    dir = caseDir();
    image = craftImage(path.join(dir, 'layout'), [await tarOf([file('a')])], { manifestType: 'application/vnd.oci.image.index.v1+json' });
    await refused(dir, `oci:${image.layout}:v1`, 'EBADMSG', ['media type application/vnd.oci.image.index.v1+json but the body says application/vnd.oci.image.manifest.v1+json']);
    dir = caseDir();
    image = craftImage(path.join(dir, 'layout'), [await tarOf([file('a')])], {
      manifest: (m) => ((m.layers as { mediaType: string }[])[0]!.mediaType = 'application/vnd.example.payload'),
    });
    await refused(dir, `oci:${image.layout}:v1`, 'EBADMSG', [image.layers[0]!.digest, 'not a layer tar']);
  });

  await t.test('a layer whose content is not its diff id', async () => {
    const dir = caseDir();
    const image = craftImage(path.join(dir, 'layout'), [await tarOf([file('a')])], {
      config: (c) => ((c.rootfs as { diff_ids: string[] }).diff_ids = [`sha256:${'0'.repeat(64)}`]),
    });
    await refused(dir, `oci:${image.layout}:v1`, 'EBADMSG', [image.layers[0]!.digest, `sha256:${'0'.repeat(64)}`]);
  });

  await t.test('tar entries with .., through a symlink made earlier, and hard links out of the layer', async () => {
    const cases: [string, Parameters<typeof tarOf>[0], string][] = [
      ['..', [file(`../${SENTINEL}/file`, 'owned')], `../${SENTINEL}/file`],
      ['through a symlink', [{ name: 'link', type: 'symlink', linkname: `../../${SENTINEL}` }, file('link/file', 'owned')], 'link/file'],
      ['hard link outside', [{ name: 'hard', type: 'link', linkname: `../${SENTINEL}/file` }], 'hard'],
      ['absolute hard link target', [{ name: 'hard', type: 'link', linkname: '/etc/passwd' }], 'hard'],
    ];
    for (const [, entries, entry] of cases) {
      const dir = caseDir();
      const image = craftImage(path.join(dir, 'layout'), [await tarOf(entries)]);
      const target = path.join(dir, 'pulled');
      await assert.rejects(pull(`oci:${image.layout}:v1`, target), (e: Error) => {
        assert.ok(e.message.includes(entry), `${e.message} names ${entry}`);
        return true;
      });
      assert.deepEqual(fs.readdirSync(path.join(target, 'layers')), []);
      assert.equal(fs.readFileSync(path.join(root, SENTINEL, 'file'), 'utf8'), 'keep\n');
      assert.deepEqual(fs.readdirSync(path.join(root, SENTINEL)), ['file']);
    }
  });

  await t.test('a decompression bomb past --max-layer-size', async () => {
    const dir = caseDir();
    const image = craftImage(path.join(dir, 'layout'), [await tarOf([{ name: 'zeros', data: Buffer.alloc(8 << 20) }])]);
    assert.ok(image.layers[0]!.size < 100_000, 'a small blob');
    const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'pull', '--max-layer-size', '1M', `oci:${image.layout}:v1`, path.join(dir, 'pulled')], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    // Refused by the entry's size in its header, or by the inflated bytes, whichever comes first.
    assert.match(r.stderr, /EFBIG: .*limit of 1048576 bytes.*('zeros'|sha256:)/);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'pulled', 'layers')), []);
  });

  await t.test('an index without this platform', async () => {
    const dir = caseDir();
    const image = craftImage(path.join(dir, 'layout'), [await tarOf([file('a')])]);
    const list = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...image.manifest, platform: { os: 'plan9', architecture: 'mips' } }] });
    const { createHash } = await import('node:crypto');
    const hex = createHash('sha256').update(list).digest('hex');
    fs.writeFileSync(path.join(image.layout, 'blobs', 'sha256', hex), list);
    fs.writeFileSync(path.join(image.layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${hex}`, size: list.length, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
    await refused(dir, `oci:${image.layout}:v1`, 'ENOENT', ['plan9/mips']);
  });

  await t.test('device files without privilege (in a user namespace)', { skip: !isRoot ? 'needs root to make the user namespace' : missingTools('unshare') }, async () => {
    const dir = caseDir();
    const image = craftImage(path.join(dir, 'layout'), [await tarOf([{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }])]);
    const r = spawnSync('unshare', ['--user', '--map-root-user', process.execPath, '--import', 'tsx', CLI, 'pull', `oci:${image.layout}:v1`, path.join(dir, 'pulled')], { encoding: 'utf8' });
    if (r.status !== 1 && /unshare failed|Operation not permitted/.test(r.stderr)) return t.skip(`no user namespaces here: ${r.stderr.trim()}`);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /'null'|null/);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'pulled', 'layers')), []);
  });
});
