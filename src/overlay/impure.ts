// "Impure" directories (the kernel's ovl_set_impure): a directory of the upper layer that may hold
// entries whose st_ino is not their real inode number (copied up, or moved in with a lower origin) is
// marked with overlay.impure = "y". Listings of such a directory look its upper entries up for their
// d_ino, and the kernel decides with the mark which entries a listing shows (readdir.ts), so the
// overlay marks directories exactly where the kernel's overlay does, for both to read the layer alike.
import { errorCode } from '../errors.js';
import type { OverlayContext } from './context.js';
import type { OvlNode } from './node.js';

/** Marks `dir` (which has an upper copy) impure, once. An upper layer without xattrs is left unmarked, as the kernel leaves it. */
export function markImpure(ctx: OverlayContext, dir: OvlNode): void {
  const entry = dir.upper;
  if (entry === undefined || entry.impure === true || ctx.upper === undefined) return;
  try {
    ctx.upper.setImpure(dir.upperRel());
  } catch (e) {
    if (errorCode(e) !== 'EOPNOTSUPP') throw e;
    return;
  }
  entry.impure = true;
  // The listing's d_ino and the entries it shows follow the mark.
  dir.listing = undefined;
}

/** The entry's st_ino is its lower origin's, not its real one (the kernel's OVL_TYPE_ORIGIN). */
export function hasOrigin(node: OvlNode): boolean {
  return node.lowers.length > 0 || node.upper?.originIno !== undefined;
}

/**
 * A lookup found a merged directory whose upper copy has no record of the lower one: the kernel's
 * lookup records it (ovl_fix_origin) and marks the parent impure, so the parent's listings look
 * entries up from then on. The lookup itself must not fail for it.
 */
export function noteMergedDir(ctx: OverlayContext, node: OvlNode): void {
  if (!node.isDir || node.upper === undefined || node.lowers.length === 0 || node.upper.mergeOrigin === true) return;
  const parent = node.parent;
  if (parent === undefined || parent.upper?.impure === true) return;
  try {
    markImpure(ctx, parent);
  } catch {
    // best effort, as the listing rules only follow what was written
  }
}
