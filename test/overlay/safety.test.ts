// Never reach outside the layers: hostile symlinks planted in lower and upper layers are resolved
// inside the overlay's own root, through every writing call.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fixture, testEachKind, type Tree } from '../support/fixture.js';

function snapshot(dir: string): string {
  const hash = createHash('sha256');
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    hash.update(`${p}:${st.mode}:${st.size}:${st.mtimeMs}:${st.uid}\n`);
    if (st.isDirectory()) for (const name of fs.readdirSync(p).sort()) walk(path.join(p, name));
    else if (st.isFile()) hash.update(fs.readFileSync(p));
  };
  walk(dir);
  return hash.digest('hex');
}

const hostile = (outside: string): Tree => ({
  abs: { symlink: `${outside}/secret` },
  absdir: { symlink: outside },
  dotdot: { symlink: '../../../../../../../../' + outside.replace(/^\//, '') + '/secret' },
  dotdotdir: { symlink: '../'.repeat(12) + outside.replace(/^\//, '') },
  loop: { symlink: 'loop' },
  etc: { symlink: '/etc/passwd' },
});

testEachKind('hostile symlinks in lower and upper layers never reach the host', (t, kind) => {
  const outsideBase = fs.mkdtempSync('/tmp/ovlfs-outside-');
  t.after(() => fs.rmSync(outsideBase, { recursive: true, force: true }));
  const outside = path.join(outsideBase, 'victim');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'do not touch');
  const before = snapshot(outsideBase);
  const passwd = snapshot('/etc/passwd');
  const g = fixture(t, [hostile(outside)], {}, { kind, upper: { up: hostile(outside) } });
  const calls: Array<[string, () => unknown]> = [];
  for (const dir of ['', '/up']) {
    for (const link of ['abs', 'dotdot', 'etc', 'loop']) {
      const p = `${dir}/${link}`;
      calls.push(
        [`writeFile ${p}`, () => g.fs.writeFileSync(p, 'pwned')],
        [`appendFile ${p}`, () => g.fs.appendFileSync(p, 'pwned')],
        [`truncate ${p}`, () => g.fs.truncateSync(p, 0)],
        [`chmod ${p}`, () => g.fs.chmodSync(p, 0o777)],
        [`chown ${p}`, () => g.fs.chownSync(p, 1, 1)],
        [`utimes ${p}`, () => g.fs.utimesSync(p, 1, 1)],
        [`open r+ ${p}`, () => g.fs.openSync(p, 'r+')],
        [`copyFile to ${p}`, () => g.fs.copyFileSync('/up/abs', p)],
        [`readFile ${p}`, () => g.fs.readFileSync(p)],
      );
    }
    for (const link of ['absdir', 'dotdotdir']) {
      const p = `${dir}/${link}`;
      calls.push(
        [`mkdir ${p}/x`, () => g.fs.mkdirSync(`${p}/x`, { recursive: true })],
        [`writeFile ${p}/secret`, () => g.fs.writeFileSync(`${p}/secret`, 'pwned')],
        [`unlink ${p}/secret`, () => g.fs.unlinkSync(`${p}/secret`)],
        [`rename ${p}/secret`, () => g.fs.renameSync(`${p}/secret`, '/stolen')],
        [`symlink ${p}/l`, () => g.fs.symlinkSync('/x', `${p}/l`)],
        [`link ${p}/secret`, () => g.fs.linkSync(`${p}/secret`, '/hard')],
        [`rm ${p}`, () => g.fs.rmSync(`${p}/`, { recursive: true, force: true })],
      );
    }
  }
  for (const [, fn] of calls) {
    try {
      const r = fn();
      if (typeof r === 'number') g.fs.closeSync(r);
    } catch {
      // Errors are fine; reaching the host is not.
    }
  }
  assert.equal(snapshot(outsideBase), before, 'nothing outside the layers changed');
  assert.equal(snapshot('/etc/passwd'), passwd);
  // Absolute targets resolve inside the overlay, where /etc is the link itself.
  assert.throws(() => g.fs.readFileSync('/etc', 'utf8'), { code: 'ELOOP' }); // /etc -> /etc/passwd -> itself
  assert.throws(() => g.fs.readFileSync('/abs', 'utf8'), { code: 'ENOENT' });
});

testEachKind('.. at the root stays at the root', (t, kind) => {
  const f = fixture(t, [{ file: 'inside' }], {}, { kind });
  assert.equal(f.fs.readFileSync('/../../../file', 'utf8'), 'inside');
  assert.equal(f.fs.realpathSync('/../..'), '/');
});
