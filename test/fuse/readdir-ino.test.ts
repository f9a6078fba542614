// d_ino is the st_ino a stat reports. Listings of directories only one lower layer holds pass the real
// d_ino through (mapped through xino) instead of looking every entry up; everywhere else the core looks
// entries up. Proved in the library and through the mount, xino off (one filesystem) and on (the upper on
// a tmpfs), on lower-only and merged directories, after copy-up with origin, metacopy copy-up and the
// copy-up of a lower hard link (which takes a new st_ino; library only); and against the kernel overlay over the same
// lower layers, whose numbers in lower-only directories are the real ones too.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import type { OverlayFsArg } from '../../src/fuse/overlay-fs.js';
import { mountFuse } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { Overlay, type OverlayNode } from '../../src/overlay/index.js';
import { listDirectory } from '../../src/sys/dir.js';
import { ok } from '../support/shell.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'the mount needs root (mount -t fuse, mount -t overlay, mount -t tmpfs)';
  if (!fs.existsSync('/dev/fuse')) return 'the mount needs /dev/fuse';
  return undefined;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping readdir d_ino tests: ${reason}\n`);

/** Two lower layers: l1 on top. */
function writeLowers(dir: string): void {
  const l1 = join(dir, 'l1');
  const l2 = join(dir, 'l2');
  for (const d of ['plain/sub', 'merged', 'cu', 'meta']) fs.mkdirSync(join(l2, d), { recursive: true });
  for (const d of ['merged', 'top']) fs.mkdirSync(join(l1, d), { recursive: true });
  for (const f of ['plain/a', 'plain/b', 'plain/sub/d', 'merged/m2', 'cu/x', 'cu/y', 'cu/h1', 'meta/data']) fs.writeFileSync(join(l2, f), `${f}\n`);
  fs.linkSync(join(l2, 'plain/a'), join(l2, 'plain/a-link'));
  fs.linkSync(join(l2, 'cu/h1'), join(l2, 'cu/h2'));
  fs.symlinkSync('a', join(l2, 'plain/sym'));
  for (const f of ['merged/m1', 'top/t']) fs.writeFileSync(join(l1, f), `${f}\n`);
}

/** Copy-ups of every kind, run through the overlay's paths (a mount's or the library's). */
const CHANGES: Array<[string, (path: string) => void]> = [
  ['cu/x', (p) => fs.chmodSync(p, 0o600)],
  ['cu/y', (p) => fs.appendFileSync(p, '+')],
  ['cu/h1', (p) => fs.chmodSync(p, 0o640)],
  ['meta/data', (p) => fs.chownSync(p, 1, 1)],
  ['merged/m2', (p) => fs.chmodSync(p, 0o600)],
];

/** Every directory's getdents64 entries against lstat; returns `path ino` lines of what it saw. */
function checkTree(root: string, rel = ''): string[] {
  const seen: string[] = [];
  const dir = join(root, rel);
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  let entries;
  try {
    entries = listDirectory(fd);
  } finally {
    fs.closeSync(fd);
  }
  for (const d of entries) {
    const path = rel === '' ? d.name : `${rel}/${d.name}`;
    const st = fs.lstatSync(join(root, path));
    assert.equal(d.ino, st.ino, `d_ino of ${path} is the st_ino a stat reports`);
    seen.push(`${path} ${d.ino}`);
    if (st.isDirectory()) seen.push(...checkTree(root, path));
  }
  return seen.sort();
}

function layout(base: string, upperOnTmpfs: boolean): { lowerdir: string; upper: string; work: string } {
  const top = upperOnTmpfs ? join(base, 'tmpfs') : base;
  if (upperOnTmpfs) {
    fs.mkdirSync(top);
    ok(`mount -t tmpfs -o size=16m tmpfs '${top}'`);
  }
  for (const d of ['u', 'w']) fs.mkdirSync(join(top, d));
  return { lowerdir: `${base}/l1:${base}/l2`, upper: join(top, 'u'), work: join(top, 'w') };
}

test('the library reports d_ino only where it is the st_ino, and keeps it so across copy-up', { skip: reason }, (t) => {
  for (const xino of ['off', 'on'] as const) {
    const base = fs.mkdtempSync(join(tmpdir(), `ovlfs-dino-lib-${xino}-`));
    t.after(() => {
      if (isMounted(join(base, 'tmpfs'))) spawnSync('umount', ['-l', join(base, 'tmpfs')]);
      fs.rmSync(base, { recursive: true, force: true });
    });
    writeLowers(base);
    const { lowerdir, upper, work } = layout(base, xino === 'on');
    const overlay = new Overlay(`lowerdir=${lowerdir},upperdir=${upper},workdir=${work},metacopy=on,redirect_dir=on,index=off,xino=${xino === 'on' ? 'auto' : 'off'}`);
    try {
      const known = new Map<string, number>();
      const check = (node: OverlayNode, rel: string): void => {
        for (const d of overlay.readdir(node)) {
          const path = rel === '' ? d.name : `${rel}/${d.name}`;
          const child = overlay.lookup(node, d.name)!;
          if (d.ino !== undefined) {
            known.set(path, d.ino);
            assert.equal(d.ino, overlay.getattr(child).ino, `${xino}: ino of ${path} is the st_ino`);
          }
          if (child.isDir) check(child, path);
        }
      };
      check(overlay.root, '');
      for (const p of ['plain/a', 'plain/sub/d', 'plain/sym', 'cu/h1', 'top/t', 'meta/data']) assert.ok(known.has(p), `${xino}: ${p} is in a lower-only directory`);
      // Lower entries of a merged directory: the kernel passes their real d_ino through on one
      // filesystem, and looks every entry up across filesystems (xino); the library leaves the former to the face.
      for (const p of ['merged/m1', 'merged/m2']) assert.equal(known.has(p), xino === 'on', `${xino}: ${p} is in a merged directory`);
      if (xino === 'on') assert.ok(known.get('plain/a')! >= 2 ** 40, 'the lower layer gets xino bits');
      else assert.equal(known.get('plain/a'), fs.statSync(join(base, 'l2/plain/a')).ino);
      // The listings are cached on the nodes now; copy-ups must not leave stale numbers in them.
      const before = overlay.getattr(overlay.resolve('/cu/h1')).ino;
      for (const [path] of CHANGES) overlay.setattr(overlay.resolve('/' + path), path === 'cu/y' ? { size: 3 } : { mode: 0o600 });
      known.clear();
      check(overlay.root, '');
      assert.notEqual(overlay.getattr(overlay.resolve('/cu/h1')).ino, before, 'a copied-up lower hard link takes its own st_ino');
      // Copy-ups made cu's upper copy impure: its entries are looked up, as the kernel looks them up.
      assert.ok(known.has('cu/x') && known.has('cu/h1'), 'a copied-up directory reports looked-up numbers');
      assert.ok(known.has('plain/a'), 'an untouched lower-only directory still does');
    } finally {
      overlay.close();
    }
  }
});

test('through the mount, d_ino is the st_ino a stat reports, and the kernel overlay agrees', { skip: reason }, async (t) => {
  for (const xino of ['off', 'on'] as const) {
    const base = fs.mkdtempSync(join(tmpdir(), `ovlfs-dino-mnt-${xino}-`));
    const omnt = join(base, 'm');
    const kmnt = join(base, 'k');
    let mount: Awaited<ReturnType<typeof mountFuse>> | undefined;
    t.after(async () => {
      try {
        await mount?.unmount();
      } finally {
        for (const m of [omnt, kmnt, join(base, 'tmpfs')]) if (isMounted(m)) spawnSync('umount', ['-l', m]);
        fs.rmSync(base, { recursive: true, force: true });
      }
    });
    writeLowers(base);
    const { lowerdir, upper, work } = layout(base, xino === 'on');
    for (const d of [omnt, kmnt, join(base, 'ku'), join(base, 'kw')]) fs.mkdirSync(d);
    const arg: OverlayFsArg = { overlay: `lowerdir=${lowerdir},upperdir=${upper},workdir=${work},metacopy=on,redirect_dir=on,index=off,xino=${xino === 'on' ? 'auto' : 'off'}` };
    mount = await mountFuse({
      mountpoint: omnt,
      fsname: 'ovlfs',
      source: 'ovlfs-test',
      filesystem: { module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url), export: 'createOverlayFs', arg },
      options: { allowOther: true, defaultPermissions: true },
    });
    // The kernel overlay shares the lower layers (they are read-only) and has its own upper on disk.
    ok(`mount -t overlay overlay -o 'lowerdir=${lowerdir},upperdir=${base}/ku,workdir=${base}/kw,metacopy=on,redirect_dir=on,index=off,xino=off' '${kmnt}'`);

    const first = checkTree(omnt);
    const plain = (lines: string[]): string[] => lines.filter((l) => l.startsWith('plain/') || l.startsWith('top/'));
    if (xino === 'off') {
      assert.deepEqual(plain(first), plain(checkTree(kmnt)), 'lower-only directories: the kernel overlay reports the same real numbers');
    } else {
      assert.ok(Number(plain(first)[0].split(' ')[1]) >= 2 ** 40, 'the lower layer gets xino bits');
    }
    // ls -i and find %i read the same numbers.
    const lsI = ok(`ls -i1 plain`, omnt).trim().split('\n').map((l) => l.trim().split(/\s+/).reverse().join(' ').replace(/^(\S+)/, 'plain/$1')).sort();
    assert.deepEqual(lsI, first.filter((l) => /^plain\/[^/]+ /.test(l)), 'ls -i');
    const findI = ok(`find . -mindepth 1 -printf '%P %i\\n' | LC_ALL=C sort`, omnt).trim().split('\n');
    assert.deepEqual(findI, [...first].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'find %i');

    // Not the lower hard link here: its new st_ino is the core's (the library test above), but the
    // kernel keeps the listing it cached before and no change to that directory's entries drops it.
    for (const [path, change] of CHANGES) if (path !== 'cu/h1') change(join(omnt, path));
    const after = checkTree(omnt);
    assert.equal(after.find((l) => l.startsWith('cu/x ')), first.find((l) => l.startsWith('cu/x ')), 'a file copied up with its origin keeps its st_ino');
    assert.equal(after.find((l) => l.startsWith('meta/data ')), first.find((l) => l.startsWith('meta/data ')), 'so does a metacopy file');
    await mount.unmount();
    mount = undefined;
  }
});
