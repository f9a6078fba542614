// Content digests: parsed strictly (a digest's hex names a file under blobs/, so nothing else may
// pass), and checked while the bytes stream, so a blob is refused before anything trusts it.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { fsError } from '../errors.js';

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export interface Digest {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

/** Parses `sha256:<64 hex>` (or sha512); anything else is EINVAL naming `where`. */
export function parseDigest(digest: string, where: string = digest): Digest {
  if (typeof digest !== 'string' || !DIGEST.test(digest)) {
    throw fsError('EINVAL', 'digest', where, undefined, `invalid digest '${String(digest).slice(0, 80)}'`);
  }
  const [algorithm, hex] = digest.split(':') as ['sha256' | 'sha512', string];
  return { algorithm, hex };
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function digestMismatch(expected: string, actual: string, what = 'blob'): Error {
  return fsError('EBADMSG', 'verify', expected, undefined, `${what} does not match its digest (its content is ${actual})`);
}

/** Throws unless `data` has `digest`. */
export function verifyBytes(data: Buffer, digest: string, what?: string): void {
  const { algorithm } = parseDigest(digest);
  const actual = `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
  if (actual !== digest) throw digestMismatch(digest, actual, what);
}

/**
 * Passes bytes through while hashing them; at the end, fails unless they have `digest` (and
 * `size`, when given). More bytes than `size` fail at once, so an endless body stops early.
 * `resume` carries a hash and count over from an interrupted earlier transfer.
 */
export class DigestVerifier extends Transform {
  readonly hash: Hash;
  bytes: number;
  constructor(
    readonly digest: string,
    readonly size: number | undefined,
    resume?: { hash: Hash; bytes: number },
  ) {
    super();
    this.hash = resume?.hash ?? createHash(parseDigest(digest).algorithm);
    this.bytes = resume?.bytes ?? 0;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.size !== undefined && this.bytes > this.size) {
      done(fsError('EBADMSG', 'verify', this.digest, undefined, `blob is larger than its descriptor's ${this.size} bytes`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    done(this.check());
  }
  /** The mismatch error, or null when the bytes so far are the blob. */
  check(): Error | null {
    if (this.size !== undefined && this.bytes !== this.size) {
      return fsError('EBADMSG', 'verify', this.digest, undefined, `blob has ${this.bytes} bytes, its descriptor says ${this.size}`);
    }
    const actual = `${parseDigest(this.digest).algorithm}:${this.hash.copy().digest('hex')}`;
    return actual === this.digest ? null : digestMismatch(this.digest, actual);
  }
}

/** The sha256 digest of a file, streamed. */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return `sha256:${hash.digest('hex')}`;
}

/** Hashes what passes through, for digests computed on the way (a layer's diff id, a new blob). */
export class DigestCounter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }
  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }
}
