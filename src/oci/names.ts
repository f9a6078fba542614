// The names OCI layers and the overlay give special meaning to.

/** `.wh.NAME` hides NAME in the layers below. */
export const WHITEOUT_PREFIX = '.wh.';
/** `DIR/.wh..wh..opq` makes DIR opaque: nothing below it shows through. */
export const OPAQUE_MARKER = '.wh..wh..opq';

/** The overlay's own xattrs, under either prefix: its on-disk format, never content of a layer tar. */
export function isOverlayPrivateXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** Byte order of UTF-8 paths (what `sort` in the C locale and Go's string order give). */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
