// Random overlay layers: a pure spec generated from a seed, then written to disk in the kernel's format
// (0/0 char-device whiteouts, trusted.overlay.opaque). Writing the same spec twice gives two identical copies.
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, lutimesSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setAttributeSync } from '@napi-rs/xattr';
import type { Rng } from './prng.js';

export type SpecNode =
  | { kind: 'file'; content: string; mode: number; mtime: number }
  | { kind: 'dir'; mode: number; mtime: number; opaque: boolean; children: Record<string, SpecNode> }
  | { kind: 'symlink'; target: string; mtime: number }
  | { kind: 'whiteout' }
  | { kind: 'hardlink'; to: string };

export interface LayersSpec {
  /** Top-most first, as in the kernel's lowerdir option. */
  lowers: SpecNode[];
  upper: SpecNode;
}

const NAMES = ['d0', 'd1', 'd2', 'f0', 'f1', 'f2', 's0', 's1'] as const;
// Old, fixed times: a later stat that still shows one proves that nobody touched the mtime (copy-up keeps it).
export const OLD_TIME_MAX = 1_500_000_000;

function oldTime(rng: Rng): number {
  return rng.int(1_000_000_000, 1_400_000_000);
}

function symlinkTarget(rng: Rng, name: string): string {
  return rng.pick([
    'f0', 'f1', 'd0', 'd1/f0', '../f0', '../d1', '..', 'd0/s0', 's1',
    '/f0', '/d0/f1', '/d1', '/d0/d1/f2',
    // Hostile: these must stay inside the overlay root (the kernel side runs chrooted).
    '/etc/passwd', '../../..', '../../../etc/passwd', '/', '/..',
    name, // a loop onto itself
    'nowhere', '/d2/nowhere',
  ]);
}

function genDir(rng: Rng, depth: number, path: string, canHide: boolean, files: string[]): SpecNode {
  const children: Record<string, SpecNode> = {};
  const presence = depth === 0 ? 0.55 : depth === 1 ? 0.4 : 0.25;
  for (const name of NAMES) {
    if (!rng.chance(presence)) continue;
    const child = path === '' ? name : `${path}/${name}`;
    const preferred = name[0] === 'd' ? 'dir' : name[0] === 'f' ? 'file' : 'symlink';
    let kind = rng.chance(0.75) ? preferred : rng.pick(['dir', 'file', 'symlink', 'whiteout', 'hardlink']);
    if (kind === 'dir' && depth >= 3) kind = 'file';
    if (kind === 'whiteout' && !canHide) kind = 'file';
    if (kind === 'hardlink' && files.length === 0) kind = 'file';
    if (canHide && rng.chance(0.12)) kind = 'whiteout';
    switch (kind) {
      case 'dir':
        children[name] = genDir(rng, depth + 1, child, canHide, files);
        break;
      case 'file':
        children[name] = {
          kind: 'file',
          content: rng.chance(0.1) ? '' : rng.text(rng.chance(0.1) ? rng.int(3000, 9000) : rng.int(1, 40)),
          mode: rng.pick([0o644, 0o600, 0o755, 0o444]),
          mtime: oldTime(rng),
        };
        files.push(child);
        break;
      case 'symlink':
        children[name] = { kind: 'symlink', target: symlinkTarget(rng, name), mtime: oldTime(rng) };
        break;
      case 'whiteout':
        children[name] = { kind: 'whiteout' };
        break;
      case 'hardlink':
        children[name] = { kind: 'hardlink', to: rng.pick(files) };
        break;
    }
  }
  return {
    kind: 'dir',
    mode: depth === 0 ? 0o755 : rng.pick([0o755, 0o700, 0o775]),
    mtime: oldTime(rng),
    opaque: depth > 0 && canHide && rng.chance(0.18),
    children,
  };
}

export function genLayers(rng: Rng): LayersSpec {
  const nLowers = rng.int(2, 4);
  const lowers: SpecNode[] = [];
  // Whiteouts and opaque dirs in the bottom-most layer mean nothing, so only the layers above get them.
  for (let i = 0; i < nLowers; i++) lowers.push(genDir(rng, 0, '', i < nLowers - 1, []));
  const upper = genDir(rng, 0, '', true, []);
  const spec = { lowers, upper };
  pruneListedWhiteouts(spec);
  return spec;
}

/**
 * Kernel oddity, avoided rather than tested: in a directory that is not merged (it exists in one layer only,
 * or is opaque) the kernel lists the directory as it is, so a whiteout shows up in readdir as a 'c' entry that
 * lstat then answers ENOENT. Neither the kernel nor Docker writes whiteouts there, so we do not either.
 */
function pruneListedWhiteouts(spec: LayersSpec): void {
  const stack = [spec.upper, ...spec.lowers];
  const visit = (dirs: Array<SpecNode & { kind: 'dir' }>): void => {
    if (dirs.length === 1) {
      const only = dirs[0] as SpecNode & { kind: 'dir' };
      for (const [name, child] of Object.entries(only.children)) if (child.kind === 'whiteout') delete only.children[name];
    }
    const names = new Set(dirs.flatMap((d) => Object.keys(d.children)));
    for (const name of names) {
      // The kernel's lookup: the top-most hit decides; a directory merges with directories below it until
      // an opaque one, a whiteout or a non-directory stops it.
      const sub: Array<SpecNode & { kind: 'dir' }> = [];
      for (const d of dirs) {
        const c = d.children[name];
        if (c === undefined) continue;
        if (c.kind !== 'dir') break;
        sub.push(c);
        if (c.opaque) break;
      }
      if (sub.length > 0) visit(sub);
    }
  };
  visit(stack as Array<SpecNode & { kind: 'dir' }>);
}

/** Writes one layer; returns the whiteouts to mknod, so that one python3 call can make them all. */
function writeNode(dir: string, node: SpecNode, whiteouts: string[], root: string): void {
  if (node.kind !== 'dir') throw new Error('layer root must be a dir');
  for (const [name, child] of Object.entries(node.children)) {
    const p = join(dir, name);
    switch (child.kind) {
      case 'dir':
        mkdirSync(p);
        writeNode(p, child, whiteouts, root);
        break;
      case 'file':
        writeFileSync(p, child.content);
        chmodSync(p, child.mode);
        break;
      case 'symlink':
        symlinkSync(child.target, p);
        break;
      case 'whiteout':
        whiteouts.push(p);
        break;
      case 'hardlink':
        linkSync(join(root, child.to), p);
        break;
    }
  }
}

function setTimes(dir: string, node: SpecNode): void {
  if (node.kind !== 'dir') return;
  for (const [name, child] of Object.entries(node.children)) {
    const p = join(dir, name);
    if (child.kind === 'dir') setTimes(p, child);
    else if (child.kind === 'file') utimesSync(p, child.mtime, child.mtime);
    else if (child.kind === 'symlink') lutimesSync(p, child.mtime, child.mtime);
  }
  if (node.opaque) setAttributeSync(dir, 'trusted.overlay.opaque', 'y');
  chmodSync(dir, node.mode);
  utimesSync(dir, node.mtime, node.mtime);
}

export interface LayerDirs {
  lowers: string[];
  upper: string;
  work: string;
  mnt: string;
}

/** Materializes the spec under `root` as l0..lN, u, w and an empty mount point m. */
export function writeLayers(spec: LayersSpec, root: string): LayerDirs {
  const dirs: LayerDirs = {
    lowers: spec.lowers.map((_, i) => join(root, `l${i}`)),
    upper: join(root, 'u'),
    work: join(root, 'w'),
    mnt: join(root, 'm'),
  };
  mkdirSync(root, { recursive: true });
  const whiteouts: string[] = [];
  const all = [...spec.lowers.map((n, i) => [dirs.lowers[i] as string, n] as const), [dirs.upper, spec.upper] as const];
  for (const [d, node] of all) {
    mkdirSync(d);
    writeNode(d, node, whiteouts, d);
  }
  mkdirSync(dirs.work);
  mkdirSync(dirs.mnt);
  if (whiteouts.length > 0) {
    // Node cannot mknod; the kernel's whiteout is a 0/0 character device.
    execFileSync('python3', ['-c', 'import os,sys\nfor p in sys.argv[1:]: os.mknod(p, 0o20000, os.makedev(0, 0))', ...whiteouts]);
  }
  for (const [d, node] of all) setTimes(d, node);
  return dirs;
}

export interface Visible {
  kind: 'file' | 'dir' | 'symlink';
  /** Only in a lower layer: touching it for write means a copy-up. */
  lower: boolean;
}

/** The merged view of the spec as the kernel's lookup sees it (no redirects are generated). */
export function mergedView(spec: LayersSpec): Map<string, Visible> {
  const out = new Map<string, Visible>();
  type Dir = SpecNode & { kind: 'dir' };
  const visit = (dirs: Array<{ d: Dir; upper: boolean }>, prefix: string): void => {
    const names = new Set(dirs.flatMap(({ d }) => Object.keys(d.children)));
    for (const name of [...names].sort()) {
      const path = `${prefix}/${name}`;
      const sub: Array<{ d: Dir; upper: boolean }> = [];
      for (const { d, upper } of dirs) {
        const c = d.children[name];
        if (c === undefined) continue;
        if (c.kind === 'dir') {
          sub.push({ d: c, upper });
          if (c.opaque) break;
          continue;
        }
        if (sub.length === 0 && c.kind !== 'whiteout') {
          out.set(path, { kind: c.kind === 'symlink' ? 'symlink' : 'file', lower: !upper });
        }
        break;
      }
      if (sub.length > 0) {
        out.set(path, { kind: 'dir', lower: !(sub[0] as { upper: boolean }).upper });
        visit(sub, path);
      }
    }
  };
  visit([{ d: spec.upper as Dir, upper: true }, ...spec.lowers.map((d) => ({ d: d as Dir, upper: false }))], '');
  return out;
}

/** Every path named in any layer ('/d0/f1'), the raw material for the random ops. */
export function specPaths(spec: LayersSpec): string[] {
  const out = new Set<string>();
  const walk = (node: SpecNode, prefix: string): void => {
    if (node.kind !== 'dir') return;
    for (const [name, child] of Object.entries(node.children)) {
      out.add(`${prefix}/${name}`);
      walk(child, `${prefix}/${name}`);
    }
  };
  for (const n of [spec.upper, ...spec.lowers]) walk(n, '');
  return [...out].sort();
}
