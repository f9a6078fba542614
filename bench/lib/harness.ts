// Runs one workload on every peer: repetitions are interleaved across peers (rep 1 of each peer, then
// rep 2, …, starting each round at a different peer), so drift on a shared machine spreads evenly.
import { rmSync } from 'node:fs';
import type { Peer, PeerId, Stack, View } from './peers.js';
import type { Cleanup } from './sys.js';

export type Status = 'ok' | 'n/a' | 'error';

/** One measured series: a workload case on one peer. */
export interface Row {
  workload: string;
  case: string;
  /** The x of a growth curve (layers, entries, files touched). */
  x?: number;
  peer: PeerId;
  status: Status;
  note?: string;
  unit: 'ms' | 'MiB';
  /** One value per repetition. */
  values: number[];
  /** Operations per value, to turn a value into a per-operation cost. */
  ops: number;
  /** The peer that ratios are taken against. */
  baseline: PeerId;
}

export interface PeerRun {
  status: Status;
  note?: string;
  /** Times (ms) per case name, one per repetition. */
  times: Map<string, number[]>;
}

export interface RunSpec {
  peers: Peer[];
  reps: number;
  cleanup: Cleanup;
  /** Why this workload cannot run on a peer (shown in the table), or undefined. */
  notApplicable?: (peer: Peer) => string | undefined;
  /** The peer's own layers; called once (shared view) or once per repetition (fresh). */
  prepare: (peer: Peer, rep: number) => Stack;
  /** Open a new view for every repetition (for work that changes the layers, such as copy-up). */
  fresh?: boolean;
  /** Run the body once untimed on each peer first (JIT, page cache, dentry caches). */
  warmup?: boolean;
  /** Runs of the body per repetition, keeping each case's fastest: filters GC pauses and preemption. */
  inner?: number;
  /** One repetition: returns milliseconds per case. */
  body: (view: View, peer: Peer, rep: number) => Record<string, number> | Promise<Record<string, number>>;
  log?: (msg: string) => void;
}

export async function runPeers(spec: RunSpec): Promise<Map<PeerId, PeerRun>> {
  const out = new Map<PeerId, PeerRun>();
  const active: Peer[] = [];
  for (const p of spec.peers) {
    const why = p.unavailable ?? spec.notApplicable?.(p);
    if (why !== undefined) out.set(p.id, { status: p.unavailable !== undefined ? 'error' : 'n/a', note: why, times: new Map() });
    else {
      out.set(p.id, { status: 'ok', times: new Map() });
      active.push(p);
    }
  }
  const fail = (p: Peer, e: unknown): void => {
    const r = out.get(p.id)!;
    r.status = 'error';
    r.note = (e as Error).message.split('\n')[0]!.slice(0, 200);
    spec.log?.(`  ${p.id}: ${r.note}`);
  };
  const record = (p: Peer, t: Record<string, number>): void => {
    const r = out.get(p.id)!;
    for (const [k, v] of Object.entries(t)) {
      const arr = r.times.get(k) ?? [];
      arr.push(v);
      r.times.set(k, arr);
    }
  };
  const ok = (p: Peer): boolean => out.get(p.id)!.status === 'ok';

  if (!spec.fresh) {
    const views = new Map<PeerId, View>();
    try {
      for (const p of active) {
        try {
          views.set(p.id, await p.open(spec.prepare(p, 0), spec.cleanup));
          if (spec.warmup) await spec.body(views.get(p.id)!, p, -1);
        } catch (e) {
          fail(p, e);
        }
      }
      for (let rep = 0; rep < spec.reps; rep++) {
        for (let i = 0; i < active.length; i++) {
          const p = active[(i + rep) % active.length]!;
          if (!ok(p)) continue;
          try {
            let best: Record<string, number> | undefined;
            for (let k = 0; k < (spec.inner ?? 1); k++) {
              const t = await spec.body(views.get(p.id)!, p, rep);
              // A case may be missing from a run (a peer too slow to repeat it): keep what was measured.
              const merged: Record<string, number> = { ...(best ?? {}) };
              for (const [c, v] of Object.entries(t)) merged[c] = Math.min(v, merged[c] ?? v);
              best = merged;
            }
            record(p, best!);
          } catch (e) {
            fail(p, e);
          }
        }
      }
    } finally {
      for (const v of views.values()) await v.close().catch(() => {});
    }
    return out;
  }

  for (let rep = spec.warmup ? -1 : 0; rep < spec.reps; rep++) {
    for (let i = 0; i < active.length; i++) {
      const p = active[(i + Math.max(rep, 0)) % active.length]!;
      if (!ok(p)) continue;
      const mark = spec.cleanup.mark;
      try {
        const stack = spec.prepare(p, rep);
        const view = await p.open(stack, spec.cleanup);
        try {
          const t = await spec.body(view, p, rep);
          if (rep >= 0) record(p, t);
        } finally {
          await view.close();
        }
        for (const d of [stack.upper, stack.work]) rmSync(d, { recursive: true, force: true });
      } catch (e) {
        fail(p, e);
      } finally {
        spec.cleanup.runFrom(mark);
      }
    }
  }
  return out;
}

/** Turns peer runs into result rows. */
export function rows(workload: string, runs: Map<PeerId, PeerRun>, baseline: PeerId, cases: { name: string; ops: number; x?: number }[]): Row[] {
  const res: Row[] = [];
  for (const c of cases) {
    for (const [peer, r] of runs) {
      const values = r.times.get(c.name) ?? [];
      const missing = r.status === 'ok' && values.length === 0;
      const status: Status = missing ? 'error' : r.status;
      res.push({ workload, case: c.name, x: c.x, peer, status, note: missing ? 'no value recorded' : r.note, unit: 'ms', values, ops: c.ops, baseline });
    }
  }
  return res;
}
