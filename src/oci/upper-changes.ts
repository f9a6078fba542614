// What an upper layer changes, read from its on-disk format: the walk that both the layer tar
// (layer-pack.ts) and the `podman diff` listing (diff.ts) are made from.
//
// The upper layer and each lower layer are read through DirLayer (confined to its root, every
// whiteout and xattr form decoded as the mount decodes it). Where the upper layer alone cannot say
// what a name holds — a redirected directory, whose content is its lower directory's merged with
// the upper's changes, or a metacopy file, whose data is below — the answer comes from a read-only
// overlay of the upper over the lowers: the merged view a mount would show.
import * as fs from 'node:fs';
import { fsError } from '../errors.js';
import { DirLayer } from '../layer/dir-layer.js';
import { S_IFDIR, S_IFMT, S_IFREG, type LayerEntry, type RealStat } from '../layer/types.js';
import type { Overlay, OverlayNode } from '../overlay/index.js';
import { MergedView, openLayers, sortedXattrs } from './merged-view.js';

export interface ChangesOptions {
  xattrPrefix: string;
  /** The lower layers under the upper layer, top-most first. */
  lowerdirs?: string[];
  /**
   * The walk is for content (a layer tar): without lowerdirs, a redirected directory is an error.
   * Otherwise (a listing) it is walked as the upper layer has it.
   */
  needContent?: boolean;
}

/** One entry of the new content: its metadata, and its data for regular files. */
export interface EntrySource {
  /** Size is the data's (a metacopy file's is the lower file's). */
  stat: RealStat;
  /** Identifies the inode when it has other names (hard links), else undefined. */
  linkKey: string | undefined;
  /** User-visible xattrs, in byte order of their names. */
  xattrs(): Array<[string, Buffer]>;
  readlink(): string;
  /** Reads up to `length` bytes at `position` into `buffer`; 0 at the end. */
  read(buffer: Buffer, length: number, position: number): number;
  /** Ends reading. */
  done(): void;
}

export type UpperChange =
  /** `rel` is deleted: a whiteout that hides something (or may: no lowers given). */
  | { kind: 'whiteout'; rel: string }
  /**
   * `rel` is new or changed. `lowerType` is the S_IFMT of what the lowers show there (undefined:
   * nothing, or no lowers given). `source` reads the entry (a metacopy file's data needs the lowers).
   */
  | { kind: 'entry'; rel: string; source: () => EntrySource; lowerType: number | undefined }
  /**
   * The directory `rel` hides the lower directory of that name (opaque, or a redirected directory
   * written whole); `present` are the names it holds itself.
   */
  | { kind: 'opaque'; rel: string; present: Set<string> };

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** An upper layer and its lowers, opened for one walk; close() releases them. */
export class UpperChanges {
  private readonly upper: DirLayer;
  private readonly lowers: DirLayer[];
  /** The upper layer over the lowers: what a renamed directory or a metacopy file holds. */
  private merged: MergedView | undefined;
  /** The lowers alone: what a change hides or replaces. */
  private lowerView: MergedView | undefined;
  readonly hasLowers: boolean;

  constructor(upperDir: string, private readonly options: ChangesOptions) {
    this.upper = new DirLayer(upperDir, { xattrPrefix: options.xattrPrefix });
    try {
      this.lowers = openLayers(options.lowerdirs ?? [], options.xattrPrefix);
    } catch (err) {
      this.upper.close();
      throw err;
    }
    this.hasLowers = this.lowers.length > 0;
  }

  close(): void {
    this.merged?.close();
    this.lowerView?.close();
    for (const layer of [this.upper, ...this.lowers]) layer.close();
  }

  private mergedView(rel: string, why: string): MergedView {
    if (!this.hasLowers) {
      throw fsError('EINVAL', 'pack', `/${rel}`, undefined, `${why}: the lower layers (lowerdirs) are needed to read it`);
    }
    this.merged ??= new MergedView([this.upper, ...this.lowers]);
    return this.merged;
  }

  /** The S_IFMT of what the lower layers show at rel, or undefined (also when none are given). */
  lowerType(rel: string): number | undefined {
    if (!this.hasLowers) return undefined;
    this.lowerView ??= new MergedView(this.lowers);
    return this.lowerView.type(rel);
  }

  /** The names the lower layers show in the directory rel. */
  lowerNames(rel: string): string[] {
    if (!this.hasLowers) return [];
    this.lowerView ??= new MergedView(this.lowers);
    return this.lowerView.names(rel);
  }

  /** Every change, depth first, in no particular order within a directory. */
  *walk(): Generator<UpperChange> {
    yield* this.walkUpper('', false);
  }

  /** `hidden`: nothing of the lowers shows in `dir`, so whiteouts there hide nothing. */
  private *walkUpper(dir: string, hidden: boolean): Generator<UpperChange> {
    for (const dirent of this.upper.readdir(dir)) {
      const rel = join(dir, dirent.name);
      if (dirent.whiteout) {
        if (!hidden && (!this.hasLowers || this.lowerType(rel) !== undefined)) yield { kind: 'whiteout', rel };
        continue;
      }
      const entry = this.upper.lookup(rel);
      if (entry === undefined || entry.whiteout) continue;
      const type = entry.stat.mode & S_IFMT;
      if (type === S_IFDIR && (entry.redirect !== undefined || entry.invalid !== undefined) && (this.hasLowers || this.options.needContent)) {
        const view = this.mergedView(rel, 'a renamed (redirected) directory is written out whole');
        yield* this.walkMerged(view, rel, view.node(rel)!);
        continue;
      }
      const lowerType = this.lowerType(rel);
      const source = type === S_IFREG && entry.metacopy
        ? () => this.nodeSource(this.mergedView(rel, 'a metacopy file has its data in a lower layer'), rel)
        : () => this.upperSource(rel, entry);
      yield { kind: 'entry', rel, source, lowerType };
      if (type !== S_IFDIR) continue;
      const belowHidden = hidden || entry.opaque || (this.hasLowers && lowerType !== S_IFDIR);
      if (entry.opaque && !hidden && (!this.hasLowers || lowerType === S_IFDIR)) {
        yield { kind: 'opaque', rel, present: new Set(this.upper.readdir(rel).filter((d) => !d.whiteout).map((d) => d.name)) };
      }
      yield* this.walkUpper(rel, belowHidden);
    }
  }

  /** A directory written out whole: everything the merged view shows below it. */
  private *walkMerged(view: MergedView, rel: string, node: OverlayNode): Generator<UpperChange> {
    const lowerType = this.lowerType(rel);
    yield { kind: 'entry', rel, source: () => this.nodeSource(view, rel, node), lowerType };
    if (!node.isDir) return;
    const names = view.overlay.readdir(node).map((d) => d.name);
    // Its content replaces whatever directory the lowers have by its new name.
    if (lowerType === S_IFDIR) yield { kind: 'opaque', rel, present: new Set(names) };
    for (const name of names) {
      const child = view.overlay.lookup(node, name);
      if (child !== null) yield* this.walkMerged(view, join(rel, name), child);
    }
  }

  private upperSource(rel: string, entry: LayerEntry): EntrySource {
    const { upper } = this;
    const stat = entry.stat;
    let file: ReturnType<DirLayer['open']> | undefined;
    return {
      stat,
      linkKey: (stat.mode & S_IFMT) !== S_IFDIR && stat.nlink > 1 ? `${stat.dev}:${stat.ino}` : undefined,
      xattrs: () => sortedXattrs(upper.listxattr(rel), (name) => upper.getxattr(rel, name)),
      readlink: () => upper.readlink(rel),
      read(buffer, length, position) {
        file ??= upper.open(rel, fs.constants.O_RDONLY);
        return file.read(buffer, 0, length, position);
      },
      done() {
        file?.close();
        file = undefined;
      },
    };
  }

  private nodeSource(view: MergedView, rel: string, known?: OverlayNode): EntrySource {
    const node = known ?? view.node(rel)!;
    const { overlay } = view;
    const stat = overlay.getattr(node);
    let file: ReturnType<Overlay['open']> | undefined;
    return {
      stat,
      linkKey: overlay.hardLinkKey(node) ?? (!node.isDir && stat.nlink > 1 ? `merged:${stat.ino}` : undefined),
      xattrs: () => view.xattrs(node),
      readlink: () => overlay.readlink(node),
      read(buffer, length, position) {
        file ??= overlay.open(node, fs.constants.O_RDONLY);
        return overlay.read(file, buffer, 0, length, position);
      },
      done() {
        if (file !== undefined) overlay.release(file);
        file = undefined;
      },
    };
  }
}
