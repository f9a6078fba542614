// Namespace changes (the kernel's dir.c): create over whiteouts, unlink and rmdir leaving
// whiteouts where a lower entry would show through, rename with redirects, and hard links.
import { constants } from 'node:fs';
import { errorCode, fsError } from '../errors.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type LayerEntry, type RealFile, type RealStat, type WritableLayer } from '../layer/types.js';
import type { OverlayContext } from './context.js';
import { applyInheritedAcl } from './acl.js';
import { copyUp } from './copy-up.js';
import { settleOpenFiles } from './file.js';
import { lookupChild } from './namei.js';
import { joinRel, OvlNode } from './node.js';
import { createdUnprotected } from './attr-flags.js';
import { hasOrigin, markImpure } from './impure.js';
import { isEmptyDir } from './readdir.js';
import { getattr } from './inode.js';

/** What to create: a directory, a symlink, a regular file or a special file. */
export type NewEntry =
  | { type: typeof S_IFDIR; mode: number }
  | { type: typeof S_IFLNK; target: string }
  | { type: typeof S_IFREG; mode: number }
  | { type: number; mode: number; rdev: number };

function make(upper: WritableLayer, rel: string, entry: NewEntry): void {
  if (entry.type === S_IFDIR) upper.mkdir(rel, (entry as { mode: number }).mode);
  else if (entry.type === S_IFLNK) upper.symlink((entry as { target: string }).target, rel);
  else if (entry.type === S_IFREG) upper.create(rel, constants.O_WRONLY, (entry as { mode: number }).mode).close();
  else upper.mknod(rel, (entry as { mode: number }).mode | entry.type, (entry as { rdev: number }).rdev);
}

/**
 * Makes a regular file at rel, opened with `opened.flags` when asked (the caller's open, not a second
 * one) and closed otherwise; false when the name is taken in the upper layer.
 */
function madeInPlace(upper: WritableLayer, rel: string, mode: number, opened: NewFileOpen | undefined): boolean {
  let real: RealFile;
  try {
    real = upper.create(rel, (opened?.flags ?? constants.O_WRONLY) | constants.O_EXCL, mode);
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  }
  if (opened !== undefined) opened.real = real;
  else real.close();
  return true;
}

/** A new regular file that its creator opens: the flags to open it with, and the real file when it was made open. */
export interface NewFileOpen {
  flags: number;
  real?: RealFile;
}

/** The layer entry of something the overlay has just made in place: a stat, and no overlay xattrs. */
function freshEntry(upper: WritableLayer, rel: string): LayerEntry {
  return { stat: upper.lstat(rel), whiteout: false, opaque: false, metacopy: false };
}

/**
 * Registers a node just created in the upper layer. `fresh`: made in place by one call, so it carries
 * no overlay xattrs and a stat is all there is to read (a lookup would read them too).
 */
function attach(ctx: OverlayContext, parent: OvlNode, name: string, type: number, fresh = false): OvlNode {
  parent.listing = undefined;
  const rel = joinRel(parent.upperRel(), name);
  const entry = fresh ? freshEntry(ctx.upper!, rel) : ctx.upper!.lookup(rel);
  if (entry === undefined) throw fsError('EIO', 'lookup', parent.childPath(name));
  const node = new OvlNode(name, parent, type, entry, [], ctx.inoOf(entry, []));
  (parent.children ??= new Map()).set(name, node);
  ctx.added(node);
  return node;
}

/** Puts a new entry at parent/name, replacing an upper whiteout atomically where there is one. */
export function createEntry(ctx: OverlayContext, parent: OvlNode, name: string, entry: NewEntry, syscall: string, opened?: NewFileOpen): OvlNode {
  const path = parent.childPath(name);
  const upper = ctx.writableUpper(syscall, path);
  if (lookupChild(ctx, parent, name) !== null) throw fsError('EEXIST', syscall, path);
  if (parent.unlinked) throw fsError('ENOENT', syscall, path);
  copyUp(ctx, parent, syscall);
  const rel = joinRel(parent.upperRel(), name);
  // A file is made at once with O_EXCL; only if the name is taken (by a whiteout, say) is it looked up.
  if (entry.type === S_IFREG && madeInPlace(upper, rel, (entry as { mode: number }).mode, opened)) {
    try {
      const node = attach(ctx, parent, name, entry.type, true);
      createdUnprotected(node);
      return node;
    } catch (err) {
      opened?.real?.close();
      if (opened !== undefined) opened.real = undefined;
      throw err;
    }
  }
  const existing = upper.lookup(rel);
  if (existing !== undefined && !existing.whiteout) throw fsError('EEXIST', syscall, path);
  // A directory that could merge with what a whiteout hides below (one in a merged parent, or one
  // over an upper whiteout) is opaque, as the kernel makes it (ovl_create_upper,
  // ovl_create_over_whiteout); it is built aside and renamed in, so it never shows half made.
  const opaqueDir = entry.type === S_IFDIR && (existing !== undefined || parent.merged);
  if (existing === undefined && !opaqueDir) {
    make(upper, rel, entry);
  } else {
    const temp = upper.tempPath();
    try {
      make(upper, temp, entry);
      if ('mode' in entry) applyInheritedAcl(upper, parent.upperRel(), temp, entry.mode, entry.type === S_IFDIR);
      if (opaqueDir) upper.setOpaque(temp);
      if (existing === undefined) {
        upper.rename(temp, rel, { noReplace: true });
      } else if (entry.type === S_IFDIR) {
        // rename(2) cannot put a directory over a device: swap the two, then drop the whiteout (ovl_create_over_whiteout).
        upper.rename(temp, rel, { exchange: true });
      } else {
        upper.rename(temp, rel);
      }
    } finally {
      upper.removeTemp(temp);
    }
  }
  const node = attach(ctx, parent, name, entry.type, existing === undefined && !opaqueDir);
  createdUnprotected(node);
  return node;
}

/**
 * An O_TMPFILE file (the kernel's ovl_tmpfile): made in the work area after the parent is copied
 * up, with the ACL it would inherit in the parent. The node has no name until linkEntry gives it one.
 */
export function tmpfileEntry(ctx: OverlayContext, parent: OvlNode, mode: number, linkable: boolean): OvlNode {
  const upper = ctx.writableUpper('open', parent.path());
  if (!parent.isDir) throw fsError('ENOTDIR', 'open', parent.path());
  if (parent.unlinked) throw fsError('ENOENT', 'open', parent.path());
  copyUp(ctx, parent, 'open');
  const temp = upper.tempPath();
  try {
    make(upper, temp, { type: S_IFREG, mode });
    applyInheritedAcl(upper, parent.upperRel(), temp, mode, false);
    const entry = upper.lookup(temp);
    if (entry === undefined) throw fsError('EIO', 'open', parent.path());
    const node = new OvlNode(temp, ctx.root, S_IFREG, entry, [], ctx.inoOf(entry, []));
    node.unnamed = { opens: 0, linkable };
    return node;
  } catch (err) {
    upper.removeTemp(temp);
    throw err;
  }
}

/** The first name of an unnamed file: its work-area entry moves into place, over a whiteout if one is there. */
function nameUnnamed(ctx: OverlayContext, upper: WritableLayer, node: OvlNode, newParent: OvlNode, newName: string, path: string): OvlNode {
  if (!node.unnamed!.linkable) throw fsError('ENOENT', 'link', path);
  copyUp(ctx, newParent, 'link');
  const rel = joinRel(newParent.upperRel(), newName);
  const existing = upper.lookup(rel);
  if (existing !== undefined && !existing.whiteout) throw fsError('EEXIST', 'link', path);
  upper.rename(node.upperRel(), rel, { noReplace: existing === undefined });
  node.unnamed = undefined;
  node.parent = newParent;
  node.name = newName;
  OvlNode.moved();
  newParent.listing = undefined;
  (newParent.children ??= new Map()).set(newName, node);
  node.upper = upper.lookup(rel);
  ctx.touch(node);
  return node;
}

/** Is `name` visible in the lower layers merged into `parent`? Then removing it needs a whiteout. */
export function lowerPositive(parent: OvlNode, name: string): boolean {
  for (const ref of parent.lowers) {
    const entry = ref.layer.lookup(joinRel(ref.rel, name));
    if (entry !== undefined) return !entry.whiteout;
  }
  return false;
}

/**
 * Replaces the upper entry at rel with a whiteout in one step: a whiteout made aside is exchanged
 * with it, and what it replaced is dropped (the kernel's ovl_cleanup_and_whiteout).
 */
function whiteoutOver(upper: WritableLayer, rel: string): void {
  const temp = upper.tempPath();
  try {
    upper.whiteout(temp);
    upper.rename(temp, rel, { exchange: true });
  } finally {
    upper.removeTemp(temp);
  }
}

/** Removes the whiteouts an upper directory holds, once it is empty in the merged view. */
function clearWhiteouts(upper: WritableLayer, rel: string): void {
  for (const d of upper.readdir(rel)) {
    if (!d.whiteout) throw fsError('ENOTEMPTY', 'rmdir', '/' + rel);
    // A device or xattr whiteout has the name itself; an OCI one is the file `.wh.NAME`.
    try {
      upper.unlink(joinRel(rel, d.name));
    } catch {
      upper.unlink(joinRel(rel, '.wh.' + d.name));
    }
  }
}

/**
 * What fstat must still answer once the name is gone, where no open real file can: a directory, or
 * a metacopy file whose metadata lived in the upper inode being removed. Taken before removal.
 */
function snapshot(ctx: OverlayContext, node: OvlNode): RealStat | undefined {
  if (!node.isDir && !node.metacopy) return undefined;
  const stat = getattr(ctx, node);
  // The kernel then stats the real inode: an upper one is gone (nlink 0), a lower one is intact.
  if (node.upper !== undefined) stat.nlink = 0;
  return { ...stat };
}

function detach(ctx: OverlayContext, parent: OvlNode, name: string, node: OvlNode, stat?: RealStat): void {
  ctx.forget(node);
  parent.listing = undefined;
  node.removedStat = stat;
  node.unlinked = true;
  node.children = undefined;
  parent.children?.set(name, null);
}

/**
 * The upper layer must still hold, at the node's name, the entry the node was looked up with. If the
 * layer was changed behind the overlay's back, the answer is ESTALE, as the kernel's
 * ovl_remove_upper and ovl_rename give. The node stays cached, as the kernel's dentry does: a retry
 * (the VFS retries once on ESTALE) gets ESTALE again, and once the layer is whole again the name
 * works again.
 */
function checkNotStale(upper: WritableLayer, node: OvlNode, syscall: string, path: string, dest?: string): void {
  const cached = node.upper;
  if (cached === undefined) {
    if (upper.lookup(node.upperRel()) !== undefined) throw fsError('ESTALE', syscall, path, dest);
    return;
  }
  // The same inode is the entry it was (a whiteout is another inode): a stat tells, no xattrs needed.
  // Inode numbers are reused at once by some filesystems; the birth time tells a new inode apart.
  let now: RealStat;
  try {
    now = upper.lstat(node.upperRel());
  } catch (err) {
    // As a lookup would say "not here": gone, or a parent that is no longer a directory.
    const code = errorCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') throw fsError('ESTALE', syscall, path, dest);
    throw err;
  }
  if (now.ino !== cached.stat.ino || now.birthtimeNs !== cached.stat.birthtimeNs) throw fsError('ESTALE', syscall, path, dest);
}

export function unlinkEntry(ctx: OverlayContext, parent: OvlNode, name: string): void {
  const path = parent.childPath(name);
  const upper = ctx.writableUpper('unlink', path);
  const node = lookupChild(ctx, parent, name);
  if (node === null) throw fsError('ENOENT', 'unlink', path);
  if (node.isDir) throw fsError('EISDIR', 'unlink', path);
  checkNotStale(upper, node, 'unlink', path);
  copyUp(ctx, parent, 'unlink');
  settleOpenFiles(node);
  const removedStat = snapshot(ctx, node);
  const rel = node.upperRel();
  // What shows through at this name decides, not where the node came from (it may have been renamed here).
  const needWhiteout = node.upper === undefined || lowerPositive(parent, name);
  if (node.upper !== undefined) {
    if (needWhiteout) whiteoutOver(upper, rel);
    else upper.unlink(rel);
  } else {
    upper.whiteout(rel);
  }
  detach(ctx, parent, name, node, removedStat);
}

export function rmdirEntry(ctx: OverlayContext, parent: OvlNode, name: string): void {
  const path = parent.childPath(name);
  const upper = ctx.writableUpper('rmdir', path);
  const node = lookupChild(ctx, parent, name);
  if (node === null) throw fsError('ENOENT', 'rmdir', path);
  if (!node.isDir) throw fsError('ENOTDIR', 'rmdir', path);
  checkNotStale(upper, node, 'rmdir', path);
  if (!isEmptyDir(ctx, node)) throw fsError('ENOTEMPTY', 'rmdir', path);
  copyUp(ctx, parent, 'rmdir');
  const removedStat = snapshot(ctx, node);
  const rel = node.upperRel();
  // What shows through at this name decides, not where the node came from (it may have been renamed here).
  const needWhiteout = node.upper === undefined || lowerPositive(parent, name);
  if (node.upper !== undefined) {
    if (needWhiteout) {
      whiteoutOver(upper, rel);
    } else {
      clearWhiteouts(upper, rel);
      upper.rmdir(rel);
    }
  } else {
    upper.whiteout(rel);
  }
  detach(ctx, parent, name, node, removedStat);
}

function isAncestor(ancestor: OvlNode, node: OvlNode): boolean {
  for (let n: OvlNode | undefined = node; n !== undefined; n = n.parent) if (n === ancestor) return true;
  return false;
}

/**
 * Two names of one upper hard link are one overlay inode (the kernel hashes them by the upper
 * inode), and rename(2) between names of one inode does nothing.
 */
function sameUpperInode(ctx: OverlayContext, a: OvlNode, b: OvlNode): boolean {
  if (a.isDir || a.upper === undefined || b.upper === undefined) return false;
  return ctx.upper!.lstat(a.upperRel()).ino === ctx.upper!.lstat(b.upperRel()).ino;
}

/**
 * The redirect for a directory that moves, as the kernel writes it (ovl_set_redirect): an existing
 * one stays when still right; within one parent the lower name alone; else the absolute path of
 * the top-most lower copy. undefined keeps what is there.
 */
function redirectFor(node: OvlNode, sameDir: boolean): string | undefined {
  const current = node.upper?.redirect;
  if (current !== undefined && (sameDir || current.startsWith('/'))) return undefined;
  const lowerRel = node.lowers[0].rel;
  const slash = lowerRel.lastIndexOf('/');
  if (sameDir && node.parent !== undefined && lowerRel.slice(0, Math.max(slash, 0)) === node.parent.lowers[0]?.rel) {
    return lowerRel.slice(slash + 1);
  }
  return '/' + lowerRel;
}

export interface RenameFlags {
  noReplace?: boolean;
}

export function renameEntry(ctx: OverlayContext, oldParent: OvlNode, oldName: string, newParent: OvlNode, newName: string, flags: RenameFlags = {}): void {
  const oldPath = oldParent.childPath(oldName);
  const newPath = newParent.childPath(newName);
  const upper = ctx.writableUpper('rename', oldPath);
  const node = lookupChild(ctx, oldParent, oldName);
  if (node === null) throw fsError('ENOENT', 'rename', oldPath, newPath);
  const target = lookupChild(ctx, newParent, newName);
  // The VFS checks first (do_renameat2, vfs_rename), then the overlay's own (ovl_rename).
  if (node.isDir && isAncestor(node, newParent)) throw fsError('EINVAL', 'rename', oldPath, newPath);
  if (target !== null && target.isDir && isAncestor(target, oldParent)) throw fsError('ENOTEMPTY', 'rename', oldPath, newPath);
  if (target === node || (target !== null && sameUpperInode(ctx, node, target))) return;
  if (target !== null) {
    if (flags.noReplace) throw fsError('EEXIST', 'rename', oldPath, newPath);
    if (node.isDir && !target.isDir) throw fsError('ENOTDIR', 'rename', oldPath, newPath);
    if (!node.isDir && target.isDir) throw fsError('EISDIR', 'rename', oldPath, newPath);
  }
  // A directory with lower copies can only move if a redirect can say where they are.
  if (node.isDir && node.lowers.length > 0 && !ctx.createRedirects) throw fsError('EXDEV', 'rename', oldPath, newPath);
  // Over a pure upper directory the kernel leaves the emptiness check to the upper filesystem's
  // rename, so the source is copied up (and redirected) even when that rename then fails.
  const upperOnlyTarget = target !== null && target.isDir && target.upper !== undefined && target.lowers.length === 0;
  const notEmpty = target !== null && target.isDir && !isEmptyDir(ctx, target);
  if (notEmpty && !upperOnlyTarget) throw fsError('ENOTEMPTY', 'rename', oldPath, newPath);
  checkNotStale(upper, node, 'rename', oldPath, newPath);
  if (target !== null) checkNotStale(upper, target, 'rename', oldPath, newPath);

  copyUp(ctx, oldParent, 'rename');
  copyUp(ctx, newParent, 'rename');
  copyUp(ctx, node, 'rename', { metadataOnly: true });
  // An entry whose st_ino is its origin's makes the directory it moves into impure (ovl_rename).
  if (oldParent !== newParent && hasOrigin(node)) markImpure(ctx, newParent);
  const oldRel = node.upperRel();
  const newRel = joinRel(newParent.upperRel(), newName);
  const whiteoutOld = lowerPositive(oldParent, oldName);
  // Whether the move labels the entry (an xattr), so that its layer entry must be read again after.
  let labelled = false;
  if (node.isDir) {
    if (node.lowers.length > 0) {
      const redirect = redirectFor(node, oldParent === newParent);
      if (redirect !== undefined) upper.setRedirect(oldRel, redirect);
      labelled = redirect !== undefined;
    }
    else if (!node.upper!.opaque && newParent.merged) {
      upper.setOpaque(oldRel);
      labelled = true;
    }
  } else if (node.metacopy && node.upper!.redirect === undefined) {
    upper.setRedirect(oldRel, '/' + node.lowers[node.lowers.length - 1].rel);
    labelled = true;
  }
  if (notEmpty) {
    // What the kernel leaves behind: the copy, its redirect, and (its failed RENAME_WHITEOUT on the
    // upper filesystem) an old parent with a new mtime.
    node.upper = upper.lookup(oldRel);
    if (whiteoutOld) {
      const parentRel = oldParent.upperRel();
      upper.lutimes(parentRel, undefined, BigInt(Date.now()) * 1_000_000n);
    }
    throw fsError('ENOTEMPTY', 'rename', oldPath, newPath);
  }

  if (target !== null) settleOpenFiles(target);
  const targetStat = target !== null ? snapshot(ctx, target) : undefined;
  // Nothing shows at the new name: mostly nothing is there in the upper layer either, so the move is
  // tried as is, refusing to replace; only a name taken there (by a whiteout) is looked at.
  if (target !== null || !movedToFreeName(upper, oldRel, newRel, whiteoutOld)) {
    const atTarget = upper.lookup(newRel);
    if (atTarget !== undefined && atTarget.whiteout) {
      // Over an upper whiteout, swap: the whiteout lands at the old name, where it is kept if
      // something below shows through there (ovl_rename's RENAME_EXCHANGE and cleanup).
      upper.rename(oldRel, newRel, { exchange: true });
      if (!whiteoutOld) upper.unlink(oldRel);
    } else {
      if (atTarget !== undefined && (atTarget.stat.mode & S_IFMT) === S_IFDIR) clearWhiteouts(upper, newRel);
      // RENAME_WHITEOUT: the old name turns into a whiteout in the same step as the move.
      upper.rename(oldRel, newRel, { whiteout: whiteoutOld });
    }
  }

  if (target !== null) detach(ctx, newParent, newName, target, targetStat);
  oldParent.listing = undefined;
  newParent.listing = undefined;
  oldParent.children?.set(oldName, null);
  node.parent = newParent;
  node.name = newName;
  OvlNode.moved();
  (newParent.children ??= new Map()).set(newName, node);
  ctx.touch(node);
  // The same inode under a new name: unless the move labelled it, its layer entry still says all.
  if (labelled || node.upper === undefined) node.upper = upper.lookup(newRel);
}

/** A move to a name the upper layer does not hold (RENAME_NOREPLACE); false when it holds one. */
function movedToFreeName(upper: WritableLayer, oldRel: string, newRel: string, whiteoutOld: boolean): boolean {
  try {
    upper.rename(oldRel, newRel, { noReplace: true, whiteout: whiteoutOld });
    return true;
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  }
}

/**
 * RENAME_EXCHANGE: both names stay taken, so no whiteout is needed; directories with lower copies
 * get redirects, and a pure upper directory moving into a merged parent turns opaque, as for rename.
 * The swap itself is one renameat2(RENAME_EXCHANGE) in the upper layer.
 */
export function exchangeEntries(ctx: OverlayContext, aParent: OvlNode, aName: string, bParent: OvlNode, bName: string): void {
  const aPath = aParent.childPath(aName);
  const bPath = bParent.childPath(bName);
  const upper = ctx.writableUpper('rename', aPath);
  const a = lookupChild(ctx, aParent, aName);
  const b = lookupChild(ctx, bParent, bName);
  if (a === null || b === null) throw fsError('ENOENT', 'rename', aPath, bPath);
  if ((a.isDir && isAncestor(a, bParent)) || (b.isDir && isAncestor(b, aParent))) throw fsError('EINVAL', 'rename', aPath, bPath);
  if (a === b || sameUpperInode(ctx, a, b)) return;
  for (const n of [a, b]) {
    if (n.isDir && n.lowers.length > 0 && !ctx.createRedirects) throw fsError('EXDEV', 'rename', aPath, bPath);
  }
  copyUp(ctx, aParent, 'rename');
  copyUp(ctx, bParent, 'rename');
  copyUp(ctx, a, 'rename', { metadataOnly: true });
  copyUp(ctx, b, 'rename', { metadataOnly: true });
  const sameDir = aParent === bParent;
  if (!sameDir) {
    if (hasOrigin(a)) markImpure(ctx, bParent);
    if (hasOrigin(b)) markImpure(ctx, aParent);
  }
  for (const [n, to] of [[a, bParent], [b, aParent]] as const) {
    const rel = n.upperRel();
    if (n.isDir) {
      if (n.lowers.length > 0) {
        const redirect = redirectFor(n, sameDir);
        if (redirect !== undefined) upper.setRedirect(rel, redirect);
      } else if (!n.upper!.opaque && to.merged) {
        upper.setOpaque(rel);
      }
    } else if (n.metacopy && n.upper!.redirect === undefined) {
      upper.setRedirect(rel, '/' + n.lowers[n.lowers.length - 1].rel);
    }
  }
  settleOpenFiles(a);
  settleOpenFiles(b);
  const aRel = a.upperRel();
  const bRel = b.upperRel();
  upper.rename(aRel, bRel, { exchange: true });
  a.parent = bParent;
  a.name = bName;
  b.parent = aParent;
  b.name = aName;
  OvlNode.moved();
  aParent.children!.set(aName, b);
  bParent.children!.set(bName, a);
  ctx.touch(a);
  ctx.touch(b);
  aParent.listing = undefined;
  bParent.listing = undefined;
  a.upper = upper.lookup(bRel);
  b.upper = upper.lookup(aRel);
}

export function linkEntry(ctx: OverlayContext, node: OvlNode, newParent: OvlNode, newName: string): OvlNode {
  const path = newParent.childPath(newName);
  const upper = ctx.writableUpper('link', path);
  if (node.isDir) throw fsError('EPERM', 'link', node.path(), path);
  if (lookupChild(ctx, newParent, newName) !== null) throw fsError('EEXIST', 'link', node.path(), path);
  if (node.unlinked) throw fsError('ENOENT', 'link', node.path(), path);
  if (node.unnamed !== undefined) return nameUnnamed(ctx, upper, node, newParent, newName, path);
  copyUp(ctx, node, 'link');
  copyUp(ctx, newParent, 'link');
  const rel = joinRel(newParent.upperRel(), newName);
  const existing = upper.lookup(rel);
  if (existing !== undefined && !existing.whiteout) throw fsError('EEXIST', 'link', node.path(), path);
  if (existing === undefined) {
    upper.link(node.upperRel(), rel);
  } else {
    const temp = upper.tempPath();
    upper.link(node.upperRel(), temp);
    upper.rename(temp, rel);
  }
  return attach(ctx, newParent, newName, node.type);
}
