// The public entry point (the kernel's super.c): validates options as mount(8) would, builds the
// layers, and offers the core's operations on nodes to every face (the fs facade, FUSE, the CLI).
import * as fs from 'node:fs';
import { fsError } from '../errors.js';
import { readMounts } from '../mount-table.js';
import { copyFileData } from '../layer/copy.js';
import { DirLayer } from '../layer/dir-layer.js';
import type { FileOffset, Layer, LayerStatFs, WritableLayer } from '../layer/types.js';
import { O_ACCMODE, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../layer/types.js';
import { permits, processCaller, type Caller } from './permission.js';
import {
  getFlags, refuseIfProtected, refuseImmutableTarget, refuseProtectedChange, refuseProtectedCreate, refuseProtectedOpen, refuseProtectedRemoval, setFlags,
} from './attr-flags.js';
import { POSIX_ACL_ACCESS, POSIX_ACL_DEFAULT, readAcl } from './acl.js';
import { OverlayContext } from './context.js';
import { copyUp, startCopyUp, type CopyUpJob } from './copy-up.js';
import { createEntry, exchangeEntries, linkEntry, renameEntry, rmdirEntry, tmpfileEntry, unlinkEntry, type NewFileOpen, type RenameFlags } from './dir.js';
import {
  allocateData, closeFile, copyDataRange, leaseData, openNode, readData, readUpdatesAtime, realFile, seekData, syncData, truncateData, writeData,
  reservePosition, type DataLease, type OpenFile, type OvlFile, type PositionRange,
} from './file.js';
import { fgetattr, fsetattr, getattr, setattr, type OvlStat, type SetAttr } from './inode.js';
import { lookupChild, walk, walkParent, type ParentAndName } from './namei.js';
import type { OverlayNode, OvlNode } from './node.js';
import { checkDirectory, contains, normalizeOptions, type OverlayOptions, type ParsedOptions } from './options.js';
import { readdirNode, type OvlDirent } from './readdir.js';

const { O_RDONLY, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW } = fs.constants;
/** File capabilities: what the kernel reads before every exec, and before every write to clear them. */
const XATTR_CAPS = 'security.capability';
/** O_TMPFILE is __O_TMPFILE with O_DIRECTORY (node:fs names neither the flag nor its high bit). */
const O_TMPFILE = 0o20000000 | fs.constants.O_DIRECTORY;

/** Upper and work directories held by live overlays in this process. */
const inUse = new Set<string>();

function liveKernelOverlayUses(dir: string): boolean {
  return readMounts().some(
    (m) => (m.type === 'overlay' || m.type === 'fuse.fuse-overlayfs') && m.options.some(([key, value]) => (key === 'upperdir' || key === 'workdir') && value === dir),
  );
}

export class Overlay {
  private readonly ctx: OverlayContext;
  private readonly claimed: string[] = [];
  /** Layers this overlay made from directories; layers passed in as objects belong to the caller. */
  private readonly owned: Layer[] = [];
  private closed = false;
  /** Reads of directories update no atime (the options', until a remount: setAtimeRule). */
  private nodiratime: boolean;

  constructor(options: OverlayOptions | string) {
    const o = normalizeOptions(options);
    this.nodiratime = o.nodiratime;
    try {
      this.ctx = this.openLayers(o);
    } catch (err) {
      // A mount that fails holds nothing, as the kernel's ovl_free_fs releases it all: the layers made
      // so far close (their fds, the in-use locks on upperdir and workdir) and the claims go.
      for (const dir of this.claimed) inUse.delete(dir);
      for (const layer of this.owned) layer.close();
      throw err;
    }
  }

  /** Makes the layers the options name by directory (owned, and claimed for upper and work), and the context over all. */
  private openLayers(o: ParsedOptions): OverlayContext {
    const prefix = o.userxattr ? 'user.overlay.' : 'trusted.overlay.';
    const seen: Array<{ dir: string; role: string }> = [];
    const checkOverlap = (dir: string, role: string): void => {
      for (const other of seen) {
        if (contains(other.dir, dir) || contains(dir, other.dir)) {
          throw fsError('ELOOP', 'mount', dir, undefined, `overlapping layers: ${role} '${dir}' and ${other.role} '${other.dir}' must not contain each other`);
        }
      }
      seen.push({ dir, role });
    };
    const lowers: Layer[] = o.lower.map((item, i) => {
      if (typeof item !== 'string') return item;
      const dir = checkDirectory(item, `lowerdir #${i + 1}`);
      checkOverlap(dir, `lowerdir #${i + 1}`);
      const layer = new DirLayer(dir, { xattrPrefix: prefix, immutable: true });
      this.owned.push(layer);
      return layer;
    });
    let upper: WritableLayer | undefined;
    if (typeof o.upper === 'string') {
      const upperDir = checkDirectory(o.upper, 'upperdir');
      const workDir = checkDirectory(o.workdir!, 'workdir');
      checkOverlap(upperDir, 'upperdir');
      if (contains(upperDir, workDir) || contains(workDir, upperDir)) {
        throw fsError('EINVAL', 'mount', workDir, undefined, `workdir '${o.workdir}' and upperdir '${o.upper}' must be separate subtrees`);
      }
      checkOverlap(workDir, 'workdir');
      if (fs.statSync(upperDir).dev !== fs.statSync(workDir).dev) {
        throw fsError('EXDEV', 'mount', workDir, undefined, `workdir '${o.workdir}' and upperdir '${o.upper}' must be on the same filesystem`);
      }
      for (const dir of [upperDir, workDir]) {
        if (inUse.has(dir) || liveKernelOverlayUses(dir)) {
          throw fsError('EBUSY', 'mount', dir, undefined, `'${dir}' is in use by another live overlay; close it or use another upperdir/workdir`);
        }
      }
      upper = new DirLayer(upperDir, {
        xattrPrefix: prefix,
        workdir: workDir,
        atime: o.atime,
        nodiratime: o.nodiratime,
      });
      this.owned.push(upper);
      for (const dir of [upperDir, workDir]) {
        inUse.add(dir);
        this.claimed.push(dir);
      }
    } else {
      upper = o.upper;
    }
    return new OverlayContext(upper, lowers, {
      redirectDir: o.redirectDir,
      metacopy: o.metacopy,
      xino: o.xino,
      volatile: o.volatile,
      nodeCache: o.nodeCache,
      atime: o.atime,
    });
  }

  get root(): OverlayNode { return this.ctx.root; }
  get readOnly(): boolean { return this.ctx.upper === undefined; }
  /** volatile: every sync is skipped, whichever face asks for it. */
  get volatile(): boolean { return this.ctx.volatile; }

  /** The layers, top-most first (the upper, then the lowers): the facade's fs.watch watches their directories. */
  get layers(): readonly Layer[] { return this.ctx.upper !== undefined ? [this.ctx.upper, ...this.ctx.lowers] : this.ctx.lowers; }

  // --- paths ---------------------------------------------------------------------------------------

  /** Resolves an overlay path ('/a/b'); symlinks resolve inside the overlay. */
  resolve(path: string, followLast = true, syscall = 'stat'): OverlayNode {
    return walk(this.ctx, path, followLast, syscall);
  }

  resolveParent(path: string, syscall: string): ParentAndName {
    return walkParent(this.ctx, path, syscall);
  }

  // --- nodes ---------------------------------------------------------------------------------------

  lookup(parent: OverlayNode, name: string): OverlayNode | null {
    const dir = inner(parent);
    if (!dir.isDir) throw fsError('ENOTDIR', 'lookup', dir.path());
    this.ctx.beginOp();
    if (name === '..') return dir.parent ?? dir;
    if (name === '.') return dir;
    return lookupChild(this.ctx, dir, name);
  }

  getattr(node: OverlayNode): OvlStat { return getattr(this.ctx, inner(node)); }

  /**
   * The attributes of an entry this overlay made just now, from the stat its creation took: for the
   * reply to that create, which would otherwise stat the new entry a second time. Only before anything
   * else changed it (an owner or a mode set afterwards needs getattr).
   */
  createdAttrs(node: OverlayNode): OvlStat {
    const n = inner(node);
    if (n.upper === undefined) return getattr(this.ctx, n);
    // A copy to stamp, of the same kind as a stat's (fs.Stats for DirLayer), so the node's own stays as taken.
    const taken = n.upper.stat;
    return getattr(this.ctx, n, Object.assign(Object.create(Object.getPrototypeOf(taken) as object) as OvlStat, taken));
  }

  /** `touch`: both times are "now" (utimes(NULL)), which an append-only file allows. */
  setattr(node: OverlayNode, attr: SetAttr, syscall = 'setattr', touch = false): void {
    refuseProtectedChange(this.ctx, inner(node), attr, syscall, { touch });
    setattr(this.ctx, inner(node), attr, syscall);
  }

  /** FS_IOC_GETFLAGS: the FS_*_FL flags of a regular file or directory (ENOTTY for other types). */
  getFlags(node: OverlayNode): number { return getFlags(this.ctx, inner(node)); }

  /**
   * FS_IOC_SETFLAGS, as the kernel's overlay sets them: the node is copied up first, immutable and
   * append-only are kept in the overlay's protattr xattr and enforced by the core, the other flags
   * go onto the upper file. Only the owner or root may; only root may change immutable or append-only.
   */
  setFlags(node: OverlayNode, flags: number, caller: Caller = processCaller()): void {
    const n = inner(node);
    if (this.readOnly) throw fsError('EROFS', 'ioctl', n.path());
    setFlags(this.ctx, n, flags, caller, this.getattr(n).uid, () => copyUp(this.ctx, n, 'ioctl', { metadataOnly: true }));
  }

  /** access(2) for `caller` (the process by default): EROFS for W_OK on a read-only overlay. */
  access(node: OverlayNode, mode: number, caller: Caller = processCaller()): void {
    if (mode === fs.constants.F_OK) return;
    const n = inner(node);
    if ((mode & fs.constants.W_OK) !== 0 && this.readOnly) throw fsError('EROFS', 'access', n.path());
    // Nobody may write to an immutable file, root included (inode_permission).
    if ((mode & fs.constants.W_OK) !== 0) refuseProtectedOpen(this.ctx, n, fs.constants.O_WRONLY | fs.constants.O_APPEND, 'access');
    if (!permits(this.getattr(n), caller, mode, this.acl(n, 'access'))) throw fsError('EACCES', 'access', n.path());
  }

  /**
   * A node's access or default ACL (the system.posix_acl_* value), or undefined where it has none or
   * its filesystem keeps no ACLs. The default ACL is the node's cached value: the caller must not change it.
   */
  acl(node: OverlayNode, which: 'access' | 'default'): Buffer | undefined {
    if (which === 'access') return readAcl(() => this.getxattr(node, POSIX_ACL_ACCESS));
    const n = inner(node);
    const { layer } = this.ctx.metaRef(n);
    if (n.defaultAcl?.layer === layer) return n.defaultAcl.value;
    const value = readAcl(() => this.getxattr(n, POSIX_ACL_DEFAULT));
    n.defaultAcl = { layer, value };
    return value;
  }

  /** The merged listing; shared and cached, so callers must not change it. */
  readdir(node: OverlayNode): ReadonlyArray<OvlDirent> { return readdirNode(this.ctx, inner(node)); }

  readlink(node: OverlayNode): string { return this.ctx.readlinkNode(inner(node)); }

  /**
   * Where a node's data lives now: 'lower' (nothing copied up), 'metacopy' (metadata up, data
   * below) or 'upper'. A copy-up moves a node along this order; the FUSE face invalidates the
   * kernel's cached attributes of nodes that moved.
   */
  copyUpState(node: OverlayNode): 'lower' | 'metacopy' | 'upper' {
    const n = inner(node);
    return n.upper === undefined ? 'lower' : n.upper.metacopy ? 'metacopy' : 'upper';
  }

  /** The host identity of an upper file with more than one name (a hard link), else undefined. */
  hardLinkKey(node: OverlayNode): string | undefined {
    const n = inner(node);
    if (n.isDir || n.upper === undefined || n.upper.stat.nlink < 2) return undefined;
    return `${n.upper.stat.dev}:${n.upper.stat.ino}`;
  }

  /**
   * A face's reference to a node (the FUSE kernel's lookup count, say): a retained node is never
   * evicted from the cache, so every later lookup of its name gives this same node. Each retain
   * needs one releaseNode; after the last, the node may be dropped once it is the least recently
   * used of the unreferenced ones (node_cache=). Open files hold their node by themselves.
   */
  retainNode(node: OverlayNode): void { this.ctx.pin(inner(node)); }

  /** Ends one retainNode. */
  releaseNode(node: OverlayNode): void { this.ctx.unpin(inner(node)); }

  /** How many nodes nobody refers to are cached now (at most node_cache, give or take the last few operations'). */
  get cachedNodes(): number { return this.ctx.cachedNodes; }

  // --- copy-up in steps: the data off the core's thread --------------------------------------------

  /**
   * The start of a copy-up of `node`'s data, for a face that runs the data step on its own threads
   * (see CopyUpJob in copy-up.ts). Answers:
   * - undefined: nothing is left to copy (the data is up already, or the node has no data, e.g. a
   *   directory or symlink, and was copied up here synchronously);
   * - a promise: another copy-up of this node is in flight; await it, then ask again;
   * - a CopyUpJob, which the caller owns: run the data step (`copyDataAsync()`, `copyDataSync()`,
   *   or copy `length` bytes from `sourceFd` to `tempFd` at equal offsets and fsync `tempFd` when
   *   `sync`, on any thread), then call `finish()` on the core's thread, or `abort(err)` if the
   *   data step failed (`runSync()` does all of it on this thread). Either wakes the waiters.
   * Until finish(), reads of the node go on from the lower file, and other callers needing the node
   * wait on the promise (asynchronous) or complete the copy themselves (synchronous, e.g. `open`).
   * No permission check: the caller decides whether the copy-up is allowed (see copyUpForOpen).
   */
  startCopyUp(node: OverlayNode, syscall = 'open'): CopyUpJob | Promise<void> | undefined {
    return startCopyUp(this.ctx, inner(node), syscall);
  }

  /** A whole copy-up of `node` with its data step on libuv's thread pool; waits for one in flight. */
  async copyUpAsync(node: OverlayNode, syscall = 'open'): Promise<void> {
    const n = inner(node);
    for (;;) {
      const step = startCopyUp(this.ctx, n, syscall);
      if (step === undefined) return;
      if (step instanceof Promise) {
        // Whether it landed or failed, ask again: a failure is then this caller's own to report.
        await step.catch(() => {});
        continue;
      }
      try {
        await step.copyDataAsync();
      } catch (err) {
        step.abort(err);
        throw err;
      }
      step.finish();
      return;
    }
  }

  /**
   * The data a setattr on `node` would copy up synchronously (chmod, chown, utimes: none with
   * metacopy=on; `metadataOnly` false for a size change), copied with copyUpAsync instead; undefined
   * when the change copies no data. setattr() afterwards finds it done.
   */
  copyUpForChange(node: OverlayNode, metadataOnly: boolean): Promise<void> | undefined {
    const n = inner(node);
    if (n.type !== S_IFREG || n.unlinked || this.readOnly) return undefined;
    if (n.upper !== undefined && !n.upper.metacopy) return undefined;
    if (metadataOnly && (this.ctx.metacopy || n.upper !== undefined)) return undefined;
    return this.copyUpAsync(n, 'setattr');
  }

  /**
   * What open(node, flags) would copy up, copied with copyUpAsync after the open's own permission
   * check (a refused open leaves no copy); open() then finds the data up. Nothing to do for a
   * reading open, O_TRUNC (no data is copied), or what open() refuses by itself.
   */
  async copyUpForOpen(node: OverlayNode, flags: number): Promise<void> {
    const n = inner(node);
    const writes = (flags & O_ACCMODE) !== O_RDONLY;
    if (!writes || (flags & O_TRUNC) !== 0 || n.type !== S_IFREG || n.unlinked || this.readOnly) return;
    refuseProtectedOpen(this.ctx, n, flags, 'open');
    if (n.upper === undefined) this.checkWritable(n);
    await this.copyUpAsync(n);
  }

  // --- open files: every file operation goes through the choke point in file.ts --------------------

  /**
   * Opens an existing node; a writing open copies it up first. `asked`: the flags the caller gave, for
   * the append-only check, where they differ from those the file is opened with (the mount drops O_APPEND).
   */
  open(node: OverlayNode, flags: number, asked = flags): OpenFile {
    const n = inner(node);
    // A node whose name is gone (FUSE can still name it by node id) has no path to open: its name
    // may hold a whiteout or another file by now. Handles opened before keep their real files.
    if (n.unlinked) throw fsError('ENOENT', 'open', n.path());
    if (n.type === S_IFLNK) throw fsError('ELOOP', 'open', n.path());
    const writes = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
    if (writes && n.isDir) throw fsError('EISDIR', 'open', n.path());
    if (writes) refuseProtectedOpen(this.ctx, n, asked, 'open');
    if (writes) {
      // Check before copying up, as the kernel's permission check on the overlay inode comes first:
      // a refused open must not leave a copy behind.
      if (n.upper === undefined) this.checkWritable(n);
      copyUp(this.ctx, n, 'open', { truncate: (flags & O_TRUNC) !== 0 && n.type === S_IFREG });
    }
    // O_TRUNC reaches the real open: the upper file is truncated as it opens.
    return openNode(this.ctx, n, flags);
  }

  private checkWritable(node: OvlNode): void {
    const caller = processCaller();
    if (caller.uid !== 0 && !permits(this.getattr(node), caller, fs.constants.W_OK, this.acl(node, 'access'))) throw fsError('EACCES', 'open', node.path());
  }

  /** The open(2) checks of an immutable or append-only file (EPERM), for a face that copies up before it opens. */
  checkOpen(node: OverlayNode, flags: number): void { refuseProtectedOpen(this.ctx, inner(node), flags, 'open'); }

  /** Creates parent/name as a regular file and opens it (O_CREAT|O_EXCL semantics). */
  create(parent: OverlayNode, name: string, flags: number, mode: number): OpenFile {
    this.refuseNewName(parent, name, 'open');
    const open = flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW);
    // The file is made open, as open(2) with O_CREAT makes it, unless the real open takes other flags.
    const opened: NewFileOpen | undefined = this.ctx.atime !== 'noatime' ? { flags: open } : undefined;
    const node = createEntry(this.ctx, inner(parent), name, { type: S_IFREG, mode: mode & 0o7777 }, 'open', opened);
    // A new file has no file capability: the kernel's question before the first write needs no system call.
    node.noCapsAt = this.ctx.capsEpoch;
    return openNode(this.ctx, node, open, opened?.real);
  }

  /**
   * open(parent, O_TMPFILE | flags, mode): a regular file with no name, made in the work area, open
   * for writing. link() gives it its first name (unless flags hold O_EXCL); without one it is gone
   * with its last open file.
   */
  tmpfile(parent: OverlayNode, flags: number, mode: number): OpenFile {
    if ((flags & O_ACCMODE) === O_RDONLY) throw fsError('EINVAL', 'open', inner(parent).path());
    refuseProtectedCreate(this.ctx, inner(parent), 'open', inner(parent).path());
    const node = tmpfileEntry(this.ctx, inner(parent), mode & 0o7777, (flags & O_EXCL) === 0);
    try {
      return openNode(this.ctx, node, flags & ~(O_TMPFILE | O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW));
    } catch (err) {
      this.ctx.upper!.removeTemp(node.upperRel());
      throw err;
    }
  }

  /** The node an open file is on (which may have lost its name since). */
  nodeOf(file: OpenFile): OverlayNode { return file_(file).node; }

  release(file: OpenFile): void { closeFile(file_(file)); }

  /** read(2) (position null: at the file position) or pread(2). */
  read(file: OpenFile, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset | null): number {
    return readData(file_(file), buffer, offset, length, position);
  }

  /** write(2) (position null: at the file position) or pwrite(2); O_APPEND writes at the end. */
  write(file: OpenFile, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: FileOffset | null): number {
    return writeData(file_(file), buffer, offset, length, position);
  }

  /**
   * The current real file's host fd, for reads (or writes) at explicit positions off the core's
   * thread; release it when the I/O is done. Undefined where there is no host fd.
   */
  leaseData(file: OpenFile, access: 'read' | 'write'): DataLease | undefined { return leaseData(file_(file), access); }

  /** Whether a read of `file` now would update its atime: a cache in front of the core must let it through. */
  readUpdatesAtime(file: OpenFile): boolean { return readUpdatesAtime(file_(file)); }

  /** When reads update atimes now. */
  get atimeRule(): { atime: 'relatime' | 'strictatime' | 'noatime'; nodiratime: boolean } {
    return { atime: this.ctx.atime, nodiratime: this.nodiratime };
  }

  /**
   * A new atime rule, as a remount gives the kernel overlay's mount new flags: reads follow it from now
   * on, through files open already too (the upper layer's mount clone takes the new flags).
   */
  setAtimeRule(atime: 'relatime' | 'strictatime' | 'noatime', nodiratime: boolean): void {
    this.ctx.atime = atime;
    this.nodiratime = nodiratime;
    if (this.ctx.upper instanceof DirLayer) this.ctx.upper.setAtime(atime, nodiratime);
  }

  /**
   * For a read or write at the file position through a lease: the range it takes, so that other
   * calls meanwhile move on past it; call done(bytes) when the I/O ends.
   */
  reservePosition(file: OpenFile, length: number): PositionRange { return reservePosition(file_(file), length); }

  /** fstat(2): an open file whose name is gone answers from its real file. */
  fstat(file: OpenFile): OvlStat { return fgetattr(this.ctx, file_(file)); }

  /** fchmod/fchown/futimens/ftruncate: the handle's own inode, even after its name went. */
  fsetattr(file: OpenFile, attr: SetAttr, syscall = 'setattr', touch = false): void {
    refuseProtectedChange(this.ctx, file_(file).node, attr, syscall, { touch, viaHandle: true });
    fsetattr(this.ctx, file_(file), attr, syscall);
  }

  /** fsync(2)/fdatasync(2); nothing on a volatile overlay. */
  fsync(file: OpenFile, datasync = false): void { syncData(this.ctx, file_(file), datasync); }

  ftruncate(file: OpenFile, length: FileOffset): void {
    refuseProtectedChange(this.ctx, file_(file).node, { size: length }, 'ftruncate', { viaHandle: true });
    truncateData(file_(file), length);
  }

  /** fallocate(2) with any FALLOC_FL_* mode the upper filesystem supports. */
  fallocate(file: OpenFile, offset: FileOffset, length: FileOffset, mode: number): void {
    allocateData(file_(file), offset, length, mode);
  }

  /** lseek(2) with SEEK_DATA (3) or SEEK_HOLE (4), in the current real file. */
  seekData(file: OpenFile, offset: FileOffset, whence: number): FileOffset {
    return seekData(file_(file), offset, whence);
  }

  /** copy_file_range(2) between two open files. */
  copyFileRange(src: OpenFile, offIn: FileOffset, dst: OpenFile, offOut: FileOffset, length: number): number {
    return copyDataRange(file_(src), offIn, file_(dst), offOut, length);
  }

  /**
   * Copies all of src's current data into dst (both open), cloning (reflink) where both live on
   * host files of one filesystem that can, else copying. `force` fails where no clone is possible.
   */
  cloneFile(src: OpenFile, dst: OpenFile, force = false): void {
    refuseImmutableTarget(this.ctx, file_(dst).node, 'copyfile');
    copyFileData(realFile(file_(src), 'copyfile'), realFile(file_(dst), 'copyfile'), { cloneOnly: force });
  }

  // --- the namespace -------------------------------------------------------------------------------

  mkdir(parent: OverlayNode, name: string, mode: number): OverlayNode {
    this.refuseNewName(parent, name, 'mkdir');
    return createEntry(this.ctx, inner(parent), name, { type: S_IFDIR, mode: mode & 0o7777 }, 'mkdir');
  }

  symlink(parent: OverlayNode, name: string, target: string): OverlayNode {
    this.refuseNewName(parent, name, 'symlink');
    return createEntry(this.ctx, inner(parent), name, { type: S_IFLNK, target }, 'symlink');
  }

  mknod(parent: OverlayNode, name: string, mode: number, rdev: number): OverlayNode {
    const type = mode & S_IFMT;
    // A 0/0 character device is a whiteout in the upper layer: the name would vanish from the
    // merged view. The kernel's ovl_mknod refuses it the same way.
    if (type === S_IFCHR && rdev === 0) {
      const path = inner(parent).childPath(name);
      throw fsError(this.lookup(parent, name) !== null ? 'EEXIST' : 'EPERM', 'mknod', path);
    }
    this.refuseNewName(parent, name, 'mknod');
    return createEntry(this.ctx, inner(parent), name, { type: type === 0 ? S_IFREG : type, mode: mode & 0o7777, rdev }, 'mknod');
  }

  unlink(parent: OverlayNode, name: string): void {
    this.refuseRemoval(parent, name, 'unlink');
    unlinkEntry(this.ctx, inner(parent), name);
  }

  rmdir(parent: OverlayNode, name: string): void {
    this.refuseRemoval(parent, name, 'rmdir');
    rmdirEntry(this.ctx, inner(parent), name);
  }

  rename(oldParent: OverlayNode, oldName: string, newParent: OverlayNode, newName: string, flags?: RenameFlags): void {
    if (this.refuseRemoval(oldParent, oldName, 'rename') && !this.refuseRemoval(newParent, newName, 'rename')) {
      this.refuseNewName(newParent, newName, 'rename');
    }
    renameEntry(this.ctx, inner(oldParent), oldName, inner(newParent), newName, flags);
  }

  /** rename(2) with RENAME_EXCHANGE: swaps two existing entries. */
  exchange(aParent: OverlayNode, aName: string, bParent: OverlayNode, bName: string): void {
    this.refuseRemoval(aParent, aName, 'rename');
    this.refuseRemoval(bParent, bName, 'rename');
    exchangeEntries(this.ctx, inner(aParent), aName, inner(bParent), bName);
  }

  link(node: OverlayNode, newParent: OverlayNode, newName: string): OverlayNode {
    if (this.refuseNewName(newParent, newName, 'link')) refuseIfProtected(this.ctx, inner(node), 'link');
    return linkEntry(this.ctx, inner(node), inner(newParent), newName);
  }

  /**
   * A new name in an immutable directory: EPERM (may_create), unless the name is taken, where the
   * call fails with EEXIST as before. True when the name is free and may be made.
   */
  private refuseNewName(parent: OverlayNode, name: string, syscall: string): boolean {
    const dir = inner(parent);
    if (!dir.isDir || name === '.' || name === '..' || this.childOrNull(dir, name) !== null) return false;
    refuseProtectedCreate(this.ctx, dir, syscall, dir.childPath(name));
    return true;
  }

  /**
   * Removing a name (may_delete): EPERM when it or its directory is immutable or append-only. True
   * when the name exists; a missing one is left to the call, which fails with ENOENT.
   */
  private refuseRemoval(parent: OverlayNode, name: string, syscall: string): boolean {
    const dir = inner(parent);
    if (!dir.isDir || name === '.' || name === '..') return false;
    const child = this.childOrNull(dir, name);
    if (child === null) return false;
    refuseProtectedRemoval(this.ctx, dir, child, syscall);
    return true;
  }

  /** The child named, or null where there is none or the lookup fails: the call itself then reports it. */
  private childOrNull(dir: OvlNode, name: string): OvlNode | null {
    try {
      return lookupChild(this.ctx, dir, name);
    } catch {
      return null;
    }
  }

  // --- xattrs: the overlay's own are hidden by the layers ------------------------------------------

  listxattr(node: OverlayNode): string[] {
    const { layer, rel } = this.ctx.metaRef(inner(node));
    return layer.listxattr(rel).filter((name) => !isOverlayXattr(name));
  }

  getxattr(node: OverlayNode, name: string): Buffer | undefined {
    if (isOverlayXattr(name)) return undefined;
    const n = inner(node);
    if (name !== XATTR_CAPS) {
      const { layer, rel } = this.ctx.metaRef(n);
      return layer.getxattr(rel, name);
    }
    if (n.noCapsAt === this.ctx.capsEpoch) return undefined;
    const { layer, rel } = this.ctx.metaRef(n);
    const value = layer.getxattr(rel, name);
    if (value === undefined) n.noCapsAt = this.ctx.capsEpoch;
    return value;
  }

  setxattr(node: OverlayNode, name: string, value: Uint8Array): void {
    const n = inner(node);
    // The overlay's own xattrs are its on-disk format, not the user's (the kernel's ovl_own_xattr_set);
    // refused before any copy-up, so a refused call changes nothing.
    if (isOverlayXattr(name)) throw fsError('EOPNOTSUPP', 'setxattr', n.path());
    refuseIfProtected(this.ctx, n, 'setxattr');
    copyUp(this.ctx, n, 'setxattr', { metadataOnly: true });
    if (name === POSIX_ACL_DEFAULT) n.defaultAcl = undefined;
    if (name === XATTR_CAPS) this.ctx.capsEpoch++;
    this.ctx.upper!.setxattr(n.upperRel(), name, value);
  }

  removexattr(node: OverlayNode, name: string): void {
    const n = inner(node);
    refuseIfProtected(this.ctx, n, 'removexattr');
    if (this.getxattr(n, name) === undefined) {
      // An upper file's absent ACL is removed without error (the filesystems' set_acl with none), as
      // through the kernel overlay; only a lower one, which it looks up first, answers ENODATA.
      if ((name === POSIX_ACL_ACCESS || name === POSIX_ACL_DEFAULT) && n.upper !== undefined) return;
      throw fsError('ENODATA', 'removexattr', n.path());
    }
    copyUp(this.ctx, n, 'removexattr', { metadataOnly: true });
    if (name === POSIX_ACL_DEFAULT) n.defaultAcl = undefined;
    this.ctx.upper!.removexattr(n.upperRel(), name);
  }

  statfs(): LayerStatFs {
    return (this.ctx.upper ?? this.ctx.lowers[0]).statfs();
  }

  /** syncfs(2): everything written through the overlay flushed, as the upper layer's filesystem does it; nothing on a volatile overlay. */
  syncfs(): void {
    if (!this.ctx.volatile) this.ctx.upper?.syncfs();
  }

  /** Releases the layers and the claim on upperdir/workdir. Open files stay usable until closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const dir of this.claimed) inUse.delete(dir);
    for (const layer of this.owned) layer.close();
    this.ctx.sharedReads?.close();
    this.ctx.dropCache();
  }
}

/** Names in the overlay's own xattr namespaces, under either prefix: hidden from users and refused. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

// The faces hold nodes and files only as OverlayNode and OpenFile; every one they hold was made here.
function inner(node: OverlayNode): OvlNode { return node as OvlNode; }
function file_(file: OpenFile): OvlFile { return file as OvlFile; }
