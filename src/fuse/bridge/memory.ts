// Giving memory back after the kernel forgets nodes. The serving thread blocks in read(2) on /dev/fuse
// between requests, so V8 never sees it idle and never runs the memory reducer that returns freed
// pages: after FORGET drops a few hundred thousand nodes, their heap stays resident. A full collection
// compacts the heap and unmaps what it freed: once the device has been quiet for IDLE_MS after at least
// FORGET_IDLE_GC forgotten ids (the end of a drop_caches or of memory pressure), and in any case after
// every FORGET_GC_BATCH of them, so that a long stream of forgets cannot grow the heap meanwhile.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Forgotten node ids between collections: rare enough that a collection costs little per node. */
export const FORGET_GC_BATCH = 50_000;
/** Forgotten node ids after which the loop collects at the next quiet moment. */
export const FORGET_IDLE_GC = 2_000;
/** How long the device must stay quiet for that collection, in ms. */
export const IDLE_MS = 100;

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

/** A full collection now, where the engine allows one (a daemon whose mount has ended, before it waits). */
export function collectGarbage(): void {
  collector()?.();
}

/** Counts forgotten ids and collects once enough have gone. */
export class ForgetCollector {
  private forgotten = 0;

  constructor(
    private readonly batch = FORGET_GC_BATCH,
    private readonly idleBatch = FORGET_IDLE_GC,
  ) {}

  add(count: number): void {
    this.forgotten += count;
    if (this.forgotten >= this.batch) this.collect();
  }

  /** Whether enough was forgotten since the last collection to collect when the device goes quiet. */
  get due(): boolean {
    return this.forgotten >= this.idleBatch;
  }

  collect(): void {
    this.forgotten = 0;
    collector()?.();
  }
}
