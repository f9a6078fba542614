// The state every overlay operation shares: the layers, the options in force, the root node, and
// the inode-number rules (the kernel's xino).
import { fsError } from '../errors.js';
import { S_IFDIR, S_IFLNK, type Layer, type LayerEntry, type WritableLayer } from '../layer/types.js';
import { OvlNode, type LowerRef } from './node.js';
import type { SharedReads } from './shared-read.js';

export interface ContextOptions {
  redirectDir: 'on' | 'follow' | 'off' | 'nofollow';
  metacopy: boolean;
  xino: 'on' | 'off' | 'auto';
  volatile: boolean;
  /** How many nodes nobody refers to stay cached (node_cache=). */
  nodeCache: number;
  /** When reads may update atimes (see OverlayOptions.atime); default relatime. */
  atime?: 'relatime' | 'strictatime' | 'noatime';
}

/** The default node_cache: enough for a working set, a few MiB of heap. */
export const DEFAULT_NODE_CACHE = 10_000;

/**
 * Face operations whose nodes eviction spares. A face holds nodes between the calls of one
 * operation (resolve the parent, look up the name, create it) without a reference; none uses more
 * than a few walks, so a node used in the last few cannot be dropped under it.
 */
const RECENT_OPS = 8;

/** Bits below which real inode numbers are kept as they are; the layer's filesystem goes above. */
const XINO_SHIFT = 2 ** 40;

export class OverlayContext {
  readonly root: OvlNode;
  readonly followRedirects: boolean;
  readonly createRedirects: boolean;
  readonly metacopy: boolean;
  readonly volatile: boolean;
  /** Changed by a remount (Overlay.setAtimeRule). */
  atime: 'relatime' | 'strictatime' | 'noatime';
  /** st_dev of every file: one device for the whole overlay, as the kernel reports. */
  readonly dev: number;
  private readonly fsIndex = new Map<number, number>();
  /** Cached negative lookups, oldest first, so that unique missing names cannot grow memory forever. */
  private negatives: Array<{ parent: OvlNode; name: string }> = [];
  private static readonly MAX_NEGATIVES = 65536;
  /** All layers on one filesystem: st_ino needs no xino bits, and listings pass real d_ino through. */
  readonly sameFs: boolean;
  /**
   * Unreferenced cached nodes, least recently used first (the kernel's dentry LRU). A node leaves it
   * when something refers to it; a directory found with live children leaves it until one of them goes.
   */
  private readonly unused = new Set<OvlNode>();
  private readonly nodeCache: number;
  /** Counts face operations (walks, lookups): see RECENT_OPS. */
  private op = RECENT_OPS;
  /** Bumped by every security.capability this overlay sets: see OvlNode.noCapsAt. */
  capsEpoch = 0;
  /** Real files shared by reading opens of lower files, made at the first such open (file.ts). */
  sharedReads: SharedReads | undefined;

  constructor(readonly upper: WritableLayer | undefined, readonly lowers: Layer[], options: ContextOptions) {
    this.followRedirects = options.redirectDir !== 'nofollow';
    this.createRedirects = options.redirectDir === 'on';
    this.metacopy = options.metacopy;
    this.volatile = options.volatile;
    this.atime = options.atime ?? 'relatime';
    this.nodeCache = options.nodeCache;
    const layers: Layer[] = upper !== undefined ? [upper, ...lowers] : [...lowers];
    for (const layer of layers) if (!this.fsIndex.has(layer.fsId)) this.fsIndex.set(layer.fsId, this.fsIndex.size);
    this.sameFs = this.fsIndex.size === 1;
    // xino=off changes nothing on one filesystem. Across filesystems the kernel then gives up unique,
    // persistent st_ino for per-layer pseudo devices; ovlfs keeps one st_dev, so it refuses instead.
    if (options.xino === 'off' && !this.sameFs) {
      throw fsError('EINVAL', 'mount', undefined, undefined, 'xino=off with layers on different filesystems is not supported: st_ino would not be unique; use xino=auto');
    }
    this.dev = layers[0].fsId;
    this.root = this.makeRoot();
  }

  private makeRoot(): OvlNode {
    const upperEntry = this.upper?.lookup('');
    if (upperEntry !== undefined && upperEntry.opaque) {
      return new OvlNode('', undefined, S_IFDIR, upperEntry, [], this.inoOf(upperEntry, []));
    }
    const lowers: LowerRef[] = [];
    for (let index = 0; index < this.lowers.length; index++) {
      const entry = this.lowers[index].lookup('');
      if (entry === undefined) throw fsError('ENOENT', 'mount', this.lowers[index].name);
      lowers.push({ layer: this.lowers[index], index, rel: '', entry });
      if (entry.opaque) break;
    }
    return new OvlNode('', undefined, S_IFDIR, upperEntry, lowers, this.inoOf(upperEntry, lowers));
  }

  /**
   * st_ino: the origin's number when there is a lower copy (so it survives copy-up), else the upper's.
   * Layers on different filesystems get their filesystem's index in the high bits (xino), so two
   * files never share a number.
   */
  inoOf(upper: LayerEntry | undefined, lowers: LowerRef[]): number {
    if (lowers.length > 0) return this.compose(lowers[0].entry.stat.ino, lowers[0].layer.fsId);
    if (upper === undefined) return 0;
    // The recorded origin is the overlay's own st_ino from before the copy-up: use it as it is.
    if (upper.originIno !== undefined) return upper.originIno;
    return this.compose(upper.stat.ino, this.upper!.fsId);
  }

  /** The st_ino of an entry whose st_ino is its real one: the real number, with xino's high bits where they apply. */
  realIno(ino: number, layer: Layer): number { return this.compose(ino, layer.fsId); }

  private compose(ino: number, fsId: number): number {
    if (this.sameFs || ino >= XINO_SHIFT) return ino;
    return ino + (this.fsIndex.get(fsId) ?? 0) * XINO_SHIFT;
  }

  // --- the node cache ----------------------------------------------------------------------------

  /** A face operation starts: the nodes it uses from here on are spared by eviction for a while. */
  beginOp(): void { this.op++; }

  /**
   * A cached node was used. The list keeps its order (a lookup costs a field write, not a move);
   * eviction gives nodes used since they were listed a second chance at the recent end (CLOCK).
   */
  touch(node: OvlNode): void {
    node.lastUse = this.op;
    if (node.listed || node.refs > 0 || node.parent === undefined) return;
    this.list(node);
  }

  private list(node: OvlNode): void {
    node.listed = true;
    node.listedAt = this.op;
    this.unused.add(node);
  }

  private unlist(node: OvlNode): void {
    if (!node.listed) return;
    node.listed = false;
    this.unused.delete(node);
  }

  /** A node just entered the cache (a lookup or a create); past the cache's size the oldest go. */
  added(node: OvlNode): void {
    this.touch(node);
    if (this.unused.size > this.nodeCache) this.evict();
  }

  /** Something refers to the node now (an open file, a face's hold, a copy-up): it is never evicted meanwhile. */
  pin(node: OvlNode): void {
    if (node.refs++ === 0) this.unlist(node);
  }

  /** One reference less; the last one puts the node back among the evictable ones. */
  unpin(node: OvlNode): void {
    if (node.refs <= 0) throw fsError('EINVAL', 'release', node.path(), undefined, 'node released more often than retained');
    if (--node.refs !== 0 || !node.cached) return;
    if (!node.listed) this.list(node);
    // Released nodes may be found again without a lookup that adds one (FUSE: FORGET, then a stat of a
    // cached name), so the cache is trimmed here too, or it grows by every node ever released.
    if (this.unused.size > this.nodeCache) this.evict();
  }

  /** A node left the tree (unlinked, or replaced by a rename): it no longer counts as cached. */
  forget(node: OvlNode): void {
    this.unlist(node);
  }

  /** How many unreferenced nodes are cached now (for tests and benchmarks). */
  get cachedNodes(): number { return this.unused.size; }

  /**
   * Drops the oldest unused leaves until the cache fits. A node used since it was listed, or by one
   * of the last few operations, goes to the recent end instead. A node with live children leaves the
   * list; it comes back when its last child goes, or when it is used again.
   */
  private evict(): void {
    let budget = this.unused.size;
    for (const node of this.unused) {
      if (this.unused.size <= this.nodeCache || budget-- <= 0) return;
      if (node.lastUse > node.listedAt || node.lastUse > this.op - RECENT_OPS) {
        this.unused.delete(node);
        node.listedAt = this.op;
        this.unused.add(node);
        continue;
      }
      this.unlist(node);
      if (node.refs > 0 || node.copying !== undefined || node.hasLiveChild()) continue;
      const parent = node.parent!;
      if (parent.children?.get(node.name) === node) parent.children.delete(node.name);
      if (parent.refs === 0 && parent.parent !== undefined && !parent.listed && parent.cached) this.list(parent);
    }
  }

  /** Forgets every cached node (the overlay closed): open files keep their own. */
  dropCache(): void {
    for (const node of this.unused) node.listed = false;
    this.unused.clear();
    this.root.children = undefined;
    this.root.listing = undefined;
    this.negatives = [];
  }

  /** Records a cached "no such name"; past the cap the oldest half are forgotten. */
  rememberNegative(parent: OvlNode, name: string): void {
    this.negatives.push({ parent, name });
    if (this.negatives.length <= OverlayContext.MAX_NEGATIVES) return;
    const evict = this.negatives.splice(0, this.negatives.length >> 1);
    for (const { parent: p, name: n } of evict) if (p.children?.get(n) === null) p.children.delete(n);
  }

  /** The layer and path holding a node's metadata: upper if copied up, else the top-most lower. */
  metaRef(node: OvlNode): { layer: Layer; rel: string } {
    if (node.upper !== undefined) return { layer: this.upper!, rel: node.upperRel() };
    const ref = node.lowers[0];
    return { layer: ref.layer, rel: ref.rel };
  }

  /** The layer and path holding a node's data: the upper copy unless it is metacopy. */
  dataRef(node: OvlNode): { layer: Layer; rel: string } {
    if (node.upper !== undefined && !node.upper.metacopy) return { layer: this.upper!, rel: node.upperRel() };
    const ref = node.lowers[node.lowers.length - 1];
    return { layer: ref.layer, rel: ref.rel };
  }

  readlinkNode(node: OvlNode): string {
    if (node.type !== S_IFLNK) throw fsError('EINVAL', 'readlink', node.path());
    const { layer, rel } = this.metaRef(node);
    return layer.readlink(rel);
  }

  writableUpper(syscall: string, path: string): WritableLayer {
    if (this.upper === undefined) throw fsError('EROFS', syscall, path);
    return this.upper;
  }
}
