// packUpper: an upper layer as an OCI layer tar. The kernel is the oracle: it writes the upper layer
// (whiteouts, opaque and renamed directories, metacopy files), and the tar, unpacked and mounted
// over the same lower layer, must show exactly what the kernel's own mount showed. Then: round
// trips, byte-identical output, and tars that tar(1) and tar-stream read back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as tarStream from 'tar-stream';
import { DirLayer } from '../../src/layer/dir-layer.js';
import { packUpper } from '../../src/oci/layer-pack.js';
import { unpackLayer } from '../../src/oci/layer-unpack.js';
import {
  cannotMountOverlay, collect, gnuTar, isRoot, kernelChangedUpper, LONG_NAME, mkdirs, scratch, snapshot, streamOf, tarOf,
  withKernelOverlay,
} from './layer-fixtures.js';

const TRUSTED = 'trusted.overlay.';
const USER = 'user.overlay.';
const PREFIX = isRoot ? TRUSTED : USER;
const UMOCI = '/usr/bin/umoci';

async function pack(upper: string, lowerdirs?: string[], xattrPrefix = PREFIX): Promise<Buffer> {
  return collect(packUpper(upper, { xattrPrefix, lowerdirs }));
}

/** The entries of a tar as tar-stream reads them: names in order, with what matters of each. */
async function entriesOf(bytes: Buffer): Promise<Array<{ name: string; type: string; linkname: string | null; size: number; pax: unknown }>> {
  const extract = tarStream.extract();
  const out: Array<{ name: string; type: string; linkname: string | null; size: number; pax: unknown }> = [];
  const done = (async () => {
    for await (const entry of extract) {
      const { name, type, linkname, size, pax } = entry.header;
      out.push({ name, type, linkname, size, pax });
      entry.resume();
    }
  })();
  extract.end(bytes);
  await done;
  return out;
}

test('an upper layer the kernel wrote', async (t) => {
  const why = cannotMountOverlay();
  if (why !== undefined) return t.skip(why);
  const base = scratch(t, 'pack-kernel');
  const { lower, upper, merged } = await kernelChangedUpper(base);
  const bytes = await pack(upper, [lower], TRUSTED);
  const entries = await entriesOf(bytes);

  await t.test('packed, unpacked and mounted over the same lower layer, shows what the kernel showed through it', async () => {
    mkdirs(`${base}/layer`);
    await unpackLayer(streamOf(bytes), `${base}/layer`, { xattrPrefix: TRUSTED, privileged: true });
    const seen = await withKernelOverlay(`lowerdir=${base}/layer:${lower}`, `${base}/mnt2`, () => snapshot(`${base}/mnt2`));
    // The root's mtime is the upper root's, which a layer tar does not carry.
    assert.deepEqual(seen.slice(1), merged.slice(1));
  });

  await t.test('a renamed directory is written whole under its new name; whiteouts only where they hide something', () => {
    const names = entries.map((e) => e.name);
    assert.ok(names.includes('moved/sub/f') && names.includes('moved/added') && !names.includes('moved/g'), names.join('\n'));
    for (const name of ['.wh.del.txt', '.wh.deldir', '.wh.ren', 'nested/deep/.wh.file2', 'opq/.wh..wh..opq']) assert.ok(names.includes(name), name);
    // The whiteout the kernel left inside the directory it then moved hides nothing there.
    assert.ok(!names.includes('moved/.wh.g'), 'a whiteout inside a directory written whole');
    assert.ok(!names.some((n) => n.startsWith('deldir/')), 'nothing below a deleted directory');
    assert.ok(names.includes(LONG_NAME));
  });

  await t.test('metacopy files carry the data of the lower file they point to; overlay xattrs stay out', async () => {
    const byName = new Map(entries.map((e) => [e.name, e]));
    assert.equal(byName.get('chmod.txt')?.size, 'data stays below'.length);
    assert.equal(byName.get('movedfile')?.size, 'moved by metacopy'.length);
    // The kernel made keep.txt a metacopy file when it was linked; the name that sorts first carries
    // the data, the other links to it.
    assert.equal(byName.get('keep-link')?.type, 'file');
    assert.equal(byName.get('keep-link')?.size, 'keep'.length);
    assert.equal(byName.get('keep.txt')?.type, 'link');
    assert.equal(byName.get('keep.txt')?.linkname, 'keep-link');
    for (const entry of entries) assert.doesNotMatch(JSON.stringify(entry.pax ?? {}), /overlay\./, entry.name);
    // Without the lower layers, a metacopy file cannot be packed, and the error says why.
    await assert.rejects(pack(upper, undefined, TRUSTED), /lower layers \(lowerdirs\) are needed/);
  });

  await t.test('umoci, given the packed layer over the lower one, unpacks the tree the kernel showed', (t2) => {
    if (!fs.existsSync(UMOCI)) return t2.skip('umoci is not installed');
    fs.writeFileSync(`${base}/lower.tar`, gnuTar(lower));
    fs.writeFileSync(`${base}/upper.tar`, bytes);
    const umoci = (...args: string[]): void => {
      const r = spawnSync(UMOCI, args, { cwd: base, encoding: 'utf8' });
      assert.equal(r.status, 0, `umoci ${args.join(' ')}: ${r.stderr}`);
    };
    umoci('init', '--layout', 'img');
    umoci('new', '--image', 'img:base');
    umoci('raw', 'add-layer', '--image', 'img:base', '--tag', 'lower', 'lower.tar');
    umoci('raw', 'add-layer', '--image', 'img:lower', '--tag', 'changed', 'upper.tar');
    umoci('raw', 'unpack', '--image', 'img:changed', 'rootfs');
    assert.deepEqual(snapshot(`${base}/rootfs`).slice(1), merged.slice(1));
  });
});

test('unpack, pack, unpack gives the same tree; packing twice gives the same bytes', async (t) => {
  const base = scratch(t, 'roundtrip');
  const src = `${base}/src`;
  mkdirs(`${src}/dir/sub`, `${src}/opaque`);
  fs.writeFileSync(`${src}/dir/file`, 'hello\n');
  fs.writeFileSync(`${src}/${LONG_NAME}`, 'long\n');
  fs.writeFileSync(`${src}/ünïcödé`, 'x');
  fs.linkSync(`${src}/dir/file`, `${src}/dir/sub/link`);
  fs.symlinkSync('../file', `${src}/dir/sub/sym`);
  fs.writeFileSync(`${src}/big`, Buffer.alloc(1024 * 1024 + 7, 0x61));
  spawnSync('mkfifo', [`${src}/fifo`]);
  spawnSync('setfattr', ['-n', 'user.bin', '-v', '0x00ff80', `${src}/dir/file`]);
  if (isRoot) {
    spawnSync('mknod', [`${src}/tty`, 'c', '5', '0']);
    spawnSync('mknod', [`${src}/disk`, 'b', '259', '70000']);
    fs.chownSync(`${src}/dir/file`, 4242, 3_000_000);
  }
  fs.chmodSync(`${src}/dir/sub`, 0o2750);
  fs.utimesSync(`${src}/dir/file`, 1_600_000_000, 1_600_000_000.987654);
  fs.utimesSync(`${src}/dir/sub`, 1_300_000_000, 1_300_000_000);
  const layer = Buffer.concat([gnuTar(src).subarray(0, -1024), await tarOf([
    { name: '.wh.gone', data: '' }, { name: 'opaque/.wh..wh..opq', data: '' },
  ])]);
  mkdirs(`${base}/one`, `${base}/two`);
  await unpackLayer(streamOf(layer), `${base}/one`, { xattrPrefix: PREFIX, privileged: isRoot });
  const packed = await pack(`${base}/one`);
  await unpackLayer(streamOf(packed, 4096 + 17), `${base}/two`, { xattrPrefix: PREFIX, privileged: isRoot });
  // The root is not in a layer tar, and a whiteout has no metadata of its own.
  const strip = (lines: string[]): string[] => lines.slice(1).map((l) => (l.startsWith('/gone char') ? '/gone char' : l));
  assert.deepEqual(strip(snapshot(`${base}/two`)), strip(snapshot(`${base}/one`)));
  assert.ok(Buffer.compare(await pack(`${base}/two`), packed) === 0, 'the same layer packs to the same bytes');
  assert.ok(Buffer.compare(await pack(`${base}/one`), packed) === 0, 'packing twice gives the same bytes');
});

test('the tar is sorted, readable by tar(1), with numeric ids and no names, atimes or ctimes', async (t) => {
  const base = scratch(t, 'format');
  const upper = `${base}/upper`;
  mkdirs(`${upper}/a/b`, `${upper}/a-b`, `${upper}/a.b`);
  fs.writeFileSync(`${upper}/a/b/c`, 'c');
  fs.writeFileSync(`${upper}/a-b/x`, 'x');
  fs.writeFileSync(`${upper}/${LONG_NAME}`, 'long');
  spawnSync('setfattr', ['-n', 'user.k', '-v', 'v', `${upper}/a/b/c`]);
  spawnSync('setfattr', ['-n', `${PREFIX}opaque`, '-v', 'y', `${upper}/a`]);
  if (isRoot) fs.chownSync(`${upper}/a/b/c`, 1000, 1000);
  const bytes = await pack(upper);
  const entries = await entriesOf(bytes);
  // Byte order of the paths ('-' and '.' before '/'), an opaque marker first among its directory's children.
  assert.deepEqual(entries.map((e) => e.name), ['a/', 'a-b/', 'a-b/x', 'a.b/', 'a/.wh..wh..opq', 'a/b/', 'a/b/c', LONG_NAME]);
  const listing = spawnSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-tvf', '-'], { input: bytes, encoding: 'utf8' });
  assert.equal(listing.status, 0, listing.stderr);
  assert.match(listing.stdout, new RegExp(`${isRoot ? '1000/1000' : ''}.* a/b/c\\n`));
  assert.ok(listing.stdout.includes(LONG_NAME));
  // uname and gname are empty, and pax carries no atime or ctime.
  for (let offset = 0; offset + 512 <= bytes.length; offset += 512) {
    const block = bytes.subarray(offset, offset + 512);
    if (block.toString('latin1', 257, 262) !== 'ustar') continue;
    assert.ok(block.subarray(265, 329).every((b) => b === 0), `uname/gname at ${offset}`);
  }
  assert.ok(!bytes.includes('atime=') && !bytes.includes('ctime='));
  // tar(1) extracts it, xattrs included.
  mkdirs(`${base}/x`);
  const x = spawnSync('tar', ['--xattrs', '--xattrs-include=user.*', '-C', `${base}/x`, '-xf', '-'], { input: bytes });
  assert.equal(x.status, 0, x.stderr.toString());
  assert.equal(spawnSync('getfattr', ['--only-values', '-n', 'user.k', `${base}/x/a/b/c`], { encoding: 'utf8' }).stdout, 'v');
});

test('whiteouts that hide nothing in the lower layers are left out', async (t) => {
  const base = scratch(t, 'useless');
  mkdirs(`${base}/lower/there`, `${base}/upper`);
  const layer = await tarOf([{ name: '.wh.there', data: '' }, { name: '.wh.never-was', data: '' }]);
  await unpackLayer(streamOf(layer), `${base}/upper`, { xattrPrefix: PREFIX, privileged: false });
  assert.deepEqual((await entriesOf(await pack(`${base}/upper`, [`${base}/lower`]))).map((e) => e.name), ['.wh.there']);
  assert.deepEqual((await entriesOf(await pack(`${base}/upper`))).map((e) => e.name), ['.wh.never-was', '.wh.there']);
});

test('xattr whiteouts (where mknod of a 0/0 device is refused) pack as .wh. files too', async (t) => {
  const base = scratch(t, 'xattr-whiteouts');
  mkdirs(`${base}/upper/d`);
  const layer = new DirLayer(`${base}/upper`, { xattrPrefix: PREFIX, whiteoutFormat: 'xattr' });
  try {
    layer.whiteout('d/gone');
    layer.whiteout('top');
  } finally {
    layer.close();
  }
  assert.ok(fs.statSync(`${base}/upper/d/gone`).isFile(), 'an xattr whiteout is a regular file');
  assert.deepEqual((await entriesOf(await pack(`${base}/upper`))).map((e) => e.name), ['.wh.top', 'd/', 'd/.wh.gone']);
});

test('an upper layer the kernel wrote with userxattr packs and mounts the same way', async (t) => {
  const why = cannotMountOverlay();
  if (why !== undefined) return t.skip(why);
  const base = scratch(t, 'pack-userxattr');
  mkdirs(`${base}/lower/opq/x`, `${base}/lower/keep`, `${base}/upper`, `${base}/work`, `${base}/layer`);
  fs.writeFileSync(`${base}/lower/gone`, 'gone');
  fs.writeFileSync(`${base}/lower/keep/f`, 'f');
  const mnt = `${base}/mnt`;
  const merged = await withKernelOverlay(`lowerdir=${base}/lower,upperdir=${base}/upper,workdir=${base}/work,userxattr`, mnt, () => {
    fs.unlinkSync(`${mnt}/gone`);
    fs.rmSync(`${mnt}/opq`, { recursive: true });
    mkdirs(`${mnt}/opq`);
    fs.writeFileSync(`${mnt}/opq/new`, 'new');
    fs.appendFileSync(`${mnt}/keep/f`, '+');
    return snapshot(mnt);
  });
  const bytes = await pack(`${base}/upper`, [`${base}/lower`], USER);
  assert.deepEqual((await entriesOf(bytes)).map((e) => e.name), ['.wh.gone', 'keep/', 'keep/f', 'opq/', 'opq/.wh..wh..opq', 'opq/new']);
  await unpackLayer(streamOf(bytes), `${base}/layer`, { xattrPrefix: USER, privileged: true });
  const seen = await withKernelOverlay(`lowerdir=${base}/layer:${base}/lower,userxattr`, `${base}/mnt2`, () => snapshot(`${base}/mnt2`));
  assert.deepEqual(seen.slice(1), merged.slice(1));
});

test('a redirect in a hostile upper layer never reaches outside the layers', async (t) => {
  const base = scratch(t, 'pack-hostile');
  mkdirs(`${base}/lower/real`, `${base}/upper/d`, `${base}/upper/e`);
  fs.writeFileSync(`${base}/lower/real/inside`, 'inside');
  fs.writeFileSync(`${base}/upper/d/own`, 'own');
  const set = (dir: string, value: string): void => {
    const r = spawnSync('setfattr', ['-n', `${PREFIX}redirect`, '-v', value, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  // '..' is refused as the kernel refuses it.
  set(`${base}/upper/d`, '/../../../../etc');
  await assert.rejects(pack(`${base}/upper`, [`${base}/lower`]), { code: 'EACCES' });
  // An absolute redirect is from the lower layer's root, never the host's: /etc is not there.
  set(`${base}/upper/d`, '/etc');
  set(`${base}/upper/e`, '/real');
  const names = (await entriesOf(await pack(`${base}/upper`, [`${base}/lower`]))).map((e) => e.name);
  assert.deepEqual(names, ['d/', 'd/own', 'e/', 'e/inside']);
});
