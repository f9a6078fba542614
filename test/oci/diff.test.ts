// diffUpper: an upper layer's changes in `podman diff` form, from upper layers the kernel wrote
// (whiteouts, an opaque directory, a renamed directory, metacopy files) and from unpacked layers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { diffUpper, type Change } from '../../src/oci/diff.js';
import { unpackLayer } from '../../src/oci/layer-unpack.js';
import { cannotMountOverlay, isRoot, kernelChangedUpper, LONG_NAME, mkdirs, scratch, streamOf, tarOf } from './layer-fixtures.js';

const PREFIX = isRoot ? 'trusted.overlay.' : 'user.overlay.';

function lines(changes: Change[]): string[] {
  return changes.map((c) => `${c.kind} ${c.path}`);
}

test('the changes the kernel made, told apart from additions by the lower layer', async (t) => {
  const why = cannotMountOverlay();
  if (why !== undefined) return t.skip(why);
  const base = scratch(t, 'diff-kernel');
  const { lower, upper } = await kernelChangedUpper(base);
  assert.deepEqual(lines(diffUpper(upper, { lowerdirs: [lower], xattrPrefix: 'trusted.overlay.' })), [
    'C /chmod.txt',
    'D /del.txt',
    'D /deldir',
    'A /fifo',
    'C /from',
    'D /from/inner',
    'A /héllo',
    'A /keep-link',
    'C /keep.txt',
    `A /${LONG_NAME}`,
    'C /mod.txt',
    // A renamed directory: added whole under its new name, deleted under its old one.
    'A /moved',
    'A /moved/added',
    'A /moved/sub',
    'A /moved/sub/f',
    'A /movedfile',
    'C /nested',
    'C /nested/deep',
    'C /nested/deep/file',
    'D /nested/deep/file2',
    'A /newdir',
    'A /newdir/a',
    'A /newdir/a/b',
    'A /newdir/a/b/file',
    'A /newsym',
    'A /null',
    // Made anew over a lower directory: opaque, and what it hid is deleted.
    'C /opq',
    'A /opq/new',
    'D /opq/old',
    'D /opq/x',
    'D /ren',
    // Moved across directories and renamed twice, a renamed child inside: added whole at the end.
    'A /to',
    'A /to/inner3',
    'A /to/inner3/a',
    'A /to/inner3/sub2',
    'A /to/inner3/sub2/b',
  ]);

  // Without the lower layers nothing can be told to be a change: every entry is an addition.
  const alone = lines(diffUpper(upper, { xattrPrefix: 'trusted.overlay.' }));
  assert.ok(alone.every((line) => /^[AD] /.test(line)), alone.join('\n'));
  assert.ok(alone.includes('A /keep.txt') && alone.includes('D /del.txt') && alone.includes('A /moved/added') && alone.includes('D /moved/g'));
});

test('an unpacked layer over another: whiteouts, an opaque directory and its hidden children, sorted by bytes', async (t) => {
  const base = scratch(t, 'diff-layers');
  mkdirs(`${base}/lower`, `${base}/upper`);
  await unpackLayer(streamOf(await tarOf([
    { name: 'etc', type: 'directory' }, { name: 'etc/motd', data: 'hi' }, { name: 'etc/issue', data: 'x' },
    { name: 'var', type: 'directory' }, { name: 'var/cache', type: 'directory' }, { name: 'var/cache/a', data: 'a' },
    { name: 'var/cache/b', data: 'b' }, { name: 'var/log', type: 'directory' }, { name: 'var/log/old', data: 'old' },
  ])), `${base}/lower`, { xattrPrefix: PREFIX, privileged: false });
  await unpackLayer(streamOf(await tarOf([
    { name: 'etc/.wh.issue', data: '' }, { name: 'etc/motd', data: 'hello' }, { name: 'etc/motd.d', type: 'directory' },
    { name: 'var/cache/.wh..wh..opq', data: '' }, { name: 'var/cache/b', data: 'new b' },
    { name: 'var/log-new', data: '' }, { name: 'var/log/.wh.never-there', data: '' },
  ])), `${base}/upper`, { xattrPrefix: PREFIX, privileged: false });
  assert.deepEqual(lines(diffUpper(`${base}/upper`, { lowerdirs: [`${base}/lower`], xattrPrefix: PREFIX })), [
    'C /etc',
    'D /etc/issue',
    'C /etc/motd',
    'A /etc/motd.d',
    'C /var',
    'C /var/cache',
    'D /var/cache/a',
    'C /var/cache/b',
    'C /var/log',
    'A /var/log-new',
  ].sort((a, b) => Buffer.compare(Buffer.from(a.slice(2)), Buffer.from(b.slice(2)))));
  assert.ok(fs.existsSync(`${base}/upper/var/log/never-there`), 'the whiteout is there, it just hides nothing');
});
