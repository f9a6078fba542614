// One differential run: build identical layer copies A and B from a seed, mount the kernel overlay on A, open
// the candidate on B, apply the same ops to both and compare every answer, then the merged trees, then the
// tree the kernel shows over B's layers as the candidate left them (its on-disk format).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FuseCandidate, KernelCandidate, OvlfsCandidate, mountKernel, umount,
  type Candidate, type MountOptions, type TreeEntry,
} from './candidates.js';
import { genLayers, mergedView, specPaths, writeLayers, type LayerDirs, type LayersSpec, type SpecNode } from './layers.js';
import { genOps, type Op, type Result } from './ops.js';
import { Rng } from './prng.js';
import { openOverlay } from '../../../src/index.js';

/** ovlfs: the library in-process; fuse: the ovlfs mount (src/cli) driven by syscalls; kernel: kernel vs kernel. */
export type CandidateKind = 'ovlfs' | 'kernel' | 'fuse';

export interface OpDiff { index: number; op: Op; kernel: Result; candidate: Result }
export interface TreeDiff { path: string; kernel: TreeEntry | null; candidate: TreeEntry | null }

export interface Outcome {
  opDiffs: OpDiff[];
  /** Merged tree, kernel on A vs candidate on B. */
  treeDiffs: TreeDiff[];
  /** Kernel on A vs kernel remounted over B's layers after the candidate closed. */
  remountDiffs: TreeDiff[];
}

export interface Case {
  seed: number;
  spec: LayersSpec;
  ops: Op[];
  mount: MountOptions;
}

export function makeCase(seed: number, metacopyAllowed: boolean): Case {
  const rng = new Rng(seed);
  const spec = genLayers(rng);
  const ops = genOps(rng, specPaths(spec), mergedView(spec), rng.int(60, 150));
  // Half the seeds run with redirect_dir=on: without it the kernel answers EXDEV to renaming a lower dir.
  const redirectDir = rng.chance(0.5);
  return { seed, spec, ops, mount: { redirectDir, metacopy: metacopyAllowed && redirectDir && rng.chance(0.5) } };
}

/** JSON with sorted keys, so that equal values always print equal. */
export function canon(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : x,
  );
}

function diffTrees(a: TreeEntry[], b: TreeEntry[]): TreeDiff[] {
  const mb = new Map(b.map((e) => [e.path, e]));
  const out: TreeDiff[] = [];
  for (const e of a) {
    const o = mb.get(e.path) ?? null;
    mb.delete(e.path);
    if (o === null || canon(e) !== canon(o)) out.push({ path: e.path, kernel: e, candidate: o });
  }
  for (const o of mb.values()) out.push({ path: o.path, kernel: null, candidate: o });
  return out;
}

export type Tracer = (index: number, op: Op, kernel: Result, candidate: Result) => void;

/** `scratch` hears the directory a run works in (layers, mount points), e.g. to check for leftover mounts. */
export async function runCase(c: Case, kind: CandidateKind, trace?: Tracer, scratch?: (root: string) => void): Promise<Outcome> {
  const root = mkdtempSync(join(tmpdir(), `ovlfs-${kind === 'fuse' ? 'fusediff' : 'diff'}-${c.seed}-`));
  scratch?.(root);
  const mounted: string[] = [];
  const open: Candidate[] = [];
  try {
    const a = writeLayers(c.spec, join(root, 'a'));
    const b = writeLayers(c.spec, join(root, 'b'));
    mountKernel(a, c.mount);
    mounted.push(a.mnt);
    const oracle = new KernelCandidate('kernel', a.mnt);
    open.push(oracle);
    const cand = await startCandidate(kind, b, c.mount, mounted, root);
    open.push(cand);

    const opDiffs: OpDiff[] = [];
    for (let i = 0; i < c.ops.length; i++) {
      const op = c.ops[i] as Op;
      const rk = await oracle.apply(op);
      const rc = await cand.apply(op);
      trace?.(i, op, rk, rc);
      if (canon(rk) !== canon(rc)) opDiffs.push({ index: i, op, kernel: rk, candidate: rc });
    }
    const kernelTree = await oracle.walk();
    const treeDiffs = diffTrees(kernelTree, await cand.walk());

    // For the FUSE mount this unmounts and waits for the daemon to exit, so B's layers are at rest.
    await cand.close();
    open.splice(open.indexOf(cand), 1);
    if (kind === 'kernel') {
      umount(b.mnt);
      mounted.splice(mounted.indexOf(b.mnt), 1);
    }
    mountKernel(b, c.mount);
    mounted.push(b.mnt);
    const again = new KernelCandidate('kernel-over-candidate', b.mnt);
    open.push(again);
    const remountDiffs = diffTrees(kernelTree, await again.walk());
    return { opDiffs, treeDiffs, remountDiffs };
  } finally {
    for (const c2 of open) await c2.close().catch(() => undefined);
    for (const m of mounted.reverse()) {
      try {
        umount(m);
      } catch {
        // keep going: the temp dir removal below reports what is left
      }
    }
    rmSync(root, { recursive: true, force: true });
  }
}

async function startCandidate(kind: CandidateKind, b: LayerDirs, mount: MountOptions, mounted: string[], scratch: string): Promise<Candidate> {
  if (kind === 'kernel') {
    mountKernel(b, mount);
    mounted.push(b.mnt);
    return new KernelCandidate('kernel-B', b.mnt);
  }
  if (kind === 'fuse') return FuseCandidate.start(b, mount, scratch);
  return new OvlfsCandidate(
    openOverlay({
      lowerdir: b.lowers, upperdir: b.upper, workdir: b.work, redirect_dir: mount.redirectDir, metacopy: mount.metacopy,
      node_cache: mount.nodeCache,
    }),
  );
}

export function failed(o: Outcome): boolean {
  return o.opDiffs.length + o.treeDiffs.length + o.remountDiffs.length > 0;
}

/** What must stay true while shrinking: the same first failure, with the same answers. */
function signature(o: Outcome, ops: Op[]): string | null {
  const d = o.opDiffs[0];
  if (d) return `op ${canon(ops[d.index])} ${canon(d.kernel)} ${canon(d.candidate)}`;
  const t = o.treeDiffs[0] ?? o.remountDiffs[0];
  if (t) return `${o.treeDiffs.length > 0 ? 'tree' : 'remount'} ${canon(t)}`;
  return null;
}

/** Greedy delta debugging over the op list (the layers stay as generated). Bounded by `budgetMs`. */
export async function shrink(c: Case, kind: CandidateKind, first: Outcome, budgetMs: number): Promise<Op[]> {
  const deadline = Date.now() + budgetMs;
  let ops = c.ops;
  const d = first.opDiffs[0];
  if (d) ops = ops.slice(0, d.index + 1);
  const want = signature(first, c.ops);
  const keeps = async (cand: Op[]): Promise<boolean> => {
    try {
      return signature(await runCase({ ...c, ops: cand }, kind), cand) === want;
    } catch {
      return false;
    }
  };
  for (let chunk = Math.max(1, ops.length >> 1); chunk >= 1 && Date.now() < deadline; chunk >>= 1) {
    // With an op failure the failing op is last and must stay.
    const fixed = d ? 1 : 0;
    for (let at = ops.length - fixed - chunk; at >= 0 && Date.now() < deadline; at -= chunk) {
      const cand = [...ops.slice(0, at), ...ops.slice(at + chunk)];
      if (await keeps(cand)) ops = cand;
    }
    if (chunk === 1) break;
  }
  return ops;
}

/** The layers as readable lines: "l1 /d0/ opaque", "u /f1 = 'abc' 644", "l0 /s0 -> ../f0". */
export function describeSpec(spec: LayersSpec): string[] {
  const out: string[] = [];
  const visit = (layer: string, node: SpecNode, path: string): void => {
    if (node.kind !== 'dir') return;
    for (const [name, child] of Object.entries(node.children)) {
      const p = `${path}/${name}`;
      if (child.kind === 'dir') {
        out.push(`${layer} ${p}/ ${child.mode.toString(8)}${child.opaque ? ' opaque' : ''}`);
        visit(layer, child, p);
      } else if (child.kind === 'file') {
        const c = child.content.length > 24 ? `${JSON.stringify(child.content.slice(0, 24))}… (${child.content.length} bytes)` : JSON.stringify(child.content);
        out.push(`${layer} ${p} = ${c} ${child.mode.toString(8)}`);
      } else if (child.kind === 'symlink') out.push(`${layer} ${p} -> ${child.target}`);
      else if (child.kind === 'whiteout') out.push(`${layer} ${p} (whiteout)`);
      else out.push(`${layer} ${p} == hardlink to /${child.to}`);
    }
  };
  spec.lowers.forEach((n, i) => visit(`l${i}`, n, ''));
  visit('u', spec.upper, '');
  return out;
}

/** A failing seed as text: the first few op disagreements and tree differences. */
export function report(seed: number, o: Outcome, kind: CandidateKind): string {
  const lines = [`seed ${seed}: ${kind} disagrees with the kernel (reproduce: OVLFS_DIFF_SEED=${seed})`];
  for (const d of o.opDiffs.slice(0, 3)) {
    lines.push(`  op #${d.index} ${canon(d.op)}\n    kernel:    ${canon(d.kernel)}\n    ${kind}: ${canon(d.candidate)}`);
  }
  if (o.opDiffs.length > 3) lines.push(`  … ${o.opDiffs.length - 3} more op disagreements`);
  for (const [what, list] of [['merged tree', o.treeDiffs], ['kernel over candidate layers', o.remountDiffs]] as const) {
    for (const t of list.slice(0, 4)) {
      lines.push(`  ${what} ${t.path}\n    kernel:    ${canon(t.kernel)}\n    ${kind}: ${canon(t.candidate)}`);
    }
    if (list.length > 4) lines.push(`  … ${list.length - 4} more ${what} differences`);
  }
  return lines.join('\n');
}
