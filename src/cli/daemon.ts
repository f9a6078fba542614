// Serving a mount, and the child half of daemonizing (the parent half is spawn-daemon.ts).
//
// Node cannot fork, so the command starts itself again as a detached child (a new session, stdio on
// /dev/null or --log) with a pipe on fd 3. The child mounts and writes one line on that pipe, 'ok' or
// the error, and the parent exits with the matching status. So the command returns 0 only once the mount
// is live (its layers open, so a layer path that vanishes right after, as containers/storage's idmapped
// bind mounts do, is no longer needed), and a mount that fails says why on the caller's stderr.
import { closeSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { mountFuse } from '../fuse/bridge/mount.js';
import type { OverlayFsArg } from '../fuse/overlay-fs.js';
import type { MountRequest } from './mount-args.js';

export const EXIT_FAIL = 32;

function log(line: string): void {
  process.stderr.write(`ovlfs: ${line}\n`);
}

/** Whether fusermount3 lets a plain user pass allow_other. */
function userAllowOther(): boolean {
  try {
    return /^\s*user_allow_other\s*$/m.test(readFileSync('/etc/fuse.conf', 'utf8'));
  } catch {
    return false;
  }
}

function filesystemModule(): URL {
  // .js when built, .ts when run from sources under tsx: the worker loads the same kind.
  const ext = extname(fileURLToPath(import.meta.url));
  return new URL(`../fuse/overlay-fs${ext}`, import.meta.url);
}

/** Mounts and serves in this process until unmounted. `ready` hears undefined (live) or the error. */
export async function serve(req: MountRequest, ready: (error: string | undefined) => void): Promise<number> {
  // New entries get the mode the kernel sends, with the caller's umask already applied; ours must not apply.
  process.umask(0);
  const fusermount = process.getuid?.() === 0 ? undefined : (await import('../fuse/fusermount.js')).findFusermount();
  if (fusermount !== undefined && !userAllowOther()) log('only this user sees the mount: /etc/fuse.conf has no user_allow_other');
  const arg: OverlayFsArg = { overlay: req.overlay, idmap: req.idmap, xattrPermissions: req.xattrPermissions };
  let mount;
  try {
    mount = await mountFuse({
      mountpoint: req.mountpoint,
      fsname: 'ovlfs',
      source: req.source,
      filesystem: { module: filesystemModule(), export: 'createOverlayFs', arg },
      options: {
        readOnly: req.flags.readOnly,
        extraOptions: req.flags.extra,
        // A plain user mounts through fusermount3, which allows allow_other only with user_allow_other.
        allowOther: fusermount === undefined || userAllowOther(),
        defaultPermissions: true,
        fusermount,
        debug: req.debug,
        handleSignals: true,
      },
    });
  } catch (e) {
    ready(e instanceof Error ? e.message.replace(/^fuse worker: /, '') : String(e));
    return EXIT_FAIL;
  }
  // Relative layer paths were resolved by now; hold no directory busy.
  process.chdir('/');
  if (req.pidfile !== undefined) writeFileSync(req.pidfile, `${process.pid}\n`);
  log(`mounted ${req.mountpoint}, pid ${process.pid}`);
  ready(undefined);
  try {
    await mount.done;
    log(`unmounted ${req.mountpoint}`);
    return 0;
  } catch (e) {
    log(`the filesystem failed: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_FAIL;
  }
}

/** The daemon child: serve, say one line on the pipe from the parent, then close it so the parent can go. */
export function serveAsDaemon(req: MountRequest, pipe: number): Promise<number> {
  return serve(req, (error) => {
    try {
      writeSync(pipe, error === undefined ? 'ok\n' : `${error}\n`);
      closeSync(pipe);
    } catch {
      // the parent is gone; nothing to tell
    }
  });
}
