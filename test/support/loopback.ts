// A passthrough filesystem over a real directory: the reference implementation of FuseOperations and the
// fixture that proves the session against real programs (as go-fuse's loopback does for go-fuse).
//
// Nodes are (parent, name) pairs, so renaming a directory moves everything below it for free; one node per
// (st_dev, st_ino), so hard links share a nodeid as the kernel expects. File handles are real fds.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';

import * as xattr from '@napi-rs/xattr';

import { fsError, xattrErrorCode } from '../../src/errors.js';
import type {
  AttrOut,
  CopyFileRangeIn,
  CreateOut,
  DirEntry,
  EntryOut,
  FuseAttr,
  FuseContext,
  FuseNotifier,
  FuseOperations,
  OpenOut,
  SetattrIn,
  StatfsOut,
} from '../../src/fuse/operations.js';
import { FUSE_ROOT_ID, RENAME_EXCHANGE, RENAME_NOREPLACE } from '../../src/fuse/protocol.js';

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

interface Node {
  id: number;
  parent: Node | null;
  name: string;
  key: string;
  nlookup: number;
}

export function attrFromStat(st: fs.BigIntStats): FuseAttr {
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

export class Loopback implements FuseOperations {
  private readonly nodes = new Map<number, Node>();
  private readonly byKey = new Map<string, Node>();
  private readonly files = new Map<number, number>();
  private readonly dirs = new Map<number, DirEntry[]>();
  private nextId = FUSE_ROOT_ID + 1;
  private nextFh = 1;
  private scratch = Buffer.allocUnsafe(1 << 20);
  private readonly root: Node;
  private readonly myUid = process.getuid?.() ?? 0;
  private readonly myGid = process.getgid?.() ?? 0;

  constructor(readonly rootPath: string) {
    const st = fs.lstatSync(rootPath, { bigint: true });
    this.root = { id: FUSE_ROOT_ID, parent: null, name: '', key: `${st.dev}:${st.ino}`, nlookup: 1 };
    this.nodes.set(FUSE_ROOT_ID, this.root);
  }

  private node(id: number): Node {
    const n = this.nodes.get(id);
    if (!n) throw err('ESTALE', 'node');
    return n;
  }

  private path(n: Node): string {
    return n.parent ? join(this.path(n.parent), n.name) : this.rootPath;
  }

  private pathOf(id: number): string {
    return this.path(this.node(id));
  }

  private fd(fh: number): number {
    const fd = this.files.get(fh);
    if (fd === undefined) throw err('EBADF', 'fh');
    return fd;
  }

  /** Finds or makes the node for a name just stat'ed, and counts one lookup. */
  private entry(parent: Node, name: string, st: fs.BigIntStats): EntryOut {
    const key = `${st.dev}:${st.ino}`;
    let n = this.byKey.get(key);
    if (!n) {
      n = { id: this.nextId++, parent, name, key, nlookup: 0 };
      this.nodes.set(n.id, n);
      this.byKey.set(key, n);
    } else if (n !== this.root) {
      n.parent = parent;
      n.name = name;
    }
    n.nlookup++;
    return { nodeid: n.id, attr: attrFromStat(st) };
  }

  /** Created entries belong to the caller, as the kernel would make them. */
  private own(ctx: FuseContext, p: string): void {
    if (ctx.uid !== this.myUid || ctx.gid !== this.myGid) fs.lchownSync(p, ctx.uid, ctx.gid);
  }

  lookup(_ctx: FuseContext, parent: number, name: string): EntryOut {
    const pn = this.node(parent);
    return this.entry(pn, name, fs.lstatSync(join(this.path(pn), name), { bigint: true }));
  }

  forget(nodeid: number, nlookup: number): void {
    const n = this.nodes.get(nodeid);
    if (!n || n === this.root) return;
    n.nlookup -= nlookup;
    if (n.nlookup <= 0) {
      this.nodes.delete(nodeid);
      if (this.byKey.get(n.key) === n) this.byKey.delete(n.key);
    }
  }

  getattr(_ctx: FuseContext, nodeid: number, fh: number | undefined): AttrOut {
    const fd = fh !== undefined ? this.files.get(fh) : undefined;
    const st = fd !== undefined ? fs.fstatSync(fd, { bigint: true }) : fs.lstatSync(this.pathOf(nodeid), { bigint: true });
    return { attr: attrFromStat(st) };
  }

  setattr(ctx: FuseContext, nodeid: number, a: SetattrIn): AttrOut {
    const p = this.pathOf(nodeid);
    const fd = a.fh !== undefined ? this.files.get(a.fh) : undefined;
    if (a.mode !== undefined) {
      if (fd !== undefined) fs.fchmodSync(fd, a.mode & 0o7777);
      else fs.chmodSync(p, a.mode & 0o7777);
    }
    if (a.uid !== undefined || a.gid !== undefined) fs.lchownSync(p, a.uid ?? -1, a.gid ?? -1);
    if (a.size !== undefined) {
      if (fd !== undefined) fs.ftruncateSync(fd, a.size);
      else fs.truncateSync(p, a.size);
    }
    if (a.atime !== undefined || a.mtime !== undefined) {
      const st = fs.lstatSync(p, { bigint: true });
      const now = Date.now() / 1000;
      const pick = (t: SetattrIn['atime'], ns: bigint): number =>
        t === 'now' ? now : t ? t.sec + t.nsec / 1e9 : Number(ns / 1000n) / 1e6;
      const at = pick(a.atime, st.atimeNs);
      const mt = pick(a.mtime, st.mtimeNs);
      if (fd !== undefined) fs.futimesSync(fd, at, mt);
      else fs.lutimesSync(p, at, mt);
    }
    return this.getattr(ctx, nodeid, a.fh);
  }

  readlink(_ctx: FuseContext, nodeid: number): Buffer {
    return fs.readlinkSync(this.pathOf(nodeid), { encoding: 'buffer' });
  }

  symlink(ctx: FuseContext, parent: number, name: string, target: string): EntryOut {
    const pn = this.node(parent);
    const p = join(this.path(pn), name);
    fs.symlinkSync(target, p);
    this.own(ctx, p);
    return this.entry(pn, name, fs.lstatSync(p, { bigint: true }));
  }

  mknod(ctx: FuseContext, parent: number, name: string, mode: number, rdev: number): EntryOut {
    const pn = this.node(parent);
    const p = join(this.path(pn), name);
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
    this.own(ctx, p);
    return this.entry(pn, name, fs.lstatSync(p, { bigint: true }));
  }

  mkdir(ctx: FuseContext, parent: number, name: string, mode: number): EntryOut {
    const pn = this.node(parent);
    const p = join(this.path(pn), name);
    fs.mkdirSync(p, mode & 0o7777);
    fs.chmodSync(p, mode & 0o7777);
    this.own(ctx, p);
    return this.entry(pn, name, fs.lstatSync(p, { bigint: true }));
  }

  /** A removed name whose inode has no other name must not lend its node to a later inode of that number. */
  private dropKey(p: string): void {
    const st = fs.lstatSync(p, { bigint: true });
    if ((st.mode & BigInt(S_IFMT)) === BigInt(S_IFDIR) || st.nlink <= 1n) this.byKey.delete(`${st.dev}:${st.ino}`);
  }

  unlink(_ctx: FuseContext, parent: number, name: string): void {
    const p = join(this.pathOf(parent), name);
    const st = fs.lstatSync(p, { bigint: true });
    fs.unlinkSync(p);
    if (st.nlink <= 1n) this.byKey.delete(`${st.dev}:${st.ino}`);
  }

  rmdir(_ctx: FuseContext, parent: number, name: string): void {
    const p = join(this.pathOf(parent), name);
    const st = fs.lstatSync(p, { bigint: true });
    fs.rmdirSync(p);
    this.byKey.delete(`${st.dev}:${st.ino}`);
  }

  rename(_ctx: FuseContext, parent: number, name: string, newParent: number, newName: string, flags: number): void {
    const pn = this.node(parent);
    const np = this.node(newParent);
    const from = join(this.path(pn), name);
    const to = join(this.path(np), newName);
    if (flags & RENAME_EXCHANGE || flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw err('EINVAL', 'rename');
    if (flags & RENAME_NOREPLACE && fs.existsSync(to)) throw err('EEXIST', 'rename');
    const st = fs.lstatSync(from, { bigint: true });
    if (fs.existsSync(to)) this.dropKey(to);
    fs.renameSync(from, to);
    const n = this.byKey.get(`${st.dev}:${st.ino}`);
    if (n && n !== this.root) {
      n.parent = np;
      n.name = newName;
    }
  }

  link(_ctx: FuseContext, nodeid: number, newParent: number, newName: string): EntryOut {
    const np = this.node(newParent);
    const to = join(this.path(np), newName);
    fs.linkSync(this.pathOf(nodeid), to);
    return this.entry(np, newName, fs.lstatSync(to, { bigint: true }));
  }

  private addFile(fd: number): number {
    const fh = this.nextFh++;
    this.files.set(fh, fd);
    return fh;
  }

  open(_ctx: FuseContext, nodeid: number, flags: number): OpenOut {
    const fd = fs.openSync(this.pathOf(nodeid), flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
    return { fh: this.addFile(fd) };
  }

  create(ctx: FuseContext, parent: number, name: string, mode: number, flags: number): CreateOut {
    const pn = this.node(parent);
    const p = join(this.path(pn), name);
    const fd = fs.openSync(p, flags | O_CREAT, mode & 0o7777);
    try {
      fs.fchmodSync(fd, mode & 0o7777);
      this.own(ctx, p);
      const entry = this.entry(pn, name, fs.fstatSync(fd, { bigint: true }));
      return { entry, open: { fh: this.addFile(fd) } };
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  read(_ctx: FuseContext, _nodeid: number, fh: number, offset: number, size: number): Uint8Array {
    if (this.scratch.length < size) this.scratch = Buffer.allocUnsafe(size);
    const n = fs.readSync(this.fd(fh), this.scratch, 0, size, offset);
    return this.scratch.subarray(0, n);
  }

  write(_ctx: FuseContext, _nodeid: number, fh: number, offset: number, data: Buffer): number {
    return fs.writeSync(this.fd(fh), data, 0, data.length, offset);
  }

  flush(): void {
    // Every write already went to the backing file.
  }

  release(_ctx: FuseContext, _nodeid: number, fh: number): void {
    const fd = this.files.get(fh);
    this.files.delete(fh);
    if (fd !== undefined) fs.closeSync(fd);
  }

  fsync(_ctx: FuseContext, _nodeid: number, fh: number, datasync: boolean): void {
    if (datasync) fs.fdatasyncSync(this.fd(fh));
    else fs.fsyncSync(this.fd(fh));
  }

  opendir(_ctx: FuseContext, nodeid: number): OpenOut {
    // The listing is taken once per open, so offsets stay stable however the directory changes meanwhile.
    const p = this.pathOf(nodeid);
    const self = fs.lstatSync(p, { bigint: true });
    // glibc skips d_ino 0 entries, so '..' needs a number; the root's parent is outside, so it uses its own.
    const up = nodeid === FUSE_ROOT_ID ? self : fs.lstatSync(join(p, '..'), { bigint: true });
    const list: DirEntry[] = [
      { name: '.', ino: self.ino, type: S_IFDIR, off: 1 },
      { name: '..', ino: up.ino, type: S_IFDIR, off: 2 },
    ];
    for (const d of fs.readdirSync(p, { withFileTypes: true })) {
      let ino: bigint = 0n;
      let type = 0;
      try {
        const st = fs.lstatSync(join(p, d.name), { bigint: true });
        ino = st.ino;
        type = Number(st.mode) & S_IFMT;
      } catch {
        continue; // gone meanwhile
      }
      list.push({ name: d.name, ino, type, off: list.length + 1 });
    }
    const fh = this.nextFh++;
    this.dirs.set(fh, list);
    return { fh };
  }

  readdir(_ctx: FuseContext, _nodeid: number, fh: number, offset: number): DirEntry[] {
    const list = this.dirs.get(fh);
    if (!list) throw err('EBADF', 'readdir');
    return list.slice(offset);
  }

  releasedir(_ctx: FuseContext, _nodeid: number, fh: number): void {
    this.dirs.delete(fh);
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

  setxattr(_ctx: FuseContext, nodeid: number, name: string, value: Buffer, flags: number): void {
    const p = this.pathOf(nodeid);
    if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
      const has = this.xattrCall('getxattr', () => xattr.getAttributeSync(p, name)) !== null;
      if (flags & XATTR_CREATE && has) throw err('EEXIST', 'setxattr');
      if (flags & XATTR_REPLACE && !has) throw err('ENODATA', 'setxattr');
    }
    this.xattrCall('setxattr', () => xattr.setAttributeSync(p, name, value));
  }

  getxattr(_ctx: FuseContext, nodeid: number, name: string): Buffer {
    const p = this.pathOf(nodeid);
    const v = this.xattrCall('getxattr', () => xattr.getAttributeSync(p, name));
    if (v === null) throw err('ENODATA', 'getxattr');
    return v;
  }

  listxattr(_ctx: FuseContext, nodeid: number): string[] {
    const p = this.pathOf(nodeid);
    return this.xattrCall('listxattr', () => xattr.listAttributesSync(p));
  }

  removexattr(_ctx: FuseContext, nodeid: number, name: string): void {
    const p = this.pathOf(nodeid);
    this.xattrCall('removexattr', () => xattr.removeAttributeSync(p, name));
  }

  access(_ctx: FuseContext, nodeid: number, mask: number): void {
    fs.accessSync(this.pathOf(nodeid), mask);
  }

  fallocate(_ctx: FuseContext, _nodeid: number, fh: number, offset: number, length: number, mode: number): void {
    // Node has no fallocate(2); mode 0 (allocate, extending the size) is emulated by growing the file.
    if (mode !== 0) throw err('EOPNOTSUPP', 'fallocate');
    const fd = this.fd(fh);
    if (fs.fstatSync(fd).size < offset + length) fs.ftruncateSync(fd, offset + length);
  }

  lseek(_ctx: FuseContext, _nodeid: number, fh: number, offset: number, whence: number): number {
    // Without lseek(2) in Node, the whole file counts as data: what POSIX allows a filesystem without holes.
    const size = fs.fstatSync(this.fd(fh)).size;
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw err('EINVAL', 'lseek');
    if (offset >= size) throw err('ENXIO', 'lseek');
    return whence === SEEK_DATA ? offset : size;
  }

  copyFileRange(_ctx: FuseContext, a: CopyFileRangeIn): number {
    const fdIn = this.fd(a.fhIn);
    const fdOut = this.fd(a.fhOut);
    let done = 0;
    while (done < a.len) {
      const n = fs.readSync(fdIn, this.scratch, 0, Math.min(this.scratch.length, a.len - done), a.offIn + done);
      if (n === 0) break;
      fs.writeSync(fdOut, this.scratch, 0, n, a.offOut + done);
      done += n;
    }
    return done;
  }
}

/** The FuseOpsFactory a mountFuse() worker loads: `arg` is the backing directory. */
export function createLoopback(arg: unknown, _notify: FuseNotifier): FuseOperations {
  if (typeof arg !== 'string') throw new TypeError('loopback: the argument must be the backing directory');
  return new Loopback(arg);
}
