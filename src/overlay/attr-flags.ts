// File attribute flags (chattr/lsattr), as the kernel's overlay keeps them (inode.c, util.c,
// copy_up.c). The immutable and append-only flags are never set on an upper file: the overlay could
// not rename a copy into place, nor set its own xattrs, on a file that has them. They live in the
// `protattr` xattr of the upper file instead ('a', 'i'), and the overlay enforces them itself, as the
// VFS enforces the flags of the overlay inode. Other flags (sync, noatime, nodump, ...) are the upper
// file's own. A lower file's flags are its real ones; a copy-up carries over the protection flags
// (into the xattr) and sync and noatime (onto the copy), and drops the rest, as the kernel does.
import * as fs from 'node:fs';
import { errorCode, fsError } from '../errors.js';
import { O_ACCMODE, S_IFDIR, S_IFREG, type Layer, type RealFile, type WritableLayer } from '../layer/types.js';
import { getFileFlags, protectionFlags, setFileFlags, shortXattrOfFd } from '../sys/fileattr.js';
import { fgetxattr, fremovexattr, fsetxattr } from '../sys/xattr.js';
import type { OverlayContext } from './context.js';
import type { OvlNode } from './node.js';
import type { Caller } from './permission.js';

/** The FS_*_FL bits of FS_IOC_GETFLAGS/FS_IOC_SETFLAGS that the overlay treats apart. */
export const FS_SYNC_FL = 0x8;
export const FS_IMMUTABLE_FL = 0x10;
export const FS_APPEND_FL = 0x20;
export const FS_NOATIME_FL = 0x80;
/** Kept in the protattr xattr, enforced by the overlay (OVL_PROT_FS_FLAGS_MASK). */
const PROTECTION = FS_IMMUTABLE_FL | FS_APPEND_FL;
/** Carried from a lower file onto its copy (OVL_COPY_FS_FLAGS_MASK). */
const COPIED = FS_SYNC_FL | FS_NOATIME_FL;

const { O_RDONLY, O_APPEND, O_TRUNC, O_NONBLOCK } = fs.constants;
/** Opens without access: any file type, no permission needed, nothing opened on a device. */
const O_PATH = 0o10000000;

/** The protection flags of each node, with the upper inode they were read from (none: the lower file's) and when. */
const known = new WeakMap<OvlNode, { upperIno: number | undefined; generation: number; flags: number }>();
/**
 * Bumped by every flag change: another name of the same file (a hard link) is another node, and it
 * reads the flags again. Changes are rare next to the checks.
 */
let generation = 0;

/** The layer's own xattr prefix (trusted.overlay. or user.overlay.); a layer without one keeps no flags. */
function prefixOf(layer: Layer): string | undefined {
  const prefix = (layer as { prefix?: unknown }).prefix;
  return typeof prefix === 'string' ? prefix : undefined;
}

/** Where the node's real file is: the upper one if there is one, else the top-most lower. */
function realOf(node: OvlNode, upper: Layer | undefined): { layer: Layer; rel: string; isUpper: boolean } | undefined {
  if (node.upper !== undefined && upper !== undefined) return { layer: upper, rel: node.upperRel(), isUpper: true };
  const lower = node.lowers[0];
  return lower === undefined ? undefined : { layer: lower.layer, rel: lower.rel, isUpper: false };
}

/** Decodes a protattr value; the kernel ignores a value with anything but 'a' and 'i' (ovl_check_protattr). */
function protattrFlags(value: Buffer | undefined): number {
  if (value === undefined || value.length === 0) return 0;
  let flags = 0;
  for (const c of value) {
    if (c === 0x61) flags |= FS_APPEND_FL;
    else if (c === 0x69) flags |= FS_IMMUTABLE_FL;
    else return 0;
  }
  return flags;
}

function protattrValue(flags: number): Buffer {
  return Buffer.from(((flags & FS_APPEND_FL) !== 0 ? 'a' : '') + ((flags & FS_IMMUTABLE_FL) !== 0 ? 'i' : ''));
}

function closeQuietly(file: RealFile): void {
  try {
    file.close();
  } catch {
    // Closed with its layer already.
  }
}

/**
 * The node's immutable and append-only flags (FS_IMMUTABLE_FL | FS_APPEND_FL): the real file's own,
 * and for an upper file those in its protattr xattr. Read once per node and upper entry, as the
 * kernel reads them once per inode (ovl_inode_init, ovl_check_protattr).
 */
export function protection(ctx: OverlayContext, node: OvlNode): number {
  const hit = known.get(node);
  // Flags belong to the inode: a rename or a fresh lookup of the same upper file keeps them; a copy-up
  // (a new upper inode) reads them again. A node whose name is gone keeps what it had: its path may
  // name another file by now.
  if (hit !== undefined && ((hit.upperIno === node.upper?.stat.ino && hit.generation === generation) || node.unlinked)) return hit.flags;
  if (node.unlinked) return 0;
  const flags = readProtection(ctx, node);
  known.set(node, { upperIno: node.upper?.stat.ino, generation, flags });
  return flags;
}

/**
 * A name the overlay has just made in the upper layer: no filesystem makes a new file immutable or
 * append-only, and the overlay's protattr xattr is only ever set on request, so there is nothing to read.
 */
export function createdUnprotected(node: OvlNode): void {
  known.set(node, { upperIno: node.upper?.stat.ino, generation, flags: 0 });
}

function readProtection(ctx: OverlayContext, node: OvlNode): number {
  const real = realOf(node, ctx.upper);
  if (real === undefined) return 0;
  const prefix = prefixOf(real.layer);
  if (prefix === undefined) return 0;
  // A read-only open is the cheaper way to the xattr (no walk through /proc); O_PATH serves the other
  // types, which must not be opened (a device, a fifo), and a file its owner may not read.
  let file: RealFile | undefined;
  if (node.type === S_IFREG || node.type === S_IFDIR) {
    try {
      file = real.layer.open(real.rel, O_RDONLY | O_NONBLOCK);
    } catch {
      // Fall back to O_PATH below.
    }
  }
  const byPath = file === undefined;
  try {
    file ??= real.layer.open(real.rel, O_PATH);
  } catch {
    return 0;
  }
  try {
    if (file.fd === undefined) return 0;
    let flags = 0;
    try {
      flags = protectionFlags(file.fd);
      if (real.isUpper) flags |= protattrFlags(byPath ? shortXattrOfFd(file.fd, prefix + 'protattr') : fgetxattr(file.fd, prefix + 'protattr'));
    } catch {
      // A filesystem without statx attributes or xattrs has no such flags to report.
    }
    return flags;
  } finally {
    closeQuietly(file);
  }
}

function refuse(syscall: string, path: string): never {
  throw fsError('EPERM', syscall, path);
}

/**
 * open(2) of an immutable file for writing or truncating, or of an append-only one without O_APPEND
 * or with O_TRUNC: EPERM, as the VFS answers (inode_permission, may_open).
 */
export function refuseProtectedOpen(ctx: OverlayContext, node: OvlNode, flags: number, syscall: string): void {
  const writes = (flags & O_ACCMODE) !== O_RDONLY;
  const truncates = (flags & O_TRUNC) !== 0;
  if (!writes && !truncates) return;
  const prot = protection(ctx, node);
  if ((prot & FS_IMMUTABLE_FL) !== 0) refuse(syscall, node.path());
  if ((prot & FS_APPEND_FL) !== 0 && (truncates || (flags & O_APPEND) === 0)) refuse(syscall, node.path());
}

/**
 * An attribute change on an immutable or append-only file (notify_change, vfs_truncate): EPERM for
 * mode, owner, times and size. `touch` (both times now, utimes(NULL)) is allowed on an append-only
 * file. `viaHandle`: ftruncate of a handle open for writing, which only append-only refuses.
 */
export function refuseProtectedChange(
  ctx: OverlayContext, node: OvlNode, attr: { mode?: number; uid?: number; gid?: number; size?: number | bigint; atimeNs?: bigint; mtimeNs?: bigint },
  syscall: string, options: { touch?: boolean; viaHandle?: boolean } = {},
): void {
  const times = attr.atimeNs !== undefined || attr.mtimeNs !== undefined;
  const meta = attr.mode !== undefined || attr.uid !== undefined || attr.gid !== undefined;
  if (!meta && !times && attr.size === undefined) return;
  const prot = protection(ctx, node);
  if (prot === 0) return;
  if (meta || (times && (options.touch !== true || (prot & FS_IMMUTABLE_FL) !== 0))) refuse(syscall, node.path());
  if (attr.size !== undefined && ((prot & FS_APPEND_FL) !== 0 || options.viaHandle !== true)) refuse(syscall, node.path());
}

/**
 * fallocate(2) on a file made immutable, or append-only for anything but a plain allocation (mode 0 or
 * KEEP_SIZE alone, `allocationOnly`), after it was opened: EPERM, as vfs_fallocate checks the overlay's inode.
 */
export function refuseProtectedAllocate(ctx: OverlayContext, node: OvlNode, allocationOnly: boolean): void {
  const prot = protection(ctx, node);
  if ((prot & FS_APPEND_FL) !== 0 && !allocationOnly) refuse('fallocate', node.path());
  if ((prot & FS_IMMUTABLE_FL) !== 0) refuse('fallocate', node.path());
}

/**
 * The destination of copy_file_range(2) or of a clone made immutable after it was opened: EPERM
 * (generic_copy_file_checks, generic_remap_file_range_prep). Writes and an append-only file pass.
 */
export function refuseImmutableTarget(ctx: OverlayContext, node: OvlNode, syscall: string): void {
  if ((protection(ctx, node) & FS_IMMUTABLE_FL) !== 0) refuse(syscall, node.path());
}

/** setxattr/removexattr on an immutable or append-only file (xattr_permission): EPERM. */
export function refuseIfProtected(ctx: OverlayContext, node: OvlNode, syscall: string): void {
  if ((protection(ctx, node) & PROTECTION) !== 0) refuse(syscall, node.path());
}

/**
 * Removing `child` from `dir` (unlink, rmdir, the source or the target of a rename): EPERM when
 * either is immutable or append-only (may_delete).
 */
export function refuseProtectedRemoval(ctx: OverlayContext, dir: OvlNode, child: OvlNode, syscall: string): void {
  if ((protection(ctx, dir) & PROTECTION) !== 0 || (protection(ctx, child) & PROTECTION) !== 0) refuse(syscall, child.path());
}

/** A new name in an immutable directory (may_create): EPERM. An append-only one takes new names. */
export function refuseProtectedCreate(ctx: OverlayContext, dir: OvlNode, syscall: string, path: string): void {
  if ((protection(ctx, dir) & FS_IMMUTABLE_FL) !== 0) refuse(syscall, path);
}

/** Opens the real file of a regular file or directory for the flag ioctls; ENOTTY for other types (the kernel's too). */
function openForFlags(layer: Layer, rel: string, node: OvlNode, syscall: string): RealFile & { fd: number } {
  if (node.type !== S_IFREG && node.type !== S_IFDIR) throw fsError('ENOTTY', syscall, node.path());
  const file = layer.open(rel, O_RDONLY | O_NONBLOCK);
  if (file.fd === undefined || prefixOf(layer) === undefined) {
    closeQuietly(file);
    throw fsError('ENOTTY', syscall, node.path());
  }
  return file as RealFile & { fd: number };
}

function withPath(err: unknown, syscall: string, path: string): never {
  throw fsError(errorCode(err) ?? 'EIO', syscall, path);
}

/** FS_IOC_GETFLAGS on the overlay (ovl_fileattr_get): the real file's flags and the node's protection flags. */
export function getFlags(ctx: OverlayContext, node: OvlNode): number {
  const real = realOf(node, ctx.upper);
  if (real === undefined) throw fsError('ENOTTY', 'ioctl', node.path());
  const file = openForFlags(real.layer, real.rel, node, 'ioctl');
  try {
    return (getFileFlags(file.fd) | protection(ctx, node)) >>> 0;
  } catch (err) {
    withPath(err, 'ioctl', node.path());
  } finally {
    closeQuietly(file);
  }
}

/**
 * FS_IOC_SETFLAGS on the overlay (ovl_fileattr_set): the node is copied up (metadata only with
 * metacopy=on), the protection flags go into the protattr xattr (removed when both are cleared), and
 * the other flags onto the upper file, whose own immutable and append-only flags are cleared. The
 * VFS's checks come first: the owner or root, and root to change a protection flag.
 */
export function setFlags(ctx: OverlayContext, node: OvlNode, flags: number, caller: Caller, owner: number, copyUp: () => void): void {
  const path = node.path();
  if (node.type !== S_IFREG && node.type !== S_IFDIR) throw fsError('ENOTTY', 'ioctl', path);
  const upper = ctx.writableUpper('ioctl', path);
  if (caller.uid !== 0 && owner !== caller.uid) refuse('ioctl', path);
  const old = getFlags(ctx, node);
  if (caller.uid !== 0 && ((old ^ flags) & PROTECTION) !== 0) refuse('ioctl', path);
  copyUp();
  const rel = node.upperRel();
  const prefix = prefixOf(upper);
  const file = openForFlags(upper, rel, node, 'ioctl');
  try {
    const prot = flags & PROTECTION;
    try {
      if (prot !== 0) fsetxattr(file.fd, prefix + 'protattr', protattrValue(prot));
      else if ((protection(ctx, node) & PROTECTION) !== 0) fremovexattr(file.fd, prefix + 'protattr');
    } catch (err) {
      const code = errorCode(err);
      // An upper filesystem without xattrs cannot keep them: the kernel refuses with EPERM.
      if (prot !== 0) throw fsError(code === 'EOPNOTSUPP' ? 'EPERM' : code ?? 'EIO', 'ioctl', path);
      if (code !== 'ENODATA' && code !== 'EOPNOTSUPP') withPath(err, 'ioctl', path);
    }
    generation++;
    try {
      setFileFlags(file.fd, flags & ~PROTECTION);
    } catch (err) {
      withPath(err, 'ioctl', path);
    }
  } finally {
    closeQuietly(file);
    generation++;
  }
}

/**
 * Copy-up (ovl_copy_fileattr): the flags of the file being copied (`from`: a lower file, or the
 * metacopy file whose data comes up) onto the copy in the work area, `temp`: the protection flags
 * into its protattr xattr, sync and noatime onto the copy itself. Before the rename into place.
 */
export function carryFlags(from: Layer, fromRel: string, fromUpper: boolean, upper: WritableLayer, temp: string, type: number): void {
  if (type !== S_IFREG && type !== S_IFDIR) return;
  const prefix = prefixOf(upper);
  if (prefix === undefined) return;
  let flags = 0;
  let source: RealFile | undefined;
  try {
    source = from.open(fromRel, O_RDONLY | O_NONBLOCK);
    if (source.fd === undefined) return;
    flags = getFileFlags(source.fd);
    if (fromUpper) flags = (flags & ~PROTECTION) | protattrFlags(shortXattrOfFd(source.fd, prefix + 'protattr'));
  } catch {
    // A filesystem without flags (ENOTTY, EINVAL) has none to carry.
    return;
  } finally {
    if (source !== undefined) closeQuietly(source);
  }
  if ((flags & (PROTECTION | COPIED)) === 0) return;
  const copy = upper.open(temp, O_RDONLY | O_NONBLOCK);
  try {
    if (copy.fd === undefined) return;
    if ((flags & PROTECTION) !== 0) {
      try {
        fsetxattr(copy.fd, prefix + 'protattr', protattrValue(flags & PROTECTION));
      } catch (err) {
        // No xattrs on the upper filesystem: the kernel copies up without them (and warns).
        if (errorCode(err) !== 'EOPNOTSUPP') throw err;
      }
    }
    if ((flags & COPIED) !== 0) {
      try {
        setFileFlags(copy.fd, (getFileFlags(copy.fd) & ~COPIED) | (flags & COPIED));
      } catch (err) {
        // An upper filesystem without flags keeps none, as with the kernel.
        const code = errorCode(err);
        if (code !== 'ENOTTY' && code !== 'EINVAL' && code !== 'EOPNOTSUPP') throw err;
      }
    }
  } finally {
    closeQuietly(copy);
  }
}
