// An overlay over real temporary directories, opened through the public entry point, for the
// tests of the fs facade's async forms.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openOverlay, type OverlayFs } from '../../src/index.js';
import { writeTree, type Tree } from './fixture.js';

export interface FsFixture {
  fs: OverlayFs;
  lower: string;
  upper: string;
  close(): void;
}

export function makeOverlayFs(lowerTree: Tree, upperTree: Tree = {}): FsFixture {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-fs-'));
  const lower = path.join(base, 'lower');
  const upper = path.join(base, 'upper');
  const work = path.join(base, 'work');
  writeTree(lower, lowerTree);
  writeTree(upper, upperTree);
  fs.mkdirSync(work);
  const overlay = openOverlay({ lowerdir: [lower], upperdir: upper, workdir: work });
  return {
    fs: overlay.fs,
    lower,
    upper,
    close() {
      overlay.close();
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Node's callback convention as a promise of the results after err. */
export function cb<T extends unknown[]>(fn: (done: (err: NodeJS.ErrnoException | null, ...results: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, ...results) => (err ? reject(err) : resolve(results))));
}
