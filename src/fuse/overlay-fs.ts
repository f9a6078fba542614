// The overlay as a FUSE file system: requests mapped onto the core's nodes and open files through the
// bridge's node API (bridge/nodes.ts; the kernel's super.c/inode.c glue for overlayfs).
//
// Node ids. A node is an overlay name, and its hard-link key is the host dev:ino of its upper file, so
// every name of an upper hard link shares one id, as a real file system shares its inode, and the kernel
// keeps one page cache and one set of attributes for them. Lower hard links are separate inodes
// (index=off: copy-up breaks the link), so each of their names gets an id of its own.
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

import { errorCode, fsError } from '../errors.js';
import { advanceOffset as advance, O_ACCMODE, S_IFDIR, S_IFMT, S_IFREG } from '../layer/types.js';
import { isOverlayXattr, Overlay, type DataLease, type OpenFile, type OverlayNode, type OverlayOptions, type OvlStat, type SetAttr } from '../overlay/index.js';
import { NodeBridge, type DirCaching, type ListedEntry, type NodeFileSystem, type NodeNotifier, type Opened } from './bridge/nodes.js';
import { Parked, type Background, type FuseCaller, type FuseNotifier, type RawFileSystem } from './bridge/raw-fs.js';
import { hasSysAdmin, inGroupOrCapable } from './caller-creds.js';
import { OwnMount } from './own-mount.js';
import { Fattr, InitFlag, OPEN_KILL_SUIDGID, RENAME_EXCHANGE, RENAME_NOREPLACE, WRITE_KILL_SUIDGID } from './protocol.js';
import { shownIds, squashes, storedGid, storedUid, type IdMap } from './idmap.js';
import type { FileOffset, FuseAttr, SetattrIn, StatfsOut, StatxOut } from './structs.js';

const { O_TRUNC, O_SYNC, O_DSYNC, O_RDONLY, W_OK } = fsc;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o010;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const POSIX_ACL_ACCESS = 'system.posix_acl_access';
/** SETXATTR's setxattr_flags (with SETXATTR_EXT): setting the access ACL drops setgid. */
const SETXATTR_ACL_KILL_SGID = 1 << 0;
/** The SETATTR bits that change an attribute (the rest say how: a handle, a lock owner, a kill). */
const CHANGES = Fattr.MODE | Fattr.UID | Fattr.GID | Fattr.SIZE | Fattr.ATIME | Fattr.MTIME | Fattr.ATIME_NOW | Fattr.MTIME_NOW | Fattr.CTIME;
/** Seconds the kernel may cache names and attributes: long, because we tell it when they change. */
const DEFAULT_TIMEOUT = 86400;

/** What a worker hands the factory: structured-clone safe. */
export interface OverlayFsArg {
  /** The overlay's options: a mount-option string ('lowerdir=…,upperdir=…,workdir=…') or an object. */
  overlay: string | OverlayOptions;
  /** Entry and attribute timeout in seconds; default DEFAULT_TIMEOUT. */
  timeout?: number;
  /** fuse-overlayfs's uid/gid shifting and squashing between the layers and the mount (see idmap.ts). */
  idmap?: IdMap | undefined;
  /** fuse-overlayfs's xattr_permissions: owners and modes kept in an override_stat xattr (1 security.*, 2 user.containers.*). */
  xattrPermissions?: 0 | 1 | 2;
  /**
   * The mount point: a remount's atime flags and read-only state then reach the overlay (own-mount.ts).
   * Its flags must agree with the overlay's atime options at the mount, as the command's do.
   */
  mountpoint?: string;
}

/** fuse-overlayfs's override_stat xattrs ("uid:gid:octal mode"), by xattr_permissions value; the first is written. */
const OVERRIDE_XATTRS: Record<1 | 2, string[]> = {
  1: ['security.fuseoverlayfs.override_stat'],
  2: ['user.containers.override_stat', 'user.fuseoverlayfs.override_stat'],
};

function err(code: string, syscall: string): Error {
  return fsError(code, syscall);
}

/** A time in ns as fuse_attr's seconds and nanoseconds (nanoseconds always 0..999999999). */
function split(ns: bigint): [bigint, number] {
  let sec = ns / 1_000_000_000n;
  let nsec = ns - sec * 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return [sec, Number(nsec)];
}

function attrOf(st: OvlStat, ino: number): FuseAttr {
  const [atime, atimensec] = split(st.atimeNs);
  const [mtime, mtimensec] = split(st.mtimeNs);
  const [ctime, ctimensec] = split(st.ctimeNs);
  return {
    ino,
    size: st.sizeExact ?? st.size,
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

/**
 * The permission bits left after a change that drops privileges: a write, truncate or fallocate by a
 * caller without CAP_FSETID, or a chown (the kernel's setattr_should_drop_suidgid, notify_change).
 * Setuid goes; setgid goes when group-executable, and otherwise when the caller is neither in the
 * file's group nor has CAP_FSETID (setattr_should_drop_sgid), asked only then.
 */
function withoutSuidgid(mode: number, inGroupOrCapable: () => boolean): number {
  let m = mode & 0o7777 & ~S_ISUID;
  if ((m & S_ISGID) !== 0 && ((m & S_IXGRP) !== 0 || !inGroupOrCapable())) m &= ~S_ISGID;
  return m;
}


function setAttrOf(a: SetattrIn): SetAttr {
  return { mode: a.mode !== undefined ? a.mode & 0o7777 : undefined, uid: a.uid, gid: a.gid, size: a.size, atimeNs: nsOf(a.atime), mtimeNs: nsOf(a.mtime) };
}

function nsOf(t: SetattrIn['atime']): bigint | undefined {
  if (t === undefined) return undefined;
  if (t === 'now') return BigInt(Date.now()) * 1_000_000n;
  return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
}

// The file attribute ioctls (linux/fs.h) and the FS_XFLAG_* <-> FS_*_FL pairs of fileattr_fill_xflags.
const FS_IOC_GETFLAGS = 0x80086601;
const FS_IOC_SETFLAGS = 0x40086602;
const FS_IOC_FSGETXATTR = 0x801c581f;
const FS_IOC_FSSETXATTR = 0x401c5820;
/** XFS's and ext4's shutdown, _IOR('X', 125, __u32); xfstests' godown and `xfs_io -x -c shutdown` send it. */
const FS_IOC_GOINGDOWN = 0x8004587d;
/** struct fsxattr: xflags, extsize, nextents, projid, cowextsize, 8 bytes of padding. */
const FSXATTR_SIZE = 28;
const XFLAG_PAIRS: ReadonlyArray<[xflag: number, flag: number]> = [
  [0x8, 0x10], // immutable
  [0x10, 0x20], // append
  [0x20, 0x8], // sync
  [0x40, 0x80], // noatime
  [0x80, 0x40], // nodump
  [0x8000, 0x02000000], // dax
  [0x200, 0x20000000], // project inherit
];
const XFLAG_MAPPED_FLAGS = XFLAG_PAIRS.reduce((all, [, flag]) => all | flag, 0);

function xflagsOf(flags: number): number {
  return XFLAG_PAIRS.reduce((x, [xflag, flag]) => ((flags & flag) !== 0 ? x | xflag : x), 0);
}

function flagsOf(xflags: number): number {
  return XFLAG_PAIRS.reduce((f, [xflag, flag]) => ((xflags & xflag) !== 0 ? f | flag : f), 0);
}

/**
 * The mode to make an entry with: with the caller's umask applied already, unless the parent's default
 * ACL decides (see own()), so that the entry has its final mode at once and needs no chmod after.
 */
function madeMode(mode: number, umask: number, defaultAcl: boolean): number {
  return (defaultAcl ? mode : mode & ~umask) & 0o7777;
}

/**
 * The flags the core opens with. O_APPEND is dropped: the kernel already placed every write at the end
 * of the size it knows, and its page cache holds what it wrote there. O_DIRECT needs aligned buffers the
 * request buffer does not promise.
 */
function coreFlags(flags: number): number {
  return flags & (O_ACCMODE | O_TRUNC | O_SYNC | O_DSYNC);
}

class OverlayFileSystem implements NodeFileSystem<OverlayNode, OpenFile> {
  private scratch = Buffer.allocUnsafe(1 << 20);
  private readonly myUid = process.getuid?.() ?? 0;
  private readonly myGid = process.getgid?.() ?? 0;
  private notify: NodeNotifier<OverlayNode> | undefined;
  /** Shut down by FS_IOC_GOINGDOWN (see goingDown). */
  private down = false;
  private background: Background | undefined;
  /** Data copies that failed on an I/O thread, for the parked open that waited on each to report. */
  private readonly failedCopyUps = new Map<OverlayNode, Error>();
  private readonly override: string[] | undefined;

  constructor(
    readonly overlay: Overlay,
    private readonly idmap: IdMap | undefined = undefined,
    xattrPermissions: 0 | 1 | 2 = 0,
    private readonly ownMount: OwnMount | undefined = undefined,
  ) {
    this.override = xattrPermissions === 0 ? undefined : OVERRIDE_XATTRS[xattrPermissions];
  }

  /** The attributes the mount shows: override_stat applied, then ids shifted or squashed. */
  private shown(node: OverlayNode, a: FuseAttr): FuseAttr {
    if (this.override !== undefined) {
      const o = this.overrideOf(node);
      if (o !== undefined) [a.uid, a.gid, a.mode] = [o.uid, o.gid, (a.mode & S_IFMT) | o.mode];
    }
    if (this.idmap !== undefined) [a.uid, a.gid] = shownIds(this.idmap, a.uid, a.gid);
    return a;
  }

  private overrideOf(node: OverlayNode): { uid: number; gid: number; mode: number } | undefined {
    for (const name of this.override ?? []) {
      let v: Buffer | undefined;
      try {
        v = this.overlay.getxattr(node, name);
      } catch {
        v = undefined;
      }
      const m = v === undefined ? null : /^(\d+):(\d+):([0-7]+)/.exec(v.toString());
      if (m) return { uid: Number(m[1]), gid: Number(m[2]), mode: parseInt(m[3]!, 8) & 0o7777 };
    }
    return undefined;
  }

  /**
   * Applies an owner or mode change the way the options ask: into the override_stat xattr with
   * xattr_permissions, else to the file with the ids mapped back to the layer's (a refused chown is no
   * error when squashing, as in fuse-overlayfs). Returns what is left for a plain setattr.
   */
  private ownerChange(node: OverlayNode, a: SetAttr): SetAttr {
    if (a.uid === undefined && a.gid === undefined && a.mode === undefined) return a;
    const m = this.idmap;
    const uid = a.uid === undefined || m === undefined ? a.uid : storedUid(m, a.uid);
    const gid = a.gid === undefined || m === undefined ? a.gid : storedGid(m, a.gid);
    if (this.override !== undefined) {
      const st = this.overlay.getattr(node);
      const cur = this.overrideOf(node) ?? { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
      const value = `${uid ?? cur.uid}:${gid ?? cur.gid}:${(a.mode ?? cur.mode).toString(8)}`;
      this.overlay.setxattr(node, this.override[0]!, Buffer.from(value));
      return { ...a, uid: undefined, gid: undefined, mode: undefined };
    }
    if ((uid !== undefined || gid !== undefined) && m !== undefined && squashes(m)) {
      try {
        this.overlay.setattr(node, { uid, gid }, 'chown');
      } catch {
        // fuse-overlayfs ignores a chown the host refuses when squashing
      }
      return { ...a, uid: undefined, gid: undefined };
    }
    return { ...a, uid, gid };
  }

  get root(): OverlayNode {
    return this.overlay.root;
  }

  attach(notify: NodeNotifier<OverlayNode>): void {
    this.notify = notify;
  }

  attachBackground(background: Background): void {
    this.background = background;
  }

  /** Whether opening `node` with `flags` copies data up: a writing open, without O_TRUNC, of a file whose data is below. */
  private copiesData(node: OverlayNode, flags: number): boolean {
    return (flags & O_ACCMODE) !== O_RDONLY && (flags & O_TRUNC) === 0 && node.type === S_IFREG && !node.unlinked && this.overlay.copyUpState(node) !== 'upper';
  }

  /**
   * The data step of `node`'s copy-up on an I/O thread, as the kernel's ovl_copy_up_start/end: the
   * core starts it here (parents up, a temp in the work area), the request is parked (Parked) with
   * every later one on the node that changes it, and once the data is in the temp the core lands it
   * and the parked requests run again; the open then finds the data up. Readers of the lower file go
   * on meanwhile. Permission comes first, as in Overlay.open: a refused open leaves no copy.
   */
  private copyUpInBackground(node: OverlayNode, background: Background): void {
    // The copy this open waited for failed (EIO from the lower file, ENOSPC): the open fails with its
    // error, once, instead of starting the same copy again when it runs again.
    const failed = this.failedCopyUps.get(node);
    if (failed !== undefined) {
      this.failedCopyUps.delete(node);
      throw failed;
    }
    this.overlay.access(node, W_OK);
    const job = this.invalidatingCopyUps([node], () => this.overlay.startCopyUp(node, 'open'));
    // Nothing to copy, or a copy in flight that the core will complete synchronously for the open.
    if (job === undefined || job instanceof Promise) return;
    // A length past 2^53 (a sparse file) is more than the I/O threads' offsets hold: copied here, holes skipped.
    if (job.sourceFd === undefined || job.tempFd === undefined || !Number.isSafeInteger(job.length)) {
      // A failed copy (ENOSPC) removes its temp and releases the node, as one on an I/O thread does.
      job.runSync();
      return;
    }
    const work = background.copy({ sourceFd: job.sourceFd, targetFd: job.tempFd, length: job.length, sync: job.sync }, (e) => {
      try {
        if (e !== undefined) {
          job.abort(e);
          this.failedCopyUps.set(node, e);
        } else {
          job.finish();
        }
      } finally {
        // The node's data moved: its size, blocks, times (metacopy) and maybe st_ino (a lower hard link).
        this.notify?.invalAttrs(node);
      }
    });
    throw new Parked(work);
  }

  hardLinkKey(node: OverlayNode): string | undefined {
    return this.overlay.hardLinkKey(node);
  }

  isLive(node: OverlayNode): boolean {
    return !node.unlinked;
  }

  /** A node the kernel holds by id stays in the core's cache, the same object at every lookup, until FORGET. */
  retain(node: OverlayNode): void {
    this.overlay.retainNode(node);
  }

  /** The kernel forgot it: the core may evict it (node_cache=). */
  forget(node: OverlayNode): void {
    this.overlay.releaseNode(node);
  }

  /**
   * Runs `fn`, then tells the kernel to drop its cached attributes of every known node whose
   * attributes `fn` may have changed behind the kernel's back: nodes copied up on the way (a merged
   * directory reports nlink 1, a lower hard link takes a new st_ino), metacopy files whose data came
   * up (a new mtime), and, when `fn` fails, every node it names, since the kernel refreshes nothing
   * after an error although a copy-up may have happened before it (a failed directory rename).
   */
  private invalidatingCopyUps<T>(nodes: OverlayNode[], fn: () => T): T {
    const notify = this.notify;
    if (notify === undefined) return fn();
    // Each node that a copy-up could change, with where its data was: lower, or metacopy. Arrays and
    // indexed loops: this runs for every change, and a Map, a Set and their iterators cost more cold.
    const watched: OverlayNode[] = [];
    const before: Array<'lower' | 'metacopy'> = [];
    for (let i = 0; i < nodes.length; i++) {
      for (let n: OverlayNode | undefined = nodes[i]; n !== undefined; n = n.parent) {
        if (watched.includes(n)) continue;
        const state = this.overlay.copyUpState(n);
        if (state !== 'upper') {
          watched.push(n);
          before.push(state);
        }
      }
    }
    let failed = true;
    try {
      const result = fn();
      failed = false;
      return result;
    } finally {
      const changed: OverlayNode[] = failed ? [...nodes] : [];
      for (let i = 0; i < watched.length; i++) {
        // Only what really moved: an untouched lower file keeps its cached attributes (no GETATTR per open).
        const n = watched[i]!;
        if (this.overlay.copyUpState(n) !== before[i] && !changed.includes(n)) changed.push(n);
      }
      for (let i = 0; i < changed.length; i++) notify.invalAttrs(changed[i]!);
    }
  }

  /**
   * New entries belong to the caller, as the kernel's own file systems make them. With DONT_MASK the
   * kernel leaves the caller's umask to us: it applies unless the parent has a default ACL, which the
   * upper filesystem has applied instead when it made the entry (POSIX.1e), and a chmod would undo.
   * Returns the entry's attributes when its last stat here is still true (nothing changed after it),
   * which the reply can carry instead of a stat of its own.
   */
  private own(caller: FuseCaller, parent: OverlayNode, node: OverlayNode, mode: number | undefined, umask = 0, defaultAcl = this.overlay.acl(parent, 'default') !== undefined): OvlStat | undefined {
    if (mode !== undefined && defaultAcl) mode = undefined;
    else if (mode !== undefined) mode &= ~umask;
    // The parent is stat'ed only where its setgid bit decides something: the group, or a directory's own bit.
    let parentSgid: boolean | undefined;
    const inheritGid = (): boolean => (parentSgid ??= (this.overlay.getattr(parent).mode & S_ISGID) !== 0);
    // Whether the entry may have changed since the stat its creation took.
    let changed = false;
    if (this.idmap !== undefined || this.override !== undefined) {
      changed = true; // a mapped or overridden owner may have been set
      // The caller's ids as the layer stores them (mapped back, or kept in override_stat).
      const gid = inheritGid() ? undefined : caller.gid;
      const rest = this.ownerChange(node, { uid: caller.uid, gid, mode: this.override !== undefined && mode !== undefined ? mode & 0o7777 : undefined });
      if ((rest.uid !== undefined && rest.uid !== this.myUid) || (rest.gid !== undefined && rest.gid !== this.myGid)) {
        this.overlay.setattr(node, { uid: rest.uid, gid: rest.gid }, 'chown');
      }
      if (this.override !== undefined) return undefined;
    } else {
      const uid = caller.uid !== this.myUid ? caller.uid : undefined;
      const gid = caller.gid !== this.myGid && !inheritGid() ? caller.gid : undefined;
      if (uid !== undefined || gid !== undefined) {
        this.overlay.setattr(node, { uid, gid }, 'chown');
        changed = true;
      }
    }
    if (mode === undefined) return undefined;
    // The caller's umask is applied; ours must not apply on top (mkdir(2) honours it).
    let want = mode & 0o7777;
    if (node.isDir && inheritGid()) want |= S_ISGID;
    const st = changed ? this.overlay.getattr(node) : this.overlay.createdAttrs(node);
    if ((st.mode & 0o7777) === want) return st;
    this.overlay.setattr(node, { mode: want }, 'chmod');
    return undefined;
  }

  // --- lookup and attributes ------------------------------------------------------------------------

  lookup(_caller: FuseCaller, parent: OverlayNode, name: string): OverlayNode | null {
    // Null is a negative entry: only this mount creates names, and the kernel forgets the negative when it does.
    return this.overlay.lookup(parent, name);
  }

  getattr(_caller: FuseCaller, node: OverlayNode, file: OpenFile | undefined): FuseAttr | null {
    return this.stat(node, file)?.attr ?? null;
  }

  /**
   * The birth time is the real file's, the upper one's after a copy-up, as the kernel's overlay reports
   * the real inode's statx. A filesystem without birth times reports 0, and then so does this: none.
   */
  statx(_caller: FuseCaller, node: OverlayNode, file: OpenFile | undefined): Omit<StatxOut, 'attrTimeout'> | null {
    const s = this.stat(node, file);
    if (s === undefined) return null;
    if (s.st.birthtimeNs === 0n) return { attr: s.attr };
    const [sec, nsec] = split(s.st.birthtimeNs);
    return { attr: s.attr, btime: { sec, nsec } };
  }

  private stat(node: OverlayNode, file: OpenFile | undefined): { st: OvlStat; attr: FuseAttr } | undefined {
    if (!node.unlinked) {
      const st = this.overlay.getattr(node);
      return { st, attr: this.shown(node, attrOf(st, node.ino)) };
    }
    // Gone from the tree, still held open: the real file answers (the core re-bound it before the unlink).
    if (file !== undefined && !file.isDirectory) {
      const st = this.overlay.fstat(file);
      const attr = attrOf(st, node.ino);
      if (this.idmap !== undefined) [attr.uid, attr.gid] = shownIds(this.idmap, attr.uid, attr.gid);
      return { st, attr };
    }
    return undefined;
  }

  setattr(caller: FuseCaller, node: OverlayNode, a: SetattrIn, file: OpenFile | undefined): void {
    // FATTR_KILL_SUIDGID (a truncate without CAP_FSETID, or a chown): the bits go in the same change.
    // A SETATTR that changes nothing is the kernel's file_remove_privs before a write, with the mode
    // left to us (HANDLE_KILLPRIV_V2); passthrough writes, which never reach us, have only this one.
    if ((a.killSuidgid === true || (a.valid & CHANGES) === 0) && node.type === S_IFREG && (!node.unlinked || file !== undefined)) {
      const st = file !== undefined ? this.overlay.fstat(file) : this.overlay.getattr(node);
      const mode = a.mode ?? st.mode;
      const kept = this.withoutSuidgid(caller, node, mode, st);
      if (kept !== (mode & 0o7777)) a = { ...a, mode: kept };
    }
    // ftruncate(2) through a handle open for writing: only an append-only file refuses it (do_ftruncate);
    // one made immutable after the open takes it, as on the kernel overlay.
    if (a.size !== undefined && file?.writable === true && !node.unlinked) {
      const size = a.size;
      this.invalidatingCopyUps([node], () => this.overlay.ftruncate(file, size));
      a = { ...a, size: undefined };
      if (Object.values(setAttrOf(a)).every((v) => v === undefined)) return;
    }
    // utimes(NULL): both times now, which an append-only file allows.
    const touch = a.atime === 'now' && a.mtime === 'now';
    if (node.unlinked) {
      // Only the open file is left (ftruncate, fchmod, futimens of an unlinked file).
      if (file === undefined) throw err('ENOENT', 'setattr');
      const sa = setAttrOf(a);
      if (this.idmap !== undefined) [sa.uid, sa.gid] = [sa.uid === undefined ? undefined : storedUid(this.idmap, sa.uid), sa.gid === undefined ? undefined : storedGid(this.idmap, sa.gid)];
      this.overlay.fsetattr(file, sa, undefined, touch);
      return;
    }
    if (this.idmap === undefined && this.override === undefined) {
      this.invalidatingCopyUps([node], () => this.overlay.setattr(node, setAttrOf(a), undefined, touch));
      return;
    }
    this.invalidatingCopyUps([node], () => {
      const rest = this.ownerChange(node, setAttrOf(a));
      if (Object.values(rest).some((v) => v !== undefined)) this.overlay.setattr(node, rest, undefined, touch);
    });
  }

  readlink(_caller: FuseCaller, node: OverlayNode): string {
    return this.overlay.readlink(node);
  }

  access(caller: FuseCaller, node: OverlayNode, mask: number): void {
    this.overlay.access(node, mask, caller);
  }

  // --- the namespace --------------------------------------------------------------------------------

  mkdir(caller: FuseCaller, parent: OverlayNode, name: string, mode: number, umask: number): OverlayNode {
    const defaultAcl = this.overlay.acl(parent, 'default') !== undefined;
    const node = this.invalidatingCopyUps([parent], () => this.overlay.mkdir(parent, name, madeMode(mode, umask, defaultAcl)));
    this.own(caller, parent, node, mode, umask, defaultAcl);
    return node;
  }

  mknod(caller: FuseCaller, parent: OverlayNode, name: string, mode: number, rdev: number, umask: number): OverlayNode {
    const node = this.invalidatingCopyUps([parent], () => this.overlay.mknod(parent, name, mode, rdev));
    this.own(caller, parent, node, mode, umask);
    return node;
  }

  symlink(caller: FuseCaller, parent: OverlayNode, name: string, target: string): OverlayNode {
    const node = this.invalidatingCopyUps([parent], () => this.overlay.symlink(parent, name, target));
    this.own(caller, parent, node, undefined);
    return node;
  }

  unlink(_caller: FuseCaller, parent: OverlayNode, name: string): void {
    this.invalidatingCopyUps([parent], () => this.overlay.unlink(parent, name));
  }

  rmdir(_caller: FuseCaller, parent: OverlayNode, name: string): void {
    this.invalidatingCopyUps([parent], () => this.overlay.rmdir(parent, name));
  }

  rename(_caller: FuseCaller, from: OverlayNode, name: string, to: OverlayNode, newName: string, flags: number): void {
    // RENAME_WHITEOUT is for overlay file systems stacked on us; EINVAL is what a file system without it says.
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw err('EINVAL', 'rename');
    if ((flags & RENAME_NOREPLACE) !== 0 && (flags & RENAME_EXCHANGE) !== 0) throw err('EINVAL', 'rename');
    if ((flags & RENAME_EXCHANGE) !== 0) {
      const a = this.overlay.lookup(from, name);
      const b = this.overlay.lookup(to, newName);
      const nodes = [from, to, ...(a !== null ? [a] : []), ...(b !== null ? [b] : [])];
      this.invalidatingCopyUps(nodes, () => this.overlay.exchange(from, name, to, newName));
      return;
    }
    // The source is copied up (a directory becomes merged: nlink 1) even when the rename then fails.
    const source = this.overlay.lookup(from, name);
    const nodes = source !== null ? [from, to, source] : [from, to];
    this.invalidatingCopyUps(nodes, () => this.overlay.rename(from, name, to, newName, { noReplace: (flags & RENAME_NOREPLACE) !== 0 }));
  }

  link(_caller: FuseCaller, source: OverlayNode, parent: OverlayNode, newName: string): OverlayNode {
    return this.invalidatingCopyUps([source, parent], () => this.overlay.link(source, parent, newName));
  }

  // --- files ----------------------------------------------------------------------------------------

  open(caller: FuseCaller, node: OverlayNode, flags: number, openFlags = 0): Opened<OpenFile> {
    if (this.background !== undefined && this.copiesData(node, flags)) {
      this.overlay.checkOpen(node, flags);
      this.copyUpInBackground(node, this.background);
    }
    // The flags asked for, O_APPEND included, decide what an append-only file allows. Only an open that
    // writes or truncates copies up (as ovl_open_need_copy_up); a reading one has nothing to invalidate.
    const copiesUp = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
    const file = copiesUp ? this.invalidatingCopyUps([node], () => this.overlay.open(node, coreFlags(flags), flags)) : this.overlay.open(node, coreFlags(flags), flags);
    // An O_TRUNC open by a caller without CAP_FSETID truncates as a write would (OPEN_KILL_SUIDGID).
    if ((openFlags & OPEN_KILL_SUIDGID) !== 0 && (flags & O_TRUNC) !== 0) this.killSuidgid(caller, file);
    // The pages the kernel holds are still right: no one changes the data but through this mount. But a
    // read that the atime rule says updates the atime has to reach the real file, so then they go.
    return { file, keepCache: true, backing: this.backingOf(node, file), dropCacheIf: () => this.overlay.readUpdatesAtime(file) };
  }

  /**
   * The real file to hand the kernel for passthrough: only once the data can no longer move (upper,
   * not metacopy). A handle on data that a copy-up may still move stays ours, so that the core's
   * choke point re-binds it; the bridge keeps the rest of that node's opens cached meanwhile.
   */
  private backingOf(node: OverlayNode, file: OpenFile): DataLease | undefined {
    if (node.type !== S_IFREG || this.overlay.copyUpState(node) !== 'upper') return undefined;
    return this.overlay.leaseData(file, file.writable ? 'write' : 'read');
  }

  // CREATE always makes the file (the core's create is O_EXCL), so OPEN_KILL_SUIDGID, which is about
  // truncating a file that was there, never applies: the new file keeps the mode asked for.
  create(caller: FuseCaller, parent: OverlayNode, name: string, mode: number, flags: number, umask: number): Opened<OpenFile> & { node: OverlayNode; attr?: FuseAttr } {
    const defaultAcl = this.overlay.acl(parent, 'default') !== undefined;
    const file = this.invalidatingCopyUps([parent], () => this.overlay.create(parent, name, coreFlags(flags), madeMode(mode, umask, defaultAcl)));
    try {
      const node = this.overlay.nodeOf(file);
      const st = this.own(caller, parent, node, mode, umask, defaultAcl);
      const backing = this.backingOf(node, file);
      return { node, file, keepCache: true, backing, attr: st === undefined ? undefined : this.shown(node, attrOf(st, node.ino)) };
    } catch (e) {
      this.overlay.release(file);
      throw e;
    }
  }

  /** O_TMPFILE: the core makes the file in the work area; the kernel's LINK on its id names it. */
  tmpfile(caller: FuseCaller, parent: OverlayNode, mode: number, flags: number, umask: number): Opened<OpenFile> & { node: OverlayNode } {
    const file = this.invalidatingCopyUps([parent], () => this.overlay.tmpfile(parent, coreFlags(flags) | (flags & fsc.O_EXCL), mode & 0o7777));
    try {
      const node = this.overlay.nodeOf(file);
      this.own(caller, parent, node, mode, umask);
      return { node, file, keepCache: true, backing: this.backingOf(node, file) };
    } catch (e) {
      this.overlay.release(file);
      throw e;
    }
  }

  read(_caller: FuseCaller, file: OpenFile, offset: FileOffset, size: number): Uint8Array {
    if (this.scratch.length < size) this.scratch = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = this.overlay.read(file, this.scratch, done, size - done, advance(offset, done));
      if (n === 0) break;
      done += n;
    }
    return this.scratch.subarray(0, done);
  }

  write(caller: FuseCaller, file: OpenFile, offset: FileOffset, data: Buffer, flags = 0): number {
    if ((flags & WRITE_KILL_SUIDGID) !== 0) this.killSuidgid(caller, file);
    let done = 0;
    while (done < data.length) done += this.overlay.write(file, data, done, data.length - done, advance(offset, done));
    return done;
  }

  /** Large reads and writes go to I/O threads on the real file's fd, taken through the core's choke point. */
  leaseData(file: OpenFile, access: 'read' | 'write', writeFlags = 0, caller?: FuseCaller): DataLease | undefined {
    const lease = this.overlay.leaseData(file, access);
    // Here, on the serving thread, before the I/O thread writes: the core's state stays on this thread.
    if (lease !== undefined && access === 'write' && (writeFlags & WRITE_KILL_SUIDGID) !== 0) {
      try {
        // A bridge that does not say who writes: the header's ids count for nobody's group.
        this.killSuidgid(caller ?? { unique: 0n, uid: -1, gid: -1, pid: 0 }, file);
      } catch (e) {
        lease.release();
        throw e;
      }
    }
    return lease;
  }

  /**
   * What the kernel's file_remove_privs does on a write by a caller without CAP_FSETID, which
   * HANDLE_KILLPRIV_V2 leaves to us (withoutSuidgid). security.capability needs nothing here: the
   * host removes it from the real file on every write and truncate, whoever writes.
   * The kernel is told, since nothing in the WRITE reply carries the new mode.
   */
  private killSuidgid(caller: FuseCaller, file: OpenFile): void {
    const st = this.overlay.fstat(file);
    const node = this.overlay.nodeOf(file);
    const kept = this.withoutSuidgid(caller, node, st.mode, st);
    if (kept === (st.mode & 0o7777)) return;
    this.overlay.fsetattr(file, { mode: kept }, 'write');
    this.notify?.invalAttrs(node);
  }

  /** withoutSuidgid for `caller`, against the file's group as the kernel sees it (mapped, or overridden). */
  private withoutSuidgid(caller: FuseCaller, node: OverlayNode, mode: number, st: OvlStat): number {
    return withoutSuidgid(mode, () => inGroupOrCapable(caller, this.shown(node, attrOf(st, node.ino)).gid));
  }

  // No flush: every write is already in the real file, and with FLUSH unanswered (ENOSYS) the kernel stops
  // sending one on every close(2), which saves a round trip per close.

  release(file: OpenFile): void {
    if (!file.closed) this.overlay.release(file);
  }

  fsync(_caller: FuseCaller, file: OpenFile, datasync: boolean): void {
    this.overlay.fsync(file, datasync);
  }

  fallocate(_caller: FuseCaller, file: OpenFile, offset: FileOffset, length: FileOffset, mode: number): void {
    this.overlay.fallocate(file, offset, length, mode);
  }

  /** SEEK_DATA/SEEK_HOLE (the kernel answers the other whences itself), from the current real file. */
  lseek(_caller: FuseCaller, file: OpenFile, offset: FileOffset, whence: number): FileOffset {
    return this.overlay.seekData(file, offset, whence);
  }

  /**
   * The file attribute ioctls the kernel's fileattr_get/set send (fuse_priv_ioctl, after an OPEN or
   * OPENDIR of the node): the flags as FS_IOC_GETFLAGS/SETFLAGS, or as the fsxattr of
   * FS_IOC_FSGETXATTR/FSSETXATTR; and FS_IOC_GOINGDOWN. ENOTTY for every other command, as for a file
   * with no ioctls.
   */
  ioctl(caller: FuseCaller, node: OverlayNode, cmd: number, input: Buffer, outSize: number): Uint8Array {
    if ((cmd >>> 0) === FS_IOC_GOINGDOWN) return this.goingDown(caller);
    if (this.down) throw err('EIO', 'ioctl');
    const out = Buffer.alloc(outSize);
    switch (cmd >>> 0) {
      case FS_IOC_GETFLAGS:
        if (outSize >= 4) out.writeUInt32LE(this.overlay.getFlags(node), 0);
        return out;
      case FS_IOC_SETFLAGS:
        if (input.length < 4) throw err('EINVAL', 'ioctl');
        this.setFlags(caller, node, input.readUInt32LE(0));
        return out;
      case FS_IOC_FSGETXATTR:
        if (outSize >= 4) out.writeUInt32LE(xflagsOf(this.overlay.getFlags(node)), 0);
        return out;
      case FS_IOC_FSSETXATTR: {
        if (input.length < FSXATTR_SIZE) throw err('EINVAL', 'ioctl');
        // extsize, projid and cowextsize are not carried (read as 0): refuse to change them.
        if (input.readUInt32LE(4) !== 0 || input.readUInt32LE(12) !== 0 || input.readUInt32LE(16) !== 0) throw err('EOPNOTSUPP', 'ioctl');
        const old = this.overlay.getFlags(node);
        const flags = ((old & ~XFLAG_MAPPED_FLAGS) | flagsOf(input.readUInt32LE(0))) >>> 0;
        this.setFlags(caller, node, flags);
        return out;
      }
      default:
        throw err('ENOTTY', 'ioctl');
    }
  }

  /**
   * FS_IOC_GOINGDOWN as XFS and ext4 answer it: EPERM without CAP_SYS_ADMIN, then shut down until
   * unmounted (every request EIO: NodeNotifier.shutDown); a second one succeeds and does nothing. Its
   * flags (flush the log or not) never reach us, as a restricted FUSE ioctl carries no input for an
   * _IOR command, so everything written is synced first, as the default flag does: nothing a flush
   * would have kept is lost. Nothing is written back to the caller's flags.
   */
  private goingDown(caller: FuseCaller): Uint8Array {
    if (!hasSysAdmin(caller)) throw err('EPERM', 'ioctl');
    if (this.down) return new Uint8Array(0);
    this.down = true;
    try {
      this.overlay.syncfs();
    } finally {
      this.notify?.shutDown();
    }
    return new Uint8Array(0);
  }

  private setFlags(caller: FuseCaller, node: OverlayNode, flags: number): void {
    this.invalidatingCopyUps([node], () => this.overlay.setFlags(node, flags, caller));
    // The change gave the file a new ctime, which the kernel does not know of (it caches attributes).
    this.notify?.invalAttrs(node);
  }

  copyFileRange(_caller: FuseCaller, fileIn: OpenFile, offIn: FileOffset, fileOut: OpenFile, offOut: FileOffset, len: number, flags: number): number {
    if (flags !== 0) throw err('EINVAL', 'copy_file_range');
    return this.overlay.copyFileRange(fileIn, offIn, fileOut, offOut, len);
  }

  // --- directories ----------------------------------------------------------------------------------

  /**
   * The listing may be kept in the kernel: any change made through this mount bumps the directory's
   * version there, which drops the cached listing at the next opendir.
   */
  opendir(): DirCaching {
    return { cacheDir: true, keepCache: true };
  }

  readdir(_caller: FuseCaller, node: OverlayNode): ListedEntry[] {
    const parent = node.parent ?? node;
    const entries: ListedEntry[] = [
      { name: '.', ino: node.ino, type: S_IFDIR },
      { name: '..', ino: parent.ino, type: S_IFDIR },
    ];
    for (const d of this.overlay.readdir(node)) {
      // The core's entry is already one (its type is S_IFMT bits): no copy of a long listing.
      if (d.ino !== undefined) {
        entries.push(d as ListedEntry);
        continue;
      }
      // d_ino must be the st_ino a stat will report; the lookup is cached by the core for the stat to come.
      let child: OverlayNode | null;
      try {
        child = this.overlay.lookup(node, d.name);
      } catch (e) {
        // An entry whose lookup fails (an invalid redirect, metacopy without data) is still listed, as the
        // kernel lists it; its own lookup gives the error. It has no st_ino, and readers drop entries
        // with d_ino 0, so it gets 1.
        if (errorCode(e) === undefined) throw e;
        entries.push({ name: d.name, ino: 1, type: d.type & S_IFMT });
        continue;
      }
      if (child === null) continue;
      entries.push({ name: d.name, ino: child.ino, type: d.type & S_IFMT });
    }
    return entries;
  }

  fsyncdir(): void {
    // Directory changes are made with synchronous system calls on the upper layer already.
  }

  statfs(): StatfsOut {
    // The remount helper's word that the mount's flags may have changed (see own-mount.ts).
    const rule = this.ownMount?.changed(this.overlay.atimeRule);
    if (rule !== undefined) this.overlay.setAtimeRule(rule.atime, rule.nodiratime);
    const s = this.overlay.statfs();
    return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, frsize: s.bsize, namelen: 255 };
  }

  // --- xattrs (the core hides the overlay's own) ---------------------------------------------------

  /** Undefined where there is none (ENODATA, answered without an exception). */
  getxattr(_caller: FuseCaller, node: OverlayNode, name: string): Buffer | undefined {
    return this.overlay.getxattr(node, name);
  }

  listxattr(_caller: FuseCaller, node: OverlayNode): string[] {
    return this.overlay.listxattr(node);
  }

  setxattr(caller: FuseCaller, node: OverlayNode, name: string, value: Buffer, flags: number, setxattrFlags = 0): void {
    if (isOverlayXattr(name)) throw err('EOPNOTSUPP', 'setxattr');
    if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
      const has = this.overlay.getxattr(node, name) !== undefined;
      if (flags & XATTR_CREATE && has) throw err('EEXIST', 'setxattr');
      if (flags & XATTR_REPLACE && !has) throw err('ENODATA', 'setxattr');
    }
    this.invalidatingCopyUps([node], () => this.overlay.setxattr(node, name, value));
    // A caller outside the file's group without CAP_FSETID cannot keep setgid through its access ACL
    // (posix_acl_update_mode; the kernel overlay's ovl_set_acl). The upper filesystem, changed with our
    // credentials, keeps it; the kernel drops its cached attributes after every SETXATTR.
    if ((setxattrFlags & SETXATTR_ACL_KILL_SGID) !== 0 && name === POSIX_ACL_ACCESS) this.dropSgid(caller, node, true);
  }

  /**
   * Setgid goes with a change of the access ACL by a caller neither in the file's group nor with
   * CAP_FSETID, as the kernel overlay's ovl_set_acl drops it; `decided`: the kernel has checked that.
   */
  private dropSgid(caller: FuseCaller, node: OverlayNode, decided: boolean): void {
    const a = this.getattr(caller, node, undefined);
    if (a === null || (a.mode & S_ISGID) === 0 || (!decided && inGroupOrCapable(caller, a.gid))) return;
    this.chmod(node, a.mode & 0o7777 & ~S_ISGID);
  }

  /** A mode change the mount makes itself, where the options keep modes (see ownerChange). */
  private chmod(node: OverlayNode, mode: number): void {
    const rest = this.idmap === undefined && this.override === undefined ? { mode } : this.ownerChange(node, { mode });
    if (rest.mode !== undefined) this.overlay.setattr(node, { mode: rest.mode }, 'chmod');
  }

  removexattr(caller: FuseCaller, node: OverlayNode, name: string): void {
    if (isOverlayXattr(name)) throw err('EOPNOTSUPP', 'removexattr');
    // Removing the access ACL drops setgid as setting one does, before the removal as in ovl_set_acl;
    // the kernel's FUSE client sends no flag for it, so the caller's credentials decide.
    this.invalidatingCopyUps([node], () => {
      if (name === POSIX_ACL_ACCESS) this.dropSgid(caller, node, false);
      this.overlay.removexattr(node, name);
    });
  }

  destroy(): void {
    this.overlay.close();
  }
}

/** The RawFileSystemFactory a mountFuse() worker loads (see bridge/mount.ts): builds the overlay on the serving thread. */
export function createOverlayFs(arg: unknown, notify: FuseNotifier): RawFileSystem {
  const a = arg as Partial<OverlayFsArg> | undefined;
  if (a === undefined || a === null || (typeof a.overlay !== 'string' && typeof a.overlay !== 'object')) {
    throw new TypeError('createOverlayFs: the argument must be { overlay: options }');
  }
  // POSIX_ACL: the kernel checks permissions with the ACLs (system.posix_acl_*, read through GETXATTR and
  // cached), and drops the cached ACLs and attributes after setfacl or chmod; the upper filesystem keeps
  // the mode and the access ACL in step itself. DONT_MASK: the umask is ours to apply (see own()).
  // HANDLE_KILLPRIV_V2: we clear setuid/setgid on writes, truncates and chown (killSuidgid, setattr), and
  // the kernel stops asking GETXATTR security.capability before every write. SETXATTR_EXT: the kernel
  // says when setting an access ACL drops setgid (SETXATTR_ACL_KILL_SGID).
  return new NodeBridge(new OverlayFileSystem(new Overlay(a.overlay), a.idmap, a.xattrPermissions ?? 0, a.mountpoint === undefined ? undefined : new OwnMount(a.mountpoint)), {
    notify, timeout: a.timeout ?? DEFAULT_TIMEOUT, wantFlags: InitFlag.POSIX_ACL | InitFlag.DONT_MASK | InitFlag.HANDLE_KILLPRIV_V2 | InitFlag.SETXATTR_EXT,
  });
}
