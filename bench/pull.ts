// Pull time and throughput: `ovlfs pull` against `skopeo copy` + `umoci unpack` of the same image from
// the same docker-registry on 127.0.0.1, interleaved, in the same run, as ratios.
// `node --import tsx bench/pull.ts [--rounds=N] [--mb=N]` (as root, with docker-registry, skopeo and
// umoci installed). The image has three layers (random data, text, and a layer of changes and
// deletions), about --mb MiB unpacked. ovlfs is the bundled command (dist/bin, as installed).
// Both sides start cold: their target directories are removed before each round. ovlfs's figure is
// the layers unpacked one directory each (what a mount stacks); umoci's is the one flattened rootfs.
// Writes bench/results/pull.json.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildOvlfs } from '../test/podman/harness.js';
import { missingTools, startRegistry } from '../test/oci/registry-fixture.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 5);
const mb = Number(process.argv.find((a) => a.startsWith('--mb='))?.slice(5) ?? 48);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function run(cmd: string, args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function duSize(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  }
  return total;
}

/** Three layers made by umoci: random data, text, then changes and deletions. */
function buildImage(base: string): string {
  const layout = join(base, 'src-layout');
  const bundle = join(base, 'src-bundle');
  run('umoci', ['init', '--layout', layout]);
  run('umoci', ['new', '--image', `${layout}:v1`]);
  const layer = (fill: (root: string) => void): void => {
    rmSync(bundle, { recursive: true, force: true });
    run('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
    fill(join(bundle, 'rootfs'));
    run('umoci', ['repack', '--image', `${layout}:v1`, bundle]);
  };
  const bytes = mb << 20;
  layer((root) => {
    mkdirSync(join(root, 'data'), { recursive: true });
    for (let i = 0, n = 0; n < bytes / 2; i++) {
      const size = 1024 + ((i * 7919) % 65536) * 4;
      writeFileSync(join(root, 'data', `blob-${i}`), randomBytes(size));
      n += size;
    }
  });
  layer((root) => {
    mkdirSync(join(root, 'text'), { recursive: true });
    const line = 'the quick brown fox jumps over the lazy dog; ';
    for (let i = 0, n = 0; n < bytes / 2; i++) {
      const text = `${i}: ${line.repeat(40 + (i % 400))}\n`;
      writeFileSync(join(root, 'text', `file-${i}.txt`), text);
      n += text.length;
    }
  });
  layer((root) => {
    for (const name of readdirSync(join(root, 'data')).filter((_, i) => i % 5 === 0)) rmSync(join(root, 'data', name));
    writeFileSync(join(root, 'text', 'file-0.txt'), 'changed\n');
  });
  rmSync(bundle, { recursive: true, force: true });
  return layout;
}

async function main(): Promise<void> {
  const reason = process.getuid?.() !== 0 ? 'needs root' : missingTools('docker-registry', 'skopeo', 'umoci');
  if (reason !== undefined) {
    process.stdout.write(`pull bench skipped: ${reason}\n`);
    return;
  }
  const base = join(ROOT, 'bench/tmp/pull');
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const cleanups: (() => void)[] = [];
  try {
    const ovlfs = buildOvlfs(join(base, 'build'));
    const registry = await startRegistry({ after: (fn) => void cleanups.push(fn as () => void) }, base);
    const layout = buildImage(base);
    const ref = `docker://${registry.host}/bench/image:v1`;
    run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, ref]);
    const compressed = duSize(join(layout, 'blobs'));

    const times: Record<'ovlfs' | 'skopeo+umoci', number[]> = { ovlfs: [], 'skopeo+umoci': [] };
    let unpacked = 0;
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? (['ovlfs', 'skopeo+umoci'] as const) : (['skopeo+umoci', 'ovlfs'] as const);
      for (const who of order) {
        const target = join(base, `target-${who}`);
        rmSync(target, { recursive: true, force: true });
        spawnSync('sync');
        if (who === 'ovlfs') {
          times.ovlfs.push(run(process.execPath, [ovlfs, 'pull', '--tls-verify=false', ref, target]));
          unpacked = duSize(join(target, 'layers'));
        } else {
          const copy = run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', ref, `oci:${target}:v1`]);
          times['skopeo+umoci'].push(copy + run('umoci', ['unpack', '--image', `${target}:v1`, join(target, 'bundle')]));
        }
      }
    }
    const o = median(times.ovlfs);
    const p = median(times['skopeo+umoci']);
    const result = {
      date: new Date().toISOString(),
      cpus: cpus().length,
      loadavg: loadavg().map((x) => Number(x.toFixed(1))),
      rounds,
      compressedMiB: Number((compressed / 2 ** 20).toFixed(1)),
      unpackedMiB: Number((unpacked / 2 ** 20).toFixed(1)),
      medianMs: { ovlfs: Math.round(o), 'skopeo+umoci': Math.round(p) },
      rangeMs: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, [Math.round(Math.min(...v)), Math.round(Math.max(...v))]])),
      throughputMiBps: { ovlfs: Number((compressed / 2 ** 20 / (o / 1000)).toFixed(1)), 'skopeo+umoci': Number((compressed / 2 ** 20 / (p / 1000)).toFixed(1)) },
      ratio: Number((o / p).toFixed(2)),
    };
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench/results/pull.json'), JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    for (const fn of cleanups) fn();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
