// Giving memory back after the kernel forgets nodes. The serving thread blocks in read(2) on /dev/fuse
// between requests, so V8 never sees it idle and never runs the memory reducer that returns freed
// pages: after FORGET drops a few hundred thousand nodes, their heap stays resident. A full collection
// after every FORGET_GC_BATCH forgotten ids compacts the heap and unmaps what it freed.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Forgotten node ids between collections: rare enough that a collection costs little per node. */
export const FORGET_GC_BATCH = 50_000;

let collect: (() => void) | undefined | null;

/** The engine's full collection, or null where it cannot be had. */
function collector(): (() => void) | null {
  if (collect !== undefined) return collect;
  try {
    // The flag takes effect for contexts made after it: a fresh one hands out `gc`.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    collect = typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    collect = null;
  }
  return collect;
}

/** Counts forgotten ids and collects once enough have gone. */
export class ForgetCollector {
  private forgotten = 0;

  constructor(private readonly batch = FORGET_GC_BATCH) {}

  add(count: number): void {
    this.forgotten += count;
    if (this.forgotten < this.batch) return;
    this.forgotten = 0;
    collector()?.();
  }
}
