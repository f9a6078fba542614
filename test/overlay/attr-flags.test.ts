// File attribute flags (chattr/lsattr) through the core, next to the kernel overlay over identical
// layers: the same calls on both, errno for errno, then the flags as the other side reads them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { errorCode } from '../../src/errors.js';
import { isMounted } from '../../src/mount-table.js';
import { getFileFlags, setFileFlags } from '../../src/sys/fileattr.js';
import { fixture, isRoot, makeFixture, testEachKind, writeTree, type DirFixture, type Tree } from '../support/fixture.js';

const FS_SYNC_FL = 0x8;
const FS_IMMUTABLE_FL = 0x10;
const FS_APPEND_FL = 0x20;
const FS_NODUMP_FL = 0x40;
const FS_NOATIME_FL = 0x80;
const { O_RDONLY, O_WRONLY, O_APPEND, O_TRUNC, O_NONBLOCK, O_CREAT } = fs.constants;

function hostFlags(p: string): number {
  const fd = fs.openSync(p, O_RDONLY | O_NONBLOCK);
  try {
    return getFileFlags(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function setHostFlags(p: string, change: (flags: number) => number): void {
  const fd = fs.openSync(p, O_RDONLY | O_NONBLOCK);
  try {
    setFileFlags(fd, change(getFileFlags(fd)));
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether this host's filesystem for temp dirs takes immutable and append-only (as root). */
function hostHasFlags(): boolean {
  if (!isRoot) return false;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-flags-probe-'));
  try {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, '');
    setHostFlags(file, (f) => f | FS_APPEND_FL);
    setHostFlags(file, (f) => f & ~FS_APPEND_FL);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const canRun = hostHasFlags();
const skipReason = !isRoot ? 'needs root (chattr +i/+a, the kernel overlay)' : 'the temp filesystem has no immutable/append-only flags';

/** The errno of a call, or 'ok'. */
function outcome(call: () => unknown): string {
  try {
    call();
    return 'ok';
  } catch (err) {
    return errorCode(err) ?? String(err);
  }
}

const LOWER = { lf: 'lower\n', lf2: 'x\n', lg: 'g\n', dir: { inside: 'i\n' } };

/** The kernel overlay over its own copy of LOWER; unmounted and removed in t.after. */
function kernelOverlay(t: TestContext, prefix: string, tree: Tree = LOWER, prepare?: (lower: string) => void): { mnt: string; upper: string } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-flags-kernel-'));
  const [lower, upper, work, mnt] = ['lower', 'upper', 'work', 'm'].map((d) => path.join(base, d));
  writeTree(lower!, tree, prefix);
  prepare?.(lower!);
  for (const d of [upper!, work!, mnt!]) fs.mkdirSync(d);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, mnt!]);
  assert.equal(r.status, 0, r.stderr.toString());
  t.after(() => {
    if (isMounted(mnt!)) spawnSync('umount', [mnt!]);
    fs.rmSync(base, { recursive: true, force: true });
  });
  return { mnt: mnt!, upper: upper! };
}

/** One side's calls, on paths from at(): node:fs on the kernel's mount; the facade and Overlay on ovlfs. */
interface Side {
  chattr(p: string, change: (flags: number) => number): void;
  lsattr(p: string): number;
  fs: Pick<typeof fs, 'accessSync' | 'openSync' | 'closeSync' | 'writeSync' | 'truncateSync' | 'ftruncateSync' | 'chmodSync' | 'fchmodSync' | 'chownSync' | 'utimesSync' | 'unlinkSync' | 'renameSync' | 'linkSync' | 'mkdirSync' | 'rmdirSync' | 'readFileSync' | 'writeFileSync'>;
  setxattr(p: string): void;
  removexattr(p: string): void;
  at(p: string): string;
}

function kernelSide(mnt: string): Side {
  const at = (p: string): string => path.join(mnt, p);
  return {
    chattr: (p, change) => setHostFlags(at(p), change),
    lsattr: (p) => hostFlags(at(p)),
    fs,
    setxattr: (p) => spawnOk('setfattr', ['-n', 'user.t', '-v', '1', at(p)]),
    removexattr: (p) => spawnOk('setfattr', ['-x', 'user.t', at(p)]),
    at,
  };
}

function spawnOk(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args);
  if (r.status !== 0) {
    const m = /: (Operation not permitted|No such attribute|Permission denied)/.exec(r.stderr.toString());
    const code = m?.[1] === 'Operation not permitted' ? 'EPERM' : m?.[1] === 'No such attribute' ? 'ENODATA' : m?.[1] === 'Permission denied' ? 'EACCES' : 'EIO';
    throw Object.assign(new Error(r.stderr.toString()), { code });
  }
}

function ovlfsSide(f: DirFixture): Side {
  const o = (): DirFixture['overlay'] => f.overlay;
  return {
    chattr: (p, change) => o().setFlags(o().resolve('/' + p), change(o().getFlags(o().resolve('/' + p)))),
    lsattr: (p) => o().getFlags(o().resolve('/' + p)),
    get fs() { return f.fs as unknown as Side['fs']; },
    setxattr: (p) => o().setxattr(o().resolve('/' + p), 'user.t', Buffer.from('1')),
    removexattr: (p) => o().removexattr(o().resolve('/' + p), 'user.t'),
    at: (p) => '/' + p,
  };
}

/** The script: each step's name and outcome, run the same way on either side. */
function script(s: Side): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const step = (name: string, call: () => unknown): void => { out.push([name, outcome(call)]); };
  const open = (p: string, flags: number) => () => s.fs.closeSync(s.fs.openSync(s.at(p), flags));
  // A lower file made immutable (copied up), an upper file append-only, directories of each kind.
  step('mkdir di', () => s.fs.mkdirSync(s.at('di')));
  step('mkdir da', () => s.fs.mkdirSync(s.at('da')));
  step('create da/f', () => s.fs.writeFileSync(s.at('da/f'), 'f'));
  step('create di/f', () => s.fs.writeFileSync(s.at('di/f'), 'f'));
  step('create af', () => s.fs.writeFileSync(s.at('af'), 'a\n'));
  step('create hl', () => s.fs.writeFileSync(s.at('hl'), 'h\n'));
  step('link hl hl2', () => s.fs.linkSync(s.at('hl'), s.at('hl2')));
  step('chmod hl2', () => s.fs.chmodSync(s.at('hl2'), 0o640));
  const held = s.fs.openSync(s.at('lg'), O_WRONLY);
  step('chattr +i lf', () => s.chattr('lf', (f) => f | FS_IMMUTABLE_FL));
  step('chattr +i lg', () => s.chattr('lg', (f) => f | FS_IMMUTABLE_FL));
  step('chattr +a af', () => s.chattr('af', (f) => f | FS_APPEND_FL));
  step('chattr +i di', () => s.chattr('di', (f) => f | FS_IMMUTABLE_FL));
  step('chattr +a da', () => s.chattr('da', (f) => f | FS_APPEND_FL));
  step('chattr +i dir (lower)', () => s.chattr('dir', (f) => f | FS_IMMUTABLE_FL));
  step('chattr +i hl', () => s.chattr('hl', (f) => f | FS_IMMUTABLE_FL));
  step('unlink hl2, another name of the same file', () => s.fs.unlinkSync(s.at('hl2')));
  for (const p of ['lf', 'af']) {
    step(`${p} open O_WRONLY`, open(p, O_WRONLY));
    step(`${p} open O_WRONLY|O_APPEND`, open(p, O_WRONLY | O_APPEND));
    step(`${p} open O_WRONLY|O_APPEND|O_TRUNC`, open(p, O_WRONLY | O_APPEND | O_TRUNC));
    step(`${p} open O_RDONLY|O_TRUNC`, open(p, O_RDONLY | O_TRUNC));
    step(`${p} open O_RDONLY`, open(p, O_RDONLY));
    step(`${p} access W_OK`, () => s.fs.accessSync(s.at(p), fs.constants.W_OK));
    step(`${p} truncate`, () => s.fs.truncateSync(s.at(p), 0));
    step(`${p} chmod`, () => s.fs.chmodSync(s.at(p), 0o600));
    step(`${p} chown`, () => s.fs.chownSync(s.at(p), 0, 0));
    step(`${p} utimes`, () => s.fs.utimesSync(s.at(p), 1, 1));
    step(`${p} setxattr`, () => s.setxattr(p));
    step(`${p} removexattr`, () => s.removexattr(p));
    step(`${p} unlink`, () => s.fs.unlinkSync(s.at(p)));
    step(`${p} rename`, () => s.fs.renameSync(s.at(p), s.at(p + '.moved')));
    step(`${p} rename over`, () => s.fs.renameSync(s.at('lf2'), s.at(p)));
    step(`${p} link`, () => s.fs.linkSync(s.at(p), s.at(p + '.link')));
  }
  step('af append', () => {
    const fd = s.fs.openSync(s.at('af'), O_WRONLY | O_APPEND);
    try {
      s.fs.writeSync(fd, 'more\n');
      s.fs.ftruncateSync(fd, 0);
    } finally {
      s.fs.closeSync(fd);
    }
  });
  step('af content', () => assert.equal(s.fs.readFileSync(s.at('af')).toString(), 'a\nmore\n'));
  step('lg write through a handle opened before +i', () => s.fs.writeSync(held, 'w'));
  step('lg ftruncate through it', () => s.fs.ftruncateSync(held, 0));
  step('lg fchmod through it', () => s.fs.fchmodSync(held, 0o600));
  s.fs.closeSync(held);
  for (const d of ['di', 'da', 'dir']) {
    step(`${d} create`, open(`${d}/new`, O_CREAT | O_WRONLY));
    step(`${d} mkdir`, () => s.fs.mkdirSync(s.at(`${d}/sub`)));
    step(`${d} mkdir existing`, () => s.fs.mkdirSync(s.at(`${d}/${d === 'dir' ? 'inside' : 'f'}`)));
    step(`${d} unlink child`, () => s.fs.unlinkSync(s.at(`${d}/${d === 'dir' ? 'inside' : 'f'}`)));
    step(`${d} unlink missing`, () => s.fs.unlinkSync(s.at(`${d}/missing`)));
    step(`${d} rename out`, () => s.fs.renameSync(s.at(`${d}/${d === 'dir' ? 'inside' : 'f'}`), s.at(`${d}.out`)));
    step(`${d} rename in`, () => s.fs.renameSync(s.at('lf2'), s.at(`${d}/lf2`)));
    step(`${d} rmdir`, () => s.fs.rmdirSync(s.at(d)));
    step(`${d} chmod`, () => s.fs.chmodSync(s.at(d), 0o700));
  }
  for (const p of ['lf', 'lg', 'af', 'di', 'da', 'dir', 'hl2']) {
    step(`lsattr ${p}`, () => {
      const flags = s.lsattr(p) & (FS_IMMUTABLE_FL | FS_APPEND_FL | FS_SYNC_FL | FS_NOATIME_FL | FS_NODUMP_FL);
      throw Object.assign(new Error(), { code: `flags ${flags.toString(16)}` });
    });
  }
  step('chattr -i lf', () => s.chattr('lf', (f) => f & ~FS_IMMUTABLE_FL));
  step('lf unlink after -i', () => s.fs.unlinkSync(s.at('lf')));
  return out;
}

/** Clears the protection flags a side left, so that its directories can be removed. */
function clearAll(s: Side): void {
  for (const p of ['lf', 'lg', 'af', 'di', 'da', 'dir', 'hl']) {
    try {
      s.chattr(p, (f) => f & ~(FS_IMMUTABLE_FL | FS_APPEND_FL));
    } catch {
      // Gone already.
    }
  }
}

function sameAsKernel(t: TestContext): void {
  const f = fixture(t, [LOWER]);
  const k = kernelOverlay(t, f.prefix);
  const kernel = kernelSide(k.mnt);
  const ovlfs = ovlfsSide(f);
  t.after(() => clearAll(ovlfs));
  t.after(() => clearAll(kernel));
  const expected = script(kernel);
  const actual = script(ovlfs);
  assert.deepEqual(actual, expected);
  // On disk as the kernel writes it: the xattr, and no immutable or append-only flag on the upper file.
  const protattr = (p: string): string | undefined => spawnSync('getfattr', ['--only-values', '-n', `${f.prefix}protattr`, p]).stdout.toString() || undefined;
  assert.equal(protattr(f.up('lg')), 'i');
  assert.equal(protattr(f.up('af')), 'a');
  assert.equal(protattr(path.join(k.upper, 'lg')), 'i');
  assert.equal(hostFlags(f.up('lg')) & (FS_IMMUTABLE_FL | FS_APPEND_FL), 0);
  // A new overlay over the same layers reads the same flags.
  f.reopen();
  for (const p of ['lg', 'af', 'di', 'da']) assert.equal(ovlfs.lsattr(p), kernel.lsattr(p), p);
  assert.equal(outcome(() => f.fs.unlinkSync('/lg')), 'EPERM');
  // The kernel overlay over the layers ovlfs wrote reads them too.
  f.overlay.close();
  const mnt = path.join(f.base, 'kmnt');
  fs.mkdirSync(mnt);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${f.lowers[0]},upperdir=${f.upper},workdir=${f.work}`, mnt]);
  assert.equal(r.status, 0, r.stderr.toString());
  try {
    for (const p of ['lg', 'af', 'di', 'da']) assert.equal(hostFlags(path.join(mnt, p)), kernel.lsattr(p), p);
    assert.equal(outcome(() => fs.unlinkSync(path.join(mnt, 'lg'))), 'EPERM');
  } finally {
    spawnSync('umount', [mnt]);
    f.reopen();
  }
}

function copyUpCarriesFlags(t: TestContext): void {
  const tree = { s: 's', a: 'a', d: 'd', i: 'i', ai: 'ai' };
  const lowerFlags: Record<string, number> = { s: FS_SYNC_FL, a: FS_NOATIME_FL, d: FS_NODUMP_FL, i: FS_IMMUTABLE_FL, ai: FS_IMMUTABLE_FL | FS_APPEND_FL };
  const setLowerFlags = (dir: string): void => {
    for (const [name, bits] of Object.entries(lowerFlags)) setHostFlags(path.join(dir, name), (x) => x | bits);
    // after hooks run in the order they were added: this one before the directory's removal.
    t.after(() => {
      for (const name of Object.keys(lowerFlags)) setHostFlags(path.join(dir, name), (x) => x & ~(FS_IMMUTABLE_FL | FS_APPEND_FL));
    });
  };
  // Made by hand, so that the lower flags are cleared before the fixture's removal.
  const f = makeFixture([tree]);
  setLowerFlags(f.lowers[0]!);
  t.after(() => f.cleanup());
  f.reopen();
  const k = kernelOverlay(t, f.prefix, tree, setLowerFlags);
  const kernel = kernelSide(k.mnt);
  const ovlfs = ovlfsSide(f);
  t.after(() => clearAll(ovlfs));
  const run = (s: Side): Array<[string, string]> => {
    const out: Array<[string, string]> = [];
    const mask = FS_IMMUTABLE_FL | FS_APPEND_FL | FS_SYNC_FL | FS_NOATIME_FL | FS_NODUMP_FL;
    for (const p of Object.keys(lowerFlags)) out.push([`lsattr ${p}`, (s.lsattr(p) & mask).toString(16)]);
    for (const p of ['s', 'a', 'd', 'i']) out.push([`chmod ${p}`, outcome(() => s.fs.chmodSync(s.at(p), 0o640))]);
    out.push(['chattr -i ai', outcome(() => s.chattr('ai', (x) => x & ~FS_IMMUTABLE_FL))]);
    out.push(['ai open O_WRONLY', outcome(() => s.fs.closeSync(s.fs.openSync(s.at('ai'), O_WRONLY)))]);
    out.push(['ai open O_APPEND', outcome(() => s.fs.closeSync(s.fs.openSync(s.at('ai'), O_WRONLY | O_APPEND)))]);
    for (const p of Object.keys(lowerFlags)) out.push([`lsattr ${p} after`, (s.lsattr(p) & mask).toString(16)]);
    return out;
  };
  assert.deepEqual(run(ovlfs), run(kernel));
  for (const p of ['s', 'a', 'd']) assert.equal(hostFlags(f.up(p)) & ~0x80000, hostFlags(path.join(k.upper, p)) & ~0x80000, p);
}

function metacopyKeepsFlags(t: TestContext): void {
  const f = fixture(t, [{ big: 'data\n' }], { metacopy: 'on' });
  const o = f.overlay;
  o.setFlags(o.resolve('/big'), o.getFlags(o.resolve('/big')) | FS_APPEND_FL | FS_NOATIME_FL);
  assert.equal(o.copyUpState(o.resolve('/big')), 'metacopy');
  assert.throws(() => f.fs.writeFileSync('/big', 'x'), { code: 'EPERM' });
  f.fs.appendFileSync('/big', 'more\n');
  assert.equal(o.copyUpState(o.resolve('/big')), 'upper');
  assert.equal(f.fs.readFileSync('/big', 'utf8'), 'data\nmore\n');
  assert.equal(o.getFlags(o.resolve('/big')) & (FS_APPEND_FL | FS_NOATIME_FL), FS_APPEND_FL | FS_NOATIME_FL);
  assert.throws(() => f.fs.unlinkSync('/big'), { code: 'EPERM' });
}

// One test for the three, so that an unprivileged run skips one (it can neither set these flags nor mount).
test('chattr +i/+a next to the kernel overlay', async (t) => {
  if (!canRun) return t.skip(skipReason);
  await t.test('every call answers as on the kernel overlay; the flags survive a remount and read the same on the kernel', sameAsKernel);
  await t.test('copy-up carries sync, noatime, immutable and append-only from a lower file and drops the rest, as the kernel does', copyUpCarriesFlags);
  await t.test('metacopy=on: chattr copies up metadata only; the data copy-up of an append-only file keeps its flags', metacopyKeepsFlags);
});

testEachKind('flags of a special file or on a layer without them: ENOTTY, as the kernel overlay answers', (t, kind) => {
  const f = fixture(t, [{ file: 'x', link: { symlink: 'file' } }], {}, { kind });
  const o = f.overlay;
  assert.throws(() => o.getFlags(o.resolve('/link', false)), { code: 'ENOTTY' });
  if (kind === 'memory') {
    assert.throws(() => o.getFlags(o.resolve('/file')), { code: 'ENOTTY' });
    assert.throws(() => o.setFlags(o.resolve('/file'), FS_IMMUTABLE_FL), { code: 'ENOTTY' });
    f.fs.unlinkSync('/file');
  }
});

testEachKind('only the owner or root sets flags, and only root immutable or append-only (EPERM, as the VFS checks)', (t, kind) => {
  const f = fixture(t, [{ file: 'x' }], {}, { kind });
  const o = f.overlay;
  const node = o.resolve('/file');
  const owner = o.getattr(node).uid;
  const stranger = { uid: owner + 1, gid: owner + 1 };
  assert.throws(() => o.setFlags(node, FS_NOATIME_FL, stranger), { code: 'EPERM', syscall: 'ioctl' });
  assert.throws(() => o.setFlags(node, FS_IMMUTABLE_FL, { uid: owner === 0 ? 1 : owner, gid: 0 }), { code: owner === 0 ? 'EPERM' : kind === 'memory' ? 'ENOTTY' : 'EPERM', syscall: 'ioctl' });
  // Nothing was copied up by a refused call.
  assert.equal(o.copyUpState(node), 'lower');
  if (kind === 'dir' && owner !== 0) {
    // A plain owner may set the flags that need no capability.
    o.setFlags(node, (o.getFlags(node) | FS_NOATIME_FL) >>> 0);
    assert.equal(o.getFlags(node) & FS_NOATIME_FL, FS_NOATIME_FL);
  }
});
