// Runs Node's test/parallel/test-fs-* files twice, natively and with fs swapped for an overlay's
// (preload.ts), as parallel child processes, and classifies each file: pass, fail, skip (the test
// skipped itself), or cannot-express (it needs an OS object the overlay cannot be: see
// CANNOT_EXPRESS). `node --import tsx test/node-suite/run.ts [ROOT] [filter...]` prints the table.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Tests that need something an in-process fs cannot be, with the reason. The README lists the
 * same exceptions.
 */
export const CANNOT_EXPRESS: Record<string, string> = {
  'test-fs-mkdir.js': 'process.chdir into a directory that exists only in the overlay',
  'test-fs-realpath.js': 'process.chdir into a directory that exists only in the overlay',
  'test-fs-whatwg-url.js': 'process.chdir into a directory that exists only in the overlay',
  'test-fs-rm.js': 'runs git in a child process inside a directory that exists only in the overlay',
  'test-fs-read-stream.js': 'mkfifo and echo in child processes, on a path inside the overlay',
  'test-fs-readfile-pipe-large.js': 'a child process reads a file that exists only in the overlay',
  'test-fs-readfilesync-pipe-large.js': 'a child process reads a file that exists only in the overlay',
  'test-fs-syncwritestream.js': 'hands an overlay descriptor to a child process as its stdout',
  'test-fs-promises-file-handle-read-worker.js': 'transfers a FileHandle to a Worker thread',
  'test-fs-readdir-recursive.js': 'listens on a Unix domain socket inside the overlay',
  'test-fs-cp.mjs': 'listens on Unix domain sockets inside the overlay (the rest of the file passes with those two cases taken out)',
  'test-fs-utimes-y2K38.js': 'runs touch(1) in a child process on a path inside the overlay',
  'test-fs-promises-file-handle-aggregate-errors.js': "patches Node's internal FileHandle class (--expose-internals)",
  'test-fs-promises-file-handle-close-errors.js': "patches Node's internal FileHandle class (--expose-internals)",
  'test-fs-promises-file-handle-op-errors.js': "patches Node's internal FileHandle class (--expose-internals)",
  'test-fs-readdir-types.js': "patches Node's internal fs binding (--expose-internals)",
  'test-fs-promises-readfile.js': "patches Node's internal fs binding (--expose-internals) to make fstat lie",
  'test-fs-sync-fd-leak.js': "patches Node's internal fs binding (--expose-internals)",
  'test-fs-utils-get-dirents.js': "calls Node's internal getDirents, which reads the host (--expose-internals)",
};

/**
 * Expressible tests that still fail on ovlfs, with what is missing. node-suite.test.ts fails when
 * one of them starts to pass, so this list only shrinks.
 */
export const KNOWN_FAILING: Record<string, string> = {
};

export type Outcome = 'pass' | 'fail' | 'skip' | 'timeout';

export interface FileResult {
  file: string;
  native: Outcome;
  ovlfs: Outcome;
  /** Set when the file is in CANNOT_EXPRESS. */
  cannot?: string;
  /** Set when the file is in KNOWN_FAILING. */
  known?: string;
  output: string;
  ms: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * preload.ts and ovlfs bundled into one ES module (esbuild, which tsx brings along): a child then
 * starts in a tenth of the time it takes to compile TypeScript through tsx. The bundle sits under
 * node_modules/.cache so that its external packages (native addons) still resolve.
 */
export async function buildPreload(): Promise<string> {
  const out = path.join(here, '..', '..', 'node_modules', '.cache', 'ovlfs-node-suite');
  fs.mkdirSync(out, { recursive: true });
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [path.join(here, 'preload.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: path.join(out, 'preload.mjs'),
    logLevel: 'error',
  });
  fs.copyFileSync(path.join(here, 'esm-hooks.mjs'), path.join(out, 'esm-hooks.mjs'));
  return path.join(out, 'preload.mjs');
}

/** The `// Flags: …` line of a test, as Node's test runner reads it. */
function flagsOf(file: string): string[] {
  const head = fs.readFileSync(file, 'utf8').slice(0, 1500);
  const m = /\/\/ Flags:\s+(--.*)$/m.exec(head);
  return m ? m[1].trim().split(/\s+/) : [];
}

function runFile(root: string, file: string, preload: string | undefined, slot: number, timeoutMs: number): Promise<{ outcome: Outcome; output: string; ms: number }> {
  const abs = path.join(root, 'test', 'parallel', file);
  const args = [...flagsOf(abs)];
  if (preload !== undefined) args.push('--import', preload);
  args.push(abs);
  const started = Date.now();
  const base = preload === undefined ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-node-suite-'));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, OVLFS_NODE_ROOT: root, OVLFS_NODE_BASE: base, TEST_THREAD_ID: String(slot), NODE_TEST_DIR: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const take = (b: Buffer): void => {
      if (output.length < 20000) output += b.toString();
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (base !== undefined) fs.rmSync(base, { recursive: true, force: true });
      const ms = Date.now() - started;
      if (timedOut) resolve({ outcome: 'timeout', output, ms });
      else if (code === 0 && /^1\.\.0 # Skipped/m.test(output)) resolve({ outcome: 'skip', output, ms });
      else resolve({ outcome: code === 0 ? 'pass' : 'fail', output, ms });
    });
  });
}

export function listTests(root: string, filters: string[] = []): string[] {
  return fs.readdirSync(path.join(root, 'test', 'parallel'))
    .filter((f) => /^test-fs-.*\.(js|mjs)$/.test(f))
    .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
    .sort();
}

/** Runs every file natively and on ovlfs, `jobs` child processes at a time. */
export async function runSuite(root: string, files: string[], opts: { jobs?: number; timeoutMs?: number; native?: boolean } = {}): Promise<FileResult[]> {
  const jobs = opts.jobs ?? Math.max(2, os.availableParallelism() * 2);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const results: FileResult[] = [];
  const queue: Array<{ file: string; overlay: boolean }> = [];
  for (const file of files) {
    if (opts.native !== false) queue.push({ file, overlay: false });
    queue.push({ file, overlay: true });
  }
  const byFile = new Map<string, FileResult>();
  for (const file of files) {
    const r: FileResult = { file, native: 'skip', ovlfs: 'skip', output: '', ms: 0 };
    if (CANNOT_EXPRESS[file] !== undefined) r.cannot = CANNOT_EXPRESS[file];
    if (KNOWN_FAILING[file] !== undefined) r.known = KNOWN_FAILING[file];
    byFile.set(file, r);
    results.push(r);
  }
  const preload = await buildPreload();
  let next = 0;
  const worker = async (slot: number): Promise<void> => {
    while (next < queue.length) {
      const { file, overlay } = queue[next++];
      const r = await runFile(root, file, overlay ? preload : undefined, slot, timeoutMs);
      const entry = byFile.get(file)!;
      if (overlay) {
        entry.ovlfs = r.outcome;
        entry.output = r.output;
        entry.ms = r.ms;
      } else {
        entry.native = r.outcome;
      }
    }
  };
  await Promise.all(Array.from({ length: jobs }, (_, i) => worker(i)));
  return results;
}

export function summarize(results: FileResult[]): string {
  const count = (pick: (r: FileResult) => boolean): number => results.filter(pick).length;
  const expressible = results.filter((r) => r.cannot === undefined);
  return [
    `natively: ${count((r) => r.native === 'pass')} pass, ${count((r) => r.native === 'skip')} skip, ${count((r) => r.native === 'fail' || r.native === 'timeout')} fail`,
    `ovlfs: ${expressible.filter((r) => r.ovlfs === 'pass').length} pass, ${expressible.filter((r) => r.ovlfs === 'skip').length} skip, ` +
      `${expressible.filter((r) => r.ovlfs === 'fail' || r.ovlfs === 'timeout').length} fail of ${expressible.length} expressible; ` +
      `${results.length - expressible.length} cannot be expressed`,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [root, ...filters] = process.argv.slice(2);
  const files = listTests(root, filters);
  const t0 = Date.now();
  const results = await runSuite(root, files, { native: process.env.NATIVE !== '0' });
  for (const r of results) {
    console.log(`${r.file.padEnd(60)} native=${r.native.padEnd(7)} ovlfs=${r.ovlfs.padEnd(7)} ${r.cannot ? `(cannot: ${r.cannot})` : ''} ${r.ms}ms`);
  }
  if (process.env.VERBOSE) {
    for (const r of results) if (r.ovlfs === 'fail' || r.ovlfs === 'timeout') console.log(`\n=== ${r.file}\n${r.output.split('\n').slice(0, 40).join('\n')}`);
  }
  console.log(summarize(results));
  console.log(`${((Date.now() - t0) / 1000).toFixed(1)}s`);
}
