// Merged directory listings (the kernel's readdir.c): the upper layer first, then each lower layer
// merged into the directory; a name appears once, and whiteouts hide it in every layer below.
import { errorCode, fsError } from '../errors.js';
import type { OverlayContext } from './context.js';
import { lookupChild } from './namei.js';
import type { LowerRef, OvlNode } from './node.js';

export interface OvlDirent {
  name: string;
  /** S_IFMT bits of the top-most copy. */
  type: number;
  /**
   * The st_ino a stat of the entry will report (d_ino), when the listing knows it: the real number
   * where the kernel's overlay passes d_ino through (a directory only one lower layer holds; an upper
   * entry of a directory that is not impure and merges nothing of that name), or the looked-up node's
   * where the kernel looks entries up. Undefined elsewhere: the face looks the entry up.
   */
  ino?: number;
}

/** Listings made while only one lower layer held the directory: they no longer hold once it is copied up. */
const lowerOnlyListings = new WeakSet<object>();

/**
 * The listing of a directory, as the kernel's ovl_iterate shows it. It is cached on the node, as the
 * kernel caches merged listings, and dropped by every change to the directory's entries (see dir.ts)
 * and when the directory turns impure (impure.ts): the overlay is its upper layer's only writer, and
 * lower layers do not change.
 */
export function readdirNode(ctx: OverlayContext, node: OvlNode): ReadonlyArray<OvlDirent> {
  if (!node.isDir) throw fsError('ENOTDIR', 'scandir', node.path());
  if (node.unlinked) return [];
  const cached = node.listing as ReadonlyArray<OvlDirent> | undefined;
  // Listed while only a lower layer held the directory, copied up since: entries below it may be
  // copied up too (a lower hard link then gets a new st_ino), so the real numbers no longer hold.
  if (cached !== undefined && !(lowerOnlyListings.has(cached) && !lowerOnly(node))) return cached;
  const listing = lowerOnly(node) ? lowerListing(ctx, node.lowers[0]) : listMerged(ctx, node);
  if (lowerOnly(node)) lowerOnlyListings.add(listing);
  node.listing = listing;
  return listing;
}

/** Only one lower layer holds the directory: nothing below it is merged or copied up. */
function lowerOnly(node: OvlNode): boolean {
  return node.upper === undefined && node.lowers.length === 1;
}

/** An entry of the layers' merged listing, before the overlay's rules for what a listing shows. */
interface RawEntry {
  type: number;
  /** The top-most copy is in the upper layer. */
  upper: boolean;
  /** The top-most copy's real inode number, when its layer gives it. */
  realIno: number | undefined;
  /** A lower layer holds the name too (a directory there may merge with the upper one). */
  inLower: boolean;
}

/** The upper layer first, then each lower layer; null marks a whiteout: the name is taken, and hidden. */
function mergeLayers(ctx: OverlayContext, node: OvlNode): Map<string, RawEntry | null> {
  const seen = new Map<string, RawEntry | null>();
  if (node.upper !== undefined) {
    for (const d of ctx.upper!.readdir(node.upperRel())) {
      seen.set(d.name, d.whiteout ? null : { type: d.type, upper: true, realIno: d.ino === undefined ? undefined : ctx.realIno(d.ino, ctx.upper!), inLower: false });
    }
  }
  for (const ref of node.lowers) {
    for (const d of ref.layer.readdir(ref.rel)) {
      const known = seen.get(d.name);
      if (known === undefined) seen.set(d.name, d.whiteout ? null : { type: d.type, upper: false, realIno: undefined, inLower: true });
      else if (known !== null) known.inLower = true;
    }
  }
  return seen;
}

/**
 * A merged or upper directory. Where the kernel recomputes an entry's d_ino (every entry when the
 * layers span filesystems, xino; an upper entry of an impure directory) it looks the entry up, and an
 * entry whose lookup fails or finds nothing is left out of a merged directory's listing, while it
 * fails the listing of an impure upper directory with the lookup's error (ovl_dir_read_impure).
 * Everywhere else the name is listed as the layers hold it, and its own lookup gives its error.
 */
function listMerged(ctx: OverlayContext, node: OvlNode): OvlDirent[] {
  const merged = node.lowers.length > 0;
  const impure = node.upper?.impure === true;
  const out: OvlDirent[] = [];
  for (const [name, e] of mergeLayers(ctx, node)) {
    if (e === null) continue;
    const recalc = merged ? !ctx.sameFs || (e.upper && impure) : impure;
    if (recalc) {
      let child: OvlNode | null;
      try {
        child = lookupChild(ctx, node, name);
      } catch (err) {
        const code = errorCode(err);
        if (code === undefined) throw err;
        if (merged) continue;
        throw fsError(code, 'scandir', node.path());
      }
      if (child !== null) out.push({ name, type: e.type, ino: child.ino });
      continue;
    }
    // A pure upper entry's st_ino is its real one; a name a lower layer holds too may be a merged directory.
    const passThrough = e.upper && !e.inLower && ctx.sameFs && e.realIno !== undefined;
    out.push(passThrough ? { name, type: e.type, ino: e.realIno } : { name, type: e.type });
  }
  return out;
}

/**
 * One lower layer's directory: its entries' st_ino are their real numbers (the core's inoOf takes
 * the top-most lower copy's), mapped through xino, so a layer that gives d_ino saves the lookups.
 */
function lowerListing(ctx: OverlayContext, ref: LowerRef): OvlDirent[] {
  const dirents = ref.layer.readdir(ref.rel);
  if (!dirents.some((d) => d.whiteout)) {
    // Each name once, none hidden: the layer's fresh entries serve as the listing's, so a listing of
    // 200,000 names makes no second set of objects. Only xino changes their numbers.
    if (!ctx.sameFs) for (const d of dirents) if (d.ino !== undefined) d.ino = ctx.realIno(d.ino, ref.layer);
    return dirents;
  }
  const out: OvlDirent[] = [];
  const seen = new Set<string>();
  for (const d of dirents) {
    // A whiteout in a layer with nothing below it hides nothing, but is no entry either.
    if (seen.has(d.name)) continue;
    seen.add(d.name);
    if (d.whiteout) continue;
    out.push(d.ino === undefined ? { name: d.name, type: d.type } : { name: d.name, type: d.type, ino: ctx.realIno(d.ino, ref.layer) });
  }
  return out;
}

/**
 * No entry but '.' and '..', as the kernel's ovl_check_empty_dir sees it: every name the layers show,
 * whatever its lookup would say.
 */
export function isEmptyDir(ctx: OverlayContext, node: OvlNode): boolean {
  if (node.unlinked) return true;
  const cached = node.listing;
  if (cached !== undefined && cached.length > 0) return false;
  for (const e of mergeLayers(ctx, node).values()) if (e !== null) return false;
  return true;
}
