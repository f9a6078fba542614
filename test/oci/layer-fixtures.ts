// Shared by the layer conversion tests: temp dirs, tars built by independent writers (tar(1) and
// tar-stream), the kernel overlay mounted inside a test's temp dir, and trees read back as text so
// that two of them compare with one assert.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import * as tarStream from 'tar-stream';
import { lgetxattr, llistxattr } from '../../src/sys/index.js';

export const isRoot = process.getuid?.() === 0;

/** A fresh temp dir, removed (after unmounting anything left in it) when the test ends. */
export function scratch(t: TestContext, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ovlfs-oci-${name}-`));
  t.after(() => {
    for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const target = line.split(' ')[1]?.replace(/\\040/g, ' ');
      if (target !== undefined && target.startsWith(dir + '/')) spawnSync('umount', ['-l', target]);
    }
    // Read-only directories (a layer may hold them) are made writable first, for a non-root run.
    const writable = (p: string): void => {
      const st = fs.lstatSync(p);
      if (!st.isDirectory()) return;
      if ((st.mode & 0o700) !== 0o700) fs.chmodSync(p, st.mode | 0o700);
      for (const name of fs.readdirSync(p)) writable(path.join(p, name));
    };
    try {
      writable(dir);
    } catch { /* what cannot be made writable, rm reports */ }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

export function mkdirs(...dirs: string[]): void {
  for (const dir of dirs) fs.mkdirSync(dir, { recursive: true });
}

/** One tar entry for tarOf: tar-stream's header, plus data for files. */
export type Entry = Partial<tarStream.Header> & { name: string; data?: string | Buffer; pax?: Record<string, string> };

/** A tar built by tar-stream (not our writer), so the reader is tested against someone else's bytes. */
export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (chunk) => {
      chunks.push(chunk as Buffer);
    });
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const { data, ...header } of entries) {
    const type = header.type ?? 'file';
    const body = data === undefined ? undefined : Buffer.from(data);
    await new Promise<void>((resolve, reject) => {
      const mtime = header.mtime ?? new Date(1_700_000_000_000);
      const h = { mode: type === 'directory' ? 0o755 : 0o644, uid: 0, gid: 0, ...header, mtime, type };
      if (body === undefined) pack.entry(h, (err) => (err ? reject(err) : resolve()));
      else pack.entry(h, body, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A stream of `bytes` in small pieces, so that headers and data straddle chunk boundaries. */
export function streamOf(bytes: Buffer, piece = 1000): NodeJS.ReadableStream {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += piece) pieces.push(bytes.subarray(i, i + piece));
  return Readable.from(pieces);
}

export async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** tar(1) of a directory's content in pax format with xattrs, as image builders make layers. */
export function gnuTar(dir: string): Buffer {
  const r = spawnSync('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr.toString()}`);
  return r.stdout;
}

let overlayProbe: string | undefined;

/** Why the kernel overlay cannot be mounted here, or undefined when it can. */
export function cannotMountOverlay(): string | undefined {
  if (!isRoot) return 'mounting the kernel overlay needs root';
  if (overlayProbe !== undefined) return overlayProbe || undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-oci-probe-'));
  try {
    mkdirs(`${dir}/l1`, `${dir}/l2`, `${dir}/m`);
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${dir}/l1:${dir}/l2`, `${dir}/m`], { encoding: 'utf8' });
    overlayProbe = r.status === 0 ? '' : `mount -t overlay failed: ${r.stderr.trim()}`;
    if (r.status === 0) spawnSync('umount', [`${dir}/m`]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return overlayProbe || undefined;
}

/** Mounts the kernel overlay at mnt, runs fn, and unmounts whatever happens. */
export async function withKernelOverlay<T>(options: string, mnt: string, fn: () => T | Promise<T>): Promise<T> {
  mkdirs(mnt);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', options, mnt], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount -t overlay -o ${options}: ${r.stderr.trim()}`);
  try {
    return await fn();
  } finally {
    const u = spawnSync('umount', [mnt], { encoding: 'utf8' });
    if (u.status !== 0) spawnSync('umount', ['-l', mnt]);
  }
}

export interface SnapshotOptions {
  /** Leave out directories' mtimes (a directory a mount changes gets the time of the change). */
  dirTimes?: boolean;
  /** Leave out xattrs whose names match (the overlay's own, when reading a layer). */
  skipXattr?: RegExp;
}

/**
 * A tree as sorted lines: path, type, mode, owner, size, mtime in ns, content hash or link target,
 * device numbers, xattrs, and which paths share an inode. Never follows a symlink.
 */
export function snapshot(root: string, options: SnapshotOptions = {}): string[] {
  const lines: string[] = [];
  const inodes = new Map<string, string[]>();
  const walk = (rel: string): void => {
    const full = rel === '' ? root : path.join(root, rel);
    const st = fs.lstatSync(full, { bigint: true });
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isFIFO() ? 'fifo'
      : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
    const parts = [`/${rel}`, type, (Number(st.mode) & 0o7777).toString(8), `${st.uid}:${st.gid}`];
    if (type !== 'dir' || options.dirTimes !== false) parts.push(`mtime=${st.mtimeNs}`);
    if (type === 'file') parts.push(`size=${st.size}`, createHash('sha256').update(fs.readFileSync(full)).digest('hex').slice(0, 16));
    if (type === 'symlink') parts.push(`-> ${fs.readlinkSync(full)}`);
    if (type === 'char' || type === 'block') parts.push(`rdev=${st.rdev}`);
    let names: string[] = [];
    try {
      names = llistxattr(full).filter((n) => !(options.skipXattr?.test(n) ?? false)).sort();
    } catch { /* no xattrs here */ }
    for (const name of names) parts.push(`${name}=${lgetxattr(full, name)?.toString('base64')}`);
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      inodes.set(key, [...(inodes.get(key) ?? []), `/${rel}`]);
    }
    lines.push(parts.join(' '));
    if (type === 'dir') for (const name of fs.readdirSync(full).sort()) walk(rel === '' ? name : `${rel}/${name}`);
  };
  walk('');
  for (const names of inodes.values()) if (names.length > 1) lines.push(`links ${names.sort().join(' ')}`);
  return lines;
}

/** Names and contents only: for comparing a merged view with what a layer stack should show. */
export function contents(root: string): string[] {
  return snapshot(root, { dirTimes: false }).map((line) => {
    const [p, type, , , ...rest] = line.split(' ');
    return [p, type, ...rest.filter((x) => !x.startsWith('mtime=') && !x.startsWith('size=') && !x.includes('='))].join(' ');
  });
}

/** A tree's names, types, sizes and mtimes: tests check that nothing outside the target changed. */
export function listing(dir: string): string {
  const lines: string[] = [];
  const walk = (p: string): void => {
    const st = fs.lstatSync(p, { bigint: true });
    lines.push(`${p} ${st.mode} ${st.size} ${st.mtimeNs}`);
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) walk(path.join(p, name));
  };
  walk(dir);
  return lines.sort().join('\n');
}

export const LONG_NAME = `${'long-name-'.repeat(20)}end`;

/**
 * A lower layer, and an upper layer the kernel overlay wrote while changing it: every form the
 * upper can take (whiteouts, an opaque directory, a renamed directory with a redirect, metacopy
 * files, one of them renamed too, hard links, new devices). Returns the merged view as a snapshot
 * taken through the mount, before it was unmounted.
 */
export async function kernelChangedUpper(base: string): Promise<{ lower: string; upper: string; merged: string[] }> {
  const lower = `${base}/lower`;
  const upper = `${base}/upper`;
  mkdirs(`${lower}/deldir/inner`, `${lower}/opq/old`, `${lower}/ren/sub`, `${lower}/nested/deep`, `${lower}/from/inner/sub`, upper, `${base}/work`);
  const files: Record<string, string> = {
    'keep.txt': 'keep', 'mod.txt': 'old', 'del.txt': 'del', 'chmod.txt': 'data stays below',
    'deldir/a': 'a', 'deldir/inner/b': 'b', 'opq/x': 'x', 'opq/old/y': 'y', 'ren/sub/f': 'f', 'ren/g': 'g',
    'nested/deep/file': 'deep', 'nested/deep/file2': 'moved by metacopy',
    'from/inner/a': 'a', 'from/inner/sub/b': 'b', 'from/stays': 'stays',
  };
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(`${lower}/${name}`, data);
  fs.symlinkSync('keep.txt', `${lower}/sym`);
  for (const name of [...Object.keys(files), 'deldir', 'ren', 'ren/sub']) fs.utimesSync(`${lower}/${name}`, 1_500_000_000, 1_500_000_000);
  const mnt = `${base}/mnt`;
  const merged = await withKernelOverlay(`lowerdir=${lower},upperdir=${upper},workdir=${base}/work,redirect_dir=on,metacopy=on,index=off`, mnt, () => {
    fs.writeFileSync(`${mnt}/mod.txt`, 'new content');
    fs.unlinkSync(`${mnt}/del.txt`);
    fs.chmodSync(`${mnt}/chmod.txt`, 0o600);
    fs.rmSync(`${mnt}/deldir`, { recursive: true });
    fs.rmSync(`${mnt}/opq`, { recursive: true });
    fs.mkdirSync(`${mnt}/opq`);
    fs.writeFileSync(`${mnt}/opq/new`, 'new');
    fs.renameSync(`${mnt}/ren`, `${mnt}/moved`);
    fs.writeFileSync(`${mnt}/moved/added`, 'added');
    fs.unlinkSync(`${mnt}/moved/g`);
    mkdirs(`${mnt}/newdir/a/b`);
    fs.writeFileSync(`${mnt}/newdir/a/b/file`, 'file');
    spawnSync('setfattr', ['-n', 'user.binary', '-v', '0x00ff0102', `${mnt}/newdir/a/b/file`]);
    fs.linkSync(`${mnt}/keep.txt`, `${mnt}/keep-link`);
    fs.symlinkSync('/etc/passwd', `${mnt}/newsym`);
    spawnSync('mkfifo', [`${mnt}/fifo`]);
    spawnSync('mknod', [`${mnt}/null`, 'c', '1', '3']);
    spawnSync('setfattr', ['-n', 'user.attr', '-v', 'meta', `${mnt}/nested/deep/file`]);
    fs.renameSync(`${mnt}/nested/deep/file2`, `${mnt}/movedfile`);
    // Across directories (an absolute redirect), with a metacopy file inside, then renamed again.
    spawnSync('setfattr', ['-n', 'user.inside', '-v', 'x', `${mnt}/from/inner/a`]);
    mkdirs(`${mnt}/to`);
    fs.renameSync(`${mnt}/from/inner`, `${mnt}/to/inner2`);
    fs.renameSync(`${mnt}/to/inner2/sub`, `${mnt}/to/inner2/sub2`);
    fs.renameSync(`${mnt}/to/inner2`, `${mnt}/to/inner3`);
    fs.writeFileSync(`${mnt}/${LONG_NAME}`, 'long');
    fs.writeFileSync(`${mnt}/héllo`, 'utf8');
    fs.utimesSync(`${mnt}/héllo`, 1_600_000_000.5, 1_600_000_000.123456);
    return snapshot(mnt);
  });
  return { lower, upper, merged };
}
