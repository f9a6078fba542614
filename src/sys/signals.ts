// Signals that interrupt a blocking system call, and a periodic alarm: how a thread that sleeps in
// read(2) still gets back to its event loop (serveFuseInSlices in src/fuse/bridge/server.ts).
//
// libuv installs its signal handlers with SA_RESTART, so a read(2) of /dev/fuse that a signal
// interrupts is restarted and the thread sleeps on; without the flag, the read returns EINTR once the
// handler has queued the signal for the event loop. Only the flag changes: the handler stays libuv's.
import { check, declare } from './libc.js';

// glibc's struct sigaction on 64-bit Linux: the handler (8 bytes), sa_mask (128), sa_flags (int), padding,
// sa_restorer (8).
const SIGACTION_SIZE = 152;
const SA_FLAGS_OFFSET = 136;
const SA_RESTART = 0x10000000;
const SIG_DFL = 0n;
const SIG_IGN = 1n;
const ITIMER_REAL = 0;

const rawSigaction = declare<(signum: number, act: Uint8Array | null, oldact: Uint8Array | null) => number>('int sigaction(int signum, const void *act, void *oldact)');
const rawSetitimer = declare<(which: number, value: Uint8Array, old: Uint8Array | null) => number>('int setitimer(int which, const void *new_value, void *old_value)');

const action = new Uint8Array(SIGACTION_SIZE);
const view = new DataView(action.buffer);

/**
 * Makes each of `signals` that has a handler interrupt blocking system calls (EINTR) instead of
 * restarting them. Signals left at their default or ignored are left alone.
 */
export function interruptWith(signals: readonly number[]): void {
  for (const signum of signals) {
    check(rawSigaction(signum, null, action), 'sigaction');
    const handler = view.getBigUint64(0, true);
    const flags = view.getInt32(SA_FLAGS_OFFSET, true);
    if (handler === SIG_DFL || handler === SIG_IGN || (flags & SA_RESTART) === 0) continue;
    view.setInt32(SA_FLAGS_OFFSET, flags & ~SA_RESTART, true);
    check(rawSigaction(signum, action, null), 'sigaction');
  }
}

/** SIGALRM every `ms` milliseconds (ITIMER_REAL), or none with 0. */
export function setAlarmInterval(ms: number): void {
  const tv = new DataView(new ArrayBuffer(32));
  const sec = BigInt(Math.floor(ms / 1000));
  const usec = BigInt((ms % 1000) * 1000);
  for (const at of [0, 16]) {
    tv.setBigInt64(at, sec, true);
    tv.setBigInt64(at + 8, usec, true);
  }
  check(rawSetitimer(ITIMER_REAL, new Uint8Array(tv.buffer), null), 'setitimer');
}
