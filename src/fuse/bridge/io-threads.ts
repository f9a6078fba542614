// I/O threads: READ and WRITE data, and the data step of a copy-up, moved off the serving thread. The
// serving thread keeps the file system's state; for a large READ or WRITE it takes a data lease (a host
// fd lent out by the file system, see raw-fs.ts) and hands the request to an I/O thread, which does the
// pread/pwrite on that fd and writes the reply to /dev/fuse itself (fd numbers are process-wide). A
// copy job copies between two fds and fsyncs, and replies to nobody. The serving thread goes on with
// the next request, and runs each job's completion (a lease released, a copy-up finished) once the job
// is reported done.
//
// Everything crosses in shared memory, no messages: the serving thread never runs its event loop.
//   - Request slots: the serving loop reads each request into a slot; a WRITE hands its slot (the data
//     is in it) to the job and the loop reads the next request into another one. No copy.
//   - The job ring: the serving thread is its only producer, the I/O threads take jobs off it with a
//     compare-and-swap on its head and sleep on its tail (Atomics.wait).
//   - Completion: an I/O thread marks its job done and, while the serving thread sleeps in poll(2),
//     writes an eventfd, so the serving thread waits on /dev/fuse and on completions at once.
import { closeSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';

import { eventfd, poll, type PollFd } from '../../sys/index.js';
import { workerThreads } from '../../sys/lazy-builtins.js';

/** A host fd lent out for one job; released on the serving thread once the job is done. */
export interface DataLease {
  readonly fd: number;
  release(): void;
}

const POLLIN = 1;
const EFD_CLOEXEC = 0o2000000;

// ctl: the ring's head and tail, the stop flag, whether the serving thread sleeps in poll, the done
// counter, how many threads have started their loop, and how many have left it.
const HEAD = 0;
const TAIL = 1;
const STOP = 2;
const POLLING = 3;
const DONE = 4;
const RUNNING = 5;
const EXITED = 6;
const CTL_WORDS = 8;

// Per job, in Int32 words: kind, fd, size, slot, data start (a copy's target fd), state, result
// (0 or an errno); its offset (a copy's length) and request id sit in arrays of their own.
const KIND = 0;
const FD = 1;
const SIZE = 2;
const SLOT = 3;
const START = 4;
const STATE = 5;
const RESULT = 6;
const JOB_WORDS = 8;

const READ = 1;
const WRITE = 2;
const COPY = 3;
/**
 * The slot memory of the last IoThreads to close with no thread left, for the next one in this process
 * (a spare daemon mounts one container after another). A new SharedArrayBuffer of ~17 MiB is zeroed
 * page by page once the process's heap has held one: measured at 30–80 ms of a spare's CPU per mount
 * before this, most of it page faults. The slots need no zeroing: each is written before it is read.
 */
let spareSlots: SharedArrayBuffer | undefined;

function reusedSlots(size: number): SharedArrayBuffer | undefined {
  const got = spareSlots;
  spareSlots = undefined;
  return got !== undefined && got.byteLength === size ? got : undefined;
}

/** How long close() waits for the threads to leave their loops (a thread starts in tens of ms). */
const CLOSE_WAIT_MS = 5000;
/** A copy job's flag in SIZE: fsync the target at the end. */
const COPY_SYNC = 1;
/** Chunks of a copy: large enough that the calls cost nothing next to the data. */
const COPY_CHUNK = 1 << 20;
const FREE = 0;
const POSTED = 1;
const FINISHED = 2;

export interface IoThreadOptions {
  /** I/O threads to start; default 2. */
  threads?: number;
  /** Jobs in flight at most (a power of two); default 16. */
  jobs?: number;
}

/**
 * Large READ and WRITE data served on the serving thread before the I/O threads are started. A Node
 * thread costs tens of milliseconds of CPU to start, more than a container's start-up reads from its
 * image (a few MiB of binaries, once), which would otherwise wait behind two of them on a small machine.
 * Sustained data traffic passes this soon and moves to the threads; a copy-up starts them at once.
 */
export const WARM_BYTES = 16 << 20;

/**
 * The body of an I/O thread, as source: it needs nothing but node:fs, so it is evaluated as is and
 * starts without the project's module graph (or a TypeScript loader) behind it.
 */
const THREAD_SOURCE = `
const { fsyncSync, ftruncateSync, readSync, writeSync, writevSync } = require('node:fs');
const { workerData: w } = require('node:worker_threads');
const ctl = new Int32Array(w.ctl), ring = new Int32Array(w.ring), job = new Int32Array(w.job);
const offsets = new Float64Array(w.offsets), uniques = new BigInt64Array(w.uniques);
const slots = Buffer.from(w.slots), mask = ring.length - 1;
const header = Buffer.alloc(24), one = new BigUint64Array([1n]);
let out = Buffer.alloc(16 + 131072);
function send(bufs) {
  try { bufs.length === 1 ? writeSync(w.dev, bufs[0]) : writevSync(w.dev, bufs); }
  catch (e) { if (e.code !== 'ENOENT' && e.code !== 'ENODEV' && e.code !== 'EBADF') throw e; }
}
function head(len, error, unique) {
  header.writeUInt32LE(len, 0); header.writeInt32LE(error, 4); header.writeBigUInt64LE(unique, 8);
}
function errnoOf(e) { return typeof e.errno === 'number' && e.errno !== 0 ? -Math.abs(e.errno) : -5; }
// copy_file_range(2) through koffi when it loads: the kernel copies (or clones) without a trip
// through this thread's memory. Else, or from the first chunk where the call is refused (EXDEV across
// filesystems), read/write chunk by chunk. Either way holes are skipped (lseek SEEK_DATA before each
// chunk), as the kernel's ovl_copy_up_file skips them, and the size set past a last one: a sparse file
// stays sparse. Lengths here are below 2^53 (the serving thread's copyDataSync copies larger ones).
let cfr = null, nextData = () => undefined;
try {
  const koffi = require(w.koffi);
  const libc = koffi.load('libc.so.6');
  cfr = libc.func('long copy_file_range(int, _Inout_ int64_t *, int, _Inout_ int64_t *, size_t, unsigned int)');
  const lseek = libc.func('int64_t lseek(int, int64_t, int)');
  // The next data at or after pos; null: only a hole follows (ENXIO); undefined: the filesystem cannot say.
  nextData = (fd, pos) => { const r = Number(lseek(fd, pos, 3)); return r >= 0 ? r : koffi.errno() === 6 ? null : undefined; };
} catch {}
Atomics.add(ctl, ${RUNNING}, 1);
let chunk;
function copy(b, length) {
  const src = job[b + ${FD}], dst = job[b + ${START}];
  const offIn = [0], offOut = [0];
  let pos = 0, dataPos = -1, skipHoles = true, inKernel = cfr !== null;
  while (pos < length) {
    if (skipHoles && dataPos < pos) {
      const next = nextData(src, pos);
      if (next === null) { ftruncateSync(dst, length); break; }
      if (next === undefined) skipHoles = false;
      else if ((dataPos = next) > pos) { pos = next; continue; }
    }
    // The kernel's chunk while holes are looked for, so that a hole after data stays one.
    const len = Math.min(length - pos, skipHoles ? ${COPY_CHUNK} : ${COPY_CHUNK} * 64);
    let n = -1;
    if (inKernel) {
      offIn[0] = pos; offOut[0] = pos;
      n = cfr(src, offIn, dst, offOut, len, 0);
      if (n < 0) inKernel = false;
    }
    if (n < 0) {
      chunk ??= Buffer.alloc(${COPY_CHUNK});
      n = readSync(src, chunk, 0, Math.min(chunk.length, len), pos);
      for (let done = 0; done < n; ) done += writeSync(dst, chunk, done, n - done, pos + done);
    }
    if (n === 0) break;
    pos += n;
  }
  if (job[b + ${SIZE}] & ${COPY_SYNC}) fsyncSync(dst);
}
function serve(j) {
  const b = j * ${JOB_WORDS}, fd = job[b + ${FD}], size = job[b + ${SIZE}], pos = offsets[j], unique = uniques[j];
  if (job[b + ${KIND}] === ${COPY}) {
    try { copy(b, pos); } catch (e) { job[b + ${RESULT}] = -errnoOf(e); }
    return;
  }
  if (job[b + ${KIND}] === ${READ}) {
    if (out.length < 16 + size) out = Buffer.alloc(16 + size);
    let done = 0;
    try {
      while (done < size) { const n = readSync(fd, out, 16 + done, size - done, pos + done); if (n === 0) break; done += n; }
    } catch (e) { head(16, errnoOf(e), unique); return send([header.subarray(0, 16)]); }
    out.writeUInt32LE(16 + done, 0); out.writeInt32LE(0, 4); out.writeBigUInt64LE(unique, 8);
    return send([out.subarray(0, 16 + done)]);
  }
  const start = job[b + ${SLOT}] * w.slotSize + job[b + ${START}];
  let done = 0;
  try {
    while (done < size) done += writeSync(fd, slots, start + done, size - done, pos + done);
  } catch (e) { head(16, errnoOf(e), unique); return send([header.subarray(0, 16)]); }
  head(24, 0, unique); header.writeUInt32LE(done, 16); header.writeUInt32LE(0, 20);
  send([header]);
}
for (;;) {
  const h = Atomics.load(ctl, ${HEAD}), t = Atomics.load(ctl, ${TAIL});
  if (h === t) {
    if (Atomics.load(ctl, ${STOP}) !== 0) break;
    Atomics.wait(ctl, ${TAIL}, t);
    continue;
  }
  if (Atomics.compareExchange(ctl, ${HEAD}, h, (h + 1) | 0) !== h) continue;
  const j = ring[h & mask];
  try { serve(j); } finally {
    Atomics.store(job, j * ${JOB_WORDS} + ${STATE}, ${FINISHED});
    Atomics.add(ctl, ${DONE}, 1);
    Atomics.notify(ctl, ${DONE});
    if (Atomics.load(ctl, ${POLLING}) !== 0) { try { writeSync(w.wake, one); } catch {} }
  }
}
Atomics.add(ctl, ${EXITED}, 1);
Atomics.notify(ctl, ${EXITED});
`;

/** Where koffi is, for the I/O threads' copy_file_range; an empty path makes them copy by read/write. */
function koffiPath(): string {
  try {
    return createRequire(import.meta.url).resolve('koffi');
  } catch {
    return '';
  }
}

/** A pool of I/O threads on one FUSE connection. Used only from the serving thread. */
export class IoThreads {
  private readonly ctl: Int32Array;
  private readonly ring: Int32Array;
  private readonly job: Int32Array;
  private readonly offsets: Float64Array;
  private readonly uniques: BigInt64Array;
  private readonly slotMemory: SharedArrayBuffer;
  private readonly workers: Worker[] = [];
  private readonly threads: number;
  /** What to run on the serving thread when each job is done, given 0 or the job's errno. */
  private readonly completions: (((errno: number) => void) | undefined)[];
  /** Slots no job holds, by index; the serving loop reads requests into them. */
  private readonly freeSlots: number[] = [];
  private readonly slotOfBuffer = new Map<Buffer, number>();
  private readonly slotBuffers: Buffer[] = [];
  private readonly freeJobs: number[] = [];
  private readonly inFlight = new Set<number>();
  private readonly wakeFd: number;
  private readonly wakeBuf = Buffer.alloc(8);
  private readonly pollFds: PollFd[];
  private inlineBytes = 0;
  private tail = 0;

  constructor(
    private readonly devFd: number,
    readonly slotSize: number,
    opts: IoThreadOptions = {},
  ) {
    const jobs = opts.jobs ?? 16;
    if (jobs < 1 || (jobs & (jobs - 1)) !== 0) throw new RangeError('IoThreads: jobs must be a power of two');
    const threads = opts.threads ?? 2;
    this.ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
    this.ring = new Int32Array(new SharedArrayBuffer(jobs * 4));
    this.job = new Int32Array(new SharedArrayBuffer(jobs * JOB_WORDS * 4));
    this.offsets = new Float64Array(new SharedArrayBuffer(jobs * 8));
    this.uniques = new BigInt64Array(new SharedArrayBuffer(jobs * 8));
    // One slot per job that can hold one, plus the one the loop reads into.
    const slots = jobs + 1;
    this.slotMemory = reusedSlots(slots * slotSize) ?? new SharedArrayBuffer(slots * slotSize);
    for (let s = 0; s < slots; s++) {
      const b = Buffer.from(this.slotMemory, s * slotSize, slotSize);
      this.slotBuffers.push(b);
      this.slotOfBuffer.set(b, s);
      this.freeSlots.push(s);
    }
    for (let j = jobs - 1; j >= 0; j--) this.freeJobs.push(j);
    this.completions = new Array<((errno: number) => void) | undefined>(jobs).fill(undefined);
    this.wakeFd = eventfd(0, EFD_CLOEXEC);
    this.pollFds = [{ fd: devFd, events: POLLIN }, { fd: this.wakeFd, events: POLLIN }];
    this.threads = threads;
  }

  /**
   * Whether a large READ or WRITE of `size` bytes goes to a thread. Until one runs it is served inline,
   * and its bytes count towards starting them (WARM_BYTES); a job posted to a thread still starting
   * would wait for it.
   */
  takesData(size: number): boolean {
    if (Atomics.load(this.ctl, RUNNING) > 0) return true;
    this.inlineBytes += size;
    if (this.inlineBytes >= WARM_BYTES && this.workers.length === 0) this.startThreads();
    return false;
  }

  /**
   * Starts the threads once data traffic is sustained (takesData) or on the first copy, not with the
   * mount: a Node thread takes tens of milliseconds to start, and the first requests after INIT (a
   * container's start-up) should not wait behind them. A copy posted before its thread runs waits in
   * the ring, which the thread reads first.
   */
  private startThreads(): void {
    const workerData = {
      dev: this.devFd, wake: this.wakeFd, slotSize: this.slotSize, koffi: koffiPath(),
      ctl: this.ctl.buffer, ring: this.ring.buffer, job: this.job.buffer,
      offsets: this.offsets.buffer, uniques: this.uniques.buffer, slots: this.slotMemory,
    };
    for (let i = 0; i < this.threads; i++) {
      const w = new (workerThreads().Worker)(THREAD_SOURCE, { eval: true, workerData, trackUnmanagedFds: false });
      // An I/O thread that dies (out of memory) is reported on stderr; its job is lost, its request
      // answered by nobody, which the kernel turns into a hang only for that caller.
      w.on('error', (e) => process.stderr.write(`fuse: I/O thread failed: ${e.stack ?? String(e)}\n`));
      w.unref();
      this.workers.push(w);
    }
  }

  get outstanding(): number {
    return this.inFlight.size;
  }

  /** A free request buffer; waits for a job to finish when every slot is held. */
  takeSlot(): Buffer {
    while (this.freeSlots.length === 0) this.waitForCompletion();
    return this.slotBuffers[this.freeSlots.pop()!]!;
  }

  /** Whether a job can be posted now without waiting. */
  get canPost(): boolean {
    return this.freeJobs.length > 0;
  }

  /** Posts a READ: the I/O thread replies with up to `size` bytes from `offset`. */
  read(unique: bigint, lease: DataLease, offset: number, size: number): void {
    this.post(READ, unique, lease.fd, offset, size, -1, 0, () => lease.release());
  }

  /**
   * Posts a WRITE whose data is `slot[start, start+size)`; the slot belongs to the job until it is done,
   * and the loop must read the next request into a new slot (takeSlot).
   */
  write(unique: bigint, lease: DataLease, offset: number, slot: Buffer, start: number, size: number): void {
    const s = this.slotOfBuffer.get(slot);
    if (s === undefined) throw new Error('IoThreads.write: the data is not in a request slot');
    this.post(WRITE, unique, lease.fd, offset, size, s, start, () => lease.release());
  }

  /** True when `buf` is a request slot (a request replayed from a copy is not). */
  isSlot(buf: Buffer): boolean {
    return this.slotOfBuffer.has(buf);
  }

  /**
   * Posts a copy of `length` bytes from `sourceFd` to `targetFd` at equal offsets (and an fsync of the
   * target when `sync`); `done` runs on the serving thread with 0 or the errno of the failure.
   */
  copy(sourceFd: number, targetFd: number, length: number, sync: boolean, done: (errno: number) => void): void {
    this.post(COPY, 0n, sourceFd, length, sync ? COPY_SYNC : 0, -1, targetFd, done);
  }

  private post(kind: number, unique: bigint, fd: number, offset: number, size: number, slot: number, start: number, done: (errno: number) => void): void {
    if (this.workers.length === 0) this.startThreads();
    while (this.freeJobs.length === 0) this.waitForCompletion();
    const j = this.freeJobs.pop()!;
    const b = j * JOB_WORDS;
    this.job[b + KIND] = kind;
    this.job[b + FD] = fd;
    this.job[b + SIZE] = size;
    this.job[b + SLOT] = slot;
    this.job[b + START] = start;
    this.job[b + STATE] = POSTED;
    this.job[b + RESULT] = 0;
    this.offsets[j] = offset;
    this.uniques[j] = unique;
    this.completions[j] = done;
    this.inFlight.add(j);
    this.ring[this.tail & (this.ring.length - 1)] = j;
    this.tail = (this.tail + 1) | 0;
    Atomics.store(this.ctl, TAIL, this.tail);
    Atomics.notify(this.ctl, TAIL, 1);
  }

  /** Frees the slots of finished jobs and runs their completions; returns how many finished. */
  drain(): number {
    let n = 0;
    for (const j of this.inFlight) {
      if (Atomics.load(this.job, j * JOB_WORDS + STATE) !== FINISHED) continue;
      this.inFlight.delete(j);
      const done = this.completions[j]!;
      this.completions[j] = undefined;
      const slot = this.job[j * JOB_WORDS + SLOT]!;
      const errno = this.job[j * JOB_WORDS + RESULT]!;
      if (slot >= 0) this.freeSlots.push(slot);
      this.job[j * JOB_WORDS + STATE] = FREE;
      this.freeJobs.push(j);
      try {
        done(errno);
      } catch (err) {
        process.stderr.write(`fuse: completing an I/O job failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      }
      n++;
    }
    return n;
  }

  /** Sleeps until some job finishes, then drains. */
  private waitForCompletion(): void {
    const seen = Atomics.load(this.ctl, DONE);
    if (this.drain() > 0) return;
    if (this.inFlight.size === 0) throw new Error('IoThreads: waiting with nothing in flight');
    Atomics.wait(this.ctl, DONE, seen, 1000);
    this.drain();
  }

  /**
   * Blocks until /dev/fuse has a request, finishing jobs meanwhile: with jobs in flight it sleeps in
   * poll(2) on the device and the eventfd the I/O threads write on completion, so their leases are
   * released as they finish, not at the next request. Returns early once `stop()` holds after a
   * completion (requests parked on a copy-up are ready to run again). A signal ends the wait (EINTR,
   * thrown): the serving loop decides whether to wait again.
   */
  waitForRequest(stop: () => boolean): void {
    this.drain();
    while (this.inFlight.size > 0 && !stop()) {
      Atomics.store(this.ctl, POLLING, 1);
      // A job that finished before the flag was up wrote no eventfd: look once more before sleeping.
      if (this.drain() > 0 && (this.inFlight.size === 0 || stop())) {
        Atomics.store(this.ctl, POLLING, 0);
        break;
      }
      try {
        poll(this.pollFds, -1);
      } finally {
        Atomics.store(this.ctl, POLLING, 0);
      }
      if ((this.pollFds[1]!.revents ?? 0) & POLLIN) {
        try {
          readSync(this.wakeFd, this.wakeBuf, 0, 8, null);
        } catch {
          // EAGAIN cannot happen on a blocking eventfd with POLLIN; anything else is harmless here
        }
      }
      this.drain();
      if ((this.pollFds[0]!.revents ?? 0) !== 0) break;
    }
  }

  /**
   * Waits for every job, then lets the threads leave their loops and end by themselves. Terminating
   * one instead is fatal to the process while it is still loading koffi (a native call that throws
   * while its isolate is torn down aborts), which a thread started by a late copy-up can be.
   */
  close(): void {
    while (this.inFlight.size > 0) this.waitForCompletion();
    Atomics.store(this.ctl, STOP, 1);
    const deadline = Date.now() + CLOSE_WAIT_MS;
    for (let left = Atomics.load(this.ctl, EXITED); left < this.workers.length && Date.now() < deadline; left = Atomics.load(this.ctl, EXITED)) {
      // Again each time: a thread that read STOP just before it was set sleeps after this notify.
      Atomics.notify(this.ctl, TAIL);
      Atomics.wait(this.ctl, EXITED, left, 20);
    }
    // A process that serves one mount after another (a spare daemon) must not keep one per mount. Left
    // open if a thread is still running: it may write to it, and the number could be another file's by then.
    if (Atomics.load(this.ctl, EXITED) >= this.workers.length) {
      closeSync(this.wakeFd);
      spareSlots = this.slotMemory;
    }
  }
}
