// read(2) and write(2) on one fd through koffi, for the FUSE serving loop: it makes two of these per
// request, and Node's fs binding costs more around each call than koffi does (argument checks, a
// request object, tracing hooks). Measured in bench/NOTES.md ("The mount under parallel clients").
import { constants } from 'node:fs';
import { check, declare, lastErrno } from './libc.js';

const rawRead = declare<(fd: number, buf: Uint8Array, count: number) => number>('long read(int fd, void *buf, unsigned long count)');
const rawWrite = declare<(fd: number, buf: Uint8Array, count: number) => number>('long write(int fd, const void *buf, unsigned long count)');
// fcntl is variadic; its int argument goes where a fixed third int would on Linux's calling conventions.
const rawFcntl = declare<(fd: number, cmd: number, arg: number) => number>('int fcntl(int fd, int cmd, int arg)');

const F_GETFL = 3;
const F_SETFL = 4;
const EAGAIN = 11;

/** read(2) into `buf` from its start, as many bytes as it holds; returns the count read. */
export function readInto(fd: number, buf: Uint8Array): number {
  return check(rawRead(fd, buf, buf.length), 'read');
}

/**
 * read(2) on an O_NONBLOCK fd: the count read, or -1 when nothing is there yet (EAGAIN). No error object
 * is built for the EAGAIN, which a spinning reader meets many times per request.
 */
export function tryReadInto(fd: number, buf: Uint8Array): number {
  const n = rawRead(fd, buf, buf.length);
  if (n < 0 && lastErrno() === EAGAIN) return -1;
  return check(n, 'read');
}

/** Sets or clears O_NONBLOCK on the open file `fd` refers to (every fd sharing it sees the change). */
export function setNonblocking(fd: number, on: boolean): void {
  const flags = check(rawFcntl(fd, F_GETFL, 0), 'fcntl');
  const want = on ? flags | constants.O_NONBLOCK : flags & ~constants.O_NONBLOCK;
  if (want !== flags) check(rawFcntl(fd, F_SETFL, want), 'fcntl');
}

/** write(2) of all of `buf` in one call; returns the count written. */
export function writeAll(fd: number, buf: Uint8Array): number {
  return check(rawWrite(fd, buf, buf.length), 'write');
}
