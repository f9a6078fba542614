// Extended attributes through the overlay: user xattrs copy up and round-trip; the overlay's own
// (trusted.overlay.*, user.overlay.*) are neither shown nor settable, whatever the layer kind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, isRoot, testEachKind } from '../support/fixture.js';

const CAPS = 'security.capability';

/** A file capability as setcap writes it (vfs_cap_data revision 2: cap_net_raw, permitted and effective). */
function fileCaps(): Buffer {
  const v = Buffer.alloc(20);
  v.writeUInt32LE(0x02000001, 0);
  v.writeUInt32LE(1 << 13, 4);
  return v;
}

testEachKind('user xattrs round-trip through the overlay and copy the file up', (t, kind) => {
  const f = fixture(t, [{ file: 'x' }], {}, { kind });
  const o = f.overlay;
  const node = o.resolve('/file');
  assert.deepEqual(o.listxattr(node).filter((n) => n.startsWith('user.')), []);
  o.setxattr(node, 'user.color', Buffer.from('blue'));
  assert.ok(f.entry('upper', 'file'), 'setxattr copies up');
  assert.deepEqual(o.getxattr(o.resolve('/file'), 'user.color'), Buffer.from('blue'));
  assert.deepEqual(o.listxattr(o.resolve('/file')).filter((n) => n.startsWith('user.')), ['user.color']);
  o.removexattr(o.resolve('/file'), 'user.color');
  assert.equal(o.getxattr(o.resolve('/file'), 'user.color'), undefined);
  assert.throws(() => o.removexattr(o.resolve('/file'), 'user.color'), { code: 'ENODATA' });
  assert.equal(f.fs.readFileSync('/file', 'utf8'), 'x');
});

testEachKind('the overlay\'s own xattrs are hidden from listxattr and getxattr', (t, kind) => {
  const f = fixture(t, [{ d: { old: '1' }, m: 'data' }], { redirect_dir: 'on', metacopy: 'on' }, { kind });
  f.fs.rmSync('/d', { recursive: true });
  f.fs.mkdirSync('/d'); // opaque in the upper layer
  f.fs.chmodSync('/m', 0o600); // metacopy in the upper layer
  assert.ok(f.entry('upper', 'd')?.opaque && f.entry('upper', 'm')?.metacopy);
  const o = f.overlay;
  for (const p of ['/d', '/m']) {
    const own = o.listxattr(o.resolve(p)).filter((n) => /^(trusted|user)\.overlay\./.test(n) || n.includes('ovlfs'));
    assert.deepEqual(own, [], `${p} lists none of the overlay's own xattrs`);
    for (const name of ['opaque', 'metacopy', 'redirect', 'origin']) {
      for (const prefix of ['trusted.overlay.', 'user.overlay.']) assert.equal(o.getxattr(o.resolve(p), prefix + name), undefined, `${p} ${prefix}${name}`);
    }
  }
});

testEachKind('setting or removing one of the overlay\'s own xattrs is refused and copies nothing up', (t, kind) => {
  const f = fixture(t, [{ d: { a: '1' }, file: 'x' }], {}, { kind });
  const o = f.overlay;
  for (const name of ['trusted.overlay.opaque', 'user.overlay.opaque', 'trusted.overlay.redirect', 'user.overlay.whiteout']) {
    assert.throws(() => o.setxattr(o.resolve('/d'), name, Buffer.from('y')), (err: NodeJS.ErrnoException) => typeof err.code === 'string', name);
    assert.throws(() => o.setxattr(o.resolve('/file'), name, Buffer.from('y')), (err: NodeJS.ErrnoException) => typeof err.code === 'string', name);
    assert.throws(() => o.removexattr(o.resolve('/file'), name), { code: 'ENODATA' });
  }
  assert.equal(f.entry('upper', 'd'), undefined, 'a refused setxattr copies nothing up');
  assert.equal(f.entry('upper', 'file'), undefined);
  assert.deepEqual((f.fs.readdirSync('/d') as string[]), ['a'], 'the directory is still merged, not opaque');
});

testEachKind('a file capability set through one name is seen through every name, after answers that there was none', (t, kind) => {
  if (kind === 'dir' && !isRoot) return t.skip('setting security.capability needs CAP_SETFCAP');
  const f = fixture(t, [{ file: 'x' }], {}, { kind });
  const o = f.overlay;
  f.fs.linkSync('/file', '/link');
  assert.equal(o.getxattr(o.resolve('/file'), CAPS), undefined);
  assert.equal(o.getxattr(o.resolve('/link'), CAPS), undefined);
  o.setxattr(o.resolve('/file'), CAPS, fileCaps());
  assert.deepEqual(o.getxattr(o.resolve('/link'), CAPS), fileCaps(), 'the other name of the file');
  assert.deepEqual(o.getxattr(o.resolve('/file'), CAPS), fileCaps());
  o.removexattr(o.resolve('/link'), CAPS);
  assert.equal(o.getxattr(o.resolve('/file'), CAPS), undefined);
  const fd = f.fs.openSync('/new', 'w');
  f.fs.closeSync(fd);
  assert.equal(o.getxattr(o.resolve('/new'), CAPS), undefined);
  o.setxattr(o.resolve('/new'), CAPS, fileCaps());
  assert.deepEqual(o.getxattr(o.resolve('/new'), CAPS), fileCaps(), 'a new file given a capability');
});

test('the question for a file capability, asked before every exec and write, reaches a layer once per file', (t) => {
  const f = fixture(t, [{ bin: 'x' }], {}, { kind: 'memory' });
  const asked: string[] = [];
  for (const which of [0, 'upper'] as const) {
    f.inspect(which, (layer) => {
      const get = layer.getxattr.bind(layer);
      layer.getxattr = (rel: string, name: string) => {
        if (name === CAPS) asked.push(`${which}:${rel}`);
        return get(rel, name);
      };
    });
  }
  const o = f.overlay;
  for (let i = 0; i < 3; i++) assert.equal(o.getxattr(o.resolve('/bin'), CAPS), undefined);
  const fd = f.fs.openSync('/new', 'w');
  f.fs.closeSync(fd);
  for (let i = 0; i < 3; i++) assert.equal(o.getxattr(o.resolve('/new'), CAPS), undefined);
  assert.deepEqual(asked, ['0:bin'], 'a lower file once; a file the overlay made, never');
});
