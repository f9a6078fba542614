// The overlay mount with its node counts published: a factory for mountFuse that wraps createOverlayFs
// and, after every request that can change them, writes the bridge's node ids and the core's cached
// unreferenced nodes into a SharedArrayBuffer the test thread reads.
import { createOverlayFs } from '../../src/fuse/overlay-fs.js';
import type { NodeBridge } from '../../src/fuse/bridge/nodes.js';
import type { FuseNotifier, RawFileSystem } from '../../src/fuse/bridge/raw-fs.js';
import type { Overlay } from '../../src/overlay/index.js';

export interface CountingArg {
  overlay: string;
  /** Int32Array over it: [0] node ids held, [1] the core's cached unreferenced nodes, [2] forgets seen. */
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
  return bridge;
}
