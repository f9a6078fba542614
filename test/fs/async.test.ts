// The callback and promise forms of the fs facade, and Dir: every form against a real overlay,
// optional arguments before the callback, later-tick delivery, and Node's error shapes.
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { cb, makeOverlayFs, type FsFixture } from '../support/fixture.js';

const TREE = {
  'a.txt': 'hello world',
  dir: { 'one.txt': '1', sub: { 'deep.txt': 'deep' } },
  'link': { symlink: 'a.txt' },
};

const osErrno = osConstants.errno as Record<string, number>;

let fx: FsFixture;
beforeEach(() => {
  fx = makeOverlayFs(TREE);
});
afterEach(() => fx.close());

function assertNodeError(err: unknown, code: string, syscall: string, p?: string): void {
  const e = err as NodeJS.ErrnoException;
  assert.ok(e instanceof Error, 'an Error');
  assert.equal(e.code, code);
  assert.equal(e.syscall, syscall);
  assert.equal(e.errno, -(osErrno[code] ?? NaN));
  if (p !== undefined) {
    assert.equal(e.path, p);
    assert.match(e.message, new RegExp(`^${code}: .*, ${syscall} '${p.replace(/[/.]/g, '\\$&')}'$`));
  }
}


describe('callback forms', () => {
  it('deliver results on a later tick', async () => {
    let sync = true;
    const [st] = await cb<[nodeFs.Stats]>((done) => {
      fx.fs.stat('/a.txt', (err, s) => {
        assert.equal(sync, false);
        done(err, s);
      });
      sync = false;
    });
    assert.equal(st.size, 11);
    assert.ok(st instanceof nodeFs.Stats);
  });

  it('throw synchronously without a callback, as Node does', () => {
    assert.throws(() => (fx.fs.stat as unknown as (p: string) => void)('/a.txt'), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => (fx.fs.readFile as unknown as (p: string, o: string) => void)('/a.txt', 'utf8'), { code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('give Node-shaped errors', async () => {
    const err = await cb((done) => fx.fs.open('/x', 'r', done)).catch((e: unknown) => e);
    assert.equal((err as Error).message, "ENOENT: no such file or directory, open '/x'");
    assertNodeError(err, 'ENOENT', 'open', '/x');
    const err2 = await cb((done) => fx.fs.readdir('/a.txt', done)).catch((e: unknown) => e);
    assertNodeError(err2, 'ENOTDIR', 'scandir', '/a.txt');
    const err3 = await cb((done) => fx.fs.fstat(12345, done)).catch((e: unknown) => e);
    assert.equal((err3 as NodeJS.ErrnoException).code, 'EBADF');
  });

  it('access, exists, stat, lstat, statfs with optional arguments', async () => {
    await cb((done) => fx.fs.access('/a.txt', done));
    await cb((done) => fx.fs.access('/a.txt', nodeFs.constants.R_OK, done));
    const err = await cb((done) => fx.fs.access('/nope', done)).catch((e: unknown) => e);
    assertNodeError(err, 'ENOENT', 'access', '/nope');
    assert.equal(await new Promise((r) => fx.fs.exists('/a.txt', r)), true);
    assert.equal(await new Promise((r) => fx.fs.exists('/nope', r)), false);
    assert.equal(await promisify(fx.fs.exists)('/dir'), true);
    const [big] = await cb<[nodeFs.BigIntStats]>((done) => fx.fs.stat('/a.txt', { bigint: true }, done));
    assert.equal(big.size, 11n);
    const [l] = await cb<[nodeFs.Stats]>((done) => fx.fs.lstat('/link', done));
    assert.ok(l.isSymbolicLink());
    const [s] = await cb<[nodeFs.Stats]>((done) => fx.fs.stat('/link', done));
    assert.ok(s.isFile());
    const [sfs] = await cb<[nodeFs.StatsFs]>((done) => fx.fs.statfs('/', done));
    assert.equal(typeof sfs.bsize, 'number');
  });

  it('open, read (all shapes), fstat, close', async () => {
    const [fd] = await cb<[number]>((done) => fx.fs.open('/a.txt', done));
    const buf = Buffer.alloc(5);
    const [n, b] = await cb<[number, Buffer]>((done) => fx.fs.read(fd, buf, 0, 5, 0, done));
    assert.equal(n, 5);
    assert.equal(b, buf);
    assert.equal(b.toString(), 'hello');
    const [n2, b2] = await cb<[number, Buffer]>((done) => fx.fs.read(fd, { buffer: Buffer.alloc(3), position: 6 }, done));
    assert.equal(b2.subarray(0, n2).toString(), 'wor');
    const [n3, b3] = await cb<[number, Buffer]>((done) => fx.fs.read(fd, Buffer.alloc(4), { position: 1 }, done));
    assert.equal(b3.subarray(0, n3).toString(), 'ello');
    const [n4, b4] = await cb<[number, Buffer]>((done) => fx.fs.read(fd, done));
    assert.equal(b4.length, 16384);
    assert.equal(b4.subarray(0, n4).toString(), 'hello world');
    const got = await promisify(fx.fs.read)(fd, Buffer.alloc(2), 0, 2, 0);
    assert.deepEqual({ n: got.bytesRead, s: got.buffer.toString() }, { n: 2, s: 'he' });
    const [st] = await cb<[nodeFs.Stats]>((done) => fx.fs.fstat(fd, done));
    assert.equal(st.size, 11);
    await cb((done) => fx.fs.close(fd, done));
    const err = await cb((done) => fx.fs.close(fd, done)).catch((e: unknown) => e);
    assert.equal((err as NodeJS.ErrnoException).code, 'EBADF');
  });

  it('write (buffer and string), readv, writev, fsync, fdatasync, ftruncate; lower file untouched', async () => {
    const [fd] = await cb<[number]>((done) => fx.fs.open('/a.txt', 'r+', done));
    const [w, wb] = await cb<[number, Buffer]>((done) => fx.fs.write(fd, Buffer.from('HE'), done));
    assert.equal(w, 2);
    assert.equal(wb.toString(), 'HE');
    const [ws, str] = await cb<[number, string]>((done) => fx.fs.write(fd, 'WORLD', 6, 'utf8', done));
    assert.equal(ws, 5);
    assert.equal(str, 'WORLD');
    const [wv, bufs] = await cb<[number, Buffer[]]>((done) => fx.fs.writev(fd, [Buffer.from('L'), Buffer.from('L')], 2, done));
    assert.equal(wv, 2);
    assert.equal(bufs.length, 2);
    const a = Buffer.alloc(5);
    const b = Buffer.alloc(6);
    const [rv] = await cb<[number, Buffer[]]>((done) => fx.fs.readv(fd, [a, b], 0, done));
    assert.equal(rv, 11);
    assert.equal(a.toString() + b.toString(), 'HELLo WORLD');
    await cb((done) => fx.fs.fsync(fd, done));
    await cb((done) => fx.fs.fdatasync(fd, done));
    await cb((done) => fx.fs.ftruncate(fd, 4, done));
    await cb((done) => fx.fs.close(fd, done));
    assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'HELL');
    assert.equal(nodeFs.readFileSync(path.join(fx.lower, 'a.txt'), 'utf8'), 'hello world');
    assert.equal(nodeFs.readFileSync(path.join(fx.upper, 'a.txt'), 'utf8'), 'HELL');
  });

  it('readFile, writeFile, appendFile, truncate', async () => {
    const [buf] = await cb<[Buffer]>((done) => fx.fs.readFile('/a.txt', done));
    assert.ok(Buffer.isBuffer(buf));
    const [text] = await cb<[string]>((done) => fx.fs.readFile('/a.txt', { encoding: 'utf8' }, done));
    assert.equal(text, 'hello world');
    await cb((done) => fx.fs.writeFile('/new.txt', 'x', done));
    await cb((done) => fx.fs.appendFile('/new.txt', 'y', 'utf8', done));
    await cb((done) => fx.fs.appendFile('/a.txt', '!', done));
    assert.equal(fx.fs.readFileSync('/new.txt', 'utf8'), 'xy');
    assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'hello world!');
    await cb((done) => fx.fs.truncate('/a.txt', 5, done));
    await cb((done) => fx.fs.truncate('/new.txt', done));
    assert.equal(fx.fs.readFileSync('/a.txt', 'utf8'), 'hello');
    assert.equal(fx.fs.readFileSync('/new.txt', 'utf8'), '');
  });

  it('readdir, mkdir, mkdtemp, rmdir, rm, unlink, rename, copyFile, cp', async () => {
    const [names] = await cb<[string[]]>((done) => fx.fs.readdir('/', done));
    assert.deepEqual([...names].sort(), ['a.txt', 'dir', 'link']);
    const [ents] = await cb<[nodeFs.Dirent[]]>((done) => fx.fs.readdir('/dir', { withFileTypes: true }, done));
    assert.deepEqual(ents.map((e) => [e.name, e.isDirectory()]).sort(), [['one.txt', false], ['sub', true]]);
    const [all] = await cb<[string[]]>((done) => fx.fs.readdir('/dir', { recursive: true, encoding: 'utf8' }, done));
    assert.deepEqual([...all].sort(), ['one.txt', 'sub', 'sub/deep.txt']);
    const [first] = await cb<[string | undefined]>((done) => fx.fs.mkdir('/m/n/o', { recursive: true }, done));
    assert.equal(first, '/m');
    await cb((done) => fx.fs.mkdir('/plain', done));
    const err = await cb((done) => fx.fs.mkdir('/plain', 0o755, done)).catch((e: unknown) => e);
    assertNodeError(err, 'EEXIST', 'mkdir', '/plain');
    const [tmp] = await cb<[string]>((done) => fx.fs.mkdtemp('/tmp-', done));
    assert.match(tmp, /^\/tmp-.{6}$/);
    await cb((done) => fx.fs.rmdir(tmp, done));
    await cb((done) => fx.fs.rename('/a.txt', '/b.txt', done));
    await cb((done) => fx.fs.copyFile('/b.txt', '/c.txt', done));
    const exclErr = await cb((done) => fx.fs.copyFile('/b.txt', '/c.txt', nodeFs.constants.COPYFILE_EXCL, done)).catch((e: unknown) => e);
    assert.equal((exclErr as NodeJS.ErrnoException).code, 'EEXIST');
    await cb((done) => fx.fs.cp('/dir', '/dir2', { recursive: true }, done));
    assert.equal(fx.fs.readFileSync('/dir2/sub/deep.txt', 'utf8'), 'deep');
    const rmErr = await cb((done) => fx.fs.rm('/dir', done)).catch((e: unknown) => e);
    assert.equal((rmErr as NodeJS.ErrnoException).code, 'ERR_FS_EISDIR');
    await cb((done) => fx.fs.rm('/dir', { recursive: true }, done));
    await cb((done) => fx.fs.rm('/nope', { force: true }, done));
    await cb((done) => fx.fs.unlink('/c.txt', done));
    assert.deepEqual(fx.fs.readdirSync('/').sort(), ['b.txt', 'dir2', 'link', 'm', 'plain']);
    assert.ok(nodeFs.existsSync(path.join(fx.lower, 'dir/sub/deep.txt')), 'lower layer untouched');
  });

  it('symlink, readlink, realpath (and .native), link', async () => {
    await cb((done) => fx.fs.symlink('dir/one.txt', '/s', done));
    const [target] = await cb<[string]>((done) => fx.fs.readlink('/s', done));
    assert.equal(target, 'dir/one.txt');
    const [asBuf] = await cb<[Buffer]>((done) => fx.fs.readlink('/s', { encoding: 'buffer' }, done));
    assert.ok(Buffer.isBuffer(asBuf));
    const [real] = await cb<[string]>((done) => fx.fs.realpath('/s', done));
    assert.equal(real, '/dir/one.txt');
    const [native] = await cb<[string]>((done) => fx.fs.realpath.native('/link', done));
    assert.equal(native, '/a.txt');
    await cb((done) => fx.fs.link('/a.txt', '/hard', done));
    assert.equal((fx.fs.statSync('/hard') as nodeFs.Stats).ino, (fx.fs.statSync('/a.txt') as nodeFs.Stats).ino);
  });

  it('chmod, fchmod, chown, lchown, fchown, utimes, lutimes, futimes', async () => {
    await cb((done) => fx.fs.chmod('/a.txt', 0o600, done));
    assert.equal(fx.fs.statSync('/a.txt').mode & 0o777, 0o600);
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    await cb((done) => fx.fs.chown('/a.txt', uid, gid, done));
    await cb((done) => fx.fs.lchown('/link', uid, gid, done));
    await cb((done) => fx.fs.utimes('/a.txt', 1000, new Date(2000_000), done));
    const st = fx.fs.statSync('/a.txt');
    assert.equal(st.atimeMs, 1000_000);
    assert.equal(st.mtimeMs, 2000_000);
    await cb((done) => fx.fs.lutimes('/link', 3000, 3000, done));
    assert.equal(fx.fs.lstatSync('/link').mtimeMs, 3000_000);
    const fd = fx.fs.openSync('/dir/one.txt', 'r');
    await cb((done) => fx.fs.fchmod(fd, 0o640, done));
    await cb((done) => fx.fs.fchown(fd, uid, gid, done));
    await cb((done) => fx.fs.futimes(fd, 5, 6, done));
    fx.fs.closeSync(fd);
    const st2 = fx.fs.statSync('/dir/one.txt');
    assert.equal(st2.mode & 0o777, 0o640);
    assert.equal(st2.mtimeMs, 6000);
  });

  it('opendir gives a Dir', async () => {
    const [dir] = await cb<[nodeFs.Dir]>((done) => fx.fs.opendir('/dir', done));
    assert.equal(dir.path, '/dir');
    const names: string[] = [];
    for await (const e of dir) names.push(e.name);
    assert.deepEqual(names.sort(), ['one.txt', 'sub']);
  });
});

describe('the assembled fs object', () => {
  it('carries the classes and constants callers reach for', async () => {
    assert.equal(fx.fs.constants, nodeFs.constants);
    assert.equal(fx.fs.F_OK, nodeFs.constants.F_OK);
    assert.equal(fx.fs.X_OK, nodeFs.constants.X_OK);
    assert.ok(fx.fs.statSync('/a.txt') instanceof fx.fs.Stats);
    assert.ok(fx.fs.readdirSync('/', { withFileTypes: true })[0] instanceof fx.fs.Dirent);
    assert.ok(fx.fs.opendirSync('/') instanceof fx.fs.Dir);
    assert.equal(fx.fs.realpathSync.native('/link'), '/a.txt');
    // Sync methods are bound: they work detached, as Node's do.
    const { readFileSync } = fx.fs;
    assert.equal(readFileSync('/a.txt', 'utf8'), 'hello world');
  });

  it('close(fd) may omit its callback; promisify(write) gives bytesWritten and buffer', async () => {
    const fd = fx.fs.openSync('/w.txt', 'w');
    const r = await promisify(fx.fs.write)(fd, Buffer.from('abc'));
    assert.equal(r.bytesWritten, 3);
    assert.equal(r.buffer.toString(), 'abc');
    fx.fs.close(fd);
    await new Promise((resolve) => setImmediate(resolve));
    assert.throws(() => fx.fs.fstatSync(fd), { code: 'EBADF' });
  });
});

describe('promise forms', () => {
  const p = (): FsFixture['fs']['promises'] => fx.fs.promises;

  it('reject with Node-shaped errors', async () => {
    await assert.rejects(p().readFile('/x'), (err: unknown) => {
      assert.equal((err as Error).message, "ENOENT: no such file or directory, open '/x'");
      assertNodeError(err, 'ENOENT', 'open', '/x');
      return true;
    });
    await assert.rejects(p().rmdir('/dir'), { code: 'ENOTEMPTY', syscall: 'rmdir', path: '/dir' });
    await assert.rejects(p().access('/a.txt', nodeFs.constants.X_OK), { code: 'EACCES' });
  });

  it('file forms: readFile, writeFile (strings, buffers, iterables), appendFile, truncate, copyFile', async () => {
    assert.equal(await p().readFile('/a.txt', 'utf8'), 'hello world');
    assert.ok(Buffer.isBuffer(await p().readFile('/a.txt')));
    await p().writeFile('/w.txt', 'ab');
    await p().appendFile('/w.txt', Buffer.from('cd'));
    await p().writeFile('/it.txt', ['x', Buffer.from('y'), 'z']);
    await p().writeFile('/ait.txt', (async function* () { yield 'q'; yield 'r'; })(), { flush: true });
    assert.equal(fx.fs.readFileSync('/w.txt', 'utf8'), 'abcd');
    assert.equal(fx.fs.readFileSync('/it.txt', 'utf8'), 'xyz');
    assert.equal(fx.fs.readFileSync('/ait.txt', 'utf8'), 'qr');
    await p().appendFile('/a.txt', '!');
    assert.equal(await p().readFile('/a.txt', { encoding: 'utf8' }), 'hello world!');
    assert.equal(nodeFs.readFileSync(path.join(fx.lower, 'a.txt'), 'utf8'), 'hello world');
    await p().truncate('/a.txt', 1);
    await p().copyFile('/a.txt', '/copy.txt');
    assert.equal(fx.fs.readFileSync('/copy.txt', 'utf8'), 'h');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(p().readFile('/a.txt', { signal: ac.signal }), { name: 'AbortError' });
    await assert.rejects(p().writeFile('/a.txt', 'z', { signal: ac.signal }), { name: 'AbortError' });
  });

  it('metadata forms: stat, lstat, statfs, access, chmod, chown, lchown, utimes, lutimes', async () => {
    assert.equal((await p().stat('/a.txt')).size, 11);
    assert.equal((await p().stat('/a.txt', { bigint: true })).size, 11n);
    assert.ok((await p().lstat('/link')).isSymbolicLink());
    assert.equal(typeof (await p().statfs('/')).blocks, 'number');
    await p().access('/a.txt');
    await p().chmod('/a.txt', 0o604);
    assert.equal((await p().stat('/a.txt')).mode & 0o777, 0o604);
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    await p().chown('/a.txt', uid, gid);
    await p().lchown('/link', uid, gid);
    await p().utimes('/a.txt', 10, 20);
    await p().lutimes('/link', 30, 40);
    assert.equal((await p().stat('/a.txt')).mtimeMs, 20_000);
    assert.equal((await p().lstat('/link')).mtimeMs, 40_000);
  });

  it('directory and link forms', async () => {
    assert.deepEqual((await p().readdir('/')).sort(), ['a.txt', 'dir', 'link']);
    const ents = await p().readdir('/dir', { withFileTypes: true });
    assert.ok(ents.every((e) => typeof e.isFile === 'function'));
    assert.equal(await p().mkdir('/x/y', { recursive: true }), '/x');
    assert.equal(await p().mkdir('/z'), undefined);
    const tmp = await p().mkdtemp('/t-');
    await p().rmdir(tmp);
    await p().rename('/a.txt', '/x/a.txt');
    await p().symlink('/x/a.txt', '/sl');
    assert.equal(await p().readlink('/sl'), '/x/a.txt');
    assert.equal(await p().realpath('/sl'), '/x/a.txt');
    await p().link('/x/a.txt', '/hl');
    await p().unlink('/sl');
    await p().cp('/dir', '/dir3', { recursive: true });
    assert.equal(await p().readFile('/dir3/sub/deep.txt', 'utf8'), 'deep');
    await p().rm('/dir3', { recursive: true });
    assert.deepEqual((await p().readdir('/')).sort(), ['dir', 'hl', 'link', 'x', 'z']);
    assert.equal(p().constants, nodeFs.constants);
  });

  it('open gives a FileHandle; opendir gives a Dir', async () => {
    const h = await p().open('/a.txt');
    assert.equal(typeof h.fd, 'number');
    assert.equal(await h.readFile('utf8'), 'hello world');
    await h.close();
    const d = await p().opendir('/dir');
    assert.ok((await d.read()) !== null);
    await d.close();
    await assert.rejects(p().opendir('/a.txt'), { code: 'ENOTDIR', syscall: 'opendir', path: '/a.txt' });
    await assert.rejects(p().opendir('/none'), { code: 'ENOENT', syscall: 'opendir' });
  });
});

describe('Dir', () => {
  it('read(): promise, callback and sync forms, then null', async () => {
    const dir = fx.fs.opendirSync('/dir');
    const a = await dir.read();
    const [b] = await cb<[nodeFs.Dirent | null]>((done) => dir.read(done));
    const c = dir.readSync();
    assert.deepEqual([a?.name, b?.name].sort(), ['one.txt', 'sub']);
    assert.equal(c, null);
    assert.equal(await dir.read(), null);
    assert.equal(a?.parentPath, '/dir');
    dir.closeSync();
    assert.throws(() => dir.readSync(), { code: 'ERR_DIR_CLOSED' });
    await assert.rejects(dir.close(), { code: 'ERR_DIR_CLOSED' });
    const err = await cb((done) => dir.close(done)).catch((e: unknown) => e);
    assert.equal((err as NodeJS.ErrnoException).code, 'ERR_DIR_CLOSED');
  });

  it('iterates the merged listing and closes itself, even on break', async () => {
    fx.fs.writeFileSync('/dir/upper.txt', 'u');
    fx.fs.unlinkSync('/dir/one.txt');
    const dir = fx.fs.opendirSync('/dir');
    const names: string[] = [];
    for await (const e of dir) names.push(e.name);
    assert.deepEqual(names.sort(), ['sub', 'upper.txt']);
    assert.throws(() => dir.readSync(), { code: 'ERR_DIR_CLOSED' });
    const early = fx.fs.opendirSync('/dir');
    for await (const e of early) {
      assert.ok(e.name);
      break;
    }
    assert.throws(() => early.readSync(), { code: 'ERR_DIR_CLOSED' });
  });

  it('recursive, and close by callback', async () => {
    const dir = fx.fs.opendirSync('/dir', { recursive: true });
    const names: string[] = [];
    for (let e = dir.readSync(); e !== null; e = dir.readSync()) names.push(path.posix.join(e.parentPath, e.name));
    assert.deepEqual(names.sort(), ['/dir/one.txt', '/dir/sub', '/dir/sub/deep.txt']);
    await cb((done) => dir.close(done));
  });
});
