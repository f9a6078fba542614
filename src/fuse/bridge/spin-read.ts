// Reading the next request from /dev/fuse with a short spin before sleeping.
//
// A blocking read that finds the queue empty puts the serving thread to sleep, and the request that
// follows wakes it: two context switches, which on a small VM cost more than serving the request.
// A single client's next request often arrives a few tens of µs after its reply, so the reader
// first tries non-blocking reads for up to a window of time, and sleeps only when none arrives.
//
// The spin is adaptive, so that an idle mount or a sparse client costs nothing: after LONG_GAPS idle
// gaps in a row that outlasted the window, the device goes back to O_NONBLOCK off and the plain
// blocking read (one system call per request, as without spinning); blocking reads that return within
// the window (requests coming close together again) turn spinning back on. How many in a row it takes
// backs off: a spell of spinning that caught fewer than DENSE requests before it ended doubles the
// count (up to MAX_REARM), a longer one resets it to one. Bursty traffic, such as a container's
// processes starting one after the other (a few requests close together, then a long gap), stops
// paying for windows that expire; a steady stream of requests keeps spinning. O_NONBLOCK is set only
// while spinning, and changes only when the mode does, not per request.
//
// OVLFS_SPIN, read once when serving starts: unset, the default window (SPIN_US); 0, no spinning;
// a number, that many µs (for measurements).
import { performance } from 'node:perf_hooks';

import { readInto, setNonblocking, tryReadInto } from '../../sys/device-io.js';
import { waitReadable } from '../../sys/poll.js';

/** Default spin window, in µs: bounded so that a gap with no request costs at most this much CPU. */
export const SPIN_US = 50;
/** Idle gaps in a row longer than the window after which spinning stops until requests come close again. */
const LONG_GAPS = 4;
/** Requests a spell of spinning must catch (queued or within the window) to count as dense traffic. */
const DENSE = 16;
/** The most close-together blocking reads in a row that spinning waits for before it starts again. */
const MAX_REARM = 64;

/** The spin window OVLFS_SPIN asks for, in µs (0: off). */
export function spinWindowFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.OVLFS_SPIN;
  if (v === undefined || v === '') return SPIN_US;
  const us = Number(v);
  return Number.isFinite(us) && us > 0 ? Math.min(us, 10_000) : 0;
}

export class DeviceReader {
  private readonly windowMs: number;
  private spinning = false;
  private longGaps = 0;
  /** Requests caught in this spell of spinning. */
  private caught = 0;
  /** Close-together blocking reads in a row, and how many turn spinning on (backed off, see above). */
  private closeRun = 0;
  private rearmAfter = 1;

  constructor(
    private readonly fd: number,
    windowUs: number,
  ) {
    this.windowMs = windowUs / 1000;
  }

  /**
   * The next request into `buf`; returns its length. Throws as read(2) fails (EAGAIN when the device
   * was reported readable but the request went away: the caller reads again).
   */
  read(buf: Uint8Array): number {
    if (this.windowMs === 0) return readInto(this.fd, buf);
    if (!this.spinning) {
      const start = performance.now();
      const n = readInto(this.fd, buf);
      if (performance.now() - start >= this.windowMs) this.closeRun = 0;
      else if (++this.closeRun >= this.rearmAfter) this.startSpinning();
      return n;
    }
    let n = tryReadInto(this.fd, buf);
    if (n >= 0) {
      this.caught++; // a request was waiting: no gap at all
      return n;
    }
    const deadline = performance.now() + this.windowMs;
    do {
      n = tryReadInto(this.fd, buf);
      if (n >= 0) {
        this.caught++;
        this.longGaps = 0;
        return n;
      }
    } while (performance.now() < deadline);
    if (++this.longGaps >= LONG_GAPS) {
      this.stopSpinning();
      return readInto(this.fd, buf);
    }
    waitReadable(this.fd, -1);
    n = tryReadInto(this.fd, buf);
    if (n < 0) throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
    return n;
  }

  private startSpinning(): void {
    setNonblocking(this.fd, true);
    this.spinning = true;
    this.longGaps = 0;
    this.caught = 0;
  }

  private stopSpinning(): void {
    this.spinning = false;
    setNonblocking(this.fd, false);
    this.rearmAfter = this.caught >= DENSE ? 1 : Math.min(this.rearmAfter * 2, MAX_REARM);
    this.closeRun = 0;
  }
}
