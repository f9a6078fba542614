// Spare daemons: a daemon made by ovlfs.sh (mount-in-place.ts) whose mount has ended waits a while for
// the script's next mount instead of exiting, so that the next container start pays for no Node start-up
// and finds its code compiled. The script hands a mount over only to a spare that would have been started
// the same way, and the spare checks that before it takes one.
//
// The handover, in SPARE_DIR (OVLFS_SPARE_DIR, or XDG_RUNTIME_DIR/ovlfs/spares, or /run/ovlfs/spares; a
// directory of this user's, mode 0700), for the spare NAME = PID.STARTTIME (its start time tells it from
// a later process with its pid):
//   NAME.ready   the spare is waiting;
//   NAME.claim   made by a claimant with O_EXCL, so that only one wins (the spare makes it itself to
//                retire): the claiming shell's pid and the command's arguments, NUL-separated. The
//                claimant then sends SIGUSR2 and waits up to 5 s for the answer, SIGURG (taken) or
//                SIGWINCH (refused), which processes ignore by default, should a pid have gone to
//                another; with none it kills the spare, which then cannot take the mount late. A
//                claim that was taken stays while the process serves that mount, so that no later
//                claim succeeds then; the process removes it when it waits again (or the next spare
//                clears it, once the process is gone).
// A spare takes a claim only when the claiming shell runs as the spare was started: same namespaces,
// cgroup, ids and capabilities, limits, scheduling, umask, root, security label, the environment ovlfs
// reads, and the same install. It then takes the shell's status pipe (fd 3), stdout and stderr (fds 1
// and 5), moves to the shell's working directory and answers: from there on it is the command that the
// script would have started (commands.ts). The script starts ovlfs.cjs otherwise. A spare ends after
// SPARE_IDLE_MS without a mount, on SIGTERM, SIGINT or SIGHUP, or once a mount it took has failed.
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** How long a spare waits for a mount before it exits, in ms (OVLFS_SPARE_IDLE_MS). */
export const SPARE_IDLE_MS = 300_000;
/** Spares that may wait in one directory at once. */
export const MAX_SPARES = 2;

/** The spares' directory, or undefined when spares are off (OVLFS_SPARE=0); as ovlfs.sh works it out. */
export function spareDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.OVLFS_SPARE === '0') return undefined;
  if (env.OVLFS_SPARE_DIR) return env.OVLFS_SPARE_DIR;
  return join(env.XDG_RUNTIME_DIR || '/run', 'ovlfs', 'spares');
}

/** A mount handed over: the command's arguments, and the claiming shell's status pipe, stdout and stderr. */
export interface Claim {
  args: string[];
  statusFd: number;
  stdoutFd: number;
  stderrFd: number;
}

type Pidfd = typeof import('../sys/pidfd.js');

/** What this process was started with, taken before it changed anything (serve() sets its umask to 0). */
export interface Origin {
  umask: string;
  start: string;
  install: string;
}

const STATUS_KEYS = /^(Umask|Uid|Gid|Groups|NoNewPrivs|Seccomp|CapInh|CapPrm|CapEff|CapBnd|CapAmb|Cpus_allowed_list|Mems_allowed_list):/;
// The environment that decides how ovlfs behaves (OVLFS_STATUS_FD is the script's, set for ovlfs.cjs only).
const ENV_KEYS = /^(PATH|HOME|TMPDIR|XDG_RUNTIME_DIR|NODE_OPTIONS|NODE_PATH|OVLFS_(?!STATUS_FD=)[A-Z_]*)=/;
const NAMESPACES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'];
const ENDING: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function linkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/** /proc/PID/stat's fields from the state on (field 3 is [0]): the command name may hold spaces. */
function statFields(pid: number | 'self'): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Everything a process inherits that would make a daemon started by it behave otherwise. */
function context(pid: number | 'self', umask?: string): string {
  const p = `/proc/${pid}`;
  const status = readFileSync(`${p}/status`, 'utf8').split('\n').filter((l) => STATUS_KEYS.test(l));
  const shown = umask === undefined ? status : status.map((l) => (l.startsWith('Umask:') ? `Umask:\t${umask}` : l));
  const f = statFields(pid);
  const env = readOr(`${p}/environ`).split('\0').filter((e) => ENV_KEYS.test(e)).sort();
  return JSON.stringify({
    status: shown,
    nice: f[16], rtPriority: f[37], policy: f[38],
    ns: NAMESPACES.map((n) => linkOr(`${p}/ns/${n}`)),
    root: linkOr(`${p}/root`),
    cgroup: readOr(`${p}/cgroup`),
    limits: readOr(`${p}/limits`),
    oom: readOr(`${p}/oom_score_adj`),
    loginuid: readOr(`${p}/loginuid`),
    label: readOr(`${p}/attr/current`),
    env,
  });
}

/** The files this process runs: a spare of an install that was replaced meanwhile takes no mount. */
function install(): string {
  return [process.argv[1] ?? '', fileURLToPath(import.meta.url)].map((f) => {
    try {
      const st = statSync(f, { bigint: true });
      return `${f} ${st.dev}:${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`;
    } catch {
      return `${f} missing`;
    }
  }).join('\n');
}

/** Taken at start-up, while umask and the rest are still what the caller gave. */
export function origin(): Origin {
  const status = readFileSync('/proc/self/status', 'utf8');
  return { umask: /^Umask:\s*(\S+)/m.exec(status)?.[1] ?? '', start: statFields('self')[19] ?? '', install: install() };
}

/** The directory, made if need be; undefined unless it is this user's own and closed to everyone else. */
function openDir(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o077) !== 0) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

/** Drops the files of spares that are gone (killed, or the machine restarted with the directory kept); counts the live ones. */
function liveSpares(dir: string): number {
  let live = 0;
  for (const entry of readdirSync(dir)) {
    const m = /^(\d+)\.(\d+)\.(ready|claim)$/.exec(entry);
    if (m === null) continue;
    let alive = false;
    try {
      const f = statFields(Number(m[1]));
      alive = f[19] === m[2] && f[0] !== 'Z' && f[0] !== 'X';
    } catch {
      // no such process
    }
    if (!alive) unlinkQuietly(join(dir, entry));
    else if (m[3] === 'ready') live++;
  }
  return live;
}

/**
 * Waits as a spare until a mount is handed over (its claim), or the idle time is over, or this process
 * may not be one (spares off, the directory not safe, enough spares waiting): then undefined, and the
 * process ends as it would have.
 */
export async function waitAsSpare(own: Origin, env: NodeJS.ProcessEnv = process.env): Promise<Claim | undefined> {
  const wanted = spareDir(env);
  const dir = wanted === undefined ? undefined : openDir(wanted);
  if (dir === undefined || liveSpares(dir) >= MAX_SPARES) return undefined;
  // Loaded here, after serving, so that a daemon's start-up does not pay for it.
  const pidfd: Pidfd = await import('../sys/pidfd.js');
  const name = join(dir, `${process.pid}.${own.start}`);
  const idleMs = Number(env.OVLFS_SPARE_IDLE_MS) > 0 ? Number(env.OVLFS_SPARE_IDLE_MS) : SPARE_IDLE_MS;
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (claim: Claim | undefined): void => {
      process.off('SIGUSR2', onClaim);
      for (const sig of ENDING) process.off(sig, end);
      clearTimeout(timer);
      // A claim that was taken stays until this process waits again: a script that found the spare
      // just before it went can then no longer claim it while it serves (its O_EXCL fails), where it
      // would wait for an answer in vain and kill the daemon of the mount being served.
      for (const s of claim === undefined ? ['ready', 'claim'] : ['ready']) unlinkQuietly(`${name}.${s}`);
      resolve(claim);
    };
    const onClaim = (): void => {
      let text: string;
      try {
        text = readFileSync(`${name}.claim`, 'utf8');
      } catch {
        return; // a stray signal: nobody has claimed
      }
      const [shell, ...args] = text.split('\0');
      if (args.at(-1) === '') args.pop();
      const pid = Number(shell);
      const claim = Number.isInteger(pid) && pid > 0 && args.length > 0 ? take(pid, args, own, pidfd) : undefined;
      try {
        process.kill(pid, claim !== undefined ? 'SIGURG' : 'SIGWINCH');
      } catch {
        // The claimant is gone (it gave up): take nothing.
        if (claim !== undefined) for (const fd of [claim.statusFd, claim.stdoutFd, claim.stderrFd]) closeSync(fd);
        return finish(undefined);
      }
      finish(claim);
    };
    // Retiring claims this spare itself, so that no claimant can take it while it goes.
    const retire = (): void => {
      try {
        writeFileSync(`${name}.claim`, '', { flag: 'wx', mode: 0o600 });
        finish(undefined);
      } catch {
        // Claimed just now: its SIGUSR2 follows at once, unless the claimant died between the two.
        timer = setTimeout(() => finish(undefined), 5_000);
      }
    };
    // Ended from outside, it leaves no files behind.
    const end = (): void => finish(undefined);
    process.on('SIGUSR2', onClaim);
    for (const sig of ENDING) process.on(sig, end);
    // The claim of the mount this process served last goes only now that a claim can be answered.
    unlinkQuietly(`${name}.claim`);
    try {
      writeFileSync(`${name}.ready`, '', { flag: 'wx', mode: 0o600 });
    } catch {
      return finish(undefined);
    }
    timer = setTimeout(retire, idleMs);
  });
}

/**
 * The claiming shell's files: duplicated as they are (pidfd_getfd), or else opened again through /proc,
 * where sockets cannot be (Node's spawn gives pipes that are sockets): then it throws, and the claim is
 * refused.
 */
function shellFiles(pid: number, fds: number[], { pidfdOpen, pidfdGetfd }: Pidfd): number[] {
  const got: number[] = [];
  try {
    const pidfd = pidfdOpen(pid);
    try {
      for (const fd of fds) got.push(pidfdGetfd(pidfd, fd));
      return got;
    } finally {
      closeSync(pidfd);
    }
  } catch {
    for (const fd of got.splice(0)) closeSync(fd);
  }
  try {
    for (const fd of fds) got.push(openSync(`/proc/${pid}/fd/${fd}`, fd === 3 ? 'w' : 'a'));
    return got;
  } catch (e) {
    for (const fd of got) closeSync(fd);
    throw e;
  }
}

/** The claim, if this spare may take it: the claiming shell's fds opened and its directory entered. */
function take(pid: number, args: string[], own: Origin, pidfd: Pidfd): Claim | undefined {
  const opened: number[] = [];
  try {
    if (install() !== own.install || context(pid) !== context('self', own.umask)) return undefined;
    // The shell keeps its stderr on fd 5 too, as its own fd 2 may be on /dev/null for a moment (ovlfs.sh).
    for (const fd of shellFiles(pid, [3, 1, 5], pidfd)) opened.push(fd);
    process.chdir(`/proc/${pid}/cwd`);
    return { args, statusFd: opened[0]!, stdoutFd: opened[1]!, stderrFd: opened[2]! };
  } catch {
    for (const fd of opened) closeSync(fd);
    return undefined;
  }
}
