// The host calls of src/sys/ against the real kernel, in a temp dir of their own.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as sys from '../../src/sys/index.js';

const root = process.getuid?.() === 0;

function code(expected: string, syscall?: string, path?: string): (err: unknown) => boolean {
  return (err) => {
    const e = err as NodeJS.ErrnoException;
    assert.equal(e.code, expected);
    assert.ok(typeof e.errno === 'number' && e.errno < 0, `negative errno, got ${e.errno}`);
    if (syscall !== undefined) assert.equal(e.syscall, syscall);
    if (path !== undefined) assert.equal(e.path, path);
    return true;
  };
}

describe('src/sys', () => {
  let dir: string;
  let dfd: number;
  before(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'ovlfs-sys-'));
    fs.mkdirSync(join(dir, 'a/b'), { recursive: true });
    fs.writeFileSync(join(dir, 'a/b/f'), 'hello');
    fs.symlinkSync('/etc', join(dir, 'abs'));
    fs.symlinkSync('../..', join(dir, 'up'));
    fs.symlinkSync('a', join(dir, 'rel'));
    dfd = sys.openPath(dir, sys.O_PATH | sys.O_DIRECTORY);
  });
  after(() => {
    fs.closeSync(dfd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('openat2', () => {
    it('opens below the directory fd', () => {
      const fd = sys.openat2(dfd, 'a/b/f', sys.O_RDONLY);
      try {
        assert.equal(fs.readFileSync(fd, 'utf8'), 'hello');
      } finally {
        fs.closeSync(fd);
      }
    });
    it('refuses absolute paths, .. above the fd and symlinks that leave it (EXDEV)', () => {
      assert.throws(() => sys.openat2(dfd, '/etc/passwd', sys.O_RDONLY), code('EXDEV', 'openat2', '/etc/passwd'));
      assert.throws(() => sys.openat2(dfd, '../', sys.O_RDONLY), code('EXDEV'));
      assert.throws(() => sys.openat2(dfd, 'abs/passwd', sys.O_RDONLY), code('EXDEV'));
      assert.throws(() => sys.openat2(dfd, 'up/x', sys.O_RDONLY), code('EXDEV'));
    });
    it('follows a symlink that stays inside, unless noSymlinks', () => {
      fs.closeSync(sys.openat2(dfd, 'rel/b/f', sys.O_RDONLY));
      assert.throws(() => sys.openat2(dfd, 'rel/b/f', sys.O_RDONLY, { noSymlinks: true }), code('ELOOP'));
    });
    it('refuses /proc magic links', () => {
      const proc = sys.openPath('/proc/self', sys.O_PATH | sys.O_DIRECTORY);
      try {
        assert.throws(() => sys.openat2(proc, `fd/${dfd}`, sys.O_PATH), (err: unknown) => ['ELOOP', 'EXDEV'].includes((err as { code: string }).code));
      } finally {
        fs.closeSync(proc);
      }
    });
    it('gives Node-shaped errors', () => {
      assert.throws(() => sys.openat2(dfd, 'missing', sys.O_RDONLY), (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.equal(err.message, "ENOENT: no such file or directory, openat2 'missing'");
        return code('ENOENT', 'openat2', 'missing')(err);
      });
    });
    it('creates with a mode', () => {
      const fd = sys.openat2(dfd, 'new', sys.O_WRONLY | sys.O_CREAT | sys.O_EXCL, { mode: 0o640 });
      fs.closeSync(fd);
      assert.equal(fs.statSync(join(dir, 'new')).mode & 0o777, 0o640 & ~process.umask());
      fs.unlinkSync(join(dir, 'new'));
    });
  });

  describe('statx', () => {
    it('agrees with lstat and gives nanosecond times', () => {
      const st = sys.statx(dfd, 'a/b/f');
      const node = fs.lstatSync(join(dir, 'a/b/f'), { bigint: true });
      assert.equal(BigInt(st.ino), node.ino);
      assert.equal(BigInt(st.dev), node.dev);
      assert.equal(BigInt(st.mode), node.mode);
      assert.equal(st.size, 5);
      assert.equal(st.mtimeNs, node.mtimeNs);
      assert.equal(st.atimeNs, node.atimeNs);
      assert.equal(st.ctimeNs, node.ctimeNs);
      assert.equal(Math.floor(st.mtimeMs), Number(node.mtimeMs));
    });
    it('does not follow the last symlink, and stats the fd itself with AT_EMPTY_PATH', () => {
      assert.equal(sys.statx(dfd, 'abs').mode & 0o170000, 0o120000);
      assert.equal(sys.statx(dfd, '', sys.AT_EMPTY_PATH).ino, fs.statSync(dir).ino);
    });
  });

  describe('names', () => {
    it('mkdirat, symlinkat, readlinkat, linkat, unlinkat', () => {
      sys.mkdirat(dfd, 'd', 0o700);
      assert.ok(fs.statSync(join(dir, 'd')).isDirectory());
      sys.symlinkat('target/x', dfd, 'd/l');
      assert.equal(sys.readlinkat(dfd, 'd/l'), 'target/x');
      sys.linkat(dfd, 'a/b/f', dfd, 'd/f2');
      assert.equal(fs.statSync(join(dir, 'a/b/f')).nlink, 2);
      assert.throws(() => sys.linkat(dfd, 'a/b/f', dfd, 'd/f2'), code('EEXIST', 'linkat'));
      sys.unlinkat(dfd, 'd/f2');
      sys.unlinkat(dfd, 'd/l');
      assert.throws(() => sys.unlinkat(dfd, 'd'), code('EISDIR'));
      sys.unlinkat(dfd, 'd', sys.AT_REMOVEDIR);
      assert.equal(fs.existsSync(join(dir, 'd')), false);
      assert.throws(() => sys.readlinkat(dfd, 'a'), code('EINVAL', 'readlinkat', 'a'));
    });
    it('mknodat makes fifos, and the 0/0 whiteout device', () => {
      sys.mknodat(dfd, 'fifo', 0o010644, 0);
      assert.ok(fs.lstatSync(join(dir, 'fifo')).isFIFO());
      sys.unlinkat(dfd, 'fifo');
      sys.mknodat(dfd, 'wh', 0o020000, 0);
      const st = fs.lstatSync(join(dir, 'wh'));
      assert.ok(st.isCharacterDevice());
      assert.equal(st.rdev, 0);
      sys.unlinkat(dfd, 'wh');
    });
  });

  describe('renameat2', () => {
    it('RENAME_NOREPLACE refuses to clobber', () => {
      fs.writeFileSync(join(dir, 'x'), 'x');
      fs.writeFileSync(join(dir, 'y'), 'y');
      assert.throws(() => sys.renameat2(dfd, 'x', dfd, 'y', sys.RENAME_NOREPLACE), code('EEXIST', 'rename', 'x'));
      sys.renameat2(dfd, 'x', dfd, 'z', sys.RENAME_NOREPLACE);
      assert.equal(fs.readFileSync(join(dir, 'z'), 'utf8'), 'x');
    });
    it('RENAME_EXCHANGE swaps a file and a directory', () => {
      fs.mkdirSync(join(dir, 'xd'));
      sys.renameat2(dfd, 'z', dfd, 'xd', sys.RENAME_EXCHANGE);
      assert.ok(fs.statSync(join(dir, 'z')).isDirectory());
      assert.equal(fs.readFileSync(join(dir, 'xd'), 'utf8'), 'x');
      fs.rmSync(join(dir, 'z'), { recursive: true });
      fs.rmSync(join(dir, 'xd'));
    });
    it('RENAME_WHITEOUT moves a directory and leaves a 0/0 device in one step', { skip: root ? false : 'needs CAP_MKNOD for RENAME_WHITEOUT' }, () => {
      fs.mkdirSync(join(dir, 'wd'));
      fs.writeFileSync(join(dir, 'wd/in'), '1');
      sys.renameat2(dfd, 'wd', dfd, 'moved', sys.RENAME_WHITEOUT);
      const st = fs.lstatSync(join(dir, 'wd'));
      assert.ok(st.isCharacterDevice());
      assert.equal(st.rdev, 0);
      assert.equal(fs.readFileSync(join(dir, 'moved/in'), 'utf8'), '1');
      fs.rmSync(join(dir, 'moved'), { recursive: true });
      fs.rmSync(join(dir, 'wd'));
      fs.rmSync(join(dir, 'y'));
    });
  });

  describe('attributes', () => {
    it('utimensat sets nanoseconds, leaves an omitted time alone, and does not follow symlinks', () => {
      sys.utimensat(dfd, 'a/b/f', 1_000_000_123n, 2_000_000_456n);
      let st = fs.statSync(join(dir, 'a/b/f'), { bigint: true });
      assert.equal(st.atimeNs, 1_000_000_123n);
      assert.equal(st.mtimeNs, 2_000_000_456n);
      sys.utimensat(dfd, 'a/b/f', undefined, 5_000_000_000n);
      st = fs.statSync(join(dir, 'a/b/f'), { bigint: true });
      assert.equal(st.atimeNs, 1_000_000_123n);
      assert.equal(st.mtimeNs, 5_000_000_000n);
      sys.utimensat(dfd, 'rel', 7n, 7n);
      assert.equal(fs.lstatSync(join(dir, 'rel'), { bigint: true }).mtimeNs, 7n);
      assert.notEqual(fs.statSync(join(dir, 'a'), { bigint: true }).mtimeNs, 7n);
      sys.utimensat(dfd, 'a/b/f', -1_500_000_000n, 0n);
      assert.equal(fs.statSync(join(dir, 'a/b/f'), { bigint: true }).atimeNs, -1_500_000_000n);
    });
    it('futimens on an fd', () => {
      const fd = sys.openat2(dfd, 'a/b/f', sys.O_RDONLY);
      try {
        sys.futimens(fd, 11n, 22n);
        assert.equal(fs.fstatSync(fd, { bigint: true }).mtimeNs, 22n);
      } finally {
        fs.closeSync(fd);
      }
    });
    it('fchmodat and fchownat', () => {
      sys.fchmodat(dfd, 'a/b/f', 0o604);
      assert.equal(fs.statSync(join(dir, 'a/b/f')).mode & 0o7777, 0o604);
      const uid = process.getuid!();
      const gid = process.getgid!();
      sys.fchownat(dfd, 'a/b/f', -1, gid);
      assert.equal(fs.statSync(join(dir, 'a/b/f')).uid, uid);
      if (root) {
        sys.fchownat(dfd, 'rel', 1234, 1234);
        assert.equal(fs.lstatSync(join(dir, 'rel')).uid, 1234);
        assert.equal(fs.statSync(join(dir, 'a')).uid, uid);
      }
    });
  });

  describe('xattrs', () => {
    it('the f* forms on an fd, the l* forms through /proc/self/fd/<dirfd>/<name>', () => {
      const fd = sys.openat2(dfd, 'a/b/f', sys.O_RDONLY);
      try {
        assert.equal(sys.fgetxattr(fd, 'user.x'), undefined);
        sys.fsetxattr(fd, 'user.x', Buffer.from('1'));
        sys.fsetxattr(fd, 'user.big', Buffer.alloc(3000, 7));
        assert.deepEqual(sys.fgetxattr(fd, 'user.x'), Buffer.from('1'));
        assert.deepEqual(sys.fgetxattr(fd, 'user.big'), Buffer.alloc(3000, 7));
        assert.deepEqual(sys.flistxattr(fd).filter((n) => n.startsWith('user.')).sort(), ['user.big', 'user.x']);
        assert.throws(() => sys.fsetxattr(fd, 'user.x', Buffer.from('2'), sys.XATTR_CREATE), code('EEXIST', 'fsetxattr'));
        sys.fremovexattr(fd, 'user.big');
        assert.throws(() => sys.fremovexattr(fd, 'user.big'), code('ENODATA'));
      } finally {
        fs.closeSync(fd);
      }
      const parent = sys.openat2(dfd, 'a/b', sys.O_PATH | sys.O_DIRECTORY);
      try {
        const p = `/proc/self/fd/${parent}/f`;
        assert.deepEqual(sys.lgetxattr(p, 'user.x'), Buffer.from('1'));
        sys.lsetxattr(p, 'user.y', Buffer.from('yy'));
        assert.ok(sys.llistxattr(p).includes('user.y'));
        sys.lremovexattr(p, 'user.y');
        assert.equal(sys.lgetxattr(p, 'user.y'), undefined);
      } finally {
        fs.closeSync(parent);
      }
    });
    it('getxattrAt reads below a directory fd without following the last symlink', () => {
      const parent = sys.openat2(dfd, 'a/b', sys.O_PATH | sys.O_DIRECTORY);
      try {
        fs.writeFileSync(join(dir, 'a/b/g'), '');
        sys.lsetxattr(join(dir, 'a/b/g'), 'user.small', Buffer.from('v'));
        sys.lsetxattr(join(dir, 'a/b/g'), 'user.large', Buffer.alloc(2000, 1));
        assert.deepEqual(sys.getxattrAt(parent, 'g', 'user.small'), Buffer.from('v'));
        assert.deepEqual(sys.getxattrAt(parent, 'g', 'user.large'), Buffer.alloc(2000, 1));
        assert.equal(sys.getxattrAt(parent, 'g', 'user.none'), undefined);
        assert.equal(sys.getxattrAt(parent, '.', 'user.none'), undefined);
        fs.symlinkSync('g', join(dir, 'a/b/lg'));
        // The link itself is read, not g (and Linux keeps user.* off symlinks: nothing there).
        assert.equal(sys.getxattrAt(parent, 'lg', 'user.small'), undefined);
        assert.throws(() => sys.getxattrAt(parent, 'missing', 'user.small'), code('ENOENT'));
      } finally {
        fs.closeSync(parent);
      }
    });
    it('tryStatx is undefined for what is not there, and throws for anything else', () => {
      assert.equal(sys.tryStatx(dfd, 'nothing'), undefined);
      assert.equal(sys.tryStatx(dfd, 'a/b/f/under-a-file'), undefined);
      assert.equal(sys.tryStatx(dfd, 'x'.repeat(300)), undefined);
      assert.throws(() => sys.tryStatx(987654, 'x'), code('EBADF', 'statx'));
    });
    it('trusted.* on a symlink through the l* form', { skip: root ? false : 'trusted.* needs CAP_SYS_ADMIN' }, () => {
      const p = join(dir, 'rel');
      sys.lsetxattr(p, 'trusted.overlay.test', Buffer.from('v'));
      assert.deepEqual(sys.lgetxattr(p, 'trusted.overlay.test'), Buffer.from('v'));
      assert.equal(sys.lgetxattr(join(dir, 'a'), 'trusted.overlay.test'), undefined);
    });
  });

  describe('data', () => {
    it('copy_file_range copies at explicit offsets', () => {
      const data = Buffer.alloc(300_000);
      for (let i = 0; i < data.length; i++) data[i] = i % 251;
      fs.writeFileSync(join(dir, 'src'), data);
      const input = sys.openat2(dfd, 'src', sys.O_RDONLY);
      const output = sys.openat2(dfd, 'dst', sys.O_WRONLY | sys.O_CREAT, { mode: 0o600 });
      try {
        let pos = 0;
        for (;;) {
          const n = sys.copyFileRange(input, pos, output, pos, 1 << 20);
          if (n === 0) break;
          pos += n;
        }
        assert.equal(pos, data.length);
      } finally {
        fs.closeSync(input);
        fs.closeSync(output);
      }
      assert.deepEqual(fs.readFileSync(join(dir, 'dst')), data);
    });
    it('FICLONE either clones or says why it cannot', () => {
      const input = sys.openat2(dfd, 'src', sys.O_RDONLY);
      const output = sys.openat2(dfd, 'clone', sys.O_WRONLY | sys.O_CREAT, { mode: 0o600 });
      try {
        sys.ficlone(output, input);
        assert.deepEqual(fs.readFileSync(join(dir, 'clone')), fs.readFileSync(join(dir, 'src')));
      } catch (err) {
        assert.ok(['EOPNOTSUPP', 'ENOTSUP', 'EXDEV', 'EINVAL'].includes((err as { code: string }).code), String(err));
        assert.equal((err as { syscall: string }).syscall, 'ioctl');
      } finally {
        fs.closeSync(input);
        fs.closeSync(output);
      }
    });
    it('fallocate allocates and punches', () => {
      const fd = sys.openat2(dfd, 'alloc', sys.O_RDWR | sys.O_CREAT, { mode: 0o600 });
      try {
        sys.fallocate(fd, 0, 0, 65536);
        assert.equal(fs.fstatSync(fd).size, 65536);
        sys.fallocate(fd, sys.FALLOC_FL_PUNCH_HOLE | sys.FALLOC_FL_KEEP_SIZE, 0, 4096);
        assert.equal(fs.fstatSync(fd).size, 65536);
        assert.throws(() => sys.fallocate(fd, 0, 0, -1), code('EINVAL', 'fallocate'));
      } finally {
        fs.closeSync(fd);
      }
    });
  });

  describe('poll and eventfd', () => {
    it('an eventfd becomes readable once written, and poll says so', () => {
      const efd = sys.eventfd(0, sys.EFD_NONBLOCK | sys.EFD_CLOEXEC);
      try {
        const fds: sys.PollFd[] = [{ fd: efd, events: sys.POLLIN }];
        assert.equal(sys.poll(fds, 0), 0);
        const one = Buffer.alloc(8);
        one.writeBigUInt64LE(3n);
        fs.writeSync(efd, one);
        assert.equal(sys.poll(fds, 1000), 1);
        assert.equal(fds[0]!.revents! & sys.POLLIN, sys.POLLIN);
        const got = Buffer.alloc(8);
        fs.readSync(efd, got);
        assert.equal(got.readBigUInt64LE(), 3n);
        assert.equal(sys.poll([{ fd: 987654, events: sys.POLLIN }], 0), 1);
      } finally {
        fs.closeSync(efd);
      }
    });
    it('ioctl FIONREAD on a file fills a buffer with the bytes left to read', () => {
      const FIONREAD = 0x541b;
      const fd = sys.openat2(dfd, 'a/b/f', sys.O_RDONLY);
      try {
        const n = Buffer.alloc(4);
        sys.ioctl(fd, FIONREAD, n);
        assert.equal(n.readInt32LE(), fs.fstatSync(fd).size);
      } finally {
        fs.closeSync(fd);
      }
    });
  });

  describe('probe', () => {
    it('passes on this kernel', () => {
      sys.probe(dfd, dir);
    });
  });
});
