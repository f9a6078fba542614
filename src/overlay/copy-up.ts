// Copy-up (the kernel's copy_up.c): the first change to a lower entry copies it into the upper
// layer, parents first. Each copy is built in the work area and renamed into place, so the merged
// view never shows a half-copied file, not even after a crash.
import { constants } from 'node:fs';
import { errorCode, fsError } from '../errors.js';
import { S_IFDIR, S_IFLNK, S_IFREG, type CopyUpMetadata, type Layer, type WritableLayer } from '../layer/types.js';
import type { OverlayContext } from './context.js';
import type { OvlNode } from './node.js';

export interface CopyUpOptions {
  /** Copy metadata only and leave the data below (metacopy=on), for chmod, chown and the like. */
  metadataOnly?: boolean;
  /** The data is about to be truncated away (open with O_TRUNC): copy none of it, as the kernel does. */
  truncate?: boolean;
}

/** Makes sure `node` has an upper copy, with its data unless metadataOnly allows otherwise. */
export function copyUp(ctx: OverlayContext, node: OvlNode, syscall: string, options: CopyUpOptions = {}): void {
  const upper = ctx.writableUpper(syscall, node.path());
  if (node.upper !== undefined) {
    if (node.upper.metacopy && !options.metadataOnly) {
      if (options.truncate) dropMetacopy(upper, node);
      else copyUpData(ctx, upper, node, syscall);
    }
    return;
  }
  if (node.unlinked) throw fsError('ENOENT', syscall, node.path());
  const parent = node.parent!;
  if (parent.upper === undefined) copyUp(ctx, parent, syscall);

  const source = node.lowers[0];
  const stat = source.layer.lstat(source.rel);
  const temp = upper.tempPath();
  let keepsIno = true;
  const metadataOnly = options.metadataOnly === true && ctx.metacopy && node.type === S_IFREG && stat.size > 0;
  try {
    switch (node.type) {
      case S_IFDIR:
        upper.mkdir(temp, 0o700);
        break;
      case S_IFREG:
        if (metadataOnly) {
          upper.create(temp, constants.O_WRONLY, 0o600).close();
          // The kernel keeps the size on a metacopy file so that stat needs no lower lookup.
          upper.truncate(temp, stat.size);
          upper.setMetacopy(temp, true);
          if (node.lowers[node.lowers.length - 1].rel !== node.upperRel()) {
            upper.setRedirect(temp, '/' + node.lowers[node.lowers.length - 1].rel);
          }
        } else if (options.truncate) {
          upper.create(temp, constants.O_WRONLY, 0o600).close();
        } else {
          const data = ctx.dataRef(node);
          upper.copyData(data.layer, data.rel, temp);
          // The copy must be on disk before its name hides the lower file (the kernel fsyncs too),
          // or a crash could leave an empty upper file over intact lower data.
          if (!ctx.volatile) upper.fsync(temp);
        }
        break;
      case S_IFLNK:
        upper.symlink(source.layer.readlink(source.rel), temp);
        break;
      default:
        upper.mknod(temp, stat.mode, stat.rdev);
    }
    // Copying up one name of a lower hard link breaks the link (index=off); two files may not then
    // share a number, so the copy takes its own, as the kernel's does.
    keepsIno = node.type === S_IFDIR || stat.nlink === 1;
    upper.setMetadata(temp, metadataOf(source.layer, source.rel, stat, keepsIno ? node.ino : undefined));
    // A copy-up is not a change the user made: keep the parent's times as they were, as the kernel does.
    const parentRel = parent.upperRel();
    const parentStat = upper.lstat(parentRel);
    upper.rename(temp, node.upperRel(), { noReplace: true });
    upper.lutimes(parentRel, parentStat.atimeNs, parentStat.mtimeNs);
  } catch (err) {
    upper.removeTemp(temp);
    throw err;
  }
  node.upper = upper.lookup(node.upperRel());
  if (node.upper === undefined) throw fsError('EIO', syscall, node.path());
  if (!node.upper.metacopy) node.dataGen++;
  if (!keepsIno) node.ino = ctx.inoOf(node.upper, []);
}

/**
 * Copies the data under a metacopy file. The data is built in a temp in the work area, takes the
 * metacopy file's metadata (mode, owner, times, xattrs, origin, redirect), and is renamed over it
 * in one step, so any failure (ENOSPC half way, say) leaves the metacopy file whole. Like the
 * kernel's in-place copy, the data copy-up gives the file a new mtime.
 */
function copyUpData(ctx: OverlayContext, upper: WritableLayer, node: OvlNode, syscall: string): void {
  const rel = node.upperRel();
  const data = node.lowers[node.lowers.length - 1];
  // The kernel refuses a metacopy file whose data is nowhere below (ovl_lookup: EIO).
  if (data === undefined) throw fsError('EIO', syscall, node.path(), undefined, 'metacopy file without its lower data');
  const temp = upper.tempPath();
  try {
    const before = upper.lstat(rel);
    const meta = metadataOf(upper, rel, before, node.upper!.originIno);
    meta.mtimeNs = BigInt(Date.now()) * 1_000_000n;
    upper.copyData(data.layer, data.rel, temp);
    upper.setMetadata(temp, meta);
    if (node.upper!.redirect !== undefined) upper.setRedirect(temp, node.upper!.redirect);
    if (!ctx.volatile) upper.fsync(temp);
    upper.rename(temp, rel);
  } catch (err) {
    upper.removeTemp(temp);
    throw fsError(errorCode(err) ?? 'EIO', syscall, node.path());
  }
  node.upper = upper.lookup(rel);
  if (node.upper === undefined) throw fsError('EIO', syscall, node.path());
  node.dataGen++;
}

/** A metacopy file about to be truncated needs no data from below: it just stops being metacopy. */
function dropMetacopy(upper: WritableLayer, node: OvlNode): void {
  const rel = node.upperRel();
  upper.truncate(rel, 0);
  upper.setMetacopy(rel, false);
  node.upper = upper.lookup(rel);
  node.dataGen++;
}

export function metadataOf(layer: Layer, rel: string, stat: { mode: number; uid: number; gid: number; atimeNs: bigint; mtimeNs: bigint }, originIno: number | undefined): CopyUpMetadata {
  const xattrs: Array<[string, Buffer]> = [];
  for (const name of layer.listxattr(rel)) {
    const value = layer.getxattr(rel, name);
    if (value !== undefined) xattrs.push([name, value]);
  }
  return { mode: stat.mode, uid: stat.uid, gid: stat.gid, atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs, xattrs, originIno };
}
