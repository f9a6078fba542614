// ovlfs: the Linux overlay filesystem as a library. `openOverlay(options).fs` is a drop-in node:fs
// over the merged view.
import { createOverlayFs, type OverlayFs } from './fs/index.js';
import { Overlay } from './overlay/overlay.js';
import type { OverlayOptions } from './overlay/options.js';

export class OverlayHandle extends Overlay {
  private facade: OverlayFs | undefined;
  /** A node:fs-compatible object over absolute paths inside the overlay ('/a/b'). */
  get fs(): OverlayFs {
    return (this.facade ??= createOverlayFs(this));
  }
}

/** Opens an overlay: `openOverlay({ lowerdir, upperdir, workdir })` or `openOverlay('lowerdir=/a:/b,upperdir=/u,workdir=/w')`. */
export function openOverlay(options: OverlayOptions | string): OverlayHandle {
  return new OverlayHandle(options);
}

export { Overlay } from './overlay/overlay.js';
export type { OverlayOptions } from './overlay/options.js';
export { parseMountOptions } from './overlay/options.js';
export { DirLayer } from './layer/dir-layer.js';
export { MemoryLayer } from './layer/memory-layer.js';
export type { Layer, WritableLayer, LayerEntry, RealFile } from './layer/types.js';
export type { OverlayFs } from './fs/index.js';
export { fsError } from './errors.js';
