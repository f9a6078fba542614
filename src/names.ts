// Names on Linux are bytes; inside ovlfs they are JavaScript strings. UTF-8 names (nearly all) are
// the same text either way. A byte that is not part of valid UTF-8 is carried as a lone surrogate
// U+DC80..U+DCFF (Python's "surrogateescape"), which no UTF-8 text decodes to, so every name
// survives a round trip byte for byte: through the library's Buffer paths, the FUSE protocol and
// the host's system calls alike.
import { isUtf8 } from 'node:buffer';

/**
 * The string for bytes [start, end) of `bytes`. ASCII, nearly every name, is decoded here in plain
 * JavaScript: a daemon serving a container runs cold between requests, and there Node's decoders
 * (isUtf8, toString, each a call into C++) cost tens of µs a name against a few for this loop.
 */
export function nameFromRange(bytes: Uint8Array, start: number, end: number): string {
  let name = '';
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    if (c >= 0x80) return nameFromBytes(bytes.subarray(start, end));
    name += String.fromCharCode(c);
  }
  return name;
}

/** The string for a name's bytes. */
export function nameFromBytes(bytes: Uint8Array): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(buf)) return buf.toString('utf8');
  let out = '';
  for (let i = 0; i < buf.length;) {
    const len = sequenceLength(buf, i);
    if (len === 0) {
      out += String.fromCharCode(0xdc00 + buf[i]!);
      i++;
    } else {
      out += buf.toString('utf8', i, i + len);
      i += len;
    }
  }
  return out;
}

/** The length of the valid UTF-8 sequence at `i`, or 0 if the byte there does not start one. */
function sequenceLength(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  // 0xED 0xA0..0xBF would encode a surrogate: not valid UTF-8.
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c >= 0xe1 && c <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/**
 * Whether a name carries raw bytes (and so needs nameToBytes rather than plain UTF-8): a lone
 * surrogate U+DC80..U+DCFF stands for one. A loop rather than a regular expression: it runs for every
 * name handed to a system call, where the expression cost a few µs more when the daemon is cold.
 */
export function hasRawBytes(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff) return true;
  }
  return false;
}

/** The bytes of a name. */
export function nameToBytes(name: string): Buffer {
  if (!hasRawBytes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0xdc80 || c > 0xdcff) continue;
    // A low surrogate right after a high one is half of a real character, not an escaped byte.
    const prev = i > 0 ? name.charCodeAt(i - 1) : 0;
    if (prev >= 0xd800 && prev <= 0xdbff) continue;
    parts.push(Buffer.from(name.slice(start, i), 'utf8'), Buffer.of(c - 0xdc00));
    start = i + 1;
  }
  parts.push(Buffer.from(name.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * A path for a C call taking `const char *`: the string itself when it is plain text (koffi passes it
 * as UTF-8), else its bytes, NUL-terminated.
 */
export function cPath(path: string): string | Buffer {
  if (!hasRawBytes(path)) return path;
  return Buffer.concat([nameToBytes(path), Buffer.of(0)]);
}
