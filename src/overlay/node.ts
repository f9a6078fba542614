// The overlay's dentry: one name in the merged tree and where its real copies live.
//
// Nodes form a tree that caches lookups. The overlay is the only writer of its upper layer (the
// kernel says changing layers under a live mount is undefined, and so do we), so the cache never
// goes stale by itself; every change the overlay makes updates it in the same synchronous step.
import type { Layer, LayerEntry, RealStat } from '../layer/types.js';
import { S_IFDIR } from '../layer/types.js';
import type { CopyUpInFlight } from './copy-up.js';
import type { OvlFile } from './file.js';
import type { SharedRead } from './shared-read.js';

/** Joins a layer path and a name ('' is the layer's root). */
export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** A real copy of a node in one lower layer. */
export interface LowerRef {
  layer: Layer;
  /** 0 is the top-most lower layer. */
  index: number;
  rel: string;
  entry: LayerEntry;
}

/**
 * What the faces may read of an overlay node: its identity and place in the tree. Everything else
 * (layers, caches, open files) stays inside src/overlay; the faces change nodes only through Overlay.
 */
export interface OverlayNode {
  readonly name: string;
  readonly parent: OverlayNode | undefined;
  /** S_IFMT bits. */
  readonly type: number;
  readonly isDir: boolean;
  /** st_ino, stable across copy-up. */
  readonly ino: number;
  /** The name was removed; the node lives on for open files. */
  readonly unlinked: boolean;
  /** The overlay path, for messages. */
  path(): string;
}

export class OvlNode implements OverlayNode {
  /** Copies in lower layers: for a directory every layer merged into it, top-most first; for others the data origin. */
  lowers: LowerRef[];
  /** Looked-up children; null marks a name known to be absent (a negative dentry). */
  children: Map<string, OvlNode | null> | undefined;
  /** Bumped whenever the file holding this node's data changes (copy-up, metacopy data copy-up). */
  dataGen = 0;
  /** Set when the name was removed: the node lives on only for open files. */
  unlinked = false;
  /** Directories: the merged listing, kept until an entry is added or removed here (ovl_dir_cache). */
  listing: ReadonlyArray<{ name: string; type: number }> | undefined;
  /** A removed directory's last attributes: open handles on it still answer fstat. */
  removedStat: RealStat | undefined;
  /** Open files that may still hold a lower file; they re-bind before the upper copy moves out of reach. */
  openFiles: Set<OvlFile> | undefined;
  /** What keeps the node cached whatever the cache's size: open files, a face's holds, a copy-up in flight. */
  refs = 0;
  /** The face operation that last used the node: eviction spares recent ones (context.ts). */
  lastUse = 0;
  /** In the context's list of unreferenced nodes, since operation `listedAt`. */
  listed = false;
  listedAt = 0;
  /** A copy-up of this node's data in flight: other callers wait for it, or complete it themselves (copy-up.ts). */
  copying: CopyUpInFlight | undefined;
  /**
   * An O_TMPFILE file no name was given yet: its name is then a work-area path (a child of the root
   * that no lookup finds), and the entry goes with its last open file. `linkable` is false for O_EXCL.
   */
  unnamed: { opens: number; linkable: boolean } | undefined;
  /**
   * Directories: the default ACL as last read, and from which layer (a copy-up moves where it is read).
   * Only this overlay writes it (setxattr and removexattr forget it); every create in the directory asks.
   */
  defaultAcl: { layer: Layer; value: Buffer | undefined } | undefined;
  /**
   * The context's capsEpoch when this node's file was last found without security.capability, which
   * the kernel asks for before every exec and every write: only this overlay sets it, so the answer
   * holds until it sets one anywhere (a hard link shares it) and bumps the epoch. -1: not known.
   */
  noCapsAt = -1;
  /** The real file its reading opens share while the data is in a lower layer (shared-read.ts). */
  sharedRead: SharedRead | undefined;

  constructor(
    public name: string,
    public parent: OvlNode | undefined,
    /** S_IFMT bits; a node never changes type. */
    readonly type: number,
    /** The entry in the upper layer, if the node has one. */
    public upper: LayerEntry | undefined,
    lowers: LowerRef[],
    /** st_ino; it survives copy-up (except for lower hard links, see copy-up.ts). */
    public ino: number,
  ) {
    this.lowers = lowers;
  }

  get isDir(): boolean { return this.type === S_IFDIR; }

  /** Only metadata is in the upper layer; the data still comes from lowers[0]. */
  get metacopy(): boolean { return this.upper !== undefined && this.upper.metacopy; }

  /** upperRel()'s last answer, valid while no rename has happened since (see moved()). */
  private relCache: string | undefined;
  private relEpoch = -1;

  /**
   * The layer path of the upper copy, derived from the tree so a directory rename moves it in O(1).
   * It is cached until the next rename anywhere (OvlNode.moved), which is rare next to lookups.
   */
  upperRel(): string {
    if (this.relEpoch === OvlNode.epoch) return this.relCache!;
    const parent = this.parent;
    const rel = parent === undefined ? '' : parent.parent === undefined ? this.name : `${parent.upperRel()}/${this.name}`;
    this.relCache = rel;
    this.relEpoch = OvlNode.epoch;
    return rel;
  }

  /** Bumped by every rename or exchange: cached paths below a moved directory are stale then. */
  private static epoch = 0;
  static moved(): void { OvlNode.epoch++; }

  /** The overlay path, for messages. */
  path(): string { return '/' + this.upperRel(); }

  /** The overlay path of a child name, for messages. */
  childPath(name: string): string { return '/' + joinRel(this.upperRel(), name); }

  /** Some looked-up child exists (a negative dentry does not count): the node is not a leaf of the cache. */
  hasLiveChild(): boolean {
    if (this.children === undefined) return false;
    for (const child of this.children.values()) if (child !== null) return true;
    return false;
  }

  /** Still in the tree of cached lookups: its parent maps its name to it. */
  get cached(): boolean { return !this.unlinked && this.parent?.children?.get(this.name) === this; }

  /** A merged directory: more than one layer contributes entries (the kernel's OVL_TYPE_MERGE). */
  get merged(): boolean { return this.isDir && this.lowers.length + (this.upper !== undefined ? 1 : 0) > 1; }
}
