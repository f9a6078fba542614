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

export function readdirNode(ctx: OverlayContext, node: OvlNode): OvlDirent[] {
  if (!node.isDir) throw fsError('ENOTDIR', 'scandir', node.path());
  if (node.unlinked) return [];
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
