// Differential test: ovlfs against the kernel overlay, op by op, on random layers (see run.ts).
//   OVLFS_DIFF_SEEDS=100         how many seeds (default 60, about half a minute)
//   OVLFS_DIFF_SEED=123          run only this seed (printed by every failure)
//   OVLFS_DIFF_FIRST_SEED=1000   where the seed range starts
//   OVLFS_DIFF_CANDIDATE=kernel  kernel vs kernel on identical copies: validates the harness itself
//   OVLFS_DIFF_METACOPY=1        also mount some seeds with metacopy=on
//   OVLFS_DIFF_SHRINK_MS=20000   time spent shrinking a failing op list (0 turns it off)
//   OVLFS_DIFF_NODE_CACHE=2      the library's node_cache= for every seed (default: the library's own)
//   OVLFS_DIFF_EVICTION_SEEDS=6  how many more seeds run with node_cache=2, where nodes are evicted all the time
// Replay one seed op by op with both answers: node --import tsx test/differential/trace.ts SEED
// The same test with the ovlfs FUSE mount as the candidate: fuse.test.ts (trace.ts SEED fuse).
//
// The kernel is the oracle, oddities included. The ones these runs meet (ovlfs must match them):
// - rename(2) of a directory that exists in a lower layer gives EXDEV unless redirect_dir=on (half the seeds).
// - A merged directory reports st_nlink 1 (ovl_getattr: counting subdirs across layers is not worth it).
// - index=off: copying up one name of a lower hard link breaks the link; the copy keeps the lower st_ino only
//   when the lower file had nlink 1, since two files may not share one. The other lower names still report the
//   lower nlink (2 for a pair whose link is now broken). Compared as st_nlink and "same file" classes (ino).
// - Copy-up restores the parent directory's mtime afterwards, so a parent that was only copied up keeps its time.
// - With redirect_dir=on, rename(2) of a lower directory copies it up (its upper parent gets a new mtime and
//   trusted.overlay.impure) before it checks the target, so even a rename that fails with ENOTEMPTY leaves
//   the source merged (st_nlink 1) and its parent with a new mtime.
// - fstat of an open lower file that has since been unlinked (a whiteout now hides it) reports the lower
//   file's own st_nlink (1), not 0: the real file is still linked in its layer.
// - A file opened read-only before its copy-up reads the upper data afterwards (stacked file ops, since 4.19).
// And one that is avoided rather than compared: in a non-merged directory (one layer only, or opaque) the
// kernel lists whiteouts as 'c' entries that lstat answers ENOENT; layers.ts does not generate them there.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { canon, describeSpec, failed, makeCase, report, runCase, shrink, type CandidateKind } from '../support/differential/run.js';

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** Why the test cannot run here, or null: it needs root and a working `mount -t overlay`. */
function cannotRun(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (mount -t overlay, trusted.* xattrs, mknod)';
  const root = mkdtempSync(join(tmpdir(), 'ovlfs-diff-probe-'));
  try {
    for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(root, d));
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${root}/l,upperdir=${root}/u,workdir=${root}/w`, `${root}/m`], { stdio: 'pipe' });
    execFileSync('umount', [`${root}/m`], { stdio: 'pipe' });
    execFileSync('python3', ['-c', 'import os'], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `mount -t overlay or python3 failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const reason = cannotRun();
const only = env('OVLFS_DIFF_SEED');
const firstSeed = Number(env('OVLFS_DIFF_FIRST_SEED') ?? '1');
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: Number(env('OVLFS_DIFF_SEEDS') ?? '60') }, (_, i) => firstSeed + i);
// The candidate is ovlfs unless OVLFS_DIFF_CANDIDATE=kernel asks for the harness against itself. There is
// no fallback: the harness imports src/index.ts's openOverlay statically, so an entry point that is
// missing, renamed or no longer fits fails type-checking and loading.
const kind: CandidateKind = env('OVLFS_DIFF_CANDIDATE') === 'kernel' ? 'kernel' : 'ovlfs';
const shrinkMs = Number(env('OVLFS_DIFF_SHRINK_MS') ?? '20000');
if (reason) console.log(`# differential test skipped: ${reason}`);
else console.log(`# differential: ${kind} vs kernel overlay, seeds ${seeds[0]}..${seeds[seeds.length - 1]}`);

// Eviction must change nothing: a few more seeds with a cache of two unreferenced nodes.
const nodeCache = env('OVLFS_DIFF_NODE_CACHE') === undefined ? undefined : Number(env('OVLFS_DIFF_NODE_CACHE'));
const evictionSeeds = only !== undefined || kind !== 'ovlfs' || nodeCache !== undefined ? []
  : Array.from({ length: Number(env('OVLFS_DIFF_EVICTION_SEEDS') ?? '6') }, (_, i) => firstSeed + seeds.length + i);
const runs = [...seeds.map((seed) => ({ seed, nodeCache })), ...evictionSeeds.map((seed) => ({ seed, nodeCache: 2 }))];

for (const { seed, nodeCache } of runs) {
  const label = nodeCache === undefined ? '' : `, node_cache=${nodeCache}`;
  test(`differential seed ${seed} (${kind} vs kernel${label})`, { skip: reason ?? false }, async () => {
    const c = makeCase(seed, env('OVLFS_DIFF_METACOPY') === '1');
    c.mount.nodeCache = nodeCache;
    const o = await runCase(c, kind);
    if (!failed(o)) return;
    let msg = report(seed, o, kind);
    msg += `\n  mount: redirect_dir=${c.mount.redirectDir ? 'on' : 'off'} metacopy=${c.mount.metacopy ? 'on' : 'off'}`;
    if (shrinkMs > 0) {
      const ops = await shrink(c, kind, o, shrinkMs);
      msg += `\n  shrunk op list (${ops.length} of ${c.ops.length}):\n${ops.map((x) => `    ${canon(x)}`).join('\n')}`;
    }
    msg += `\n  layers:\n${describeSpec(c.spec).map((l) => `    ${l}`).join('\n')}`;
    throw new Error(msg);
  });
}
