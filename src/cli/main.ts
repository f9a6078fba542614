#!/usr/bin/env node
// The ovlfs command. It parses arguments and calls the library: mountFuse (src/fuse/bridge/mount.ts) with the
// overlay's FUSE file system (src/fuse/overlay-fs.ts). It holds no filesystem logic of its own.
//
// Daemonizing: Node cannot fork, so `ovlfs mount` starts itself again as a detached child (a new session,
// stdio on /dev/null or --log) with a pipe on fd 3. The child mounts and writes one line on that pipe,
// 'ok' or the error, and the parent exits with the matching status. So `ovlfs mount` returns 0 only once
// the mount is live, and a mount that fails says why on the caller's terminal.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { mountFuse, type MountOptions } from '../fuse/bridge/mount.js';
import type { OverlayFsArg } from '../fuse/overlay-fs.js';
import { isMounted } from '../mount-table.js';

/** Exit statuses, as mount(8) uses them: 1 for bad usage or permissions, 32 for a failed mount. */
const EXIT_USAGE = 1;
const EXIT_FAIL = 32;
const DAEMON_ENV = 'OVLFS_DAEMON_FD';

const HELP = `Usage:
  ovlfs mount -o lowerdir=DIR[:DIR…],upperdir=DIR,workdir=DIR[,OPTIONS] [--foreground] MOUNTPOINT
  ovlfs umount [--lazy] MOUNTPOINT
  ovlfs [mount-helper] SOURCE MOUNTPOINT -o OPTIONS   (mount(8) helper form; see below)
  ovlfs --help | --version

Mounts the Linux overlay filesystem, served from user space over FUSE by ovlfs, at MOUNTPOINT.

mount options (-o, comma-separated, as for mount -t overlay):
  lowerdir=A:B:C        lower layers, top-most first (required); ':' and ',' in a path are escaped with '\\'
  upperdir=DIR          the writable layer; needs workdir on the same filesystem (omit both: read-only)
  workdir=DIR           an empty directory ovlfs uses to build entries atomically
  redirect_dir=on|follow|off|nofollow   whether directory renames may create redirects (default follow)
  metacopy=on|off       copy up metadata only on chmod/chown/… (default off)
  index=off, xino=on|off|auto, userxattr, volatile   as for the kernel overlay
  ro                    mount read-only
  noatime, nodev, nosuid, noexec, …   passed on to the mount
  allow_other and default_permissions are always on: every user sees the mount, and the kernel checks
  permissions from the mode bits, as it does for the kernel overlay.

flags:
  -f, --foreground      stay attached, log to stderr, unmount on SIGINT/SIGTERM
  -d, --debug           log every FUSE request (implies --foreground unless --log is given)
  --log FILE            the daemon's log (default: none)
  --pidfile FILE        write the serving process's pid to FILE once mounted
  -l, --lazy            umount: detach now even if busy

The mount ends with 'ovlfs umount MOUNTPOINT', a plain 'umount MOUNTPOINT', or SIGTERM/SIGINT to the
serving process; the serving process then exits.

As a mount(8) helper: 'mount -t fuse.ovlfs ovlfs MOUNTPOINT -o lowerdir=…,upperdir=…,workdir=…' works
once mount(8) finds a helper: /sbin/mount.fuse.ovlfs linked to this command (or a script running
'ovlfs mount-helper "$@"'), or fuse3's mount.fuse with ovlfs in /usr/local/bin or /usr/bin (mount(8)
clears PATH). Options it does not know are ignored in that form.

Needs root: it opens /dev/fuse and calls mount(8). Rootless mounts are not supported yet.

Exit status: 0 mounted (or unmounted); 1 bad usage or no permission; 32 the mount failed.`;

class UsageError extends Error {}

/** Options that make the overlay; everything else is for the mount or ignored. */
const OVERLAY_KEYS = new Set(['lowerdir', 'upperdir', 'workdir', 'redirect_dir', 'metacopy', 'index', 'xino', 'userxattr', 'volatile']);
/** Generic mount options handed on to mount(8). */
const PASSED_KEYS = new Set(['noatime', 'relatime', 'strictatime', 'nodiratime', 'lazytime', 'nodev', 'nosuid', 'noexec', 'sync', 'dirsync']);
/** Generic options that mean nothing here (the defaults, or mount(8)'s own bookkeeping). */
const IGNORED_KEYS = new Set(['rw', 'dev', 'suid', 'exec', 'atime', 'diratime', 'defaults', 'auto', 'noauto', 'user', 'nouser', 'users', 'nofail', '_netdev', 'async', 'allow_other', 'default_permissions', 'fsname', 'subtype']);

interface MountRequest {
  mountpoint: string;
  source: string;
  /** The overlay options, re-joined in their original spelling (escapes kept). */
  overlay: string;
  mount: MountOptions;
  foreground: boolean;
  log: string | undefined;
  pidfile: string | undefined;
}

/** Splits an -o string on commas that are not escaped with a backslash. */
function splitOptions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      cur += c + text[i + 1]!;
      i++;
    } else if (c === ',') {
      if (cur !== '') out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}

/** Makes layer paths absolute: the daemon serves from '/'. */
function absolutePaths(key: string, value: string): string {
  if (key === 'lowerdir') {
    return value
      .split(/(?<!\\):/)
      .map((p) => (p === '' || p.startsWith('/') ? p : resolve(p)))
      .join(':');
  }
  if ((key === 'upperdir' || key === 'workdir') && !value.startsWith('/')) return resolve(value);
  return value;
}

function sortOptions(list: string[], lenient: boolean): { overlay: string; mount: MountOptions } {
  const overlay: string[] = [];
  const extra: string[] = [];
  let readOnly = false;
  for (const opt of list) {
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    if (OVERLAY_KEYS.has(key)) overlay.push(eq < 0 ? key : `${key}=${absolutePaths(key, opt.slice(eq + 1))}`);
    else if (key === 'ro') readOnly = true;
    else if (PASSED_KEYS.has(key)) extra.push(opt);
    else if (IGNORED_KEYS.has(key) || key.startsWith('x-') || lenient) continue;
    else throw new UsageError(`unknown mount option '${opt}' (see ovlfs --help)`);
  }
  if (!overlay.some((o) => o.startsWith('lowerdir='))) throw new UsageError('missing -o lowerdir=… (the lower layers)');
  return { overlay: overlay.join(','), mount: { readOnly, extraOptions: extra, allowOther: true, defaultPermissions: true } };
}

/** Parses `mount …` (strict) or the helper form (lenient). */
function parseMount(args: string[], helper: boolean): MountRequest {
  const positional: string[] = [];
  const opts: string[] = [];
  let foreground = false;
  let debug = false;
  let log: string | undefined;
  let pidfile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '-o') opts.push(...splitOptions(value()));
    else if (a.startsWith('-o') && a.length > 2) opts.push(...splitOptions(a.slice(2)));
    else if (a === '-f' || a === '--foreground') foreground = true;
    else if (a === '-d' || a === '--debug') debug = true;
    else if (a === '--log') log = resolve(value());
    else if (a === '--pidfile') pidfile = resolve(value());
    // mount(8)'s helper flags: no mtab (-n), sloppy (-s), verbose (-v), and the type (-t fuse.ovlfs).
    else if (helper && (a === '-n' || a === '-s' || a === '-v')) continue;
    else if (helper && a === '-t') value();
    else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown flag '${a}' (see ovlfs --help)`);
    else positional.push(a);
  }
  const want = helper ? 2 : 1;
  if (positional.length !== want) {
    throw new UsageError(helper ? 'expected SOURCE MOUNTPOINT -o OPTIONS' : 'expected exactly one MOUNTPOINT after the options');
  }
  if (opts.length === 0) throw new UsageError('missing -o lowerdir=…,upperdir=…,workdir=…');
  const { overlay, mount } = sortOptions(opts, helper);
  if (debug) {
    mount.debug = true;
    if (log === undefined) foreground = true;
  }
  mount.handleSignals = true;
  return {
    mountpoint: resolve(positional[want - 1]!),
    source: helper ? positional[0]! : 'ovlfs',
    overlay,
    mount,
    foreground,
    log,
    pidfile,
  };
}

function needRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new UsageError(`${what} needs root: it opens /dev/fuse and calls mount(8). Rootless mounts (through a user namespace) are not supported yet; run it with sudo.`);
  }
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

function opsModule(): URL {
  // .js when built, .ts when run from sources under tsx: the worker loads the same kind.
  const ext = extname(fileURLToPath(import.meta.url));
  return new URL(`../fuse/overlay-fs${ext}`, import.meta.url);
}

function log(line: string): void {
  process.stderr.write(`ovlfs: ${line}\n`);
}

/** Mounts and serves in this process until unmounted. `ready` hears 'ok' or the error. */
async function serve(req: MountRequest, ready: (error: string | undefined) => void): Promise<number> {
  // New entries get the mode the kernel sends, with the caller's umask already applied; ours must not apply.
  process.umask(0);
  const arg: OverlayFsArg = { overlay: req.overlay };
  let mount;
  try {
    mount = await mountFuse({
      mountpoint: req.mountpoint,
      fsname: 'ovlfs',
      source: req.source,
      filesystem: { module: opsModule(), export: 'createOverlayFs', arg },
      options: req.mount,
    });
  } catch (e) {
    const message = e instanceof Error ? e.message.replace(/^fuse worker: /, '') : String(e);
    ready(message);
    return EXIT_FAIL;
  }
  // Relative layer paths were resolved by now; hold no directory busy.
  process.chdir('/');
  if (req.pidfile !== undefined) writeFileSync(req.pidfile, `${process.pid}\n`);
  log(`mounted ${req.mountpoint} (${req.overlay}), pid ${process.pid}`);
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

/** The parent half of daemonizing: start the child, wait for its one line, exit accordingly. */
function daemonize(req: MountRequest, argv: string[]): Promise<number> {
  const logFd = req.log !== undefined ? openSync(req.log, 'a') : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, ...argv], {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'pipe'],
    env: { ...process.env, [DAEMON_ENV]: '3' },
  });
  if (typeof logFd === 'number') closeSync(logFd);
  return new Promise((resolveExit) => {
    let said = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.on('data', (d: Buffer) => (said += d.toString()));
    const finish = (code: number | null): void => {
      const line = said.trim();
      if (line === 'ok') {
        child.unref();
        resolveExit(0);
      } else {
        log(line !== '' ? `mount failed: ${line}` : `the daemon exited (${code}) before the mount was live${req.log ? `; see ${req.log}` : ''}`);
        resolveExit(EXIT_FAIL);
      }
    };
    // The child closes the pipe once it has said its line; a child that dies closes it too.
    pipe.on('end', () => finish(child.exitCode));
    child.on('error', (e) => {
      log(`cannot start the daemon: ${e.message}`);
      resolveExit(EXIT_FAIL);
    });
  });
}

async function mountCommand(args: string[], helper: boolean, argv: string[]): Promise<number> {
  const req = parseMount(args, helper);
  needRoot('ovlfs mount');
  if (!existsSync('/dev/fuse')) throw new UsageError('/dev/fuse is missing: load the fuse module (modprobe fuse)');
  checkMountpoint(req.mountpoint);

  const fd = process.env[DAEMON_ENV];
  if (fd !== undefined) {
    // The daemon child: say one line on the pipe, then close it so the parent can go.
    const pipe = Number(fd);
    delete process.env[DAEMON_ENV];
    return serve(req, (error) => {
      try {
        writeSync(pipe, error === undefined ? 'ok\n' : `${error}\n`);
        closeSync(pipe);
      } catch {
        // the parent is gone; nothing to tell
      }
    });
  }
  if (req.foreground) {
    return serve(req, (error) => {
      if (error !== undefined) log(`mount failed: ${error}`);
    });
  }
  return daemonize(req, argv);
}

function umountCommand(args: string[]): Promise<number> {
  let lazy = false;
  const positional: string[] = [];
  for (const a of args) {
    if (a === '-l' || a === '--lazy') lazy = true;
    else if (a.startsWith('-')) throw new UsageError(`unknown flag '${a}' (see ovlfs --help)`);
    else positional.push(a);
  }
  if (positional.length !== 1) throw new UsageError('expected exactly one MOUNTPOINT');
  const mountpoint = resolve(positional[0]!);
  needRoot('ovlfs umount');
  if (!isMounted(mountpoint)) throw new UsageError(`${mountpoint} is not mounted`);
  return new Promise((resolveExit) => {
    const child = spawn('umount', lazy ? ['-l', mountpoint] : [mountpoint], { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      log(`cannot run umount: ${e.message}`);
      resolveExit(EXIT_FAIL);
    });
    child.on('close', (code) => {
      if (code === 0) return resolveExit(0);
      log(`umount ${mountpoint} failed: ${stderr.trim()}${/busy/i.test(stderr) ? ' (close what uses it, or use --lazy)' : ''}`);
      resolveExit(EXIT_FAIL);
    });
  });
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  // argv: [script, ...args], so that a daemon child can be started with the same script and arguments.
  const args = argv.slice(1);
  const invokedAs = basename(argv[0] ?? '');
  try {
    // Installed as /sbin/mount.fuse.ovlfs (or called by mount.fuse): SOURCE MOUNTPOINT [-o OPTIONS].
    if (invokedAs.startsWith('mount.')) return await mountCommand(args, true, argv);
    const [cmd, ...rest] = args;
    switch (cmd) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(HELP + '\n');
        return cmd === undefined ? EXIT_USAGE : 0;
      case '-V':
      case '--version':
        process.stdout.write(`ovlfs ${version()}\n`);
        return 0;
      case 'mount':
        return await mountCommand(rest, false, argv);
      case 'umount':
      case 'unmount':
        return await umountCommand(rest);
      case 'mount-helper':
        // For a helper script: SOURCE MOUNTPOINT -o OPTIONS, whatever SOURCE is called.
        return await mountCommand(rest, true, argv);
      default:
        if (cmd.startsWith('-')) throw new UsageError(`unknown flag '${cmd}' (see ovlfs --help)`);
        return await mountCommand(args, true, argv);
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

process.exitCode = await main(process.argv.slice(1));
