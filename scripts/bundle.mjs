// Bundles the ovlfs command for start-up time: every container start runs it, and loading a few hundred
// small modules (or TypeScript through tsx) cost more than the mount itself. One ESM bundle per entry
// point in one flat directory, with the code they share split into chunks, so that the command loads
// only argument parsing, and the core is loaded by the process that serves. `node scripts/bundle.mjs
// [OUTDIR]`, default dist/bin; run by `npm run build` and by `npm ci` (prepare).
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = process.argv[2] ?? `${root}dist/bin`;

// Chunk names carry a hash: chunks of an earlier build would stay behind.
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: {
    // The names are the files' names in outdir; the code finds its worker and file system by them.
    ovlfs: 'src/cli/main.ts',
    worker: 'src/fuse/bridge/worker.ts',
    'overlay-fs': 'src/fuse/overlay-fs.ts',
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Native addons and their loaders stay in node_modules.
  packages: 'external',
  define: { OVLFS_BUNDLE: 'true' },
  chunkNames: 'chunk-[hash]',
  logLevel: 'warning',
});
// Runnable as it is, e.g. as containers/storage's mount_program.
chmodSync(`${outdir}/ovlfs.js`, 0o755);
