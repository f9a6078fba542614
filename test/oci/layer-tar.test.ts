// The tar codec under the layer functions: what tar(1) writes in each of its formats (GNU long
// names, base-256 numbers, sparse files, v7), and what our writer writes, read back field for field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarEntry, type TarHeaderInput } from '../../src/oci/tar-header.js';
import { readTar } from '../../src/oci/tar-reader.js';
import { mkdirs, scratch, streamOf } from './layer-fixtures.js';

async function read(bytes: Buffer): Promise<Array<TarEntry & { data: string }>> {
  const out: Array<TarEntry & { data: string }> = [];
  for await (const { entry, data } of readTar(streamOf(bytes, 700))) {
    const chunks: Buffer[] = [];
    for await (const chunk of data) chunks.push(chunk);
    out.push({ ...entry, data: Buffer.concat(chunks).toString('latin1') });
  }
  return out;
}

function tar(dir: string, ...args: string[]): Buffer {
  const r = spawnSync('tar', [...args, '-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

test('what our writer writes reads back the same, pax records and all', async () => {
  const inputs: TarHeaderInput[] = [
    { path: 'plain', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtimeNs: 1_700_000_000_000_000_000n },
    { path: `${'deep/'.repeat(40)}name`, type: 'file', mode: 0o4755, uid: 3_000_000, gid: 70_000_000, size: 0, mtimeNs: -1_500_000_000n },
    { path: 'ünïcödé', type: 'dir', mode: 0o1777, uid: 1, gid: 2, size: 0, mtimeNs: 1_600_000_000_123_456_789n },
    { path: 'link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtimeNs: 0n, linkname: `/${'x'.repeat(300)}` },
    { path: 'dev', type: 'block', mode: 0o600, uid: 0, gid: 0, size: 0, mtimeNs: 0n, devmajor: 259, devminor: 70_000 },
    {
      path: 'xattrs', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeNs: 2n ** 40n * 1_000_000_000n,
      xattrs: [['security.capability', Buffer.from([0, 1, 0x0a, 0xff, 0x3d, 0x20])], ['user.empty', Buffer.alloc(0)]],
    },
  ];
  const bytes = Buffer.concat([
    ...inputs.flatMap((h) => [encodeHeader(h), ...(h.size > 0 ? [Buffer.from('abc'), padding(h.size)] : [])]),
    END_OF_ARCHIVE,
  ]);
  const back = await read(bytes);
  assert.equal(back.length, inputs.length);
  for (const [i, h] of inputs.entries()) {
    const e = back[i]!;
    assert.deepEqual(
      [e.path, e.type, e.mode, e.uid, e.gid, e.size, e.mtimeNs, e.linkname, e.devmajor, e.devminor],
      // A directory's name ends in a slash, as the archive spells it.
      [h.type === 'dir' ? `${h.path}/` : h.path, h.type, h.mode, h.uid, h.gid, h.size, h.mtimeNs, h.linkname ?? '', h.devmajor ?? 0, h.devminor ?? 0],
      h.path,
    );
    assert.deepEqual([...e.xattrs], h.xattrs ?? [], h.path);
  }
  assert.equal(back[0]!.data, 'abc');
  // tar(1) agrees on the names and the values it can show.
  const listing = spawnSync('tar', ['--numeric-owner', '-tvf', '-'], { input: bytes, encoding: 'utf8' });
  assert.equal(listing.status, 0, listing.stderr);
  assert.match(listing.stdout, /3000000\/70000000 .* deep\/deep\//);
  assert.match(listing.stdout, /ünïcödé\//);
});

test('tar(1) in GNU, ustar and v7 formats: long names, base-256 numbers, old directory markers', async (t) => {
  const base = scratch(t, 'formats');
  const src = `${base}/src`;
  const long = `${'directory/'.repeat(12)}${'f'.repeat(120)}`;
  mkdirs(`${src}/${long.slice(0, long.lastIndexOf('/'))}`);
  fs.writeFileSync(`${src}/${long}`, 'long');
  fs.symlinkSync('t'.repeat(150), `${src}/longlink`);
  fs.utimesSync(`${src}/${long}`, 1_234_567_890, 1_234_567_890);
  const gnu = await read(tar(src, '--format=gnu', '--owner=x:3000000', '--group=y:3000001', '--numeric-owner'));
  const file = gnu.find((e) => e.path.endsWith('f'.repeat(120)))!;
  assert.equal(file.path, `./${long}`);
  assert.equal(file.data, 'long');
  assert.equal(file.uid, 3_000_000, 'base-256 uid');
  assert.equal(file.gid, 3_000_001);
  assert.equal(file.mtimeNs, 1_234_567_890_000_000_000n);
  assert.equal(gnu.find((e) => e.type === 'symlink')?.linkname, 't'.repeat(150), 'GNU long link name');
  // ustar splits a name of up to 255 bytes into a prefix and a name.
  const split = `${'directory/'.repeat(12)}${'f'.repeat(90)}`;
  mkdirs(`${base}/ustar/${split.slice(0, split.lastIndexOf('/'))}`);
  fs.writeFileSync(`${base}/ustar/${split}`, 'split');
  const ustar = await read(tar(`${base}/ustar`, '--format=ustar'));
  assert.equal(ustar.find((e) => e.path === `./${split}`)?.data, 'split', 'ustar prefix and name');
  mkdirs(`${base}/v7/d`);
  fs.writeFileSync(`${base}/v7/d/x`, 'x');
  const v7 = await read(tar(`${base}/v7`, '--format=v7'));
  assert.ok(v7.some((e) => e.type === 'dir' && e.path === './d/'), 'a v7 directory, marked by its slash');
  assert.equal(v7.find((e) => e.path === './d/x')?.data, 'x');
});

test('sparse files and oversized pax records are refused by name', async (t) => {
  const base = scratch(t, 'sparse');
  mkdirs(`${base}/src`);
  const fd = fs.openSync(`${base}/src/sparse`, 'w');
  fs.writeSync(fd, 'end', 0, 'latin1');
  fs.writeSync(fd, 'end', 1 << 20, 'latin1');
  fs.closeSync(fd);
  await assert.rejects(read(tar(`${base}/src`, '--format=gnu', '--sparse')), /GNU sparse file entries are not supported \('\.\/sparse'\)/);
  await assert.rejects(read(tar(`${base}/src`, '--format=pax', '--sparse')), /GNU sparse file entries are not supported/);
  const huge = encodeHeader({ path: 'x', type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtimeNs: 0n, xattrs: [['user.big', Buffer.alloc(2 << 20)]] });
  await assert.rejects(read(Buffer.concat([huge, END_OF_ARCHIVE])), /pax record of \d+ bytes is too big/);
});

test('links, directories, devices and FIFOs are a header alone, whatever their size field says', async () => {
  const next = encodeHeader({ path: 'next', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeNs: 0n });
  const headerOnly = (['fifo', 'char', 'dir', 'symlink'] as const).map((type) =>
    encodeHeader({ path: type, type, mode: 0o644, uid: 0, gid: 0, size: 512, mtimeNs: 0n, linkname: type === 'symlink' ? 't' : '' }));
  // Each claims 512 bytes of data; what follows is the next header, as Go's archive/tar reads it.
  const bytes = Buffer.concat([...headerOnly.flatMap((h) => [h, next]), END_OF_ARCHIVE]);
  const names = (await read(bytes)).map((e) => `${e.path}:${e.size}`);
  assert.deepEqual(names, ['fifo:0', 'next:0', 'char:0', 'next:0', 'dir/:0', 'next:0', 'symlink:0', 'next:0']);
});
