// An upper layer's changes as an OCI image-layer tar: whiteouts become empty `.wh.NAME` files, an
// opaque directory gets `DIR/.wh..wh..opq`, a redirected (renamed) directory is written out whole
// under its new name (its old name is whited out in the upper layer already), a metacopy file
// carries the data of the lower file it points to, and the overlay's own xattrs stay out.
//
// Deterministic: entries in byte order of their paths (an opaque marker first among its
// directory's children), fixed header formatting, numeric ids without names, mtimes kept, no atime
// or ctime. Packing the same upper layer twice gives the same bytes.
import { Readable } from 'node:stream';
import { fsError } from '../errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../layer/types.js';
import { major, minor } from './devices.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './names.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeaderInput, type TarType } from './tar-header.js';
import { UpperChanges, type EntrySource, type UpperChange } from './upper-changes.js';

export interface PackOptions {
  xattrPrefix: string;
  /** The lower layers under `upperDir`, top-most first: needed to write a redirected directory out whole, and to tell whether a whiteout hides anything. */
  lowerdirs?: string[];
}

/** What one stream chunk holds at most, about. */
const CHUNK = 1 << 20;
/**
 * File data is read in pieces of this size: fresh buffers (the stream keeps them), small enough to
 * come from the heap rather than each from a fresh mmap.
 */
const READ_CHUNK = 128 << 10;
/** Pieces smaller than this are joined with their neighbours (see batched). */
const SMALL = 64 << 10;

const TYPES = new Map<number, TarType>([
  [S_IFREG, 'file'], [S_IFDIR, 'dir'], [S_IFLNK, 'symlink'], [S_IFCHR, 'char'], [S_IFBLK, 'block'], [S_IFIFO, 'fifo'],
]);

interface PackItem {
  /** Sort key: the path's bytes (an opaque marker sorts as "DIR/" plus a NUL, before every child). */
  key: Buffer;
  header: TarHeaderInput;
  source?: EntrySource;
}

/** A marker's header: the name is all it says. */
function markerHeader(path: string): TarHeaderInput {
  return { path, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtimeNs: 0n };
}

function itemOf(change: UpperChange): PackItem | undefined {
  switch (change.kind) {
    case 'whiteout': {
      const slash = change.rel.lastIndexOf('/');
      const path = `${change.rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${change.rel.slice(slash + 1)}`;
      return { key: Buffer.from(path), header: markerHeader(path) };
    }
    case 'opaque':
      return { key: Buffer.from(`${change.rel}/\0`), header: markerHeader(`${change.rel}/${OPAQUE_MARKER}`) };
    case 'entry': {
      const source = change.source();
      const { stat } = source;
      const type = TYPES.get(stat.mode & S_IFMT);
      // A socket cannot be archived; it is a live endpoint, not content.
      if (type === undefined) return undefined;
      const header: TarHeaderInput = {
        path: change.rel,
        type,
        mode: stat.mode & 0o7777,
        uid: stat.uid,
        gid: stat.gid,
        size: type === 'file' ? stat.size : 0,
        mtimeNs: stat.mtimeNs,
        xattrs: source.xattrs(),
      };
      if (type === 'symlink') header.linkname = source.readlink();
      if (type === 'char' || type === 'block') {
        header.devmajor = major(stat.rdev);
        header.devminor = minor(stat.rdev);
      }
      return { key: Buffer.from(change.rel), header, source };
    }
  }
}

/** The data of one file: exactly `size` bytes, its size when it was listed; one that shrank since is an error. */
function* fileData(path: string, source: EntrySource, size: number): Generator<Buffer> {
  try {
    let position = 0;
    while (position < size) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - position));
      const n = source.read(buffer, buffer.length, position);
      if (n === 0) throw fsError('EIO', 'pack', `/${path}`, undefined, 'the file shrank while it was being packed');
      position += n;
      yield n === buffer.length ? buffer : buffer.subarray(0, n);
    }
  } finally {
    source.done();
  }
  yield padding(size);
}

function* tarStream(upperDir: string, options: PackOptions): Generator<Buffer> {
  const changes = new UpperChanges(upperDir, { ...options, needContent: true });
  try {
    const items: PackItem[] = [];
    for (const change of changes.walk()) {
      const item = itemOf(change);
      if (item !== undefined) items.push(item);
    }
    items.sort((a, b) => Buffer.compare(a.key, b.key));
    // The first name of a hard-linked inode carries its data; the others link to it.
    const firstName = new Map<string, string>();
    for (const { header, source } of items) {
      const linkKey = source?.linkKey;
      const first = linkKey === undefined ? undefined : firstName.get(linkKey);
      if (first !== undefined) {
        yield encodeHeader({ ...header, type: 'link', size: 0, linkname: first, xattrs: [], devmajor: 0, devminor: 0 });
        continue;
      }
      if (linkKey !== undefined) firstName.set(linkKey, header.path);
      yield encodeHeader(header);
      if (header.size > 0) yield* fileData(header.path, source!, header.size);
    }
    yield END_OF_ARCHIVE;
  } finally {
    changes.close();
  }
}

/**
 * Joins small pieces (headers, small files, padding) into chunks of about CHUNK bytes: a stream
 * costs a turn of the event loop and a write per chunk, whatever its size. Big pieces pass as they are.
 */
function* batched(pieces: Iterable<Buffer>): Generator<Buffer> {
  let pending: Buffer[] = [];
  let size = 0;
  const flush = (): Buffer => {
    const out = pending.length === 1 ? pending[0]! : Buffer.concat(pending, size);
    pending = [];
    size = 0;
    return out;
  };
  for (const piece of pieces) {
    if (piece.length >= SMALL) {
      if (size > 0) yield flush();
      yield piece;
      continue;
    }
    if (piece.length === 0) continue;
    pending.push(piece);
    size += piece.length;
    if (size >= CHUNK) yield flush();
  }
  if (size > 0) yield flush();
}

/** An uncompressed, deterministic OCI layer tar of the upper layer's changes. */
export function packUpper(upperDir: string, options: PackOptions): NodeJS.ReadableStream {
  return Readable.from(batched(tarStream(upperDir, options)), { objectMode: false });
}
