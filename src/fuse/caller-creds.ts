// What a FUSE request's header does not say about its caller: the supplementary groups, the capabilities
// and the user namespace they hold in, read from /proc/<pid> (the header's pid is the calling thread, as
// this process's pid namespace numbers it). Needed where the kernel decides by the caller's full
// credentials and leaves the deciding to the file system: whether setgid survives a change
// (in_group_or_capable), and who may shut the file system down (capable(CAP_SYS_ADMIN)).
//
// A capability in /proc's CapEff holds in the caller's own user namespace. `unshare -Ur` gives any user a
// full set there, which the kernel counts only over files whose owner that namespace maps
// (capable_wrt_inode_uidgid), and never for capable(), which asks the initial namespace. So a capability
// counts here only for a caller in the daemon's own user namespace: a caller elsewhere is judged as one
// without it, which at worst drops a setgid bit the kernel would have kept.
import { readFileSync, readlinkSync } from 'node:fs';

import type { FuseCaller } from './bridge/raw-fs.js';

/** CAP_FSETID's bit in the capability sets. */
const CAP_FSETID = 4n;
/** CAP_SYS_ADMIN's bit. */
const CAP_SYS_ADMIN = 21n;

interface Creds {
  groups: number[];
  /** The effective capabilities, none where they do not hold in the daemon's user namespace. */
  capEff: bigint;
}

/** The daemon's user namespace ('user:[inode]'), and whether it is the initial one (an identity map of every id). */
let own: { userns: string; initial: boolean } | undefined;
function ownUserNs(): { userns: string; initial: boolean } {
  own ??= {
    userns: readlinkSync('/proc/self/ns/user'),
    initial: /^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'latin1')),
  };
  return own;
}

/** The caller's supplementary groups and effective capabilities; undefined when they cannot be read (gone, or in another pid namespace). */
function credsOf(pid: number): Creds | undefined {
  if (!(pid > 0)) return undefined;
  let status: string;
  let userns: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'latin1');
    userns = readlinkSync(`/proc/${pid}/ns/user`);
  } catch {
    return undefined;
  }
  const groups = /^Groups:[ \t]*([^\n]*)$/m.exec(status);
  const capEff = /^CapEff:[ \t]*([0-9a-f]+)$/m.exec(status);
  if (groups === null || capEff === null) return undefined;
  return {
    groups: groups[1]!.trim().split(/\s+/).filter((g) => g !== '').map(Number),
    capEff: userns === ownUserNs().userns ? BigInt(`0x${capEff[1]}`) : 0n,
  };
}

/**
 * The kernel's in_group_or_capable for the caller of a request and a file's group: the caller's fsgid
 * or one of its supplementary groups is `gid`, or it has CAP_FSETID. Where the caller's credentials
 * cannot be read, only the header's gid counts.
 */
export function inGroupOrCapable(caller: FuseCaller, gid: number): boolean {
  if (caller.gid === gid) return true;
  const creds = credsOf(caller.pid);
  if (creds === undefined) return false;
  return creds.groups.includes(gid) || ((creds.capEff >> CAP_FSETID) & 1n) === 1n;
}

/**
 * The kernel's capable(CAP_SYS_ADMIN) for the caller of a request: the capability in the initial user
 * namespace, so never for a daemon in another one (a rootless mount); false where it cannot be read.
 */
export function hasSysAdmin(caller: FuseCaller): boolean {
  if (!ownUserNs().initial) return false;
  const creds = credsOf(caller.pid);
  return creds !== undefined && ((creds.capEff >> CAP_SYS_ADMIN) & 1n) === 1n;
}
