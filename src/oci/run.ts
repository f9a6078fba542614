// Run: a command with an image's merged view as its root, on a throwaway upper layer. It runs under
// unshare(1) in private mount and pid namespaces (and a user namespace when not root), where the
// kernel overlay is mounted over the image's layers, /proc and /dev are provided, and chroot(8)
// enters the view. Every mount dies with the namespaces, so nothing is left behind on the host, and
// the kernel overlay never writes to a lowerdir, so the image stays as it was.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, chmodSync, chownSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { fsError } from '../errors.js';
import { readBaseImage } from './commit.js';
import { diffUpper, type Change } from './diff.js';
import { isPrivileged } from './xattr-choice.js';

export interface RunOptions {
  /** A pulled image (layout directory) to run in. */
  image?: string;
  /** Or the layers themselves, top-most first. */
  lowerdirs?: string[];
  /** Keep the upper layer here afterwards (it must not exist yet). */
  keep?: string;
  /** Standard input, output and error of the command (default: this process's). */
  stdio?: 'inherit' | 'pipe';
}

export interface RunResult {
  /** The command's exit status (128 + signal number when a signal ended it). */
  status: number;
  /** The changes it made, sorted, as `ovlfs diff` lists them. */
  changes: Change[];
  /** The upper layer, while it exists (until `cleanup`, unless kept). */
  upper: string;
  /** Removes the throwaway upper layer (a kept one stays). */
  cleanup(): void;
}

// Inside the namespaces: mount the overlay, give it /proc and /dev, and enter it.
const ENTER = `set -e
mnt=$1; opts=$2; shift 2
mount -t overlay overlay -o "$opts" "$mnt"
if [ -d "$mnt/proc" ]; then mount -t proc proc "$mnt/proc"; fi
if [ -d "$mnt/dev" ]; then mount --rbind /dev "$mnt/dev"; fi
exec chroot "$mnt" "$@"`;

/** A lowerdir value as mount(8) takes it: ',' ':' and '\\' in a path are escaped. */
function escapeLayer(path: string): string {
  return path.replace(/[\\,:]/g, (c) => `\\${c}`);
}

export async function run(command: string[], options: RunOptions): Promise<RunResult> {
  if (command.length === 0) throw fsError('EINVAL', 'run', undefined, undefined, 'no command to run');
  const lowerdirs = options.image !== undefined ? readBaseImage(options.image).lowerdirs : (options.lowerdirs ?? []).map((d) => resolve(d));
  if (lowerdirs.length === 0) throw fsError('EINVAL', 'run', options.image, undefined, 'no layers to run in (pull the image first, or give -o lowerdir=…)');
  const keep = options.keep === undefined ? undefined : resolve(options.keep);
  if (keep !== undefined && existsSync(keep)) throw fsError('EEXIST', 'run', keep, undefined, '--keep needs a path that does not exist yet');
  // The merged root shows the upper root's mode and owner: give it the image's. A missing layer fails
  // here, before anything is made.
  const top = statSync(lowerdirs[0]!);
  // The upper and work directories must share a filesystem: beside the kept upper, or in tmpdir.
  const scratch = mkdtempSync(keep !== undefined ? join(dirname(keep), '.ovlfs-run-') : join(tmpdir(), 'ovlfs-run-'));
  const upper = join(scratch, 'upper');
  const work = join(scratch, 'work');
  const merged = join(scratch, 'merged');
  try {
    for (const d of [upper, work, merged]) mkdirSync(d);
    chmodSync(upper, top.mode & 0o7777);
    chownSync(upper, top.uid, top.gid);
  } catch (e) {
    rmSync(scratch, { recursive: true, force: true });
    throw e;
  }

  const privileged = isPrivileged();
  const mountOptions = `lowerdir=${lowerdirs.map(escapeLayer).join(':')},upperdir=${escapeLayer(upper)},workdir=${escapeLayer(work)}${privileged ? '' : ',userxattr'}`;
  const unshare = ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', ...(privileged ? [] : ['--user', '--map-root-user'])];
  let status: number;
  try {
    status = await new Promise<number>((resolveStatus, reject) => {
      const child = spawn('unshare', [...unshare, '--', 'sh', '-c', ENTER, 'ovlfs-run', merged, mountOptions, ...command], { stdio: options.stdio ?? 'inherit' });
      child.on('error', (e) => reject(fsError('ENOENT', 'spawn', 'unshare', undefined, `ovlfs run needs unshare(1) from util-linux (${e.message})`)));
      child.on('close', (code, signal) => resolveStatus(code ?? 128 + (signal === null ? 0 : (constants.signals as Record<string, number>)[signal] ?? 0)));
    });
  } catch (e) {
    rmSync(scratch, { recursive: true, force: true });
    throw e;
  }
  // The kernel leaves work/work mode 000: without privilege it cannot be removed until it is opened up.
  try {
    chmodSync(join(work, 'work'), 0o700);
  } catch {
    // Not made (the mount failed before it).
  }
  const changes = diffUpper(upper, { lowerdirs, xattrPrefix: privileged ? 'trusted.overlay.' : 'user.overlay.' });
  let kept: string | undefined;
  if (keep !== undefined) {
    renameSync(upper, keep);
    rmSync(scratch, { recursive: true, force: true });
    kept = keep;
  }
  return {
    status,
    changes,
    upper: kept ?? upper,
    cleanup: () => {
      if (kept === undefined) rmSync(scratch, { recursive: true, force: true });
    },
  };
}
