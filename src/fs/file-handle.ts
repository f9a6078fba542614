// fs.promises.FileHandle over a virtual fd. Every method is a call on that fd, so a handle behaves
// exactly like an fd from fs.open, copy-up re-binding included: the core's choke point sits under
// the calls, not here. Data moves on libuv's thread pool (async-io.ts); the rest is SyncFs's.
//
// close() follows Node's reference counting: streams and web streams made from a handle hold a
// reference, close() emits 'close' at once (streams listen and close themselves), and the virtual
// fd is released when the last reference goes.
import type { NonSharedBuffer } from 'node:buffer';
import { EventEmitter, type Abortable } from 'node:events';
import type * as fs from 'node:fs';
import type { CreateReadStreamOptions, CreateWriteStreamOptions, FileHandle, FileReadResult, ReadableWebStreamOptions } from 'node:fs/promises';
import { createInterface, type Interface } from 'node:readline';
import { ReadableStream } from 'node:stream/web';
import { encodingOf, toBuffer } from './args.js';
import {
  checkAborted, ERR_INVALID_ARG_VALUE, kValidateObjectAllowNullable, nodeError, validateBuffer, validateBufferArray, validateEncoding,
  validateInteger, validateObject, validateOffsetLengthRead, validateOffsetLengthWrite, validatePosition,
  validateStringAfterArrayBufferView,
} from './validate.js';
import { readArgs, writeArgs } from './io-args.js';
import type { SyncFs } from './sync.js';
import { asyncIoOf, type AsyncIo } from './async-io.js';

export const kRef = Symbol('kRef');
export const kUnref = Symbol('kUnref');

/** What a handle needs from streams.ts; injected so the two modules do not import each other. */
export interface HandleStreams {
  createReadStream(path: null, options: ReadStreamOptions): fs.ReadStream;
  createWriteStream(path: null, options: WriteStreamOptions): fs.WriteStream;
}

/** Node's option types for the two streams (not exported by @types/node under these names). */
export type ReadStreamOptions = Exclude<Parameters<typeof fs.createReadStream>[1], string | undefined>;
export type WriteStreamOptions = Exclude<Parameters<typeof fs.createWriteStream>[1], string | undefined>;

type WriteData = string | NodeJS.ArrayBufferView | Iterable<string | NodeJS.ArrayBufferView> | AsyncIterable<string | NodeJS.ArrayBufferView>;
type FileOptions = { encoding?: BufferEncoding | null; signal?: AbortSignal; flag?: fs.OpenMode; mode?: fs.Mode; flush?: boolean } | BufferEncoding | null | undefined;

function invalidState(message: string): Error {
  const err = new Error(`Invalid state: ${message}`) as Error & { code: string };
  err.code = 'ERR_INVALID_STATE';
  return err;
}

function signalOf(options: FileOptions): AbortSignal | undefined {
  return typeof options === 'object' && options !== null ? options.signal : undefined;
}

function isAsyncOrSyncIterable(x: unknown): x is Iterable<unknown> | AsyncIterable<unknown> {
  return x !== null && typeof x === 'object' && !ArrayBuffer.isView(x) &&
    (Symbol.iterator in x || Symbol.asyncIterator in x);
}

/** Writes whole `data` at the handle's current position, as Node's writeFileHandle does. */
export async function writeAll(sync: SyncFs, fd: number, data: WriteData, options: FileOptions): Promise<void> {
  if (!ArrayBuffer.isView(data) && !isAsyncOrSyncIterable(data)) validateStringAfterArrayBufferView(data, 'data');
  const signal = signalOf(options);
  const encoding = (encodingOf(options) ?? 'utf8') as BufferEncoding;
  checkAborted(signal);
  if (signal !== undefined) {
    // Node's writes are on the thread pool: an abort that comes a tick after the call still counts.
    await nextTurn();
    checkAborted(signal);
  }
  const io = asyncIoOf(sync);
  if (isAsyncOrSyncIterable(data)) {
    for await (const chunk of data as AsyncIterable<string | NodeJS.ArrayBufferView>) {
      checkAborted(signal);
      if (!ArrayBuffer.isView(chunk)) validateStringAfterArrayBufferView(chunk, 'data');
      await io.writeFile(fd, toBuffer(chunk, encoding), { signal }, 'w');
    }
    return;
  }
  await io.writeFile(fd, toBuffer(data as string | NodeJS.ArrayBufferView, encoding), { signal }, 'w');
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const GC_DEPRECATION = 'Closing a FileHandle object on garbage collection is deprecated. Please close FileHandle objects explicitly using ' +
  'FileHandle.prototype.close(). In the future, an error will be thrown if a file descriptor is closed during garbage collection.';
let gcDeprecationShown = false;

/**
 * A handle that is garbage-collected while open closes its fd, with Node's warning and, once per
 * process, its DEP0137 deprecation.
 */
const collected = new FinalizationRegistry<{ core: SyncFs; fd: number }>(({ core, fd }) => {
  try {
    core.closeSync(fd);
  } catch {
    return;
  }
  process.emitWarning(`Closing file descriptor ${fd} on garbage collection`);
  if (!gcDeprecationShown) {
    gcDeprecationShown = true;
    process.emitWarning(GC_DEPRECATION, 'DeprecationWarning', 'DEP0137');
  }
});

export class OverlayFileHandle extends EventEmitter implements FileHandle {
  private current: number;
  private refs = 1;
  private closePromise: Promise<void> | undefined;
  private closeResolve: (() => void) | undefined;
  private closeReject: ((err: unknown) => void) | undefined;
  private locked = false;

  private readonly token = {};
  private readonly io: AsyncIo;

  constructor(private readonly core: SyncFs, fd: number, private readonly streams: HandleStreams) {
    super();
    this.io = asyncIoOf(core);
    this.current = fd;
    collected.register(this, { core, fd }, this.token);
  }

  /** The virtual fd, or -1 once closed. */
  get fd(): number {
    return this.current;
  }

  /** Runs one operation on the fd; a closed handle rejects with EBADF 'file closed', as Node's does. */
  private async op<T>(syscall: string, fn: (fd: number) => T | Promise<T>): Promise<T> {
    const fd = this.current;
    if (fd === -1) {
      const err = new Error('file closed') as Error & { code: string; syscall: string };
      err.code = 'EBADF';
      err.syscall = syscall;
      throw err;
    }
    this[kRef]();
    try {
      return await fn(fd);
    } finally {
      this[kUnref]();
    }
  }

  read<T extends NodeJS.ArrayBufferView>(buffer: T, offset?: number | null, length?: number | null, position?: number | null): Promise<FileReadResult<T>>;
  read<T extends NodeJS.ArrayBufferView>(buffer: T, options?: fs.ReadOptions): Promise<FileReadResult<T>>;
  read<T extends NodeJS.ArrayBufferView = Buffer>(options?: fs.ReadOptionsWithBuffer<T>): Promise<FileReadResult<T>>;
  read<T extends NodeJS.ArrayBufferView>(bufferOrOptions?: T | fs.ReadOptionsWithBuffer<T>, offsetArg?: number | null | fs.ReadOptions, lengthArg?: number | null, positionArg?: number | null): Promise<FileReadResult<T>> {
    // Node's FileHandle.read: its argument shapes and checks, in its order.
    return this.op('read', async (fd) => {
      let buffer: unknown = bufferOrOptions;
      let offset: unknown = offsetArg;
      let length: unknown = lengthArg;
      let position: unknown = positionArg;
      if (!ArrayBuffer.isView(buffer)) {
        if (bufferOrOptions !== undefined) validateObject(bufferOrOptions, 'options', kValidateObjectAllowNullable);
        // Destructuring defaults, as Node's: only undefined takes the default.
        const p = (bufferOrOptions ?? {}) as { buffer?: unknown; offset?: unknown; length?: unknown; position?: unknown };
        buffer = p.buffer === undefined ? Buffer.alloc(16384) : p.buffer;
        offset = p.offset === undefined ? 0 : p.offset;
        length = p.length === undefined ? ((buffer as NodeJS.ArrayBufferView | null)?.byteLength ?? NaN) - (offset as number) : p.length;
        position = p.position === undefined ? null : p.position;
        validateBuffer(buffer);
      }
      const buf = buffer as NodeJS.ArrayBufferView;
      if (offset !== null && typeof offset === 'object') {
        const p = offset as { offset?: unknown; length?: unknown; position?: unknown };
        offset = p.offset ?? 0;
        length = p.length ?? buf.byteLength - (offset as number);
        position = p.position ?? null;
      }
      if (offset == null) offset = 0;
      else validateInteger(offset, 'offset', 0);
      length ??= buf.byteLength - (offset as number);
      if (length === 0) return { bytesRead: 0, buffer: buf as T };
      if (buf.byteLength === 0) throw ERR_INVALID_ARG_VALUE('buffer', buf, 'is empty and cannot be written');
      validateOffsetLengthRead(offset as number, length as number, buf.byteLength);
      if (position == null) position = -1;
      else validatePosition(position, 'position');
      const bytesRead = await this.io.read(fd, buf, offset as number, length as number, position as number | bigint);
      return { bytesRead, buffer: buf as T };
    });
  }

  write<TBuffer extends NodeJS.ArrayBufferView>(buffer: TBuffer, offset?: number | null, length?: number | null, position?: number | null): Promise<{ bytesWritten: number; buffer: TBuffer }>;
  write(data: string, position?: number | null, encoding?: BufferEncoding | null): Promise<{ bytesWritten: number; buffer: string }>;
  write<TBuffer extends NodeJS.ArrayBufferView>(data: TBuffer | string, a?: number | null, b?: number | BufferEncoding | null, c?: number | null): Promise<{ bytesWritten: number; buffer: TBuffer | string }> {
    // Node's FileHandle.write: its argument shapes and checks, in its order.
    return this.op('write', async (fd) => {
      if ((data as { byteLength?: unknown } | null)?.byteLength === 0) return { bytesWritten: 0, buffer: data };
      let offset: unknown = a;
      let length: unknown = b;
      let position: unknown = c;
      if (ArrayBuffer.isView(data)) {
        if (typeof offset === 'object') {
          const p = (a ?? {}) as { offset?: unknown; length?: unknown; position?: unknown };
          offset = p.offset ?? 0;
          length = p.length ?? data.byteLength - (offset as number);
          position = p.position ?? null;
        }
        if (offset == null) offset = 0;
        else validateInteger(offset, 'offset', 0);
        if (typeof length !== 'number') length = data.byteLength - (offset as number);
        if (typeof position !== 'number') position = null;
        validateOffsetLengthWrite(offset as number, length as number, data.byteLength);
        return { bytesWritten: await this.io.write(fd, data, offset as number, length as number, position as number | null), buffer: data };
      }
      validateStringAfterArrayBufferView(data, 'buffer');
      validateEncoding(data, length);
      const encoding = (typeof length === 'string' && Buffer.isEncoding(length) ? length : 'utf8') as BufferEncoding;
      const bytes = Buffer.from(data, encoding);
      return { bytesWritten: await this.io.write(fd, bytes, 0, bytes.length, typeof offset === 'number' ? offset : null), buffer: data };
    });
  }

  readv<TBuffers extends readonly NodeJS.ArrayBufferView[]>(buffers: TBuffers, position?: number | null): Promise<fs.ReadVResult<TBuffers>> {
    return this.op('read', async (fd) => ({
      bytesRead: await this.io.readv(fd, validateBufferArray(buffers), typeof position === 'number' ? position : null),
      buffers,
    }));
  }

  writev<TBuffers extends readonly NodeJS.ArrayBufferView[]>(buffers: TBuffers, position?: number | null): Promise<fs.WriteVResult<TBuffers>> {
    return this.op('write', async (fd) => ({
      bytesWritten: validateBufferArray(buffers).length === 0 ? 0 : await this.io.writev(fd, buffers as unknown as NodeJS.ArrayBufferView[], typeof position === 'number' ? position : null),
      buffers,
    }));
  }

  readFile(options?: ({ encoding?: null } & Abortable) | null): Promise<NonSharedBuffer>;
  readFile(options: ({ encoding: BufferEncoding } & Abortable) | BufferEncoding): Promise<string>;
  readFile(options?: (fs.ObjectEncodingOptions & Abortable) | BufferEncoding | null): Promise<string | NonSharedBuffer>;
  readFile(options?: FileOptions): Promise<string | NonSharedBuffer> {
    return this.op('read', async (fd) => {
      const signal = signalOf(options);
      checkAborted(signal);
      if (signal !== undefined) {
        await nextTurn();
        checkAborted(signal);
      }
      // From the current position to the end, as Node reads a handle.
      return await this.io.readFile(fd, { encoding: encodingOf(options) as BufferEncoding | null | undefined, signal }) as string | NonSharedBuffer;
    });
  }

  writeFile(data: string | Uint8Array, options?: (fs.ObjectEncodingOptions & { signal?: AbortSignal }) | BufferEncoding | null): Promise<void>;
  writeFile(data: WriteData, options?: FileOptions): Promise<void> {
    return this.op('write', (fd) => writeAll(this.core, fd, data, options));
  }

  /** Same as writeFile: the handle's own O_APPEND decides whether it appends, as in Node. */
  appendFile(data: string | Uint8Array, options?: (fs.ObjectEncodingOptions & { signal?: AbortSignal }) | BufferEncoding | null): Promise<void> {
    return this.writeFile(data, options);
  }

  stat(opts?: fs.StatOptions & { bigint?: false }): Promise<fs.Stats>;
  stat(opts: fs.StatOptions & { bigint: true }): Promise<fs.BigIntStats>;
  stat(opts?: fs.StatOptions): Promise<fs.Stats | fs.BigIntStats>;
  stat(opts?: fs.StatOptions): Promise<fs.Stats | fs.BigIntStats> {
    return this.op('fstat', (fd) => this.core.fstatSync(fd, { bigint: opts?.bigint === true }));
  }

  truncate(len?: number): Promise<void> {
    return this.op('ftruncate', (fd) => this.core.ftruncateSync(fd, len ?? 0));
  }

  sync(): Promise<void> {
    return this.op('fsync', (fd) => this.io.fsync(fd));
  }

  datasync(): Promise<void> {
    return this.op('fdatasync', (fd) => this.io.fsync(fd, true));
  }

  chmod(mode: fs.Mode): Promise<void> {
    return this.op('fchmod', async (fd) => {
      await this.io.copyUpBefore('fchmod', [fd, mode]);
      return this.core.fchmodSync(fd, mode);
    });
  }

  chown(uid: number, gid: number): Promise<void> {
    return this.op('fchown', async (fd) => {
      await this.io.copyUpBefore('fchown', [fd, uid, gid]);
      return this.core.fchownSync(fd, uid, gid);
    });
  }

  utimes(atime: fs.TimeLike, mtime: fs.TimeLike): Promise<void> {
    return this.op('futime', async (fd) => {
      await this.io.copyUpBefore('futimes', [fd, atime, mtime]);
      return this.core.futimesSync(fd, atime, mtime);
    });
  }

  createReadStream(options?: CreateReadStreamOptions): fs.ReadStream {
    return this.streams.createReadStream(null, { ...options, encoding: options?.encoding ?? undefined, fd: this });
  }

  createWriteStream(options?: CreateWriteStreamOptions): fs.WriteStream {
    return this.streams.createWriteStream(null, { ...options, encoding: options?.encoding ?? undefined, fd: this });
  }

  readLines(options?: CreateReadStreamOptions): Interface {
    return createInterface({ input: this.createReadStream(options), crlfDelay: Infinity });
  }

  /** A byte stream of the file from the current position; it holds a reference until it ends. */
  readableWebStream(options?: ReadableWebStreamOptions): ReadableStream {
    void options; // 'bytes' or not, a byte stream's default reader yields Uint8Array chunks.
    if (this.current === -1) throw invalidState('The FileHandle is closed');
    if (this.closePromise !== undefined) throw invalidState('The FileHandle is closing');
    if (this.locked) throw invalidState('The FileHandle is locked');
    this.locked = true;
    this[kRef]();
    let done = false;
    const finish = (): void => {
      if (!done) {
        done = true;
        this[kUnref]();
      }
    };
    const fd = this.current;
    return new ReadableStream({
      type: 'bytes',
      autoAllocateChunkSize: 16384,
      pull: (controller) => {
        const request = controller.byobRequest;
        const view = request?.view;
        if (request === null || request === undefined || view === null || view === undefined) return;
        const n = this.core.readSync(fd, new Uint8Array(view.buffer, view.byteOffset, view.byteLength), 0, view.byteLength, null);
        if (n === 0) {
          finish();
          controller.close();
        }
        request.respond(n);
      },
      cancel: finish,
    });
  }

  close = (): Promise<void> => {
    if (this.current === -1) return Promise.resolve();
    if (this.closePromise !== undefined) return this.closePromise;
    this.refs--;
    if (this.refs === 0) {
      const fd = this.current;
      this.current = -1;
      this.closePromise = this.release(fd).finally(() => {
        this.closePromise = undefined;
      });
    } else {
      // Streams still hold the fd: it is released by their last kUnref.
      this.closePromise = new Promise<void>((resolve, reject) => {
        this.closeResolve = resolve;
        this.closeReject = reject;
      }).finally(() => {
        this.closePromise = undefined;
        this.closeResolve = undefined;
        this.closeReject = undefined;
      });
    }
    this.emit('close');
    return this.closePromise;
  };

  async [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async release(fd: number): Promise<void> {
    collected.unregister(this.token);
    this.core.closeSync(fd);
  }

  [kRef](): void {
    this.refs++;
  }

  [kUnref](): void {
    this.refs--;
    if (this.refs === 0) {
      const fd = this.current;
      this.current = -1;
      // With no close() waiting (a stream closed itself), a failed release has nobody to tell.
      this.release(fd).then(this.closeResolve, this.closeReject ?? (() => {}));
    }
  }
}

/**
 * Node's FileHandle methods reach the fd through one internal call that rejects a `this` which is not
 * a FileHandle (`handle.stat.call({})`) with ERR_INTERNAL_ASSERTION; ours do the same.
 */
const INTERNAL_ASSERTION = 'handle must be an instance of FileHandle\nThis is caused by either a bug in Node.js or incorrect usage of Node.js internals.\n' +
  'Please open an issue with this stack trace at https://github.com/nodejs/node/issues\n';
for (const name of ['appendFile', 'chmod', 'chown', 'datasync', 'read', 'readv', 'readFile', 'stat', 'sync', 'truncate', 'utimes', 'write', 'writev', 'writeFile'] as const) {
  const method = OverlayFileHandle.prototype[name] as (...args: unknown[]) => Promise<unknown>;
  const checked = function (this: unknown, ...args: unknown[]): Promise<unknown> {
    if (!(this instanceof OverlayFileHandle)) return Promise.reject(nodeError(Error, 'ERR_INTERNAL_ASSERTION', INTERNAL_ASSERTION, checked));
    return method.apply(this, args);
  };
  Object.defineProperty(checked, 'name', { value: name });
  Object.defineProperty(OverlayFileHandle.prototype, name, { value: checked, writable: true, configurable: true, enumerable: false });
}
