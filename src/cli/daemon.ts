// Serving a mount, and the child half of daemonizing (the parent half is spawn-daemon.ts).
//
// Node cannot fork, so the command starts itself again as a detached child (a new session, stdio on
// /dev/null or --log). Usually the child mounts and writes one line on a pipe on fd 3, 'ok' or the
// error, and the command exits with the matching status, so a mount that fails says why on the caller's
// stderr. In fuse-overlayfs's form as root, the command has mounted already and hands the child the
// /dev/fuse fd instead (fd 3): the child builds the overlay and serves what the kernel queued meanwhile.
// Either way the layer paths were resolved by the command (a layer path that vanishes right after, as
// containers/storage's idmapped bind mounts do, is read outside them: idmapped.ts).
import { closeSync, writeFileSync, writeSync } from 'node:fs';

import { mountFuse } from '../fuse/bridge/mount.js';
import { OPTIMIZE_AFTER } from '../fuse/bridge/server.js';
import { createOverlayFs, type OverlayFsArg } from '../fuse/overlay-fs.js';
import { childProcess } from '../sys/lazy-builtins.js';
import { saveCodeCache } from './code-cache.js';
import { fuseMountFlags, userAllowOther } from './fuse-flags.js';
import type { MountRequest } from './mount-args.js';

export const EXIT_FAIL = 32;

function log(line: string): void {
  process.stderr.write(`ovlfs: ${line}\n`);
}

/**
 * Mounts and serves in this process until unmounted. `ready` hears undefined (live) or the error.
 * `mounted`: a /dev/fuse fd the command has mounted already (see spawn-daemon.ts), served as it is.
 */
export async function serve(req: MountRequest, ready: (error: string | undefined) => void, mounted?: number): Promise<number> {
  // New entries get the mode the kernel sends, with the caller's umask already applied; ours must not apply.
  process.umask(0);
  const fusermount = process.getuid?.() === 0 || mounted !== undefined ? undefined : (await import('../fuse/fusermount.js')).findFusermount();
  if (fusermount !== undefined && !userAllowOther()) log('only this user sees the mount: /etc/fuse.conf has no user_allow_other');
  const arg: OverlayFsArg = { overlay: req.overlay, idmap: req.idmap, xattrPermissions: req.xattrPermissions, mountpoint: req.mountpoint };
  let mount;
  try {
    mount = await mountFuse({
      mountpoint: req.mountpoint,
      fsname: 'ovlfs',
      source: req.source,
      filesystem: { factory: createOverlayFs, arg },
      options: {
        ...fuseMountFlags(req, fusermount),
        fusermount,
        mounted,
        // This process exists to serve the mount: a worker would be a second Node environment to start.
        serveHere: true,
        optimizeAfter: OPTIMIZE_AFTER,
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
  // When the command mounted, it wrote the pidfile already: it returns before this process gets here.
  if (req.pidfile !== undefined && mounted === undefined) writeFileSync(req.pidfile, `${process.pid}\n`);
  log(`mounted ${req.mountpoint}, pid ${process.pid}`);
  ready(undefined);
  try {
    await mount.done;
    log(`unmounted ${req.mountpoint}`);
    return 0;
  } catch (e) {
    log(`the filesystem failed: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_FAIL;
  } finally {
    // Serving has ended, and V8's flags are as at start-up again (see optimizeAfter): the next daemon
    // starts from what this one compiled, where the bundle had no cache that fitted.
    saveCodeCache();
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

/**
 * The daemon of a mount the command has made already (spawn-daemon.ts): the kernel queues requests until
 * this process answers them. Until mountFuse has taken over SIGINT and SIGTERM, either signal detaches
 * the mount, so that a daemon killed while it starts leaves no mount that nobody serves.
 */
export async function serveMounted(req: MountRequest, fd: number): Promise<number> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const early = (sig: NodeJS.Signals): void => {
    for (const s of signals) process.off(s, early);
    childProcess().spawnSync('umount', ['-l', req.mountpoint], { stdio: 'ignore' });
    process.kill(process.pid, sig);
  };
  for (const s of signals) process.on(s, early);
  return serve(req, (error) => {
    for (const s of signals) process.off(s, early);
    if (error !== undefined) log(`serving the mount failed, so it was detached: ${error}`);
  }, fd);
}
