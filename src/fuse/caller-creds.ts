// What a FUSE request's header does not say about its caller: the supplementary groups and the
// capabilities, read from /proc/<pid>/status (the header's pid is the calling thread, as this process's
// pid namespace numbers it). Needed where the kernel decides by the caller's full credentials and leaves
// the deciding to the file system: whether setgid survives a change (in_group_or_capable), and who may
// shut the file system down (CAP_SYS_ADMIN).
import { readFileSync } from 'node:fs';

import type { FuseCaller } from './bridge/raw-fs.js';

/** CAP_FSETID's bit in the capability sets. */
const CAP_FSETID = 4n;
/** CAP_SYS_ADMIN's bit. */
const CAP_SYS_ADMIN = 21n;

interface Creds {
  groups: number[];
  capEff: bigint;
}

/** The caller's supplementary groups and effective capabilities; undefined when they cannot be read (gone, or in another pid namespace). */
function credsOf(pid: number): Creds | undefined {
  if (!(pid > 0)) return undefined;
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const groups = /^Groups:[ \t]*([^\n]*)$/m.exec(status);
  const capEff = /^CapEff:[ \t]*([0-9a-f]+)$/m.exec(status);
  if (groups === null || capEff === null) return undefined;
  return { groups: groups[1]!.trim().split(/\s+/).filter((g) => g !== '').map(Number), capEff: BigInt(`0x${capEff[1]}`) };
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

/** The kernel's capable(CAP_SYS_ADMIN) for the caller of a request; false where its credentials cannot be read. */
export function hasSysAdmin(caller: FuseCaller): boolean {
  const creds = credsOf(caller.pid);
  return creds !== undefined && ((creds.capEff >> CAP_SYS_ADMIN) & 1n) === 1n;
}
