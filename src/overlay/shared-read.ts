// One real file for all the reading opens of a lower file.
//
// A lower layer never changes under a live overlay, and a real file keeps no state the overlay's files
// depend on (every read names its position), so the reading opens of a node whose data is below share
// one host open. It stays open a while after the last of them closes: a container runs the same
// binaries and reads the same files again and again, and each open after the first costs no open(2)
// and no close(2). At most IDLE_MAX wait unused, the least recently released closing first. A copy-up
// moves the node's data (dataMoved): an unused shared file closes then, one in use serves only the opens
// that have it (they re-bind at their next call) and closes with the last. The overlay's close closes
// the idle ones.
import type { RealFile } from '../layer/types.js';
import type { OvlNode } from './node.js';

/** Real files kept open with no open file using them. */
export const IDLE_MAX = 64;

export class SharedRead {
  users = 1;
  constructor(
    readonly owner: SharedReads,
    readonly node: OvlNode,
    readonly real: RealFile,
  ) {}
}

export class SharedReads {
  /** Unused shared files, least recently released first. */
  private readonly idle = new Set<SharedRead>();
  private closed = false;

  /** `retire` closes a real file once no I/O holds it any more (file.ts's leases). */
  constructor(private readonly retire: (real: RealFile) => void) {}

  /** The node's current shared file, with one user more; undefined when it has none. */
  take(node: OvlNode): SharedRead | undefined {
    const shared = node.sharedRead;
    if (shared === undefined) return undefined;
    if (shared.users++ === 0) this.idle.delete(shared);
    return shared;
  }

  /** `real`, just opened on the node's data for reading, shared from now on; one user. */
  add(node: OvlNode, real: RealFile): SharedRead {
    const shared = new SharedRead(this, node, real);
    if (!this.closed) node.sharedRead = shared;
    return shared;
  }

  /** One user less: the last one leaves the file open for the next, unless the data moved meanwhile. */
  release(shared: SharedRead): void {
    if (--shared.users > 0) return;
    if (this.closed || shared.node.sharedRead !== shared) {
      this.retire(shared.real);
      return;
    }
    this.idle.add(shared);
    if (this.idle.size > IDLE_MAX) this.drop(this.idle.values().next().value as SharedRead);
  }

  /** The overlay closed: the idle files close now, the others with their last user. */
  close(): void {
    this.closed = true;
    for (const shared of this.idle) this.drop(shared);
    this.idle.clear();
  }

  /** Closes an unused shared file now. */
  drop(shared: SharedRead): void {
    this.idle.delete(shared);
    if (shared.node.sharedRead === shared) shared.node.sharedRead = undefined;
    this.retire(shared.real);
  }
}

/** A node's data moved to another real file (a copy-up): its shared file is no longer its data. */
export function dataMoved(node: OvlNode): void {
  node.dataGen++;
  const shared = node.sharedRead;
  if (shared === undefined) return;
  node.sharedRead = undefined;
  if (shared.users === 0) shared.owner.drop(shared);
}
