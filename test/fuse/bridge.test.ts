// Proves src/fuse/bridge/nodes.ts without a mount: NodeBridge over a small file system in memory, called
// as the serving loop calls it. Node ids and lookup counts, hard-link identity, names that are gone, file
// handles and directory snapshots.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { NodeBridge, type DirCaching, type ListedEntry, type NodeFileSystem, type NodeNotifier, type Opened } from '../../src/fuse/bridge/nodes.js';
import type { FuseCaller, FuseNotifier } from '../../src/fuse/bridge/raw-fs.js';
import type { FuseAttr } from '../../src/fuse/structs.js';

const caller: FuseCaller = { unique: 1n, uid: 0, gid: 0, pid: 1 };

interface Inode {
  ino: number;
  mode: number;
  nlink: number;
  children?: Map<string, Name>;
}
interface Name {
  inode: Inode;
  gone: boolean;
}
interface File {
  inode: Inode;
}

function attr(i: Inode): FuseAttr {
  return { ino: i.ino, size: 0, blocks: 0, atime: 0, atimensec: 0, mtime: 0, mtimensec: 0, ctime: 0, ctimensec: 0, mode: i.mode, nlink: i.nlink, uid: 0, gid: 0, rdev: 0, blksize: 4096 };
}

/** A tree of names over inodes; the hard-link key is the inode number. */
class MemFs implements NodeFileSystem<Name, File> {
  readonly root: Name = { inode: { ino: 1, mode: 0o040755, nlink: 2, children: new Map() }, gone: false };
  readonly forgotten: Name[] = [];
  released = 0;
  notify: NodeNotifier<Name> | undefined;
  private nextIno = 2;

  add(parent: Name, name: string, mode = 0o100644): Name {
    const n: Name = { inode: { ino: this.nextIno++, mode, nlink: 1, children: mode & 0o040000 ? new Map() : undefined }, gone: false };
    parent.inode.children!.set(name, n);
    return n;
  }

  attach(notify: NodeNotifier<Name>): void {
    this.notify = notify;
  }
  hardLinkKey(n: Name): string {
    return String(n.inode.ino);
  }
  isLive(n: Name): boolean {
    return !n.gone;
  }
  forget(n: Name): void {
    this.forgotten.push(n);
  }
  lookup(_c: FuseCaller, parent: Name, name: string): Name | null {
    return parent.inode.children?.get(name) ?? null;
  }
  getattr(_c: FuseCaller, n: Name, file: File | undefined): FuseAttr | null {
    if (!n.gone) return attr(n.inode);
    return file !== undefined ? attr(file.inode) : null;
  }
  setattr(_c: FuseCaller, n: Name, a: { mode?: number }, file: File | undefined): void {
    const target = n.gone ? file?.inode : n.inode;
    if (target === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    if (a.mode !== undefined) target.mode = (target.mode & ~0o7777) | (a.mode & 0o7777);
  }
  link(_c: FuseCaller, n: Name, parent: Name, name: string): Name {
    const l: Name = { inode: n.inode, gone: false };
    n.inode.nlink++;
    parent.inode.children!.set(name, l);
    return l;
  }
  unlink(_c: FuseCaller, parent: Name, name: string): void {
    const n = parent.inode.children!.get(name)!;
    parent.inode.children!.delete(name);
    n.inode.nlink--;
    n.gone = true;
  }
  open(_c: FuseCaller, n: Name): Opened<File> {
    return { file: { inode: n.inode }, keepCache: true };
  }
  release(): void {
    this.released++;
  }
  opendir(): DirCaching {
    return { cacheDir: true };
  }
  readdir(_c: FuseCaller, n: Name): ListedEntry[] {
    return [...n.inode.children!].map(([name, c]) => ({ name, ino: c.inode.ino, type: c.inode.mode & 0o170000 }));
  }
}

function setup(): { fs: MemFs; bridge: NodeBridge<Name, File>; sent: number[] } {
  const fs = new MemFs();
  const sent: number[] = [];
  const notify: FuseNotifier = { invalInode: (id) => sent.push(id), invalEntry: () => {} };
  return { fs, bridge: new NodeBridge(fs, { notify, timeout: 60 }), sent };
}

test('lookups count; FORGET to zero drops the node id and tells the file system', () => {
  const { fs, bridge } = setup();
  fs.add(fs.root, 'f');
  const a = bridge.lookup(caller, 1, 'f');
  const b = bridge.lookup(caller, 1, 'f');
  assert.equal(a.nodeid, b.nodeid, 'one inode, one id');
  assert.equal(a.entryTimeout, 60);
  bridge.forget(a.nodeid, 1);
  assert.equal(bridge.getattr(caller, a.nodeid, undefined).attr.ino, 2, 'one lookup is still held');
  bridge.forget(a.nodeid, 1);
  assert.throws(() => bridge.getattr(caller, a.nodeid, undefined), { code: 'ESTALE' });
  assert.equal(fs.forgotten.length, 1);
  const c = bridge.lookup(caller, 1, 'f');
  assert.notEqual(c.nodeid, a.nodeid, 'ids are never re-used');
  bridge.forget(1, 100);
  assert.equal(bridge.getattr(caller, 1, undefined).attr.ino, 1, 'the root is never forgotten');
});

test('a negative lookup is an entry with node id 0 and the entry timeout', () => {
  const { bridge } = setup();
  const e = bridge.lookup(caller, 1, 'missing');
  assert.equal(e.nodeid, 0);
  assert.equal(e.entryTimeout, 60);
  assert.equal(e.attr.ino, 0);
});

test('hard links share one id; LINK answers with the source id; a re-used inode number gets a new id', () => {
  const { fs, bridge } = setup();
  const f = fs.add(fs.root, 'f');
  const id = bridge.lookup(caller, 1, 'f').nodeid;
  const linked = bridge.link(caller, id, 1, 'g');
  assert.equal(linked.nodeid, id);
  assert.equal(linked.attr.nlink, 2);
  assert.equal(bridge.lookup(caller, 1, 'g').nodeid, id);
  // A name the bridge has not seen joins the id by its key.
  fs.root.inode.children!.set('k', { inode: f.inode, gone: false });
  assert.equal(bridge.lookup(caller, 1, 'k').nodeid, id);
  bridge.unlink(caller, 1, 'k');
  // Every name gone: a new file that happens to get the same inode number must not inherit the id.
  bridge.unlink(caller, 1, 'f');
  bridge.unlink(caller, 1, 'g');
  fs.root.inode.children!.set('h', { inode: f.inode, gone: false });
  assert.notEqual(bridge.lookup(caller, 1, 'h').nodeid, id);
});

test('a name that is gone answers from an open handle, else from the last attributes with nlink 0', () => {
  const { fs, bridge } = setup();
  fs.add(fs.root, 'open');
  fs.add(fs.root, 'other');
  const id = bridge.lookup(caller, 1, 'open').nodeid;
  const other = bridge.lookup(caller, 1, 'other').nodeid;
  const fh = bridge.open(caller, id, 2).fh;
  const otherFh = bridge.open(caller, other, 2).fh;
  bridge.unlink(caller, 1, 'open');
  // No handle in the request (futimens, fchmod): the handle open on this node, not the other one.
  const after = bridge.setattr(caller, id, { valid: 1, mode: 0o600 });
  assert.equal(after.attr.mode & 0o7777, 0o600);
  assert.equal(after.attr.ino, 2);
  assert.equal(bridge.getattr(caller, other, otherFh).attr.mode & 0o7777, 0o644, 'the other file is untouched');
  bridge.release(caller, id, fh);
  const last = bridge.getattr(caller, id, undefined).attr;
  assert.equal(last.nlink, 0);
  assert.equal(last.mode & 0o7777, 0o600);
});

test('directory handles read one snapshot, taken at offset 0; handles still open at the end are released', () => {
  const { fs, bridge } = setup();
  const d = fs.add(fs.root, 'd', 0o040755);
  fs.add(d, 'a');
  const id = bridge.lookup(caller, 1, 'd').nodeid;
  const dir = bridge.opendir(caller, id);
  assert.equal(dir.cacheDir, true);
  // A name made between OPENDIR and the first READDIR is listed: the kernel caches what it reads under
  // the directory version it noted just before that READDIR.
  fs.add(d, 'b');
  const first = [...bridge.readdir(caller, id, dir.fh, 0)];
  assert.deepEqual(first.map((e) => [e.name, e.off]), [['a', 1], ['b', 2]]);
  fs.add(d, 'c');
  assert.deepEqual([...bridge.readdir(caller, id, dir.fh, 1)].map((e) => e.name), ['b'], 'offsets resume in the snapshot');
  assert.deepEqual([...bridge.readdir(caller, id, dir.fh, 0)].map((e) => e.name), ['a', 'b', 'c'], 'a rewind lists again');
  bridge.releasedir(caller, id, dir.fh);
  assert.throws(() => bridge.readdir(caller, id, dir.fh, 0), { code: 'EBADF' });
  const a = bridge.lookup(caller, id, 'a').nodeid;
  bridge.open(caller, a, 0);
  bridge.open(caller, a, 0);
  bridge.destroy();
  assert.equal(fs.released, 2);
});

test('attribute invalidation reaches only nodes the kernel holds; what the file system lacks is ENOSYS', () => {
  const { fs, bridge, sent } = setup();
  const known = fs.add(fs.root, 'known');
  const unknown = fs.add(fs.root, 'unknown');
  const id = bridge.lookup(caller, 1, 'known').nodeid;
  fs.notify!.invalAttrs(known);
  fs.notify!.invalAttrs(unknown); // never looked up: the kernel holds nothing to invalidate
  fs.notify!.invalAttrs(fs.root);
  assert.deepEqual(sent, [id, 1]);
  const again = bridge.lookup(caller, 1, 'known');
  assert.equal(again.nodeid, id);
  assert.throws(() => bridge.flush(caller, id, 0, 0n), { code: 'ENOSYS' });
  assert.throws(() => bridge.lseek(caller, id, 0, 0, 3), { code: 'ENOSYS' });
  assert.throws(() => bridge.mkdir(caller, 1, 'x', 0o755, 0), { code: 'ENOSYS' });
});
