// Merged directory listings (the kernel's readdir.c): the upper layer first, then each lower layer
// merged into the directory; a name appears once, and whiteouts hide it in every layer below.
import { fsError } from '../errors.js';
import type { OverlayContext } from './context.js';
import type { LowerRef, OvlNode } from './node.js';

export interface OvlDirent {
  name: string;
  /** S_IFMT bits of the top-most copy. */
  type: number;
  /**
   * The st_ino a stat of the entry will report, when it is known without a lookup: in a directory
   * that only one lower layer holds, where every entry's st_ino is its real one (as the kernel's
   * overlay passes d_ino through there). Undefined elsewhere: merged or upper directories hold
   * copied-up entries whose st_ino is their origin's.
   */
  ino?: number;
}

/**
 * The merged listing of a directory. It is cached on the node, as the kernel caches merged
 * listings, and dropped by every change to the directory's entries (see dir.ts): the overlay is its
 * upper layer's only writer, and lower layers do not change.
 */
export function readdirNode(ctx: OverlayContext, node: OvlNode): ReadonlyArray<OvlDirent> {
  if (!node.isDir) throw fsError('ENOTDIR', 'scandir', node.path());
  if (node.unlinked) return [];
  const listing = (node.listing ??= mergeListing(ctx, node)) as ReadonlyArray<OvlDirent>;
  // Listed while only a lower layer held the directory, copied up since: entries below it may be
  // copied up too (a lower hard link then gets a new st_ino), so the real numbers no longer hold.
  if (listing.length > 0 && listing[0].ino !== undefined && !lowerOnly(node)) {
    return (node.listing = listing.map(({ name, type }) => ({ name, type })));
  }
  return listing;
}

/** Only one lower layer holds the directory: nothing below it is merged or copied up. */
function lowerOnly(node: OvlNode): boolean {
  return node.upper === undefined && node.lowers.length === 1;
}

function mergeListing(ctx: OverlayContext, node: OvlNode): OvlDirent[] {
  // null marks a whiteout: the name is taken, and hidden.
  const seen = new Map<string, number | null>();
  if (node.upper !== undefined) {
    for (const d of ctx.upper!.readdir(node.upperRel())) seen.set(d.name, d.whiteout ? null : d.type);
  }
  if (lowerOnly(node)) return lowerListing(ctx, node.lowers[0]);
  for (const ref of node.lowers) {
    for (const d of ref.layer.readdir(ref.rel)) {
      if (!seen.has(d.name)) seen.set(d.name, d.whiteout ? null : d.type);
    }
  }
  const out: OvlDirent[] = [];
  for (const [name, type] of seen) if (type !== null) out.push({ name, type });
  return out;
}

/**
 * One lower layer's directory: its entries' st_ino are their real numbers (the core's inoOf takes
 * the top-most lower copy's), mapped through xino, so a layer that gives d_ino saves the lookups.
 */
function lowerListing(ctx: OverlayContext, ref: LowerRef): OvlDirent[] {
  const out: OvlDirent[] = [];
  const seen = new Set<string>();
  for (const d of ref.layer.readdir(ref.rel)) {
    // A whiteout in a layer with nothing below it hides nothing, but is no entry either.
    if (seen.has(d.name)) continue;
    seen.add(d.name);
    if (d.whiteout) continue;
    out.push(d.ino === undefined ? { name: d.name, type: d.type } : { name: d.name, type: d.type, ino: ctx.realIno(d.ino, ref.layer) });
  }
  return out;
}

export function isEmptyDir(ctx: OverlayContext, node: OvlNode): boolean {
  return readdirNode(ctx, node).length === 0;
}
