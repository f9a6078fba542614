// O_TMPFILE through the ovlfs mount (FUSE_TMPFILE, then FUSE_LINK on the unnamed file's node id),
// next to the kernel overlay over identical layers: the same Python script runs on both mounts and
// must print the same, the upper layers must end up alike, and the ovlfs work directory must hold
// nothing once the unnamed files are closed or named.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { mountFuse, type FuseMount } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { sh } from '../support/shell.js';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'the mount needs root (mount -t fuse, mount -t overlay)';
  if (!existsSync('/dev/fuse')) return 'the mount needs /dev/fuse';
  if (spawnSync('python3', ['-c', '']).status !== 0) return 'needs python3 for O_TMPFILE and linkat';
  return undefined;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping O_TMPFILE mount tests: ${reason}\n`);

function writeLayers(dir: string): void {
  for (const d of ['lower/d', 'lower/e', 'upper', 'work', 'm']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'lower/d/old'), 'lower old\n');
  writeFileSync(join(dir, 'lower/e/keep'), 'lower keep\n');
}

// Each case prints what it saw; errors print as their errno name, so both mounts can be compared.
const SCRIPT = String.raw`
import os, json, errno, ctypes
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def tmp(d, flags=0):
    return os.open(d, os.O_TMPFILE | os.O_RDWR | flags, 0o640)
def by_proc(fd, path):
    try:
        os.link(f'/proc/self/fd/{fd}', path)
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
def name(fd, path):
    # linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH)
    if libc.linkat(fd, b'', -100, path.encode(), 0x1000) == 0:
        return 'ok'
    return errno.errorcode[ctypes.get_errno()]
def st(fd):
    s = os.fstat(fd)
    return [oct(s.st_mode), s.st_nlink, s.st_size]

# Named: in a lower directory (copied up first), then a second name, then read back by name.
fd = tmp('d')
os.write(fd, b'tmp data\n')
out['before'] = st(fd)
# The kernel overlay refuses the /proc/self/fd way (EXDEV): the mount must answer alike.
out['proc'] = by_proc(fd, 'd/proc')
out['link'] = name(fd, 'd/new')
out['after'] = st(fd)
out['again'] = name(fd, 'e/second')
out['twice'] = st(fd)
out['exists'] = name(fd, 'd/old')
os.write(fd, b'more\n')
os.close(fd)
out['new'] = open('d/new').read()
out['second'] = open('e/second').read()
out['newstat'] = [oct(os.stat('d/new').st_mode), os.stat('d/new').st_nlink]

# Over a whiteout: the name of a removed lower file.
os.unlink('d/old')
fd = tmp('d')
os.write(fd, b'replaces old\n')
out['overwhiteout'] = name(fd, 'd/old')
os.close(fd)
out['old'] = open('d/old').read()

# Never named: gone with its fd.
fd = tmp('e')
os.write(fd, b'x' * 100000)
out['unnamed'] = st(fd)
os.close(fd)

# O_EXCL: never linkable.
fd = tmp('e', os.O_EXCL)
out['excl'] = name(fd, 'e/excl')
out['exclproc'] = by_proc(fd, 'e/excl')
os.close(fd)

# Read-only O_TMPFILE is refused.
try:
    os.close(os.open('e', os.O_TMPFILE | os.O_RDONLY))
    out['rdonly'] = 'ok'
except OSError as e:
    out['rdonly'] = errno.errorcode[e.errno]

out['d'] = sorted(os.listdir('d'))
out['e'] = sorted(os.listdir('e'))
print(json.dumps(out, sort_keys=True))
`;

/** Every entry below `dir` as "path type", for comparing upper layers. */
function tree(dir: string): string[] {
  const r = sh(`find . -mindepth 1 -printf '%p %y\\n' | sort`, dir);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter((l) => l !== '');
}

describe('O_TMPFILE on the ovlfs mount, next to the kernel overlay', { skip: reason }, () => {
  let base = '';
  let mount: FuseMount | undefined;
  const ours = (p: string) => join(base, 'ovlfs', p);
  const kernel = (p: string) => join(base, 'kernel', p);

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'ovlfs-tmpfile-'));
    writeLayers(join(base, 'ovlfs'));
    writeLayers(join(base, 'kernel'));
    const k = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${kernel('lower')},upperdir=${kernel('upper')},workdir=${kernel('work')}`, kernel('m')], { encoding: 'utf8' });
    assert.equal(k.status, 0, k.stderr);
    mount = await mountFuse({
      mountpoint: ours('m'),
      fsname: 'ovlfs',
      source: 'ovlfs-test',
      filesystem: {
        module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url),
        export: 'createOverlayFs',
        arg: { overlay: `lowerdir=${ours('lower')},upperdir=${ours('upper')},workdir=${ours('work')}` },
      },
      options: { allowOther: true, defaultPermissions: true },
    });
  });

  after(async () => {
    try {
      await mount?.unmount();
    } finally {
      if (base !== '') {
        spawnSync('umount', [kernel('m')]);
        for (const m of [ours('m'), kernel('m')]) if (isMounted(m)) spawnSync('umount', ['-l', m]);
        rmSync(base, { recursive: true, force: true });
      }
    }
  });

  test('named by linkat, left unnamed, and O_EXCL: as the kernel overlay does', () => {
    const k = sh(`python3 -c '${SCRIPT.replaceAll("'", "'\\''")}'`, kernel('m'));
    assert.equal(k.status, 0, k.stderr);
    const o = sh(`python3 -c '${SCRIPT.replaceAll("'", "'\\''")}'`, ours('m'));
    assert.equal(o.status, 0, o.stderr);
    const seen = JSON.parse(o.stdout) as Record<string, unknown>;
    assert.deepEqual(seen, JSON.parse(k.stdout));
    // What the kernel showed is what was expected, so agreeing with it means something.
    assert.equal(seen.link, 'ok');
    assert.deepEqual(seen.before, ['0o100640', 0, 9]);
    assert.deepEqual(seen.after, ['0o100640', 1, 9]);
    assert.equal(seen.new, 'tmp data\nmore\n');
    assert.equal(seen.excl, 'ENOENT');
    assert.deepEqual(tree(ours('upper')), tree(kernel('upper')));
  });

  test('nothing is left in the work area: unnamed files go with their last fd, named ones moved out', async () => {
    // RELEASE reaches the mount after close(2) has returned: give the last one a moment.
    let left: string[] = [];
    for (let i = 0; i < 40; i++) {
      // The directories and the shared whiteout (a character device every whiteout links to) stay.
      left = readdirSync(ours('work'), { recursive: true }).map(String).filter((p) => {
        const st = lstatSync(join(ours('work'), p));
        return !st.isDirectory() && !(st.isCharacterDevice() && st.rdev === 0);
      });
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(left, []);
  });
});
