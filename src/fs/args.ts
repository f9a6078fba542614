// Argument parsing shared by every form of the facade: paths, flags, modes and encodings, as
// node:fs accepts them.
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as posix from 'node:path/posix';
import { hasRawBytes, nameFromBytes, nameToBytes } from '../names.js';

/** Anything that makes a path need normalising: '//', '/./', '/../', a trailing '/', '/.' or '/..'. */
const CLEAN_CHECK = /\/\/|\/\.\.?(\/|$)|.\/$/;

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_EXCL, O_SYNC } = fs.constants;

/** An overlay path from a string, Buffer or file: URL; relative paths are taken from the root. */
export function toPath(p: fs.PathLike, name = 'path'): string {
  let s: string;
  if (typeof p === 'string') s = p;
  // A Buffer path's bytes, byte for byte: a name that is not UTF-8 keeps its bytes (see names.ts).
  else if (Buffer.isBuffer(p)) s = nameFromBytes(p);
  else if (p instanceof URL) s = fileURLToPath(p);
  else throw typeError(`The "${name}" argument must be of type string or an instance of Buffer or URL.`);
  if (s.includes('\0')) throw typeError(`The argument '${name}' must be a string, Uint8Array, or URL without null bytes.`);
  // Most paths are already clean and absolute: skip the normalisation for them.
  if (s.charCodeAt(0) === 47 && !CLEAN_CHECK.test(s)) return s;
  const trailing = s.length > 1 && s.endsWith('/');
  const normalized = posix.resolve('/', s);
  return trailing && normalized !== '/' ? normalized + '/' : normalized;
}

function typeError(message: string): TypeError {
  const err = new TypeError(message) as TypeError & { code: string };
  err.code = message.includes('null bytes') ? 'ERR_INVALID_ARG_VALUE' : 'ERR_INVALID_ARG_TYPE';
  return err;
}

const FLAGS: Record<string, number> = {
  r: O_RDONLY, rs: O_RDONLY | O_SYNC, sr: O_RDONLY | O_SYNC,
  'r+': O_RDWR, 'rs+': O_RDWR | O_SYNC, 'sr+': O_RDWR | O_SYNC,
  w: O_TRUNC | O_CREAT | O_WRONLY, wx: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL, xw: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
  'w+': O_TRUNC | O_CREAT | O_RDWR, 'wx+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL, 'xw+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
  a: O_APPEND | O_CREAT | O_WRONLY, ax: O_APPEND | O_CREAT | O_WRONLY | O_EXCL, xa: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
  as: O_APPEND | O_CREAT | O_WRONLY | O_SYNC, sa: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
  'a+': O_APPEND | O_CREAT | O_RDWR, 'ax+': O_APPEND | O_CREAT | O_RDWR | O_EXCL, 'xa+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
  'as+': O_APPEND | O_CREAT | O_RDWR | O_SYNC, 'sa+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
};

export function toFlags(flags: fs.OpenMode | undefined, fallback = 'r'): number {
  if (flags === undefined || flags === null) return FLAGS[fallback];
  if (typeof flags === 'number') return flags;
  const n = FLAGS[flags];
  if (n === undefined) {
    const err = new TypeError(`The value "${flags}" is invalid for option "flags"`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
  return n;
}

export function toMode(mode: fs.Mode | undefined | null, fallback: number): number {
  if (mode === undefined || mode === null) return fallback;
  if (typeof mode === 'number') return mode;
  return parseInt(mode, 8);
}

/**
 * A time in seconds (what utimes takes, after Node's toUnixTimestamp) in nanoseconds, converted as
 * libuv converts it: microsecond precision, and times before 1970 counted down from the second below.
 */
export function secondsToNs(seconds: number): bigint {
  let sec = Math.trunc(seconds);
  let nsec = Math.trunc((seconds - sec) * 1e9);
  nsec -= nsec % 1000;
  if (nsec < 0) {
    nsec += 1e9;
    sec -= 1;
  }
  return BigInt(sec) * 1_000_000_000n + BigInt(nsec);
}

export type EncodingOption = BufferEncoding | 'buffer' | null | undefined;

/** A name or path from the core in the caller's encoding: 'buffer' gives its bytes, others decode them. */
export function encodeName(name: string, encoding: EncodingOption | string): string | Buffer {
  if (encoding === 'buffer') return nameToBytes(name);
  if ((encoding === undefined || encoding === null || encoding === 'utf8' || encoding === 'utf-8') && !hasRawBytes(name)) return name;
  return nameToBytes(name).toString((encoding ?? 'utf8') as BufferEncoding);
}

export function encodingOf(options: unknown, fallback: EncodingOption = undefined): EncodingOption {
  if (typeof options === 'string') return options as EncodingOption;
  if (options !== null && typeof options === 'object' && 'encoding' in options) {
    return (options as { encoding?: EncodingOption }).encoding ?? fallback;
  }
  return fallback;
}

export function toBuffer(data: string | NodeJS.ArrayBufferView, encoding?: BufferEncoding | null): Buffer {
  if (typeof data === 'string') return Buffer.from(data, encoding ?? 'utf8');
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
