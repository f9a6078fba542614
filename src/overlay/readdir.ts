// Merged directory listings (the kernel's readdir.c): the upper layer first, then each lower layer
// merged into the directory; a name appears once, and whiteouts hide it in every layer below.
import { fsError } from '../errors.js';
import type { OverlayContext } from './context.js';
import type { OvlNode } from './node.js';

export interface OvlDirent {
  name: string;
  /** S_IFMT bits of the top-most copy. */
  type: number;
}

/**
 * The merged listing of a directory. It is cached on the node, as the kernel caches merged
 * listings, and dropped by every change to the directory's entries (see dir.ts): the overlay is its
 * upper layer's only writer, and lower layers do not change.
 */
export function readdirNode(ctx: OverlayContext, node: OvlNode): ReadonlyArray<OvlDirent> {
  if (!node.isDir) throw fsError('ENOTDIR', 'scandir', node.path());
  if (node.unlinked) return [];
  return (node.listing ??= mergeListing(ctx, node));
}

function mergeListing(ctx: OverlayContext, node: OvlNode): OvlDirent[] {
  // null marks a whiteout: the name is taken, and hidden.
  const seen = new Map<string, number | null>();
  if (node.upper !== undefined) {
    for (const d of ctx.upper!.readdir(node.upperRel())) seen.set(d.name, d.whiteout ? null : d.type);
  }
  for (const ref of node.lowers) {
    for (const d of ref.layer.readdir(ref.rel)) {
      if (!seen.has(d.name)) seen.set(d.name, d.whiteout ? null : d.type);
    }
  }
  const out: OvlDirent[] = [];
  for (const [name, type] of seen) if (type !== null) out.push({ name, type });
  return out;
}

export function isEmptyDir(ctx: OverlayContext, node: OvlNode): boolean {
  return readdirNode(ctx, node).length === 0;
}
