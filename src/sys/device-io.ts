// read(2) and write(2) on one fd through koffi, for the FUSE serving loop: it makes two of these per
// request, and Node's fs binding costs more around each call than koffi does (argument checks, a
// request object, tracing hooks). Measured in bench/NOTES.md ("The mount under parallel clients").
import { check, declare } from './libc.js';

const rawRead = declare<(fd: number, buf: Uint8Array, count: number) => number>('long read(int fd, void *buf, unsigned long count)');
const rawWrite = declare<(fd: number, buf: Uint8Array, count: number) => number>('long write(int fd, const void *buf, unsigned long count)');

/** read(2) into `buf` from its start, as many bytes as it holds; returns the count read. */
export function readInto(fd: number, buf: Uint8Array): number {
  return check(rawRead(fd, buf, buf.length), 'read');
}

/** write(2) of all of `buf` in one call; returns the count written. */
export function writeAll(fd: number, buf: Uint8Array): number {
  return check(rawWrite(fd, buf, buf.length), 'write');
}
