// The overlay.redirect xattr, checked as the kernel checks it (ovl_get_redirect_xattr in
// fs/overlayfs/util.c, and the name checks its lookup applies to each component).
import type { InvalidXattr } from './types.js';

/** NAME_MAX: no component the kernel's lookup takes is longer. */
const NAME_MAX = 255;
/** PATH_MAX: the kernel refuses longer paths (ENAMETOOLONG). */
const PATH_MAX = 4096;

export interface DecodedRedirect {
  redirect?: string;
  invalid?: InvalidXattr;
}

/**
 * Decodes a redirect value. Valid: '/a/b' (absolute from the layer root, non-empty components) or
 * 'b' (a sibling name, no '/'). The kernel refuses an empty value, an empty component and a
 * relative value with a '/' as an invalid redirect (EINVAL); '.' and '..' are names no lookup
 * may take, and an over-long value or component is ENAMETOOLONG.
 */
export function decodeRedirect(value: Buffer): DecodedRedirect {
  const text = value.toString('utf8');
  const bad = (code: string): DecodedRedirect => ({ invalid: { code, what: `invalid redirect (${text})` } });
  if (text.length === 0 || text.includes('\0')) return bad('EINVAL');
  if (value.length >= PATH_MAX) return bad('ENAMETOOLONG');
  if (text.startsWith('/')) {
    const parts = text.slice(1).split('/');
    for (const part of parts) {
      if (part === '' || part === '.' || part === '..') return bad('EINVAL');
      if (Buffer.byteLength(part) > NAME_MAX) return bad('ENAMETOOLONG');
    }
  } else {
    if (text.includes('/') || text === '.' || text === '..') return bad('EINVAL');
    if (value.length > NAME_MAX) return bad('ENAMETOOLONG');
  }
  return { redirect: text };
}
