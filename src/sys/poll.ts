// poll(2) and eventfd(2): waiting on fds, and a counter fd that wakes a poller from another thread.
import { check, declare } from './libc.js';

const rawPoll = declare<(fds: Uint8Array, nfds: number, timeout: number) => number>('int poll(void *fds, unsigned long nfds, int timeout)');
const rawEventfd = declare<(initval: number, flags: number) => number>('int eventfd(unsigned int initval, int flags)');

export interface PollFd {
  fd: number;
  events: number;
  /** Filled in by poll. */
  revents?: number;
}

/** poll(2) over struct pollfd { int fd; short events; short revents; }; fills each revents, returns how many are ready. */
export function poll(fds: PollFd[], timeoutMs: number): number {
  const buf = Buffer.alloc(8 * fds.length);
  fds.forEach((p, i) => {
    buf.writeInt32LE(p.fd, i * 8);
    buf.writeInt16LE(p.events, i * 8 + 4);
  });
  const n = check(rawPoll(buf, fds.length, timeoutMs), 'poll');
  fds.forEach((p, i) => {
    p.revents = buf.readUInt16LE(i * 8 + 6);
  });
  return n;
}

const oneFd = Buffer.alloc(8);

/** poll(2) for POLLIN on one fd, without allocating: true when it is readable (or has an error or hang-up to report). */
export function waitReadable(fd: number, timeoutMs: number): boolean {
  oneFd.writeInt32LE(fd, 0);
  oneFd.writeInt16LE(1, 4); // POLLIN
  return check(rawPoll(oneFd, 1, timeoutMs), 'poll') > 0;
}

/** eventfd(2): a new fd holding a 64-bit counter; read/write it with Node's fs on 8-byte buffers. */
export function eventfd(initval: number, flags = 0): number {
  return check(rawEventfd(initval, flags), 'eventfd');
}
