// POSIX ACLs as Linux stores them in system.posix_acl_access and system.posix_acl_default (the
// kernel's posix_acl.c): decoding, the permission check, and what a new entry inherits from its
// parent's default ACL. Layers keep the xattrs; the upper filesystem keeps the mode and the access
// ACL in step on chmod and setfacl, so the core only needs these where it builds entries aside.
import { errorCode } from '../errors.js';
import type { WritableLayer } from '../layer/types.js';

export const POSIX_ACL_ACCESS = 'system.posix_acl_access';
export const POSIX_ACL_DEFAULT = 'system.posix_acl_default';

/** An ACL xattr read by `read`, or undefined where there is none or the filesystem keeps no ACLs (noacl). */
export function readAcl(read: () => Buffer | undefined): Buffer | undefined {
  try {
    return read();
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return undefined;
    throw err;
  }
}

const VERSION = 2;
const HEADER = 4;
const ENTRY = 8;
export const ACL_USER_OBJ = 0x01;
export const ACL_USER = 0x02;
export const ACL_GROUP_OBJ = 0x04;
export const ACL_GROUP = 0x08;
export const ACL_MASK = 0x10;
export const ACL_OTHER = 0x20;

export interface AclEntry {
  tag: number;
  /** rwx as 4|2|1. */
  perm: number;
  /** The uid or gid of ACL_USER and ACL_GROUP entries. */
  id: number;
}

/** The entries of an ACL xattr, or undefined when the value is not one (the kernel would refuse it: EINVAL). */
export function decodeAcl(value: Uint8Array): AclEntry[] | undefined {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (buf.length < HEADER || (buf.length - HEADER) % ENTRY !== 0 || buf.readUInt32LE(0) !== VERSION) return undefined;
  const entries: AclEntry[] = [];
  for (let off = HEADER; off < buf.length; off += ENTRY) {
    entries.push({ tag: buf.readUInt16LE(off), perm: buf.readUInt16LE(off + 2) & 7, id: buf.readUInt32LE(off + 4) });
  }
  return entries;
}

export function encodeAcl(entries: readonly AclEntry[]): Buffer {
  const buf = Buffer.alloc(HEADER + ENTRY * entries.length);
  buf.writeUInt32LE(VERSION, 0);
  entries.forEach((e, i) => {
    const off = HEADER + ENTRY * i;
    buf.writeUInt16LE(e.tag, off);
    buf.writeUInt16LE(e.perm, off + 2);
    // The owner, owning group, mask and other entries carry ACL_UNDEFINED_ID.
    buf.writeUInt32LE(e.tag === ACL_USER || e.tag === ACL_GROUP ? e.id : 0xffffffff, off + 4);
  });
  return buf;
}

/**
 * The permission check of an access ACL (posix_acl_permission): the owner entry for the owner, else
 * a named user entry, else the first owning-group or named-group entry that grants, each but the
 * owner's limited by the mask; else other. `wanted` is rwx as 4|2|1.
 */
export function aclPermits(
  entries: readonly AclEntry[], owner: { uid: number; gid: number }, caller: { uid: number; gid: number; groups?: readonly number[] }, wanted: number,
): boolean {
  const mask = entries.find((e) => e.tag === ACL_MASK)?.perm ?? 7;
  const inGroup = (gid: number): boolean => gid === caller.gid || (caller.groups ?? []).includes(gid);
  const grants = (perm: number): boolean => (perm & wanted) === wanted;
  for (const e of entries) {
    if (e.tag === ACL_USER_OBJ && owner.uid === caller.uid) return grants(e.perm);
    if (e.tag === ACL_USER && e.id === caller.uid && owner.uid !== caller.uid) return grants(e.perm & mask);
  }
  // The first group entry that grants on its own decides, through the mask.
  let found = false;
  for (const e of entries) {
    const member = (e.tag === ACL_GROUP_OBJ && inGroup(owner.gid)) || (e.tag === ACL_GROUP && inGroup(e.id));
    if (!member) continue;
    if (grants(e.perm)) return grants(e.perm & mask);
    found = true;
  }
  if (found) return false;
  return grants(entries.find((e) => e.tag === ACL_OTHER)?.perm ?? 0);
}

/** What a new entry inherits from its parent's default ACL (posix_acl_create): its mode and ACLs. */
export interface InheritedAcl {
  mode: number;
  /** The access ACL, unless the inherited one says no more than the mode. */
  access: Buffer | undefined;
  /** Directories inherit the default ACL itself. */
  default: Buffer | undefined;
}

export function inheritAcl(parentDefault: Uint8Array, mode: number, isDir: boolean): InheritedAcl | undefined {
  const entries = decodeAcl(parentDefault);
  if (entries === undefined || entries.length === 0) return undefined;
  const access = entries.map((e) => ({ ...e }));
  // posix_acl_create_masq: each class's permission is what both the mode and the ACL grant.
  let extended = false;
  let groupObj: AclEntry | undefined;
  let maskEntry: AclEntry | undefined;
  let m = mode & 0o7777;
  for (const e of access) {
    if (e.tag === ACL_USER_OBJ) {
      e.perm &= (m >> 6) & 7;
      m &= (e.perm << 6) | ~0o700;
    } else if (e.tag === ACL_OTHER) {
      e.perm &= m & 7;
      m &= e.perm | ~0o007;
    } else if (e.tag === ACL_GROUP_OBJ) {
      groupObj = e;
    } else if (e.tag === ACL_MASK) {
      maskEntry = e;
      extended = true;
    } else {
      extended = true;
    }
  }
  const groupClass = maskEntry ?? groupObj;
  if (groupClass !== undefined) {
    groupClass.perm &= (m >> 3) & 7;
    m &= (groupClass.perm << 3) | ~0o070;
  }
  return { mode: m, access: extended ? encodeAcl(access) : undefined, default: isDir ? Buffer.from(parentDefault) : undefined };
}

/**
 * An entry built aside in the work area and renamed into `parentRel` gets what it would have inherited
 * there from the parent's default ACL, as the kernel's ovl_create_over_whiteout sets it: the
 * work area has no default ACL to inherit from.
 */
export function applyInheritedAcl(upper: WritableLayer, parentRel: string, rel: string, mode: number, isDir: boolean): void {
  const parentDefault = readAcl(() => upper.getxattr(parentRel, POSIX_ACL_DEFAULT));
  if (parentDefault === undefined) return;
  const inherited = inheritAcl(parentDefault, mode, isDir);
  if (inherited === undefined) return;
  upper.chmod(rel, inherited.mode);
  if (inherited.access !== undefined) upper.setxattr(rel, POSIX_ACL_ACCESS, inherited.access);
  if (inherited.default !== undefined) upper.setxattr(rel, POSIX_ACL_DEFAULT, inherited.default);
}
