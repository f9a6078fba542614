// Overlay.tmpfile: an O_TMPFILE file made in the work area, named by Overlay.link (its parent copied
// up first, a whiteout at the name replaced), or gone with its last open file; nothing stays in the
// work area either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { fixture, forEachLayerKind, type Fixture } from '../support/fixture.js';

const { O_RDWR, O_RDONLY, O_EXCL } = constants;
const tree = { d: { old: 'lower old\n' }, e: { keep: 'keep\n' } };

function noLeftovers(f: Fixture): void {
  if (f.kind === 'dir') assert.deepEqual(f.workLeftovers(), []);
}

forEachLayerKind((kind, label) => {
  test(`a tmpfile in a lower directory is named by link, with its data, and later writes reach the name${label}`, (t) => {
    const f = fixture(t, [tree], {}, { kind });
    const o = f.overlay;
    const file = o.tmpfile(o.resolve('/d'), O_RDWR, 0o640);
    o.write(file, Buffer.from('tmp data\n'), 0, 9, null);
    const node = o.nodeOf(file);
    assert.equal(o.fstat(file).nlink, 0);
    assert.equal(o.getattr(node).nlink, 0);
    assert.deepEqual(f.fs.readdirSync('/d'), ['old']);
    const named = o.link(node, o.resolve('/d'), 'new');
    assert.equal(named, node, 'the unnamed node itself takes the name');
    assert.equal(o.fstat(file).nlink, 1);
    assert.equal(o.getattr(o.resolve('/d/new')).mode & 0o7777, 0o640);
    assert.ok(f.entry('upper', 'd/new') !== undefined, 'named in the upper layer, parent copied up');
    o.write(file, Buffer.from('more\n'), 0, 5, null);
    o.link(node, o.resolve('/e'), 'second');
    o.release(file);
    assert.equal(f.fs.readFileSync('/d/new', 'utf8'), 'tmp data\nmore\n');
    assert.equal(f.fs.readFileSync('/e/second', 'utf8'), 'tmp data\nmore\n');
    assert.equal(f.fs.statSync('/d/new').nlink, 2);
    noLeftovers(f);
  });

  test(`linking a tmpfile over a removed lower name replaces the whiteout; an existing name is EEXIST${label}`, (t) => {
    const f = fixture(t, [tree], {}, { kind });
    const o = f.overlay;
    const file = o.tmpfile(o.resolve('/d'), O_RDWR, 0o600);
    o.write(file, Buffer.from('x'), 0, 1, null);
    assert.throws(() => o.link(o.nodeOf(file), o.resolve('/d'), 'old'), { code: 'EEXIST' });
    f.fs.unlinkSync('/d/old');
    o.link(o.nodeOf(file), o.resolve('/d'), 'old');
    o.release(file);
    assert.equal(f.fs.readFileSync('/d/old', 'utf8'), 'x');
    assert.equal(f.entry('upper', 'd/old')?.whiteout, false);
    noLeftovers(f);
  });

  test(`an unnamed tmpfile is gone with its last open file; O_EXCL ones cannot be named${label}`, (t) => {
    const f = fixture(t, [tree], {}, { kind });
    const o = f.overlay;
    const file = o.tmpfile(o.resolve('/e'), O_RDWR, 0o600);
    o.write(file, Buffer.alloc(1000, 1), 0, 1000, null);
    assert.equal(o.fstat(file).size, 1000);
    o.release(file);
    assert.deepEqual(f.fs.readdirSync('/e'), ['keep']);
    noLeftovers(f);
    const excl = o.tmpfile(o.resolve('/e'), O_RDWR | O_EXCL, 0o600);
    assert.throws(() => o.link(o.nodeOf(excl), o.resolve('/e'), 'x'), { code: 'ENOENT' });
    o.release(excl);
    noLeftovers(f);
    assert.throws(() => o.tmpfile(o.resolve('/e'), O_RDONLY, 0o600), { code: 'EINVAL' });
    assert.throws(() => o.tmpfile(o.resolve('/e/keep'), O_RDWR, 0o600), { code: 'ENOTDIR' });
    noLeftovers(f);
  });
});
