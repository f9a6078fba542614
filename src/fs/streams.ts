// Read and write streams that are Node's own fs.ReadStream/fs.WriteStream, given the overlay
// through their documented `fs` option (open/read/write/writev/close/fsync with fs's callback
// signatures). Node keeps every stream semantic (start, end, highWaterMark, autoClose, emitClose,
// flush, encoding, flags, mode, 'open'/'ready'/'close' events), and each read or write goes
// through the overlay on a virtual fd, its data on libuv's thread pool, so a stream started before
// a copy-up continues on the new data.
//
// Node accepts its own FileHandle as `fd` but refuses it together with `fs`; an OverlayFileHandle
// is therefore passed as its numeric fd plus operations through the handle's own methods, which is
// what Node's internal FileHandleOperations do for its own handles. A caller's own `options.fs` is
// passed to Node unchanged, as Node honours it.
import * as fs from 'node:fs';
import { asyncIoOf, deliverAsync } from './async-io.js';
import { deliver, type Callback } from './defer.js';
import { ERR_METHOD_NOT_IMPLEMENTED, getOptions } from './validate.js';
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

/** The overlay's own operations, data on libuv's thread pool (async-io.ts). */
function coreOps(sync: SyncFs): StreamOps {
  const io = asyncIoOf(sync);
  return {
    open: (path, flags, mode, cb) => deliverAsync(cb, () => io.open(path, flags, mode), (fd) => [fd]),
    read: (fd, buffer, offset, length, position, cb) =>
      deliverAsync(cb, () => io.read(fd, buffer, offset, length, position ?? null), (n) => [n, buffer], [0, buffer]),
    write: (fd, buffer, offset, length, position, cb) =>
      deliverAsync(cb, () => io.write(fd, buffer, offset, length, position ?? null), (n) => [n, buffer], [0, buffer]),
    writev: (fd, buffers, position, cb) =>
      deliverAsync(cb, () => io.writev(fd, buffers, position ?? null), (n) => [n, buffers], [0, buffers]),
    close: (fd, cb) => deliver(cb, () => (sync.closeSync(fd), [])),
    fsync: (fd, cb) => deliverAsync(cb, () => io.fsync(fd), () => []),
  };
}

/**
 * A FileHandle's stream does its I/O through the handle's own methods, as Node's
 * FileHandleOperations does: a handle whose read/write/writev/close were replaced is honoured.
 */
function handleOps(handle: OverlayFileHandle): StreamOps {
  const h = handle as unknown as {
    read(b: NodeJS.ArrayBufferView, o: number, l: number, p: number | null | undefined): Promise<{ bytesRead: number; buffer: unknown }>;
    write(b: NodeJS.ArrayBufferView, o: number, l: number, p: number | null | undefined): Promise<{ bytesWritten: number; buffer: unknown }>;
    writev(b: NodeJS.ArrayBufferView[], p: number | null | undefined): Promise<{ bytesWritten: number; buffers: unknown }>;
    close(): Promise<void>;
    sync(): Promise<void>;
  };
  return {
    open: () => {
      throw ERR_METHOD_NOT_IMPLEMENTED('open()');
    },
    close: (_fd, cb) => {
      handle[kUnref]();
      h.close().then(() => cb(null), (err: Error) => cb(err));
    },
    read: (_fd, buffer, offset, length, position, cb) => {
      h.read(buffer, offset, length, position).then((r) => cb(null, r.bytesRead, r.buffer), (err: Error) => cb(err, 0, buffer));
    },
    write: (_fd, buffer, offset, length, position, cb) => {
      h.write(buffer, offset, length, position).then((r) => cb(null, r.bytesWritten, r.buffer), (err: Error) => cb(err, 0, buffer));
    },
    writev: (_fd, buffers, position, cb) => {
      h.writev(buffers, position).then((r) => cb(null, r.bytesWritten, r.buffers), (err: Error) => cb(err, 0, buffers));
    },
    fsync: (_fd, cb) => {
      h.sync().then(() => cb(null), (err: Error) => cb(err));
    },
  };
}

interface Prepared<O> {
  options: O;
  handle: OverlayFileHandle | undefined;
}

/**
 * The options Node's stream gets: a caller's own `options.fs` as it is (Node checks it), an
 * OverlayFileHandle as its fd plus operations through the handle, otherwise this overlay's ops.
 */
function prepare<O extends ReadStreamOptions | WriteStreamOptions>(sync: SyncFs, facade: FacadeRef, options: unknown): Prepared<O> {
  // Node copies options with for…in, so inherited option values count too.
  const given = getOptions(options, {});
  const o = {} as Record<string, unknown>;
  for (const key in given) o[key] = (given as Record<string, unknown>)[key];
  if (o.fd instanceof OverlayFileHandle) {
    if (o.fs) throw ERR_METHOD_NOT_IMPLEMENTED('FileHandle with fs');
    const handle = o.fd;
    return { options: { ...o, fd: handle.fd, fs: handleOps(handle) } as unknown as O, handle };
  }
  if (o.fs) return { options: o as O, handle: undefined };
  // As Node's streams use the fs module itself, ours use the facade object: a caller who replaces
  // overlay.fs.open (or read, write, close) changes what its streams call.
  return { options: { ...o, fs: facade.current ?? coreOps(sync) } as O, handle: undefined };
}

/** A handle's 'close' closes its streams, and the streams keep the fd alive until they are done. */
function attach(stream: fs.ReadStream | fs.WriteStream, handle: OverlayFileHandle | undefined): void {
  if (handle === undefined) return;
  handle[kRef]();
  handle.on('close', () => stream.close());
}

// Node's stream classes are functions that take (path, options) and may be called on an existing
// object (graceful-fs does `fs.ReadStream.call(this, …)`); @types/node only declares the
// Readable/Writable constructor they inherit, hence this view of the same functions.
type StreamCtor = (this: unknown, path: Path, options: unknown) => void;
const NodeReadStream = fs.ReadStream as unknown as StreamCtor & { prototype: object };
const NodeWriteStream = fs.WriteStream as unknown as StreamCtor & { prototype: object };

export interface OverlayStreams extends HandleStreams {
  ReadStream: new (path: Path, options?: ReadStreamOptions | BufferEncoding) => fs.ReadStream;
  WriteStream: new (path: Path, options?: WriteStreamOptions | BufferEncoding) => fs.WriteStream;
  createReadStream(path: Path, options?: ReadStreamOptions | BufferEncoding): fs.ReadStream;
  createWriteStream(path: Path, options?: WriteStreamOptions | BufferEncoding): fs.WriteStream;
}

/**
 * ReadStream/WriteStream as Node defines them: plain functions that work with or without `new`,
 * on an object made by a subclass, and whose prototypes inherit from Node's own.
 */
function streamClass(name: string, Base: StreamCtor & { prototype: object }, sync: SyncFs, facade: FacadeRef): new (path: Path, options?: unknown) => fs.ReadStream & fs.WriteStream {
  const ctor = function (this: unknown, path: Path, options?: unknown): unknown {
    if (!(this instanceof ctor)) return new (ctor as unknown as new (p: Path, o?: unknown) => unknown)(path, options);
    const p = prepare<ReadStreamOptions>(sync, facade, options);
    Base.call(this, path, p.options);
    attach(this as fs.ReadStream, p.handle);
    return undefined;
  } as unknown as (new (path: Path, options?: unknown) => fs.ReadStream & fs.WriteStream) & { prototype: object };
  Object.defineProperty(ctor, 'name', { value: name });
  ctor.prototype = Object.create(Base.prototype, { constructor: { value: ctor, writable: true, configurable: true } });
  Object.setPrototypeOf(ctor, Base);
  return ctor;
}

/** The assembled fs object, once it exists (index.ts sets it). */
export interface FacadeRef {
  current?: object;
}

export function makeStreams(sync: SyncFs, facade: FacadeRef = {}): OverlayStreams {
  const ReadStream = streamClass('ReadStream', NodeReadStream, sync, facade);
  const WriteStream = streamClass('WriteStream', NodeWriteStream, sync, facade);

  const createReadStream = ((path: Path, options?: ReadStreamOptions | BufferEncoding): fs.ReadStream =>
    new ReadStream(path, options)) satisfies typeof fs.createReadStream;
  const createWriteStream = ((path: Path, options?: WriteStreamOptions | BufferEncoding): fs.WriteStream =>
    new WriteStream(path, options)) satisfies typeof fs.createWriteStream;

  return { ReadStream, WriteStream, createReadStream, createWriteStream };
}
