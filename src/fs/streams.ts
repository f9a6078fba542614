// Read and write streams that are Node's own fs.ReadStream/fs.WriteStream, given the overlay
// through their documented `fs` option (open/read/write/writev/close/fsync with fs's callback
// signatures). Node keeps every stream semantic (start, end, highWaterMark, autoClose, emitClose,
// flush, encoding, flags, mode, 'open'/'ready'/'close' events), and each read or write goes
// through SyncFs on a virtual fd, so a stream started before a copy-up continues on the new data.
//
// Node accepts its own FileHandle as `fd` but refuses it together with `fs`; an OverlayFileHandle
// is therefore passed as its numeric fd plus operations that close through the handle, which is
// what Node's internal FileHandleOperations do for its own handles.
import * as fs from 'node:fs';
import { deliver, type Callback } from './defer.js';
import { kRef, kUnref, OverlayFileHandle, type HandleStreams, type ReadStreamOptions, type WriteStreamOptions } from './file-handle.js';
import type { SyncFs } from './sync.js';

type Path = fs.PathLike | null | undefined;

/** The `fs` option Node's streams call, with fs's callback signatures. */
interface StreamOps {
  open(path: fs.PathLike, flags: fs.OpenMode, mode: fs.Mode, cb: Callback): void;
  read(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | null | undefined, cb: Callback): void;
  write(fd: number, buffer: NodeJS.ArrayBufferView, offset: number, length: number, position: number | null | undefined, cb: Callback): void;
  writev(fd: number, buffers: NodeJS.ArrayBufferView[], position: number | null | undefined, cb: Callback): void;
  close(fd: number, cb: Callback): void;
  fsync(fd: number, cb: Callback): void;
}

function coreOps(sync: SyncFs): StreamOps {
  return {
    open: (path, flags, mode, cb) => deliver(cb, () => [sync.openSync(path, flags, mode)]),
    read: (fd, buffer, offset, length, position, cb) =>
      deliver(cb, () => [sync.readSync(fd, buffer, offset, length, position ?? null), buffer], [0, buffer]),
    write: (fd, buffer, offset, length, position, cb) =>
      deliver(cb, () => [sync.writeSync(fd, buffer, offset, length, position ?? null), buffer], [0, buffer]),
    writev: (fd, buffers, position, cb) =>
      deliver(cb, () => [sync.writevSync(fd, buffers, position ?? null), buffers], [0, buffers]),
    close: (fd, cb) => deliver(cb, () => (sync.closeSync(fd), [])),
    fsync: (fd, cb) => deliver(cb, () => (sync.fsyncSync(fd), [])),
  };
}

/** I/O on the handle's fd; closing drops the stream's reference and closes the handle. */
function handleOps(sync: SyncFs, handle: OverlayFileHandle): StreamOps {
  return {
    ...coreOps(sync),
    open: (_path, _flags, _mode, cb) => setImmediate(cb, new Error('open() is not available on a stream over a FileHandle')),
    close: (_fd, cb) => {
      handle[kUnref]();
      handle.close().then(() => cb(null), (err: Error) => cb(err));
    },
  };
}

interface Prepared<O> {
  options: O;
  handle: OverlayFileHandle | undefined;
}

function prepare<O extends ReadStreamOptions | WriteStreamOptions>(sync: SyncFs, options: O | BufferEncoding | undefined): Prepared<O> {
  const o = (typeof options === 'string' ? { encoding: options } : { ...options }) as O;
  if (o.fd instanceof OverlayFileHandle) {
    const handle = o.fd;
    return { options: { ...o, fd: handle.fd, fs: handleOps(sync, handle) }, handle };
  }
  return { options: { ...o, fs: coreOps(sync) }, handle: undefined };
}

/** A handle's 'close' closes its streams, and the streams keep the fd alive until they are done. */
function attach(stream: fs.ReadStream | fs.WriteStream, handle: OverlayFileHandle | undefined): void {
  if (handle === undefined) return;
  handle[kRef]();
  handle.on('close', () => stream.close());
}

// Node's stream classes are functions that take (path, options); @types/node only declares the
// Readable/Writable constructor they inherit, hence the typed view of the same constructors.
const NodeReadStream = fs.ReadStream as unknown as new (path: Path, options: ReadStreamOptions) => fs.ReadStream;
const NodeWriteStream = fs.WriteStream as unknown as new (path: Path, options: WriteStreamOptions) => fs.WriteStream;

export interface OverlayStreams extends HandleStreams {
  ReadStream: new (path: Path, options?: ReadStreamOptions | BufferEncoding) => fs.ReadStream;
  WriteStream: new (path: Path, options?: WriteStreamOptions | BufferEncoding) => fs.WriteStream;
  createReadStream(path: Path, options?: ReadStreamOptions | BufferEncoding): fs.ReadStream;
  createWriteStream(path: Path, options?: WriteStreamOptions | BufferEncoding): fs.WriteStream;
}

export function makeStreams(sync: SyncFs): OverlayStreams {
  class ReadStream extends NodeReadStream {
    constructor(path: Path, options?: ReadStreamOptions | BufferEncoding) {
      const p = prepare<ReadStreamOptions>(sync, options);
      super(path, p.options);
      attach(this, p.handle);
    }
  }

  class WriteStream extends NodeWriteStream {
    constructor(path: Path, options?: WriteStreamOptions | BufferEncoding) {
      const p = prepare<WriteStreamOptions>(sync, options);
      super(path, p.options);
      attach(this, p.handle);
    }
  }

  const createReadStream = ((path: Path, options?: ReadStreamOptions | BufferEncoding): fs.ReadStream =>
    new ReadStream(path, options)) satisfies typeof fs.createReadStream;
  const createWriteStream = ((path: Path, options?: WriteStreamOptions | BufferEncoding): fs.WriteStream =>
    new WriteStream(path, options)) satisfies typeof fs.createWriteStream;

  return { ReadStream, WriteStream, createReadStream, createWriteStream };
}
