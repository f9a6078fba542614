// Replays one seed and prints every op with both answers, marking disagreements with '!!'.
//   node --import tsx test/support/differential/trace.ts SEED [ovlfs|fuse|kernel]
import { canon, describeSpec, makeCase, runCase, type CandidateKind } from './run.js';

const seed = Number(process.argv[2] ?? '1');
const arg = process.argv[3];
const kind: CandidateKind = arg === 'kernel' || arg === 'fuse' ? arg : 'ovlfs';
const c = makeCase(seed, process.env['OVLFS_DIFF_METACOPY'] === '1');
console.log(`seed ${seed}, ${kind} vs kernel, redirect_dir=${c.mount.redirectDir ? 'on' : 'off'} metacopy=${c.mount.metacopy ? 'on' : 'off'}`);
for (const l of describeSpec(c.spec)) console.log(`  ${l}`);
const o = await runCase(c, kind, (i, op, rk, rc) => {
  const same = canon(rk) === canon(rc);
  console.log(`${same ? '  ' : '!!'} #${i} ${canon(op)} -> ${canon(rk)}${same ? '' : `  ${kind}: ${canon(rc)}`}`);
});
for (const t of o.treeDiffs) console.log(`!! tree ${t.path}: kernel ${canon(t.kernel)} ${kind} ${canon(t.candidate)}`);
for (const t of o.remountDiffs) console.log(`!! remount ${t.path}: kernel ${canon(t.kernel)} remounted ${canon(t.candidate)}`);
