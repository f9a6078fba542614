// DirLayer over real directories: confined to its root by fds (moved or unmounted roots keep
// working, hostile symlinks lead nowhere), the kernel's whiteouts with the xattr fallback, the
// directory fd cache, and redirects decoded as the kernel decodes them.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as xattr from '@napi-rs/xattr';
import { DirLayer } from '../../src/layer/dir-layer.js';
import { MemoryLayer } from '../../src/layer/memory-layer.js';
import { S_IFDIR, S_IFLNK, S_IFMT } from '../../src/layer/types.js';

const { O_RDONLY, O_WRONLY } = fs.constants;
const isRoot = process.getuid?.() === 0;
const bases: string[] = [];
after(() => {
  for (const b of bases) fs.rmSync(b, { recursive: true, force: true });
});

function tempBase(): string {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-dirlayer-'));
  bases.push(base);
  return base;
}

/** A layer over base/upper with base/work, and a directory base/outside it must never reach. */
function setup(options: ConstructorParameters<typeof DirLayer>[1] = {}): { base: string; upper: string; outside: string; layer: DirLayer } {
  const base = tempBase();
  const upper = path.join(base, 'upper');
  const outside = path.join(base, 'outside');
  for (const d of [upper, path.join(base, 'work'), outside]) fs.mkdirSync(d);
  fs.writeFileSync(path.join(outside, 'secret'), 'secret');
  fs.chmodSync(path.join(outside, 'secret'), 0o644);
  const layer = new DirLayer(upper, { workdir: path.join(base, 'work'), xattrPrefix: 'user.overlay.', ...options });
  return { base, upper, outside, layer };
}

function code(expected: string | string[]): (err: unknown) => boolean {
  return (err) => {
    const got = (err as { code?: string }).code ?? String(err);
    assert.ok((Array.isArray(expected) ? expected : [expected]).includes(got), `expected ${expected}, got ${got}: ${String(err)}`);
    return true;
  };
}

function readAll(layer: DirLayer, rel: string): string {
  const f = layer.open(rel, O_RDONLY);
  try {
    const buf = Buffer.alloc(4096);
    return buf.subarray(0, f.read(buf, 0, buf.length, 0)).toString();
  } finally {
    f.close();
  }
}

describe('DirLayer', () => {
  describe('confined by construction', () => {
    it('keeps working after its root directory is renamed away', () => {
      const { base, upper, layer } = setup();
      fs.mkdirSync(path.join(upper, 'd'));
      fs.writeFileSync(path.join(upper, 'd', 'f'), 'before');
      assert.equal(readAll(layer, 'd/f'), 'before');
      const moved = path.join(base, 'moved');
      fs.renameSync(upper, moved);
      fs.mkdirSync(upper); // a new, empty directory at the old path must not be what the layer sees
      assert.equal(readAll(layer, 'd/f'), 'before');
      const f = layer.create('d/g', O_WRONLY, 0o644);
      f.write(Buffer.from('after'), 0, 5, 0);
      f.close();
      assert.equal(fs.readFileSync(path.join(moved, 'd', 'g'), 'utf8'), 'after');
      assert.equal(fs.existsSync(path.join(upper, 'd')), false);
      assert.deepEqual(layer.readdir('d').map((d) => d.name).sort(), ['f', 'g']);
      layer.close();
    });

    it('keeps working after its root is unmounted with MNT_DETACH', { skip: isRoot ? false : 'needs root to mount' }, (t) => {
      const base = tempBase();
      const src = path.join(base, 'src');
      const mnt = path.join(base, 'mnt');
      fs.mkdirSync(path.join(src, 'upper'), { recursive: true });
      fs.mkdirSync(path.join(src, 'work'));
      fs.mkdirSync(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
      let mounted = true;
      t.after(() => {
        if (mounted) execFileSync('umount', ['-l', mnt]);
      });
      fs.mkdirSync(path.join(mnt, 'upper'));
      fs.mkdirSync(path.join(mnt, 'work'));
      fs.writeFileSync(path.join(mnt, 'upper', 'f'), 'on tmpfs');
      const layer = new DirLayer(path.join(mnt, 'upper'), { workdir: path.join(mnt, 'work') });
      execFileSync('umount', ['-l', mnt]);
      mounted = false;
      assert.equal(fs.existsSync(path.join(mnt, 'upper')), false);
      assert.equal(readAll(layer, 'f'), 'on tmpfs');
      layer.mkdir('d', 0o755);
      layer.whiteout('d/gone');
      assert.equal(layer.lookup('d/gone')?.whiteout, true);
      layer.rename('f', 'd/f', { noReplace: true });
      assert.equal(readAll(layer, 'd/f'), 'on tmpfs');
      layer.close();
    });

    it('never follows a symlink on the way or at the end out of the layer', () => {
      const { upper, outside, layer } = setup();
      fs.symlinkSync(outside, path.join(upper, 'abs'));
      fs.symlinkSync('../outside', path.join(upper, 'rel'));
      fs.symlinkSync(path.join(outside, 'secret'), path.join(upper, 'file-link'));
      for (const link of ['abs', 'rel']) {
        assert.equal(layer.lookup(`${link}/secret`), undefined);
        assert.equal(layer.lookupPath(`${link}/secret`), undefined);
        assert.throws(() => layer.open(`${link}/secret`, O_RDONLY), code(['ELOOP', 'EXDEV', 'ENOTDIR']));
        assert.throws(() => layer.create(`${link}/new`, O_WRONLY, 0o644), code(['ELOOP', 'EXDEV', 'ENOTDIR']));
        assert.throws(() => layer.mkdir(`${link}/newdir`, 0o755), code(['ELOOP', 'EXDEV', 'ENOTDIR']));
        assert.throws(() => layer.unlink(`${link}/secret`), code(['ELOOP', 'EXDEV', 'ENOTDIR']));
        assert.throws(() => layer.chmod(`${link}/secret`, 0o777), code(['ELOOP', 'EXDEV', 'ENOTDIR']));
        assert.throws(() => layer.setxattr(`${link}/secret`, 'user.x', Buffer.from('1')), code(['ELOOP', 'EXDEV', 'ENOTDIR']));
        assert.throws(() => layer.rename(`${link}/secret`, 'stolen'), code(['ELOOP', 'EXDEV', 'ENOTDIR']));
        assert.throws(() => layer.readdir(link), code(['ELOOP', 'EXDEV', 'ENOTDIR']));
      }
      // The last component is acted on itself, never on what it points to.
      assert.equal(layer.lookup('file-link')?.stat.mode! & S_IFMT, S_IFLNK);
      assert.throws(() => layer.open('file-link', O_RDONLY), code('ELOOP'));
      assert.throws(() => layer.chmod('file-link', 0o777), code(['EOPNOTSUPP', 'ENOTSUP']));
      assert.throws(() => layer.truncate('file-link', 0), code('ELOOP'));
      layer.lutimes('file-link', 1_000_000_000n, 1_000_000_000n);
      layer.lchown('file-link', process.getuid!(), process.getgid!());
      layer.setMetadata('file-link', { mode: 0o777, uid: process.getuid!(), gid: process.getgid!(), atimeNs: 0n, mtimeNs: 0n, xattrs: [] });
      const secret = fs.statSync(path.join(outside, 'secret'));
      assert.equal(secret.mode & 0o777, 0o644);
      assert.notEqual(secret.mtimeMs, 0);
      assert.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'secret');
      assert.deepEqual(fs.readdirSync(outside), ['secret']);
      layer.close();
    });

    it('refuses paths that climb out ("..") or are not clean', () => {
      const { layer } = setup();
      assert.throws(() => layer.lstat('..'), code('EINVAL'));
      assert.throws(() => layer.create('../x', O_WRONLY, 0o644), code(['EXDEV', 'EINVAL']));
      layer.mkdir('a', 0o755);
      assert.throws(() => layer.mkdir('a/..', 0o755), code('EINVAL'));
      assert.throws(() => layer.unlink('a/.'), code('EINVAL'));
      layer.close();
    });

    it('forgets cached directory fds when a directory is renamed or removed', () => {
      const { upper, layer } = setup();
      layer.mkdir('a', 0o755);
      layer.create('a/f', O_WRONLY, 0o644).close();
      assert.ok(layer.lookup('a/f'));
      layer.rename('a', 'b');
      layer.mkdir('a', 0o755);
      assert.equal(layer.lookup('a/f'), undefined, 'the new a, not the old one the fd pointed to');
      assert.ok(layer.lookup('b/f'));
      layer.unlink('b/f');
      layer.rmdir('b');
      layer.mkdir('b', 0o755);
      layer.create('b/g', O_WRONLY, 0o644).close();
      assert.ok(fs.existsSync(path.join(upper, 'b', 'g')));
      layer.close();
    });

    it('has no host path in its contract', () => {
      const { layer } = setup();
      assert.equal('hostPath' in layer, false);
      assert.equal('hostPath' in new MemoryLayer(), false);
      layer.close();
    });
  });

  describe('whiteouts', () => {
    it('are 0/0 devices sharing one inode, as the kernel shares its whiteout', () => {
      const { upper, layer } = setup();
      layer.whiteout('a');
      layer.whiteout('b');
      const a = fs.lstatSync(path.join(upper, 'a'));
      const b = fs.lstatSync(path.join(upper, 'b'));
      assert.ok(a.isCharacterDevice());
      assert.equal(a.rdev, 0);
      assert.equal(a.ino, b.ino);
      layer.close();
    });

    it('fall back to xattr whiteouts when asked (or when mknod of 0/0 is refused), and both forms read back', () => {
      const { upper, layer } = setup({ whiteoutFormat: 'xattr' });
      layer.mkdir('d', 0o755);
      layer.whiteout('d/x');
      assert.ok(fs.lstatSync(path.join(upper, 'd', 'x')).isFile());
      assert.notEqual(xattr.getAttributeSync(path.join(upper, 'd', 'x'), 'user.overlay.whiteout'), null);
      assert.equal(xattr.getAttributeSync(path.join(upper, 'd'), 'user.overlay.opaque')?.toString(), 'x');
      assert.equal(layer.lookup('d/x')?.whiteout, true);
      // A whiteout left by a rename, in the xattr form, marks its new parent too.
      layer.mkdir('e', 0o755);
      layer.create('e/f', O_WRONLY, 0o644).close();
      layer.rename('e/f', 'moved', { whiteout: true });
      assert.equal(layer.lookup('e/f')?.whiteout, true);
      assert.equal(xattr.getAttributeSync(path.join(upper, 'e'), 'user.overlay.opaque')?.toString(), 'x');
      // A 0/0 device written by someone else reads as a whiteout in the same layer.
      execFileSync('mknod', [path.join(upper, 'd', 'dev'), 'c', '0', '0']);
      assert.equal(layer.lookup('d/dev')?.whiteout, true);
      assert.deepEqual(layer.readdir('d').filter((e) => e.whiteout).map((e) => e.name).sort(), ['dev', 'x']);
      layer.close();
    });
  });

  describe('redirects, decoded as Linux 6.18 decodes them', () => {
    const cases: Array<[string, string | undefined, string | undefined]> = [
      ['/a/b', '/a/b', undefined],
      ['b', 'b', undefined],
      [`/${'x'.repeat(300)}`, `/${'x'.repeat(300)}`, undefined], // too long to exist: a miss, not an error
      ['', undefined, 'EINVAL'],
      ['/a/', undefined, 'EINVAL'],
      ['//a', undefined, 'EINVAL'],
      ['/a//b', undefined, 'EINVAL'],
      ['a/b', undefined, 'EINVAL'],
      ['../a', undefined, 'EINVAL'],
      ['..', undefined, 'EACCES'],
      ['.', undefined, 'EACCES'],
      ['/../a', undefined, 'EACCES'],
      ['/a/..', undefined, 'EACCES'],
      ['/a/./b', undefined, 'EACCES'],
    ];
    for (const [value, redirect, invalid] of cases) {
      it(`${JSON.stringify(value.length > 20 ? value.slice(0, 20) + '…' : value)} -> ${invalid ?? 'valid'}`, () => {
        const { upper, layer } = setup();
        fs.mkdirSync(path.join(upper, 'dir'));
        xattr.setAttributeSync(path.join(upper, 'dir'), 'user.overlay.redirect', Buffer.from(value));
        const entry = layer.lookup('dir')!;
        assert.equal(entry.stat.mode & S_IFMT, S_IFDIR);
        assert.equal(entry.redirect, redirect);
        assert.equal(entry.invalid?.code, invalid);
        if (invalid !== undefined) assert.match(entry.invalid!.what, /invalid redirect/);
        layer.close();
      });
    }
  });
});
