// The node API: a file system speaks in its own nodes (N) and open files (F), and NodeBridge speaks node
// ids and file handles to the serving loop for it (go-fuse's fs/ package over its raw fuse/, libfuse's
// high-level API over its low-level one). What every FUSE file system needs and no file system should
// write again lives here:
//
// Node ids and lookup counts. Every reply that hands the kernel a node id (lookup, create, mkdir, mknod,
// symlink, link, each readdirplus entry) adds one to that id's lookup count, and FORGET/BATCH_FORGET take
// counts back; at zero the id and its names leave the tables (and NodeFileSystem.forget hears of each
// name). The root is never forgotten. Ids count up and are never reused, so the generation is always 0.
//
// Hard-link identity. A node is a name. Names whose hardLinkKey is equal are one inode and share one node
// id, as a real file system shares its inode, so the kernel keeps one page cache and one set of
// attributes for them; a new name joins an id only while one of its names is still live (an inode number
// the host has re-used after the last name went must not inherit the old id). LINK always answers with
// the id of its source, as the kernel expects.
//
// Names that are gone. An inode keeps its names after an unlink while the kernel still holds the id; the
// name the file system is asked about is a live one if any is left, else the last. For a name that is
// gone, getattr and setattr get the request's file handle or else any handle open on the inode (fstat of
// an unlinked open file), and when the file system has nothing to say, the last attributes sent with
// nlink 0 (the kernel may still ask for them).
//
// File handles and directory snapshots. An open file is whatever the file system returns (an fd, a core
// open file); the bridge numbers it and hands it back on every call. A directory handle is listed at its
// READDIR at offset 0 and read on from that snapshot, so offsets stay stable while the directory changes
// underneath a reader; a name removed through the mount is left out of it from then on. Handles still
// open when the connection ends are released.
//
// Everything the node API leaves out answers ENOSYS, which makes the kernel stop asking for most things
// (FLUSH and LSEEK among them). No-open mode and READDIRPLUS built by hand need the raw interface.
import type { AttrOut, CopyFileRangeIn, DirEntry, EntryOut, FileOffset, FuseAttr, OpenOut, SetattrIn, StatfsOut, StatxOut } from '../structs.js';
import { FUSE_ROOT_ID, RENAME_EXCHANGE } from '../protocol.js';
import type { Background, CreateOut, DataLease, FuseCaller, FuseConnection, FuseNotifier, OpenReply, RawFileSystem } from './raw-fs.js';

/** An entry of a directory listing; the bridge adds the offsets. '.' and '..' are the file system's to list. */
export interface ListedEntry {
  name: string;
  /** The st_ino a stat of the entry reports (glibc skips entries with d_ino 0). */
  ino: number | bigint;
  /** S_IFMT bits of the entry, or 0 when unknown. */
  type: number;
}

/** The FOPEN_* hints for a directory handle: how long the kernel may keep the listing it reads. */
export interface DirCaching {
  /** FOPEN_CACHE_DIR: the kernel may keep the listing. */
  cacheDir?: boolean;
  keepCache?: boolean;
}

/** An open file and the FOPEN_* hints for its handle. */
export interface Opened<F> {
  file: F;
  /** FOPEN_KEEP_CACHE: the kernel's pages of the file are still valid. */
  keepCache?: boolean;
  directIo?: boolean;
  /** The file's host fd, which the kernel may read and write itself (FUSE passthrough); the bridge's loop releases it. */
  backing?: DataLease;
  /** Asked only of an open that ends up cached with keepCache: whether its pages must go after all. */
  dropCacheIf?: () => boolean;
}

/** What a file system may tell the kernel about its nodes; nodes the kernel does not hold are skipped. */
export interface NodeNotifier<N> {
  /**
   * Attribute-only NOTIFY_INVAL_INODE, sent at once, before the reply: it takes no kernel lock (the
   * kernel only bumps the attribute version), and a later one would race the caller's next stat.
   */
  invalAttrs(node: N): void;
  /**
   * Shuts the file system down (see FuseConnection.shutDown): EIO to every request from now on, and the
   * attributes the kernel holds of every node dropped, so that a stat asks and gets EIO too.
   */
  shutDown(): void;
}

/**
 * A file system in nodes and open files. Methods are synchronous and throw errors with an errno `code`
 * (see raw-fs.ts); every optional one left out answers ENOSYS.
 */
export interface NodeFileSystem<N extends object, F> {
  readonly root: N;
  /** Names with the same key are one inode and share a node id; undefined: an inode of its own. */
  hardLinkKey?(node: N): string | undefined;
  /** False once the name is gone (unlinked, replaced) while the kernel may still hold it. Default true. */
  isLive?(node: N): boolean;
  /** The bridge holds the name now (the kernel was or is about to be given its node id); one forget follows. */
  retain?(node: N): void;
  /** The bridge has dropped the name: the kernel forgot its node id. */
  forget?(node: N): void;
  /** Called once, before any request, with what the file system may tell the kernel. */
  attach?(notify: NodeNotifier<N>): void;
  /** Called once, before any request, when the loop runs long data work off its thread (see raw-fs.ts). */
  attachBackground?(background: Background): void;
  /** The connection ended; open handles were released just before. */
  destroy?(): void;

  /** The child `name` of `parent`, or null for a negative entry the kernel may cache. */
  lookup(caller: FuseCaller, parent: N, name: string): N | null;
  /**
   * The attributes of `node`. `file` is the request's handle when it belongs to the node's inode, or, for
   * a name that is gone, any handle open on the inode. Null: nothing to say (the bridge answers with the
   * last attributes it sent, or ENOENT).
   */
  getattr(caller: FuseCaller, node: N, file: F | undefined): FuseAttr | null;
  /** The attributes with what only statx(2) reports (`file` and null as for getattr); without it, ENOSYS. */
  statx?(caller: FuseCaller, node: N, file: F | undefined): Omit<StatxOut, 'attrTimeout'> | null;
  /** Changes attributes (`file` as for getattr); the bridge answers with a getattr after it. */
  setattr?(caller: FuseCaller, node: N, attr: SetattrIn, file: F | undefined): void;
  readlink?(caller: FuseCaller, node: N): string | Buffer;
  access?(caller: FuseCaller, node: N, mask: number): void;

  mkdir?(caller: FuseCaller, parent: N, name: string, mode: number, umask: number): N;
  mknod?(caller: FuseCaller, parent: N, name: string, mode: number, rdev: number, umask: number): N;
  symlink?(caller: FuseCaller, parent: N, name: string, target: string): N;
  /** The new name of `node`'s inode; it gets `node`'s id whatever its key. */
  link?(caller: FuseCaller, node: N, newParent: N, newName: string): N;
  unlink?(caller: FuseCaller, parent: N, name: string): void;
  rmdir?(caller: FuseCaller, parent: N, name: string): void;
  /** `flags` are RENAME_NOREPLACE / RENAME_EXCHANGE / RENAME_WHITEOUT (0 for plain RENAME). */
  rename?(caller: FuseCaller, parent: N, name: string, newParent: N, newName: string, flags: number): void;

  /** `flags` are the open(2) flags (O_CREAT/O_EXCL/O_NOCTTY removed by the kernel); `openFlags` FUSE's (OPEN_KILL_SUIDGID). */
  open?(caller: FuseCaller, node: N, flags: number, openFlags?: number): Opened<F>;
  /** `attr`: the new node's attributes as the call leaves them, when the file system has them at hand (no getattr for the reply). */
  create?(caller: FuseCaller, parent: N, name: string, mode: number, flags: number, umask: number, openFlags?: number): Opened<F> & { node: N; attr?: FuseAttr };
  /** O_TMPFILE in directory `parent`: an open file on a node with no name yet (link gives it one). */
  tmpfile?(caller: FuseCaller, parent: N, mode: number, flags: number, umask: number): Opened<F> & { node: N };
  /** The data; may be a view of a reused buffer (it is copied out before the next request). */
  read?(caller: FuseCaller, file: F, offset: FileOffset, size: number): Uint8Array;
  /** Returns the number of bytes written. `data` is only valid during the call. */
  write?(caller: FuseCaller, file: F, offset: FileOffset, data: Buffer, flags: number): number;
  /** The host fd behind `file` for an I/O thread (see RawFileSystem.leaseData); undefined: use read/write. */
  leaseData?(file: F, access: 'read' | 'write', writeFlags?: number, caller?: FuseCaller): DataLease | undefined;
  flush?(caller: FuseCaller, file: F, lockOwner: bigint): void;
  fsync?(caller: FuseCaller, file: F, datasync: boolean): void;
  fallocate?(caller: FuseCaller, file: F, offset: FileOffset, length: FileOffset, mode: number): void;
  /** SEEK_DATA / SEEK_HOLE; returns the new offset. */
  lseek?(caller: FuseCaller, file: F, offset: FileOffset, whence: number): FileOffset;
  copyFileRange?(caller: FuseCaller, fileIn: F, offIn: FileOffset, fileOut: F, offOut: FileOffset, len: number, flags: number): number;
  /** A restricted ioctl on an open file or directory of `node` (see RawFileSystem.ioctl): the output bytes. */
  ioctl?(caller: FuseCaller, node: N, cmd: number, input: Buffer, outSize: number): Uint8Array;
  /** The last close of a handle (also for handles still open when the connection ends). */
  release?(file: F): void;

  /** OPENDIR: how the kernel may cache the listing (default: not at all). */
  opendir?(caller: FuseCaller, node: N): DirCaching;
  /**
   * The whole listing of a directory, '.' and '..' included, taken at a READDIR at offset 0. The bridge
   * keeps a returned array as it is until the handle is released or rewound: return one nothing else changes.
   */
  readdir?(caller: FuseCaller, node: N): Iterable<ListedEntry>;
  fsyncdir?(caller: FuseCaller, node: N, datasync: boolean): void;

  statfs?(caller: FuseCaller, node: N): StatfsOut;
  /** Undefined (or a thrown ENODATA) when absent; the bridge's loop answers size probes and ERANGE. */
  getxattr?(caller: FuseCaller, node: N, name: string): Buffer | undefined;
  listxattr?(caller: FuseCaller, node: N): string[];
  /** `flags` are XATTR_CREATE / XATTR_REPLACE; `setxattrFlags` FUSE's (SETXATTR_ACL_KILL_SGID). */
  setxattr?(caller: FuseCaller, node: N, name: string, value: Buffer, flags: number, setxattrFlags?: number): void;
  removexattr?(caller: FuseCaller, node: N, name: string): void;
}

export interface NodeBridgeOptions {
  /** The kernel's notification channel (the factory's second argument); without it nothing is sent. */
  notify?: FuseNotifier;
  /** Seconds the kernel may cache names (negative ones too) and attributes; default the loop's. */
  timeout?: number;
  /** INIT flags the file system needs on top of the loop's defaults. */
  wantFlags?: number;
}

/** One kernel inode: its names and the kernel's lookup count. */
interface Inode<N> {
  readonly id: number;
  /** Every name of it; more than one for hard links. */
  readonly nodes: N[];
  nlookup: number;
  /** The hard-link key, for joining further names. */
  key: string | undefined;
  /** The last attributes sent, for getattr of a name that is gone while the kernel still holds it. */
  last: FuseAttr | undefined;
  /** The open directory handles on it that hold a listing, for removals to reach them without a search. */
  listings?: Set<DirHandle<N>>;
}

interface Handle<N, F> {
  file: F;
  inode: Inode<N>;
}

/** An open directory: its listing from the last READDIR at offset 0, and the names removed since. */
interface DirHandle<N> {
  inode: Inode<N>;
  list: ListedEntry[] | undefined;
  /** The names of `list`, made at the first removal; `gone` takes only these, so it is never larger. */
  names: Set<string> | undefined;
  gone: Set<string> | undefined;
}

/** Attributes of a negative entry: the kernel reads none of them. */
const NO_ATTR: FuseAttr = {
  ino: 0, size: 0, blocks: 0, atime: 0, atimensec: 0, mtime: 0, mtimensec: 0, ctime: 0, ctimensec: 0,
  mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0,
};

function errno(code: string, syscall: string): Error {
  return Object.assign(new Error(`${code}: ${syscall}`), { code, syscall });
}

/**
 * The entries of `list` from `offset` on, each with its offset (its place, counted from 1), without
 * copying the listing; names in `gone` are left out and keep their places.
 */
function* from(list: readonly ListedEntry[], offset: number, gone: ReadonlySet<string> | undefined): Iterable<DirEntry> {
  for (let i = offset; i < list.length; i++) {
    const e = list[i]!;
    if (gone?.has(e.name) === true) continue;
    yield { name: e.name, ino: e.ino, type: e.type, off: i + 1 };
  }
}

/** A NodeFileSystem served as a RawFileSystem. */
export class NodeBridge<N extends object, F> implements RawFileSystem {
  private readonly byId = new Map<number, Inode<N>>();
  private readonly byNode = new Map<N, Inode<N>>();
  private readonly byKey = new Map<string, Inode<N>>();
  private readonly handles = new Map<number, Handle<N, F>>();
  /** Directory handles and their listings. */
  private readonly dirs = new Map<number, DirHandle<N>>();
  private nextId = FUSE_ROOT_ID + 1;
  private nextFh = 1;
  private readonly timeout: number | undefined;
  readonly wantFlags: number | undefined;
  /** Present only when the file system lends out fds, so the loop starts I/O threads only then. */
  readonly leaseData: RawFileSystem['leaseData'];
  /** Likewise present only when the file system runs work in the background. */
  readonly attachBackground: RawFileSystem['attachBackground'];
  private connection: FuseConnection | undefined;

  constructor(
    readonly fs: NodeFileSystem<N, F>,
    options: NodeBridgeOptions = {},
  ) {
    this.timeout = options.timeout;
    this.wantFlags = options.wantFlags;
    const lease = fs.leaseData;
    this.leaseData = lease === undefined ? undefined : (caller, _nodeid, fh, access, writeFlags) => lease.call(fs, this.file(fh), access, writeFlags, caller);
    const attach = fs.attachBackground;
    this.attachBackground = attach === undefined ? undefined : (background: Background) => attach.call(fs, background);
    const root: Inode<N> = { id: FUSE_ROOT_ID, nodes: [fs.root], nlookup: 1, key: undefined, last: undefined };
    this.byId.set(FUSE_ROOT_ID, root);
    this.byNode.set(fs.root, root);
    const notify = options.notify;
    fs.attach?.({
      invalAttrs: (node) => {
        const inode = this.byNode.get(node);
        if (inode !== undefined) notify?.invalInode(inode.id, -1, 0);
      },
      shutDown: () => {
        this.connection?.shutDown();
        // Attribute-only, so it takes no kernel lock; names stay cached, and the stat after them asks.
        if (notify !== undefined) for (const id of this.byId.keys()) notify.invalInode(id, -1, 0);
      },
    });
  }

  attachConnection(connection: FuseConnection): void {
    this.connection = connection;
  }

  // --- the node table -------------------------------------------------------------------------------

  /** Node ids the kernel holds now, the root included (for tests and benchmarks of FORGET). */
  get nodeCount(): number {
    return this.byId.size;
  }

  private inode(id: number): Inode<N> {
    const inode = this.byId.get(id);
    if (inode === undefined) throw errno('ESTALE', 'nodeid');
    return inode;
  }

  private isLive(node: N): boolean {
    return this.fs.isLive?.(node) ?? true;
  }

  /** The name to act on: any that still exists, else the last one (an unlinked file still open). */
  private live(inode: Inode<N>): N {
    for (const n of inode.nodes) if (this.isLive(n)) return n;
    return inode.nodes[inode.nodes.length - 1]!;
  }

  private node(id: number): N {
    return this.live(this.inode(id));
  }

  /** The kernel inode for `node`, made or joined (hard links) as needed. Counts nothing. */
  private inodeFor(node: N): Inode<N> {
    const known = this.byNode.get(node);
    if (known !== undefined) return known;
    const key = this.fs.hardLinkKey?.(node);
    if (key !== undefined) {
      const other = this.byKey.get(key);
      if (other !== undefined && other.nodes.some((n) => this.isLive(n))) {
        this.addName(other, node);
        return other;
      }
    }
    const inode: Inode<N> = { id: this.nextId++, nodes: [], nlookup: 0, key, last: undefined };
    this.byId.set(inode.id, inode);
    this.addName(inode, node);
    if (key !== undefined) this.byKey.set(key, inode);
    return inode;
  }

  /** `node` becomes a name of `inode`; the file system hears that the bridge holds it. */
  private addName(inode: Inode<N>, node: N): void {
    inode.nodes.push(node);
    this.byNode.set(node, inode);
    this.fs.retain?.(node);
  }

  /** The id and its names leave the tables; the file system hears of each name. */
  private drop(inode: Inode<N>): void {
    this.byId.delete(inode.id);
    for (const n of inode.nodes) {
      if (this.byNode.get(n) !== inode) continue;
      this.byNode.delete(n);
      this.fs.forget?.(n);
    }
    if (inode.key !== undefined && this.byKey.get(inode.key) === inode) this.byKey.delete(inode.key);
  }

  /** A reply that hands the kernel a reference: one more lookup of the node. */
  private entry(caller: FuseCaller, node: N, known?: FuseAttr): EntryOut {
    const inode = this.inodeFor(node);
    let attr: FuseAttr;
    try {
      attr = known !== undefined ? (inode.last = known) : this.attr(caller, inode, node, undefined);
    } catch (e) {
      // The kernel never heard of an id made just now: nothing will forget it.
      if (inode.nlookup === 0 && inode.id !== FUSE_ROOT_ID) this.drop(inode);
      throw e;
    }
    inode.nlookup++;
    return { nodeid: inode.id, entryTimeout: this.timeout, attrTimeout: this.timeout, attr };
  }

  /** The attributes of `node` (a name of `inode`), remembered as the last sent. */
  private attr(caller: FuseCaller, inode: Inode<N>, node: N, file: F | undefined): FuseAttr {
    const a = this.fs.getattr(caller, node, file);
    if (a === null) {
      if (inode.last !== undefined) return { ...inode.last, nlink: 0 };
      throw errno('ENOENT', 'getattr');
    }
    inode.last = a;
    return a;
  }

  /** The open file of handle `fh` if it is on `inode`; for a name that is gone, else any open on it. */
  private fileFor(inode: Inode<N>, node: N, fh: number | undefined): F | undefined {
    const h = fh !== undefined ? this.handles.get(fh) : undefined;
    if (h !== undefined && h.inode === inode) return h.file;
    if (this.isLive(node)) return undefined;
    for (const other of this.handles.values()) if (other.inode === inode) return other.file;
    return undefined;
  }

  private file(fh: number): F {
    const h = this.handles.get(fh);
    if (h === undefined) throw errno('EBADF', 'fh');
    return h.file;
  }

  private addHandle(file: F, inode: Inode<N>): number {
    const fh = this.nextFh++;
    this.handles.set(fh, { file, inode });
    return fh;
  }

  private method<K extends keyof NodeFileSystem<N, F>>(name: K): NonNullable<NodeFileSystem<N, F>[K]> {
    const m = this.fs[name];
    if (m === undefined) throw errno('ENOSYS', String(name));
    return m as NonNullable<NodeFileSystem<N, F>[K]>;
  }

  // --- lookup and attributes ------------------------------------------------------------------------

  lookup(caller: FuseCaller, parent: number, name: string): EntryOut {
    const node = this.fs.lookup(caller, this.node(parent), name);
    // A negative entry, cached for the entry timeout; the kernel forgets it when it creates the name.
    if (node === null) return { nodeid: 0, entryTimeout: this.timeout, attr: NO_ATTR };
    return this.entry(caller, node);
  }

  forget(nodeid: number, nlookup: number): void {
    const inode = this.byId.get(nodeid);
    if (inode === undefined || nodeid === FUSE_ROOT_ID) return;
    inode.nlookup -= nlookup;
    if (inode.nlookup > 0) return;
    this.drop(inode);
  }

  getattr(caller: FuseCaller, nodeid: number, fh: number | undefined): AttrOut {
    const inode = this.inode(nodeid);
    const node = this.live(inode);
    return { attrTimeout: this.timeout, attr: this.attr(caller, inode, node, this.fileFor(inode, node, fh)) };
  }

  statx(caller: FuseCaller, nodeid: number, fh: number | undefined): StatxOut {
    const statx = this.method('statx');
    const inode = this.inode(nodeid);
    const node = this.live(inode);
    const s = statx.call(this.fs, caller, node, this.fileFor(inode, node, fh));
    if (s === null) return { attrTimeout: this.timeout, attr: this.attr(caller, inode, node, undefined) };
    inode.last = s.attr;
    return { ...s, attrTimeout: this.timeout };
  }

  setattr(caller: FuseCaller, nodeid: number, a: SetattrIn): AttrOut {
    const setattr = this.method('setattr');
    const inode = this.inode(nodeid);
    const node = this.live(inode);
    const file = this.fileFor(inode, node, a.fh);
    setattr.call(this.fs, caller, node, a, file);
    return { attrTimeout: this.timeout, attr: this.attr(caller, inode, node, file) };
  }

  readlink(caller: FuseCaller, nodeid: number): string | Buffer {
    return this.method('readlink').call(this.fs, caller, this.node(nodeid));
  }

  access(caller: FuseCaller, nodeid: number, mask: number): void {
    this.method('access').call(this.fs, caller, this.node(nodeid), mask);
  }

  // --- the namespace --------------------------------------------------------------------------------

  mkdir(caller: FuseCaller, parent: number, name: string, mode: number, umask: number): EntryOut {
    return this.entry(caller, this.method('mkdir').call(this.fs, caller, this.node(parent), name, mode, umask));
  }

  mknod(caller: FuseCaller, parent: number, name: string, mode: number, rdev: number, umask: number): EntryOut {
    return this.entry(caller, this.method('mknod').call(this.fs, caller, this.node(parent), name, mode, rdev, umask));
  }

  symlink(caller: FuseCaller, parent: number, name: string, target: string): EntryOut {
    return this.entry(caller, this.method('symlink').call(this.fs, caller, this.node(parent), name, target));
  }

  unlink(caller: FuseCaller, parent: number, name: string): void {
    this.method('unlink').call(this.fs, caller, this.node(parent), name);
    this.removedFromListings(parent, name);
  }

  rmdir(caller: FuseCaller, parent: number, name: string): void {
    this.method('rmdir').call(this.fs, caller, this.node(parent), name);
    this.removedFromListings(parent, name);
  }

  rename(caller: FuseCaller, parent: number, name: string, newParent: number, newName: string, flags: number): void {
    this.method('rename').call(this.fs, caller, this.node(parent), name, this.node(newParent), newName, flags);
    if ((flags & RENAME_EXCHANGE) === 0) this.removedFromListings(parent, name);
  }

  link(caller: FuseCaller, nodeid: number, newParent: number, newName: string): EntryOut {
    const link = this.method('link');
    const inode = this.inode(nodeid);
    const source = this.live(inode);
    const node = link.call(this.fs, caller, source, this.node(newParent), newName);
    // The new name is the same inode: the kernel expects the same node id back.
    if (!this.byNode.has(node)) this.addName(inode, node);
    if (inode.key === undefined) {
      inode.key = this.fs.hardLinkKey?.(node);
      if (inode.key !== undefined) this.byKey.set(inode.key, inode);
    }
    const attr = this.attr(caller, inode, node, undefined);
    inode.nlookup++;
    return { nodeid: inode.id, entryTimeout: this.timeout, attrTimeout: this.timeout, attr };
  }

  // --- files ----------------------------------------------------------------------------------------

  open(caller: FuseCaller, nodeid: number, flags: number, openFlags?: number): OpenReply {
    const open = this.method('open');
    const inode = this.inode(nodeid);
    const o = open.call(this.fs, caller, this.live(inode), flags, openFlags);
    return { fh: this.addHandle(o.file, inode), keepCache: o.keepCache, directIo: o.directIo, backing: o.backing, dropCacheIf: o.dropCacheIf };
  }

  create(caller: FuseCaller, parent: number, name: string, mode: number, flags: number, umask: number, openFlags?: number): CreateOut {
    return this.createdOpen(caller, this.method('create').call(this.fs, caller, this.node(parent), name, mode, flags, umask, openFlags));
  }

  tmpfile(caller: FuseCaller, parent: number, mode: number, flags: number, umask: number): CreateOut {
    return this.createdOpen(caller, this.method('tmpfile').call(this.fs, caller, this.node(parent), mode, flags, umask));
  }

  /** A node made and opened in one request (CREATE, TMPFILE): its entry and handle, or nothing left open. */
  private createdOpen(caller: FuseCaller, o: ReturnType<NonNullable<NodeFileSystem<N, F>['create']>>): CreateOut {
    try {
      const entry = this.entry(caller, o.node, o.attr);
      return { entry, open: { fh: this.addHandle(o.file, this.inode(entry.nodeid)), keepCache: o.keepCache, directIo: o.directIo, backing: o.backing, dropCacheIf: o.dropCacheIf } };
    } catch (e) {
      o.backing?.release();
      this.fs.release?.(o.file);
      throw e;
    }
  }

  read(caller: FuseCaller, _nodeid: number, fh: number, offset: FileOffset, size: number): Uint8Array {
    return this.method('read').call(this.fs, caller, this.file(fh), offset, size);
  }

  write(caller: FuseCaller, _nodeid: number, fh: number, offset: FileOffset, data: Buffer, flags: number): number {
    return this.method('write').call(this.fs, caller, this.file(fh), offset, data, flags);
  }

  flush(caller: FuseCaller, _nodeid: number, fh: number, lockOwner: bigint): void {
    this.method('flush').call(this.fs, caller, this.file(fh), lockOwner);
  }

  release(_caller: FuseCaller, _nodeid: number, fh: number): void {
    const h = this.handles.get(fh);
    if (h === undefined) return;
    this.handles.delete(fh);
    this.fs.release?.(h.file);
  }

  fsync(caller: FuseCaller, _nodeid: number, fh: number, datasync: boolean): void {
    this.method('fsync').call(this.fs, caller, this.file(fh), datasync);
  }

  fallocate(caller: FuseCaller, _nodeid: number, fh: number, offset: FileOffset, length: FileOffset, mode: number): void {
    this.method('fallocate').call(this.fs, caller, this.file(fh), offset, length, mode);
  }

  lseek(caller: FuseCaller, _nodeid: number, fh: number, offset: FileOffset, whence: number): FileOffset {
    return this.method('lseek').call(this.fs, caller, this.file(fh), offset, whence);
  }

  ioctl(caller: FuseCaller, nodeid: number, _fh: number, cmd: number, input: Buffer, outSize: number): Uint8Array {
    return this.method('ioctl').call(this.fs, caller, this.node(nodeid), cmd, input, outSize);
  }

  copyFileRange(caller: FuseCaller, a: CopyFileRangeIn): number {
    const copy = this.method('copyFileRange');
    return copy.call(this.fs, caller, this.file(a.fhIn), a.offIn, this.file(a.fhOut), a.offOut, a.len, a.flags);
  }

  // --- directories ----------------------------------------------------------------------------------

  opendir(caller: FuseCaller, nodeid: number): OpenOut {
    const inode = this.inode(nodeid);
    const caching = this.fs.opendir?.(caller, this.live(inode)) ?? {};
    const fh = this.nextFh++;
    this.dirs.set(fh, { inode, list: undefined, names: undefined, gone: undefined });
    return { fh, cacheDir: caching.cacheDir, keepCache: caching.keepCache };
  }

  /**
   * A name removed from directory `parent` leaves the listings open on it: a reader that goes on
   * after the removal does not see it, as on the upper filesystem the kernel's overlay reads a
   * directory from, and as there the other entries keep their offsets.
   */
  private removedFromListings(parent: number, name: string): void {
    const open = this.byId.get(parent)?.listings;
    if (open === undefined) return;
    for (const d of open) {
      d.names ??= new Set(d.list!.map((e) => e.name));
      if (d.names.has(name)) (d.gone ??= new Set()).add(name);
    }
  }

  readdir(caller: FuseCaller, nodeid: number, fh: number, offset: number): Iterable<DirEntry> {
    const dir = this.dirs.get(fh);
    if (dir === undefined) throw errno('EBADF', 'readdir');
    // The listing is taken at offset 0, not at OPENDIR: the kernel notes the directory's version when
    // it starts caching a listing, just before this READDIR, and keeps what it reads until a change
    // through the mount bumps that version. A listing from OPENDIR could miss a name created between
    // the two, and a cached listing would then miss it for good. Later offsets resume in the same
    // listing, so they stay stable while the directory changes underneath a reader; a rewind relists.
    if (dir.list === undefined || offset === 0) {
      const entries = this.method('readdir').call(this.fs, caller, this.node(nodeid));
      dir.list = Array.isArray(entries) ? entries : [...entries];
      dir.names = undefined;
      dir.gone = undefined;
      (dir.inode.listings ??= new Set()).add(dir);
    }
    return from(dir.list, offset, dir.gone);
  }

  releasedir(_caller: FuseCaller, _nodeid: number, fh: number): void {
    const dir = this.dirs.get(fh);
    if (dir === undefined) return;
    this.dirs.delete(fh);
    const open = dir.inode.listings;
    if (open?.delete(dir) === true && open.size === 0) dir.inode.listings = undefined;
  }

  fsyncdir(caller: FuseCaller, nodeid: number, _fh: number, datasync: boolean): void {
    this.method('fsyncdir').call(this.fs, caller, this.node(nodeid), datasync);
  }

  statfs(caller: FuseCaller, nodeid: number): StatfsOut {
    return this.method('statfs').call(this.fs, caller, this.node(nodeid));
  }

  // --- xattrs ---------------------------------------------------------------------------------------

  getxattr(caller: FuseCaller, nodeid: number, name: string): Buffer | undefined {
    return this.method('getxattr').call(this.fs, caller, this.node(nodeid), name);
  }

  listxattr(caller: FuseCaller, nodeid: number): string[] {
    return this.method('listxattr').call(this.fs, caller, this.node(nodeid));
  }

  setxattr(caller: FuseCaller, nodeid: number, name: string, value: Buffer, flags: number, setxattrFlags = 0): void {
    this.method('setxattr').call(this.fs, caller, this.node(nodeid), name, value, flags, setxattrFlags);
  }

  removexattr(caller: FuseCaller, nodeid: number, name: string): void {
    this.method('removexattr').call(this.fs, caller, this.node(nodeid), name);
  }

  destroy(): void {
    const open = [...this.handles.values()];
    this.handles.clear();
    for (const d of this.dirs.values()) d.inode.listings = undefined;
    this.dirs.clear();
    for (const h of open) this.fs.release?.(h.file);
    this.fs.destroy?.();
  }
}
