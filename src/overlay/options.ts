// Overlay options, named as mount(8)'s overlay options are, and their validation. Each mistake gets
// the errno the kernel gives and a message that says what to fix.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorCode, fsError } from '../errors.js';
import type { Layer, WritableLayer } from '../layer/types.js';
import { DEFAULT_NODE_CACHE } from './context.js';

export type OnOff = boolean | 'on' | 'off';

export interface OverlayOptions {
  /** Lower layers, top-most first (kernel order). A string may hold several, separated by ':' ('\:' escapes); an array holds one each. */
  lowerdir: string | Layer | Array<string | Layer>;
  upperdir?: string | WritableLayer;
  workdir?: string;
  /** Store overlay xattrs under user.overlay. and whiteouts as xattrs: works without privilege. */
  userxattr?: OnOff;
  /** 'on' lets merged directories be renamed (via the redirect xattr); 'off' gives EXDEV, as the kernel does. */
  redirect_dir?: OnOff | 'follow' | 'nofollow';
  /** chmod/chown/utimes copy up metadata only; the data follows on the first write. */
  metacopy?: OnOff;
  /** Only 'off' is supported: inode index for hard links across copy-up is not implemented. */
  index?: OnOff;
  xino?: OnOff | 'auto';
  /** Skip syncs to the upper layer. */
  volatile?: boolean;
  /** How many looked-up nodes nobody refers to stay cached (least recently used go first); default 10000. */
  node_cache?: number | string;
  /**
   * When reads update an upper file's atime, as the mount's atime options say: 'relatime' (the
   * default), 'strictatime' or 'noatime'. Lower files are never touched.
   */
  atime?: 'relatime' | 'strictatime' | 'noatime';
  /** Reads of directories update no atime. */
  nodiratime?: boolean;
}

export interface ParsedOptions {
  lower: Array<string | Layer>;
  upper: string | WritableLayer | undefined;
  workdir: string | undefined;
  userxattr: boolean;
  redirectDir: 'on' | 'follow' | 'off' | 'nofollow';
  metacopy: boolean;
  xino: 'on' | 'off' | 'auto';
  volatile: boolean;
  nodeCache: number;
  atime: 'relatime' | 'strictatime' | 'noatime';
  nodiratime: boolean;
}

/**
 * Splits "a:b\:c" into ["a", "b:c"], honouring the kernel's backslash escapes. With `keepEscapes` the
 * pieces keep their backslashes, for a value that is split again later ("lowerdir=a\:b:c" inside an
 * -o list). The one splitter for option strings: the CLI and the library both use it.
 */
export function splitEscaped(value: string, separator: string, keepEscapes = false): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && i + 1 < value.length) {
      current += keepEscapes ? c + value[++i] : value[++i];
    } else if (c === separator) {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current);
  return out;
}

/** Removes the backslash escapes of one option value. */
export function unescapeOption(value: string): string {
  return splitEscaped(value, '')[0]!;
}

let userNamespace: boolean | undefined;

/** Whether a uid_map's text is the initial namespace's identity map, "0 0 4294967295". */
export function isIdentityMap(uidMap: string): boolean {
  const fields = uidMap.trim().split(/\s+/);
  return fields.length === 3 && fields[0] === '0' && fields[1] === '0' && fields[2] === '4294967295';
}

/**
 * Whether this process runs in a user namespace other than the initial one: its uid_map is not the
 * identity. There uid 0 holds no capability over the host, so trusted.* xattrs are out of reach (EPERM)
 * and the overlay keeps its xattrs under user.overlay.*, as the kernel's overlay does in a user namespace.
 */
export function inUserNamespace(): boolean {
  if (userNamespace === undefined) {
    try {
      userNamespace = !isIdentityMap(fs.readFileSync('/proc/self/uid_map', 'utf8'));
    } catch {
      userNamespace = false; // no /proc: assume the initial namespace
    }
  }
  return userNamespace;
}

function invalid(detail: string): Error {
  return fsError('EINVAL', 'mount', undefined, undefined, detail);
}

/** Parses 'lowerdir=/a:/b,upperdir=/u,workdir=/w,redirect_dir=on' as mount(8) -o does. */
export function parseMountOptions(text: string): OverlayOptions {
  const options: Record<string, string | boolean> = {};
  for (const item of splitEscaped(text, ',', true)) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    options[key] = eq < 0 ? true : item.slice(eq + 1);
  }
  const lowerdir = options.lowerdir;
  if (typeof lowerdir !== 'string' || lowerdir === '') throw invalid('missing lowerdir= option (lowerdir=/lower1:/lower2)');
  // ':' separates layers only where it is not escaped, so the lowerdir value is split before unescaping.
  const result: OverlayOptions = { lowerdir: splitEscaped(lowerdir, ':') };
  for (const [key, value] of Object.entries(options)) {
    switch (key) {
      case 'lowerdir': break;
      case 'upperdir': result.upperdir = unescapeOption(String(value)); break;
      case 'workdir': result.workdir = unescapeOption(String(value)); break;
      case 'userxattr': result.userxattr = true; break;
      case 'redirect_dir': result.redirect_dir = value as OverlayOptions['redirect_dir']; break;
      case 'metacopy': result.metacopy = value as OnOff; break;
      case 'index': result.index = value as OnOff; break;
      case 'xino': result.xino = value as OverlayOptions['xino']; break;
      case 'volatile': result.volatile = true; break;
      case 'node_cache': result.node_cache = String(value); break;
      case 'relatime': case 'noatime': case 'strictatime': result.atime = key; break;
      case 'nodiratime': result.nodiratime = true; break;
      // Generic mount options that mean nothing to the library.
      case 'ro': break; // see below the loop
      case 'rw': case 'dev': case 'nodev': case 'suid': case 'nosuid': case 'exec': case 'noexec':
      case 'default_permissions': case 'allow_other':
        break;
      default:
        throw invalid(`unknown overlay option '${key}'`);
    }
  }
  // A read-only mount updates no atimes, whatever its atime option (touch_atime skips read-only
  // mounts); refusing writes is the mount's business.
  if (options.ro !== undefined) result.atime = 'noatime';
  return result;
}

function onOff(value: OnOff | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === true || value === 'on') return true;
  if (value === false || value === 'off') return false;
  throw invalid(`${name}=${String(value)}: expected on or off`);
}

export function normalizeOptions(options: OverlayOptions | string): ParsedOptions {
  const o = typeof options === 'string' ? parseMountOptions(options) : options;
  // A single string holds one or more layers split on ':'; an array holds one layer per item, so a
  // path with a ':' in it (unescaped by parseMountOptions) stays one layer.
  const lower: Array<string | Layer> = Array.isArray(o.lowerdir)
    ? o.lowerdir.filter((item) => item !== '')
    : typeof o.lowerdir === 'string' ? splitEscaped(o.lowerdir, ':').filter((s) => s !== '') : [o.lowerdir];
  if (lower.length === 0) throw invalid('at least one lowerdir is required');
  if (lower.length > 500) throw invalid('too many lower layers (the kernel allows 500)');
  if (o.upperdir !== undefined && typeof o.upperdir === 'string' && o.workdir === undefined) {
    throw invalid('upperdir needs a workdir on the same filesystem (workdir=...)');
  }
  if (o.upperdir === undefined && o.workdir !== undefined) throw invalid('workdir given without upperdir');
  if (onOff(o.index, 'index', false)) throw invalid('index=on is not supported; use index=off');
  // An explicit userxattr takes the kernel's rules: redirects are not followed and metacopy is off
  // unless asked for, and asking for them is a conflict (the kernel's ovl_fs_params_verify).
  const explicitUserxattr = o.userxattr !== undefined && onOff(o.userxattr, 'userxattr', false);
  const redirect = o.redirect_dir === undefined ? (explicitUserxattr ? 'nofollow' : 'follow')
    : o.redirect_dir === true ? 'on' : o.redirect_dir === false ? 'off' : o.redirect_dir;
  if (!['on', 'off', 'follow', 'nofollow'].includes(redirect)) throw invalid(`redirect_dir=${redirect}: expected on, follow, off or nofollow`);
  if (explicitUserxattr && redirect !== 'nofollow') throw invalid(`conflicting options: userxattr,redirect_dir=${redirect}`);
  if (explicitUserxattr && onOff(o.metacopy, 'metacopy', false)) throw invalid('conflicting options: userxattr,metacopy=on');
  const xino = o.xino === undefined ? 'auto' : o.xino === true ? 'on' : o.xino === false ? 'off' : o.xino;
  if (!['on', 'off', 'auto'].includes(xino)) throw invalid(`xino=${xino}: expected on, off or auto`);
  const metacopy = onOff(o.metacopy, 'metacopy', false);
  // The kernel refuses metacopy when it may not follow the redirects metacopy files rely on.
  if (metacopy && (redirect === 'off' || redirect === 'nofollow')) {
    throw invalid('metacopy=on needs redirect_dir=on or follow');
  }
  // Root in a user namespace is not privileged over the host's files: trusted.* xattrs give EPERM there.
  const privileged = typeof process.getuid === 'function' && process.getuid() === 0 && !inUserNamespace();
  return {
    lower,
    upper: o.upperdir,
    workdir: o.workdir,
    // Without privilege trusted.* xattrs are out of reach; user.overlay.* is the kernel's answer (its
    // default in a user namespace too). ovlfs's own origin xattr takes the same prefix.
    userxattr: o.userxattr === undefined ? !privileged : onOff(o.userxattr, 'userxattr', false),
    redirectDir: redirect as ParsedOptions['redirectDir'],
    metacopy,
    xino: xino as ParsedOptions['xino'],
    volatile: o.volatile === true,
    nodeCache: nodeCacheOf(o.node_cache),
    atime: atimeOf(o.atime),
    nodiratime: o.nodiratime === true,
  };
}

function atimeOf(value: string | undefined): ParsedOptions['atime'] {
  if (value === undefined) return 'relatime';
  if (value === 'relatime' || value === 'strictatime' || value === 'noatime') return value;
  throw invalid(`atime=${value}: expected relatime, strictatime or noatime`);
}

/** node_cache=N: a whole number of nodes, 0 or more. */
function nodeCacheOf(value: number | string | undefined): number {
  if (value === undefined) return DEFAULT_NODE_CACHE;
  const n = typeof value === 'number' ? value : /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`node_cache=${String(value)}: expected a whole number of nodes (0 or more)`);
  return n;
}

/** Checks a host directory the way the kernel does at mount time; returns its real path. */
export function checkDirectory(dir: string, role: string): string {
  const absolute = path.resolve(dir);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(absolute);
  } catch (err) {
    const code = errorCode(err) ?? 'ENOENT';
    throw fsError(code, 'mount', dir, undefined, `${role} '${dir}' does not exist or cannot be reached`);
  }
  if (!stat.isDirectory()) throw fsError('ENOTDIR', 'mount', dir, undefined, `${role} '${dir}' is not a directory`);
  return fs.realpathSync(absolute);
}

/** Is `inner` the same as or inside `outer`? */
export function contains(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : outer + '/');
}
