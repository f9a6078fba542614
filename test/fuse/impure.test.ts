// "Impure" upper directories: the overlay marks a directory overlay.impure = "y" where the kernel's
// overlay does (a copy-up into it, an entry with a lower origin moved into it, a lookup of a merged
// directory below it), and nowhere else, so both read a layer's listings alike. Each case runs on the
// kernel overlay, the ovlfs mount and the library, each over its own copy of the same layers, and the
// marks they leave in the upper layer are compared.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { openOverlay } from '../../src/index.js';
import { lgetxattr } from '../../src/sys/xattr.js';
import { mountSideBySide, sideBySideSkip } from '../support/side-by-side.js';

const reason = sideBySideSkip('impure directory tests');

function layers(dir: string): void {
  for (const d of ['l/cu', 'l/merged/deeper', 'l/still', 'l/src', 'u/merged', 'u/pure', 'u/dest', 'u/fresh', 'w', 'm']) fs.mkdirSync(join(dir, d), { recursive: true });
  for (const f of ['cu/a', 'still/a', 'src/moved', 'src/stays']) fs.writeFileSync(join(dir, 'l', f), f);
  fs.writeFileSync(join(dir, 'u/pure/a'), 'a');
}
const options = (dir: string): string => `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w,redirect_dir=on`;

/** The same operations, through a mount point or the library's fs. */
function operate(f: Pick<typeof fs, 'chmodSync' | 'renameSync' | 'statSync' | 'readdirSync' | 'writeFileSync'>, root: string): void {
  f.chmodSync(join(root, 'cu/a'), 0o600); // copy-up into cu (and cu's own copy-up into the root)
  f.readdirSync(join(root, 'still')); // a listing changes nothing
  // a lower file moved into a pure upper directory: copied up into src first, then moved with its origin
  f.renameSync(join(root, 'src/moved'), join(root, 'dest/moved'));
  f.statSync(join(root, 'merged/deeper')); // a lookup of a merged directory ('merged') and below it
  f.writeFileSync(join(root, 'fresh/new'), 'new'); // a new file makes nothing impure
}

/** The upper directories marked impure, relative to the upper layer. */
function impureDirs(upper: string, rel = ''): string[] {
  const out: string[] = [];
  const path = join(upper, rel);
  if (lgetxattr(path, 'trusted.overlay.impure')?.toString() === 'y') out.push(rel === '' ? '/' : rel);
  for (const e of fs.readdirSync(path, { withFileTypes: true })) if (e.isDirectory()) out.push(...impureDirs(upper, rel === '' ? e.name : `${rel}/${e.name}`));
  return out.sort();
}


test('directories turn impure where the kernel overlay marks them, through the mount and the library', { skip: reason }, async () => {
  const sbs = await mountSideBySide('ovlfs-impure-', layers, options);
  try {
    const libDir = join(sbs.base, 'library');
    layers(libDir);
    const overlay = openOverlay(options(libDir));
    try {
      operate(overlay.fs as unknown as typeof fs, '/');
    } finally {
      overlay.close();
    }
    operate(fs, sbs.kmnt);
    operate(fs, sbs.omnt);
    const kernel = impureDirs(join(sbs.base, 'kernel', 'u'));
    assert.deepEqual(kernel, ['/', 'cu', 'dest', 'src'], 'what the kernel marks (this test\'s premise)');
    assert.deepEqual(impureDirs(join(sbs.base, 'ovlfs', 'u')), kernel, 'the mount marks what the kernel marks');
    assert.deepEqual(impureDirs(join(libDir, 'u')), kernel, 'the library marks what the kernel marks');
  } finally {
    await sbs.close();
  }
});
