// Test fixtures: real temporary layer directories, an overlay over them, and cleanup.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Overlay } from '../../src/overlay/overlay.js';
import type { OverlayOptions } from '../../src/overlay/options.js';
import { createOverlayFs, type OverlayFs } from '../../src/fs/index.js';

export const isRoot = process.getuid?.() === 0;

/** A tree to write into a layer: strings are files, objects directories, { symlink } links, { whiteout } 0/0 devices. */
export type Tree = { [name: string]: string | Tree | { symlink: string } | { whiteout: true } };

export function writeTree(dir: string, tree: Tree): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, value] of Object.entries(tree)) {
    const p = path.join(dir, name);
    if (typeof value === 'string') fs.writeFileSync(p, value);
    else if ('symlink' in value && typeof value.symlink === 'string') fs.symlinkSync(value.symlink, p);
    else if ('whiteout' in value && value.whiteout === true) execFileSync('mknod', [p, 'c', '0', '0']);
    else writeTree(p, value as Tree);
  }
}

export interface Fixture {
  base: string;
  lowers: string[];
  upper: string;
  work: string;
  overlay: Overlay;
  /** The overlay's node:fs face. */
  fs: OverlayFs;
  /** Host path inside the upper layer. */
  up(rel: string): string;
  reopen(options?: Partial<OverlayOptions>): void;
  cleanup(): void;
}

export function makeFixture(lowerTrees: Tree[], options: Partial<OverlayOptions> = {}, upperTree: Tree = {}): Fixture {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-test-'));
  const lowers = lowerTrees.map((tree, i) => {
    const dir = path.join(base, `lower${i}`);
    writeTree(dir, tree);
    return dir;
  });
  const upper = path.join(base, 'upper');
  const work = path.join(base, 'work');
  writeTree(upper, upperTree);
  fs.mkdirSync(work);
  const open = (extra: Partial<OverlayOptions>): Overlay =>
    new Overlay({ lowerdir: lowers, upperdir: upper, workdir: work, ...options, ...extra });
  const overlay = open({});
  const fixture: Fixture = {
    base, lowers, upper, work,
    overlay,
    fs: createOverlayFs(overlay),
    up: (rel) => path.join(upper, rel),
    reopen(extra = {}) {
      fixture.overlay.close();
      fixture.overlay = open(extra);
      fixture.fs = createOverlayFs(fixture.overlay);
    },
    cleanup() {
      fixture.overlay.close();
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
  return fixture;
}

export function isWhiteout(hostPath: string): boolean {
  const st = fs.lstatSync(hostPath, { throwIfNoEntry: false });
  return st !== undefined && st.isCharacterDevice() && st.rdev === 0;
}

export function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}
