// Proves src/fuse/protocol.ts byte for byte against the layouts of /usr/include/linux/fuse.h; needs no mount.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as P from '../../src/fuse/protocol.js';
import { nameFromBytes } from '../../src/names.js';

const attr = {
  ino: 2n ** 60n + 5n,
  size: 2 ** 40 + 3,
  blocks: 8,
  atime: 1_700_000_000,
  atimensec: 999_999_999,
  mtime: 1n,
  mtimensec: 2,
  ctime: 3,
  ctimensec: 4,
  mode: 0o100644,
  nlink: 1,
  uid: 1000,
  gid: 100,
  rdev: 0,
  blksize: 4096,
};

test('u64 fields take numbers above 2^32, bigints and negatives', () => {
  const b = Buffer.alloc(8);
  P.writeU64(b, 0, 2 ** 40 + 7);
  assert.equal(b.readBigUInt64LE(0), 2n ** 40n + 7n);
  assert.equal(P.readU64(b, 0), 2 ** 40 + 7);
  P.writeU64(b, 0, 2n ** 63n);
  assert.equal(b.readBigUInt64LE(0), 2n ** 63n);
  P.writeU64(b, 0, -1);
  assert.equal(b.readBigUInt64LE(0), 2n ** 64n - 1n);
});

test('fuse_entry_out: 16-byte header then 128 bytes, timeouts split into seconds and nanoseconds', () => {
  const b = P.encodeEntryOut(7n, { nodeid: 42, generation: 3, entryTimeout: 1.5, attr }, { entry: 1, attr: 2 });
  assert.equal(b.length, 16 + 128);
  assert.equal(b.readUInt32LE(0), b.length);
  assert.equal(b.readInt32LE(4), 0);
  assert.equal(b.readBigUInt64LE(8), 7n);
  assert.equal(b.readBigUInt64LE(16), 42n);
  assert.equal(b.readBigUInt64LE(24), 3n);
  assert.equal(b.readBigUInt64LE(32), 1n); // entry_valid
  assert.equal(b.readBigUInt64LE(40), 2n); // attr_valid (default)
  assert.equal(b.readUInt32LE(48), 500_000_000);
  assert.equal(b.readUInt32LE(52), 0);
  const a = 56;
  assert.equal(b.readBigUInt64LE(a), attr.ino);
  assert.equal(b.readBigUInt64LE(a + 8), BigInt(attr.size));
  assert.equal(b.readUInt32LE(a + 48), 999_999_999);
  assert.equal(b.readUInt32LE(a + 60), 0o100644);
  assert.equal(b.readUInt32LE(a + 80), 4096);
});

test('fuse_dirent and fuse_direntplus are padded to 8 bytes with zeros', () => {
  assert.equal(P.direntSize(1), 32);
  assert.equal(P.direntSize(8), 32);
  assert.equal(P.direntSize(9), 40);
  assert.equal(P.direntplusSize(1), 128 + 32);
  const b = Buffer.alloc(64, 0xff);
  const end = P.writeDirent(b, 0, 9, 3, 0o040000, Buffer.from('abc'));
  assert.equal(end, 32);
  assert.equal(b.readUInt32LE(16), 3);
  assert.equal(b.readUInt32LE(20), 4); // DT_DIR
  assert.equal(b.toString('utf8', 24, 27), 'abc');
  assert.deepEqual([...b.subarray(27, 32)], [0, 0, 0, 0, 0]);
  const p = Buffer.alloc(200, 0xff);
  assert.equal(P.writeDirentplus(p, 0, null, { entry: 1, attr: 1 }, 9, 1, 0o100000, Buffer.from('x')), 160);
  assert.equal(p.readBigUInt64LE(0), 0n); // nodeid 0: name only, no lookup counted
  assert.equal(p.readUInt32LE(128 + 20), 8); // DT_REG
});

test('setattr decodes only the fields named by valid', () => {
  const b = Buffer.alloc(88);
  b.writeUInt32LE(P.Fattr.MODE | P.Fattr.SIZE | P.Fattr.MTIME | P.Fattr.ATIME_NOW, 0);
  P.writeU64(b, 16, 12345);
  P.writeU64(b, 40, 1_000_000);
  b.writeUInt32LE(77, 60);
  b.writeUInt32LE(0o100600, 68);
  b.writeUInt32LE(999, 76); // uid, not flagged
  assert.deepEqual(P.decodeSetattrIn(b, 0), {
    valid: P.Fattr.MODE | P.Fattr.SIZE | P.Fattr.MTIME | P.Fattr.ATIME_NOW,
    size: 12345,
    atime: 'now',
    mtime: { sec: 1_000_000n, nsec: 77 },
    mode: 0o100600,
  });
});

test('rename and rename2 carry both names; setxattr has two layouts', () => {
  const r2 = Buffer.concat([Buffer.alloc(16), Buffer.from('old\0new\0')]);
  P.writeU64(r2, 0, 5);
  r2.writeUInt32LE(P.RENAME_NOREPLACE, 8);
  assert.deepEqual(P.decodeRenameIn(r2, 0, r2.length, true), { newDir: 5, flags: 1, oldName: 'old', newName: 'new' });
  const r1 = Buffer.concat([Buffer.alloc(8), Buffer.from('a\0b\0')]);
  assert.deepEqual(P.decodeRenameIn(r1, 0, r1.length, false), { newDir: 0, flags: 0, oldName: 'a', newName: 'b' });
  const sx = Buffer.concat([Buffer.alloc(8), Buffer.from('user.k\0VAL')]);
  sx.writeUInt32LE(3, 0);
  sx.writeUInt32LE(1, 4);
  const d = P.decodeSetxattrIn(sx, 0, sx.length, false);
  assert.equal(d.name, 'user.k');
  assert.equal(d.value.toString(), 'VAL');
  assert.equal(d.flags, 1);
});

test('notifications: unique 0, the code in the error field, names NUL-terminated', () => {
  const e = P.encodeNotifyInvalEntry(1, 'name');
  assert.equal(e.readUInt32LE(0), e.length);
  assert.equal(e.readInt32LE(4), P.NotifyCode.INVAL_ENTRY);
  assert.equal(e.readBigUInt64LE(8), 0n);
  assert.equal(e.readUInt32LE(24), 4);
  assert.equal(e.toString('utf8', 32, 36), 'name');
  assert.equal(e[36], 0);
  const i = P.encodeNotifyInvalInode(9, 0, -1);
  assert.equal(i.length, 16 + 24);
  assert.equal(i.readInt32LE(4), P.NotifyCode.INVAL_INODE);
  assert.equal(i.readBigInt64LE(32), -1n);
});

test('init_out is 64 bytes and keeps flags above bit 30 unsigned', () => {
  const b = P.encodeInitOut(1n, { major: 7, minor: 38, maxReadahead: 1 << 17, flags: P.InitFlag.INIT_RESERVED | P.InitFlag.MAX_PAGES, maxBackground: 16, congestionThreshold: 12, maxWrite: 1 << 20, timeGran: 1, maxPages: 256 });
  assert.equal(b.length, 16 + 64);
  assert.equal(b.readUInt32LE(16 + 12), (0x80000000 | (1 << 22)) >>> 0);
  assert.equal(b.readUInt16LE(16 + 28), 256);
});

test('names in requests: ASCII, UTF-8 and raw bytes read as nameFromBytes reads them, up to the NUL or the end', () => {
  const names = [Buffer.from('security.capability'), Buffer.from('été ☃'), Buffer.from([0x61, 0xff, 0x62]), Buffer.from([0x7f, 0x80])];
  for (const bytes of names) {
    const req = Buffer.concat([Buffer.alloc(8, 0xee), bytes, Buffer.from([0]), Buffer.from('next\0')]);
    const [name, after] = P.readName(req, 8, req.length);
    assert.equal(name, nameFromBytes(bytes));
    assert.equal(after, 8 + bytes.length + 1);
    assert.equal(P.readName(req, after, req.length)[0], 'next');
  }
  // No NUL before `end`: the name stops there.
  assert.deepEqual(P.readName(Buffer.from('abcdef'), 1, 4), ['bcd', 5]);
});

test('a reply of a size built before comes zeroed: a statx without a birth time after one with it', () => {
  const first = P.encodeStatxOut(7n, { attr, btime: { sec: 1_600_000_000, nsec: 5 }, attributes: 0x20 }, { entry: 1, attr: 2 });
  const btime = 16 + 32 + 80;
  assert.equal(first.readBigInt64LE(btime), 1_600_000_000n);
  const second = P.encodeStatxOut(8n, { attr }, { entry: 1, attr: 2 });
  assert.equal(second.readBigUInt64LE(8), 8n);
  assert.equal(second.readBigInt64LE(btime), 0n);
  assert.equal(second.readUInt32LE(btime + 8), 0);
  assert.equal(second.readUInt32LE(16 + 32) & 0x800, 0); // STATX_BTIME not claimed
});
