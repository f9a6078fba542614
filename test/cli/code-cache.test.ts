// Proves the code cache of the command's bundle (src/cli/code-cache.ts): a bundle runs from its cache; a
// cache that is missing, made for other bytes, garbage, or rejected by V8 (made under other V8 flags) is
// not used, and saveCodeCache writes it anew; nothing is written until then, and a directory that cannot
// take it (a read-only mount) costs nothing but the cache. Then through ovlfs.sh, built as `npm run build`
// builds it: a daemon leaves a cache when its mount ends, the next daemon starts from it as it is (V8
// accepts it after the daemon's own flag changes), and a stale cache or a read-only install still mounts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { runWithCodeCache, saveCodeCache } from '../../src/cli/code-cache.js';
import { isMounted } from '../../src/mount-table.js';
import { buildOvlfs } from '../support/build-ovlfs.js';
import { fuseMountSkipReason } from '../support/command-fixture.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let base = '';
before(() => {
  base = mkdtempSync(join(tmpdir(), 'ovlfs-code-cache-'));
});
after(() => {
  if (base !== '') rmSync(base, { recursive: true, force: true });
});

/** A CommonJS file that uses what require() gives a module, and that compiles a function when it runs. */
function bundle(dir: string, answer: number): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'b.cjs');
  writeFileSync(file, `const { basename } = require('node:path');\nfunction f(x) { return x + ${answer}; }\nmodule.exports = { answer: f(0), name: basename(__filename), dir: __dirname };\n`);
  return file;
}

/** Inode and modification time: a cache that was used as it was keeps both. */
function identity(p: string): string {
  const st = statSync(p, { bigint: true });
  return `${st.ino}:${st.mtimeNs}`;
}

describe('runWithCodeCache and saveCodeCache', () => {
  test('no cache: runs, and writes one only when asked; then runs from it and leaves it as it is', () => {
    const dir = join(base, 'fresh');
    const file = bundle(dir, 42);
    assert.deepEqual(runWithCodeCache(file), { answer: 42, name: 'b.cjs', dir });
    assert.equal(existsSync(`${file}.cache`), false, 'a cache written before saveCodeCache');
    saveCodeCache();
    assert.ok(existsSync(`${file}.cache`), 'no cache written');
    const made = identity(`${file}.cache`);
    saveCodeCache(); // once only
    assert.equal(identity(`${file}.cache`), made, 'written twice');
    assert.deepEqual(runWithCodeCache(file), { answer: 42, name: 'b.cjs', dir });
    saveCodeCache();
    assert.equal(identity(`${file}.cache`), made, 'a cache that fits was written again');
    assert.deepEqual(readdirSync(dir).sort(), ['b.cjs', 'b.cjs.cache'], 'temp files left behind');
  });

  test('a cache made for other bytes of the same length, or garbage, is not used, and is replaced', () => {
    const dir = join(base, 'stale');
    const file = bundle(dir, 41);
    runWithCodeCache(file);
    saveCodeCache();
    // Same length, other code, in place: V8 alone would take this cache (it checks the source's length only).
    const made = identity(`${file}.cache`);
    bundle(dir, 43);
    assert.deepEqual(runWithCodeCache(file), { answer: 43, name: 'b.cjs', dir });
    saveCodeCache();
    const rewritten = identity(`${file}.cache`);
    assert.notEqual(rewritten, made, 'the cache of the old bytes was kept');
    // A new file of the same length in its place (a rebuild).
    writeFileSync(`${file}.new`, readFileSync(file, 'utf8').replace('43', '44'));
    renameSync(`${file}.new`, file);
    assert.deepEqual(runWithCodeCache(file), { answer: 44, name: 'b.cjs', dir });
    saveCodeCache();
    assert.notEqual(identity(`${file}.cache`), rewritten, 'the cache of the replaced file was kept');
    writeFileSync(`${file}.cache`, Buffer.alloc(4096, 0xa5));
    assert.deepEqual(runWithCodeCache(file), { answer: 44, name: 'b.cjs', dir });
    saveCodeCache();
    assert.notDeepEqual(readFileSync(`${file}.cache`), Buffer.alloc(4096, 0xa5), 'garbage left in place');
  });

  test('a cache V8 rejects (made under other V8 flags) is replaced, and the bundle runs', () => {
    const dir = join(base, 'flags');
    const file = bundle(dir, 5);
    runWithCodeCache(file);
    saveCodeCache();
    const made = identity(`${file}.cache`);
    const code = `const m = await import(${JSON.stringify(new URL('../../src/cli/code-cache.ts', import.meta.url).href)}); process.stdout.write(JSON.stringify(m.runWithCodeCache(${JSON.stringify(file)}))); m.saveCodeCache();`;
    const r = spawnSync(process.execPath, ['--no-opt', '--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { answer: 5, name: 'b.cjs', dir });
    assert.notEqual(identity(`${file}.cache`), made, 'the rejected cache was kept');
  });

  test('a read-only directory: runs, writes nothing', { skip: process.getuid?.() !== 0 && 'a read-only bind mount needs root' }, (t) => {
    const dir = join(base, 'ro');
    const file = bundle(dir, 7);
    assert.equal(spawnSync('mount', ['--bind', dir, dir]).status, 0);
    t.after(() => spawnSync('umount', ['-l', dir]));
    const ro = spawnSync('mount', ['-o', 'remount,bind,ro', dir], { encoding: 'utf8' });
    assert.equal(ro.status, 0, ro.stderr);
    assert.deepEqual(runWithCodeCache(file), { answer: 7, name: 'b.cjs', dir });
    saveCodeCache();
    assert.deepEqual(readdirSync(dir), ['b.cjs']);
  });
});

const mountReason = fuseMountSkipReason();

describe('ovlfs.sh and the bundle\'s cache', { skip: mountReason }, () => {
  let bin = '';
  let cache = '';
  let n = 0;

  before(() => {
    bin = dirname(buildOvlfs(join(base, 'build')));
    cache = join(bin, 'ovlfs-main.cjs.cache');
    mkdirSync(join(base, 'l'));
    writeFileSync(join(base, 'l/f'), 'from below\n');
  });

  /** Mounts through ovlfs.sh, reads and writes through the mount, unmounts and waits for the daemon to end. */
  async function mountAndUse(): Promise<void> {
    const dir = join(base, `c${++n}`);
    for (const d of ['diff', 'work', 'merged']) mkdirSync(join(dir, d), { recursive: true });
    const mnt = join(dir, 'merged');
    const r = spawnSync(join(bin, 'ovlfs.sh'), ['-o', `lowerdir=l,upperdir=${dir}/diff,workdir=${dir}/work,,volatile`, '--pidfile', join(dir, 'pid'), '--log', join(dir, 'log'), mnt], { cwd: base, encoding: 'utf8', timeout: 60_000, env: { ...process.env, OVLFS_SPARE: '0' } });
    try {
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(mnt, 'f'), 'utf8'), 'from below\n');
      writeFileSync(join(mnt, 'f'), 'from above\n');
      assert.equal(readFileSync(join(dir, 'diff/f'), 'utf8'), 'from above\n');
    } finally {
      spawnSync('fusermount3', ['-u', mnt]);
      if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
    }
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    for (let i = 0; i < 200 && existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); i++) await new Promise((res) => setTimeout(res, 50));
    assert.match(readFileSync(join(dir, 'log'), 'utf8'), /unmounted/);
  }

  test('no cache: mounts, and the daemon leaves one; the next daemon uses it as it is', async () => {
    assert.equal(existsSync(cache), false, 'the build left a cache');
    await mountAndUse();
    assert.ok(existsSync(cache), 'no cache written');
    const written = identity(cache);
    await mountAndUse();
    assert.equal(identity(cache), written, 'the cache was not used (missing, or rejected by V8)');
  });

  test('a stale cache: mounts, and the cache is replaced', async () => {
    writeFileSync(cache, Buffer.alloc(8192, 0x5a));
    await mountAndUse();
    assert.notDeepEqual(readFileSync(cache), Buffer.alloc(8192, 0x5a));
  });

  test('a read-only install without a cache: mounts', async (t) => {
    rmSync(cache);
    assert.equal(spawnSync('mount', ['--bind', bin, bin]).status, 0);
    t.after(() => spawnSync('umount', ['-l', bin]));
    const ro = spawnSync('mount', ['-o', 'remount,bind,ro', bin], { encoding: 'utf8' });
    assert.equal(ro.status, 0, ro.stderr);
    await mountAndUse();
    assert.equal(existsSync(cache), false);
    assert.deepEqual(readdirSync(bin).filter((f) => f.startsWith('ovlfs-main.cjs.')), [], 'temp files left behind');
  });
});
