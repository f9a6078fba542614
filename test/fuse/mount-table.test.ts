// Proves src/mount-table.ts on lines as the kernel writes them; needs no mount.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isMounted, parseMounts, unescapeMountField } from '../../src/mount-table.js';

test('the four octal escapes of mangle() come back as the characters', () => {
  assert.equal(unescapeMountField('/a\\040b\\011c\\012d\\134e'), '/a b\tc\nd\\e');
  assert.equal(unescapeMountField('/plain'), '/plain');
});

test('options split on commas and on the first = before they are unescaped', () => {
  const [m] = parseMounts('overlay /mnt/with\\040space overlay rw,lowerdir=/l\\054x,upperdir=/u\\075v,workdir=/w\\134z,xino=off 0 0\n');
  assert.equal(m?.mountpoint, '/mnt/with space');
  assert.equal(m?.type, 'overlay');
  assert.deepEqual(m?.options, [
    ['rw', undefined],
    ['lowerdir', '/l,x'],
    ['upperdir', '/u=v'],
    ['workdir', '/w\\z'],
    ['xino', 'off'],
  ]);
});

test('the root is always mounted, a fresh name is not', { skip: process.platform !== 'linux' }, () => {
  assert.equal(isMounted('/'), true);
  assert.equal(isMounted('/no/such/mount/point'), false);
});
