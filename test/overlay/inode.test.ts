// Inode numbers: stable across copy-up, and unique across layers on different filesystems (xino).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryLayer, Overlay, openOverlay } from '../../src/index.js';
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

test('a new entry\'s attributes from the stat its creation took are the ones a stat gives (createdAttrs)', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-created-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(dir, d));
  const o = new Overlay({ lowerdir: [MemoryLayer.from({ d: { old: 'x' } })], upperdir: path.join(dir, 'upper'), workdir: path.join(dir, 'work') });
  t.after(() => o.close());
  // In a directory still below: the create copies it up first.
  const file = o.create(o.lookup(o.root, 'd')!, 'new', fs.constants.O_WRONLY, 0o640);
  t.after(() => o.release(file));
  const node = o.nodeOf(file);
  const made = o.createdAttrs(node);
  const stat = o.getattr(node);
  for (const k of ['dev', 'ino', 'mode', 'nlink', 'uid', 'gid', 'size', 'blocks', 'mtimeNs', 'ctimeNs'] as const) assert.equal(made[k], stat[k], k);
  assert.equal(made.mode, fs.statSync(path.join(dir, 'upper', 'd', 'new')).mode);
  assert.notEqual(made, stat, 'a stat object of its own');
  assert.ok(made instanceof fs.Stats && stat instanceof fs.Stats, 'of the kind a stat hands out');
});
