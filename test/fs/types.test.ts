// Every synchronous function with a single signature in @types/node is checked against Node's own
// type at compile time (npm test runs tsc), as ZenFS does. The overloaded ones (statSync,
// readdirSync, readFileSync, readlinkSync, realpathSync, mkdtempSync, fstatSync, statfsSync) return
// a union here and get Node's overloads through the facade's type in src/fs/index.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as fs from 'node:fs';
import { SyncFs } from '../../src/fs/sync.js';
import { SYNC_NAMES } from '../../src/fs/index.js';
import { makeFixture } from '../support/fixture.js';

function typed(s: SyncFs) {
  return {
    existsSync: s.existsSync satisfies typeof fs.existsSync,
    accessSync: s.accessSync satisfies typeof fs.accessSync,
    openSync: s.openSync satisfies typeof fs.openSync,
    closeSync: s.closeSync satisfies typeof fs.closeSync,
    readvSync: s.readvSync satisfies typeof fs.readvSync,
    writevSync: s.writevSync satisfies typeof fs.writevSync,
    fsyncSync: s.fsyncSync satisfies typeof fs.fsyncSync,
    fdatasyncSync: s.fdatasyncSync satisfies typeof fs.fdatasyncSync,
    writeFileSync: s.writeFileSync satisfies typeof fs.writeFileSync,
    appendFileSync: s.appendFileSync satisfies typeof fs.appendFileSync,
    truncateSync: s.truncateSync satisfies typeof fs.truncateSync,
    ftruncateSync: s.ftruncateSync satisfies typeof fs.ftruncateSync,
    rmdirSync: s.rmdirSync satisfies typeof fs.rmdirSync,
    rmSync: s.rmSync satisfies typeof fs.rmSync,
    unlinkSync: s.unlinkSync satisfies typeof fs.unlinkSync,
    renameSync: s.renameSync satisfies typeof fs.renameSync,
    copyFileSync: s.copyFileSync satisfies typeof fs.copyFileSync,
    cpSync: s.cpSync satisfies typeof fs.cpSync,
    symlinkSync: s.symlinkSync satisfies typeof fs.symlinkSync,
    linkSync: s.linkSync satisfies typeof fs.linkSync,
    chmodSync: s.chmodSync satisfies typeof fs.chmodSync,
    fchmodSync: s.fchmodSync satisfies typeof fs.fchmodSync,
    chownSync: s.chownSync satisfies typeof fs.chownSync,
    lchownSync: s.lchownSync satisfies typeof fs.lchownSync,
    fchownSync: s.fchownSync satisfies typeof fs.fchownSync,
    utimesSync: s.utimesSync satisfies typeof fs.utimesSync,
    lutimesSync: s.lutimesSync satisfies typeof fs.lutimesSync,
    futimesSync: s.futimesSync satisfies typeof fs.futimesSync,
    readSync: s.readSync satisfies typeof fs.readSync,
    writeSync: s.writeSync satisfies typeof fs.writeSync,
    mkdirSync: s.mkdirSync satisfies typeof fs.mkdirSync,
  };

}

test('the facade has every node:fs function it claims, each a function', () => {
  const f = makeFixture([{ a: 'x' }]);
  try {
    const checked = typed(new SyncFs(f.overlay));
    for (const fn of Object.values(checked)) assert.equal(typeof fn, 'function');
    for (const name of SYNC_NAMES) assert.equal(typeof f.fs[name], 'function', name);
    for (const name of ['stat', 'readFile', 'createReadStream', 'opendir', 'opendirSync'] as const) assert.equal(typeof f.fs[name], 'function', name);
    for (const name of ['stat', 'readFile', 'open', 'opendir', 'cp', 'rm'] as const) assert.equal(typeof f.fs.promises[name], 'function', name);
  } finally {
    f.cleanup();
  }
});
