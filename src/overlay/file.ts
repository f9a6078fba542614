// Open files (the kernel's file.c). An open overlay file holds the real file that was current when
// it was opened. Every operation takes its real file from `realFile()`, the one choke point (the
// kernel's ovl_real_fdget): if the node's data moved since (a copy-up by any path or handle), the
// file re-binds itself to the new real file once, and every later call goes straight through. The
// check is one integer comparison, so a re-bound handle costs what a fresh one does.
import { constants } from 'node:fs';
import { fsError } from '../errors.js';
import { O_ACCMODE, S_IFDIR, type RealFile } from '../layer/types.js';
import type { OverlayContext } from './context.js';
import type { OvlNode } from './node.js';

const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_TRUNC, O_DIRECTORY } = constants;

export class OvlFile {
  /** The real file in use; replaced by realFile() after a copy-up. */
  real: RealFile | undefined;
  /** The node's dataGen that `real` belongs to. */
  boundGen: number;
  /** The file position for reads and writes without an explicit one. */
  position = 0;
  closed = false;
  readonly readable: boolean;
  readonly writable: boolean;
  readonly append: boolean;

  constructor(readonly ctx: OverlayContext, readonly node: OvlNode, readonly flags: number, real: RealFile | undefined) {
    this.real = real;
    this.boundGen = node.dataGen;
    const access = flags & O_ACCMODE;
    this.readable = access !== O_WRONLY;
    this.writable = access !== O_RDONLY;
    this.append = (flags & O_APPEND) !== 0;
    // Only a file whose data may still move up needs tracking.
    if (!node.isDir && (node.upper === undefined || node.upper.metacopy)) (node.openFiles ??= new Set()).add(this);
  }
}

/** The flags to open a real file with: creation is the overlay's business, not the real file's. */
function realFlags(flags: number): number {
  return flags & ~(O_CREAT | O_EXCL | O_TRUNC);
}

function openReal(ctx: OverlayContext, node: OvlNode, flags: number): RealFile {
  const { layer, rel } = ctx.dataRef(node);
  return layer.open(rel, flags);
}

/**
 * The choke point: the real file that is current for `file`. Every file operation comes here and
 * nowhere else, so a handle opened before a copy-up reads what was written after it.
 */
export function realFile(file: OvlFile, syscall: string): RealFile {
  if (file.closed) throw fsError('EBADF', syscall);
  if (file.boundGen !== file.node.dataGen) rebind(file);
  const real = file.real;
  if (real === undefined) throw fsError('EISDIR', syscall, file.node.path());
  return real;
}

function rebind(file: OvlFile): void {
  const old = file.real;
  file.real = openReal(file.ctx, file.node, realFlags(file.flags));
  file.boundGen = file.node.dataGen;
  // Bound to the upper file now; nothing can move its data again, so stop tracking it.
  file.node.openFiles?.delete(file);
  old?.close();
}

/**
 * Before a node's upper copy is unlinked or replaced, re-bind every open file that still holds an
 * older real file: afterwards the upper file can no longer be opened by name.
 */
export function settleOpenFiles(node: OvlNode): void {
  if (node.openFiles === undefined) return;
  for (const file of node.openFiles) {
    if (!file.closed && file.boundGen !== node.dataGen) rebind(file);
  }
}

/** Opens an existing node. The caller has copied it up already when the flags write. */
export function openNode(ctx: OverlayContext, node: OvlNode, flags: number): OvlFile {
  if (node.type === S_IFDIR) {
    if ((flags & O_ACCMODE) !== O_RDONLY) throw fsError('EISDIR', 'open', node.path());
    return new OvlFile(ctx, node, flags | O_DIRECTORY, undefined);
  }
  if ((flags & O_DIRECTORY) !== 0) throw fsError('ENOTDIR', 'open', node.path());
  const real = openReal(ctx, node, flags & ~(O_CREAT | O_EXCL));
  return new OvlFile(ctx, node, flags, real);
}

export function closeFile(file: OvlFile): void {
  if (file.closed) throw fsError('EBADF', 'close');
  file.closed = true;
  file.node.openFiles?.delete(file);
  file.real?.close();
  file.real = undefined;
}

export function readFile(file: OvlFile, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | null): number {
  if (!file.readable) throw fsError('EBADF', 'read');
  const real = realFile(file, 'read');
  if (position === null || position < 0) {
    const n = real.read(buffer, offset, length, file.position);
    file.position += n;
    return n;
  }
  return real.read(buffer, offset, length, position);
}

export function writeFile(file: OvlFile, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | null): number {
  if (!file.writable) throw fsError('EBADF', 'write');
  const real = realFile(file, 'write');
  if (file.append) {
    // O_APPEND writes land at the end whatever the position; the position follows them there.
    const n = real.write(buffer, offset, length, null);
    file.position = real.stat().size;
    return n;
  }
  if (position === null || position < 0) {
    const n = real.write(buffer, offset, length, file.position);
    file.position += n;
    return n;
  }
  return real.write(buffer, offset, length, position);
}
