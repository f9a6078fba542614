// The ovlfs command: which form was used, --help for each, and the mount and umount commands. It parses
// arguments (mount-args.ts) and calls the library; it holds no filesystem logic of its own. What serves a
// mount (daemon.ts, the FUSE bridge and the core) is imported only by the process that serves, so the
// command that only starts the daemon loads little.
import { accessSync, closeSync, constants, existsSync, readFileSync, statSync, writeSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { isMounted } from '../mount-table.js';
import { inUserNamespace } from '../overlay/options.js';
import { childProcess } from '../sys/lazy-builtins.js';
import { HELP, HELPER_HELP, MOUNT_HELP, UMOUNT_HELP } from './help.js';
import type { Origin } from './spare.js';
import { parseMountArgs, UsageError, type Dialect, type MountRequest } from './mount-args.js';

/** Exit statuses, as mount(8) uses them: 1 for bad usage or permissions, 32 for a failed mount. */
const EXIT_USAGE = 1;
const EXIT_FAIL = 32;
// Set by spawn-daemon.ts for the daemon it starts (kept here so that this module does not load it).
const DAEMON_ENV = 'OVLFS_DAEMON_FD';
const MOUNTED_ENV = 'OVLFS_FUSE_FD';
const REQUEST_ENV = 'OVLFS_MOUNT_REQUEST';
// Set by ovlfs.sh: the fd of the pipe on which it waits for this command's exit status.
const STATUS_ENV = 'OVLFS_STATUS_FD';

/**
 * Under ovlfs.sh: says the exit status on its pipe (fd) once, at exit or as soon as a mount made in place
 * is live (mount-in-place.ts), and closes it, so that the script returns while this process serves.
 */
function statusReporter(fd: number): (status: number) => void {
  let open = true;
  return (status: number): void => {
    if (!open) return;
    open = false;
    try {
      writeSync(fd, `${status}\n`);
      closeSync(fd);
    } catch {
      // the script is gone
    }
  };
}
let reportStatus: ((status: number) => void) | undefined;
/** What this process was started with, for spare.ts: taken by the first mount made in place. */
let origin: Origin | undefined;
/** Set when a mount made in place was served until it was unmounted: the process may wait as a spare. */
let servedInPlace = false;

function log(line: string): void {
  process.stderr.write(`ovlfs: ${line}\n`);
}

function checkMountpoint(mountpoint: string): void {
  let st;
  try {
    st = statSync(mountpoint);
  } catch {
    throw new UsageError(`mount point ${mountpoint} does not exist`);
  }
  if (!st.isDirectory()) throw new UsageError(`mount point ${mountpoint} is not a directory`);
}

/**
 * Root (in any user namespace) mounts directly. Anyone else mounts through fusermount3, which needs
 * a mount point the user may write to and a /dev/fuse it may open.
 */
function checkPrivilege(what: string, mountpoint: string): void {
  if (process.getuid?.() === 0) return;
  const rootless = 'root, or root in a user namespace (podman and buildah run their mount program there)';
  if (!existsSync('/usr/bin/fusermount3') && childProcess().spawnSync('sh', ['-c', 'command -v fusermount3'], { stdio: 'ignore' }).status !== 0) {
    throw new UsageError(`${what} needs ${rootless}, or fusermount3 (package fuse3) to mount as a plain user`);
  }
  try {
    accessSync(mountpoint, constants.W_OK);
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch (e) {
    const which = (e as NodeJS.ErrnoException).path === '/dev/fuse' ? '/dev/fuse is not open to this user' : `${mountpoint} is not writable by this user`;
    throw new UsageError(`${what} needs ${rootless}; as a plain user it mounts through fusermount3, but ${which}`);
  }
}

async function mountCommand(args: string[], dialect: Dialect, argv: string[]): Promise<number> {
  const req = parseMountArgs(args, dialect);
  if (req === undefined) {
    process.stdout.write((dialect === 'helper' ? HELPER_HELP : MOUNT_HELP) + '\n');
    return 0;
  }
  for (const w of req.warnings) process.stderr.write(`${w}\n`);
  if (req.remount) {
    await (await import('./remount.js')).remount(req);
    return 0;
  }
  if (req.idmap !== undefined && Array.isArray(req.overlay.lowerdir)) {
    // With a mapping, lower layers are read with the ids they store (see idmapped.ts).
    const { unidmappedPath } = await import('./idmapped.js');
    req.overlay.lowerdir = req.overlay.lowerdir.map((p) => (typeof p === 'string' ? unidmappedPath(p) : p));
  }
  if (!existsSync('/dev/fuse')) throw new UsageError('/dev/fuse is missing: load the fuse module (modprobe fuse)');
  checkMountpoint(req.mountpoint);
  checkPrivilege(dialect === 'mount' ? 'ovlfs mount' : 'ovlfs', req.mountpoint);
  // Root in a user namespace cannot write trusted.* xattrs; say what the overlay will use instead.
  if (req.debug && req.overlay.userxattr === undefined && inUserNamespace()) log('in a user namespace: using user.overlay.* xattrs (userxattr)');

  const fd = process.env[DAEMON_ENV];
  if (fd !== undefined) {
    delete process.env[DAEMON_ENV];
    const { serveAsDaemon } = await import('./daemon.js');
    return serveAsDaemon(req, Number(fd));
  }
  if (req.foreground) {
    const { serve } = await import('./daemon.js');
    return serve(req, (error) => {
      if (error !== undefined) log(`mount failed: ${error}`);
    });
  }
  // containers/storage's form, as root (also in a user namespace): mount here and return at once, as
  // fuse-overlayfs does; under ovlfs.sh this process then serves, else it starts a daemon to. ovlfs
  // mount and the helper form return once the daemon serves, so that the pid in --pidfile answers
  // SIGTERM from the start and an error in the layers is the command's to report; so does a plain
  // user's mount, which the daemon makes through fusermount3.
  if (req.dialect === 'fuse-overlayfs' && process.getuid?.() === 0 && reportStatus !== undefined) {
    // Before serving sets its own umask: a spare takes only mounts that this process would have taken.
    origin ??= (await import('./spare.js')).origin();
    const code = await (await import('./mount-in-place.js')).mountInPlace(req, reportStatus);
    servedInPlace = code === 0;
    return code;
  }
  const { daemonize, mountAndDaemonize } = await import('./spawn-daemon.js');
  return req.dialect === 'fuse-overlayfs' && process.getuid?.() === 0 ? mountAndDaemonize(req, argv) : daemonize(req, argv);
}

/**
 * The daemon of a mount the command made (spawn-daemon.ts): it takes the command's request as it was
 * resolved then, not the arguments again, because a layer path may be gone by now (and a stat of the
 * mount point would wait for this very process to answer it).
 */
async function serveMountedCommand(fd: string): Promise<number> {
  const req = JSON.parse(process.env[REQUEST_ENV] ?? '') as MountRequest;
  delete process.env[MOUNTED_ENV];
  delete process.env[REQUEST_ENV];
  const { serveMounted } = await import('./daemon.js');
  return serveMounted(req, Number(fd));
}

function umountCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { lazy: { type: 'boolean', short: 'l' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  } catch (e) {
    throw new UsageError(`${e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e)} (see ovlfs umount --help)`);
  }
  if (parsed.values.help) {
    process.stdout.write(UMOUNT_HELP + '\n');
    return Promise.resolve(0);
  }
  if (parsed.positionals.length !== 1) throw new UsageError('expected exactly one MOUNTPOINT');
  const mountpoint = resolve(parsed.positionals[0]!);
  const lazy = parsed.values.lazy === true;
  if (!isMounted(mountpoint)) throw new UsageError(`${mountpoint} is not mounted`);
  // A mount a plain user made through fusermount3 is that user's to unmount through fusermount3.
  const [cmd, cmdArgs] = process.getuid?.() === 0 ? ['umount', lazy ? ['-l', mountpoint] : [mountpoint]] : ['fusermount3', [lazy ? '-uz' : '-u', mountpoint]];
  return new Promise((resolveExit) => {
    const child = childProcess().spawn(cmd, cmdArgs, { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      log(`cannot run ${cmd}: ${e.message}`);
      resolveExit(EXIT_FAIL);
    });
    child.on('close', (code) => {
      if (code === 0) return resolveExit(0);
      log(`${cmd} ${mountpoint} failed: ${stderr.trim()}${/busy/i.test(stderr) ? ' (close what uses it, or use --lazy)' : ''}`);
      resolveExit(EXIT_FAIL);
    });
  });
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * argv: [script, ...args], so that a daemon child can be started with the same script and arguments.
 * Under ovlfs.sh, a daemon whose mount ended may then wait as a spare for the script's next mount and
 * run the command again for it (spare.ts), as often as mounts come before its idle time is over.
 */
export async function main(argv: string[]): Promise<number> {
  const status = process.env[STATUS_ENV];
  delete process.env[STATUS_ENV];
  if (status !== undefined) reportStatus = statusReporter(Number(status));
  process.on('exit', (code) => reportStatus?.(code));
  let code = await command(argv);
  while (code === 0 && servedInPlace && origin !== undefined) {
    servedInPlace = false;
    const spares = await import('./spare.js');
    if (spares.spareDir() === undefined) break;
    // What the mount held is garbage now: give it back before waiting.
    (await import('../fuse/bridge/memory.js')).collectGarbage();
    const claim = await spares.waitAsSpare(origin);
    if (claim === undefined) break;
    (await import('./detach.js')).attachToCaller(claim.stdoutFd, claim.stderrFd);
    process.umask(parseInt(origin.umask, 8));
    reportStatus = statusReporter(claim.statusFd);
    code = await command([argv[0]!, ...claim.args]);
  }
  return code;
}

async function command(argv: string[]): Promise<number> {
  const args = argv.slice(1);
  try {
    const mounted = process.env[MOUNTED_ENV];
    if (mounted !== undefined) return await serveMountedCommand(mounted);
    // Installed as /sbin/mount.fuse.ovlfs (or called by mount.fuse): SOURCE MOUNTPOINT [-o OPTIONS].
    if (basename(argv[0] ?? '').startsWith('mount.')) return await mountCommand(args, 'helper', argv);
    const [cmd, ...rest] = args;
    switch (cmd) {
      case undefined:
        process.stderr.write(HELP + '\n');
        return EXIT_USAGE;
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(HELP + '\n');
        return 0;
      case '-V':
      case '--version':
        process.stdout.write(`ovlfs ${version()}\n`);
        return 0;
      case 'mount':
        return await mountCommand(rest, 'mount', argv);
      case 'umount':
      case 'unmount':
        return await umountCommand(rest);
      case 'pull':
      case 'diff':
      case 'commit':
      case 'run':
        // Images: loaded only here, so that mounting does not pay for the registry client.
        return await (await import('./image-commands.js')).imageCommand(cmd, rest);
      case 'mount-helper':
        // For a helper script: SOURCE MOUNTPOINT -o OPTIONS, whatever SOURCE is called.
        return await mountCommand(rest, 'helper', argv);
      default:
        // fuse-overlayfs's form starts with a flag (-o, -f, -d); mount(8)'s helper form with SOURCE.
        return await mountCommand(args, cmd.startsWith('-') ? 'fuse-overlayfs' : 'helper', argv);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      log(e.message);
      return EXIT_USAGE;
    }
    log(e instanceof Error ? e.message : String(e));
    return EXIT_FAIL;
  }
}
