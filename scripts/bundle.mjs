// Bundles the ovlfs command for start-up time: every container start runs it, and loading a few hundred
// small modules (or TypeScript through tsx) cost more than the mount itself. One ESM bundle per entry
// point in one flat directory, with the code they share split into chunks, so that the command loads
// only argument parsing, and the core is loaded by the process that serves. `node scripts/bundle.mjs
// [OUTDIR]`, default dist/bin; run by `npm run build` and by `npm ci` (prepare).
import { build } from 'esbuild';
import { chmodSync, copyFileSync, rmSync } from 'node:fs';
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
// Runnable as they are. ovlfs.sh is the one for containers/storage's mount_program: in that form only
// one Node starts before the mount answers (src/cli/ovlfs.sh).
chmodSync(`${outdir}/ovlfs.js`, 0o755);
copyFileSync(`${root}src/cli/ovlfs.sh`, `${outdir}/ovlfs.sh`);
chmodSync(`${outdir}/ovlfs.sh`, 0o755);
