// unpackLayer: OCI layer tars (made by tar(1) and by tar-stream, not by us) into the kernel's
// on-disk format, checked file by file and by the kernel overlay itself; and hostile tars, each
// refused with an error naming the entry, with nothing written outside the target.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { unpackLayer } from '../../src/oci/layer-unpack.js';
import { encodeHeader, END_OF_ARCHIVE } from '../../src/oci/tar-header.js';
import {
  cannotMountOverlay, contents, gnuTar, isRoot, listing, mkdirs, scratch, snapshot, streamOf, tarOf, withKernelOverlay,
} from './layer-fixtures.js';

const TRUSTED = 'trusted.overlay.';
const USER = 'user.overlay.';
const UMOCI = '/usr/bin/umoci';
const CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex');

function unpack(bytes: Buffer, dir: string, options: Partial<Parameters<typeof unpackLayer>[2]> = {}): Promise<void> {
  return unpackLayer(streamOf(bytes), dir, { xattrPrefix: isRoot ? TRUSTED : USER, privileged: isRoot, ...options });
}

function isWhiteout(file: string): boolean {
  const st = fs.lstatSync(file);
  return st.isCharacterDevice() && st.rdev === 0;
}

/** A tree with one of everything a layer can hold. */
function buildSource(src: string): void {
  mkdirs(`${src}/dir/sub`, `${src}/ro`, `${src}/${'long-directory-name-'.repeat(4)}`);
  fs.writeFileSync(`${src}/dir/file`, 'hello\n');
  fs.writeFileSync(`${src}/dir/empty`, '');
  fs.writeFileSync(`${src}/suid`, 'x');
  fs.chmodSync(`${src}/suid`, 0o4755);
  fs.linkSync(`${src}/dir/file`, `${src}/dir/sub/hardlink`);
  fs.symlinkSync('../file', `${src}/dir/sub/rel-link`);
  fs.symlinkSync('/etc/passwd', `${src}/abs-link`);
  fs.writeFileSync(`${src}/${'long-directory-name-'.repeat(4)}/${'x'.repeat(150)}`, 'long\n');
  fs.writeFileSync(`${src}/héllo wörld`, 'utf8\n');
  fs.writeFileSync(`${src}/ro/inside`, 'in a read-only dir\n');
  spawnSync('mkfifo', [`${src}/fifo`]);
  fs.writeFileSync(`${src}/owned`, 'ids\n');
  if (isRoot) {
    fs.chownSync(`${src}/owned`, 1234, 3_000_000);
    spawnSync('mknod', [`${src}/null`, 'c', '1', '3']);
    fs.writeFileSync(`${src}/capable`, '#!/bin/true\n');
    spawnSync('setfattr', ['-n', 'security.capability', '-v', `0x${CAPABILITY.toString('hex')}`, `${src}/capable`]);
  }
  spawnSync('setfattr', ['-n', 'user.comment', '-v', 'a comment', `${src}/dir/file`]);
  spawnSync('setfattr', ['-n', 'user.binary', '-v', '0x00ff80fe', `${src}/dir`]);
  fs.utimesSync(`${src}/dir/file`, 1_600_000_000.25, 1_600_000_000.123456);
  fs.chmodSync(`${src}/ro`, 0o555);
  fs.utimesSync(`${src}/ro`, 1_500_000_000, 1_500_000_000);
  fs.utimesSync(`${src}/dir/sub`, 1_400_000_000, 1_400_000_000);
}

test('a layer made by tar(1) unpacks to the same tree: modes, owners, times, xattrs, links, devices', async (t) => {
  const base = scratch(t, 'unpack');
  buildSource(`${base}/src`);
  mkdirs(`${base}/out`);
  await unpack(gnuTar(`${base}/src`), `${base}/out`, { xattrPrefix: TRUSTED });
  assert.deepEqual(snapshot(`${base}/out`), snapshot(`${base}/src`));
});

test('.wh. files become 0/0 whiteouts and .wh..wh..opq the opaque xattr, under either prefix', async (t) => {
  const base = scratch(t, 'whiteouts');
  const bytes = await tarOf([
    { name: 'dir', type: 'directory' },
    { name: 'dir/.wh..wh..opq', data: '' },
    { name: 'dir/new', data: 'new' },
    { name: '.wh.gone', data: '' },
    { name: 'implicit/.wh.deep', data: '' },
  ]);
  for (const prefix of isRoot ? [TRUSTED, USER] : [USER]) {
    const out = `${base}/${prefix}`;
    mkdirs(out);
    await unpack(bytes, out, { xattrPrefix: prefix });
    assert.ok(isWhiteout(`${out}/gone`));
    assert.ok(isWhiteout(`${out}/implicit/deep`));
    assert.ok(fs.statSync(`${out}/implicit`).isDirectory());
    assert.equal(spawnSync('getfattr', ['--only-values', '-n', `${prefix}opaque`, `${out}/dir`], { encoding: 'utf8' }).stdout, 'y');
    assert.deepEqual(fs.readdirSync(out).sort(), ['dir', 'gone', 'implicit']);
    assert.deepEqual(fs.readdirSync(`${out}/dir`), ['new']);
  }
});

test('a whiteout and an entry of the same name in one layer: the entry stays, the lower one is hidden', async (t) => {
  const base = scratch(t, 'same-layer');
  mkdirs(`${base}/out`);
  await unpack(await tarOf([
    { name: '.wh.a', data: '' }, { name: 'a', type: 'directory' }, { name: 'a/x', data: 'x' },
    { name: 'b', type: 'directory' }, { name: '.wh.b', data: '' },
    { name: 'c', data: 'c' }, { name: '.wh.c', data: '' },
    { name: '.wh.d', data: '' }, { name: 'd/y', data: 'y' },
  ]), `${base}/out`);
  const prefix = isRoot ? TRUSTED : USER;
  for (const dir of ['a', 'b', 'd']) {
    assert.equal(spawnSync('getfattr', ['--only-values', '-n', `${prefix}opaque`, `${base}/out/${dir}`], { encoding: 'utf8' }).stdout, 'y', dir);
  }
  assert.equal(fs.readFileSync(`${base}/out/c`, 'utf8'), 'c');
  assert.deepEqual(fs.readdirSync(`${base}/out`).sort(), ['a', 'b', 'c', 'd']);
});

test('the kernel overlay over unpacked layers shows what the layers say', async (t) => {
  const why = cannotMountOverlay();
  if (why !== undefined) return t.skip(why);
  const base = scratch(t, 'kernel');
  mkdirs(`${base}/src/keep/sub`, `${base}/src/opq/old`, `${base}/src/gone-dir/x`);
  fs.writeFileSync(`${base}/src/keep/a`, 'a');
  fs.writeFileSync(`${base}/src/keep/sub/b`, 'b');
  fs.writeFileSync(`${base}/src/opq/o`, 'o');
  fs.writeFileSync(`${base}/src/gone`, 'gone');
  fs.writeFileSync(`${base}/src/replaced`, 'old');
  const top = await tarOf([
    { name: './.wh.gone', data: '' },
    { name: './.wh.gone-dir', data: '' },
    { name: './opq/', type: 'directory' },
    { name: './opq/.wh..wh..opq', data: '' },
    { name: './opq/fresh', data: 'fresh' },
    { name: './keep/.wh.a', data: '' },
    { name: './keep/c', data: 'c' },
    { name: './replaced', data: 'new' },
    { name: './link', type: 'symlink', linkname: 'keep/c' },
  ]);
  const expected = [
    '/ dir', '/keep dir', '/keep/c file', '/keep/sub dir', '/keep/sub/b file', '/link symlink -> keep/c',
    '/opq dir', '/opq/fresh file', '/replaced file',
  ];
  for (const [prefix, extra] of [[TRUSTED, ''], [USER, ',userxattr']] as const) {
    const dir = `${base}/${prefix}`;
    mkdirs(`${dir}/l1`, `${dir}/l2`);
    await unpack(gnuTar(`${base}/src`), `${dir}/l1`, { xattrPrefix: prefix });
    await unpack(top, `${dir}/l2`, { xattrPrefix: prefix });
    const seen = await withKernelOverlay(`lowerdir=${dir}/l2:${dir}/l1${extra}`, `${dir}/mnt`, () => ({
      tree: contents(`${dir}/mnt`).map((line) => line.replace(/ [0-9a-f]{16}$/, '')),
      replaced: fs.readFileSync(`${dir}/mnt/replaced`, 'utf8'),
      fresh: fs.readFileSync(`${dir}/mnt/opq/fresh`, 'utf8'),
    }));
    assert.deepEqual(seen.tree, expected, prefix);
    assert.equal(seen.replaced, 'new');
    assert.equal(seen.fresh, 'fresh');
  }
});

test('hostile layers are refused with an error naming the entry, and nothing outside the target changes', async (t) => {
  const base = scratch(t, 'hostile');
  mkdirs(`${base}/sentinel`);
  fs.writeFileSync(`${base}/sentinel/secret`, 'secret');
  const cases: Array<[string, Buffer | Promise<Buffer>, string, RegExp, Partial<Parameters<typeof unpackLayer>[2]>?]> = [
    ['.. in a name', tarOf([{ name: '../sentinel/x', data: 'x' }]), 'EINVAL', /'\.\.\/sentinel\/x'/],
    ['.. after a leading slash', tarOf([{ name: '/../sentinel/x', data: 'x' }]), 'EINVAL', /absolute/],
    ['an absolute name', tarOf([{ name: `${base}/sentinel/x`, data: 'x' }]), 'EINVAL', /absolute/],
    ['.. in the middle', tarOf([{ name: 'a/b/../../../sentinel/x', data: 'x' }]), 'EINVAL', /sentinel\/x/],
    ['a path through a symlink made earlier', tarOf([
      { name: 'esc', type: 'symlink', linkname: '../sentinel' },
      { name: 'esc/x', data: 'x' },
    ]), 'ELOOP', /'esc\/x'.*symlink|symlink.*'esc\/x'/],
    ['a path through an absolute symlink', tarOf([
      { name: 'esc', type: 'symlink', linkname: `${base}/sentinel` },
      { name: 'esc/sub/x', data: 'x' },
    ]), 'ELOOP', /esc\/sub\/x/],
    ['a hard link out of the layer', tarOf([{ name: 'h', type: 'link', linkname: '../sentinel/secret' }]), 'EINVAL', /'h'/],
    ['a hard link to a host path', tarOf([{ name: 'h', type: 'link', linkname: `${base}/sentinel/secret` }]), 'EINVAL', /'h'/],
    ['a hard link to a name that comes later', tarOf([{ name: 'h', type: 'link', linkname: 'later' }, { name: 'later', data: '' }]), 'ENOENT', /'h'/],
    ['a hard link through a symlink', tarOf([
      { name: 's', type: 'symlink', linkname: `${base}/sentinel` },
      { name: 'h', type: 'link', linkname: 's/secret' },
    ]), 'ENOENT', /'h'/],
    ['a device when not privileged', tarOf([{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }]), 'EPERM', /'null'/, { privileged: false }],
    ['a block device when not privileged', tarOf([{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }]), 'EPERM', /'sda'/, { privileged: false }],
    ['a 0/0 character device', tarOf([{ name: 'wh', type: 'character-device', devmajor: 0, devminor: 0 }]), 'EINVAL', /'wh'/, { privileged: true }],
    ['the overlay\'s own xattr', tarOf([{ name: 'd', type: 'directory', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y' } }]), 'EPERM', /trusted\.overlay\.opaque.*'d'|'d'.*trusted/],
    ['the userxattr overlay\'s own xattr', tarOf([{ name: 'f', data: 'x', pax: { 'SCHILY.xattr.user.overlay.redirect': '/x' } }]), 'EPERM', /'f'/],
    ['content past maxBytes', tarOf([{ name: 'a', data: Buffer.alloc(600) }, { name: 'b', data: Buffer.alloc(600) }]), 'EFBIG', /'b'/, { maxBytes: 1000 }],
    ['a header that claims a huge size', Buffer.concat([
      encodeHeader({ path: 'bomb', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 2 ** 45, mtimeNs: 0n }), Buffer.alloc(4096),
    ]), 'EFBIG', /'bomb'/],
    ['a NUL byte in a pax path', Buffer.concat([
      encodeHeader({ path: 'ok\0/../../sentinel/x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeNs: 0n }), END_OF_ARCHIVE,
    ]), 'EINVAL', /NUL/],
    ['a whiteout of ..', tarOf([{ name: 'd/.wh...', data: '' }]), 'EINVAL', /d\/\.wh\.\.\./],
    ['a whiteout marker used as a directory', tarOf([{ name: '.wh.x/y', data: 'y' }]), 'EINVAL', /'\.wh\.x\/y'/],
    ['a path through a file made earlier', tarOf([{ name: 'f', data: '' }, { name: 'f/x', data: 'x' }]), 'ENOTDIR', /'f\/x'/],
    ['a name longer than PATH_MAX', Buffer.concat([
      encodeHeader({ path: `${'a/'.repeat(300_000)}x`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeNs: 0n }), END_OF_ARCHIVE,
    ]), 'ENAMETOOLONG', /PATH_MAX/],
  ];
  const before = listing(`${base}/sentinel`);
  for (const [what, bytes, code, message, options] of cases) {
    const out = `${base}/out-${cases.findIndex((c) => c[0] === what)}`;
    mkdirs(out);
    await assert.rejects(unpack(await bytes, out, options), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, code, `${what}: ${err.message}`);
      assert.match(err.message, message, what);
      return true;
    }, what);
    assert.equal(listing(`${base}/sentinel`), before, `${what}: the sentinel changed`);
    assert.deepEqual(fs.readdirSync(base).filter((n) => !n.startsWith('out-')).sort(), ['sentinel'], what);
  }
});

test('entries that replace a symlink to the outside replace the symlink, never its target', async (t) => {
  const base = scratch(t, 'replace');
  mkdirs(`${base}/sentinel/dir`, `${base}/out`);
  fs.writeFileSync(`${base}/sentinel/secret`, 'secret');
  const before = listing(`${base}/sentinel`);
  await unpack(await tarOf([
    { name: 'f', type: 'symlink', linkname: `${base}/sentinel/secret` },
    { name: 'f', data: 'replaced' },
    { name: 'd', type: 'symlink', linkname: `${base}/sentinel/dir` },
    { name: 'd', type: 'directory', mode: 0o700 },
    { name: 'd/inside', data: 'inside' },
    { name: 'l', type: 'symlink', linkname: `${base}/sentinel/secret` },
    { name: 'hl', type: 'link', linkname: 'l' },
  ]), `${base}/out`);
  assert.equal(fs.readFileSync(`${base}/out/f`, 'utf8'), 'replaced');
  assert.equal(fs.readFileSync(`${base}/out/d/inside`, 'utf8'), 'inside');
  assert.ok(fs.lstatSync(`${base}/out/hl`).isSymbolicLink());
  assert.equal(fs.readFileSync(`${base}/sentinel/secret`, 'utf8'), 'secret');
  assert.equal(listing(`${base}/sentinel`), before);
});

test('./ names are taken from the layer root', async (t) => {
  const base = scratch(t, 'dot-slash');
  mkdirs(`${base}/out`);
  await unpack(await tarOf([{ name: './etc/motd', data: 'hi' }, { name: './/./etc//issue', data: 'x' }, { name: 'l', type: 'link', linkname: './etc/motd' }]), `${base}/out`);
  assert.deepEqual(fs.readdirSync(`${base}/out/etc`).sort(), ['issue', 'motd']);
  assert.equal(fs.statSync(`${base}/out/l`).ino, fs.statSync(`${base}/out/etc/motd`).ino);
});

test('broken tars give a clear error', async (t) => {
  const base = scratch(t, 'broken');
  const good = await tarOf([{ name: 'a', data: 'x'.repeat(3000) }, { name: 'b', data: 'b' }]);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['cut inside the data', good.subarray(0, 1500), /truncated.*inside the data of 'a'/],
    ['cut inside a header', good.subarray(0, 200), /truncated.*header/],
    ['no end-of-archive marker', good.subarray(0, 512 * 9), /truncated.*end-of-archive/],
    ['not a tar', Buffer.from('not a tar at all'.repeat(100)), /checksum/],
    ['gzip instead of tar', Buffer.from('1f8b0800000000000003'.padEnd(2048, '0'), 'hex'), /checksum/],
    ['a corrupt header', Buffer.concat([good.subarray(0, 100), Buffer.from('garbage'), good.subarray(107)]), /checksum/],
    ['an entry after a lone zero block', Buffer.concat([good.subarray(0, 512 * 7), Buffer.alloc(512), good.subarray(512 * 7)]), /data after a zero block/],
  ];
  for (const [what, bytes, message] of cases) {
    const out = `${base}/${what.replace(/\W/g, '-')}`;
    mkdirs(out);
    await assert.rejects(unpack(bytes, out), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EINVAL', what);
      assert.match(err.message, message, what);
      return true;
    }, what);
  }
  mkdirs(`${base}/full`);
  fs.writeFileSync(`${base}/full/x`, '');
  await assert.rejects(unpack(good, `${base}/full`), { code: 'ENOTEMPTY' });
});

test('the target directory is reached through its fd only: moving it mid-unpack cannot redirect writes', async (t) => {
  const base = scratch(t, 'moved');
  mkdirs(`${base}/out`);
  const entries = Array.from({ length: 50 }, (_, i) => ({ name: `d/f${i}`, data: 'x'.repeat(1000) }));
  const bytes = await tarOf(entries);
  const run = unpack(bytes, `${base}/out`);
  fs.renameSync(`${base}/out`, `${base}/moved`);
  mkdirs(`${base}/out`);
  await run;
  assert.equal(fs.readdirSync(`${base}/moved/d`).length, 50);
  assert.deepEqual(fs.readdirSync(`${base}/out`), []);
});

test('layers umoci wrote, unpacked and mounted by the kernel, show what umoci itself unpacks', async (t) => {
  if (!fs.existsSync(UMOCI)) return t.skip('umoci is not installed');
  const why = cannotMountOverlay();
  if (why !== undefined) return t.skip(why);
  const base = scratch(t, 'umoci');
  const umoci = (...args: string[]): void => {
    const r = spawnSync(UMOCI, args, { cwd: base, encoding: 'utf8' });
    assert.equal(r.status, 0, `umoci ${args.join(' ')}: ${r.stderr}`);
  };
  // A first layer from a tree, then a second that umoci computes from changes to the unpacked bundle.
  buildSource(`${base}/src`);
  mkdirs(`${base}/src/replaced/old`, `${base}/src/gone-dir/sub`);
  fs.writeFileSync(`${base}/src/replaced/old/x`, 'x');
  fs.writeFileSync(`${base}/src/gone-dir/sub/y`, 'y');
  fs.writeFileSync(`${base}/layer1.tar`, gnuTar(`${base}/src`));
  umoci('init', '--layout', 'img');
  umoci('new', '--image', 'img:base');
  umoci('raw', 'add-layer', '--image', 'img:base', '--tag', 'one', 'layer1.tar');
  umoci('unpack', '--image', 'img:one', 'bundle');
  const rootfs = `${base}/bundle/rootfs`;
  fs.rmSync(`${rootfs}/gone-dir`, { recursive: true });
  fs.rmSync(`${rootfs}/dir/empty`);
  fs.rmSync(`${rootfs}/replaced`, { recursive: true });
  mkdirs(`${rootfs}/replaced`);
  fs.writeFileSync(`${rootfs}/replaced/new`, 'new');
  fs.writeFileSync(`${rootfs}/dir/file`, 'changed\n');
  fs.writeFileSync(`${rootfs}/added`, 'added');
  umoci('repack', '--image', 'img:two', 'bundle');
  umoci('raw', 'unpack', '--image', 'img:two', 'expected');

  const blob = (digest: string): Buffer => fs.readFileSync(`${base}/img/blobs/${digest.replace(':', '/')}`);
  const index = JSON.parse(fs.readFileSync(`${base}/img/index.json`, 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const ref = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'two')!;
  const manifest = JSON.parse(blob(ref.digest).toString()) as { layers: Array<{ digest: string; mediaType: string }> };
  const dirs: string[] = [];
  for (const [i, layer] of manifest.layers.entries()) {
    const bytes = layer.mediaType.endsWith('+gzip') ? gunzipSync(blob(layer.digest)) : blob(layer.digest);
    const dir = `${base}/layers/${i}`;
    mkdirs(dir);
    // umoci leaves the parents of changed files out of its layers: they take the lower's metadata.
    await unpack(bytes, dir, { xattrPrefix: TRUSTED, lowerdirs: [...dirs] });
    dirs.unshift(dir);
  }
  assert.equal(dirs.length, 2);
  const seen = await withKernelOverlay(`lowerdir=${dirs.join(':')}`, `${base}/mnt`, () => snapshot(`${base}/mnt`));
  assert.deepEqual(seen, snapshot(`${base}/expected`));
});

test('the stream is read to its end, record padding included', async (t) => {
  const base = scratch(t, 'padding');
  mkdirs(`${base}/out`);
  const bytes = Buffer.concat([await tarOf([{ name: 'a', data: 'a' }]), Buffer.alloc(20 * 512)]);
  const stream = Readable.from([bytes.subarray(0, 1024), bytes.subarray(1024)]);
  await unpackLayer(stream, `${base}/out`, { xattrPrefix: USER, privileged: false });
  assert.equal(stream.readableEnded, true);
});

test('a failing disk gives the host error, naming the entry it was writing', async (t) => {
  if (!isRoot) return t.skip('mounting a small tmpfs needs root');
  const base = scratch(t, 'enospc');
  mkdirs(`${base}/small`);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', `${base}/small`], { encoding: 'utf8' });
  if (r.status !== 0) return t.skip(`mount -t tmpfs: ${r.stderr.trim()}`);
  try {
    mkdirs(`${base}/small/out`);
    await assert.rejects(unpack(await tarOf([{ name: 'ok', data: 'ok' }, { name: 'dir/too-big', data: Buffer.alloc(1 << 20) }]), `${base}/small/out`), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOSPC');
      assert.equal(err.path, 'dir/too-big');
      return true;
    });
  } finally {
    spawnSync('umount', [`${base}/small`]);
  }
});
