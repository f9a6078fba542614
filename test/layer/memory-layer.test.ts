import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { MemoryLayer } from '../../src/layer/memory-layer.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, type RealFile } from '../../src/layer/types.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = constants;

function code(code: string, path?: string): (err: unknown) => boolean {
  return (err) => {
    assert.equal((err as NodeJS.ErrnoException).code, code);
    if (path !== undefined) assert.equal((err as NodeJS.ErrnoException).path, path);
    return true;
  };
}

function readAll(file: RealFile): string {
  const buf = Buffer.alloc(file.stat().size);
  const n = file.read(buf, 0, buf.length, 0);
  return buf.subarray(0, n).toString();
}

function content(layer: MemoryLayer, rel: string): string {
  const file = layer.open(rel, O_RDONLY);
  try {
    return readAll(file);
  } finally {
    file.close();
  }
}

function writeFile(layer: MemoryLayer, rel: string, text: string): void {
  const file = layer.create(rel, O_WRONLY | O_CREAT | O_TRUNC, 0o644);
  file.write(Buffer.from(text), 0, Buffer.byteLength(text), 0);
  file.close();
}

describe('MemoryLayer', () => {
  describe('from()', () => {
    it('builds files, directories and symlinks from a nested object', () => {
      const layer = MemoryLayer.from({ 'a.txt': 'hello', dir: { b: Buffer.from('x'), empty: {} }, link: { symlink: 'a.txt' } });
      assert.equal(content(layer, 'a.txt'), 'hello');
      assert.equal(content(layer, 'dir/b'), 'x');
      assert.equal(layer.lstat('dir/empty').mode & S_IFMT, S_IFDIR);
      assert.equal(layer.readlink('link'), 'a.txt');
      assert.equal(layer.lstat('link').mode, S_IFLNK | 0o777);
      assert.equal(layer.lstat('link').size, 5);
      assert.deepEqual(
        layer.readdir('').map((d) => [d.name, d.type, d.whiteout]),
        [
          ['a.txt', S_IFREG, false],
          ['dir', S_IFDIR, false],
          ['link', S_IFLNK, false],
        ],
      );
    });
  });

  describe('inodes', () => {
    it('gives unique inode numbers, a per-layer dev and plausible stats', () => {
      const a = MemoryLayer.from({ f: 'abc', g: '', d: {} });
      const b = new MemoryLayer();
      assert.notEqual(a.fsId, b.fsId);
      const f = a.lstat('f');
      assert.equal(f.dev, a.fsId);
      assert.equal(b.lstat('').dev, b.fsId);
      const inos = new Set(['', 'f', 'g', 'd'].map((rel) => a.lstat(rel).ino));
      assert.equal(inos.size, 4);
      assert.equal(f.mode, S_IFREG | 0o644);
      assert.equal(f.size, 3);
      assert.equal(f.blocks, 1);
      assert.equal(f.blksize, 4096);
      assert.equal(f.nlink, 1);
      assert.equal(f.uid, process.getuid?.() ?? 0);
      assert.equal(f.gid, process.getgid?.() ?? 0);
      assert.equal(a.lstat('g').blocks, 0);
      // A directory has two links, plus one per subdirectory's '..'.
      assert.equal(a.lstat('').nlink, 3);
      assert.equal(a.lstat('d').nlink, 2);
    });

    it('honours uid/gid options', () => {
      const layer = new MemoryLayer({ uid: 1234, gid: 5678, name: 'upper' });
      layer.mkdir('d', 0o700);
      assert.equal(layer.name, 'upper');
      assert.equal(layer.lstat('d').uid, 1234);
      assert.equal(layer.lstat('d').gid, 5678);
      assert.equal(layer.lstat('d').mode, S_IFDIR | 0o700);
    });

    it('counts blocks as 512-byte units of the size', () => {
      const layer = new MemoryLayer();
      layer.create('f', O_WRONLY | O_CREAT, 0o600).close();
      layer.truncate('f', 513);
      assert.equal(layer.lstat('f').blocks, 2);
    });
  });

  describe('path rules', () => {
    const layer = MemoryLayer.from({ a: { b: 'x' }, f: 'file', l: { symlink: 'a' } });

    it('lookup returns the last component without following it', () => {
      assert.equal(layer.lookup('')?.stat.mode! & S_IFMT, S_IFDIR);
      assert.equal(layer.lookup('a/b')?.stat.size, 1);
      assert.equal(layer.lookup('l')?.stat.mode! & S_IFMT, S_IFLNK);
      assert.equal(layer.lookup('missing'), undefined);
      assert.equal(layer.lookup('a/missing'), undefined);
      assert.equal(layer.lookup('missing/b'), undefined);
      assert.equal(layer.lookup('f/b'), undefined);
    });

    it('lookupPath stops at symlinks and non-directories', () => {
      assert.equal(layer.lookupPath('a/b')?.stat.size, 1);
      assert.equal(layer.lookupPath('l/b'), undefined);
      assert.equal(layer.lookupPath('f/x'), undefined);
    });

    it('lookupPath does not pass through a whiteout', () => {
      const w = MemoryLayer.from({ d: {} });
      w.whiteout('d/gone');
      assert.equal(w.lookupPath('d/gone')?.whiteout, true);
      assert.equal(w.lookupPath('d/gone/x'), undefined);
    });

    it('throws ENOENT and ENOTDIR with Node-shaped errors', () => {
      assert.throws(() => layer.lstat('nope'), code('ENOENT', '/nope'));
      assert.throws(() => layer.lstat('nope/x'), code('ENOENT', '/nope/x'));
      assert.throws(() => layer.lstat('f/x'), code('ENOTDIR', '/f/x'));
      assert.throws(() => layer.lstat('l/b'), code('ENOTDIR'));
      assert.throws(() => layer.readdir('f'), code('ENOTDIR'));
      assert.throws(() => layer.readlink('f'), code('EINVAL'));
      assert.throws(
        () => layer.lstat('nope'),
        (err: unknown) => {
          const e = err as NodeJS.ErrnoException;
          assert.equal(e.syscall, 'lstat');
          assert.ok(e.errno !== undefined && e.errno < 0);
          assert.match(e.message, /^ENOENT: no such file or directory, lstat '\/nope'$/);
          return true;
        },
      );
    });

    it('refuses malformed paths', () => {
      assert.throws(() => layer.lstat('/a'), code('EINVAL'));
      assert.throws(() => layer.lstat('a//b'), code('EINVAL'));
      assert.throws(() => layer.lstat('a/../f'), code('EINVAL'));
    });
  });

  describe('creating entries', () => {
    it('reports EEXIST for every kind of creation onto an existing name', () => {
      const layer = MemoryLayer.from({ f: 'x', d: {} });
      assert.throws(() => layer.mkdir('f', 0o755), code('EEXIST', '/f'));
      assert.throws(() => layer.mkdir('d', 0o755), code('EEXIST'));
      assert.throws(() => layer.mkdir('', 0o755), code('EEXIST'));
      assert.throws(() => layer.symlink('t', 'd'), code('EEXIST'));
      assert.throws(() => layer.mknod('f', S_IFIFO | 0o644, 0), code('EEXIST'));
      assert.throws(() => layer.link('f', 'd'), code('EEXIST'));
      assert.throws(() => layer.create('f', O_WRONLY | O_CREAT | O_EXCL, 0o644), code('EEXIST'));
      assert.throws(() => layer.whiteout('f'), code('EEXIST'));
    });

    it('needs an existing directory parent', () => {
      const layer = MemoryLayer.from({ f: 'x' });
      assert.throws(() => layer.mkdir('no/d', 0o755), code('ENOENT'));
      assert.throws(() => layer.mkdir('f/d', 0o755), code('ENOTDIR'));
      assert.throws(() => layer.create('no/f', O_WRONLY | O_CREAT, 0o644), code('ENOENT'));
    });

    it('keeps permission bits and the type', () => {
      const layer = new MemoryLayer();
      layer.create('f', O_WRONLY | O_CREAT, 0o4751).close();
      assert.equal(layer.lstat('f').mode, S_IFREG | 0o4751);
      layer.mkdir('d', 0o1777);
      assert.equal(layer.lstat('d').mode, S_IFDIR | 0o1777);
    });

    it('mknod creates fifos, sockets and devices by type bits', () => {
      const layer = new MemoryLayer();
      layer.mknod('fifo', S_IFIFO | 0o644, 0);
      layer.mknod('sock', S_IFSOCK | 0o755, 0);
      layer.mknod('chr', S_IFCHR | 0o600, 0x0103);
      layer.mknod('blk', S_IFBLK | 0o600, 0x0801);
      layer.mknod('plain', 0o640, 0);
      assert.equal(layer.lstat('fifo').mode, S_IFIFO | 0o644);
      assert.equal(layer.lstat('fifo').rdev, 0);
      assert.equal(layer.lstat('sock').mode, S_IFSOCK | 0o755);
      assert.equal(layer.lstat('chr').rdev, 0x0103);
      assert.equal(layer.lstat('blk').mode & S_IFMT, S_IFBLK);
      assert.equal(layer.lstat('blk').rdev, 0x0801);
      assert.equal(layer.lstat('plain').mode, S_IFREG | 0o640);
      // A character device with a real device number is not a whiteout.
      assert.equal(layer.lookup('chr')?.whiteout, false);
      assert.throws(() => layer.mknod('d', S_IFDIR | 0o755, 0), code('EPERM'));
      assert.throws(() => layer.mknod('l', S_IFLNK | 0o777, 0), code('EINVAL'));
      assert.throws(() => layer.open('fifo', O_RDONLY), code('ENXIO'));
    });

    it('updates the parent directory times and link count', () => {
      const layer = new MemoryLayer();
      layer.lutimes('', 1000000000n, 2000000000n);
      layer.mkdir('d', 0o755);
      const root = layer.lstat('');
      assert.ok(root.mtimeMs > 2000);
      assert.ok(root.ctimeMs > 2000);
      assert.equal(root.nlink, 3);
      layer.rmdir('d');
      assert.equal(layer.lstat('').nlink, 2);
    });
  });

  describe('open files', () => {
    it('reads and writes with pread/pwrite semantics', () => {
      const layer = new MemoryLayer();
      const file = layer.create('f', O_RDWR | O_CREAT, 0o644);
      assert.equal(file.fd, undefined);
      assert.equal(file.write(Buffer.from('hello world'), 0, 11, 0), 11);
      assert.equal(file.write(Buffer.from('XXWOR'), 2, 3, 6), 3);
      const buf = Buffer.alloc(20, '.');
      assert.equal(file.read(buf, 1, 20 - 1, 0), 11);
      assert.equal(buf.toString(), '.hello WORld........');
      assert.equal(file.read(buf, 0, 4, 9), 2);
      assert.equal(buf.subarray(0, 2).toString(), 'ld');
      assert.equal(file.read(buf, 0, 4, 11), 0);
      assert.equal(file.read(buf, 0, 4, 100), 0);
      // Appending with position null.
      file.write(Buffer.from('!'), 0, 1, null);
      assert.equal(readAll(file), 'hello WORld!');
      file.close();
    });

    it('zero-fills a write past the end and a truncate that grows', () => {
      const layer = new MemoryLayer();
      const file = layer.create('f', O_RDWR | O_CREAT, 0o644);
      file.write(Buffer.from('ab'), 0, 2, 0);
      file.write(Buffer.from('z'), 0, 1, 5);
      assert.deepEqual([...Buffer.from(readAll(file))], [0x61, 0x62, 0, 0, 0, 0x7a]);
      file.truncate(1);
      file.truncate(4);
      // The bytes cut by the shrink must not come back.
      assert.deepEqual([...Buffer.from(readAll(file))], [0x61, 0, 0, 0]);
      assert.equal(file.stat().size, 4);
      file.close();
    });

    it('grows across many writes', () => {
      const layer = new MemoryLayer();
      const file = layer.create('big', O_WRONLY | O_CREAT, 0o644);
      const chunk = Buffer.alloc(1000, 7);
      for (let i = 0; i < 300; i++) file.write(chunk, 0, chunk.length, null);
      file.close();
      const st = layer.lstat('big');
      assert.equal(st.size, 300_000);
      assert.equal(st.blocks, Math.ceil(300_000 / 512));
      const back = layer.open('big', O_RDONLY);
      const buf = Buffer.alloc(300_000);
      assert.equal(back.read(buf, 0, buf.length, 0), 300_000);
      assert.ok(buf.every((b) => b === 7));
      back.close();
    });

    it('accepts any ArrayBufferView at an offset', () => {
      const layer = new MemoryLayer();
      const file = layer.create('f', O_RDWR | O_CREAT, 0o644);
      const backing = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);
      file.write(backing.subarray(2), 1, 3, 0);
      const out = new Uint8Array(6);
      assert.equal(file.read(out.subarray(1), 0, 5, 0), 3);
      assert.deepEqual([...out], [0, 3, 4, 5, 0, 0]);
      assert.throws(() => file.read(out, 4, 5, 0), RangeError);
      file.close();
    });

    it('respects the access mode', () => {
      const layer = MemoryLayer.from({ f: 'data' });
      const ro = layer.open('f', O_RDONLY);
      assert.throws(() => ro.write(Buffer.from('x'), 0, 1, 0), code('EBADF'));
      assert.throws(() => ro.truncate(0), code('EBADF'));
      ro.close();
      const wo = layer.open('f', O_WRONLY);
      assert.throws(() => wo.read(Buffer.alloc(1), 0, 1, 0), code('EBADF'));
      wo.write(Buffer.from('D'), 0, 1, 0);
      wo.close();
      assert.equal(content(layer, 'f'), 'Data');
    });

    it('appends on O_APPEND even when a position is given, as Linux does', () => {
      const layer = MemoryLayer.from({ f: 'abc' });
      const file = layer.open('f', O_WRONLY | O_APPEND);
      file.write(Buffer.from('d'), 0, 1, 0);
      file.close();
      assert.equal(content(layer, 'f'), 'abcd');
    });

    it('throws EBADF after close', () => {
      const layer = MemoryLayer.from({ f: 'data' });
      const file = layer.open('f', O_RDWR);
      file.close();
      assert.throws(() => file.read(Buffer.alloc(1), 0, 1, 0), code('EBADF'));
      assert.throws(() => file.write(Buffer.from('x'), 0, 1, 0), code('EBADF'));
      assert.throws(() => file.stat(), code('EBADF'));
      assert.throws(() => file.close(), code('EBADF'));
    });

    it('O_TRUNC truncates and create without O_EXCL opens the existing file', () => {
      const layer = MemoryLayer.from({ f: 'old content' });
      const ino = layer.lstat('f').ino;
      const file = layer.create('f', O_RDWR | O_CREAT, 0o600);
      assert.equal(readAll(file), 'old content');
      file.close();
      // The existing mode stays: O_CREAT's mode only applies to a new file.
      assert.equal(layer.lstat('f').mode, S_IFREG | 0o644);
      layer.open('f', O_WRONLY | O_TRUNC).close();
      assert.equal(layer.lstat('f').size, 0);
      assert.equal(layer.lstat('f').ino, ino);
    });

    it('never follows a symlink and refuses to write a directory', () => {
      const layer = MemoryLayer.from({ f: 'x', l: { symlink: 'f' }, d: {} });
      assert.throws(() => layer.open('l', O_RDONLY), code('ELOOP', '/l'));
      assert.throws(() => layer.create('l', O_WRONLY | O_CREAT, 0o644), code('ELOOP'));
      assert.throws(() => layer.create('l', O_WRONLY | O_CREAT | O_EXCL, 0o644), code('EEXIST'));
      assert.throws(() => layer.open('d', O_WRONLY), code('EISDIR'));
      assert.throws(() => layer.open('d', O_RDWR), code('EISDIR'));
      assert.throws(() => layer.create('d', O_WRONLY | O_CREAT, 0o644), code('EISDIR'));
      assert.throws(() => layer.open('missing', O_RDONLY), code('ENOENT'));
      // A directory opens read-only, but has no bytes to read.
      const dir = layer.open('d', O_RDONLY);
      assert.equal(dir.stat().mode & S_IFMT, S_IFDIR);
      assert.throws(() => dir.read(Buffer.alloc(1), 0, 1, 0), code('EISDIR'));
      dir.close();
    });

    it('open with O_CREAT creates', () => {
      const layer = new MemoryLayer();
      layer.open('n', O_WRONLY | O_CREAT).close();
      assert.equal(layer.lstat('n').mode & S_IFMT, S_IFREG);
    });

    it('keeps working after its name is unlinked', () => {
      const layer = MemoryLayer.from({ f: 'still here' });
      const file = layer.open('f', O_RDWR);
      layer.unlink('f');
      assert.equal(layer.lookup('f'), undefined);
      assert.equal(file.stat().nlink, 0);
      assert.equal(readAll(file), 'still here');
      file.write(Buffer.from('!'), 0, 1, null);
      assert.equal(readAll(file), 'still here!');
      file.close();
      // A new file at the name is a new inode.
      layer.create('f', O_WRONLY | O_CREAT, 0o644).close();
      assert.equal(layer.lstat('f').size, 0);
    });

    it('updates mtime/ctime on write and truncate, ctime only on chmod/chown', () => {
      const layer = MemoryLayer.from({ f: 'x' });
      const file = layer.open('f', O_RDWR);
      file.utimes(1000000000n, 2000000000n);
      let st = file.stat();
      assert.equal(st.atimeMs, 1000);
      assert.equal(st.mtimeMs, 2000);
      file.write(Buffer.from('y'), 0, 1, 0);
      assert.ok(file.stat().mtimeMs > 2000);
      file.utimes(1000000000n, 2000000000n);
      file.truncate(0);
      assert.ok(file.stat().mtimeMs > 2000);
      file.utimes(1000000000n, 2000000000n);
      file.chmod(0o600);
      file.chown(-1, 4321);
      st = file.stat();
      assert.equal(st.mtimeMs, 2000);
      assert.equal(st.mode, S_IFREG | 0o600);
      assert.equal(st.gid, 4321);
      assert.equal(st.uid, process.getuid?.() ?? 0);
      assert.ok(st.ctimeMs >= st.birthtimeMs);
      file.sync();
      file.datasync();
      file.close();
    });
  });

  describe('hard links', () => {
    it('share the inode and count links', () => {
      const layer = MemoryLayer.from({ f: 'shared', d: {} });
      layer.link('f', 'd/g');
      assert.equal(layer.lstat('f').ino, layer.lstat('d/g').ino);
      assert.equal(layer.lstat('f').nlink, 2);
      writeFile(layer, 'd/g', 'changed');
      assert.equal(content(layer, 'f'), 'changed');
      layer.setxattr('f', 'user.k', Buffer.from('v'));
      assert.deepEqual(layer.getxattr('d/g', 'user.k'), Buffer.from('v'));
      layer.unlink('f');
      assert.equal(layer.lstat('d/g').nlink, 1);
      assert.equal(content(layer, 'd/g'), 'changed');
    });

    it('refuse directories with EPERM, and missing sources with ENOENT', () => {
      const layer = MemoryLayer.from({ d: {} });
      assert.throws(() => layer.link('d', 'e'), code('EPERM'));
      assert.throws(() => layer.link('nope', 'e'), code('ENOENT'));
    });

    it('bump ctime on the inode', () => {
      const layer = MemoryLayer.from({ f: 'x' });
      layer.lutimes('f', 0n, 0n);
      const before = layer.lstat('f').ctimeMs;
      layer.link('f', 'g');
      assert.ok(layer.lstat('g').ctimeMs >= before);
      assert.equal(layer.lstat('g').mtimeMs, 0);
    });
  });

  describe('unlink and rmdir', () => {
    it('follow Linux errnos', () => {
      const layer = MemoryLayer.from({ f: 'x', d: { inner: 'y' }, e: {}, l: { symlink: 'd' } });
      assert.throws(() => layer.unlink('d'), code('EISDIR'));
      assert.throws(() => layer.unlink('missing'), code('ENOENT'));
      assert.throws(() => layer.rmdir('f'), code('ENOTDIR'));
      assert.throws(() => layer.rmdir('l'), code('ENOTDIR'));
      assert.throws(() => layer.rmdir('d'), code('ENOTEMPTY'));
      assert.throws(() => layer.rmdir('missing'), code('ENOENT'));
      assert.throws(() => layer.rmdir(''), code('EBUSY'));
      layer.unlink('l');
      layer.rmdir('e');
      layer.unlink('d/inner');
      layer.rmdir('d');
      assert.deepEqual(
        layer.readdir('').map((d) => d.name),
        ['f'],
      );
    });
  });

  describe('rename', () => {
    it('moves files and directories, adjusting link counts', () => {
      const layer = MemoryLayer.from({ a: { f: 'x', sub: {} }, b: {} });
      const ino = layer.lstat('a/sub').ino;
      layer.rename('a/sub', 'b/moved');
      assert.equal(layer.lstat('b/moved').ino, ino);
      assert.equal(layer.lookup('a/sub'), undefined);
      assert.equal(layer.lstat('a').nlink, 2);
      assert.equal(layer.lstat('b').nlink, 3);
      layer.rename('a/f', 'f2');
      assert.equal(content(layer, 'f2'), 'x');
    });

    it('replaces a file and an empty directory', () => {
      const layer = MemoryLayer.from({ f: 'new', g: 'old', d: { x: '1' }, e: {} });
      const held = layer.open('g', O_RDONLY);
      layer.rename('f', 'g');
      assert.equal(content(layer, 'g'), 'new');
      assert.equal(held.stat().nlink, 0);
      assert.equal(readAll(held), 'old');
      held.close();
      layer.rename('d', 'e');
      assert.equal(content(layer, 'e/x'), '1');
      assert.equal(layer.lookup('d'), undefined);
      assert.equal(layer.lstat('').nlink, 3);
    });

    it('follows rename(2) errnos', () => {
      const layer = MemoryLayer.from({ f: 'x', d: { x: '1', sub: {} }, e: {}, full: { y: '2' } });
      assert.throws(() => layer.rename('missing', 'z'), code('ENOENT'));
      assert.throws(() => layer.rename('f', 'missing/z'), code('ENOENT'));
      assert.throws(() => layer.rename('f', 'f/z'), code('ENOTDIR'));
      assert.throws(() => layer.rename('f', 'e'), code('EISDIR'));
      assert.throws(() => layer.rename('e', 'f'), code('ENOTDIR'));
      assert.throws(() => layer.rename('e', 'full'), code('ENOTEMPTY'));
      assert.throws(() => layer.rename('d', 'd/sub/into'), code('EINVAL'));
      assert.throws(() => layer.rename('d', 'd/sub'), code('EINVAL'));
      assert.throws(() => layer.rename('d/sub', 'd'), code('ENOTEMPTY'));
      assert.throws(() => layer.rename('f', 'e', { noReplace: true }), code('EEXIST'));
      assert.throws(() => layer.rename('', 'z'), code('EBUSY'));
      assert.throws(
        () => layer.rename('missing', 'z'),
        (err: unknown) => {
          const e = err as NodeJS.ErrnoException & { dest?: string };
          assert.equal(e.path, '/missing');
          assert.equal(e.dest, '/z');
          return true;
        },
      );
      // Nothing moved.
      assert.equal(content(layer, 'f'), 'x');
      assert.equal(content(layer, 'full/y'), '2');
    });

    it('does nothing for two names of one inode, and allows a prefix-named sibling', () => {
      const layer = MemoryLayer.from({ f: 'x', d: {} });
      layer.link('f', 'g');
      layer.rename('f', 'g');
      assert.equal(layer.lstat('f').nlink, 2);
      layer.rename('f', 'f');
      assert.equal(layer.lstat('f').nlink, 2);
      // 'dd' starts with 'd' but is not inside it.
      layer.rename('d', 'dd');
      assert.equal(layer.lstat('dd').mode & S_IFMT, S_IFDIR);
    });

    it('with noReplace moves onto a free name', () => {
      const layer = MemoryLayer.from({ f: 'x' });
      layer.rename('f', 'g', { noReplace: true });
      assert.equal(content(layer, 'g'), 'x');
    });

    it('updates ctime of the moved inode', () => {
      const layer = MemoryLayer.from({ f: 'x' });
      layer.lutimes('f', 5000000n, 5000000n);
      const before = layer.lstat('f').ctimeMs;
      layer.rename('f', 'g');
      const st = layer.lstat('g');
      assert.ok(st.ctimeMs >= before);
      assert.equal(st.mtimeMs, 5);
    });
  });

  describe('temp paths', () => {
    it('are unique, hidden and start with NUL', () => {
      const layer = new MemoryLayer();
      const a = layer.tempPath();
      const b = layer.tempPath();
      assert.ok(a.startsWith('\0'));
      assert.notEqual(a, b);
      layer.mkdir(a, 0o755);
      assert.deepEqual(layer.readdir(''), []);
      assert.equal(layer.lookup(a)?.stat.mode! & S_IFMT, S_IFDIR);
    });

    it('accept every writing method, then rename into place', () => {
      const layer = MemoryLayer.from({ d: {} });
      const tmp = layer.tempPath();
      const file = layer.create(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o600);
      file.write(Buffer.from('atomic'), 0, 6, 0);
      file.close();
      layer.chmod(tmp, 0o640);
      layer.lchown(tmp, 7, 8);
      layer.lutimes(tmp, 10000000n, 20000000n);
      layer.setxattr(tmp, 'user.a', Buffer.from('1'));
      layer.setMetacopy(tmp, false);
      layer.truncate(tmp, 6);
      layer.rename(tmp, 'd/final');
      assert.equal(layer.lookup(tmp), undefined);
      const st = layer.lstat('d/final');
      assert.equal(st.mode, S_IFREG | 0o640);
      assert.equal(st.uid, 7);
      assert.equal(st.mtimeMs, 20);
      assert.equal(content(layer, 'd/final'), 'atomic');
      assert.deepEqual(layer.listxattr('d/final'), ['user.a']);

      const dir = layer.tempPath();
      layer.mkdir(dir, 0o755);
      layer.symlink('target', `${dir}/l`);
      layer.mknod(`${dir}/p`, S_IFIFO | 0o644, 0);
      layer.whiteout(`${dir}/w`);
      layer.setOpaque(dir);
      layer.rename(dir, 'copied');
      assert.equal(layer.readlink('copied/l'), 'target');
      assert.equal(layer.lookup('copied')?.opaque, true);
      assert.equal(layer.lookup('copied/w')?.whiteout, true);
      assert.equal(layer.lstat('').nlink, 4);
    });

    it('move a directory out of the way and removeTemp deletes it recursively', () => {
      const layer = MemoryLayer.from({ d: { f: 'x', sub: { g: 'y' } }, keep: 'k' });
      layer.link('keep', 'd/sub/alias');
      assert.equal(layer.lstat('keep').nlink, 2);
      const tmp = layer.tempPath();
      layer.rename('d', tmp);
      assert.equal(layer.lookup('d'), undefined);
      assert.equal(layer.lstat('').nlink, 2);
      assert.equal(content(layer, `${tmp}/sub/g`), 'y');
      layer.removeTemp(tmp);
      assert.equal(layer.lookup(tmp), undefined);
      // A hard link that lived in the removed tree no longer counts.
      assert.equal(layer.lstat('keep').nlink, 1);
      layer.removeTemp(tmp); // already gone: nothing to do, as with rm -rf
      assert.throws(() => layer.removeTemp('keep'), code('EINVAL'));
    });

    it('can take a real entry and give it back', () => {
      const layer = MemoryLayer.from({ f: 'x' });
      const tmp = layer.tempPath();
      layer.rename('f', tmp);
      assert.equal(layer.lookup('f'), undefined);
      layer.rename(tmp, 'f');
      assert.equal(content(layer, 'f'), 'x');
    });

    it('report missing temp entries as ENOENT', () => {
      const layer = new MemoryLayer();
      const tmp = layer.tempPath();
      assert.throws(() => layer.lstat(tmp), code('ENOENT'));
      assert.throws(() => layer.mkdir(`${tmp}/x`, 0o755), code('ENOENT'));
    });
  });

  describe('overlay flags', () => {
    it('whiteout makes a 0/0 character device that readdir flags', () => {
      const layer = MemoryLayer.from({ d: {} });
      layer.whiteout('d/gone');
      const entry = layer.lookup('d/gone');
      assert.ok(entry);
      assert.equal(entry.whiteout, true);
      assert.equal(entry.stat.mode & S_IFMT, S_IFCHR);
      assert.equal(entry.stat.rdev, 0);
      assert.deepEqual(layer.readdir('d'), [{ name: 'gone', type: S_IFCHR, whiteout: true }]);
      assert.equal(layer.lookup('d')?.whiteout, false);
      assert.throws(() => layer.open('d/gone', O_RDONLY), code('ENXIO'));
      layer.unlink('d/gone');
      assert.equal(layer.lookup('d/gone'), undefined);
    });

    it('setOpaque marks directories only', () => {
      const layer = MemoryLayer.from({ d: {}, f: 'x' });
      assert.equal(layer.lookup('d')?.opaque, false);
      layer.setOpaque('d');
      assert.equal(layer.lookup('d')?.opaque, true);
      assert.throws(() => layer.setOpaque('f'), code('ENOTDIR'));
      assert.throws(() => layer.setOpaque('missing'), code('ENOENT'));
    });

    it('setRedirect and setMetacopy are reported by lookup and survive rename', () => {
      const layer = MemoryLayer.from({ d: {}, f: 'x' });
      assert.equal(layer.lookup('d')?.redirect, undefined);
      assert.ok(!('redirect' in layer.lookup('d')!));
      layer.setRedirect('d', '/old/place');
      layer.setRedirect('f', 'sibling');
      layer.setMetacopy('f', true);
      layer.rename('d', 'd2');
      assert.equal(layer.lookup('d2')?.redirect, '/old/place');
      const f = layer.lookup('f');
      assert.equal(f?.redirect, 'sibling');
      assert.equal(f?.metacopy, true);
      layer.setMetacopy('f', false);
      assert.equal(layer.lookup('f')?.metacopy, false);
      // Private flags are not xattrs.
      assert.deepEqual(layer.listxattr('f'), []);
    });

    it('setMetadata applies mode bits, owner, times, xattrs and origin', () => {
      const layer = MemoryLayer.from({ f: 'x', d: {} });
      layer.setMetadata('f', {
        mode: S_IFDIR | 0o4700, // type bits in the input must not change the type
        uid: 11,
        gid: 22,
        atimeNs: 1_000_000_000n,
        mtimeNs: 2_000_000_123n,
        xattrs: [['user.one', Buffer.from('1')], ['security.two', Buffer.from('2')]],
        originIno: 99,
      });
      const entry = layer.lookup('f')!;
      assert.equal(entry.stat.mode, S_IFREG | 0o4700);
      assert.equal(entry.stat.uid, 11);
      assert.equal(entry.stat.gid, 22);
      assert.equal(entry.stat.atimeMs, 1_000);
      assert.equal(entry.stat.mtimeNs, 2_000_000_123n);
      assert.equal(entry.stat.mtimeMs, 2_000.000123);
      assert.ok(entry.stat.ctimeMs > 2_000);
      assert.equal(entry.originIno, 99);
      assert.deepEqual(layer.listxattr('f').sort(), ['security.two', 'user.one']);
      assert.equal(layer.lookup('d')?.originIno, undefined);
    });
  });

  describe('xattrs', () => {
    it('stores, lists, reads and removes values by copy', () => {
      const layer = MemoryLayer.from({ f: 'x', l: { symlink: 'f' } });
      const value = Buffer.from('v1');
      layer.setxattr('f', 'user.a', value);
      value[0] = 0x58; // the stored copy must not alias the caller's buffer
      layer.setxattr('f', 'user.b', new Uint8Array([1, 2]));
      assert.deepEqual(layer.listxattr('f'), ['user.a', 'user.b']);
      assert.deepEqual(layer.getxattr('f', 'user.a'), Buffer.from('v1'));
      assert.equal(layer.getxattr('f', 'user.none'), undefined);
      layer.getxattr('f', 'user.a')![0] = 0x58;
      assert.deepEqual(layer.getxattr('f', 'user.a'), Buffer.from('v1'));
      layer.setxattr('f', 'user.a', Buffer.from('v2'));
      assert.deepEqual(layer.getxattr('f', 'user.a'), Buffer.from('v2'));
      layer.removexattr('f', 'user.a');
      assert.deepEqual(layer.listxattr('f'), ['user.b']);
      assert.throws(() => layer.removexattr('f', 'user.a'), code('ENODATA'));
      assert.throws(() => layer.getxattr('missing', 'user.a'), code('ENOENT'));
      // Linux keeps user xattrs off symlinks.
      assert.throws(() => layer.setxattr('l', 'user.a', Buffer.from('x')), code('EPERM'));
      layer.setxattr('l', 'trusted.t', Buffer.from('x'));
      assert.deepEqual(layer.listxattr('l'), ['trusted.t']);
    });
  });

  describe('path setters', () => {
    it('chmod keeps type bits, lchown keeps -1 ids, truncate grows and shrinks', () => {
      const layer = MemoryLayer.from({ f: 'abcdef', d: {}, l: { symlink: 'f' } });
      layer.chmod('d', 0o100700);
      assert.equal(layer.lstat('d').mode, S_IFDIR | 0o700);
      layer.lchown('l', 5, -1);
      assert.equal(layer.lstat('l').uid, 5);
      assert.equal(layer.lstat('l').gid, process.getgid?.() ?? 0);
      assert.equal(layer.lstat('f').uid, process.getuid?.() ?? 0);
      layer.lutimes('l', 1000000n, 2000000n);
      assert.equal(layer.lstat('l').mtimeMs, 2);
      assert.notEqual(layer.lstat('f').mtimeMs, 2);
      layer.lutimes('f', 1000000n, 2000000n);
      layer.truncate('f', 6);
      assert.equal(layer.lstat('f').mtimeMs, 2);
      layer.truncate('f', 3);
      assert.ok(layer.lstat('f').mtimeMs > 2);
      assert.equal(content(layer, 'f'), 'abc');
      layer.truncate('f', 5);
      assert.deepEqual([...Buffer.from(content(layer, 'f'))], [0x61, 0x62, 0x63, 0, 0]);
      assert.throws(() => layer.truncate('d', 0), code('EISDIR'));
      assert.throws(() => layer.truncate('l', 0), code('ELOOP'));
      assert.throws(() => layer.truncate('f', -1), code('EINVAL'));
      assert.throws(() => layer.chmod('missing', 0o644), code('ENOENT'));
    });
  });

  describe('copyData', () => {
    it('copies bytes from another layer into a new file', () => {
      const big = Buffer.alloc(300_000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      const lower = MemoryLayer.from({ d: { big, small: 'tiny' } });
      const upper = MemoryLayer.from({ d: {} });
      upper.copyData(lower, 'd/big', 'd/big');
      const file = upper.open('d/big', O_RDONLY);
      const back = Buffer.alloc(big.length + 10);
      assert.equal(file.read(back, 0, back.length, 0), big.length);
      assert.ok(back.subarray(0, big.length).equals(big));
      file.close();
      // The lower layer is untouched and unshared.
      writeFile(upper, 'd/big', 'changed');
      assert.equal(lower.lstat('d/big').size, big.length);
    });

    it('overwrites an existing file in place, including temp paths', () => {
      const lower = MemoryLayer.from({ small: 'tiny' });
      const upper = MemoryLayer.from({ target: 'much longer old content' });
      const ino = upper.lstat('target').ino;
      upper.copyData(lower, 'small', 'target');
      assert.equal(content(upper, 'target'), 'tiny');
      assert.equal(upper.lstat('target').ino, ino);
      const tmp = upper.tempPath();
      upper.copyData(lower, 'small', tmp);
      assert.equal(content(upper, tmp), 'tiny');
    });

    it('reports the source layer errors', () => {
      const lower = MemoryLayer.from({ d: {}, l: { symlink: 'd' } });
      const upper = MemoryLayer.from({ d: {} });
      assert.throws(() => upper.copyData(lower, 'missing', 'x'), code('ENOENT'));
      assert.throws(() => upper.copyData(lower, 'l', 'x'), code('ELOOP'));
      assert.throws(() => upper.copyData(lower, 'd', 'x'), code('EISDIR'));
      assert.throws(() => upper.copyData(MemoryLayer.from({ f: 'x' }), 'f', 'd'), code('EISDIR'));
    });
  });

  describe('layer-wide', () => {
    it('statfs looks like tmpfs and shrinks as data is added', () => {
      const layer = new MemoryLayer();
      const before = layer.statfs();
      assert.equal(before.type, 0x01021994);
      assert.equal(before.bsize, 4096);
      assert.ok(before.bfree <= before.blocks && before.bavail <= before.blocks);
      writeFile(layer, 'f', 'x'.repeat(100_000));
      const after = layer.statfs();
      assert.ok(after.bfree < before.bfree);
      assert.equal(after.ffree, before.ffree - 1);
    });

    it('has no host directory and forgets everything on close', () => {
      const layer = MemoryLayer.from({ f: 'x', d: { g: 'y' } });
      assert.equal(layer.root, undefined);
      const held = layer.open('f', O_RDONLY);
      layer.close();
      assert.deepEqual(layer.readdir(''), []);
      assert.equal(layer.lookup('d/g'), undefined);
      assert.equal(readAll(held), 'x');
      held.close();
    });
  });
});
