// Proves src/fuse/overlay-fs.ts: the ovlfs mount (the overlay core served over FUSE) next to the kernel overlay
// over identical copies of the same layers. Real programs run the same script on both mounts; their output,
// the merged trees (types, sizes, modes, owners, link counts, targets, contents) and the upper layers must
// agree. The seed scenario checks the copy-up promise across processes with the page cache dropped.
//
// The mount is served by a worker thread, so this thread may block in spawnSync while the programs it
// runs make requests. Every program runs with a timeout, and both mounts are unmounted in `after`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, linkSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import type { OverlayFsArg } from '../../src/fuse/overlay-fs.js';
import { mountFuse, type FuseMount } from '../../src/fuse/bridge/mount.js';
import { isMounted } from '../../src/mount-table.js';
import { ok, sh } from '../support/shell.js';

function has(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the mount needs Linux';
  if (process.getuid?.() !== 0) return 'the mount needs root (mount -t fuse, mount -t overlay)';
  if (!existsSync('/dev/fuse')) return 'the mount needs /dev/fuse';
  const probe = mkdtempSync(join(tmpdir(), 'ovlfs-probe-'));
  try {
    for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(probe, d));
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${probe}/l,upperdir=${probe}/u,workdir=${probe}/w`, `${probe}/m`], { encoding: 'utf8' });
    if (r.status !== 0) return `the kernel overlay cannot be mounted here: ${r.stderr.trim()}`;
    spawnSync('umount', [`${probe}/m`]);
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
  return undefined;
}
const reason = skipReason();
if (reason) process.stdout.write(`# skipping ovlfs mount tests: ${reason}\n`);

/** Skips a test with a printed reason when a program is missing. */
function need(...programs: string[]): string | false {
  const missing = programs.filter((p) => !has(p));
  if (missing.length === 0) return false;
  const why = `${missing.join(', ')} not installed`;
  process.stdout.write(`# skipping: ${why}\n`);
  return why;
}


/** The same layers written into `dir`: two lowers with a merged directory, links, and an old mtime. */
function writeLayers(dir: string): void {
  const l1 = join(dir, 'l1');
  const l2 = join(dir, 'l2');
  for (const d of [l1, l2, join(dir, 'u'), join(dir, 'w'), join(dir, 'm')]) mkdirSync(d, { recursive: true });
  // l2, the bottom layer
  mkdirSync(join(l2, 'docs/deep/er'), { recursive: true });
  writeFileSync(join(l2, 'docs/readme.txt'), 'bottom readme\n');
  writeFileSync(join(l2, 'docs/deep/er/leaf.txt'), 'leaf\n');
  writeFileSync(join(l2, 'shadowed.txt'), 'from the bottom\n');
  writeFileSync(join(l2, 'seed.txt'), 'old data\n');
  mkdirSync(join(l2, 'proj/src'), { recursive: true });
  writeFileSync(join(l2, 'proj/src/main.c'), 'int main(void) { return 0; }\n');
  writeFileSync(join(l2, 'proj/README'), 'a project\n');
  writeFileSync(join(l2, 'proj/run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
  mkdirSync(join(l2, 'gone'));
  writeFileSync(join(l2, 'gone/a'), 'a\n');
  writeFileSync(join(l2, 'gone/b'), 'b\n');
  writeFileSync(join(l2, 'hard1'), 'linked\n');
  mkdirSync(join(l2, 'held'));
  writeFileSync(join(l2, 'held/a.txt'), 'lower a\n');
  writeFileSync(join(l2, 'held/b.txt'), 'lower b\n');
  linkSync(join(l2, 'hard1'), join(l2, 'hard2'));
  // l1, on top: merges into docs/, shadows a file, adds a symlink
  mkdirSync(join(l1, 'docs'), { recursive: true });
  writeFileSync(join(l1, 'docs/top.txt'), 'top\n');
  writeFileSync(join(l1, 'shadowed.txt'), 'from the top\n');
  symlinkSync('docs/readme.txt', join(l1, 'link-to-readme'));
  const old = new Date('2001-02-03T04:05:06Z');
  for (const p of ['docs/readme.txt', 'seed.txt', 'proj/README', 'gone/a']) utimesSync(join(l2, p), old, old);
}

const OPTIONS = 'redirect_dir=on,metacopy=off,index=off';

function overlayOptions(dir: string): string {
  return `lowerdir=${dir}/l1:${dir}/l2,upperdir=${dir}/u,workdir=${dir}/w,${OPTIONS}`;
}

/** A listing of a tree that must be the same on both sides; mtimes after `since` read 'recent'. */
function tree(dir: string, since: number): string {
  const lines = ok(`find . -mindepth 1 -printf '%P|%y|%s|%m|%U|%G|%n|%l|%T@\\n' | LC_ALL=C sort`, dir).trim().split('\n');
  return lines
    .filter((l) => l !== '')
    .map((l) => {
      const f = l.split('|');
      const mtime = Number(f[8]);
      f[8] = mtime >= since ? 'recent' : String(Math.floor(mtime));
      // A directory's size is whatever its real directory grew to: not part of the merged view.
      if (f[1] === 'd') f[2] = '-';
      return f.join('|');
    })
    .join('\n');
}

function contents(dir: string): string {
  // git's index records st_ino, st_dev and ctimes: never the same on two mounts.
  return ok(`find . -type f ! -path './proj/.git/index' -print0 | LC_ALL=C sort -z | xargs -0 -r md5sum`, dir);
}

/** The lines only one side has, for a readable failure. */
function difference(actual: string, expected: string): string {
  const a = new Set(actual.split('\n'));
  const e = new Set(expected.split('\n'));
  const onlyA = [...a].filter((l) => !e.has(l)).map((l) => `+ ${l}`);
  const onlyE = [...e].filter((l) => !a.has(l)).map((l) => `- ${l}`);
  return [...onlyA, ...onlyE].join('\n');
}

function sameText(actual: string, expected: string, what: string): void {
  if (actual !== expected) assert.fail(`${what} (+ ovlfs, - kernel):\n${difference(actual, expected)}`);
}

/**
 * The upper layer as the kernel writes it: names, types, modes, owners, whiteouts and the overlay's
 * xattrs. Two spellings the kernel is free to choose are normalized (the core picks the other one):
 * a relative redirect becomes absolute, and `opaque` on a directory that has no lower copy is dropped
 * (the kernel marks new directories in merged parents opaque as a lookup shortcut; nothing shows through
 * either way).
 */
function upperLayer(layers: string): string {
  const upper = join(layers, 'u');
  const names = ok(`find . -mindepth 1 -printf '%P|%y|%m|%U|%G|%l\\n' | LC_ALL=C sort`, upper);
  if (!has('getfattr')) return names;
  const dump = ok(`getfattr -R -h -d -m '^trusted\\.overlay\\.(opaque|redirect|metacopy)' . 2>/dev/null || true`, upper);
  const out: string[] = [];
  let file = '';
  for (const line of dump.split('\n')) {
    if (line.startsWith('# file: ')) {
      file = line.slice(8).replace(/^\.\//, '');
      continue;
    }
    if (line === '') continue;
    let attr = line;
    const redirect = /^trusted\.overlay\.redirect="([^/].*)"$/.exec(line);
    if (redirect) {
      const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/')) : '';
      attr = `trusted.overlay.redirect="/${dir === '' ? '' : dir + '/'}${redirect[1]}"`;
    }
    if (/^trusted\.overlay\.opaque="y"$/.test(line) && !['l1', 'l2'].some((l) => existsSync(join(layers, l, file)))) continue;
    out.push(`${file}: ${attr}`);
  }
  return names + out.sort().join('\n');
}

describe('ovlfs mount next to the kernel overlay', { skip: reason }, () => {
  let base = '';
  let kdir = '';
  let odir = '';
  let kmnt = '';
  let omnt = '';
  let mount: FuseMount | undefined;
  let kernelMounted = false;
  const since = Math.floor(Date.now() / 1000) - 2;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'ovlfs-mount-'));
    kdir = join(base, 'kernel');
    odir = join(base, 'ovlfs');
    writeLayers(kdir);
    writeLayers(odir);
    kmnt = join(kdir, 'm');
    omnt = join(odir, 'm');
    ok(`mount -t overlay overlay -o '${overlayOptions(kdir)}' '${kmnt}'`);
    kernelMounted = true;
    const arg: OverlayFsArg = { overlay: overlayOptions(odir) };
    mount = await mountFuse({
      mountpoint: omnt,
      fsname: 'ovlfs',
      source: 'ovlfs-test',
      filesystem: { module: new URL('../../src/fuse/overlay-fs.ts', import.meta.url), export: 'createOverlayFs', arg },
      options: { allowOther: true, defaultPermissions: true, debug: process.env.OVLFS_FUSE_DEBUG === '1' },
    });
  });

  after(async () => {
    try {
      await mount?.unmount();
    } finally {
      if (kernelMounted && isMounted(kmnt)) spawnSync('umount', ['-l', kmnt]);
      if (omnt !== '' && isMounted(omnt)) spawnSync('umount', ['-l', omnt]);
      if (base !== '') rmSync(base, { recursive: true, force: true });
    }
  });

  /** Runs `script` in both mounts; the statuses and outputs must match. Returns ovlfs's output. */
  function both(script: string, env?: NodeJS.ProcessEnv): string {
    const k = sh(script, kmnt, env);
    const o = sh(script, omnt, env);
    assert.equal(o.stderr.replaceAll(omnt, 'MNT'), k.stderr.replaceAll(kmnt, 'MNT'), `stderr differs for: ${script}`);
    assert.equal(o.stdout.replaceAll(omnt, 'MNT'), k.stdout.replaceAll(kmnt, 'MNT'), `stdout differs for: ${script}`);
    assert.equal(o.status, k.status, `status differs for: ${script}`);
    return o.stdout;
  }

  function sameTrees(sub = '.'): void {
    sameText(tree(join(omnt, sub), since), tree(join(kmnt, sub), since), `merged trees differ under ${sub}`);
    sameText(contents(join(omnt, sub)), contents(join(kmnt, sub)), `contents differ under ${sub}`);
  }

  test('the untouched merged view is the same', () => {
    sameTrees();
    both('cat shadowed.txt link-to-readme; ls -a docs; stat -c "%n %s %a %h %F" docs docs/top.txt hard1 hard2 link-to-readme');
  });

  test('coreutils: cp -a, mv, rm -r, ln, find, stat, chmod, touch', () => {
    both(`set -e
      cp -a docs docs-copy
      cp -a proj/run.sh run-copy.sh
      mv shadowed.txt moved.txt
      mv docs/deep deep-moved
      mv proj/src proj/source
      rm -r gone
      ln docs/top.txt top-hard
      ln -s ../moved.txt docs/sym
      chmod 600 docs/readme.txt
      chmod -R g+w proj
      touch -d '2010-01-01 00:00:00 UTC' seed-touched
      touch -m -d '2011-01-01 00:00:00 UTC' proj/README
      mkdir -p new/a/b && echo x > new/a/b/c && echo y >> new/a/b/c
      echo appended >> docs/top.txt
      rm hard1
      find . | LC_ALL=C sort
      stat -c '%n %s %a %h %F' moved.txt top-hard docs/top.txt
      stat -c '%n %s %a %h %F %Y' proj/README seed-touched hard2 docs/readme.txt
      cat moved.txt top-hard deep-moved/er/leaf.txt docs/sym
      ls -la gone 2>&1 || true
    `);
    sameTrees();
    sameText(upperLayer(odir), upperLayer(kdir), 'upper layers differ');
  });

  test('tar x into the mount', () => {
    const src = join(base, 'tarsrc');
    mkdirSync(join(src, 'pkg/lib'), { recursive: true });
    writeFileSync(join(src, 'pkg/lib/a.js'), 'export const a = 1;\n'.repeat(500));
    writeFileSync(join(src, 'pkg/big.bin'), Buffer.alloc(3 << 20, 7));
    writeFileSync(join(src, 'pkg/exe'), '#!/bin/sh\n', { mode: 0o750 });
    symlinkSync('lib/a.js', join(src, 'pkg/link'));
    linkSync(join(src, 'pkg/exe'), join(src, 'pkg/exe-hard'));
    // Over names that exist below, too: docs/ merges, and docs/readme.txt is replaced.
    mkdirSync(join(src, 'docs'));
    writeFileSync(join(src, 'docs/readme.txt'), 'from the tarball\n');
    const tarball = join(base, 'src.tar');
    ok(`tar -C '${src}' -cf '${tarball}' pkg docs`);
    both(`tar -xpf '${tarball}' && ls -l pkg | wc -l && cat docs/readme.txt`);
    sameTrees();
  });

  test('git init, add, commit, status', { skip: need('git') }, () => {
    const env = {
      GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@example.com', GIT_AUTHOR_DATE: '2020-01-01T00:00:00Z',
      GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@example.com', GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z',
      HOME: base, GIT_CONFIG_NOSYSTEM: '1',
    };
    const out = both(`set -e
      cd proj
      git init -q -b main .
      git add -A
      git commit -q -m first
      echo change >> README
      echo new > added.txt
      git status --porcelain
      git add -A && git commit -q -m second
      git mv README README.md && git commit -q -m rename
      git status --porcelain
      git log --format='%H %s'
      git ls-files -s
      git fsck --strict 2>&1
      git gc -q 2>&1 && git count-objects -v | grep -E '^(count|in-pack)'
    `, env);
    assert.match(out, / rename\n/);
  });

  test('seed: an fd opened read-only before a copy-up reads the new data after DONTNEED', { skip: need('python3') }, () => {
    // Process A opens and reads (pages cached), process B opens for writing (copy-up) and rewrites the file,
    // then A drops the page cache and reads again through the same fd.
    const script = String.raw`
import os, subprocess, sys
fd = os.open('seed.txt', os.O_RDONLY)
print('A before:', os.pread(fd, 100, 0))
subprocess.run([sys.executable, '-c', "f = open('seed.txt', 'r+'); f.write('NEW DATA, longer than before\\n'); f.close()"], check=True)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
print('A after:', os.pread(fd, 100, 0))
print('A fstat size:', os.fstat(fd).st_size)
# B again, truncating: A's fd must see the shorter file too.
subprocess.run([sys.executable, '-c', "open('seed.txt', 'w').write('short\\n')"], check=True)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
print('A after truncate:', os.pread(fd, 100, 0))
# A file unlinked while open stays readable until closed.
g = os.open('docs/readme.txt', os.O_RDONLY)
os.unlink('docs/readme.txt')
os.posix_fadvise(g, 0, 0, os.POSIX_FADV_DONTNEED)
print('unlinked:', os.pread(g, 100, 0), os.fstat(g).st_nlink)
os.close(g)
os.close(fd)
`;
    const out = both(`python3 -c '${script.replaceAll("'", "'\\''")}'`);
    assert.match(out, /A after: b'NEW DATA, longer than before\\n'/);
    assert.match(out, /A after truncate: b'short\\n'/);
    assert.match(out, /unlinked: b'from the tarball\\n' 0/);
  });

  test('setattr of an unlinked open file changes that file: utime, chmod and truncate by fd', { skip: need('python3') }, () => {
    // Lower files opened for writing (so copied up), a new one, all three unlinked while open. futimens and
    // fchmod reach FUSE as SETATTR without a file handle (only ftruncate carries one), so the mount must find
    // the handle open on the node itself; unlinked files must not take each other's times.
    // The times are whole milliseconds: the core carries times as Node does.
    const script = String.raw`
import os
a = os.open('held/a.txt', os.O_RDWR)
b = os.open('held/b.txt', os.O_RDWR)
c = os.open('held/fresh.txt', os.O_RDWR | os.O_CREAT, 0o644)
os.write(c, b'fresh data\n')
for p in ('held/a.txt', 'held/b.txt', 'held/fresh.txt'):
    os.unlink(p)
os.ftruncate(b, 3)
os.utime(a, ns=(1_000_000_123_000_000, 1_100_000_456_000_000))
os.utime(b, ns=(1_200_000_789_000_000, 1_300_000_012_000_000))
os.utime(c, ns=(1_400_000_001_000_000, 1_500_000_002_000_000))
os.chmod(a, 0o600)
for name, fd in (('a', a), ('b', b), ('c', c)):
    st = os.fstat(fd)
    print(name, st.st_atime_ns, st.st_mtime_ns, oct(st.st_mode), st.st_size, st.st_nlink, os.pread(fd, 100, 0))
    os.close(fd)
`;
    const out = both(`python3 -c '${script.replaceAll("'", "'\\''")}'`);
    assert.match(out, /^a 1000000123000000 1100000456000000 0o100600 /m);
    assert.match(out, /^b 1200000789000000 1300000012000000 \S+ 3 0 /m);
    assert.match(out, /^c 1400000001000000 1500000002000000 /m);
    sameTrees();
  });

  test('sqlite3 creates and queries a database', { skip: need('sqlite3') }, () => {
    const out = both(`set -e
      sqlite3 data.db "create table t(id integer primary key, v text); begin; $(for i in $(seq 1 300); do printf "insert into t(v) values('row %d');" $i; done) commit;"
      sqlite3 data.db "create index tv on t(v); update t set v = v || '!' where id % 3 = 0; delete from t where id % 7 = 0;"
      sqlite3 data.db "select count(*), sum(id), max(v) from t; pragma integrity_check;"
      sqlite3 -cmd "pragma journal_mode=wal" data.db "insert into t(v) values('wal'); select count(*) from t;"
      sqlite3 data.db "select v from t where id > 295 order by id;"
    `);
    assert.match(out, /^258\|/m);
    assert.match(out, /^ok$/m);
  });

  test('rename: NOREPLACE refuses, EXCHANGE swaps, directory renames keep their content', { skip: need('python3') }, () => {
    const script = String.raw`
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def rename2(a, b, flags):
    r = libc.renameat2(-100, a.encode(), -100, b.encode(), flags)
    return 0 if r == 0 else os.strerror(ctypes.get_errno())
print('noreplace', rename2('link-to-readme', 'hard2', 1))
print('noreplace ok', rename2('link-to-readme', 'link2', 1))
print('exchange', rename2('hard2', 'link2', 2))
print('exchange missing', rename2('hard2', 'no-such-name', 2))
os.rename('docs', 'docs2')
print(sorted(os.listdir('docs2')))
print(open('docs2/deep/er/leaf.txt').read())
`;
    both(`python3 -c '${script.replaceAll("'", "'\\''")}'`);
    sameTrees();
  });

  test('xattrs: user xattrs round-trip, the overlay\'s own stay hidden', { skip: need('getfattr', 'setfattr') }, () => {
    both(`set -e
      setfattr -n user.color -v blue proj/run.sh
      getfattr -n user.color --only-values proj/run.sh; echo
      getfattr -d -m - proj/run.sh docs2 2>/dev/null | grep -v '^#' || true
      setfattr -x user.color proj/run.sh
      getfattr -n user.color proj/run.sh 2>&1 || true
    `);
    const priv = sh(`setfattr -n trusted.overlay.opaque -v y docs2`, omnt);
    assert.notEqual(priv.status, 0, 'setting a private overlay xattr must fail');
  });

  test('df and statfs answer', () => {
    const out = ok(`stat -f -c '%b %S' '${omnt}'`);
    assert.match(out, /^\d+ \d+\n$/);
  });
});
