// The kernel overlay and the ovlfs mount side by side, each over its own identical copy of the layers,
// for tests that run one script on both and compare. Unmounted and removed by close().
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { mountFuse, type FuseMount } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { ok } from './shell.js';

export interface SideBySide {
  base: string;
  /** The kernel overlay's mount point, over base/kernel. */
  kmnt: string;
  /** The ovlfs mount point, over base/ovlfs. */
  omnt: string;
  close(): Promise<void>;
}

/** Why the kernel overlay and a FUSE mount cannot be made here (undefined when they can); printed with `what`, so a skip says why. */
export function sideBySideSkip(what: string): string | undefined {
  let reason: string | undefined;
  if (process.platform !== 'linux') reason = 'the mount needs Linux';
  else if (process.getuid?.() !== 0) reason = 'the mounts need root (mount -t fuse, mount -t overlay, trusted.* xattrs)';
  else if (!existsSync('/dev/fuse')) reason = 'the mount needs /dev/fuse';
  if (reason !== undefined) process.stdout.write(`# skipping ${what}: ${reason}\n`);
  return reason;
}

/**
 * `writeLayers(dir)` makes the layers and an empty `dir/m`; `options(dir)` gives the mount options
 * for them. `prepare(base)` runs first, e.g. to open the base to other users.
 */
export async function mountSideBySide(prefix: string, writeLayers: (dir: string) => void, options: (dir: string) => string, prepare?: (base: string) => void): Promise<SideBySide> {
  const base = mkdtempSync(join(tmpdir(), prefix));
  const kmnt = join(base, 'kernel', 'm');
  const omnt = join(base, 'ovlfs', 'm');
  let mount: FuseMount | undefined;
  const close = async (): Promise<void> => {
    try {
      await mount?.unmount();
    } finally {
      if (isMounted(kmnt)) spawnSync('umount', ['-l', kmnt]);
      if (isMounted(omnt)) spawnSync('umount', ['-l', omnt]);
      rmSync(base, { recursive: true, force: true });
    }
  };
  try {
    prepare?.(base);
    writeLayers(join(base, 'kernel'));
    writeLayers(join(base, 'ovlfs'));
    ok(`mount -t overlay overlay -o '${options(join(base, 'kernel'))}' '${kmnt}'`);
    mount = await mountFuse({
      mountpoint: omnt,
      fsname: 'ovlfs',
      source: 'ovlfs-test',
      filesystem: { module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url), export: 'createOverlayFs', arg: { overlay: options(join(base, 'ovlfs')) } },
      options: { allowOther: true, defaultPermissions: true },
    });
  } catch (e) {
    await close();
    throw e;
  }
  return { base, kmnt, omnt, close };
}
