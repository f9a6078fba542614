// Hostile symlinks in the lower and upper layers: loops, '..' chains, absolute links to host paths.
//
// The library resolves every link inside the overlay, as if the process were chrooted at the overlay's
// root: an absolute target starts at the overlay root, '..' at the root stays there. To make that
// visible, the lower layer holds a file at the same absolute path as the host's secret (content INSIDE):
// the library must read that one, and no call may change the host's.
//
// Through a mount the kernel's VFS resolves the links, so a link to a host path reaches the host there,
// for the kernel overlay and the ovlfs mount alike: the mount is held to the kernel's answers (read-only
// questions, so the host's secret stays as it is).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { agree, attempt, cannotMount, scratch, trio, type Build, type View } from '../support/hostile-env.js';

const HOST = 'HOST secret\n';
const INSIDE = 'INSIDE the overlay\n';

function links(outside: string): Record<string, string> {
  return {
    abs: `${outside}/secret`,
    absdir: outside,
    rel: `${'../'.repeat(12)}${outside.slice(1)}/secret`,
    reldir: `${'../'.repeat(12)}${outside.slice(1)}`,
    loop: 'loop',
    ping: 'pong',
    pong: 'ping',
    self: './self/x',
    dotdot: '..',
    passwd: '/etc/passwd',
    procroot: '/proc/self/root/etc/passwd',
  };
}

function builder(outside: string): Build {
  return (dir) => {
    const l = join(dir, 'l');
    fs.mkdirSync(join(l, 'd'), { recursive: true });
    fs.mkdirSync(join(dir, 'u', 'up'), { recursive: true });
    fs.mkdirSync(join(dir, 'w'));
    // The same absolute path inside the overlay, with other content.
    fs.mkdirSync(join(l, outside), { recursive: true });
    fs.writeFileSync(join(l, outside, 'secret'), INSIDE);
    for (const [name, target] of Object.entries(links(outside))) {
      fs.symlinkSync(target, join(l, name));
      fs.symlinkSync(target, join(l, 'd', name));
      fs.symlinkSync(target, join(dir, 'u', 'up', name));
    }
    return `lowerdir=${l},upperdir=${dir}/u,workdir=${dir}/w`;
  };
}

function snapshot(dir: string): string {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort()
    .map((n) => `${n}:${fs.statSync(join(dir, n)).isFile() ? fs.readFileSync(join(dir, n), 'utf8') : 'dir'}`).join('\n');
}

test('hostile symlinks: the library resolves inside the overlay, the mount as the kernel does', async (t) => {
  const base = scratch(t, 'symlinks');
  const outside = join(base, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(join(outside, 'secret'), HOST);
  const hostBefore = snapshot(outside);
  const passwd = fs.readFileSync('/etc/passwd', 'utf8');
  const tr = await trio(t, base, builder(outside));
  const names = Object.keys(links(outside));
  const dirs = ['', '/d', '/up'];

  await t.test('readlink gives the stored target everywhere', () => {
    agree(tr, dirs.flatMap((d) => names.map((n): [string, string, (v: View) => string] =>
      [`readlink ${d}/${n}`, `OK ${links(outside)[n]}`, (v) => attempt(() => v.fs.readlinkSync(v.p(`${d}/${n}`)), String)])));
  });

  await t.test('the mount follows links as the kernel overlay does (read-only questions)', { skip: cannotMount() }, () => {
    const views = { ...tr, views: tr.views.filter((v) => v.name !== 'library') };
    const q: Array<[string, string, (v: View) => string]> = [];
    for (const d of dirs) {
      q.push(
        [`read ${d}/abs`, `OK ${JSON.stringify(HOST)}`, (v) => attempt(() => v.fs.readFileSync(v.p(`${d}/abs`), 'utf8'), JSON.stringify)],
        [`read ${d}/rel`, `OK ${JSON.stringify(HOST)}`, (v) => attempt(() => v.fs.readFileSync(v.p(`${d}/rel`), 'utf8'), JSON.stringify)],
        [`readdir ${d}/absdir`, 'OK secret', (v) => attempt(() => (v.fs.readdirSync(v.p(`${d}/absdir`)) as string[]).join(','), String)],
        [`read ${d}/passwd`, 'OK true', (v) => attempt(() => v.fs.readFileSync(v.p(`${d}/passwd`), 'utf8') === passwd, String)],
        [`read ${d}/loop`, 'ELOOP', (v) => attempt(() => v.fs.readFileSync(v.p(`${d}/loop`)))],
        [`read ${d}/ping`, 'ELOOP', (v) => attempt(() => v.fs.readFileSync(v.p(`${d}/ping`)))],
        [`stat ${d}/self`, 'ELOOP', (v) => attempt(() => v.fs.statSync(v.p(`${d}/self`)))],
        [`write ${d}/loop`, 'ELOOP', (v) => attempt(() => v.fs.writeFileSync(v.p(`${d}/loop`), 'x'))],
        [`open ${d}/abs O_NOFOLLOW`, 'ELOOP', (v) => attempt(() => v.fs.openSync(v.p(`${d}/abs`), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW))],
        [`lstat ${d}/abs`, 'OK true', (v) => attempt(() => v.fs.lstatSync(v.p(`${d}/abs`)).isSymbolicLink(), String)],
      );
    }
    q.push([`readdir /d/dotdot`, 'OK true', (v) => attempt(() => (v.fs.readdirSync(v.p('/d/dotdot')) as string[]).includes('abs'), String)]);
    agree(views, q);
  });

  await t.test('the library resolves absolute and ".." links inside the overlay root', () => {
    const f = tr.library.fs;
    const results: string[] = [];
    const expect = (what: string, got: string, want: string): void => {
      if (got !== want) results.push(`${what}: library answers ${got}, a process chrooted at the overlay root gets ${want}`);
    };
    for (const d of dirs) {
      expect(`read ${d}/abs`, attempt(() => f.readFileSync(`${d}/abs`, 'utf8'), JSON.stringify), `OK ${JSON.stringify(INSIDE)}`);
      expect(`read ${d}/rel`, attempt(() => f.readFileSync(`${d}/rel`, 'utf8'), JSON.stringify), `OK ${JSON.stringify(INSIDE)}`);
      expect(`readdir ${d}/reldir`, attempt(() => (f.readdirSync(`${d}/reldir`) as string[]).join(','), String), 'OK secret');
      expect(`realpath ${d}/abs`, attempt(() => f.realpathSync(`${d}/abs`), String), `OK ${outside}/secret`);
      expect(`read ${d}/passwd`, attempt(() => f.readFileSync(`${d}/passwd`)), 'ENOENT');
      expect(`read ${d}/procroot`, attempt(() => f.readFileSync(`${d}/procroot`)), 'ENOENT');
      expect(`read ${d}/loop`, attempt(() => f.readFileSync(`${d}/loop`)), 'ELOOP');
      expect(`read ${d}/ping`, attempt(() => f.readFileSync(`${d}/ping`)), 'ELOOP');
      expect(`stat ${d}/self`, attempt(() => f.statSync(`${d}/self`)), 'ELOOP');
    }
    for (const d of dirs) {
      expect(`write ${d}/loop`, attempt(() => f.writeFileSync(`${d}/loop`, 'x')), 'ELOOP');
      expect(`write ${d}/passwd`, attempt(() => f.writeFileSync(`${d}/passwd`, 'root::0:0::/:/bin/sh\n')), 'ENOENT');
      expect(`append ${d}/abs`, attempt(() => f.appendFileSync(`${d}/abs`, `via ${d}\n`)), 'OK');
      expect(`mkdir ${d}/absdir/new`, attempt(() => f.mkdirSync(`${d}/absdir/new${d.replace('/', '-')}`)), 'OK');
      expect(`chmod ${d}/reldir`, attempt(() => f.chmodSync(`${d}/reldir`, 0o755)), 'OK');
    }
    expect('readdir /dotdot (.. at the root is the root)', attempt(() => (f.readdirSync('/dotdot') as string[]).includes('abs'), String), 'OK true');
    expect('read /d/dotdot/abs', attempt(() => f.readFileSync('/d/dotdot/abs', 'utf8'), JSON.stringify), `OK ${JSON.stringify(INSIDE.replace(/\n$/, '\nvia \nvia /d\nvia /up\n'))}`);
    assert.deepEqual(results, []);
  });

  await t.test('nothing outside the layers changed', () => {
    assert.equal(snapshot(outside), hostBefore, 'the host directory the links point at changed');
    assert.equal(fs.readFileSync('/etc/passwd', 'utf8'), passwd);
    // The library's writes landed in its upper layer, in the overlay's copy of that path.
    assert.match(fs.readFileSync(join(tr.dirs.library, 'u', outside, 'secret'), 'utf8'), /via \/up/);
  });
});
