// Bundles the ovlfs command for start-up time: every container start runs it, and loading a few hundred
// small modules (or TypeScript through tsx) cost more than the mount itself. Two CommonJS files in one
// directory: ovlfs-main.cjs, the command (src/cli/main.ts with everything it loads, the overlay core
// included), and ovlfs.cjs, the launcher that runs it from its V8 code cache (src/cli/launch.ts,
// code-cache.ts). CommonJS, so that Node starts no ES module loader. `node scripts/bundle.mjs [OUTDIR]`,
// default dist/bin; run by `npm run build` and by `npm ci` (prepare).
import { build } from 'esbuild';
import { chmodSync, copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = process.argv[2] ?? `${root}dist/bin`;

// A cache, or files of an earlier layout, must not stay behind.
rmSync(outdir, { recursive: true, force: true });
const common = {
  absWorkingDir: root,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // Packages (the native addons among them) stay in node_modules, found from outdir.
  packages: 'external',
  // The sources are ES modules: import.meta.url is the bundle's own file. import.meta.resolve serves only
  // a run from sources under tsx (a worker's boot in src/fuse/bridge/mount.ts), never a bundle.
  define: { 'import.meta.url': '__ovlfsModuleUrl', 'import.meta.resolve': 'undefined' },
  banner: { js: "var __ovlfsModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
};
await build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: `${outdir}/ovlfs-main.cjs` });
await build({ ...common, entryPoints: ['src/cli/launch.ts'], outfile: `${outdir}/ovlfs.cjs` });
// The command's path before it became one CommonJS bundle, for mount helpers and scripts made then
// (an ES module: the package's type).
writeFileSync(
  `${outdir}/ovlfs.js`,
  "#!/usr/bin/env node\n// Runs ovlfs.cjs, the ovlfs command; kept for what was set up to run this file.\nimport { createRequire } from 'node:module';\n\ncreateRequire(import.meta.url)('./ovlfs.cjs');\n",
);
// Runnable as they are. ovlfs.sh is the one for containers/storage's mount_program: in that form only
// one Node starts before the mount answers (src/cli/ovlfs.sh).
for (const f of ['ovlfs.cjs', 'ovlfs.js']) chmodSync(`${outdir}/${f}`, 0o755);
copyFileSync(`${root}src/cli/ovlfs.sh`, `${outdir}/ovlfs.sh`);
chmodSync(`${outdir}/ovlfs.sh`, 0o755);
