// Node's own fs tests (test/parallel/test-fs-*, fetched from Debian's nodejs source package for the
// running major version) run natively and with fs swapped for an overlay's. Every test that passes
// natively must pass on ovlfs, except those that need an OS object (run.ts, CANNOT_EXPRESS) and
// the few still listed as KNOWN_FAILING (which must keep failing until they are taken off).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { CANNOT_EXPRESS, KNOWN_FAILING, listTests, runSuite, summarize } from './run.js';
import { fetchNodeTests } from './source.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-node-tests-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const source = fetchNodeTests(dir);
const skip = 'skip' in source ? source.skip : false;
if (skip) console.log(`# node-suite skipped: ${skip}`);

test(`Node's fs tests pass on ovlfs wherever they pass natively`, { skip, timeout: 600_000 }, async () => {
  assert.ok(!('skip' in source));
  const files = listTests(source.root);
  assert.ok(files.length > 100, `only ${files.length} test-fs-* files in ${source.root}`);
  const results = await runSuite(source.root, files);
  const lines = results.map((r) => `${r.file}: native ${r.native}, ovlfs ${r.cannot !== undefined ? `cannot-express (${r.cannot})` : r.ovlfs}${r.known !== undefined && r.ovlfs !== 'pass' ? ` (known: ${r.known})` : ''}`);
  console.log(`# Node ${source.version} fs tests\n${lines.map((l) => `# ${l}`).join('\n')}\n# ${summarize(results).split('\n').join('\n# ')}`);
  for (const name of [...Object.keys(CANNOT_EXPRESS), ...Object.keys(KNOWN_FAILING)]) {
    assert.ok(files.includes(name), `${name} is listed, but this version of Node has no such test`);
  }
  const fixed = results.filter((r) => r.known !== undefined && r.ovlfs === 'pass').map((r) => r.file);
  assert.deepEqual(fixed, [], 'these now pass on ovlfs: take them off KNOWN_FAILING');
  const regressions = results.filter((r) => r.native === 'pass' && r.cannot === undefined && r.known === undefined && r.ovlfs !== 'pass');
  assert.deepEqual(
    regressions.map((r) => r.file),
    [],
    regressions.map((r) => `--- ${r.file} (${r.ovlfs})\n${r.output.split('\n').slice(0, 30).join('\n')}`).join('\n'),
  );
});
