// The image commands' command line: --help for each, and usage errors that say what is wrong.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { ovlfs } from './registry-fixture.js';

/**
 * Runs image commands in one child process (one start-up for all), each with what it wrote to
 * stdout and stderr.
 */
function callAll(calls: [string, string[]][]): { status: number; stdout: string; stderr: string }[] {
  const script = `
    const { imageCommand } = await import(${JSON.stringify(new URL('../../src/cli/image-commands.ts', import.meta.url).href)});
    const results = [];
    const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
    for (const [cmd, args] of ${JSON.stringify(calls)}) {
      const r = { stdout: '', stderr: '' };
      process.stdout.write = (s) => ((r.stdout += s), true);
      process.stderr.write = (s) => ((r.stderr += s), true);
      r.status = await imageCommand(cmd, args);
      process.stdout.write = write.out;
      process.stderr.write = write.err;
      results.push(r);
    }
    write.out(JSON.stringify(results));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: number; stdout: string; stderr: string }[];
}

test('ovlfs pull|diff|commit|run --help', () => {
  const r = ovlfs(['pull', '--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: ovlfs pull /);
  const cmds = ['diff', 'commit', 'run'];
  callAll(cmds.map((cmd) => [cmd, ['--help']])).forEach((h, i) => {
    assert.equal(h.status, 0);
    assert.match(h.stdout, new RegExp(`^Usage: ovlfs ${cmds[i]} `));
  });
  assert.match(ovlfs(['--help']).stdout, /ovlfs pull\|diff\|commit\|run/);
});

test('usage errors say what is wrong', () => {
  const cases: [string, string[], RegExp][] = [
    ['pull', ['docker://127.0.0.1:1/a:b'], /expected SRC DIR/],
    ['pull', ['--tls-verify=maybe', 'oci:/x', '/y'], /--tls-verify takes true or false/],
    ['pull', ['--max-layer-size', 'lots', 'oci:/x', '/y'], /--max-layer-size takes a size/],
    ['pull', ['--creds', 'nopassword', 'oci:/x', '/y'], /--creds takes USER:PASSWORD/],
    ['pull', ['http://x/y', '/y'], /unknown transport 'http'/],
    ['commit', ['upper', 'oci:/x'], /--from DIR is required/],
    ['run', ['--image', '/x'], /no command/],
    ['run', ['--image', '/x', '-o', 'lowerdir=/a', '--', 'true'], /one of the two/],
    ['run', ['-o', 'lowerdir=/a', '--commit', 'oci:/x', '--', 'true'], /--commit needs --image/],
    ['diff', ['-o', 'upperdir=/u', '/u'], /-o takes lowerdir=/],
  ];
  callAll(cases.map(([cmd, args]) => [cmd, args])).forEach((r, i) => {
    const [cmd, args, message] = cases[i]!;
    assert.notEqual(r.status, 0, `${cmd} ${args.join(' ')}`);
    assert.match(r.stderr, message, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  });
  // A command that ran and failed before CMD answers 125, as podman run does, and leaves no scratch
  // directory behind.
  const tmp = mkdtempSync(join(tmpdir(), 'ovlfs-run-fail-'));
  try {
    const r = ovlfs(['run', '-o', 'lowerdir=/nonexistent-ovlfs-layer', '--', 'true'], { TMPDIR: tmp });
    assert.equal(r.status, 125, r.stderr);
    // (tsx keeps its cache there too.)
    assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('ovlfs-run-')), [], 'the failed run left its scratch directory');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
