// access(2) on mode bits, or on the access ACL where a file has one: the one permission check the fs
// facade, the FUSE ops and the core share.
import { constants } from 'node:fs';
import { S_IFDIR, S_IFMT } from '../layer/types.js';
import { aclPermits, decodeAcl } from './acl.js';

const { R_OK, W_OK, X_OK } = constants;

/** Who asks: a process (the library) or a FUSE request's sender. */
export interface Caller {
  uid: number;
  gid: number;
  groups?: readonly number[];
}

export function processCaller(): Caller {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] };
}

/**
 * May `caller` access a file with these attributes for `mask` (R_OK|W_OK|X_OK)? `acl` is the file's
 * system.posix_acl_access value, if it has one: it decides instead of the group and other bits.
 */
export function permits(stat: { mode: number; uid: number; gid: number }, caller: Caller, mask: number, acl?: Uint8Array): boolean {
  if (caller.uid === 0) {
    // root may do anything but execute a file that nobody may execute.
    return (mask & X_OK) === 0 || (stat.mode & S_IFMT) === S_IFDIR || (stat.mode & 0o111) !== 0;
  }
  const wanted = ((mask & R_OK) ? 4 : 0) | ((mask & W_OK) ? 2 : 0) | ((mask & X_OK) ? 1 : 0);
  const entries = acl === undefined ? undefined : decodeAcl(acl);
  if (entries !== undefined && entries.length > 0) return aclPermits(entries, stat, caller, wanted);
  const inGroup = stat.gid === caller.gid || (caller.groups ?? []).includes(stat.gid);
  const shift = stat.uid === caller.uid ? 6 : inGroup ? 3 : 0;
  const granted = (stat.mode >> shift) & 7;
  return (granted & wanted) === wanted;
}
