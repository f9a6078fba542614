// The overlay as a FUSE filesystem: FUSE node ids and file handles mapped onto the core's nodes and open
// files (go-fuse's fs/ layer over its raw protocol; the kernel's super.c/inode.c glue for overlayfs).
//
// Node ids. One id per overlay inode: every name of an upper hard link shares its id, as a real filesystem
// shares its inode, so the kernel keeps one page cache and one set of attributes for them. Lower hard links
// are separate inodes (index=off: copy-up breaks the link), so each of their names gets an id of its own.
// Ids count up and are never reused, so the generation is always 0.
//
// File handles are the core's OpenFiles. Every read and write goes through the core's one choke point
// (realFile in src/overlay/file.ts), so a handle opened read-only before another process copied the file
// up reads the upper data, also when the kernel's page cache has been dropped and the READ reaches us.
// That is why this is not no-open mode: with no handle, an unlinked open file would have no name left to
// read from, and the core's promise lives in its OpenFile.
//
// Caching. Entries, attributes, file pages (FOPEN_KEEP_CACHE) and directory listings (FOPEN_CACHE_DIR)
// may be cached for a long time, because every change to the layers comes through this mount and the
// kernel updates its caches for the changes it makes itself. What the kernel cannot know is what a
// copy-up does to inodes nobody named: parents copied up on the way (a merged directory reports nlink 1)
// and a lower hard link taking a new st_ino. Those get an attribute-only NOTIFY_INVAL_INODE. Nothing here
// sends NOTIFY_INVAL_ENTRY or invalidates pages: both take locks that a request still queued behind us
// may hold, which on a single serving thread would be a deadlock (libfuse warns of the same).
import { constants as fsc } from 'node:fs';

import { fsError } from '../errors.js';
import { O_ACCMODE, S_IFDIR, S_IFMT } from '../layer/types.js';
import { Overlay, type OpenFile, type OverlayNode, type OverlayOptions, type OvlStat, type SetAttr } from '../overlay/index.js';
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
} from './operations.js';
import { FUSE_ROOT_ID, RENAME_EXCHANGE, RENAME_NOREPLACE } from './protocol.js';

const { O_TRUNC, O_SYNC, O_DSYNC, W_OK } = fsc;
const S_ISGID = 0o2000;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
/** Seconds the kernel may cache names and attributes: long, because we tell it when they change. */
export const DEFAULT_TIMEOUT = 86400;

/** What a worker hands the factory: structured-clone safe. */
export interface OverlayOpsArg {
  /** The overlay's options: a mount-option string ('lowerdir=…,upperdir=…,workdir=…') or an object. */
  overlay: string | OverlayOptions;
  /** Entry and attribute timeout in seconds; default DEFAULT_TIMEOUT. */
  timeout?: number;
}

/** One kernel inode: the overlay node(s) behind it and the kernel's lookup count. */
interface Inode {
  readonly id: number;
  /** Every name of it; more than one for upper hard links. */
  readonly nodes: OverlayNode[];
  nlookup: number;
  /** Host dev:ino of the upper file, for joining further names of a hard link. */
  key: string | undefined;
  /** The last attributes sent, for getattr of a name that is gone while the kernel still holds it. */
  last: FuseAttr | undefined;
}

interface Handle {
  file: OpenFile;
  inode: Inode;
}

function err(code: string, syscall: string): Error {
  return fsError(code, syscall);
}

function split(ms: number): [number, number] {
  const sec = Math.floor(ms / 1000);
  const nsec = Math.min(999_999_999, Math.max(0, Math.round((ms - sec * 1000) * 1e6)));
  return [sec, nsec];
}

export function attrOf(st: OvlStat, ino: number): FuseAttr {
  const [atime, atimensec] = split(st.atimeMs);
  const [mtime, mtimensec] = split(st.mtimeMs);
  const [ctime, ctimensec] = split(st.ctimeMs);
  return {
    ino,
    size: st.size,
    blocks: st.blocks,
    atime,
    atimensec,
    mtime,
    mtimensec,
    ctime,
    ctimensec,
    mode: st.mode,
    nlink: st.nlink,
    uid: st.uid,
    gid: st.gid,
    rdev: st.rdev % 2 ** 32,
    blksize: st.blksize,
  };
}

function setAttrOf(a: SetattrIn, atimeMs: number | undefined, mtimeMs: number | undefined): SetAttr {
  return { mode: a.mode !== undefined ? a.mode & 0o7777 : undefined, uid: a.uid, gid: a.gid, size: a.size, atimeMs, mtimeMs };
}

function msOf(t: SetattrIn['atime']): number | undefined {
  if (t === undefined) return undefined;
  if (t === 'now') return Date.now();
  return t.sec * 1000 + t.nsec / 1e6;
}

/** The private xattr namespaces of the overlay: never set or removed through the mount. */
function isPrivateXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

export class OverlayFuseOps implements FuseOperations {
  private readonly byId = new Map<number, Inode>();
  private readonly byNode = new Map<OverlayNode, Inode>();
  private readonly byKey = new Map<string, Inode>();
  private readonly handles = new Map<number, Handle>();
  private readonly dirs = new Map<number, DirEntry[]>();
  private nextId = FUSE_ROOT_ID + 1;
  private nextFh = 1;
  private scratch = Buffer.allocUnsafe(1 << 20);
  private readonly myUid = process.getuid?.() ?? 0;
  private readonly myGid = process.getgid?.() ?? 0;
  private readonly timeout: number;

  constructor(
    readonly overlay: Overlay,
    private readonly notify: FuseNotifier | undefined,
    timeout = DEFAULT_TIMEOUT,
  ) {
    this.timeout = timeout;
    const root: Inode = { id: FUSE_ROOT_ID, nodes: [overlay.root], nlookup: 1, key: undefined, last: undefined };
    this.byId.set(FUSE_ROOT_ID, root);
    this.byNode.set(overlay.root, root);
  }

  // --- the node table -------------------------------------------------------------------------------

  private inode(id: number): Inode {
    const inode = this.byId.get(id);
    if (inode === undefined) throw err('ESTALE', 'nodeid');
    return inode;
  }

  /** The name to act on: any that still exists, else the last one (an unlinked file still open). */
  private static live(inode: Inode): OverlayNode {
    for (const n of inode.nodes) if (!n.unlinked) return n;
    return inode.nodes[inode.nodes.length - 1]!;
  }

  private node(id: number): OverlayNode {
    return OverlayFuseOps.live(this.inode(id));
  }

  /** The kernel inode for `node`, made or joined (hard links) as needed. Counts nothing. */
  private inodeFor(node: OverlayNode): Inode {
    const known = this.byNode.get(node);
    if (known !== undefined) return known;
    const key = this.overlay.hardLinkKey(node);
    if (key !== undefined) {
      const other = this.byKey.get(key);
      if (other !== undefined && other.nodes.some((n) => !n.unlinked)) {
        other.nodes.push(node);
        this.byNode.set(node, other);
        return other;
      }
    }
    const inode: Inode = { id: this.nextId++, nodes: [node], nlookup: 0, key, last: undefined };
    this.byId.set(inode.id, inode);
    this.byNode.set(node, inode);
    if (key !== undefined) this.byKey.set(key, inode);
    return inode;
  }

  /** A reply that hands the kernel a reference: one more lookup of the node. */
  private entry(node: OverlayNode): EntryOut {
    const inode = this.inodeFor(node);
    const attr = this.attr(inode, node);
    inode.nlookup++;
    return { nodeid: inode.id, entryTimeout: this.timeout, attrTimeout: this.timeout, attr };
  }

  private attr(inode: Inode, node: OverlayNode): FuseAttr {
    const a = attrOf(this.overlay.getattr(node), node.ino);
    inode.last = a;
    return a;
  }

  /**
   * Runs `fn`, then tells the kernel to drop its cached attributes of every known node whose
   * attributes `fn` may have changed behind the kernel's back: nodes copied up on the way (a merged
   * directory reports nlink 1, a lower hard link takes a new st_ino), metacopy files whose data came
   * up (a new mtime), and, when `fn` fails, every node it names, since the kernel refreshes nothing
   * after an error although a copy-up may have happened before it (a failed directory rename).
   */
  private copyingUp<T>(nodes: OverlayNode[], fn: () => T): T {
    // Each node that a copy-up could change, with where its data was: lower, or metacopy.
    const watched = new Map<OverlayNode, 'lower' | 'metacopy' | 'upper'>();
    for (const start of nodes) {
      for (let n: OverlayNode | undefined = start; n !== undefined; n = n.parent) {
        if (watched.has(n)) continue;
        const state = this.overlay.copyUpState(n);
        if (state !== 'upper') watched.set(n, state);
      }
    }
    let failed = true;
    try {
      const result = fn();
      failed = false;
      return result;
    } finally {
      if (this.notify !== undefined) {
        const changed = new Set<OverlayNode>();
        for (const [n, before] of watched) {
          // Only what really moved: an untouched lower file keeps its cached attributes (no GETATTR per open).
          if (this.overlay.copyUpState(n) !== before) changed.add(n);
        }
        if (failed) for (const n of nodes) changed.add(n);
        for (const n of changed) {
          const inode = this.byNode.get(n);
          if (inode !== undefined) this.notify.invalInode(inode.id, -1, 0);
        }
      }
    }
  }

  /** New entries belong to the caller, as the kernel's own filesystems make them. */
  private own(ctx: FuseContext, parent: OverlayNode, node: OverlayNode, mode: number | undefined): void {
    const parentStat = this.overlay.getattr(parent);
    const inheritGid = (parentStat.mode & S_ISGID) !== 0;
    const uid = ctx.uid !== this.myUid ? ctx.uid : undefined;
    const gid = !inheritGid && ctx.gid !== this.myGid ? ctx.gid : undefined;
    if (uid !== undefined || gid !== undefined) this.overlay.setattr(node, { uid, gid }, 'chown');
    if (mode === undefined) return;
    // The kernel applied the caller's umask already; ours must not apply on top (mkdir(2) honours it).
    let want = mode & 0o7777;
    if (node.isDir && inheritGid) want |= S_ISGID;
    const have = this.overlay.getattr(node).mode & 0o7777;
    if (have !== want) this.overlay.setattr(node, { mode: want }, 'chmod');
  }

  // --- lookup and attributes ------------------------------------------------------------------------

  lookup(_ctx: FuseContext, parent: number, name: string): EntryOut {
    const node = this.overlay.lookup(this.node(parent), name);
    if (node === null) {
      // A negative entry: only this mount creates names, and the kernel forgets the negative when it does.
      return { nodeid: 0, entryTimeout: this.timeout, attr: attrOf(NO_STAT, 0) };
    }
    return this.entry(node);
  }

  forget(nodeid: number, nlookup: number): void {
    const inode = this.byId.get(nodeid);
    if (inode === undefined || nodeid === FUSE_ROOT_ID) return;
    inode.nlookup -= nlookup;
    if (inode.nlookup > 0) return;
    this.byId.delete(nodeid);
    for (const n of inode.nodes) if (this.byNode.get(n) === inode) this.byNode.delete(n);
    if (inode.key !== undefined && this.byKey.get(inode.key) === inode) this.byKey.delete(inode.key);
  }

  getattr(_ctx: FuseContext, nodeid: number, fh: number | undefined): AttrOut {
    const inode = this.inode(nodeid);
    const node = OverlayFuseOps.live(inode);
    if (!node.unlinked) return { attrTimeout: this.timeout, attr: this.attr(inode, node) };
    // Gone from the tree, still held open: the real file answers (the core re-bound it before the unlink).
    const handle = this.handleOf(inode, fh);
    if (handle !== undefined && !handle.file.isDirectory) {
      const a = attrOf(this.overlay.fstat(handle.file), node.ino);
      inode.last = a;
      return { attrTimeout: this.timeout, attr: a };
    }
    if (inode.last !== undefined) return { attrTimeout: this.timeout, attr: { ...inode.last, nlink: 0 } };
    throw err('ENOENT', 'getattr');
  }

  /** The handle `fh`, or any handle open on the inode. */
  private handleOf(inode: Inode, fh: number | undefined): Handle | undefined {
    const h = fh !== undefined ? this.handles.get(fh) : undefined;
    if (h !== undefined && h.inode === inode) return h;
    for (const other of this.handles.values()) if (other.inode === inode && !other.file.closed) return other;
    return undefined;
  }

  setattr(ctx: FuseContext, nodeid: number, a: SetattrIn): AttrOut {
    const inode = this.inode(nodeid);
    const node = OverlayFuseOps.live(inode);
    const atimeMs = msOf(a.atime);
    const mtimeMs = msOf(a.mtime);
    if (node.unlinked) {
      // Only the open file is left (ftruncate, fchmod, futimens of an unlinked file).
      const handle = this.handleOf(inode, a.fh);
      if (handle === undefined) throw err('ENOENT', 'setattr');
      this.overlay.fsetattr(handle.file, setAttrOf(a, atimeMs, mtimeMs));
      return this.getattr(ctx, nodeid, a.fh);
    }
    this.copyingUp([node], () => this.overlay.setattr(node, setAttrOf(a, atimeMs, mtimeMs)));
    return { attrTimeout: this.timeout, attr: this.attr(inode, node) };
  }

  readlink(_ctx: FuseContext, nodeid: number): string {
    return this.overlay.readlink(this.node(nodeid));
  }

  access(ctx: FuseContext, nodeid: number, mask: number): void {
    this.overlay.access(this.node(nodeid), mask, ctx);
  }

  // --- the namespace --------------------------------------------------------------------------------

  mkdir(ctx: FuseContext, parent: number, name: string, mode: number): EntryOut {
    const p = this.node(parent);
    const node = this.copyingUp([p], () => this.overlay.mkdir(p, name, mode & 0o7777));
    this.own(ctx, p, node, mode);
    return this.entry(node);
  }

  mknod(ctx: FuseContext, parent: number, name: string, mode: number, rdev: number): EntryOut {
    const p = this.node(parent);
    const node = this.copyingUp([p], () => this.overlay.mknod(p, name, mode, rdev));
    this.own(ctx, p, node, mode);
    return this.entry(node);
  }

  symlink(ctx: FuseContext, parent: number, name: string, target: string): EntryOut {
    const p = this.node(parent);
    const node = this.copyingUp([p], () => this.overlay.symlink(p, name, target));
    this.own(ctx, p, node, undefined);
    return this.entry(node);
  }

  unlink(_ctx: FuseContext, parent: number, name: string): void {
    const p = this.node(parent);
    this.copyingUp([p], () => this.overlay.unlink(p, name));
  }

  rmdir(_ctx: FuseContext, parent: number, name: string): void {
    const p = this.node(parent);
    this.copyingUp([p], () => this.overlay.rmdir(p, name));
  }

  rename(_ctx: FuseContext, parent: number, name: string, newParent: number, newName: string, flags: number): void {
    // RENAME_WHITEOUT is for overlay filesystems stacked on us; EINVAL is what a filesystem without it says.
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw err('EINVAL', 'rename');
    if ((flags & RENAME_NOREPLACE) !== 0 && (flags & RENAME_EXCHANGE) !== 0) throw err('EINVAL', 'rename');
    const from = this.node(parent);
    const to = this.node(newParent);
    if ((flags & RENAME_EXCHANGE) !== 0) {
      const a = this.overlay.lookup(from, name);
      const b = this.overlay.lookup(to, newName);
      const nodes = [from, to, ...(a !== null ? [a] : []), ...(b !== null ? [b] : [])];
      this.copyingUp(nodes, () => this.overlay.exchange(from, name, to, newName));
      return;
    }
    // The source is copied up (a directory becomes merged: nlink 1) even when the rename then fails.
    const source = this.overlay.lookup(from, name);
    const nodes = source !== null ? [from, to, source] : [from, to];
    this.copyingUp(nodes, () => this.overlay.rename(from, name, to, newName, { noReplace: (flags & RENAME_NOREPLACE) !== 0 }));
  }

  link(_ctx: FuseContext, nodeid: number, newParent: number, newName: string): EntryOut {
    const inode = this.inode(nodeid);
    const source = OverlayFuseOps.live(inode);
    const p = this.node(newParent);
    const node = this.copyingUp([source, p], () => this.overlay.link(source, p, newName));
    // The new name is the same inode: the kernel expects the same node id back.
    if (!this.byNode.has(node)) {
      inode.nodes.push(node);
      this.byNode.set(node, inode);
    }
    if (inode.key === undefined) {
      inode.key = this.overlay.hardLinkKey(node);
      if (inode.key !== undefined) this.byKey.set(inode.key, inode);
    }
    const attr = this.attr(inode, node);
    inode.nlookup++;
    return { nodeid: inode.id, entryTimeout: this.timeout, attrTimeout: this.timeout, attr };
  }

  // --- files ----------------------------------------------------------------------------------------

  /**
   * The flags the core opens with. O_APPEND is dropped: the kernel already placed every write at the end
   * of the size it knows, and its page cache holds what it wrote there. O_DIRECT needs aligned buffers the
   * request buffer does not promise.
   */
  private static coreFlags(flags: number): number {
    return flags & (O_ACCMODE | O_TRUNC | O_SYNC | O_DSYNC);
  }

  private addHandle(file: OpenFile, inode: Inode): number {
    const fh = this.nextFh++;
    this.handles.set(fh, { file, inode });
    return fh;
  }

  private file(fh: number): OpenFile {
    const h = this.handles.get(fh);
    if (h === undefined) throw err('EBADF', 'fh');
    return h.file;
  }

  open(_ctx: FuseContext, nodeid: number, flags: number): OpenOut {
    const inode = this.inode(nodeid);
    const node = OverlayFuseOps.live(inode);
    const file = this.copyingUp([node], () => this.overlay.open(node, OverlayFuseOps.coreFlags(flags)));
    // The pages the kernel holds are still right: no one changes the data but through this mount.
    return { fh: this.addHandle(file, inode), keepCache: true };
  }

  create(ctx: FuseContext, parent: number, name: string, mode: number, flags: number): CreateOut {
    const p = this.node(parent);
    const file = this.copyingUp([p], () => this.overlay.create(p, name, OverlayFuseOps.coreFlags(flags), mode & 0o7777));
    try {
      const node = this.overlay.nodeOf(file);
      this.own(ctx, p, node, mode);
      const entry = this.entry(node);
      return { entry, open: { fh: this.addHandle(file, this.inode(entry.nodeid)), keepCache: true } };
    } catch (e) {
      this.overlay.release(file);
      throw e;
    }
  }

  read(_ctx: FuseContext, _nodeid: number, fh: number, offset: number, size: number): Uint8Array {
    const file = this.file(fh);
    if (this.scratch.length < size) this.scratch = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = this.overlay.read(file, this.scratch, done, size - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return this.scratch.subarray(0, done);
  }

  write(_ctx: FuseContext, _nodeid: number, fh: number, offset: number, data: Buffer): number {
    const file = this.file(fh);
    let done = 0;
    while (done < data.length) done += this.overlay.write(file, data, done, data.length - done, offset + done);
    return done;
  }

  // No flush: every write is already in the real file, and with FLUSH unanswered (ENOSYS) the kernel stops
  // sending one on every close(2), which saves a round trip per close.

  release(_ctx: FuseContext, _nodeid: number, fh: number): void {
    const h = this.handles.get(fh);
    if (h === undefined) return;
    this.handles.delete(fh);
    if (!h.file.closed) this.overlay.release(h.file);
  }

  fsync(_ctx: FuseContext, _nodeid: number, fh: number, datasync: boolean): void {
    this.overlay.fsync(this.file(fh), datasync);
  }

  fallocate(_ctx: FuseContext, _nodeid: number, fh: number, offset: number, length: number, mode: number): void {
    this.overlay.fallocate(this.file(fh), offset, length, mode);
  }

  // No lseek: SEEK_DATA/SEEK_HOLE answered with ENOSYS makes the kernel treat the whole file as data, which
  // is all this could say without lseek(2) in Node, and it stops asking.

  copyFileRange(_ctx: FuseContext, a: CopyFileRangeIn): number {
    if (a.flags !== 0) throw err('EINVAL', 'copy_file_range');
    return this.overlay.copyFileRange(this.file(a.fhIn), a.offIn, this.file(a.fhOut), a.offOut, a.len);
  }

  // --- directories ----------------------------------------------------------------------------------

  opendir(_ctx: FuseContext, nodeid: number): OpenOut {
    // One listing per open, so offsets stay stable while the directory changes underneath a reader.
    const node = this.node(nodeid);
    const parent = node.parent ?? node;
    const list: DirEntry[] = [
      { name: '.', ino: node.ino, type: S_IFDIR, off: 1 },
      { name: '..', ino: parent.ino, type: S_IFDIR, off: 2 },
    ];
    for (const d of this.overlay.readdir(node)) {
      // d_ino must be the st_ino a stat will report; the lookup is cached by the core for the stat to come.
      const child = this.overlay.lookup(node, d.name);
      if (child === null) continue;
      list.push({ name: d.name, ino: child.ino, type: d.type & S_IFMT, off: list.length + 1 });
    }
    const fh = this.nextFh++;
    this.dirs.set(fh, list);
    // The listing may be kept in the kernel: any change made through this mount bumps the directory's
    // version there, which drops the cached listing at the next opendir.
    return { fh, cacheDir: true, keepCache: true };
  }

  readdir(_ctx: FuseContext, _nodeid: number, fh: number, offset: number): DirEntry[] {
    const list = this.dirs.get(fh);
    if (list === undefined) throw err('EBADF', 'readdir');
    return list.slice(offset);
  }

  releasedir(_ctx: FuseContext, _nodeid: number, fh: number): void {
    this.dirs.delete(fh);
  }

  fsyncdir(): void {
    // Directory changes are made with synchronous system calls on the upper layer already.
  }

  statfs(): StatfsOut {
    const s = this.overlay.statfs();
    return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, frsize: s.bsize, namelen: 255 };
  }

  // --- xattrs (the core hides the overlay's own) ---------------------------------------------------

  getxattr(_ctx: FuseContext, nodeid: number, name: string): Buffer {
    const value = this.overlay.getxattr(this.node(nodeid), name);
    if (value === undefined) throw err('ENODATA', 'getxattr');
    return value;
  }

  listxattr(_ctx: FuseContext, nodeid: number): string[] {
    return this.overlay.listxattr(this.node(nodeid));
  }

  setxattr(_ctx: FuseContext, nodeid: number, name: string, value: Buffer, flags: number): void {
    if (isPrivateXattr(name)) throw err('EOPNOTSUPP', 'setxattr');
    const node = this.node(nodeid);
    if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
      const has = this.overlay.getxattr(node, name) !== undefined;
      if (flags & XATTR_CREATE && has) throw err('EEXIST', 'setxattr');
      if (flags & XATTR_REPLACE && !has) throw err('ENODATA', 'setxattr');
    }
    this.copyingUp([node], () => this.overlay.setxattr(node, name, value));
  }

  removexattr(_ctx: FuseContext, nodeid: number, name: string): void {
    if (isPrivateXattr(name)) throw err('EOPNOTSUPP', 'removexattr');
    const node = this.node(nodeid);
    this.copyingUp([node], () => this.overlay.removexattr(node, name));
  }

  destroy(): void {
    for (const h of this.handles.values()) if (!h.file.closed) this.overlay.release(h.file);
    this.handles.clear();
    this.overlay.close();
  }
}

/** Attributes of a negative entry: the kernel reads none of them. */
const NO_STAT: OvlStat = {
  dev: 0, ino: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 0, blocks: 0,
  atimeMs: 0, mtimeMs: 0, ctimeMs: 0, birthtimeMs: 0, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n, birthtimeNs: 0n,
};

/** The FuseOpsFactory a mountFuse() worker loads (see session.ts): builds the overlay on the serving thread. */
export function createOverlayOps(arg: unknown, notify: FuseNotifier): FuseOperations {
  const a = arg as Partial<OverlayOpsArg> | undefined;
  if (a === undefined || a === null || (typeof a.overlay !== 'string' && typeof a.overlay !== 'object')) {
    throw new TypeError('createOverlayOps: the argument must be { overlay: options }');
  }
  return new OverlayFuseOps(new Overlay(a.overlay), notify, a.timeout);
}

