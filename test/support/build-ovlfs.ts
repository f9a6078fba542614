// The ovlfs command as `npm run build` builds it, for tests that run it as installed (ovlfs.sh, the
// bundle and its code cache) rather than from the sources.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Builds the ovlfs command into `dir`/dist/bin as `npm run build` does (scripts/bundle.mjs: the command's
 * bundle and its launcher, in about a second), with the repository's node_modules beside it. Returns the
 * command's entry, to run with node.
 */
export function buildOvlfs(dir: string): string {
  mkdirSync(dir, { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/bundle.mjs'), join(dir, 'dist/bin')], { encoding: 'utf8', timeout: 120_000 });
  const main = join(dir, 'dist/bin/ovlfs.cjs');
  if (r.status !== 0 || !existsSync(main)) throw new Error(`building ovlfs failed: ${r.stdout}${r.stderr}`);
  return main;
}
