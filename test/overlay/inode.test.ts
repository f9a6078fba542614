// Inode numbers: stable across copy-up, and unique across layers on different filesystems (xino).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryLayer, openOverlay } from '../../src/index.js';
import { writeTree } from '../support/fixture.js';

test('layers on different filesystems never share an st_ino (xino)', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-xino-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  writeTree(path.join(dir, 'lower'), Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`disk${i}`, 'x'])));
  const memA = MemoryLayer.from(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`a${i}`, 'x'])));
  const memB = MemoryLayer.from(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`b${i}`, 'x'])));
  const upper = new MemoryLayer();
  const o = openOverlay({ lowerdir: [memA, path.join(dir, 'lower'), memB], upperdir: upper });
  t.after(() => o.close());
  const names = o.fs.readdirSync('/') as string[];
  assert.equal(names.length, 60);
  const inos = new Set(names.map((n) => o.fs.statSync('/' + n).ino));
  assert.equal(inos.size, 60, 'every file has its own st_ino');
  const before = o.fs.statSync('/a3').ino;
  o.fs.appendFileSync('/a3', '+');
  assert.equal(o.fs.statSync('/a3').ino, before, 'and keeps it across copy-up');
  const devs = new Set(names.map((n) => o.fs.statSync('/' + n).dev));
  assert.equal(devs.size, 1, 'one st_dev for the whole overlay');
  const deep = o.fs.statSync('/b7').ino;
  o.fs.chmodSync('/b7', 0o600);
  o.close();
  const again = openOverlay({ lowerdir: [memA, path.join(dir, 'lower'), memB], upperdir: upper });
  t.after(() => again.close());
  assert.equal(again.fs.statSync('/b7').ino, deep, 'and after reopening');
  assert.equal(again.fs.statSync('/a3').ino, before);
});
