// A FUSE server that answers INIT, STATFS (a canned reply) and GETXATTR (ENODATA) only, ENOSYS for the
// rest, to measure what
// one request costs a Node process that does nothing else: the floor under any daemon written for Node.
//   node --import tsx bench/lib/null-fuse.ts MODE MNT
// MODE: node-fs (read and write /dev/fuse with Node's fs binding), koffi (with read(2) and write(2)
// through koffi, as ovlfs's serving loop does), loop (ovlfs's own serving loop over a file system with
// those two alone). Prints "mounted" once the mount is live; serves until unmounted.
import { openSync, readSync, writeSync } from 'node:fs';

import { serveFuse } from '../../src/fuse/bridge/server.js';
import type { RawFileSystem } from '../../src/fuse/bridge/raw-fs.js';
import { fuseMountData, mountFuseSyscall } from '../../src/fuse/mount-syscall.js';
import { readInto, writeAll } from '../../src/sys/device-io.js';

const INIT = 26;
const STATFS = 17;
const GETXATTR = 22;
const DESTROY = 38;
const NO_REPLY = new Set([2 /* FORGET */, 42 /* BATCH_FORGET */, 36 /* INTERRUPT */]);

const [mode, mnt] = process.argv.slice(2);
if (mnt === undefined || !['node-fs', 'koffi', 'loop'].includes(mode!)) {
  process.stderr.write('usage: null-fuse.ts node-fs|koffi|loop MNT\n');
  process.exit(2);
}
const fd = openSync('/dev/fuse', 'r+');
mountFuseSyscall('null-fuse', mnt, 'fuse.null-fuse', fuseMountData(fd, {}));
process.stdout.write('mounted\n');

if (mode === 'loop') {
  const statfs = { blocks: 1, bfree: 1, bavail: 1, files: 1, ffree: 1, bsize: 4096, namelen: 255, frsize: 4096 };
  serveFuse(fd, { statfs: () => statfs, getxattr: () => undefined } as RawFileSystem);
  process.exit(0);
}

const read = mode === 'koffi' ? (b: Buffer): number => readInto(fd, b) : (b: Buffer): number => readSync(fd, b, 0, b.length, null);
const write = mode === 'koffi' ? (b: Buffer): void => void writeAll(fd, b) : (b: Buffer): void => void writeSync(fd, b);
const buf = Buffer.alloc((1 << 20) + 4096);

// struct fuse_out_header (16 bytes) + struct fuse_kstatfs (80): 1 block of 4 KiB, names up to 255 bytes.
const statfsReply = Buffer.alloc(16 + 80);
statfsReply.writeUInt32LE(statfsReply.length, 0);
statfsReply.writeBigUInt64LE(1n, 16);
statfsReply.writeUInt32LE(4096, 16 + 40);
statfsReply.writeUInt32LE(255, 16 + 44);
statfsReply.writeUInt32LE(4096, 16 + 48);
const enosys = Buffer.alloc(16);
enosys.writeUInt32LE(16, 0);
enosys.writeInt32LE(-38, 4);
const enodata = Buffer.alloc(16);
enodata.writeUInt32LE(16, 0);
enodata.writeInt32LE(-61, 4);

for (;;) {
  let n: number;
  try {
    n = read(buf);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENODEV') break; // unmounted
    if (code === 'EINTR' || code === 'ENOENT' || code === 'EAGAIN') continue;
    throw e;
  }
  if (n < 40) continue;
  const opcode = buf.readUInt32LE(4);
  const unique = buf.readBigUInt64LE(8);
  if (opcode === INIT) {
    // struct fuse_init_out: protocol 7.31, the kernel's readahead, no flags, 128 KiB writes.
    const out = Buffer.alloc(16 + 64);
    out.writeUInt32LE(out.length, 0);
    out.writeBigUInt64LE(unique, 8);
    out.writeUInt32LE(7, 16);
    out.writeUInt32LE(31, 20);
    out.writeUInt32LE(buf.readUInt32LE(40 + 8), 24);
    out.writeUInt32LE(128 * 1024, 16 + 20);
    out.writeUInt32LE(1, 16 + 24);
    write(out);
  } else if (opcode === STATFS) {
    statfsReply.writeBigUInt64LE(unique, 8);
    write(statfsReply);
  } else if (opcode === GETXATTR) {
    enodata.writeBigUInt64LE(unique, 8);
    write(enodata);
  } else if (opcode === DESTROY) {
    break;
  } else if (!NO_REPLY.has(opcode)) {
    enosys.writeBigUInt64LE(unique, 8);
    write(enosys);
  }
}
