// A passthrough file system over a real directory on the bridge's node API: the reference implementation
// of NodeFileSystem and the fixture that proves the bridge and the serving loop against real programs (as
// go-fuse's loopback does for go-fuse).
//
// A node is a name: (parent, name), kept in its parent's table of children so that a name looked up again
// is the same node, and renaming a directory moves everything below it for free. Its hard-link key is the
// host's st_dev:st_ino, so the bridge gives hard links one node id as the kernel expects. File handles
// are real fds.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';

import * as xattr from '@napi-rs/xattr';

import { fsError, xattrErrorCode } from '../../src/errors.js';
import { NodeBridge, type ListedEntry, type NodeFileSystem, type Opened } from '../../src/fuse/bridge/nodes.js';
import type { FuseCaller, FuseNotifier, RawFileSystem } from '../../src/fuse/bridge/raw-fs.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../../src/fuse/protocol.js';
import type { FuseAttr, SetattrIn, StatfsOut } from '../../src/fuse/structs.js';

const { O_CREAT, O_EXCL, O_NOCTTY } = fs.constants;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const NS = 1_000_000_000n;

interface Name {
  parent: Name | null;
  name: string;
  /** st_dev:st_ino when looked up. */
  key: string;
  /** Unlinked or replaced: only open fds still reach the file. */
  gone: boolean;
  children: Map<string, Name> | undefined;
}

function attrFromStat(st: fs.BigIntStats): FuseAttr {
  return {
    ino: st.ino,
    size: st.size,
    blocks: st.blocks,
    atime: st.atimeNs / NS,
    atimensec: Number(st.atimeNs % NS),
    mtime: st.mtimeNs / NS,
    mtimensec: Number(st.mtimeNs % NS),
    ctime: st.ctimeNs / NS,
    ctimensec: Number(st.ctimeNs % NS),
    mode: Number(st.mode),
    nlink: Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: Number(st.rdev & 0xffffffffn),
    blksize: Number(st.blksize),
  };
}

function err(code: string, syscall: string): Error {
  return fsError(code, syscall);
}

const keyOf = (st: fs.BigIntStats): string => `${st.dev}:${st.ino}`;

/** Byte ranges [start, end) of files (paths relative to the backing directory) whose reads fail with EIO. */
export type FailingReads = Record<string, Array<[number, number]>>;

class Loopback implements NodeFileSystem<Name, number> {
  readonly root: Name;
  private scratch = Buffer.allocUnsafe(1 << 20);
  private readonly myUid = process.getuid?.() ?? 0;
  private readonly myGid = process.getgid?.() ?? 0;
  /** Failing byte ranges by host file (st_dev:st_ino), and the open fds on those files. */
  private readonly failing = new Map<string, Array<[number, number]>>();
  private readonly failingFds = new Map<number, Array<[number, number]>>();

  constructor(readonly rootPath: string, failReads: FailingReads = {}) {
    this.root = { parent: null, name: '', key: keyOf(fs.lstatSync(rootPath, { bigint: true })), gone: false, children: undefined };
    for (const [rel, ranges] of Object.entries(failReads)) this.failing.set(keyOf(fs.statSync(join(rootPath, rel), { bigint: true })), ranges);
  }

  private path(n: Name): string {
    return n.parent ? join(this.path(n.parent), n.name) : this.rootPath;
  }

  /** The node of `name` in `parent` just stat'ed: the known one if it is still the same file. */
  private child(parent: Name, name: string, st: fs.BigIntStats): Name {
    const key = keyOf(st);
    const children = (parent.children ??= new Map());
    let n = children.get(name);
    if (n?.key !== key) {
      if (n !== undefined) n.gone = true;
      n = { parent, name, key, gone: false, children: undefined };
      children.set(name, n);
    }
    return n;
  }

  /** The name `name` in `parent` no longer reaches its file. */
  private drop(parent: Name, name: string): void {
    const n = parent.children?.get(name);
    if (n === undefined) return;
    n.gone = true;
    parent.children!.delete(name);
  }

  /** Created entries belong to the caller, as the kernel would make them. */
  private own(caller: FuseCaller, p: string): void {
    if (caller.uid !== this.myUid || caller.gid !== this.myGid) fs.lchownSync(p, caller.uid, caller.gid);
  }

  hardLinkKey(n: Name): string {
    return n.key;
  }

  isLive(n: Name): boolean {
    return !n.gone;
  }

  forget(n: Name): void {
    if (n.parent?.children?.get(n.name) === n) n.parent.children.delete(n.name);
  }

  lookup(_caller: FuseCaller, parent: Name, name: string): Name {
    return this.child(parent, name, fs.lstatSync(join(this.path(parent), name), { bigint: true }));
  }

  getattr(_caller: FuseCaller, n: Name, fd: number | undefined): FuseAttr | null {
    if (fd !== undefined) return attrFromStat(fs.fstatSync(fd, { bigint: true }));
    if (n.gone) return null;
    return attrFromStat(fs.lstatSync(this.path(n), { bigint: true }));
  }

  setattr(_caller: FuseCaller, n: Name, a: SetattrIn, fd: number | undefined): void {
    const p = this.path(n);
    if (a.mode !== undefined) {
      if (fd !== undefined) fs.fchmodSync(fd, a.mode & 0o7777);
      else fs.chmodSync(p, a.mode & 0o7777);
    }
    if (a.uid !== undefined || a.gid !== undefined) {
      if (fd !== undefined) fs.fchownSync(fd, a.uid ?? -1, a.gid ?? -1);
      else fs.lchownSync(p, a.uid ?? -1, a.gid ?? -1);
    }
    if (a.size !== undefined) {
      // node:fs takes no size past 2^53: the loopback refuses it (as a file system that cannot hold it).
      if (typeof a.size === 'bigint') throw fsError('EFBIG', 'truncate');
      if (fd !== undefined) fs.ftruncateSync(fd, a.size);
      else fs.truncateSync(p, a.size);
    }
    if (a.atime !== undefined || a.mtime !== undefined) {
      const st = fd !== undefined ? fs.fstatSync(fd, { bigint: true }) : fs.lstatSync(p, { bigint: true });
      const now = Date.now() / 1000;
      const pick = (t: SetattrIn['atime'], ns: bigint): number =>
        t === 'now' ? now : t ? Number(t.sec) + t.nsec / 1e9 : Number(ns / 1000n) / 1e6;
      const at = pick(a.atime, st.atimeNs);
      const mt = pick(a.mtime, st.mtimeNs);
      if (fd !== undefined) fs.futimesSync(fd, at, mt);
      else fs.lutimesSync(p, at, mt);
    }
  }

  readlink(_caller: FuseCaller, n: Name): Buffer {
    return fs.readlinkSync(this.path(n), { encoding: 'buffer' });
  }

  symlink(caller: FuseCaller, parent: Name, name: string, target: string): Name {
    const p = join(this.path(parent), name);
    fs.symlinkSync(target, p);
    this.own(caller, p);
    return this.child(parent, name, fs.lstatSync(p, { bigint: true }));
  }

  mknod(caller: FuseCaller, parent: Name, name: string, mode: number, rdev: number): Name {
    const p = join(this.path(parent), name);
    const type = mode & S_IFMT;
    if (type === S_IFREG || type === 0) {
      fs.closeSync(fs.openSync(p, 'wx', mode & 0o7777));
    } else {
      // Node has no mknod(2); mknod(1) does it on the backing directory, never on our own mount.
      const kind = type === S_IFIFO ? ['p'] : type === S_IFCHR ? ['c'] : type === S_IFBLK ? ['b'] : null;
      if (!kind) throw err('EPERM', 'mknod');
      if (type !== S_IFIFO) kind.push(String((rdev >>> 8) & 0xfff), String((rdev & 0xff) | ((rdev >>> 12) & 0xfff00)));
      const r = spawnSync('mknod', ['-m', (mode & 0o7777).toString(8), p, ...kind], { stdio: 'ignore' });
      if (r.status !== 0) throw err(fs.existsSync(p) ? 'EEXIST' : 'EPERM', 'mknod');
    }
    fs.chmodSync(p, mode & 0o7777); // our own umask must not apply: the kernel already applied the caller's
    this.own(caller, p);
    return this.child(parent, name, fs.lstatSync(p, { bigint: true }));
  }

  mkdir(caller: FuseCaller, parent: Name, name: string, mode: number): Name {
    const p = join(this.path(parent), name);
    fs.mkdirSync(p, mode & 0o7777);
    fs.chmodSync(p, mode & 0o7777);
    this.own(caller, p);
    return this.child(parent, name, fs.lstatSync(p, { bigint: true }));
  }

  unlink(_caller: FuseCaller, parent: Name, name: string): void {
    fs.unlinkSync(join(this.path(parent), name));
    this.drop(parent, name);
  }

  rmdir(_caller: FuseCaller, parent: Name, name: string): void {
    fs.rmdirSync(join(this.path(parent), name));
    this.drop(parent, name);
  }

  rename(_caller: FuseCaller, parent: Name, name: string, newParent: Name, newName: string, flags: number): void {
    const from = join(this.path(parent), name);
    const to = join(this.path(newParent), newName);
    if (flags & RENAME_EXCHANGE || flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw err('EINVAL', 'rename');
    if (flags & RENAME_NOREPLACE && fs.existsSync(to)) throw err('EEXIST', 'rename');
    const same = fs.existsSync(to) && keyOf(fs.lstatSync(from, { bigint: true })) === keyOf(fs.lstatSync(to, { bigint: true }));
    fs.renameSync(from, to);
    if (same) return; // two names of one file: rename(2) does nothing
    const moved = parent.children?.get(name);
    this.drop(newParent, newName);
    if (moved === undefined) return;
    parent.children!.delete(name);
    moved.parent = newParent;
    moved.name = newName;
    (newParent.children ??= new Map()).set(newName, moved);
  }

  link(_caller: FuseCaller, n: Name, newParent: Name, newName: string): Name {
    const to = join(this.path(newParent), newName);
    fs.linkSync(this.path(n), to);
    return this.child(newParent, newName, fs.lstatSync(to, { bigint: true }));
  }

  open(_caller: FuseCaller, n: Name, flags: number): Opened<number> {
    const fd = fs.openSync(this.path(n), flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
    const failing = this.failing.get(n.key);
    if (failing !== undefined) this.failingFds.set(fd, failing);
    return { file: fd };
  }

  create(caller: FuseCaller, parent: Name, name: string, mode: number, flags: number): Opened<number> & { node: Name } {
    const p = join(this.path(parent), name);
    const fd = fs.openSync(p, flags | O_CREAT, mode & 0o7777);
    try {
      fs.fchmodSync(fd, mode & 0o7777);
      this.own(caller, p);
      return { node: this.child(parent, name, fs.fstatSync(fd, { bigint: true })), file: fd };
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  read(_caller: FuseCaller, fd: number, offset: number, size: number): Uint8Array {
    // A failing device: reads that touch a bad range fail, as a disk's bad sectors do.
    if (this.failingFds.get(fd)?.some(([start, end]) => offset < end && offset + size > start)) throw err('EIO', 'read');
    if (this.scratch.length < size) this.scratch = Buffer.allocUnsafe(size);
    const n = fs.readSync(fd, this.scratch, 0, size, offset);
    return this.scratch.subarray(0, n);
  }

  write(_caller: FuseCaller, fd: number, offset: number, data: Buffer): number {
    return fs.writeSync(fd, data, 0, data.length, offset);
  }

  flush(): void {
    // Every write already went to the backing file.
  }

  release(fd: number): void {
    this.failingFds.delete(fd);
    fs.closeSync(fd);
  }

  fsync(_caller: FuseCaller, fd: number, datasync: boolean): void {
    if (datasync) fs.fdatasyncSync(fd);
    else fs.fsyncSync(fd);
  }

  readdir(_caller: FuseCaller, n: Name): ListedEntry[] {
    const p = this.path(n);
    const self = fs.lstatSync(p, { bigint: true });
    // glibc skips d_ino 0 entries, so '..' needs a number; the root's parent is outside, so it uses its own.
    const up = n === this.root ? self : fs.lstatSync(join(p, '..'), { bigint: true });
    const entries: ListedEntry[] = [
      { name: '.', ino: self.ino, type: S_IFDIR },
      { name: '..', ino: up.ino, type: S_IFDIR },
    ];
    for (const d of fs.readdirSync(p)) {
      try {
        const st = fs.lstatSync(join(p, d), { bigint: true });
        entries.push({ name: d, ino: st.ino, type: Number(st.mode) & S_IFMT });
      } catch {
        // gone meanwhile
      }
    }
    return entries;
  }

  fsyncdir(): void {
    // Directory operations are synchronous system calls on the backing directory already.
  }

  statfs(): StatfsOut {
    const s = fs.statfsSync(this.rootPath);
    return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, frsize: s.bsize, namelen: 255 };
  }

  private xattrCall<T>(syscall: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw err(xattrErrorCode(e), syscall);
    }
  }

  setxattr(_caller: FuseCaller, n: Name, name: string, value: Buffer, flags: number): void {
    const p = this.path(n);
    if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
      const has = this.xattrCall('getxattr', () => xattr.getAttributeSync(p, name)) !== null;
      if (flags & XATTR_CREATE && has) throw err('EEXIST', 'setxattr');
      if (flags & XATTR_REPLACE && !has) throw err('ENODATA', 'setxattr');
    }
    this.xattrCall('setxattr', () => xattr.setAttributeSync(p, name, value));
  }

  getxattr(_caller: FuseCaller, n: Name, name: string): Buffer {
    const p = this.path(n);
    const v = this.xattrCall('getxattr', () => xattr.getAttributeSync(p, name));
    if (v === null) throw err('ENODATA', 'getxattr');
    return v;
  }

  listxattr(_caller: FuseCaller, n: Name): string[] {
    const p = this.path(n);
    return this.xattrCall('listxattr', () => xattr.listAttributesSync(p));
  }

  removexattr(_caller: FuseCaller, n: Name, name: string): void {
    const p = this.path(n);
    this.xattrCall('removexattr', () => xattr.removeAttributeSync(p, name));
  }

  access(_caller: FuseCaller, n: Name, mask: number): void {
    fs.accessSync(this.path(n), mask);
  }

  fallocate(_caller: FuseCaller, fd: number, offset: number, length: number, mode: number): void {
    // Node has no fallocate(2); mode 0 (allocate, extending the size) is emulated by growing the file.
    if (mode !== 0) throw err('EOPNOTSUPP', 'fallocate');
    if (fs.fstatSync(fd).size < offset + length) fs.ftruncateSync(fd, offset + length);
  }

  lseek(_caller: FuseCaller, fd: number, offset: number, whence: number): number {
    // Without lseek(2) in Node, the whole file counts as data: what POSIX allows a file system without holes.
    const size = fs.fstatSync(fd).size;
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw err('EINVAL', 'lseek');
    if (offset >= size) throw err('ENXIO', 'lseek');
    return whence === SEEK_DATA ? offset : size;
  }

  copyFileRange(_caller: FuseCaller, fdIn: number, offIn: number, fdOut: number, offOut: number, len: number): number {
    let done = 0;
    while (done < len) {
      const n = fs.readSync(fdIn, this.scratch, 0, Math.min(this.scratch.length, len - done), offIn + done);
      if (n === 0) break;
      fs.writeSync(fdOut, this.scratch, 0, n, offOut + done);
      done += n;
    }
    return done;
  }
}

/** The RawFileSystemFactory a mountFuse() worker loads: `arg` is the backing directory. */
export function createLoopback(arg: unknown, notify: FuseNotifier): RawFileSystem {
  if (typeof arg === 'string') return new NodeBridge(new Loopback(arg), { notify });
  const { dir, failReads } = (arg ?? {}) as { dir?: unknown; failReads?: FailingReads };
  if (typeof dir !== 'string') throw new TypeError('loopback: the argument must be the backing directory or { dir, failReads }');
  return new NodeBridge(new Loopback(dir, failReads), { notify });
}
