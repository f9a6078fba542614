// The operations both sides run, and a seeded generator for them. The generator never looks at results,
// so a sequence is a pure function of (seed, layers): a failing sequence can be replayed and shrunk.
import { constants } from 'node:fs';
import type { Visible } from './layers.js';
import type { Rng } from './prng.js';

export type Op =
  | { op: 'stat' | 'lstat' | 'readdir' | 'readlink' | 'readFile' | 'unlink' | 'rmdir'; path: string }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'truncate'; path: string; len: number }
  | { op: 'utime'; path: string; atime: number; mtime: number }
  | { op: 'writeFile'; path: string; data: string }
  | { op: 'rename' | 'link' | 'sameIno'; from: string; to: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'open'; h: number; path: string; flags: number; mode: number }
  | { op: 'close' | 'fstat'; h: number }
  | { op: 'fstatIno'; h: number; path: string }
  | { op: 'read'; h: number; len: number }
  | { op: 'pread'; h: number; len: number; pos: number }
  | { op: 'write'; h: number; data: string }
  | { op: 'ftruncate'; h: number; len: number };

export type OpName = Op['op'];

/** What one call answered: a value, or the errno name it failed with. */
export type Result = { ok: true; value: unknown } | { ok: false; code: string };

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW, O_DIRECTORY } = constants;

const WEIGHTS: Record<OpName | 'heldCopyUp', number> = {
  stat: 7, lstat: 6, readdir: 6, readlink: 3, readFile: 8, unlink: 5, rmdir: 4, mkdir: 5, chmod: 3,
  truncate: 3, utime: 2, writeFile: 5, rename: 7, link: 3, sameIno: 2, symlink: 3, open: 10, close: 3,
  fstat: 2, fstatIno: 3, read: 5, pread: 7, write: 6, ftruncate: 2, heldCopyUp: 4,
};

function openFlags(rng: Rng): number {
  // Read-only opens dominate: a handle held on a lower file across a copy-up is the case that matters most.
  let f = rng.chance(0.5) ? O_RDONLY : rng.chance(0.5) ? O_RDWR : O_WRONLY;
  if (f !== O_RDONLY || rng.chance(0.1)) {
    if (rng.chance(0.6)) f |= O_CREAT;
    if (rng.chance(0.15)) f |= O_EXCL;
    if (rng.chance(0.2)) f |= O_TRUNC;
    if (rng.chance(0.15)) f |= O_APPEND;
  }
  if (rng.chance(0.05)) f |= O_NOFOLLOW;
  if (rng.chance(0.05)) f |= O_DIRECTORY;
  return f;
}

export function genOps(rng: Rng, layerPaths: readonly string[], visible: ReadonlyMap<string, Visible>, count: number): Op[] {
  // Three pools: what the merged view shows at the start, what the ops created, and everything else (whiteouts,
  // hidden names, paths through symlinks). Most picks hit real entries, so most ops do something.
  const shown = ['/', ...visible.keys()];
  const dirs = ['/', ...[...visible].filter(([, v]) => v.kind === 'dir').map(([p]) => p)];
  const files = [...visible].filter(([, v]) => v.kind === 'file').map(([p]) => p);
  const lowerFiles = [...visible].filter(([, v]) => v.kind === 'file' && v.lower).map(([p]) => p);
  const created = new Set<string>();
  const pool = new Set<string>(['/', ...layerPaths]);
  // Paths through symlinks and directories, including ones that may not exist yet.
  for (const p of layerPaths) {
    if (/\/s\d$/.test(p) || rng.chance(0.15)) pool.add(`${p}/${rng.pick(['f0', 'd0', 'f1', 'n0'])}`);
  }
  const handles: number[] = [];
  const handlePath = new Map<number, string>();
  let nextHandle = 0;
  const ops: Op[] = [];

  const path = (): string => {
    const r = rng.next();
    if (r < 0.12) {
      const dir = rng.pick(dirs);
      return `${dir === '/' ? '' : dir}/n${rng.int(0, 3)}`;
    }
    const base = r < 0.6 ? rng.pick(shown) : r < 0.85 && created.size > 0 ? rng.pick([...created]) : rng.pick([...pool]);
    if (rng.chance(0.03) && base !== '/') return `${base}/`;
    return base;
  };
  // Mostly one of the last few opened: older ones were often closed or never opened.
  const handle = (): number =>
    handles.length > 0 && rng.chance(0.95) ? rng.pick(handles.slice(-3)) : nextHandle + 1;
  const remember = (p: string): void => {
    if (!p.endsWith('/')) created.add(p);
  };
  const filePath = (): string => (files.length > 0 && rng.chance(0.6) ? rng.pick(files) : path());

  for (let i = 0; i < count; i++) {
    const name = rng.weighted(WEIGHTS);
    let op: Op;
    switch (name) {
      case 'readFile': case 'unlink':
        op = { op: name, path: filePath() };
        break;
      case 'stat': case 'lstat': case 'readdir': case 'readlink': case 'rmdir':
        op = { op: name, path: path() };
        break;
      case 'mkdir':
        op = { op: 'mkdir', path: path(), mode: rng.pick([0o755, 0o700, 0o777]) };
        remember(op.path);
        break;
      case 'chmod':
        op = { op: 'chmod', path: path(), mode: rng.pick([0o600, 0o640, 0o755, 0o700, 0o4755, 0o1777]) };
        break;
      case 'truncate':
        op = { op: 'truncate', path: filePath(), len: rng.pick([0, 1, 5, 100, 5000]) };
        break;
      case 'utime':
        op = { op: 'utime', path: path(), atime: rng.int(1_000_000_000, 1_400_000_000), mtime: rng.int(1_000_000_000, 1_400_000_000) };
        break;
      case 'writeFile':
        op = { op: 'writeFile', path: rng.chance(0.5) ? filePath() : path(), data: `W${i}:${rng.text(rng.int(0, 30))}` };
        remember(op.path);
        break;
      case 'rename': case 'link':
        op = { op: name, from: path(), to: path() };
        remember(op.to);
        break;
      case 'sameIno':
        op = { op: 'sameIno', from: path(), to: path() };
        break;
      case 'symlink':
        op = { op: 'symlink', target: rng.pick(['f0', '../f1', '/d0', '/etc/passwd', '../../..', 'd1/s0', 'n1']), path: path() };
        remember(op.path);
        break;
      case 'open': {
        const h = ++nextHandle;
        op = { op: 'open', h, path: filePath(), flags: openFlags(rng), mode: rng.pick([0o644, 0o600, 0o777]) };
        if ((op.flags & O_CREAT) !== 0) remember(op.path);
        handles.push(h);
        handlePath.set(h, op.path);
        break;
      }
      case 'close': {
        const h = handle();
        op = { op: 'close', h };
        const at = handles.indexOf(h);
        if (at >= 0) handles.splice(at, 1);
        break;
      }
      case 'fstat':
        op = { op: 'fstat', h: handle() };
        break;
      case 'fstatIno': {
        // Mostly the path the handle was opened by: its st_ino must not change across a copy-up.
        const h = handle();
        op = { op: 'fstatIno', h, path: rng.chance(0.8) ? (handlePath.get(h) ?? path()) : path() };
        break;
      }
      case 'heldCopyUp': {
        // The seeds' promise: a read-only handle opened before a copy-up reads what was written after it.
        const p = lowerFiles.length > 0 && rng.chance(0.85) ? rng.pick(lowerFiles) : path();
        const h = ++nextHandle;
        handles.push(h);
        handlePath.set(h, p);
        ops.push({ op: 'open', h, path: p, flags: O_RDONLY, mode: 0o644 });
        if (rng.chance(0.3)) ops.push({ op: 'pread', h, len: 64, pos: 0 });
        const via = rng.pick(['writeFile', 'openWrite', 'truncate', 'chmod', 'rename', 'link'] as const);
        if (via === 'writeFile') ops.push({ op: 'writeFile', path: p, data: `H${i}:${rng.text(8)}` });
        else if (via === 'truncate') ops.push({ op: 'truncate', path: p, len: 3 });
        else if (via === 'chmod') ops.push({ op: 'chmod', path: p, mode: 0o600 });
        else if (via === 'openWrite') {
          const h2 = ++nextHandle;
          handles.push(h2);
          handlePath.set(h2, p);
          ops.push({ op: 'open', h: h2, path: p, flags: O_WRONLY, mode: 0o644 });
          ops.push({ op: 'write', h: h2, data: `h${i}:${rng.text(5)}` });
        } else {
          const q = `${p.slice(0, p.lastIndexOf('/'))}/n${rng.int(0, 3)}`;
          ops.push({ op: via, from: p, to: q });
          ops.push({ op: 'writeFile', path: q, data: `R${i}:${rng.text(6)}` });
          remember(q);
        }
        op = { op: 'pread', h, len: 64, pos: 0 };
        break;
      }
      case 'read':
        op = { op: 'read', h: handle(), len: rng.pick([1, 7, 64, 10000]) };
        break;
      case 'pread':
        op = { op: 'pread', h: handle(), len: rng.pick([16, 64, 10000]), pos: rng.pick([0, 0, 0, 3, 100]) };
        break;
      case 'write':
        op = { op: 'write', h: handle(), data: `w${i}:${rng.text(rng.int(0, 20))}` };
        break;
      case 'ftruncate':
        op = { op: 'ftruncate', h: handle(), len: rng.pick([0, 2, 50]) };
        break;
    }
    ops.push(op);
  }
  // Close what is still open, so that the final trees are compared at rest.
  for (const h of handles) ops.push({ op: 'close', h });
  return ops;
}

export { O_RDONLY, O_WRONLY, O_RDWR };
