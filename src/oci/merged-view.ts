// Layers as a mount of them shows them, looked at by layer path: a read-only overlay that follows
// redirects and metacopy files, as the mount that wrote them follows them.
import { DirLayer } from '../layer/dir-layer.js';
import { S_IFDIR } from '../layer/types.js';
import { Overlay, type OverlayNode } from '../overlay/index.js';
import { compareBytes } from './names.js';

/** Opens layer directories read-only, top-most first; on a failure the ones already open are closed. */
export function openLayers(dirs: readonly string[], xattrPrefix: string): DirLayer[] {
  const layers: DirLayer[] = [];
  try {
    for (const dir of dirs) layers.push(new DirLayer(dir, { xattrPrefix, immutable: true }));
  } catch (err) {
    for (const layer of layers) layer.close();
    throw err;
  }
  return layers;
}

/** xattrs in byte order of their names, read through `get`. */
export function sortedXattrs(names: string[], get: (name: string) => Buffer | undefined): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  for (const name of [...names].sort(compareBytes)) {
    const value = get(name);
    if (value !== undefined) out.push([name, value]);
  }
  return out;
}

export class MergedView {
  readonly overlay: Overlay;

  /** `layers` stay the caller's: close() leaves them open. */
  constructor(layers: DirLayer[]) {
    this.overlay = new Overlay({ lowerdir: layers, redirect_dir: 'follow', metacopy: 'on' });
  }

  /** The node at rel ('' is the root), or undefined where the merged view has nothing. */
  node(rel: string): OverlayNode | undefined {
    try {
      return this.overlay.resolve(`/${rel}`, false, 'lstat');
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  /** The S_IFMT of what is at rel, or undefined. */
  type(rel: string): number | undefined {
    return this.node(rel)?.type;
  }

  /** The names in the directory rel (none where it is not a directory). */
  names(rel: string): string[] {
    const node = this.node(rel);
    return node?.type === S_IFDIR ? this.overlay.readdir(node).map((d) => d.name) : [];
  }

  /** The user-visible xattrs of a node, in byte order of their names. */
  xattrs(node: OverlayNode): Array<[string, Buffer]> {
    return sortedXattrs(this.overlay.listxattr(node), (name) => this.overlay.getxattr(node, name));
  }

  close(): void {
    this.overlay.close();
  }
}
