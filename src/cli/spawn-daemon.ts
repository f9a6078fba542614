// The parent half of daemonizing (see daemon.ts): start the command again as a detached child. Kept
// apart from daemon.ts so that the process that only starts the daemon loads nothing of the FUSE
// bridge or the core.
//
// In fuse-overlayfs's form as root (containers/storage's mount_program), the command mounts first
// (mount(2) on a /dev/fuse fd it opened), hands the fd to the child and returns at once, as
// fuse-overlayfs returns once it has mounted: the kernel queues requests until the child answers them,
// so the mount is live for the caller either way, and the child's start-up overlaps with what the caller
// does next (start a container). Otherwise the child mounts and the command waits for its one line.
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';

import { checkDirectory, normalizeOptions } from '../overlay/options.js';
import { childProcess } from '../sys/lazy-builtins.js';
import { fuseMountFlags } from './fuse-flags.js';
import type { MountRequest } from './mount-args.js';

export const EXIT_FAIL = 32;
/** The child's fd of the pipe it says its one line on. */
export const DAEMON_ENV = 'OVLFS_DAEMON_FD';
/** The child's fd of the /dev/fuse the command has mounted, and the request as the command resolved it. */
export const MOUNTED_ENV = 'OVLFS_FUSE_FD';
export const REQUEST_ENV = 'OVLFS_MOUNT_REQUEST';

function log(line: string): void {
  process.stderr.write(`ovlfs: ${line}\n`);
}

function startChild(req: MountRequest, argv: string[], fd3: 'pipe' | number, env: Record<string, string>): ChildProcess {
  const logFd = req.log !== undefined ? openSync(req.log, 'a') : 'ignore';
  try {
    return childProcess().spawn(process.execPath, [...process.execArgv, ...argv], {
      detached: true,
      stdio: ['ignore', logFd, logFd, fd3],
      env: { ...process.env, ...env },
    });
  } finally {
    if (typeof logFd === 'number') closeSync(logFd);
  }
}

/**
 * What the overlay would refuse first, checked before anything is mounted: the options, and that every
 * layer is a directory. The child checks the rest (overlapping layers, upper and work on one filesystem)
 * when it builds the overlay; if that fails it detaches the mount and says why in --log.
 */
function checkLayers(req: MountRequest): void {
  const o = normalizeOptions(req.overlay);
  o.lower.forEach((dir, i) => typeof dir === 'string' && checkDirectory(dir, `lowerdir #${i + 1}`));
  if (typeof o.upper === 'string') checkDirectory(o.upper, 'upperdir');
  if (typeof o.workdir === 'string') checkDirectory(o.workdir, 'workdir');
}

/**
 * As root: checks the layers, opens /dev/fuse and mounts it (mount(2)); the mounted device's fd, or
 * undefined when that failed (said on stderr).
 */
export async function mountDevice(req: MountRequest): Promise<number | undefined> {
  let device: number | undefined;
  try {
    checkLayers(req);
    device = openSync('/dev/fuse', 'r+');
    const { fuseMountData, mountFuseSyscall } = await import('../fuse/mount-syscall.js');
    mountFuseSyscall(req.source, req.mountpoint, 'fuse.ovlfs', fuseMountData(device, fuseMountFlags(req, undefined)));
    return device;
  } catch (e) {
    if (device !== undefined) closeSync(device);
    log(`mount failed: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}

/** As root: mount, hand the device to the child, return without waiting for it. */
export async function mountAndDaemonize(req: MountRequest, argv: string[]): Promise<number> {
  const device = await mountDevice(req);
  if (device === undefined) return EXIT_FAIL;
  const child = startChild(req, argv, device, { [MOUNTED_ENV]: '3', [REQUEST_ENV]: JSON.stringify(req) });
  closeSync(device);
  child.on('error', () => {}); // a spawn that failed has no pid, and is handled below
  if (child.pid === undefined) {
    // The mount exists, and nobody will serve it.
    childProcess().spawnSync('umount', ['-l', req.mountpoint], { stdio: 'ignore' });
    log('cannot start the daemon');
    return EXIT_FAIL;
  }
  child.unref();
  if (req.pidfile !== undefined) writeFileSync(req.pidfile, `${child.pid}\n`);
  return 0;
}

/** Start the child, wait for its one line (mounted and serving, or the error), exit accordingly. */
export function daemonize(req: MountRequest, argv: string[]): Promise<number> {
  const child = startChild(req, argv, 'pipe', { [DAEMON_ENV]: '3' });
  return new Promise((resolveExit) => {
    let said = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.on('data', (d: Buffer) => (said += d.toString()));
    // The child closes the pipe once it has said its line; a child that dies closes it too.
    pipe.on('end', () => {
      const line = said.trim();
      if (line === 'ok') {
        child.unref();
        resolveExit(0);
      } else {
        log(line !== '' ? `mount failed: ${line}` : `the daemon exited (${child.exitCode}) before the mount was live${req.log ? `; see ${req.log}` : ''}`);
        resolveExit(EXIT_FAIL);
      }
    });
    child.on('error', (e) => {
      log(`cannot start the daemon: ${e.message}`);
      resolveExit(EXIT_FAIL);
    });
  });
}
