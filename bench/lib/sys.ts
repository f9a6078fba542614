// Host plumbing: commands, temp dirs, mounts and loop filesystems. Everything made here is registered
// with a Cleanup and undone in a finally block by the caller, so a failed run leaves no mount behind.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function run(cmd: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  return r.stdout;
}

export function tryRun(cmd: string, args: readonly string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0;
}

export function hasCommand(name: string): boolean {
  return tryRun('sh', ['-c', `command -v ${name}`]);
}

/** LIFO undo stack: mounts are undone before the directories under them are removed. */
export class Cleanup {
  private steps: { what: string; fn: () => void }[] = [];
  add(what: string, fn: () => void): void {
    this.steps.push({ what, fn });
  }
  /** Runs (and forgets) the steps added since `mark`. */
  runFrom(mark: number): void {
    while (this.steps.length > mark) {
      const s = this.steps.pop()!;
      try {
        s.fn();
      } catch (e) {
        process.stderr.write(`cleanup (${s.what}) failed: ${(e as Error).message}\n`);
      }
    }
  }
  get mark(): number {
    return this.steps.length;
  }
  runAll(): void {
    this.runFrom(0);
  }
}

export function tempDir(cleanup: Cleanup, tag: string, parent = tmpdir()): string {
  const d = mkdtempSync(join(parent, `ovlfs-bench-${tag}-`));
  cleanup.add(`rm ${d}`, () => rmSync(d, { recursive: true, force: true }));
  return d;
}

export function isMounted(path: string): boolean {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  return lines.some((l) => l.split(' ')[4] === path);
}

export function umount(path: string): void {
  if (!isMounted(path)) return;
  if (tryRun('umount', [path])) return;
  // Something still holds it (a lingering git, a slow daemon): retry, then detach lazily.
  for (let i = 0; i < 20 && isMounted(path); i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    if (tryRun('umount', [path])) return;
  }
  if (isMounted(path)) tryRun('umount', ['-l', path]);
}

export function waitMounted(path: string, timeoutMs = 20_000): void {
  const end = Date.now() + timeoutMs;
  while (!isMounted(path)) {
    if (Date.now() > end) throw new Error(`${path} did not mount within ${timeoutMs} ms`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

/**
 * A loop-mounted filesystem in a sparse file: ext4, or XFS with reflink (mkfs.xfs -m reflink=1).
 * Returns the mount point; the cleanup unmounts it and deletes the image.
 */
export function loopFs(cleanup: Cleanup, kind: 'ext4' | 'xfs', sizeGiB: number): string {
  const dir = tempDir(cleanup, `loop-${kind}`);
  const img = join(dir, `${kind}.img`);
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  run('truncate', ['-s', `${sizeGiB}G`, img]);
  if (kind === 'xfs') run('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
  else run('mkfs.ext4', ['-q', '-F', img]);
  run('mount', ['-o', 'loop', img, mnt]);
  cleanup.add(`umount ${mnt}`, () => umount(mnt));
  return mnt;
}
