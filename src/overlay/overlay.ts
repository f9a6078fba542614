// The public entry point (the kernel's super.c): validates options as mount(8) would, builds the
// layers, and offers the core's operations on nodes to every face (the fs facade, FUSE, the CLI).
import * as fs from 'node:fs';
import { fsError } from '../errors.js';
import { DirLayer } from '../layer/dir-layer.js';
import type { Layer, LayerStatFs, WritableLayer } from '../layer/types.js';
import { O_ACCMODE, S_IFDIR, S_IFLNK, S_IFREG } from '../layer/types.js';
import { permits, processCaller } from './permission.js';
import { OverlayContext } from './context.js';
import { copyUp } from './copy-up.js';
import { createEntry, exchangeEntries, linkEntry, renameEntry, rmdirEntry, unlinkEntry, type RenameFlags } from './dir.js';
import { closeFile, openNode, type OvlFile } from './file.js';
import { fgetattr, getattr, setattr, type OvlStat, type SetAttr } from './inode.js';
import { lookupChild, walk, walkParent, type ParentAndName } from './namei.js';
import type { OvlNode } from './node.js';
import { checkDirectory, contains, normalizeOptions, type OverlayOptions } from './options.js';
import { readdirNode, type OvlDirent } from './readdir.js';

const { O_RDONLY, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW } = fs.constants;

/** Upper and work directories held by live overlays in this process. */
const inUse = new Set<string>();

function liveKernelOverlayUses(dir: string): boolean {
  let mounts = '';
  try {
    mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return false;
  }
  for (const line of mounts.split('\n')) {
    const [, , type, opts] = line.split(' ');
    if (type !== 'overlay' && type !== 'fuse.fuse-overlayfs' || opts === undefined) continue;
    for (const opt of opts.split(',')) {
      const [key, value] = opt.split('=');
      if ((key === 'upperdir' || key === 'workdir') && value?.replace(/\\040/g, ' ') === dir) return true;
    }
  }
  return false;
}

export class Overlay {
  readonly ctx: OverlayContext;
  private readonly claimed: string[] = [];
  /** Layers this overlay made from directories; layers passed in as objects belong to the caller. */
  private readonly owned: Layer[] = [];
  private closed = false;

  constructor(options: OverlayOptions | string) {
    const o = normalizeOptions(options);
    const prefix = o.userxattr ? 'user.overlay.' : 'trusted.overlay.';
    const privileged = typeof process.getuid === 'function' && process.getuid() === 0;
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
        whiteoutFormat: privileged && !o.userxattr ? 'chardev' : 'xattr',
      });
      this.owned.push(upper);
      for (const dir of [upperDir, workDir]) {
        inUse.add(dir);
        this.claimed.push(dir);
      }
    } else {
      upper = o.upper;
    }
    this.ctx = new OverlayContext(upper, lowers, {
      redirectDir: o.redirectDir,
      metacopy: o.metacopy,
      xino: o.xino,
      volatile: o.volatile,
    });
  }

  get root(): OvlNode { return this.ctx.root; }
  get readOnly(): boolean { return this.ctx.upper === undefined; }

  // --- paths ---------------------------------------------------------------------------------------

  /** Resolves an overlay path ('/a/b'); symlinks resolve inside the overlay. */
  resolve(path: string, followLast = true, syscall = 'stat'): OvlNode {
    return walk(this.ctx, path, followLast, syscall);
  }

  resolveParent(path: string, syscall: string): ParentAndName {
    return walkParent(this.ctx, path, syscall);
  }

  // --- nodes ---------------------------------------------------------------------------------------

  lookup(parent: OvlNode, name: string): OvlNode | null {
    if (!parent.isDir) throw fsError('ENOTDIR', 'lookup', parent.path());
    if (name === '..') return parent.parent ?? parent;
    if (name === '.') return parent;
    return lookupChild(this.ctx, parent, name);
  }

  getattr(node: OvlNode): OvlStat { return getattr(this.ctx, node); }

  /** Attributes of an open file, which may have outlived its name. */
  fgetattr(file: OvlFile): OvlStat { return fgetattr(this.ctx, file); }

  setattr(node: OvlNode, attr: SetAttr, syscall = 'setattr'): void { setattr(this.ctx, node, attr, syscall); }

  /** The merged listing; shared and cached, so callers must not change it. */
  readdir(node: OvlNode): ReadonlyArray<OvlDirent> { return readdirNode(this.ctx, node); }

  readlink(node: OvlNode): string { return this.ctx.readlinkNode(node); }

  /** Opens an existing node; a writing open copies it up first. */
  open(node: OvlNode, flags: number): OvlFile {
    if (node.type === S_IFLNK) throw fsError('ELOOP', 'open', node.path());
    const writes = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
    if (writes && node.isDir) throw fsError('EISDIR', 'open', node.path());
    if (writes) {
      // Check before copying up, as the kernel's permission check on the overlay inode comes first:
      // a refused open must not leave a copy behind.
      if (node.upper === undefined) this.checkWritable(node);
      copyUp(this.ctx, node, 'open', { truncate: (flags & O_TRUNC) !== 0 && node.type === S_IFREG });
    }
    // O_TRUNC reaches the real open: the upper file is truncated as it opens.
    return openNode(this.ctx, node, flags);
  }

  private checkWritable(node: OvlNode): void {
    const caller = processCaller();
    if (caller.uid !== 0 && !permits(this.getattr(node), caller, fs.constants.W_OK)) throw fsError('EACCES', 'open', node.path());
  }

  /** Creates parent/name as a regular file and opens it (O_CREAT|O_EXCL semantics). */
  create(parent: OvlNode, name: string, flags: number, mode: number): OvlFile {
    const node = createEntry(this.ctx, parent, name, { type: S_IFREG, mode: mode & 0o7777 }, 'open');
    return openNode(this.ctx, node, flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW));
  }

  release(file: OvlFile): void { closeFile(file); }

  mkdir(parent: OvlNode, name: string, mode: number): OvlNode {
    return createEntry(this.ctx, parent, name, { type: S_IFDIR, mode: mode & 0o7777 }, 'mkdir');
  }

  symlink(parent: OvlNode, name: string, target: string): OvlNode {
    return createEntry(this.ctx, parent, name, { type: S_IFLNK, target }, 'symlink');
  }

  mknod(parent: OvlNode, name: string, mode: number, rdev: number): OvlNode {
    const type = mode & 0o170000;
    return createEntry(this.ctx, parent, name, { type: type === 0 ? S_IFREG : type, mode: mode & 0o7777, rdev }, 'mknod');
  }

  unlink(parent: OvlNode, name: string): void { unlinkEntry(this.ctx, parent, name); }

  rmdir(parent: OvlNode, name: string): void { rmdirEntry(this.ctx, parent, name); }

  rename(oldParent: OvlNode, oldName: string, newParent: OvlNode, newName: string, flags?: RenameFlags): void {
    renameEntry(this.ctx, oldParent, oldName, newParent, newName, flags);
  }

  /** rename(2) with RENAME_EXCHANGE: swaps two existing entries. */
  exchange(aParent: OvlNode, aName: string, bParent: OvlNode, bName: string): void {
    exchangeEntries(this.ctx, aParent, aName, bParent, bName);
  }

  link(node: OvlNode, newParent: OvlNode, newName: string): OvlNode {
    return linkEntry(this.ctx, node, newParent, newName);
  }

  listxattr(node: OvlNode): string[] {
    const { layer, rel } = this.ctx.metaRef(node);
    return layer.listxattr(rel);
  }

  getxattr(node: OvlNode, name: string): Buffer | undefined {
    const { layer, rel } = this.ctx.metaRef(node);
    return layer.getxattr(rel, name);
  }

  setxattr(node: OvlNode, name: string, value: Uint8Array): void {
    copyUp(this.ctx, node, 'setxattr', { metadataOnly: true });
    this.ctx.upper!.setxattr(node.upperRel(), name, value);
  }

  removexattr(node: OvlNode, name: string): void {
    if (this.getxattr(node, name) === undefined) throw fsError('ENODATA', 'removexattr', node.path());
    copyUp(this.ctx, node, 'removexattr', { metadataOnly: true });
    this.ctx.upper!.removexattr(node.upperRel(), name);
  }

  statfs(): LayerStatFs {
    return (this.ctx.upper ?? this.ctx.lowers[0]).statfs();
  }

  /** Releases the layers and the claim on upperdir/workdir. Open files stay usable until closed. */
  /** The host path of a node's current data, when its layer has one (for clones). */
  dataHostPath(node: OvlNode): string | undefined {
    const { layer, rel } = this.ctx.dataRef(node);
    return layer.hostPath(rel);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const dir of this.claimed) inUse.delete(dir);
    for (const layer of this.owned) layer.close();
  }
}
