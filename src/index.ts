// ovlfs: the Linux overlay filesystem as a library. `openOverlay(options).fs` is a drop-in node:fs
// over the merged view.
import { createOverlayFs, type OverlayFs } from './fs/index.js';
import { Overlay, type OverlayOptions } from './overlay/index.js';

/** An overlay with its node:fs face. */
export class OverlayWithFs extends Overlay {
  private facade: OverlayFs | undefined;
  /** A node:fs-compatible object over absolute paths inside the overlay ('/a/b'). */
  get fs(): OverlayFs {
    return (this.facade ??= createOverlayFs(this));
  }
}

/** Opens an overlay: `openOverlay({ lowerdir, upperdir, workdir })` or `openOverlay('lowerdir=/a:/b,upperdir=/u,workdir=/w')`. */
export function openOverlay(options: OverlayOptions | string): OverlayWithFs {
  return new OverlayWithFs(options);
}

export { Overlay, parseMountOptions } from './overlay/index.js';
export type { OverlayOptions, OverlayNode, OpenFile } from './overlay/index.js';
export { DirLayer } from './layer/dir-layer.js';
export { MemoryLayer } from './layer/memory-layer.js';
export type { Layer, WritableLayer, LayerEntry, RealFile } from './layer/types.js';
export type { OverlayFs } from './fs/index.js';
export { fsError } from './errors.js';
