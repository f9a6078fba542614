// DirLayer over real directories: confined to its root by fds (moved or unmounted roots keep
// working, hostile symlinks lead nowhere), the kernel's whiteouts with the xattr fallback, the
// directory fd cache, and redirects decoded as the kernel decodes them. Then the on-disk format
// itself, read and written, under both xattr prefixes.
import { after, describe, it, type TestContext } from 'node:test';
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

    it('opens a lower layer on a read-only mount', { skip: isRoot ? false : 'needs root to mount' }, (t) => {
      const base = tempBase();
      const src = path.join(base, 'src');
      const ro = path.join(base, 'ro');
      fs.mkdirSync(src);
      fs.mkdirSync(ro);
      fs.writeFileSync(path.join(src, 'f'), 'read only');
      execFileSync('mount', ['--bind', src, ro]);
      t.after(() => execFileSync('umount', ['-l', ro]));
      execFileSync('mount', ['-o', 'remount,bind,ro', ro]);
      // In a fresh process, so that the one-time probe of the system calls runs on this mount.
      const module = new URL('../../src/layer/dir-layer.ts', import.meta.url).href;
      const script = `import { DirLayer } from '${module}';
        const layer = new DirLayer(${JSON.stringify(ro)}, { immutable: true });
        const f = layer.open('f', 0); const b = Buffer.alloc(64);
        process.stdout.write(b.subarray(0, f.read(b, 0, 64, 0)).toString());`;
      const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(out, 'read only');
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

  it('an origin record that is not a plain inode number is ignored, never a NaN st_ino', () => {
    const { upper, layer } = setup();
    const values: Array<[string, number | undefined]> = [['1234', 1234], ['junk', undefined], ['', undefined], ['-5', undefined], ['1e3', undefined], ['99999999999999999', undefined]];
    for (const [i, [value, ino]] of values.entries()) {
      fs.writeFileSync(path.join(upper, `f${i}`), '');
      xattr.setAttributeSync(path.join(upper, `f${i}`), 'user.overlay.ovlfs.origin', Buffer.from(value));
      assert.equal(layer.lookup(`f${i}`)!.originIno, ino, JSON.stringify(value));
    }
    layer.close();
  });
});

// The kernel's on-disk format, read from directories written with plain fs, mknod and setfattr-like
// calls (not through DirLayer), and written by DirLayer and checked the same way. Once per xattr
// prefix: trusted.overlay. (the kernel's default, root only) and user.overlay. (userxattr).
for (const prefix of ['user.overlay.', 'trusted.overlay.']) {
  const skip = prefix === 'trusted.overlay.' && !isRoot ? 'trusted.* xattrs need CAP_SYS_ADMIN (root)' : false;
  const other = prefix === 'user.overlay.' ? 'trusted.overlay.' : 'user.overlay.';
  /** The other prefix's xattrs are written here too where this user may (trusted.* needs root). */
  const canSetOther = isRoot || other === 'user.overlay.';

  describe(`DirLayer on disk, ${prefix}*`, { skip }, () => {
    /** A read-only layer over a fresh directory that `write` fills first, with plain host calls. */
    function lower(t: TestContext, write: (dir: string) => void): { dir: string; layer: DirLayer } {
      const dir = path.join(tempBase(), 'layer');
      fs.mkdirSync(dir);
      write(dir);
      const layer = new DirLayer(dir, { xattrPrefix: prefix });
      t.after(() => layer.close());
      return { dir, layer };
    }
    function upper(t: TestContext): { dir: string; work: string; layer: DirLayer } {
      const base = tempBase();
      const dir = path.join(base, 'upper');
      const work = path.join(base, 'work');
      fs.mkdirSync(dir);
      fs.mkdirSync(work);
      const layer = new DirLayer(dir, { xattrPrefix: prefix, workdir: work });
      t.after(() => layer.close());
      return { dir, work, layer };
    }
    const set = (p: string, name: string, value: string): void => xattr.setAttributeSync(p, prefix + name, Buffer.from(value));
    const get = (p: string, name: string): string | undefined => xattr.getAttributeSync(p, prefix + name)?.toString();

    it('looks up files, directories and symlinks without following them; misses are undefined', (t) => {
      const { layer } = lower(t, (dir) => {
        fs.writeFileSync(path.join(dir, 'f'), 'data');
        fs.mkdirSync(path.join(dir, 'd'));
        fs.writeFileSync(path.join(dir, 'd', 'g'), 'g');
        fs.symlinkSync('/nowhere', path.join(dir, 'l'));
        fs.symlinkSync('d', path.join(dir, 'ld'));
      });
      const f = layer.lookup('f')!;
      assert.equal(f.stat.mode & S_IFMT, fs.constants.S_IFREG);
      assert.equal(f.stat.size, 4);
      assert.deepEqual([f.whiteout, f.opaque, f.metacopy, f.redirect], [false, false, false, undefined]);
      assert.equal(layer.lookup('d')!.stat.mode & S_IFMT, S_IFDIR);
      assert.equal(layer.lookup('l')!.stat.mode & S_IFMT, S_IFLNK);
      assert.equal(layer.readlink('l'), '/nowhere');
      assert.equal(readAll(layer, 'd/g'), 'g');
      assert.equal(layer.lookup('missing'), undefined);
      assert.equal(layer.lookup('f/below'), undefined, 'through a file');
      assert.equal(layer.lookup('ld/g'), undefined, 'through a symlink to a directory');
      assert.equal(layer.lookupPath('d/g')?.stat.size, 1);
      assert.equal(layer.lookupPath('ld/g'), undefined);
      const types = Object.fromEntries(layer.readdir('').map((e) => [e.name, e.type]));
      assert.deepEqual(types, { f: fs.constants.S_IFREG, d: S_IFDIR, l: S_IFLNK, ld: S_IFLNK });
    });

    it('reads the three whiteout forms: a 0/0 device, an xattr whiteout in an opaque=x parent, .wh.NAME', (t) => {
      const { layer } = lower(t, (dir) => {
        execFileSync('mknod', [path.join(dir, 'dev'), 'c', '0', '0']);
        fs.mkdirSync(path.join(dir, 'x'));
        fs.writeFileSync(path.join(dir, 'x', 'gone'), '');
        set(path.join(dir, 'x', 'gone'), 'whiteout', '');
        set(path.join(dir, 'x'), 'opaque', 'x');
        fs.writeFileSync(path.join(dir, 'x', 'kept'), '');
        fs.mkdirSync(path.join(dir, 'nomarker'));
        fs.writeFileSync(path.join(dir, 'nomarker', 'file'), '');
        set(path.join(dir, 'nomarker', 'file'), 'whiteout', '');
        fs.writeFileSync(path.join(dir, '.wh.oci'), '');
      });
      assert.equal(layer.lookup('dev')?.whiteout, true);
      assert.equal(layer.lookup('x/gone')?.whiteout, true);
      assert.equal(layer.lookup('x/kept')?.whiteout, false);
      assert.equal(layer.lookup('x')?.opaque, false, 'opaque=x only marks a parent of xattr whiteouts');
      assert.equal(layer.lookup('nomarker/file')?.whiteout, false, 'without the parent marker it is a plain empty file');
      assert.equal(layer.lookup('oci')?.whiteout, true);
      const whiteouts = (rel: string): string[] => layer.readdir(rel).filter((e) => e.whiteout).map((e) => e.name).sort();
      assert.deepEqual(whiteouts(''), ['dev', 'oci']);
      assert.ok(!layer.readdir('').some((e) => e.name.startsWith('.wh.')), 'readdir names the hidden name, not the .wh. file');
      assert.deepEqual(whiteouts('x'), ['gone']);
      assert.deepEqual(whiteouts('nomarker'), []);
    });

    it('reads the two opaque forms: opaque=y and a .wh..wh..opq file inside', (t) => {
      const { layer } = lower(t, (dir) => {
        for (const d of ['y', 'oci', 'plain']) fs.mkdirSync(path.join(dir, d));
        set(path.join(dir, 'y'), 'opaque', 'y');
        fs.writeFileSync(path.join(dir, 'oci', '.wh..wh..opq'), '');
        fs.writeFileSync(path.join(dir, 'oci', 'mine'), '');
        if (canSetOther) xattr.setAttributeSync(path.join(dir, 'plain'), `${other}opaque`, Buffer.from('y'));
      });
      assert.equal(layer.lookup('y')?.opaque, true);
      assert.equal(layer.lookup('oci')?.opaque, true);
      assert.deepEqual(layer.readdir('oci').map((e) => e.name), ['mine'], 'the marker is not an entry');
      assert.equal(layer.lookup('plain')?.opaque, false, `only ${prefix}* counts, not ${other}*`);
    });

    it('decodes redirects on directories and metacopy files, and metacopy only on regular files', (t) => {
      const { layer } = lower(t, (dir) => {
        fs.mkdirSync(path.join(dir, 'moved'));
        set(path.join(dir, 'moved'), 'redirect', '/old/place');
        fs.writeFileSync(path.join(dir, 'meta'), '');
        fs.truncateSync(path.join(dir, 'meta'), 1000);
        set(path.join(dir, 'meta'), 'metacopy', '');
        set(path.join(dir, 'meta'), 'redirect', '/a/file');
        fs.writeFileSync(path.join(dir, 'plain'), 'x');
        set(path.join(dir, 'plain'), 'redirect', '/ignored');
        fs.mkdirSync(path.join(dir, 'metadir'));
        set(path.join(dir, 'metadir'), 'metacopy', '');
      });
      assert.equal(layer.lookup('moved')?.redirect, '/old/place');
      const meta = layer.lookup('meta')!;
      assert.equal(meta.metacopy, true);
      assert.equal(meta.redirect, '/a/file');
      assert.equal(meta.stat.size, 1000, 'a metacopy file carries the size of its data');
      assert.equal(layer.lookup('plain')?.redirect, undefined, 'a redirect counts only on directories and metacopy files');
      assert.equal(layer.lookup('plain')?.metacopy, false);
      assert.equal(layer.lookup('metadir')?.metacopy, false);
    });

    it('hides the overlay\'s private xattrs (either prefix) from listxattr and getxattr, and refuses to set them', (t) => {
      const { dir, layer } = upper(t);
      fs.writeFileSync(path.join(dir, 'f'), 'x');
      fs.mkdirSync(path.join(dir, 'd'));
      xattr.setAttributeSync(path.join(dir, 'f'), 'user.visible', Buffer.from('1'));
      set(path.join(dir, 'f'), 'metacopy', '');
      if (canSetOther) xattr.setAttributeSync(path.join(dir, 'f'), `${other}origin`, Buffer.from('2'));
      set(path.join(dir, 'd'), 'opaque', 'y');
      assert.deepEqual(layer.listxattr('f').filter((n) => !n.startsWith('security.')), ['user.visible']);
      assert.deepEqual(layer.getxattr('f', 'user.visible'), Buffer.from('1'));
      assert.equal(layer.getxattr('f', `${prefix}metacopy`), undefined);
      assert.equal(layer.getxattr('f', `${other}origin`), undefined);
      assert.deepEqual(layer.listxattr('d').filter((n) => !n.startsWith('security.')), []);
      assert.equal(layer.getxattr('d', `${prefix}opaque`), undefined);
      assert.throws(() => layer.setxattr('f', `${prefix}opaque`, Buffer.from('y')), code('EPERM'));
      assert.throws(() => layer.setxattr('f', `${other}opaque`, Buffer.from('y')), code('EPERM'));
      assert.throws(() => layer.removexattr('f', `${prefix}metacopy`), code('ENODATA'));
      assert.equal(get(path.join(dir, 'f'), 'metacopy'), '', 'and the private one is still there');
      layer.setxattr('f', 'user.more', Buffer.from('2'));
      assert.equal(xattr.getAttributeSync(path.join(dir, 'f'), 'user.more')?.toString(), '2');
      layer.removexattr('f', 'user.more');
      assert.equal(xattr.getAttributeSync(path.join(dir, 'f'), 'user.more'), null);
    });

    it('writes: create, mkdir, symlink, link, rename and unlink land on disk as they are', (t) => {
      const { dir, layer } = upper(t);
      const file = layer.create('f', O_WRONLY, 0o640);
      file.write(Buffer.from('hello'), 0, 5, 0);
      file.close();
      assert.throws(() => layer.create('f', O_WRONLY, 0o640), code('EEXIST'));
      layer.mkdir('d', 0o750);
      layer.symlink('../f', 'd/l');
      layer.link('f', 'd/hard');
      layer.rename('f', 'd/g');
      assert.equal(fs.readFileSync(path.join(dir, 'd', 'g'), 'utf8'), 'hello');
      assert.equal(fs.statSync(path.join(dir, 'd', 'g')).mode & 0o7777, 0o640 & ~process.umask());
      assert.equal(fs.statSync(path.join(dir, 'd')).mode & 0o7777, 0o750 & ~process.umask());
      assert.equal(fs.readlinkSync(path.join(dir, 'd', 'l')), '../f');
      assert.equal(fs.statSync(path.join(dir, 'd', 'hard')).ino, fs.statSync(path.join(dir, 'd', 'g')).ino);
      assert.equal(fs.existsSync(path.join(dir, 'f')), false);
      layer.unlink('d/hard');
      layer.unlink('d/l');
      layer.unlink('d/g');
      layer.rmdir('d');
      assert.deepEqual(fs.readdirSync(dir), []);
    });

    it('writes: whiteout, setOpaque, setRedirect and setMetacopy in the kernel\'s format', (t) => {
      const { dir, layer } = upper(t);
      layer.mkdir('d', 0o755);
      layer.whiteout('d/gone');
      const wh = fs.lstatSync(path.join(dir, 'd', 'gone'), { throwIfNoEntry: false });
      // A 0/0 device wherever mknod allows one (any user since Linux 5.8); an xattr whiteout otherwise.
      if (wh?.isCharacterDevice()) assert.equal(wh.rdev, 0);
      else {
        assert.ok(wh?.isFile(), 'a whiteout is a device or an empty file');
        assert.equal(get(path.join(dir, 'd', 'gone'), 'whiteout'), '');
        assert.equal(get(path.join(dir, 'd'), 'opaque'), 'x');
      }
      assert.equal(layer.lookup('d/gone')?.whiteout, true);
      assert.throws(() => layer.whiteout('d/gone'), code('EEXIST'));
      layer.setOpaque('d');
      assert.equal(get(path.join(dir, 'd'), 'opaque'), 'y');
      assert.equal(layer.lookup('d')?.opaque, true);
      layer.mkdir('e', 0o755);
      layer.setRedirect('e', '/somewhere/else');
      assert.equal(get(path.join(dir, 'e'), 'redirect'), '/somewhere/else');
      assert.equal(layer.lookup('e')?.redirect, '/somewhere/else');
      layer.create('m', O_WRONLY, 0o644).close();
      layer.setMetacopy('m', true);
      assert.equal(get(path.join(dir, 'm'), 'metacopy'), '');
      assert.equal(layer.lookup('m')?.metacopy, true);
      layer.setMetacopy('m', false);
      assert.equal(get(path.join(dir, 'm'), 'metacopy'), undefined);
      assert.equal(layer.lookup('m')?.metacopy, false);
      layer.setMetacopy('m', false); // already off: nothing to remove, no error
      assert.equal(xattr.listAttributesSync(path.join(dir, 'm')).some((n) => n.startsWith(other)), false, `nothing under ${other}`);
    });

    it('keeps its work area in workdir/work, under temp paths that start with NUL', (t) => {
      const base = tempBase();
      const dir = path.join(base, 'upper');
      const work = path.join(base, 'work');
      fs.mkdirSync(dir);
      fs.mkdirSync(path.join(work, 'work'), { recursive: true });
      fs.writeFileSync(path.join(work, 'work', 'leftover'), 'from a crash');
      const layer = new DirLayer(dir, { xattrPrefix: prefix, workdir: work });
      t.after(() => layer.close());
      assert.deepEqual(fs.readdirSync(path.join(work, 'work')), [], 'leftovers of a crash are cleared on open');
      const a = layer.tempPath();
      const b = layer.tempPath();
      assert.equal(a.charCodeAt(0), 0);
      assert.notEqual(a, b);
      const file = layer.create(a, O_WRONLY, 0o644);
      file.write(Buffer.from('staged'), 0, 6, 0);
      file.close();
      assert.deepEqual(fs.readdirSync(path.join(work, 'work')), [a.slice(1)]);
      assert.deepEqual(layer.readdir(''), [], 'temps never show in the layer');
      layer.rename(a, 'final');
      assert.equal(fs.readFileSync(path.join(dir, 'final'), 'utf8'), 'staged');
      layer.mkdir(b, 0o755);
      layer.create(`${b}/inner`, O_WRONLY, 0o644).close();
      layer.removeTemp(b);
      layer.removeTemp(b); // already gone: fine, as with rm -rf
      assert.deepEqual(fs.readdirSync(path.join(work, 'work')).filter((n) => !fs.lstatSync(path.join(work, 'work', n)).isCharacterDevice()), []);
      const noWork = new DirLayer(dir, { xattrPrefix: prefix });
      t.after(() => noWork.close());
      assert.throws(() => noWork.create(noWork.tempPath(), O_WRONLY, 0o644), code('EROFS'));
    });
  });
}
