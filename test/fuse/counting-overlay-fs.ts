// The overlay mount with its counts published: a factory for mountFuse that wraps createOverlayFs and
// writes into a SharedArrayBuffer the test thread reads: the bridge's node ids and the core's cached
// unreferenced nodes after every request that can change them, and the READ/WRITE requests that
// reached the daemon (none do for a passthrough handle).
import { createOverlayFs } from '../../src/fuse/overlay-fs.js';
import type { NodeBridge } from '../../src/fuse/bridge/nodes.js';
import type { FuseNotifier, RawFileSystem } from '../../src/fuse/bridge/raw-fs.js';
import type { Overlay } from '../../src/overlay/index.js';

export interface CountingArg {
  overlay: string;
  /** Int32Array over it: [0] node ids held, [1] the core's cached unreferenced nodes, [2] forgets seen, [3] READ and WRITE requests. */
  counters: SharedArrayBuffer;
}

export function createCountingOverlayFs(arg: unknown, notify: FuseNotifier): RawFileSystem {
  const a = arg as CountingArg;
  const bridge = createOverlayFs({ overlay: a.overlay }, notify) as NodeBridge<object, unknown>;
  const overlay = (bridge.fs as unknown as { overlay: Overlay }).overlay;
  const counters = new Int32Array(a.counters);
  const publish = (): void => {
    Atomics.store(counters, 0, bridge.nodeCount);
    Atomics.store(counters, 1, overlay.cachedNodes);
  };
  const forget = bridge.forget.bind(bridge);
  const lookup = bridge.lookup.bind(bridge);
  bridge.forget = (nodeid, n) => {
    forget(nodeid, n);
    Atomics.add(counters, 2, 1);
    publish();
  };
  bridge.lookup = (caller, parent, name) => {
    const e = lookup(caller, parent, name);
    publish();
    return e;
  };
  for (const key of ['read', 'write', 'leaseData'] as const) {
    const op = bridge[key] as ((...args: unknown[]) => unknown) | undefined;
    if (op === undefined) continue;
    (bridge as unknown as Record<string, unknown>)[key] = (...args: unknown[]) => {
      Atomics.add(counters, 3, 1);
      return op.apply(bridge, args);
    };
  }
  return bridge;
}
