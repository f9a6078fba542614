// Attributes of overlay inodes (the kernel's inode.c): stat merges the real file's attributes with
// the overlay's identity, and every attribute change copies up first.
import { errorCode, fsError } from '../errors.js';
import { S_IFLNK, S_IFMT, S_IFREG, type FileOffset, type RealStat } from '../layer/types.js';
import type { OverlayContext } from './context.js';
import { copyUp } from './copy-up.js';
import type { OvlNode } from './node.js';
import { realFile, type OvlFile } from './file.js';

/** A stat result: the real file's attributes with the overlay's st_dev and stable st_ino. */
export type OvlStat = RealStat;

export function getattr(ctx: OverlayContext, node: OvlNode, real?: OvlStat): OvlStat {
  // The layer's stat object is ours to stamp (for DirLayer it is node's own fs.Stats, which the
  // facade then hands out as is: one object per stat, as with raw fs). `real`: one taken just now.
  const stat: OvlStat = real ?? (node.upper !== undefined ? upperStat(ctx, node) : node.lowers[0].layer.lstat(node.lowers[0].rel));
  stat.dev = ctx.dev;
  stat.ino = node.ino;
  if (node.metacopy) {
    // Size and blocks belong to the data, which is still below.
    const data = node.lowers[node.lowers.length - 1];
    const lower = data.layer.lstat(data.rel);
    stat.size = lower.size;
    if (lower.sizeExact !== undefined) stat.sizeExact = lower.sizeExact;
    stat.blocks = lower.blocks;
  }
  // Counting subdirectories across layers is not worth it; nlink=1 is what find(1) expects then.
  if (node.merged) stat.nlink = 1;
  // Its work-area name is no name in the overlay.
  if (node.unnamed !== undefined) stat.nlink = 0;
  return stat;
}

/**
 * The upper file's attributes. If it was removed behind the overlay's back, the kernel's overlay still
 * holds its inode and stats that (with no links left); so does this, from the stat cached at lookup,
 * so that a FUSE revalidation keeps the name and the change that follows fails with ESTALE as there.
 */
function upperStat(ctx: OverlayContext, node: OvlNode): OvlStat {
  try {
    return ctx.upper!.lstat(node.upperRel());
  } catch (e) {
    if (errorCode(e) !== 'ENOENT' || node.upper === undefined) throw e;
    return { ...node.upper.stat, nlink: 0 };
  }
}

/** fstat: an open file whose name is gone is stat'ed through its real file, as the kernel does. */
export function fgetattr(ctx: OverlayContext, file: OvlFile): OvlStat {
  const node = file.node;
  if (node.unlinked && node.removedStat !== undefined) return { ...node.removedStat };
  if (node.unlinked && node.isDir) throw fsError('ENOENT', 'fstat', node.path());
  if (!node.unlinked) return getattr(ctx, node);
  const real = realFile(file, 'fstat').stat();
  return {
    dev: ctx.dev, ino: node.ino, mode: real.mode, nlink: real.nlink, uid: real.uid, gid: real.gid,
    rdev: real.rdev, size: real.size, blksize: real.blksize, blocks: real.blocks,
    atimeMs: real.atimeMs, mtimeMs: real.mtimeMs, ctimeMs: real.ctimeMs, birthtimeMs: real.birthtimeMs,
    atimeNs: real.atimeNs, mtimeNs: real.mtimeNs, ctimeNs: real.ctimeNs, birthtimeNs: real.birthtimeNs,
    ...(real.sizeExact !== undefined && { sizeExact: real.sizeExact }),
  };
}

export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: FileOffset;
  /** Times in nanoseconds since the epoch, the layer contract's unit; undefined leaves a time as it is. */
  atimeNs?: bigint;
  mtimeNs?: bigint;
}

/**
 * fchmod/fchown/futimens/ftruncate: the change lands on the handle's own inode. While the name is
 * live that is the node (copied up first, as for setattr); once the name is gone (perhaps re-used
 * by a new file) only the real file the handle holds is left to change.
 */
export function fsetattr(ctx: OverlayContext, file: OvlFile, attr: SetAttr, syscall: string): void {
  if (file.closed) throw fsError('EBADF', syscall);
  const node = file.node;
  if (!node.unlinked) return setattr(ctx, node, attr, syscall);
  // An unlinked lower or metacopy file has no upper inode of its own left to change.
  if (node.isDir || node.upper === undefined || node.upper.metacopy) throw fsError('ENOENT', syscall);
  const real = realFile(file, syscall);
  if (attr.size !== undefined) {
    if (attr.size < 0) throw fsError('EINVAL', syscall);
    real.truncate(attr.size);
  }
  if (attr.uid !== undefined || attr.gid !== undefined) real.chown(attr.uid ?? -1, attr.gid ?? -1);
  if (attr.mode !== undefined) real.chmod(attr.mode & 0o7777);
  if (attr.atimeNs !== undefined || attr.mtimeNs !== undefined) real.utimes(attr.atimeNs, attr.mtimeNs);
}

export function setattr(ctx: OverlayContext, node: OvlNode, attr: SetAttr, syscall: string): void {
  const path = node.path();
  if (attr.size !== undefined) {
    if ((node.type & S_IFMT) !== S_IFREG) throw fsError(node.isDir ? 'EISDIR' : 'EINVAL', syscall, path);
    if (attr.size < 0) throw fsError('EINVAL', syscall, path);
  }
  if (attr.mode !== undefined && node.type === S_IFLNK) throw fsError('EOPNOTSUPP', syscall, path);
  // Only a size change needs the data; the rest is metadata (metacopy=on copies no data for it).
  copyUp(ctx, node, syscall, { metadataOnly: attr.size === undefined });
  const upper = ctx.upper!;
  const rel = node.upperRel();
  if (attr.uid !== undefined || attr.gid !== undefined) upper.lchown(rel, attr.uid ?? -1, attr.gid ?? -1);
  if (attr.mode !== undefined) upper.chmod(rel, attr.mode);
  if (attr.size !== undefined) upper.truncate(rel, attr.size);
  if (attr.atimeNs !== undefined || attr.mtimeNs !== undefined) upper.lutimes(rel, attr.atimeNs, attr.mtimeNs);
}
