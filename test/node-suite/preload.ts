// Preloaded (`node --import tsx --import ./preload.ts test-fs-x.js`) into each of Node's own fs
// tests: opens an overlay whose lower layer is Node's source tree (OVLFS_NODE_ROOT) and whose upper
// layer is a fresh temporary directory, and makes `fs`, `node:fs`, `fs/promises` and
// `node:fs/promises` mean the overlay's fs (through translate.ts) for every module under that tree:
// the test, `../common` and its helpers. Modules outside the tree (Node's internals, tsx, ovlfs
// itself) keep the real fs.
import * as fs from 'node:fs';
import Module, { register } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { openOverlay } from '../../src/index.js';
import { makeTranslatingFs } from './translate.js';

const hostRoot = process.env.OVLFS_NODE_ROOT;
if (hostRoot === undefined) throw new Error('OVLFS_NODE_ROOT is not set');

// The runner makes (and removes) OVLFS_NODE_BASE; the overlay stays open until the process ends,
// since common/tmpdir's own 'exit' handler still uses it.
const base = process.env.OVLFS_NODE_BASE ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-node-suite-'));
fs.mkdirSync(path.join(base, 'upper'), { recursive: true });
fs.mkdirSync(path.join(base, 'work'), { recursive: true });
const overlay = openOverlay({ lowerdir: [hostRoot], upperdir: path.join(base, 'upper'), workdir: path.join(base, 'work') });
const { fs: translated } = makeTranslatingFs(overlay.fs, hostRoot);
const promises = translated.promises;

const REPLACED: Record<string, unknown> = { fs: translated, 'node:fs': translated, 'fs/promises': promises, 'node:fs/promises': promises };

// CommonJS: Node's tests and ../common are CommonJS.
type Load = (request: string, parent: { filename?: string } | undefined, isMain: boolean) => unknown;
const mod = Module as unknown as { _load: Load };
const originalLoad = mod._load;
mod._load = function load(this: unknown, request, parent, isMain) {
  if (Object.hasOwn(REPLACED, request) && parent?.filename?.startsWith(hostRoot + '/')) return REPLACED[request];
  return originalLoad.call(this, request, parent, isMain);
};

// ES modules (a few tests are .mjs): a resolve hook sends the same four names to a module that
// re-exports the overlay's objects, which it finds on a non-enumerable global (common's leak check
// only sees enumerable ones).
Object.defineProperty(globalThis, Symbol.for('ovlfs.nodeSuite'), { value: { fs: translated, promises }, enumerable: false });
// Module hooks run on a thread of their own, which costs every test its start-up time: only the
// ES-module tests get them.
if (process.argv[1]?.endsWith('.mjs')) register(new URL('./esm-hooks.mjs', import.meta.url), {
  data: {
    root: hostRoot,
    fsKeys: Object.keys(translated).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k)),
    promisesKeys: Object.keys(promises as object).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k)),
  },
});
