// The benchmark workloads. Each builds its layers once in a scratch dir, gives every peer its own
// upper and work dir, and times the same code on every peer's view.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';

import { rows, runPeers, type Row } from './lib/harness.js';
import type { Peer, PeerId, Stack, View } from './lib/peers.js';
import { ROOT } from './lib/peers.js';
import { nowMs, prng, timeMs } from './lib/stats.js';
import { Cleanup, loopFs, run, tempDir } from './lib/sys.js';
import { readTgz, type TarEntry } from './lib/tar.js';

export interface Ctx {
  quick: boolean;
  peers: Peer[];
  cleanup: Cleanup;
  log: (msg: string) => void;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function put(path: string, data: string | Uint8Array): void {
  fs.mkdirSync(dirname(path), { recursive: true });
  fs.writeFileSync(path, data);
}

function cpTree(src: string, dst: string): void {
  run('cp', ['-a', `${src}/.`, dst]);
}

/** Lowers + an upper template + a flat merged copy, under one scratch dir. */
interface Layout {
  base: string;
  lowers: string[];
  upperTemplate: string;
  flat: string;
}

function layout(ctx: Ctx, tag: string, nLowers: number, parent?: string): Layout {
  const base = tempDir(ctx.cleanup, tag, parent);
  // Short names: the kernel mount gets them relative to base, so 128 lowers fit in one page of options.
  const lowers = Array.from({ length: nLowers }, (_, i) => join(base, String(i)));
  for (const l of lowers) fs.mkdirSync(l);
  const upperTemplate = join(base, 'upper');
  const flat = join(base, 'flat');
  fs.mkdirSync(upperTemplate);
  fs.mkdirSync(flat);
  return { base, lowers, upperTemplate, flat };
}

/** A peer's own stack: a copy of the upper template and an empty work dir next to it. */
function stackFor(ctx: Ctx, lay: Layout, opts: { copyFlat?: boolean } = {}): Stack {
  const own = tempDir(ctx.cleanup, 'peer', lay.base);
  const upper = join(own, 'upper');
  const work = join(own, 'work');
  fs.mkdirSync(upper);
  fs.mkdirSync(work);
  cpTree(lay.upperTemplate, upper);
  let flat = lay.flat;
  if (opts.copyFlat) {
    flat = join(own, 'flat');
    fs.mkdirSync(flat);
    cpTree(lay.flat, flat);
  }
  return { lowers: lay.lowers, upper, work, flat };
}

const notLayered = (p: Peer): boolean => p.id === 'raw' || p.id === 'memfs';

// ---------------------------------------------------------------------------------------------------
// Small files: stat + readFile of ~1,000 files over 3 lowers, a third of them copied up.

export async function smallFiles(ctx: Ctx): Promise<Row[]> {
  const N = 1000;
  const lay = layout(ctx, 'small', 3);
  const paths: string[] = [];
  for (let i = 0; i < N; i++) {
    const p = `/src/d${i % 10}/f${i}.js`;
    paths.push(p);
    const body = Buffer.alloc(200 + ((i * 37) % 3800), 97 + (i % 26));
    for (const l of lay.lowers) fs.mkdirSync(join(l, dirname(p)), { recursive: true });
    put(join(lay.lowers[i % 3]!, p), body);
    if (i % 3 === 1) put(join(lay.upperTemplate, p), Buffer.concat([body, Buffer.from('// copied up\n')]));
    put(join(lay.flat, p), i % 3 === 1 ? Buffer.concat([body, Buffer.from('// copied up\n')]) : body);
  }
  const runs = await runPeers({
    peers: ctx.peers,
    reps: ctx.quick ? 3 : 11,
    inner: 3,
    cleanup: ctx.cleanup,
    warmup: true,
    prepare: () => stackFor(ctx, lay),
    body: (v) => {
      const { fs: f, root } = v;
      const stat = timeMs(() => {
        for (const p of paths) f.statSync(root + p);
      });
      const read = timeMs(() => {
        for (const p of paths) f.readFileSync(root + p);
      });
      const both = timeMs(() => {
        for (const p of paths) {
          f.statSync(root + p);
          f.readFileSync(root + p);
        }
      });
      return { stat, readFile: read, 'stat+readFile': both };
    },
    log: ctx.log,
  });
  return rows('small', runs, 'raw', [
    { name: 'stat', ops: N },
    { name: 'readFile', ops: N },
    { name: 'stat+readFile', ops: N },
  ]);
}

// ---------------------------------------------------------------------------------------------------
// Large file: sequential 1 MiB reads and random 4 KiB reads of one file in a lower layer.

export async function largeFile(ctx: Ctx): Promise<Row[]> {
  const size = ctx.quick ? 128 * MiB : 1 * GiB;
  const randomReads = ctx.quick ? 5000 : 20000;
  const lay = layout(ctx, 'large', 2);
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const fd = fs.openSync(join(lay.lowers[1]!, 'big.bin'), 'w');
  for (let off = 0; off < size; off += MiB) fs.writeSync(fd, chunk, 0, MiB, off);
  fs.closeSync(fd);
  // The flat copy is the same inode, so every peer reads the same cached pages.
  fs.linkSync(join(lay.lowers[1]!, 'big.bin'), join(lay.flat, 'big.bin'));
  const rnd = prng(42);
  const offsets = Array.from({ length: randomReads }, () => Math.floor(rnd() * (size / (4 * KiB))) * 4 * KiB);
  const buf = Buffer.alloc(MiB);
  const runs = await runPeers({
    peers: ctx.peers,
    reps: ctx.quick ? 3 : 5,
    cleanup: ctx.cleanup,
    warmup: true,
    notApplicable: (p) => (p.id === 'memfs' && !ctx.quick ? 'skipped: a 1 GiB file in memfs is a 1 GiB heap object' : undefined),
    prepare: () => stackFor(ctx, lay),
    body: (v) => {
      const { fs: f, root } = v;
      const seq = timeMs(() => {
        const h = f.openSync(`${root}/big.bin`, 'r');
        let pos = 0;
        while (pos < size) {
          const n = f.readSync(h, buf, 0, Math.min(MiB, size - pos), pos);
          if (n <= 0) break;
          pos += n;
        }
        f.closeSync(h);
        if (pos !== size) throw new Error(`read ${pos} of ${size} bytes`);
      });
      const random = timeMs(() => {
        const h = f.openSync(`${root}/big.bin`, 'r');
        for (const o of offsets) f.readSync(h, buf, 0, 4 * KiB, o);
        f.closeSync(h);
      });
      return { 'seq 1 MiB': seq, 'random 4 KiB': random };
    },
    log: ctx.log,
  });
  return rows('large', runs, 'raw', [
    { name: 'seq 1 MiB', ops: size / MiB },
    { name: 'random 4 KiB', ops: randomReads },
  ]).map((r) => ({ ...r, note: r.note ?? `${size / MiB} MiB file` }));
}

// ---------------------------------------------------------------------------------------------------
// readdir of merged directories (entries spread over 3 lowers, a tenth of them in two): the size curve.

export async function readdirSizes(ctx: Ctx): Promise<Row[]> {
  const sizes = ctx.quick ? [10, 1000, 10000] : [10, 100, 1000, 10000, 100000];
  const lay = layout(ctx, 'readdir', 3);
  for (const n of sizes) {
    const d = `r${n}`;
    for (const l of [...lay.lowers, lay.flat]) fs.mkdirSync(join(l, d));
    for (let k = 0; k < n; k++) {
      const name = `entry-${String(k).padStart(6, '0')}.txt`;
      fs.writeFileSync(join(lay.lowers[k % 3]!, d, name), '');
      if (k % 10 === 0) fs.writeFileSync(join(lay.lowers[(k + 1) % 3]!, d, name), '');
      fs.writeFileSync(join(lay.flat, d, name), '');
    }
  }
  const budget = ctx.quick ? 5000 : 20000;
  const slow = new Map<string, number>();
  let t0 = 0;
  const iters = (n: number): number => Math.max(1, Math.round(budget / n));
  const runs = await runPeers({
    peers: ctx.peers,
    reps: ctx.quick ? 3 : 5,
    inner: 2,
    cleanup: ctx.cleanup,
    warmup: true,
    prepare: () => stackFor(ctx, lay),
    body: (v, peer) => {
      const out: Record<string, number> = {};
      for (const n of sizes) {
        // A peer that needs seconds for one listing is measured once, not 20 times.
        const key = `${peer.id} ${n}`;
        if ((slow.get(key) ?? 0) >= 2) continue;
        const p = `${v.root}/r${n}`;
        const it = iters(n);
        let done = 0;
        t0 = nowMs();
        const t = timeMs(() => {
          for (; done < it; done++) {
            if (v.fs.readdirSync(p).length !== n) throw new Error(`readdir ${n}: wrong count`);
            if (done === 0 && nowMs() - t0 > 3000) {
              done++;
              slow.set(key, (slow.get(key) ?? 0) + 1);
              break;
            }
          }
        });
        out[`readdir ${n}`] = (t * it) / done;
      }
      return out;
    },
    log: ctx.log,
  });
  return rows('readdir', runs, 'raw', sizes.map((n) => ({ name: `readdir ${n}`, ops: iters(n), x: n }))).map((r) =>
    (slow.get(`${r.peer} ${r.x}`) ?? 0) > 0 && r.status === 'ok' ? { ...r, note: 'over 3 s per listing: measured once per repetition until it took 3 s twice' } : r);
}

// ---------------------------------------------------------------------------------------------------
// Metadata churn: create, rename and unlink 10,000 files in a directory that exists in a lower.

export async function churn(ctx: Ctx): Promise<Row[]> {
  const N = ctx.quick ? 300 : 10000;
  const lay = layout(ctx, 'churn', 2);
  for (let i = 0; i < 10; i++) {
    put(join(lay.lowers[1]!, 'work', `old${i}`), 'x');
    put(join(lay.flat, 'work', `old${i}`), 'x');
  }
  const data = Buffer.from('hello\n');
  const runs = await runPeers({
    peers: ctx.peers,
    reps: ctx.quick ? 3 : 2,
    cleanup: ctx.cleanup,
    warmup: ctx.quick,
    prepare: (p) => stackFor(ctx, lay, { copyFlat: p.id === 'raw' }),
    body: (v) => {
      const { fs: f, root } = v;
      const d = `${root}/work`;
      const create = timeMs(() => {
        for (let i = 0; i < N; i++) f.writeFileSync(`${d}/n${i}`, data);
      });
      const rename = timeMs(() => {
        for (let i = 0; i < N; i++) f.renameSync(`${d}/n${i}`, `${d}/m${i}`);
      });
      const unlink = timeMs(() => {
        for (let i = 0; i < N; i++) f.unlinkSync(`${d}/m${i}`);
      });
      return { create, rename, unlink, 'create+rename+unlink': create + rename + unlink };
    },
    log: ctx.log,
  });
  return rows('churn', runs, 'raw', ['create', 'rename', 'unlink', 'create+rename+unlink'].map((name) => ({ name, ops: N })));
}

// ---------------------------------------------------------------------------------------------------
// Copy-up: the first write to a lower file, on ext4 and on XFS with reflink, in loop filesystems.

function sizeLabel(n: number): string {
  return n >= GiB ? `${n / GiB} GiB` : n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`;
}

export async function copyUp(ctx: Ctx): Promise<Row[]> {
  const sizes = ctx.quick ? [1 * KiB, 16 * MiB, 128 * MiB] : [1 * KiB, 100 * MiB, 1 * GiB];
  const out: Row[] = [];
  for (const kind of ['ext4', 'xfs'] as const) {
    const mark = ctx.cleanup.mark;
    try {
      const mnt = loopFs(ctx.cleanup, kind, ctx.quick ? 2 : 8);
      const lay = layout(ctx, `copyup-${kind}`, 1, mnt);
      const chunk = Buffer.alloc(MiB, 7);
      for (const s of sizes) {
        const fd = fs.openSync(join(lay.lowers[0]!, `c${s}`), 'w');
        for (let off = 0; off < s; off += MiB) fs.writeSync(fd, chunk, 0, Math.min(MiB, s - off), off);
        fs.closeSync(fd);
      }
      run('sync', []);
      const one = Buffer.from('!');
      const runs = await runPeers({
        peers: ctx.peers,
        reps: ctx.quick ? 2 : 3,
        cleanup: ctx.cleanup,
        fresh: true,
        notApplicable: (p) =>
          p.id === 'unionfs' ? 'no copy-up: a write opens the lower file in place and changes the lower layer'
          : p.id === 'memfs' ? 'one layer: nothing to copy up'
          : undefined,
        prepare: (p) => {
          const st = stackFor(ctx, lay);
          return p.id === 'raw' ? { ...st, flat: st.upper } : st;
        },
        body: (v, p) => {
          const out: Record<string, number> = {};
          for (const s of sizes) {
            out[`${kind} ${sizeLabel(s)}`] = timeMs(() => {
              if (p.id === 'raw') {
                // The floor: what a copy-up must at least do, cp --reflink=auto then the write.
                fs.copyFileSync(join(lay.lowers[0]!, `c${s}`), `${v.root}/c${s}`, fs.constants.COPYFILE_FICLONE);
              }
              const h = v.fs.openSync(`${v.root}/c${s}`, 'r+');
              v.fs.writeSync(h, one, 0, 1, 0);
              v.fs.closeSync(h);
            });
          }
          return out;
        },
        log: ctx.log,
      });
      out.push(...rows('copyup', runs, 'kernel', sizes.map((s) => ({ name: `${kind} ${sizeLabel(s)}`, ops: 1, x: s }))));
    } finally {
      ctx.cleanup.runFrom(mark);
    }
  }
  return out.map((r) => (r.peer === 'raw' && r.status === 'ok' ? { ...r, note: 'cp --reflink=auto + write (no overlay)' } : r));
}

// ---------------------------------------------------------------------------------------------------
// The real job: untar an npm package over an older copy of it in a lower layer, then git init/add/status.

function packTarball(ctx: Ctx): { name: string; entries: TarEntry[] } {
  const dir = tempDir(ctx.cleanup, 'pack');
  const pkgDir = join(ROOT, 'node_modules', 'typescript');
  const outName = run('npm', ['pack', pkgDir, '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: dir }).trim().split('\n').pop()!;
  return { name: outName, entries: readTgz(fs.readFileSync(join(dir, outName))) };
}

function untar(v: View, entries: TarEntry[], into: string): void {
  const made = new Set<string>();
  const mkdirp = (d: string): void => {
    if (made.has(d)) return;
    v.fs.mkdirSync(d, { recursive: true, mode: 0o755 });
    made.add(d);
  };
  for (const e of entries) {
    const p = `${v.root}${into}/${e.path.replace(/^package\/?/, '')}`;
    if (e.type === 'dir') mkdirp(p);
    else {
      mkdirp(dirname(p));
      v.fs.writeFileSync(p, e.data, { mode: e.mode });
    }
  }
}

export async function realJob(ctx: Ctx): Promise<Row[]> {
  const { name, entries } = packTarball(ctx);
  const files = entries.filter((e) => e.type === 'file');
  const bytes = files.reduce((a, e) => a + e.data.length, 0);
  ctx.log(`  ${name}: ${files.length} files, ${(bytes / MiB).toFixed(1)} MiB`);
  const lay = layout(ctx, 'job', 2);
  // The lower holds an older install of the package (as an image layer would); the job overwrites it.
  const realView: View = { fs: fs as unknown as View['fs'], root: lay.lowers[1]!, close: async () => {} };
  untar(realView, entries, '/pkg');
  cpTree(lay.lowers[1]!, lay.flat);
  const gitOk = spawnSync('git', ['--version']).status === 0;
  const runs = await runPeers({
    peers: ctx.peers,
    reps: ctx.quick ? 1 : 3,
    cleanup: ctx.cleanup,
    fresh: true,
    prepare: (p) => stackFor(ctx, lay, { copyFlat: p.id === 'raw' }),
    body: (v, p) => {
      const out: Record<string, number> = { untar: timeMs(() => untar(v, entries, '/pkg')) };
      if (p.mount && gitOk) {
        const t = nowMs();
        const r = spawnSync('sh', ['-c', 'git init -q && git add -A && git status --porcelain >/dev/null'], {
          cwd: `${v.root}/pkg`,
          env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
          encoding: 'utf8',
        });
        out.git = nowMs() - t;
        if (r.status !== 0) throw new Error(`git failed: ${r.stderr.trim().slice(0, 200)}`);
        out['untar+git'] = out.untar! + out.git;
      }
      return out;
    },
    log: ctx.log,
  });
  const res = rows('job', runs, 'raw', [{ name: 'untar', ops: files.length }]);
  for (const c of ['git', 'untar+git']) {
    for (const r of rows('job', runs, 'raw', [{ name: c, ops: 1 }])) {
      const peer = ctx.peers.find((p) => p.id === r.peer)!;
      const untarRow = res.find((u) => u.peer === r.peer);
      if (!peer.mount && untarRow?.status === 'ok') res.push({ ...r, status: 'n/a', note: 'git needs a mount: this peer is an in-process fs' });
      else res.push(r);
    }
  }
  return res.map((r) => ({ ...r, note: r.note ?? (r.case === 'untar' ? `${name}, ${files.length} files, ${(bytes / MiB).toFixed(1)} MiB` : undefined) }));
}

// ---------------------------------------------------------------------------------------------------
// Growth: lookup + stat against the number of lower layers; the files sit in the bottom-most one.

export async function layerCount(ctx: Ctx): Promise<Row[]> {
  const counts = ctx.quick ? [1, 8, 32] : [1, 2, 8, 32, 128];
  const T = 200;
  const out: Row[] = [];
  for (const L of counts) {
    const mark = ctx.cleanup.mark;
    try {
      const lay = layout(ctx, `layers${L}`, L);
      lay.lowers.forEach((l, i) => put(join(l, 'a', 'b', `x${i}`), 'x'));
      for (let k = 0; k < T; k++) {
        put(join(lay.lowers[L - 1]!, 'a', 'b', `t${k}`), 'data');
        put(join(lay.flat, 'a', 'b', `t${k}`), 'data');
      }
      const paths = Array.from({ length: T }, (_, k) => `/a/b/t${k}`);
      const runs = await runPeers({
        peers: ctx.peers,
        reps: ctx.quick ? 2 : 5,
        cleanup: ctx.cleanup,
        fresh: true,
        prepare: () => stackFor(ctx, lay),
        body: (v) => {
          const pass = (): number => timeMs(() => {
            for (const p of paths) v.fs.statSync(v.root + p);
          });
          const cold = pass();
          const warm = Math.min(pass(), pass(), pass());
          return { 'first stat': cold, stat: warm };
        },
        log: ctx.log,
      });
      out.push(...rows('layers', runs, 'raw', [
        { name: 'first stat', ops: T, x: L },
        { name: 'stat', ops: T, x: L },
      ]));
    } finally {
      ctx.cleanup.runFrom(mark);
    }
  }
  return out.map((r) => (r.peer === 'raw' || r.peer === 'memfs' ? { ...r, note: r.note ?? 'flat: no layers' } : r));
}

export { notLayered, sizeLabel, type PeerId };
