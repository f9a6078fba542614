// The core suite as an unprivileged user. Run as root (as in CI), this test runs the core suite
// again as nobody: every test file of test/overlay and test/layer, in a child with nobody's uid and
// gid and no supplementary groups. There the DirLayer kind writes user.overlay.* xattrs (userxattr
// is the default without root) and the kernel's 0/0 whiteouts (which any user may make since Linux
// 5.8). The run must pass with at most a handful of skips, each of which says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { isRoot } from '../support/fixture.js';

const NOBODY = 65534;
/** Tests that cannot run without privilege (mounts, trusted.* xattrs, file capabilities); more means a test lost its way. */
const MAX_SKIPS = 7;

const root = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '../..');

/** The core suite: test/overlay and test/layer, without this file (which would only skip as nobody). */
function coreSuite(): string[] {
  const files: string[] = [];
  for (const dir of ['test/overlay', 'test/layer']) {
    for (const name of fs.readdirSync(path.join(root, dir)).sort()) {
      if (name.endsWith('.test.ts') && name !== path.basename(import.meta.filename ?? new URL(import.meta.url).pathname)) files.push(`${dir}/${name}`);
    }
  }
  return files;
}

/** What node --test reported in TAP: its counters and each skipped test with its reason. */
function parseTap(tap: string): { counts: Record<string, number>; skips: string[]; failures: string[] } {
  const counts: Record<string, number> = {};
  const skips: string[] = [];
  const failures: string[] = [];
  for (const line of tap.split('\n')) {
    const counter = /^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
    if (counter) counts[counter[1]!] = Number(counter[2]);
    const skip = /^\s*ok \d+ - (.*) # SKIP(?: (.*))?$/.exec(line);
    if (skip) skips.push(`${skip[1]}: ${skip[2] ?? '(no reason given)'}`);
    const failure = /^\s*not ok \d+ - (.*?)(?: # TODO.*)?$/.exec(line);
    if (failure && !/# TODO/.test(line)) failures.push(failure[1]!);
  }
  return { counts, skips, failures };
}

test('the core suite passes as an unprivileged user (nobody), over both layer kinds', {
  skip: isRoot ? false : `already unprivileged (uid ${process.getuid?.()}): npm test runs the core suite as this user`,
  timeout: 15 * 60_000,
}, (t) => {
  const asNobody: SpawnSyncOptions = {
    uid: NOBODY,
    gid: NOBODY, // libuv drops the supplementary groups too
    cwd: root,
    encoding: 'utf8',
    // nobody's home does not exist; tsx keeps its cache under the temp dir.
    // NODE_TEST_CONTEXT would make the nested runner report to this one in its own wire format.
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')), HOME: fs.mkdtempSync('/tmp/ovlfs-nobody-home-') },
    maxBuffer: 64 << 20,
  };
  fs.chmodSync(asNobody.env!.HOME!, 0o777);
  t.after(() => fs.rmSync(asNobody.env!.HOME!, { recursive: true, force: true }));
  const who = spawnSync(process.execPath, ['-p', 'JSON.stringify([process.getuid(), process.getgid(), process.getgroups()])'], asNobody);
  assert.ok(who.status === 0, `nobody must be able to read the checkout at ${root} and run node: ${who.error?.message ?? String(who.stderr)}`);
  const [uid, gid, groups] = JSON.parse(String(who.stdout)) as [number, number, number[]];
  assert.deepEqual([uid, gid], [NOBODY, NOBODY], 'the child runs as nobody');
  assert.ok(groups.every((g) => g === NOBODY), `and in no other group: ${groups.join(',')}`);

  const files = coreSuite();
  assert.ok(files.length >= 10, `the core suite: ${files.join(' ')}`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', '--test-concurrency=1', ...files], asNobody);
  const tap = String(run.stdout);
  const { counts, skips, failures } = parseTap(tap);
  for (const skip of skips) t.diagnostic(`skipped as nobody: ${skip}`);
  t.diagnostic(`as nobody: ${counts.pass} passed, ${counts.skipped} skipped, ${counts.todo ?? 0} todo, of ${counts.tests} tests in ${files.length} files`);
  assert.deepEqual(failures, [], `failed as nobody:\n${tap.slice(-8000)}\n${String(run.stderr).slice(-4000)}`);
  assert.equal(run.status, 0, `node --test exited ${run.status} (${run.signal ?? 'no signal'}):\n${String(run.stderr).slice(-4000)}`);
  assert.equal(counts.tests, (counts.pass ?? 0) + (counts.fail ?? 0) + (counts.cancelled ?? 0) + (counts.skipped ?? 0) + (counts.todo ?? 0), `a TAP summary:\n${tap.slice(-2000)}`);
  assert.equal(counts.fail, 0);
  assert.equal(counts.cancelled, 0);
  assert.ok((counts.pass ?? 0) > 100, `only ${counts.pass} passed`);
  assert.ok(skips.length <= MAX_SKIPS, `${skips.length} skips as nobody (at most ${MAX_SKIPS}):\n${skips.join('\n')}`);
  assert.ok(skips.every((s) => !s.endsWith('(no reason given)')), `every skip says why:\n${skips.join('\n')}`);
});
