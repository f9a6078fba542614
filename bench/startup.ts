// Start-up as a container engine sees it: ovlfs as containers/storage's mount_program against
// fuse-overlayfs, in the same run, interleaved, as ratios. `node --import tsx bench/startup.ts [--rounds=N]`
// [--rt] (as root, with podman, runc, busybox-static and fuse-overlayfs installed). Three figures:
//   mount     exec of the mount program until it has returned and a stat through the mount has answered
//             (containers/storage waits for the program to exit and then uses the mount)
//   run       podman run --rm IMAGE true
//   workload  podman run --rm IMAGE sh -c '200 x (write a small file, read a 1 MiB binary)'
// Each is the median of the rounds; the ratio is ovlfs / fuse-overlayfs. ovlfs is run as ovlfs.sh (as the
// README configures it, spare daemons on), and for comparison as ovlfs.sh with spares off (OVLFS_SPARE=0)
// and as `node ovlfs.cjs`. Writes bench/results/startup.json.
// --baseline=REV adds ovlfs as of git revision REV (built as that revision built itself: bundled, and run as
// its ovlfs.sh, where it has them), to compare a change with what it replaced in one run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildOvlfs, makeImageTar, makeSandbox, podmanSkipReason, unmountAll, which, type Sandbox } from '../test/podman/harness.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 7);
// --rt: the mount programs (both, and the daemons they leave) run at SCHED_FIFO priority, so that other
// work on a shared machine does not decide the figures. podman itself cannot (runc puts its processes in
// cpu cgroups that allot no real-time time), so the podman figures still feel that load.
const rt = process.argv.includes('--rt');
const baselineRev = process.argv.find((a) => a.startsWith('--baseline='))?.slice(11);

/**
 * ovlfs as of `rev`, built in `dir` as that revision built itself: bundled by its scripts/bundle.mjs where it
 * has one, else transpiled file by file. Returns the command to run: its ovlfs.sh where it has one.
 */
function buildRevision(rev: string, dir: string): string {
  mkdirSync(join(dir, 'src'), { recursive: true });
  const archive = spawnSync('sh', ['-c', `git -C ${ROOT} archive ${rev} src scripts package.json | tar -x -C ${dir}`], { encoding: 'utf8' });
  if (archive.status !== 0) throw new Error(`git archive ${rev} failed: ${archive.stderr}`);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  if (existsSync(join(dir, 'scripts/bundle.mjs'))) {
    const r = spawnSync(process.execPath, [join(dir, 'scripts/bundle.mjs'), join(dir, 'dist/bin')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`bundling ${rev} failed: ${r.stderr}`);
    const sh = join(dir, 'dist/bin/ovlfs.sh');
    return existsSync(sh) ? sh : `${process.execPath} ${join(dir, 'dist/bin/ovlfs.js')}`; // revisions from before ovlfs.sh
  }
  const sources = spawnSync('find', [join(dir, 'src'), '-name', '*.ts'], { encoding: 'utf8' }).stdout.split('\n').filter((f) => f !== '');
  const r = spawnSync(join(ROOT, 'node_modules/.bin/esbuild'), [...sources, `--outdir=${join(dir, 'dist')}`, `--outbase=${join(dir, 'src')}`, '--format=esm', '--platform=node', '--target=node20', '--log-level=error'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building ${rev} failed: ${r.stderr}`);
  return `${process.execPath} ${join(dir, 'dist/cli/main.js')}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function timed(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function must(r: { status: number | null; stderr: string }, what: string): void {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr}`);
}

const WORKLOAD = 'i=0; while [ $i -lt 200 ]; do echo $i > /tmp/f$i; cat /data/blob > /dev/null; i=$((i+1)); done';

async function main(): Promise<void> {
  const reason = podmanSkipReason() ?? (which('fuse-overlayfs') === '' ? 'fuse-overlayfs is not installed' : undefined);
  if (reason) {
    process.stdout.write(`startup bench skipped: ${reason}\n`);
    return;
  }
  const loadBefore = loadavg().map((x) => x.toFixed(1)).join(' ');
  const base = join(ROOT, 'bench/tmp/startup');
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  try {
    const ovlfsMain = buildOvlfs(join(base, 'build'));
    const prefix = rt ? 'chrt -f 10 ' : '';
    // ovlfs: ovlfs.sh, as the README configures it (a spare daemon takes the mount where one waits, else
    // one Node starts before the mount answers); no spare: the same with spares off (every mount starts
    // Node); ovlfs.cjs: the same build run as `node ovlfs.cjs`, whose daemon is a second Node. Spares wait
    // under the bench's own directory, one per program (a spare of one build refuses another's mounts;
    // the podman sandboxes set theirs), and are stopped at the end.
    const sh = join(dirname(ovlfsMain), 'ovlfs.sh');
    const programs: Record<string, string> = {
      ovlfs: `${prefix}${sh}`,
      'no spare': `env OVLFS_SPARE=0 ${prefix}${sh}`,
      'ovlfs.cjs': `${prefix}${process.execPath} ${ovlfsMain}`,
      'fuse-overlayfs': `${prefix}${which('fuse-overlayfs')}`,
    };
    if (baselineRev !== undefined) programs[`ovlfs@${baselineRev}`] = `${prefix}${buildRevision(baselineRev, join(base, 'baseline'))}`;
    const series = (): Record<string, number[]> => Object.fromEntries(Object.keys(programs).map((name) => [name, []]));
    const tar = makeImageTar(base);

    // 1. exec -> mount live, straight, with the layout and options storage uses.
    const layers = join(base, 'layers');
    for (const d of ['l/A/diff', 'l/B/diff']) mkdirSync(join(layers, d), { recursive: true });
    writeFileSync(join(layers, 'l/A/diff/f'), 'x');
    const mount = series();
    // The floor for any mount program written for Node: one bare Node start-up, at the same priority.
    const bare: number[] = [];
    // Round -1, not timed: the first mount after an install leaves the code cache that later ones start from.
    for (let i = -1; i < rounds; i++) {
      const [ncmd, ...npre] = `${prefix}${process.execPath}`.split(' ');
      const b = timed(() => must(spawnSync(ncmd!, [...npre, '-e', '0'], { encoding: 'utf8' }), 'node -e 0'));
      if (i >= 0) bare.push(b);
      for (const [name, prog] of Object.entries(programs)) {
        const c = join(layers, `c-${name}-${i}`);
        for (const d of ['diff', 'work', 'merged']) mkdirSync(join(c, d), { recursive: true });
        const [cmd, ...pre] = prog.split(' ');
        const ms = timed(() => {
          must(spawnSync(cmd!, [...pre, '-o', `lowerdir=l/A/diff:l/B/diff,upperdir=${c}/diff,workdir=${c}/work,,volatile`, `${c}/merged`], { cwd: layers, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: { ...process.env, OVLFS_SPARE_DIR: join(base, 'spares', name.replace(/[^\w.-]/g, '_')) } }), name);
          statSync(join(c, 'merged/f'));
        });
        if (i >= 0) mount[name]!.push(ms);
        must(spawnSync('fusermount3', ['-u', `${c}/merged`], { encoding: 'utf8' }), 'fusermount3 -u');
      }
    }

    // 2. and 3. through podman, one storage per program.
    const sandboxes: Record<string, Sandbox> = {};
    for (const [name, prog] of Object.entries(programs)) {
      const s = makeSandbox(join(base, name), { mountProgram: prog });
      must(s.podman(['import', tar, 'localhost/bb']), `${name}: podman import`);
      must(s.podman(['run', '--rm', 'localhost/bb', 'true']), `${name}: warm-up run`);
      sandboxes[name] = s;
    }
    const run = series();
    const work = series();
    for (let i = 0; i < rounds; i++) {
      for (const [name, s] of Object.entries(sandboxes)) {
        run[name]!.push(timed(() => must(s.podman(['run', '--rm', 'localhost/bb', 'true']), `${name}: run`)));
        work[name]!.push(timed(() => must(s.podman(['run', '--rm', 'localhost/bb', 'sh', '-c', WORKLOAD]), `${name}: workload`)));
      }
    }
    for (const s of Object.values(sandboxes)) s.podman(['rm', '-a', '-f']);

    const rows = [
      { what: 'exec -> mount live (ms)', data: mount },
      { what: 'podman run --rm IMAGE true (ms)', data: run },
      { what: 'podman run: 200 x (write a file, read 1 MiB) (ms)', data: work },
    ].map((r) => ({
      what: r.what,
      ovlfs: median(r.data.ovlfs!),
      fuseOverlayfs: median(r.data['fuse-overlayfs']!),
      ratio: median(r.data.ovlfs!) / median(r.data['fuse-overlayfs']!),
      noSpare: median(r.data['no spare']!),
      noSpareRatio: median(r.data['no spare']!) / median(r.data['fuse-overlayfs']!),
      ovlfsJs: median(r.data['ovlfs.cjs']!),
      ovlfsJsRatio: median(r.data['ovlfs.cjs']!) / median(r.data['fuse-overlayfs']!),
      ...(baselineRev !== undefined ? { baseline: median(r.data[`ovlfs@${baselineRev}`]!), baselineRatio: median(r.data[`ovlfs@${baselineRev}`]!) / median(r.data['fuse-overlayfs']!) } : {}),
      samples: r.data,
    }));
    const meta = {
      date: new Date().toISOString(),
      rounds,
      baseline: baselineRev,
      node: process.version,
      cpus: cpus().length,
      loadBefore,
      loadAfter: loadavg().map((x) => x.toFixed(1)).join(' '),
      podman: spawnSync('podman', ['--version'], { encoding: 'utf8' }).stdout.trim(),
      fuseOverlayfs: /fuse-overlayfs: version (\S+)/.exec(spawnSync('fuse-overlayfs', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? 'unknown',
      realtime: rt,
    };
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench/results/startup.json'), JSON.stringify({ meta, rows, nodeStartMs: median(bare) }, null, 2) + '\n');
    const b = baselineRev !== undefined ? ` ovlfs@${baselineRev} | its ratio |` : '';
    process.stdout.write(`| | ovlfs (ovlfs.sh) | fuse-overlayfs | ovlfs / fuse-overlayfs | ovlfs.sh, no spare | its ratio | node ovlfs.cjs | its ratio |${b}\n|---|---|---|---|---|---|---|---|${b === '' ? '' : '---|---|'}\n`);
    for (const r of rows) {
      const br = r.baseline !== undefined && r.baselineRatio !== undefined ? ` ${r.baseline.toFixed(0)} | ${r.baselineRatio.toFixed(2)}× |` : '';
      process.stdout.write(`| ${r.what} | ${r.ovlfs.toFixed(0)} | ${r.fuseOverlayfs.toFixed(0)} | ${r.ratio.toFixed(2)}× | ${r.noSpare.toFixed(0)} | ${r.noSpareRatio.toFixed(2)}× | ${r.ovlfsJs.toFixed(0)} | ${r.ovlfsJsRatio.toFixed(2)}× |${br}\n`);
    }
    process.stdout.write(`| node -e 0, for scale (ms) | ${median(bare).toFixed(0)} | | | | | | |\n`);
    process.stdout.write(`(${rounds} rounds, medians; load average before: ${meta.loadBefore}, after: ${meta.loadAfter}${meta.realtime ? '; mount programs at SCHED_FIFO (--rt)' : ''}; ${meta.podman}; fuse-overlayfs ${meta.fuseOverlayfs})\n`);
  } finally {
    unmountAll(base);
    if (existsSync(base) && !process.argv.includes('--keep')) rmSync(base, { recursive: true, force: true });
  }
}

await main();
