// A file made immutable or append-only while a handle on it is open, through the ovlfs mount next to
// the kernel overlay over identical layers (the oracle). The VFS checks the overlay's inode on every
// call that does not go through open: copy_file_range into an immutable file is refused
// (generic_copy_file_checks), fallocate too, and on an append-only file anything but an allocation that
// keeps the size (vfs_fallocate); ftruncate is refused on an append-only file only (do_ftruncate), and a
// plain write goes through. The kernel's FUSE client knows no such flags, so these are ours to refuse.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { sh } from '../support/shell.js';
import { mountSideBySide, sideBySideSkip, type SideBySide } from '../support/side-by-side.js';

function skipReason(): string | undefined {
  const mount = sideBySideSkip('flags-after-open mount tests');
  if (mount !== undefined) return mount;
  for (const program of ['xfs_io', 'chattr']) {
    if (spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status !== 0) return `${program} is not installed`;
  }
  return undefined;
}
const reason = skipReason();
if (reason !== undefined) process.stdout.write(`# skipping flags-after-open mount tests: ${reason}\n`);

function writeLayers(dir: string): void {
  for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'l', 'src'), 'source\n');
}

const options = (dir: string): string => `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`;

/** One xfs_io per call: open, set the flag on that handle, call, report; then the size it left. */
const SCRIPT = `
for op in 'pwrite 0 4' 'copy_range -l 4 src' 'falloc 0 64k' 'falloc -k 0 64k' 'fpunch 0 4k' 'fzero 0 4k' 'fzero -k 0 4k' 'truncate 1'; do
  for flag in i a; do
    rm -f f; head -c 8192 /dev/zero > f
    msg=$(xfs_io -c "chattr +$flag" -c "$op" f 2>&1 | grep -v -e '^wrote' -e 'ops/sec')
    xfs_io -r -c "chattr -$flag" f
    echo "+$flag $op: \${msg:-ok} $(stat -c %s f)"
  done
done`;

describe('calls on a handle opened before chattr +i or +a', { skip: reason }, () => {
  let pair: SideBySide | undefined;

  before(async () => {
    pair = await mountSideBySide('ovlfs-flags-after-open-', writeLayers, options);
  });

  after(() => pair?.close());

  test('are refused or let through as on the kernel overlay', () => {
    const { kmnt, omnt } = pair!;
    const k = sh(SCRIPT, kmnt);
    const o = sh(SCRIPT, omnt);
    assert.equal(k.stderr, '', 'the script runs cleanly on the kernel overlay');
    assert.equal(o.stderr, k.stderr);
    assert.equal(o.stdout, k.stdout);
    // What the kernel overlay did, so that a change of the oracle shows.
    const EPERM = 'Operation not permitted';
    assert.match(k.stdout, new RegExp(`^\\+i copy_range -l 4 src: copy_range: ${EPERM} 8192$`, 'm'));
    assert.match(k.stdout, /^\+a copy_range -l 4 src: ok 8192$/m);
    assert.match(k.stdout, new RegExp(`^\\+i falloc -k 0 64k: fallocate: ${EPERM} 8192$`, 'm'));
    assert.match(k.stdout, /^\+a falloc 0 64k: ok 65536$/m);
    assert.match(k.stdout, new RegExp(`^\\+a fzero -k 0 4k: fallocate: ${EPERM} 8192$`, 'm'));
    assert.match(k.stdout, /^\+i truncate 1: ok 1$/m);
    assert.match(k.stdout, new RegExp(`^\\+a truncate 1: ftruncate: ${EPERM} 8192$`, 'm'));
    assert.match(k.stdout, /^\+i pwrite 0 4: ok 8192$/m);
  });
});
