// Layer decompression: gzip through node:zlib, zstd through fzstd (Node 20's zlib has none), and a
// limit on the inflated size, so a small blob cannot fill the disk.
import { Transform, PassThrough, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';

import { fsError } from '../errors.js';
import type { Compression } from './media-types.js';

class ZstdDecompress extends Transform {
  private readonly decoder = new Decompress((data) => {
    this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.decoder.push(chunk);
      done();
    } catch (e) {
      done(e as Error);
    }
  }
  override _flush(done: TransformCallback): void {
    try {
      this.decoder.push(new Uint8Array(0), true);
      done();
    } catch (e) {
      done(e as Error);
    }
  }
}

/** Output chunks of 128 KiB: zlib's default 16 KiB costs a callback per 16 KiB of a layer. */
const CHUNK = 128 << 10;

export function decompressor(compression: Compression): Transform {
  if (compression === 'gzip') return createGunzip({ chunkSize: CHUNK });
  if (compression === 'zstd') return new ZstdDecompress();
  return new PassThrough();
}

/** Fails once more than `maxBytes` have passed: the layer `what` inflates past the limit. */
export class SizeLimit extends Transform {
  private bytes = 0;
  constructor(
    private readonly maxBytes: number,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      done(fsError('EFBIG', 'unpack', this.what, undefined, `layer inflates past the limit of ${this.maxBytes} bytes (--max-layer-size)`));
      return;
    }
    done(null, chunk);
  }
}
