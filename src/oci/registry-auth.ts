// Registry authentication: the WWW-Authenticate challenge of a 401 says how. Basic sends the
// credentials with every request; Bearer trades them (or nothing, for anonymous pulls) at the
// realm for a token scoped to the repositories and actions asked for.
import { fsError } from '../errors.js';

export interface Credentials {
  username: string;
  password: string;
}

/** Parses `--creds USER[:PASS]`. */
export function parseCredentials(creds: string): Credentials {
  const colon = creds.indexOf(':');
  if (colon <= 0) throw fsError('EINVAL', 'creds', undefined, undefined, '--creds takes USER:PASSWORD');
  return { username: creds.slice(0, colon), password: creds.slice(colon + 1) };
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="…",service="…",scope="…"` → { scheme: 'bearer', params }. */
export function parseChallenge(header: string): Challenge {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const m of (space < 0 ? '' : header.slice(space + 1)).matchAll(re)) params[m[1]!.toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme, params };
}

export function basicHeader(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

/** Asks the token service of a Bearer challenge for a token covering `scopes`. */
export async function fetchToken(challenge: Challenge, scopes: string[], creds: Credentials | undefined, registry: string): Promise<string> {
  const realm = challenge.params.realm;
  if (realm === undefined) throw fsError('EACCES', 'auth', registry, undefined, 'the registry asks for a token but names no realm');
  const url = new URL(realm);
  if (challenge.params.service !== undefined) url.searchParams.set('service', challenge.params.service);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  const headers: Record<string, string> = {};
  if (creds !== undefined) headers.authorization = basicHeader(creds);
  const res = await fetch(url, { headers });
  if (!res.ok) throw fsError('EACCES', 'auth', registry, undefined, `the token service refused (${res.status} ${res.statusText})`);
  const body = (await res.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  if (typeof token !== 'string' || token === '') throw fsError('EACCES', 'auth', registry, undefined, 'the token service gave no token');
  return token;
}
