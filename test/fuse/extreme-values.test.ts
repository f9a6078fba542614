// Extreme values through the mount, answered as the kernel overlay answers them. FUSE carries signed
// 64-bit values in u64 fields: a time's seconds (negative before 1970) and an lseek offset; and file
// offsets and sizes up to 2^63 - 1, past what a JavaScript number holds exactly. The layers sit on the
// host's filesystem (which clamps times to its range) and on a tmpfs (which keeps any time, and files
// up to 2^63 - 1 bytes). xfstests' generic/258, 634, 448 and 525 check the same.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';

import { openOverlay } from '../../src/index.js';
import { isMounted } from '../../src/mount-table.js';
import * as sys from '../../src/sys/index.js';
import { mountSideBySide, sideBySideSkip, type SideBySide } from '../support/side-by-side.js';
import { ok, sh } from '../support/shell.js';

type Where = 'host' | 'tmpfs';

/** Times the layers hold before the mount: before 1970, and past 2038. */
const LOWER_TIMES: Record<string, string> = { old: '1900-01-01 00:00:00 UTC', future: '2400-01-01 00:00:00 UTC' };

/** Times set through the mount, as touch -d takes them (xfstests' generic/258 and 634). */
const SET_TIMES = [
  '@-1.5',
  '1960-01-01 00:00:00 UTC',
  'Dec 13 20:45:52 UTC 1901',
  'Jan 19 03:14:07 UTC 2038',
  'May 30 01:53:03 UTC 2514',
  'Dec 31 23:59:59 UTC 2147483647',
  'Jan 1 00:00:00 UTC 0',
];

/** A tmpfs mounted on a new temp dir, and its undo. */
function tmpfsDir(prefix: string, size = '64m'): { dir: string; undo: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    // Small: a sparse file copied up whole would fill it, not the machine's memory.
    ok(`mount -t tmpfs -o size=${size} ovlfs-extreme '${dir}'`);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    undo: () => {
      if (isMounted(dir)) spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Where a lower file holds data: 2^62, past what a number holds exactly. */
const FAR = 2n ** 62n;

/**
 * Layers l, u, w under `root`; the lower files carry LOWER_TIMES, and `sparse` 4 KiB of data at FAR
 * where the filesystem takes it (tmpfs; not ext4, which leaves it empty).
 */
function writeLayers(root: string): void {
  for (const d of ['l', 'u', 'w']) mkdirSync(join(root, d), { recursive: true });
  for (const [name, time] of Object.entries(LOWER_TIMES)) {
    writeFileSync(join(root, 'l', name), `${name}\n`);
    ok(`touch -h -d '${time}' '${join(root, 'l', name)}'`);
  }
  if (hasXfsIo) sh(`xfs_io -f -c 'pwrite -S 0xab ${FAR} 4k' '${join(root, 'l', 'sparse')}'`);
  if (hasXfsIo) sh(`xfs_io -f -c 'pwrite -S 0xab 1g 4k' '${join(root, 'l', 'gig')}'`);
  // The last byte a file can hold, in the page the kernel asks for whole.
  if (hasXfsIo) sh(`xfs_io -f -c 'pwrite -S 0xef 9223372036854775806 1' '${join(root, 'l', 'top')}'`);
}

const hasXfsIo = spawnSync('xfs_io', ['-V']).status === 0;

const optionsOn = (root: string): string => `lowerdir=${root}/l,upperdir=${root}/u,workdir=${root}/w`;

/**
 * The kernel overlay and the mount over layers in `where`: on tmpfs, both sides' layers on a tmpfs
 * mounted in a temp dir of the test's own; the mount points stay on the host.
 */
async function sideBySide(where: Where): Promise<{ s: SideBySide; root: (dir: string) => string; close: () => Promise<void> }> {
  const fs = where === 'tmpfs' ? tmpfsDir('ovlfs-extreme-tmpfs-') : undefined;
  const root = (dir: string): string => (fs === undefined ? dir : join(fs.dir, basename(dir)));
  const layers = (dir: string): void => {
    writeLayers(root(dir));
    mkdirSync(join(dir, 'm'), { recursive: true });
  };
  let s: SideBySide;
  try {
    s = await mountSideBySide(`ovlfs-extreme-${where}-`, layers, (dir) => optionsOn(root(dir)));
  } catch (e) {
    fs?.undo();
    throw e;
  }
  return {
    s,
    root,
    close: async () => {
      try {
        await s.close();
      } finally {
        fs?.undo();
      }
    },
  };
}

/** Runs `script` in each mount point; the outputs (stdout and stderr, names relative) must be the same. */
function sameOnBoth(s: SideBySide, script: string, what: string): string {
  const out = [s.kmnt, s.omnt].map((mnt) => {
    const r = sh(script, mnt);
    return `${r.stdout}${r.stderr}`.replaceAll(mnt, '<mnt>');
  });
  assert.equal(out[1], out[0], `${what}: ovlfs against the kernel overlay`);
  return out[0];
}

const timesScript = [
  "stat -c '%n %.9X %.9Y' old future",
  ...SET_TIMES.map((t, i) => `echo x > t${i}; touch -d '${t}' t${i}; stat -c '%n %.9X %.9Y' t${i}`),
  // A time set on a lower file copies it up first; the copy keeps the other time.
  "touch -m -d '@-100.25' old; stat -c '%n %.9X %.9Y' old",
  "touch -a -d 'Jan 1 00:00:00 UTC 3000' future; stat -c '%n %.9X %.9Y' future",
].join('\n');

for (const where of ['host', 'tmpfs'] as const) {
  test(`times before 1970 and past 2038 (layers on ${where}): set and read through the mount as on the kernel overlay`, { skip: sideBySideSkip('the extreme times test') }, async () => {
    const { s, close } = await sideBySide(where);
    try {
      const out = sameOnBoth(s, timesScript, 'times');
      // The script must have run: the far past reached the layers (clamped or not), with no error.
      assert.match(out, /^t1 -\d+\.000000000 -\d+\.000000000$/m, out);
      assert.doesNotMatch(out, /error|cannot/i, out);
    } finally {
      await close();
    }
  });
}

test('lseek from a negative offset: ENXIO for SEEK_DATA and SEEK_HOLE, EINVAL otherwise, as on the kernel overlay', { skip: sideBySideSkip('the negative lseek test') }, async () => {
  const { s, close } = await sideBySide('host');
  try {
    const answers = [s.kmnt, s.omnt].map((mnt) => {
      writeFileSync(join(mnt, 'upper'), 'upper data\n');
      const seen: string[] = [];
      for (const name of ['old', 'upper']) {
        const fd = openSync(join(mnt, name), 'r');
        try {
          for (const whence of [sys.SEEK_DATA, sys.SEEK_HOLE, 0, 1, 2]) {
            for (const offset of [-1, -4096, -(2 ** 53), -(2n ** 63n)]) {
              let answer: string;
              try {
                answer = String(sys.lseek(fd, offset, whence));
              } catch (e) {
                answer = (e as NodeJS.ErrnoException).code ?? String(e);
              }
              seen.push(`${name} whence ${whence} offset ${offset}: ${answer}`);
            }
          }
        } finally {
          closeSync(fd);
        }
      }
      return seen;
    });
    assert.ok(answers[0].includes('old whence 3 offset -1: ENXIO'), answers[0].join('\n'));
    assert.deepEqual(answers[1], answers[0]);
  } finally {
    await close();
  }
});

/**
 * Runs `run` on the kernel overlay through node:fs and on the library over the same layers (mounted
 * with `extra` options too); both must see the same, which is returned.
 */
function libraryAgreesWithKernel(run: (vfs: typeof nodeFs, dir: string) => string[], extra = ''): string[] {
  const fs = tmpfsDir('ovlfs-extreme-lib-');
  const kmnt = join(fs.dir, 'kernel', 'm');
  try {
    writeLayers(join(fs.dir, 'kernel'));
    writeLayers(join(fs.dir, 'library'));
    mkdirSync(kmnt);
    ok(`mount -t overlay overlay -o '${optionsOn(join(fs.dir, 'kernel'))}${extra}' '${kmnt}'`);
    const kernel = run(nodeFs, kmnt);
    const overlay = openOverlay(`${optionsOn(join(fs.dir, 'library'))}${extra}`);
    try {
      assert.deepEqual(run(overlay.fs as unknown as typeof nodeFs, '/'), kernel);
    } finally {
      overlay.close();
    }
    return kernel;
  } finally {
    if (isMounted(kmnt)) spawnSync('umount', ['-l', kmnt]);
    fs.undo();
  }
}

test('the library sets times before 1970 and past 2038 as node:fs on the kernel overlay does', { skip: sideBySideSkip('the library extreme times test') }, () => {
  libraryAgreesWithKernel((vfs, dir) => {
    const seen: string[] = [];
    vfs.writeFileSync(join(dir, 'f'), 'x');
    const values: Array<[string | number | Date, string | number | Date]> = [
      [new Date(Date.UTC(1900, 0, 1)), new Date(-1500)],
      ['-100', '-1.5'],
      [new Date(Date.UTC(2500, 0, 1)), 1e11],
    ];
    for (const [a, m] of values) {
      vfs.utimesSync(join(dir, 'f'), a, m);
      const st = vfs.statSync(join(dir, 'f'), { bigint: true });
      seen.push(`${String(a)} ${String(m)}: ${st.atimeNs} ${st.mtimeNs}`);
    }
    for (const name of Object.keys(LOWER_TIMES)) {
      const st = vfs.statSync(join(dir, name), { bigint: true });
      seen.push(`${name}: ${st.atimeNs} ${st.mtimeNs}`);
    }
    return seen;
  });
});

/** Reads, writes, sizes, fallocate, SEEK_DATA/HOLE and copy_file_range at offsets past 2^53, with xfs_io. */
const hugeScript = [
  "xfs_io -f -c 'truncate 9223372036854775807' -c 'stat' big 2>&1 | grep -e size -e large -e error",
  "xfs_io -f -c 'pwrite -S 0xcd 9223372036854775806 1' -c 'pread -v 9223372036854775806 1' big2 2>&1 | grep -v ops; stat -c '%n %s' big2",
  "xfs_io -f -c 'pwrite -S 0xcd 9007199254740993 1' -c 'seek -d 9007199254740000' -c 'seek -h 9007199254740993' -c 'falloc 9007199254741001 100' big3 2>&1 | grep -v ops; stat -c '%n %s' big3",
  "xfs_io -f -c 'pwrite -S 0xcd -b 1m 4611686018427387904 2m' -c 'pread -v 4611686018429485040 16' big4 2>&1 | grep -v ops; stat -c '%n %s' big4",
  "xfs_io -f -c 'copy_range -s 4611686018427387904 -d 4611686018427387905 -l 64k big4' -c 'pread -v 4611686018427453440 16' big5 2>&1 | grep -v ops; stat -c '%n %s' big5",
  // The lower file's data at 2^62, read only (no copy-up): READ at that offset reaches the daemon.
  "xfs_io -r -c 'seek -d 4611686018427380000' -c 'seek -h 4611686018427387904' -c 'pread -v 4611686018427391984 16' sparse 2>&1 | grep -v ops; stat -c '%n %s' sparse",
  "xfs_io -r -c 'pread -v 9223372036854775806 1' top 2>&1 | grep -v ops; stat -c '%n %s' top",
].join('\n');

for (const where of ['host', 'tmpfs'] as const) {
  test(`offsets and sizes up to 2^63 - 1 (layers on ${where}): as on the kernel overlay`, { skip: sideBySideSkip('the huge offsets test') ?? (hasXfsIo ? undefined : 'needs xfs_io (xfsprogs)') }, async () => {
    const { s, root, close } = await sideBySide(where);
    try {
      const out = sameOnBoth(s, hugeScript, 'huge offsets');
      if (where === 'tmpfs') {
        // tmpfs takes it all: the script ran to the end.
        assert.match(out, /stat.size = 9223372036854775807/, out);
        assert.match(out, /^big2 9223372036854775807$/m, out);
        assert.match(out, /^sparse 4611686018427392000$/m, out);
        assert.match(out, /7ffffffffffffffe: {2}ef/, out);
        // The byte written at 2^63 - 2 is there in the upper file, and nowhere else.
        const fd = openSync(join(root(join(s.base, 'ovlfs')), 'u', 'big2'), 'r');
        try {
          const b = Buffer.alloc(2);
          assert.equal(nodeFs.readSync(fd, b, 0, 1, 2n ** 63n - 2n), 1);
          assert.equal(nodeFs.readSync(fd, b, 1, 1, 0), 1);
          assert.deepEqual([...b], [0xcd, 0]);
        } finally {
          closeSync(fd);
        }
      } else {
        assert.match(out, /File too large/, out);
      }
    } finally {
      await close();
    }
  });
}

test('the library reads, writes and truncates at huge positions as node:fs on the kernel overlay does', { skip: sideBySideSkip('the library huge offsets test') }, () => {
  libraryAgreesWithKernel((vfs, dir) => {
    const seen: string[] = [];
    const fd = vfs.openSync(join(dir, 'f'), 'w+');
    try {
      // Node writes a bigint position, or a number past 2^53, at the file position: so must the library.
      for (const p of [2 ** 63 - 2, 2 ** 53 + 2, FAR, 2n ** 63n - 2n, 2 ** 53 - 1]) {
        for (const op of ['write', 'read'] as const) {
          try {
            const n = op === 'write' ? vfs.writeSync(fd, Buffer.from('a'), 0, 1, p as number) : vfs.readSync(fd, Buffer.alloc(1), 0, 1, p as number);
            seen.push(`${op} at ${p}: ${n}, size ${vfs.fstatSync(fd, { bigint: true }).size}`);
          } catch (e) {
            seen.push(`${op} at ${p}: ${(e as NodeJS.ErrnoException).code}`);
          }
        }
      }
      for (const length of [2 ** 62, 2 ** 53 - 1]) {
        try {
          vfs.ftruncateSync(fd, length);
          seen.push(`ftruncate ${length}: size ${vfs.fstatSync(fd, { bigint: true }).size}`);
        } catch (e) {
          seen.push(`ftruncate ${length}: ${(e as NodeJS.ErrnoException).code}`);
        }
      }
    } finally {
      vfs.closeSync(fd);
    }
    // The lower file past 2^53 is made with xfs_io (xfsprogs); without it, the rest still compares.
    if (hasXfsIo) {
      const st = vfs.statSync(join(dir, 'sparse'), { bigint: true });
      seen.push(`sparse: size ${st.size}, ${vfs.statSync(join(dir, 'sparse')).size}`);
    }
    return seen;
  });
});

test('the library reads at the file position after an O_APPEND write past 2^53 as node:fs on the kernel overlay does', { skip: sideBySideSkip('the library append position test') ?? (hasXfsIo ? undefined : 'needs xfs_io (xfsprogs)') }, () => {
  const seen = libraryAgreesWithKernel((vfs, dir) => {
    const seen: string[] = [];
    // 'sparse' ends at 2^62 + 4096; the write makes an odd size, which a number rounds: the
    // position after it must be the exact end.
    const fd = vfs.openSync(join(dir, 'sparse'), 'a+');
    try {
      vfs.writeSync(fd, Buffer.from('x'.repeat(4097)));
      for (const step of ['read', 'write', 'read']) {
        try {
          const n = step === 'read' ? vfs.readSync(fd, Buffer.alloc(8), 0, 8, null) : vfs.writeSync(fd, Buffer.from('y'));
          seen.push(`${step} at the file position: ${n}, size ${vfs.fstatSync(fd, { bigint: true }).size}`);
        } catch (e) {
          seen.push(`${step} at the file position: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      }
    } finally {
      vfs.closeSync(fd);
    }
    return seen;
  });
  assert.equal(seen[0], 'read at the file position: 0, size 4611686018427396097', seen.join('\n'));
});

test('the library\'s FileHandle reads at the file position after an O_APPEND write past 2^53 as node:fs does', { skip: sideBySideSkip('the library append position test') }, async () => {
  const fs = tmpfsDir('ovlfs-extreme-append-');
  try {
    for (const d of ['l', 'u', 'w', 'plain']) mkdirSync(join(fs.dir, d));
    for (const d of ['u', 'plain']) sh(`truncate -s ${FAR + 4096n} '${join(fs.dir, d, 'f')}'`);
    const steps = async (promises: typeof nodeFs.promises, path: string): Promise<string[]> => {
      const seen: string[] = [];
      const handle = await promises.open(path, 'a+');
      try {
        await handle.write(Buffer.from('x'.repeat(4097)));
        for (const step of ['read', 'write', 'read']) {
          try {
            const n = step === 'read' ? (await handle.read(Buffer.alloc(8), 0, 8, null)).bytesRead : (await handle.write(Buffer.from('y'))).bytesWritten;
            seen.push(`${step} at the file position: ${n}, size ${(await handle.stat({ bigint: true })).size}`);
          } catch (e) {
            seen.push(`${step} at the file position: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
          }
        }
      } finally {
        await handle.close();
      }
      return seen;
    };
    const plain = await steps(nodeFs.promises, join(fs.dir, 'plain', 'f'));
    assert.equal(plain[0], 'read at the file position: 0, size 4611686018427396097', plain.join('\n'));
    const overlay = openOverlay(optionsOn(fs.dir));
    try {
      assert.deepEqual(await steps(overlay.fs.promises as unknown as typeof nodeFs.promises, '/f'), plain);
    } finally {
      overlay.close();
    }
  } finally {
    fs.undo();
  }
});

test('metacopy=on: a metadata copy-up of a lower file past 2^53 keeps its exact size, as on the kernel overlay', { skip: sideBySideSkip('the library metacopy size test') ?? (hasXfsIo ? undefined : 'needs xfs_io (xfsprogs)') }, () => {
  const seen = libraryAgreesWithKernel((vfs, dir) => {
    const seen: string[] = [];
    // 'top' (2^63 - 1 bytes) and 'sparse' (2^62 + 4096), as writeLayers made them.
    for (const name of ['top', 'sparse']) {
      try {
        vfs.chmodSync(join(dir, name), 0o600);
        const st = vfs.statSync(join(dir, name), { bigint: true });
        seen.push(`chmod ${name}: size ${st.size}, mode ${st.mode.toString(8)}`);
      } catch (e) {
        seen.push(`chmod ${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    return seen;
  }, ',metacopy=on,redirect_dir=on');
  assert.equal(seen[0], 'chmod top: size 9223372036854775807, mode 100600', seen.join('\n'));
});

/** Opens `name` for writing (a copy-up), writes a byte at 0, and reports size, blocks and the data at `at`. */
const copyUpScript = (name: string, at: bigint): string =>
  `xfs_io -c 'pwrite -S 0x11 0 1' ${name} 2>&1 | grep -v ops; stat -c '%n %s %b' ${name}; xfs_io -r -c 'pread -v ${at} 8' ${name} 2>&1 | grep -v ops`;

test('a sparse lower file copied up stays sparse, through the mount and the library, as on the kernel overlay', { skip: sideBySideSkip('the sparse copy-up test') ?? (hasXfsIo ? undefined : 'needs xfs_io (xfsprogs)') }, async () => {
  // On a 64 MiB tmpfs: a copy that filled the holes would not fit (ENOSPC), nor end for data at 2^62.
  const { s, root, close } = await sideBySide('tmpfs');
  try {
    // 'gig' goes through the I/O threads' copy, 'sparse' (past 2^53) through the serving thread's.
    const out = sameOnBoth(s, [copyUpScript('gig', 1n << 30n), copyUpScript('sparse', FAR)].join('\n'), 'sparse copy-up');
    assert.match(out, /^gig 1073745920 \d+$/m, out);
    assert.match(out, /^sparse 4611686018427392000 \d+$/m, out);
    assert.match(out, /40000000: {2}ab ab/, out);
    assert.doesNotMatch(out, /No space|error/i, out);
    // The library, sync and async, over the same kind of layers (the ovlfs side's, unmounted first).
    await s.close();
    const lib = root(join(s.base, 'ovlfs'));
    for (const name of ['gig', 'sparse']) ok(`rm -f '${join(lib, 'u', name)}'`);
    const kernelFacts = (name: string): string => ok(`stat -c '%s %b' '${join(root(join(s.base, 'kernel')), 'u', name)}'`).trim();
    const overlay = openOverlay(optionsOn(lib));
    try {
      // Synchronous for 'sparse' (bigint positions), asynchronous for 'gig' (node:fs's calls on the pool).
      const fd = overlay.fs.openSync('/sparse', 'r+');
      overlay.fs.writeSync(fd, Buffer.from([0x11]), 0, 1, 0);
      overlay.fs.closeSync(fd);
      const handle = await overlay.fs.promises.open('/gig', 'r+');
      await handle.write(Buffer.from([0x11]), 0, 1, 0);
      await handle.close();
      for (const name of ['gig', 'sparse']) {
        const st = overlay.fs.statSync(`/${name}`, { bigint: true });
        assert.equal(`${st.size} ${st.blocks}`, kernelFacts(name), `the library's copy-up of ${name} against the kernel overlay's upper file`);
      }
    } finally {
      overlay.close();
    }
  } finally {
    await close();
  }
});

test('a sparse lower file on another filesystem than the upper is copied up sparse, and a copy that does not fit leaves nothing, as on the kernel overlay', { skip: sideBySideSkip('the cross-filesystem copy-up test') ?? (hasXfsIo ? undefined : 'needs xfs_io (xfsprogs)') }, async () => {
  // copy_file_range answers EXDEV between two tmpfs: the chunks go by hand, the holes still skipped.
  // The upper tmpfs holds what the kernel's copies take on both sides, but not the 16 MiB of data in 'bulky'.
  const lowerFs = tmpfsDir('ovlfs-extreme-lower-', '96m');
  const upperFs = tmpfsDir('ovlfs-extreme-upper-', '12m');
  const lowerOf = (dir: string): string => join(lowerFs.dir, basename(dir));
  const upperOf = (dir: string): string => join(upperFs.dir, basename(dir));
  const layers = (dir: string): void => {
    mkdirSync(join(dir, 'm'), { recursive: true });
    for (const d of ['u', 'w']) mkdirSync(join(upperOf(dir), d), { recursive: true });
    const l = join(lowerOf(dir), 'l');
    mkdirSync(l, { recursive: true });
    sh(`xfs_io -f -c 'pwrite -S 0xab 0 4k' -c 'pwrite -S 0xab 1g 4k' -c 'truncate 2g' '${join(l, 'gig')}'`);
    sh(`xfs_io -f -c 'pwrite -S 0xab 0 4k' -c 'pwrite -S 0xab ${FAR} 4k' '${join(l, 'far')}'`);
    sh(`xfs_io -f -c 'pwrite -S 0xab -b 1m 0 16m' -c 'truncate ${FAR}' '${join(l, 'bulky')}'`);
  };
  const options = (dir: string): string => `lowerdir=${join(lowerOf(dir), 'l')},upperdir=${join(upperOf(dir), 'u')},workdir=${join(upperOf(dir), 'w')}`;
  let s: SideBySide | undefined;
  try {
    s = await mountSideBySide('ovlfs-extreme-xdev-', layers, options);
    // 'gig' goes through the I/O threads' copy, 'far' and 'bulky' (past 2^53) through the serving thread's.
    const script = [
      ...['gig', 'far'].map((name) => `printf z >> ${name}; stat -c '%n %s %b' ${name}`),
      "printf z >> bulky 2>&1 | sed 's/.*: //'; echo small > small; cat small",
    ].join('\n');
    const out = sameOnBoth(s, script, 'cross-filesystem copy-up');
    assert.match(out, /^gig 2147483649 \d+$/m, out);
    assert.match(out, /^far 4611686018427392001 \d+$/m, out);
    assert.match(out, /space|error/i, out);
    assert.match(out, /^small$/m, out);
    // The failed copy's temp is gone from the work dir, as the kernel's is.
    const left = [s.kmnt, s.omnt].map((mnt) => ok(`ls -A '${join(upperOf(dirname(mnt)), 'w', 'work')}'`));
    assert.deepEqual(left, ['', ''], 'work dirs after the failed copy-up: kernel, ovlfs');
    const kernelUpper = join(upperOf(dirname(s.kmnt)), 'u');
    const kernelFacts = (name: string): string => ok(`stat -c '%s %b' '${join(kernelUpper, name)}'`).trim();
    // The library over the same kind of layers (the ovlfs side's, unmounted first): 'far' by bigint positions.
    const lib = dirname(s.omnt);
    await s.close();
    s = undefined;
    for (const name of ['gig', 'far']) ok(`rm -f '${join(upperOf(lib), 'u', name)}'`);
    const overlay = openOverlay(options(lib));
    try {
      for (const name of ['gig', 'far']) {
        overlay.fs.appendFileSync(`/${name}`, 'z');
        const st = overlay.fs.statSync(`/${name}`, { bigint: true });
        assert.equal(`${st.size} ${st.blocks}`, kernelFacts(name), `the library's copy-up of ${name} against the kernel overlay's upper file`);
      }
    } finally {
      overlay.close();
    }
  } finally {
    await s?.close();
    upperFs.undo();
    lowerFs.undo();
  }
});
