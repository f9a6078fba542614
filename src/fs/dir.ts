// fs.Dir over an overlay directory. The merged listing is taken once, when the directory is
// opened (the core's readdir is one atomic pass over the layers, so there is nothing to page
// through); read() then hands entries out one at a time, as Node's Dir does from its buffer.
import type * as fs from 'node:fs';
import { fsError } from '../errors.js';
import { toPath, type EncodingOption } from './args.js';
import { deliver, makeCallback, type Callback } from './defer.js';
import { ERR_DIR_CLOSED, ERR_DIR_CONCURRENT_OPERATION, ERR_MISSING_ARGS, getOptions, getValidatedPath, validateUint32 } from './validate.js';
import type { Dirent } from './dirent.js';
import type { SyncFs } from './sync.js';

export interface OpenDirOptions {
  encoding?: EncodingOption;
  bufferSize?: number;
  recursive?: boolean;
}

function dirClosed(): Error {
  return ERR_DIR_CLOSED();
}

export class OverlayDir implements fs.Dir {
  private readonly entries: Dirent[];
  private closed = false;

  constructor(readonly path: string, entries: Dirent[]) {
    // Node's Dir(handle, path) refuses to be made without a handle.
    if (path == null) throw ERR_MISSING_ARGS('handle');
    this.entries = entries;
  }

  /** Opens `path` as opendir(3) does: errors are labelled `opendir`, and a non-directory is ENOTDIR. */
  static open(sync: SyncFs, path: fs.PathLike, options?: OpenDirOptions | BufferEncoding | null): OverlayDir {
    const valid = getValidatedPath(path);
    const o = getOptions(options, { encoding: 'utf8' }) as OpenDirOptions;
    // Node's Dir checks its buffer size (entries read per batch) even though the listing here is taken at once.
    validateUint32({ bufferSize: 32, ...o }.bufferSize, 'options.bufferSize', true);
    const shown = typeof valid === 'string' ? valid : valid.toString();
    let listing: unknown[];
    try {
      listing = sync.readdirSync(path, { withFileTypes: true, recursive: o.recursive === true, encoding: o.encoding });
    } catch (err) {
      // The listing's errors name scandir; opendir's name opendir, as Node's do.
      const code = (err as { code?: unknown }).code;
      throw typeof code === 'string' && !code.startsWith('ERR_') ? fsError(code, 'opendir', toPath(path)) : err;
    }
    return new OverlayDir(shown, listing as Dirent[]);
  }

  /** Asynchronous reads and closes still to be delivered: sync calls meanwhile are refused, as in Node. */
  private pending = 0;

  private later<T>(fn: () => T): Promise<T> {
    this.pending++;
    return new Promise<T>((resolve, reject) => setImmediate(() => {
      this.pending--;
      try {
        resolve(fn());
      } catch (err) {
        reject(err);
      }
    }));
  }

  private checkIdle(): void {
    if (this.pending > 0) throw ERR_DIR_CONCURRENT_OPERATION();
  }

  readSync(): fs.Dirent | null {
    if (this.closed) throw dirClosed();
    this.checkIdle();
    return this.next();
  }

  private next(): fs.Dirent | null {
    if (this.closed) throw dirClosed();
    return this.entries.shift() ?? null;
  }

  read(): Promise<fs.Dirent | null>;
  read(cb: (err: NodeJS.ErrnoException | null, dirEnt: fs.Dirent | null) => void): void;
  read(cb?: (err: NodeJS.ErrnoException | null, dirEnt: fs.Dirent | null) => void): Promise<fs.Dirent | null> | void {
    if (cb === undefined) {
      // Node throws ERR_DIR_CLOSED synchronously from read(), even in its promise form.
      if (this.closed) throw dirClosed();
      return this.later(() => this.next());
    }
    makeCallback(cb);
    if (this.closed) throw dirClosed();
    this.later(() => this.next()).then((d) => (cb as Callback)(null, d), (err: Error) => (cb as Callback)(err));
  }

  closeSync(): void {
    if (this.closed) throw dirClosed();
    this.checkIdle();
    this.shut();
  }

  private shut(): void {
    if (this.closed) throw dirClosed();
    this.closed = true;
    this.entries.length = 0;
  }

  close(): Promise<void>;
  close(cb: fs.NoParamCallback): void;
  close(cb?: fs.NoParamCallback): Promise<void> | void {
    if (cb === undefined) {
      if (this.closed) return Promise.reject(dirClosed());
      return this.later(() => this.shut());
    }
    makeCallback(cb);
    if (this.closed) {
      process.nextTick(cb, dirClosed());
      return;
    }
    this.later(() => this.shut()).then(() => cb(null), (err: NodeJS.ErrnoException) => cb(err));
  }

  async *entriesIterator(): AsyncGenerator<fs.Dirent, void, undefined> {
    try {
      for (;;) {
        const entry = this.readSync();
        if (entry === null) break;
        yield entry;
      }
    } finally {
      // Like Node: leaving the loop (break, throw or the end) closes the directory.
      if (!this.closed) this.closeSync();
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<fs.Dirent, void, undefined> {
    return this.entriesIterator();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.closed) this.closeSync();
  }
}

