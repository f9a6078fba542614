// Bundles the ovlfs command for start-up time: every container start runs it, and loading a few hundred
// small modules (or TypeScript through tsx) cost more than the mount itself. One ESM bundle per entry
// point in one flat directory, with the code they share split into chunks, so that the command loads
// only argument parsing, and the core is loaded by the process that serves. `node scripts/bundle.mjs
// [OUTDIR]`, default dist/bin; run by `npm run build` and by `npm ci` (prepare).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = process.argv[2] ?? `${root}dist/bin`;

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
  outExtension: { '.js': '.js' },
  banner: { js: '' },
  logLevel: 'warning',
});
