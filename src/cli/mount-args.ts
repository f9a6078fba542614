// The mount command lines ovlfs answers, parsed with util.parseArgs into one MountRequest:
//   ovlfs mount -o OPTS MNT                strict: for people; an unknown option is an error
//   ovlfs [-f] [-d] -o OPTS MNT            fuse-overlayfs's form, for containers/storage's mount_program
//   ovlfs [mount-helper] SOURCE MNT -o …   mount(8)'s helper form (mount -t fuse.ovlfs)
// The two forms built for tools warn about an option they do not know and go on, as fuse-overlayfs does
// ("unknown argument ignored"): containers/storage passes storage.conf's mountopt verbatim.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { parseMountOptions, splitEscaped, type OverlayOptions } from '../overlay/options.js';
import { parseIdMapping, type IdMap } from '../fuse/idmap.js';

export type Dialect = 'mount' | 'fuse-overlayfs' | 'helper';

export class UsageError extends Error {}

/** How the mount itself is made (the FUSE mount's options, not the overlay's). */
export interface MountFlags {
  readOnly: boolean;
  /** Generic options handed to mount(2)/fusermount3, e.g. 'noatime', 'nodev'. */
  extra: string[];
}

export interface MountRequest {
  dialect: Dialect;
  /**
   * `-o remount`: change the flags of the mount at `mountpoint` (mount(2) with MS_REMOUNT), start no
   * daemon. The overlay's options are ignored then, as the kernel overlay ignores them on a remount.
   */
  remount: boolean;
  mountpoint: string;
  source: string;
  /** The overlay's options with absolute, unescaped layer paths (structured-clone safe). */
  overlay: OverlayOptions;
  flags: MountFlags;
  /** uid/gid mappings and squashing between the layers and the mount (fuse-overlayfs's options). */
  idmap: IdMap | undefined;
  /** fuse-overlayfs's xattr_permissions: 0 off; 1 security.*, 2 user.containers.* override_stat xattrs. */
  xattrPermissions: 0 | 1 | 2;
  foreground: boolean;
  debug: boolean;
  log: string | undefined;
  pidfile: string | undefined;
  /** Options that were ignored, one line each, for stderr. */
  warnings: string[];
}

/** Options that make the overlay. */
const OVERLAY_KEYS = new Set(['lowerdir', 'upperdir', 'workdir', 'redirect_dir', 'metacopy', 'index', 'xino', 'userxattr', 'volatile']);
/** Generic mount options handed on to the mount. */
const PASSED_KEYS = new Set(['noatime', 'relatime', 'strictatime', 'nodiratime', 'lazytime', 'nodev', 'nosuid', 'noexec', 'sync', 'dirsync']);
/** Generic options that mean nothing here: the defaults, mount(8)'s bookkeeping, what is always on. */
const IGNORED_KEYS = new Set(['rw', 'dev', 'suid', 'exec', 'atime', 'diratime', 'defaults', 'auto', 'noauto', 'user', 'nouser', 'users', 'nofail', '_netdev', 'async', 'allow_other', 'default_permissions', 'fsname', 'subtype']);
/** The FUSE mount's own options, which mount(8) reads back from the mount table and passes on a remount. */
const FUSE_DATA_KEYS = new Set(['fd', 'rootmode', 'user_id', 'group_id', 'max_read', 'blksize']);

function integer(key: string, value: string | undefined, min: number, max: number): number {
  const n = value !== undefined && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`invalid value for ${key}: '${value ?? ''}' (expected a number from ${min} to ${max})`);
  return n;
}

/** Makes a layer path absolute: the daemon serves from '/', and containers/storage passes paths relative to its cwd. */
function absolute(p: string): string {
  return p === '' || p.startsWith('/') ? p : resolve(p);
}

/** Sorts one -o list into the overlay's options, the mount's flags, id mapping and warnings. */
export function sortOptions(list: string[], dialect: Dialect): Pick<MountRequest, 'remount' | 'overlay' | 'flags' | 'idmap' | 'xattrPermissions' | 'warnings'> & { debug: boolean } {
  const overlay: string[] = [];
  const flags: MountFlags = { readOnly: false, extra: [] };
  const warnings: string[] = [];
  let uidmap: string | undefined;
  let gidmap: string | undefined;
  let squashUid: number | undefined;
  let squashGid: number | undefined;
  let xattrPermissions: 0 | 1 | 2 = 0;
  let debug = false;
  const remount = list.includes('remount');
  const lenient = dialect !== 'mount';
  for (const opt of list) {
    if (opt === '') continue; // containers/storage always leaves one empty (",,volatile")
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? undefined : opt.slice(eq + 1);
    if (OVERLAY_KEYS.has(key)) overlay.push(opt);
    else if (key === 'fsync') {
      // fuse-overlayfs: fsync=0 skips every fsync to the upper layer, which is what volatile means.
      if (integer(key, value, 0, 1) === 0) overlay.push('volatile');
    } else if (key === 'uidmapping') uidmap = value ?? '';
    else if (key === 'gidmapping') gidmap = value ?? '';
    else if (key === 'squash_to_root') {
      squashUid ??= 0;
      squashGid ??= 0;
    } else if (key === 'squash_to_uid') squashUid = integer(key, value, 0, 0xfffffffe);
    else if (key === 'squash_to_gid') squashGid = integer(key, value, 0, 0xfffffffe);
    else if (key === 'xattr_permissions') xattrPermissions = integer(key, value, 0, 2) as 0 | 1 | 2;
    else if (key === 'ro') {
      flags.readOnly = true;
      overlay.push('ro');
    }
    else if (key === 'debug') debug = true;
    else if (PASSED_KEYS.has(key)) {
      flags.extra.push(opt);
      // FUSE inodes are S_NOATIME in the kernel: the overlay itself applies the atime rule.
      if (key === 'noatime' || key === 'relatime' || key === 'strictatime' || key === 'nodiratime') overlay.push(opt);
    }
    else if (IGNORED_KEYS.has(key) || key.startsWith('x-') || key === 'remount') continue;
    else if (remount && FUSE_DATA_KEYS.has(key)) continue;
    else if (lenient) warnings.push(`unknown argument ignored: ${opt}`);
    else throw new UsageError(`unknown mount option '${opt}' (see ovlfs mount --help)`);
  }
  if (remount) return { remount, overlay: { lowerdir: [] }, flags, idmap: undefined, xattrPermissions, warnings, debug };
  if (!overlay.some((o) => o.startsWith('lowerdir='))) throw new UsageError('missing -o lowerdir=… (the lower layers)');
  let parsed: OverlayOptions;
  try {
    parsed = parseMountOptions(overlay.join(','));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message.replace(/^EINVAL: [^,]*, /, '') : String(e));
  }
  const lower = (Array.isArray(parsed.lowerdir) ? parsed.lowerdir : [parsed.lowerdir]) as string[];
  parsed.lowerdir = lower.map(absolute);
  if (typeof parsed.upperdir === 'string') parsed.upperdir = absolute(parsed.upperdir);
  // With no upper layer nothing can be written: the kernel overlay's superblock is read-only then, and so is
  // this mount's, so that statvfs, findmnt and access(W_OK) say so rather than each write failing on its own.
  else flags.readOnly = true;
  if (parsed.workdir !== undefined) parsed.workdir = absolute(parsed.workdir);
  let idmap: IdMap | undefined;
  if (uidmap !== undefined || gidmap !== undefined || squashUid !== undefined || squashGid !== undefined) {
    try {
      idmap = {
        uid: uidmap === undefined ? [] : parseIdMapping(uidmap, 'uidmapping'),
        gid: gidmap === undefined ? [] : parseIdMapping(gidmap, 'gidmapping'),
        squashUid,
        squashGid,
      };
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
  }
  return { remount, overlay: parsed, flags, idmap, xattrPermissions, warnings, debug };
}

const FLAGS = {
  o: { type: 'string', short: 'o', multiple: true },
  foreground: { type: 'boolean', short: 'f' },
  debug: { type: 'boolean', short: 'd' },
  log: { type: 'string' },
  pidfile: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** mount(8)'s flags for a helper: no mtab (-n), sloppy (-s), verbose (-v), the type (-t fuse.ovlfs). */
const HELPER_FLAGS = {
  ...FLAGS,
  n: { type: 'boolean', short: 'n' },
  s: { type: 'boolean', short: 's' },
  v: { type: 'boolean', short: 'v' },
  t: { type: 'string', short: 't' },
} as const;

/** Parses the arguments after the command name; `undefined` means --help was asked for. */
export function parseMountArgs(args: string[], dialect: Dialect): MountRequest | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args, options: dialect === 'helper' ? HELPER_FLAGS : FLAGS, allowPositionals: true, strict: true });
  } catch (e) {
    const message = e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e);
    throw new UsageError(`${message} (see ovlfs ${dialect === 'mount' ? 'mount ' : ''}--help)`);
  }
  const { values, positionals } = parsed;
  if (values.help) return undefined;
  const want = dialect === 'helper' ? 2 : 1;
  if (positionals.length !== want) {
    throw new UsageError(dialect === 'helper' ? 'expected SOURCE MOUNTPOINT -o OPTIONS' : 'expected exactly one MOUNTPOINT after the options');
  }
  const opts = (values.o ?? []).flatMap((o) => splitEscaped(o, ',', true));
  if (opts.length === 0) throw new UsageError('missing -o lowerdir=…,upperdir=…,workdir=…');
  const sorted = sortOptions(opts, dialect);
  const debug = values.debug === true || sorted.debug;
  const log = values.log === undefined ? undefined : resolve(values.log);
  return {
    dialect,
    remount: sorted.remount,
    mountpoint: resolve(positionals[want - 1]!),
    source: dialect === 'helper' ? positionals[0]! : 'ovlfs',
    overlay: sorted.overlay,
    flags: sorted.flags,
    idmap: sorted.idmap,
    xattrPermissions: sorted.xattrPermissions,
    // -d logs every request to stderr, so it stays attached unless a log file takes the lines.
    foreground: values.foreground === true || (debug && log === undefined),
    debug,
    log,
    pidfile: values.pidfile === undefined ? undefined : resolve(values.pidfile),
    warnings: sorted.warnings,
  };
}
