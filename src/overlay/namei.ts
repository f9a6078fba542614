// Lookup across layers (the kernel's namei.c): whiteouts end a lookup, opaque directories stop the
// merge, redirects send the lower lookup elsewhere, and metacopy files continue to their data.
import { fsError } from '../errors.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Layer, type LayerEntry } from '../layer/types.js';
import { noteMergedDir } from './impure.js';
import { joinRel, OvlNode, type LowerRef } from './node.js';
import type { OverlayContext } from './context.js';

/** The longest name, in bytes, that a layer's filesystem holds (NAME_MAX). */
const NAME_MAX = 255;

function tooLong(name: string): boolean {
  // A UTF-16 unit is at most 3 bytes of UTF-8: short strings need no count.
  return name.length > NAME_MAX / 3 && Buffer.byteLength(name) > NAME_MAX;
}

function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

/** The child `name` of directory `parent`, from the cache or the layers; null when absent. */
export function lookupChild(ctx: OverlayContext, parent: OvlNode, name: string): OvlNode | null {
  // No layer can hold a longer name; the kernel's ovl_lookup refuses it before looking.
  if (tooLong(name)) throw fsError('ENAMETOOLONG', 'lookup', parent.childPath(name));
  let children = parent.children;
  if (children !== undefined) {
    const cached = children.get(name);
    if (cached !== undefined) {
      if (cached !== null) ctx.touch(cached);
      return cached;
    }
  } else {
    children = parent.children = new Map();
  }
  const node = lookupInLayers(ctx, parent, name);
  children.set(name, node);
  if (node === null) ctx.rememberNegative(parent, name);
  else {
    ctx.added(node);
    noteMergedDir(ctx, node);
  }
  return node;
}

/** Where to look next in the lower layers: in the parent's stack by name, or by an absolute path. */
interface Cursor {
  /** An absolute redirect (layer path) in force from layer `from` down. */
  absolute: string | undefined;
  from: number;
  /** The name to look for in the parent's directories (a relative redirect renames it). */
  name: string;
}

function applyRedirect(cursor: Cursor, redirect: string, atIndex: number, currentRel: string): void {
  if (redirect.startsWith('/')) {
    cursor.absolute = redirect.replace(/^\/+/, '').replace(/\/+$/, '');
  } else if (cursor.absolute !== undefined) {
    cursor.absolute = joinRel(parentOf(currentRel), redirect);
  } else {
    cursor.name = redirect;
    return;
  }
  cursor.from = atIndex + 1;
}

function lookupInLayers(ctx: OverlayContext, parent: OvlNode, name: string): OvlNode | null {
  let upper: LayerEntry | undefined;
  let type = 0;
  let wantLowers = true;
  const cursor: Cursor = { absolute: undefined, from: 0, name };
  // Where the upper has no such name, a `.wh.NAME` beside it is looked for only once a lower layer has
  // the name: a new name (most creates) costs the upper one failed lookup, not two.
  let besideIn: string | undefined;
  if (parent.upper !== undefined && ctx.upper !== undefined) {
    const rel = joinRel(parent.upperRel(), name);
    const deferBeside = ctx.upper.whiteoutBeside !== undefined;
    const entry = ctx.upper.lookup(rel, deferBeside);
    if (entry === undefined && deferBeside) besideIn = rel;
    if (entry !== undefined) {
      if (entry.whiteout) return null;
      upper = entry;
      type = entry.stat.mode & S_IFMT;
      if (type === S_IFDIR) wantLowers = !entry.opaque;
      else wantLowers = entry.metacopy;
      if (wantLowers && ctx.lowers.length > 0) checkFollow(ctx, entry, parent, name);
      if (wantLowers && entry.redirect !== undefined && ctx.followRedirects) applyRedirect(cursor, entry.redirect, -1, '');
    }
  }
  const lowers: LowerRef[] = [];
  if (wantLowers) {
    const candidates = lowerCandidates(ctx, parent, cursor);
    for (let step = candidates.next(); !step.done; step = candidates.next()) {
      const { layer, index, rel, walk } = step.value;
      const entry = walk ? layer.lookupPath(rel) : layer.lookup(rel);
      if (entry === undefined) continue;
      if (entry.whiteout) break;
      // Before anything below is read (or refused): a whiteout beside the name hides it all.
      if (besideIn !== undefined && lowers.length === 0 && ctx.upper!.whiteoutBeside!(besideIn)) return null;
      const entryType = entry.stat.mode & S_IFMT;
      if (upper === undefined && lowers.length === 0) type = entryType;
      if (type === S_IFDIR) {
        // A directory merges only with directories below it.
        if (entryType !== S_IFDIR) break;
        lowers.push({ layer, index, rel, entry });
        if (entry.opaque) break;
        if (index < ctx.lowers.length - 1) checkFollow(ctx, entry, parent, name);
        if (entry.redirect !== undefined && ctx.followRedirects) applyRedirect(cursor, entry.redirect, index, rel);
        continue;
      }
      // A non-directory: the first lower copy, then metacopy links down to the one holding the data.
      if (upper !== undefined || lowers.length > 0) {
        const needsData = lowers.length > 0 ? lowers[lowers.length - 1].entry.metacopy : upper?.metacopy === true;
        if (!needsData || entryType !== S_IFREG) break;
      }
      lowers.push({ layer, index, rel, entry });
      if (!entry.metacopy) break;
      checkFollow(ctx, entry, parent, name);
      if (entry.redirect !== undefined) applyRedirect(cursor, entry.redirect, index, rel);
    }
  }
  if (upper === undefined && lowers.length === 0) return null;
  // The kernel's ovl_lookup aborts too ("metacopy with no lower data found"): the data is gone.
  const dataless = lowers.length > 0 ? lowers[lowers.length - 1].entry.metacopy : upper?.metacopy === true;
  if (type !== S_IFDIR && dataless) {
    throw fsError('EIO', 'lookup', parent.childPath(name), undefined, 'metacopy file without its lower data');
  }
  return new OvlNode(name, parent, type, upper, lowers, ctx.inoOf(upper, lowers));
}

/**
 * Before a lookup goes on below an entry, as the kernel's ovl_lookup checks: a malformed redirect
 * fails with EINVAL as it is read; a metacopy file on an overlay without metacopy=on, or a redirect
 * with redirect_dir=nofollow, is refused (EPERM, "refusing to follow"); a redirect that names '.'
 * or '..' fails when followed (EACCES). The rest of the layer keeps working.
 */
function checkFollow(ctx: OverlayContext, entry: LayerEntry, parent: OvlNode, name: string): void {
  const path = parent.childPath(name);
  const invalid = entry.invalid;
  if (invalid !== undefined && invalid.code === 'EINVAL') throw fsError(invalid.code, 'lookup', path, undefined, invalid.what);
  if (entry.metacopy && !ctx.metacopy) throw fsError('EPERM', 'lookup', path, undefined, 'refusing to follow metacopy origin (metacopy=off)');
  const hasRedirect = entry.redirect !== undefined || invalid !== undefined;
  if (hasRedirect && !ctx.followRedirects) throw fsError('EPERM', 'lookup', path, undefined, 'refusing to follow redirect (redirect_dir=nofollow)');
  if (invalid !== undefined) throw fsError(invalid.code, 'lookup', path, undefined, invalid.what);
}

/** The (layer, path) pairs to try, in order, following the parent's stack or an absolute redirect. */
function* lowerCandidates(ctx: OverlayContext, parent: OvlNode, cursor: Cursor): Generator<{ layer: Layer; index: number; rel: string; walk: boolean }> {
  let stackPos = 0;
  let index = -1;
  for (;;) {
    if (cursor.absolute !== undefined) {
      // After an absolute redirect every layer below is searched from its root, as the kernel does.
      index = Math.max(index + 1, cursor.from);
      if (index >= ctx.lowers.length) return;
      yield { layer: ctx.lowers[index], index, rel: cursor.absolute, walk: true };
      continue;
    }
    while (stackPos < parent.lowers.length && parent.lowers[stackPos].index <= index) stackPos++;
    if (stackPos >= parent.lowers.length) return;
    const ref = parent.lowers[stackPos++];
    index = ref.index;
    yield { layer: ref.layer, index, rel: joinRel(ref.rel, cursor.name), walk: false };
  }
}

/** Symlinks followed in one path walk before ELOOP, as Linux's MAXSYMLINKS. */
export const MAX_SYMLINKS = 40;

/**
 * Walks an overlay path from the root. Symlinks resolve inside the overlay: an absolute target
 * restarts at the overlay's root and `..` at the root stays there, so nothing reaches the host.
 */
export function walk(ctx: OverlayContext, path: string, followLast: boolean, syscall: string, label: string = path): OvlNode {
  ctx.beginOp();
  const parts = path.split('/');
  const stack: string[] = [];
  for (let i = parts.length - 1; i >= 0; i--) if (parts[i] !== '' && parts[i] !== '.') stack.push(parts[i]);
  const trailingSlash = path.length > 1 && path.endsWith('/');
  let node = ctx.root;
  let links = 0;
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (name === '..') {
      node = node.parent ?? node;
      continue;
    }
    if (!node.isDir) throw fsError('ENOTDIR', syscall, label);
    if (tooLong(name)) throw fsError('ENAMETOOLONG', syscall, label);
    const child = lookupChild(ctx, node, name);
    if (child === null) throw fsError('ENOENT', syscall, label);
    const isLast = stack.length === 0;
    if (child.type === S_IFLNK && (!isLast || followLast || trailingSlash)) {
      if (++links > MAX_SYMLINKS) throw fsError('ELOOP', syscall, label);
      const target = ctx.readlinkNode(child);
      if (target.startsWith('/')) node = ctx.root;
      const targetParts = target.split('/');
      for (let i = targetParts.length - 1; i >= 0; i--) {
        if (targetParts[i] !== '' && targetParts[i] !== '.') stack.push(targetParts[i]);
      }
      continue;
    }
    node = child;
  }
  if (trailingSlash && !node.isDir) throw fsError('ENOTDIR', syscall, label);
  return node;
}

/** A path split as the kernel's filename_parentat does: the resolved parent and the last name. */
export interface ParentAndName {
  parent: OvlNode;
  /** '' for the root itself; '.' and '..' are returned as they are, for the caller to refuse. */
  name: string;
  /** The path ended in '/': the last component must be a directory. */
  trailingSlash: boolean;
}

/** Resolves everything but the last component (following symlinks); the caller checks the name. */
export function walkParent(ctx: OverlayContext, path: string, syscall: string): ParentAndName {
  const trimmed = path.replace(/\/+$/, '');
  const trailingSlash = trimmed.length < path.length && trimmed.length > 0;
  const slash = trimmed.lastIndexOf('/');
  const name = trimmed.slice(slash + 1);
  const parent = walk(ctx, slash <= 0 ? '/' : trimmed.slice(0, slash), true, syscall, path);
  if (!parent.isDir) throw fsError('ENOTDIR', syscall, path);
  return { parent, name, trailingSlash };
}

/** Is this a name an entry can have (not the root, '.' or '..')? */
export function isNormalName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..';
}
