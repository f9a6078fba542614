// Running real programs in tests: a shell command with a deadline (a hung server shows up as a
// timeout, not a hung test run), and the same command asserted to succeed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, cwd?: string, env?: NodeJS.ProcessEnv, timeout = 60_000): Run {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout, cwd, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function ok(cmd: string, cwd?: string): string {
  const r = sh(cmd, cwd);
  assert.equal(r.status, 0, `${cmd} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
