// A tiny read-only file system on the raw interface that implements only lookup, getattr, read and
// readdir: no open, no opendir, no writes. It proves the serving loop's defaults: no-open mode (the kernel
// stops sending OPEN/RELEASE), ENOSYS for everything missing, and a default statfs.
import { fsError } from '../../src/errors.js';
import type { FuseCaller, RawFileSystem } from '../../src/fuse/bridge/raw-fs.js';
import type { AttrOut, DirEntry, EntryOut, FuseAttr } from '../../src/fuse/structs.js';

const now = Math.floor(Date.now() / 1000);
const CONTENT = Buffer.from('hi from minimal\n');

function attr(ino: number, mode: number, size: number, nlink: number): FuseAttr {
  return { ino, size, blocks: 0, atime: now, atimensec: 0, mtime: now, mtimensec: 0, ctime: now, ctimensec: 0, mode, nlink, uid: 0, gid: 0, rdev: 0, blksize: 4096 };
}

const NODES = new Map<number, FuseAttr>([
  [1, attr(1, 0o040755, 0, 3)],
  [2, attr(2, 0o100444, CONTENT.length, 1)],
  [3, attr(3, 0o040555, 0, 2)],
]);
const NAMES = new Map<string, number>([
  ['greeting', 2],
  ['d', 3],
]);

class Minimal implements RawFileSystem {
  opens = 0;
  lookup(_caller: FuseCaller, parent: number, name: string): EntryOut {
    const id = parent === 1 ? NAMES.get(name) : undefined;
    if (id === undefined) throw fsError('ENOENT', 'lookup');
    return { nodeid: id, attr: NODES.get(id)! };
  }
  getattr(_caller: FuseCaller, nodeid: number): AttrOut {
    const a = NODES.get(nodeid);
    if (!a) throw fsError('ENOENT', 'getattr');
    return { attr: a };
  }
  read(_caller: FuseCaller, nodeid: number, fh: number, offset: number, size: number): Uint8Array {
    // In no-open mode every handle is 0.
    if (nodeid !== 2 || fh !== 0) throw fsError('EBADF', 'read');
    return CONTENT.subarray(offset, offset + size);
  }
  readdir(_caller: FuseCaller, nodeid: number, _fh: number, offset: number): DirEntry[] {
    const list: DirEntry[] =
      nodeid === 1
        ? [
            { name: '.', ino: 1, type: 0o040000, off: 1 },
            { name: '..', ino: 1, type: 0o040000, off: 2 },
            { name: 'greeting', ino: 2, type: 0o100000, off: 3 },
            { name: 'd', ino: 3, type: 0o040000, off: 4 },
          ]
        : [
            { name: '.', ino: 3, type: 0o040000, off: 1 },
            { name: '..', ino: 1, type: 0o040000, off: 2 },
          ];
    return list.slice(offset);
  }
}

export function createMinimal(): RawFileSystem {
  return new Minimal();
}

/** A factory that fails, to prove a broken filesystem never gets mounted. */
export function createBroken(): RawFileSystem {
  throw new Error('broken on purpose');
}
