// The overlay.redirect xattr, checked as the kernel checks it: ovl_get_redirect_xattr (util.c)
// refuses an empty value, an empty component of an absolute value and a '/' in a relative one
// (EINVAL, "invalid redirect"); the lookup that then follows it (ovl_lookup_single) refuses the
// names '.' and '..' (EACCES, from lookup_one_len) and treats a component longer than NAME_MAX as
// not found (ENAMETOOLONG is a miss there, not an error). Checked against Linux 6.18.
import type { InvalidXattr } from './types.js';

export interface DecodedRedirect {
  redirect?: string;
  invalid?: InvalidXattr;
}

/**
 * Decodes a redirect value. Valid: '/a/b' (absolute from the layer root: non-empty components,
 * none '.' or '..') or 'b' (a sibling: no '/', not '.' or '..'). An over-long value or component
 * is valid and simply finds nothing, as in the kernel.
 */
export function decodeRedirect(value: Buffer): DecodedRedirect {
  const text = value.toString('utf8');
  const bad = (code: string): DecodedRedirect => ({ invalid: { code, what: `invalid redirect (${JSON.stringify(text)})` } });
  // The kernel reads the value as a C string; a NUL inside is nothing we could have written.
  if (text.length === 0 || text.includes('\0')) return bad('EINVAL');
  const absolute = text.startsWith('/');
  const parts = absolute ? text.slice(1).split('/') : [text];
  if (!absolute && text.includes('/')) return bad('EINVAL');
  if (parts.some((part) => part === '')) return bad('EINVAL');
  if (parts.some((part) => part === '.' || part === '..')) return bad('EACCES');
  return { redirect: text };
}
