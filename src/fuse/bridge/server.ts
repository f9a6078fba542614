// The request loop: read one request from /dev/fuse, dispatch it to the filesystem, write one reply.
//
// It is synchronous on purpose (docs/ARCHITECTURE.md, "The serving loop"): a blocking read wakes this
// thread once per request, where an async read parked on libuv's pool costs several wakeups. The price
// is that the thread running `serveFuse` does nothing else until the connection ends, so it belongs in
// a worker (see mount.ts); a process that serves and does little else runs `serveFuseInSlices` instead,
// which gives its thread back to the event loop between slices and whenever a signal interrupts its
// read. Requests are taken one at a time; only the data of a large READ or WRITE goes on to an I/O
// thread (io-threads.ts), which replies itself. An INTERRUPT needs no bookkeeping either way: the
// request it names is answered already, or soon by its I/O thread, and the kernel drops a reply it no
// longer waits for.
import { constants as fsConstants, writeSync, writevSync } from 'node:fs';
import { constants } from 'node:os';
import { setFlagsFromString } from 'node:v8';

import { nameToBytes } from '../../names.js';
import { poll } from '../../sys/index.js';
import { writeAll } from '../../sys/device-io.js';
import { interruptWith, setAlarmInterval } from '../../sys/signals.js';
import * as P from '../protocol.js';
import type { DirEntry, EntryOut, InHeader, OpenOut } from '../structs.js';
import { IoThreads } from './io-threads.js';
import { ForgetCollector, IDLE_MS } from './memory.js';
import { MAX_STACK_DEPTH, Passthrough } from './passthrough.js';
import { DeviceReader, spinWindowFromEnv } from './spin-read.js';
import { Parked, type Background, type BackgroundWork, type FuseCaller, type FuseNotifier, type OpenReply, type RawFileSystem } from './raw-fs.js';

const ERRNO = constants.errno as Record<string, number>;
const { O_RDONLY, O_TRUNC } = fsConstants;
/** The access-mode bits of open flags (node's fs.constants lacks it). */
const O_ACCMODE = 3;
const POLLIN = 1;

export interface ServeOptions {
  /** Seconds the kernel may cache names; default 1. Long timeouts plus explicit invalidation save round trips. */
  entryTimeout?: number;
  /** Seconds the kernel may cache attributes; default 1. */
  attrTimeout?: number;
  /** Largest WRITE payload; default and maximum 1 MiB (FUSE_MAX_PAGES with 256 pages). */
  maxWrite?: number;
  /** INIT flags to ask for on top of the defaults (only those the kernel offers are kept). */
  wantFlags?: number;
  /** INIT flags to leave out of the defaults. */
  dropFlags?: number;
  /** Log every request and reply to stderr. */
  debug?: boolean;
  /** I/O threads for READ and WRITE data (needs the file system's leaseData); default 2, 0 for none. */
  ioThreads?: number;
  /** The smallest READ or WRITE handed to an I/O thread; smaller ones are served inline. Default IO_MIN_SIZE. */
  ioMinSize?: number;
  /** FUSE passthrough for opens whose file system offers a backing fd (root only); default on, false for off. */
  passthrough?: boolean;
  /**
   * serveFuseInSlices only: keep V8's optimizing compiler off until this many requests have been served
   * (see OPTIMIZE_AFTER). V8's flags are the process's: for a process that only serves. Default 0, off.
   */
  optimizeAfter?: number;
}

/**
 * Below this a READ or WRITE is served on the serving thread: handing it over costs a thread wakeup
 * each way, which is more than the pread/pwrite of a few pages (measured: bench/load.ts, README).
 */
export const IO_MIN_SIZE = 64 * 1024;

/** What we ask for unless told otherwise. Each saves round trips or lifts a size limit. */
const DEFAULT_INIT_FLAGS =
  P.InitFlag.ASYNC_READ |
  P.InitFlag.BIG_WRITES |
  P.InitFlag.ATOMIC_O_TRUNC |
  P.InitFlag.DO_READDIRPLUS |
  P.InitFlag.READDIRPLUS_AUTO |
  P.InitFlag.PARALLEL_DIROPS |
  P.InitFlag.MAX_PAGES |
  P.InitFlag.CACHE_SYMLINKS |
  P.InitFlag.NO_OPEN_SUPPORT |
  P.InitFlag.NO_OPENDIR_SUPPORT |
  P.InitFlag.ABORT_ERROR;

const PAGE = 4096;
const MAX_PAGES = 256;

/** The errno number of a thrown error: a string `code` as node:fs errors carry, else EIO. */
function errnoOf(err: unknown): number {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && ERRNO[code] !== undefined) return ERRNO[code];
  }
  return ERRNO.EIO ?? 5;
}

function isErrnoError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && ERRNO[code] !== undefined;
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Writes notifications to the device. `deferred` ones are queued and sent after the current reply: a
 * notification sent from inside a request handler could wait on a lock the kernel holds until that very
 * request is answered, which on a single serving thread is a deadlock. An attribute-only
 * NOTIFY_INVAL_INODE (offset < 0) takes no such lock (fuse_reverse_inval_inode only bumps the attribute
 * version), and it must reach the kernel before the reply: else the caller's next stat can still be
 * answered from the stale cache.
 */
export class Notifier implements FuseNotifier {
  private queue: Buffer[] = [];
  constructor(
    private readonly fd: number,
    private readonly deferred: boolean,
  ) {}

  invalInode(nodeid: number, offset = 0, length = 0): void {
    const msg = P.encodeNotifyInvalInode(nodeid, offset, length);
    if (offset < 0) writeNotify(this.fd, msg);
    else this.send(msg);
  }

  invalEntry(parent: number, name: string): void {
    this.send(P.encodeNotifyInvalEntry(parent, name));
  }

  private send(msg: Buffer): void {
    if (this.deferred) this.queue.push(msg);
    else writeNotify(this.fd, msg);
  }

  flush(): void {
    if (this.queue.length === 0) return;
    const q = this.queue;
    this.queue = [];
    for (const msg of q) writeNotify(this.fd, msg);
  }
}

function writeNotify(fd: number, msg: Buffer): void {
  try {
    writeSync(fd, msg);
  } catch (err) {
    // ENOENT: the kernel has nothing cached for that node or name, which is what we wanted anyway.
    const code = codeOf(err);
    if (code !== 'ENOENT' && code !== 'ENODEV' && code !== 'EBADF') throw err;
  }
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** One connection's state: negotiated parameters and the dispatch table. */
class Server {
  private initialized = false;
  private minor = 0;
  private flags = 0;
  private readonly timeouts: P.Timeouts;
  private readonly maxWrite: number;
  readonly bufSize: number;
  private stopped = false;
  /** The I/O threads, when the file system lends out fds. */
  readonly io: IoThreads | undefined;
  private readonly ioMinSize: number;
  /** The current request's buffer went to a WRITE job: the loop must read the next one elsewhere. */
  slotTaken = false;
  private readonly forgotten = new ForgetCollector();
  /** FUSE passthrough, when the kernel agreed to it at INIT. */
  private passthrough: Passthrough | undefined;
  /** Node ids with background work in flight (a copy-up), and the requests parked on each work. */
  private readonly busy = new Map<number, BackgroundWork>();
  private readonly parked = new Map<BackgroundWork, { nodeid: number; requests: Buffer[] }>();
  /** Work done whose parked requests are to be served again, in order. */
  private readonly ready: BackgroundWork[] = [];
  /** Shut down by the file system (FuseConnection.shutDown): EIO from then on. */
  private down = false;

  constructor(
    private readonly fd: number,
    private readonly ops: RawFileSystem,
    private readonly opts: ServeOptions,
  ) {
    this.timeouts = { entry: opts.entryTimeout ?? 1, attr: opts.attrTimeout ?? 1 };
    this.maxWrite = Math.min(opts.maxWrite ?? MAX_PAGES * PAGE, MAX_PAGES * PAGE);
    // The kernel wants room for the largest WRITE plus its headers; a page covers every header.
    this.bufSize = this.maxWrite + PAGE;
    this.ioMinSize = opts.ioMinSize ?? IO_MIN_SIZE;
    const threads = opts.ioThreads ?? 2;
    const wantsIo = (ops.leaseData !== undefined || ops.attachBackground !== undefined) && threads > 0;
    this.io = wantsIo ? new IoThreads(fd, this.bufSize, { threads }) : undefined;
    if (this.io !== undefined) ops.attachBackground?.(this.background(this.io));
    ops.attachConnection?.({ shutDown: () => void (this.down = true) });
  }

  private background(io: IoThreads): Background {
    return {
      copy: (job, then) => {
        const work = { done: false };
        io.copy(job.sourceFd, job.targetFd, job.length, job.sync, (errno) => {
          work.done = true;
          try {
            then(errno === 0 ? undefined : Object.assign(new Error(`copy: errno ${errno}`), { code: codeOfErrno(errno), errno: -errno }));
          } finally {
            this.ready.push(work);
          }
        });
        return work;
      },
    };
  }

  /** Whether parked requests are ready to be served again. */
  get replayable(): boolean {
    return this.ready.length > 0;
  }

  /** Serves again the requests parked on finished work, in the order they came. */
  replay(): void {
    while (this.ready.length > 0) {
      const work = this.ready.shift()!;
      const p = this.parked.get(work);
      this.parked.delete(work);
      if (p === undefined) continue;
      if (this.busy.get(p.nodeid) === work) this.busy.delete(p.nodeid);
      for (const req of p.requests) this.handle(req, req.length);
    }
  }

  private park(work: BackgroundWork, nodeid: number, buf: Buffer, len: number): void {
    let p = this.parked.get(work);
    if (p === undefined) this.parked.set(work, (p = { nodeid, requests: [] }));
    p.requests.push(Buffer.from(buf.subarray(0, len)));
  }

  get done(): boolean {
    return this.stopped;
  }

  /**
   * After many FORGETs, a full collection once the device stays quiet for IDLE_MS (see memory.ts):
   * the loop never idles in a way V8 notices, so the heap the forgotten nodes held is given back here.
   * A signal that ends the wait is thrown (EINTR), as from the read that follows.
   */
  collectWhenQuiet(): void {
    if (!this.forgotten.due || (this.io !== undefined && this.io.outstanding > 0)) return;
    let ready: number;
    try {
      ready = poll([{ fd: this.fd, events: POLLIN }], IDLE_MS);
    } catch (err) {
      if (codeOf(err) === 'EINTR') throw err;
      return; // the read below meets whatever is wrong with the device
    }
    if (ready === 0) this.forgotten.collect();
  }

  private destroyed = false;
  /** The filesystem's destroy hook, once, whether DESTROY arrives or the connection just ends. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.ops.destroy?.();
  }

  private reply(buf: Buffer): void {
    this.write(buf);
  }

  private write(buf: Buffer | Uint8Array[]): void {
    try {
      if (Array.isArray(buf)) writevSync(this.fd, buf);
      else writeAll(this.fd, buf);
    } catch (err) {
      const code = codeOf(err);
      // ENOENT: the request was interrupted and the kernel no longer waits for this reply.
      if (code === 'ENOENT') return;
      if (code === 'ENODEV' || code === 'ECONNABORTED') {
        this.stopped = true;
        return;
      }
      throw err;
    }
  }

  private replyError(unique: bigint, errno: number): void {
    this.reply(P.encodeError(unique, errno));
  }

  private replyOk(unique: bigint): void {
    this.reply(P.allocReply(unique, 0));
  }

  private replyData(unique: bigint, data: Uint8Array): void {
    const header = P.encodeDataHeader(unique, data.length);
    if (data.length === 0) this.reply(header);
    else this.write([header, data]);
  }

  /** Serves one request of `len` bytes in `buf`. */
  handle(buf: Buffer, len: number): void {
    const h = P.decodeInHeader(buf);
    const body = P.IN_HEADER_SIZE;
    const end = Math.min(len, h.len) - h.extLen;
    if (this.opts.debug) process.stderr.write(`fuse: ${P.opcodeName(h.opcode)} unique=${h.unique} nodeid=${h.nodeid}\n`);
    if (h.opcode === P.Opcode.INIT) return this.init(h.unique, buf, body, end);
    if (!this.initialized) return this.replyError(h.unique, ERRNO.EIO ?? 5);
    if (this.down && !servedWhenDown(h.opcode)) return this.replyError(h.unique, ERRNO.EIO ?? 5);
    const waitFor = this.busy.get(h.nodeid);
    if (waitFor !== undefined && !goesOnDuringCopyUp(h.opcode, buf, body)) return this.park(waitFor, h.nodeid, buf, len);
    try {
      this.dispatch(h, buf, body, end);
    } catch (err) {
      if (err instanceof Parked) {
        this.busy.set(h.nodeid, err.work);
        return this.park(err.work, h.nodeid, buf, len);
      }
      if (!isErrnoError(err)) {
        process.stderr.write(`fuse: ${P.opcodeName(h.opcode)} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      } else if (this.opts.debug) {
        process.stderr.write(`fuse:   -> ${codeOf(err)}\n`);
      }
      if (!noReply(h.opcode)) this.replyError(h.unique, errnoOf(err));
    }
  }

  private init(unique: bigint, buf: Buffer, off: number, end: number): void {
    const k = P.decodeInitIn(buf, off, end);
    if (k.major !== P.FUSE_KERNEL_VERSION || k.minor < P.FUSE_MIN_MINOR_VERSION) {
      // A newer major would resend INIT after our answer; neither happens on a 7.x kernel.
      process.stderr.write(`fuse: unsupported kernel protocol ${k.major}.${k.minor}\n`);
      return this.replyError(unique, ERRNO.EPROTO ?? 71);
    }
    let want = (DEFAULT_INIT_FLAGS | (this.opts.wantFlags ?? 0) | (this.ops.wantFlags ?? 0)) & ~(this.opts.dropFlags ?? 0);
    // No-open mode is only right when the filesystem has no use for handles.
    if (this.ops.open) want &= ~P.InitFlag.NO_OPEN_SUPPORT;
    if (this.ops.opendir) want &= ~P.InitFlag.NO_OPENDIR_SUPPORT;
    this.minor = Math.min(k.minor, P.FUSE_KERNEL_MINOR_VERSION);
    this.flags = (k.flags & want) >>> 0;
    // Passthrough needs the second flag word; only root can register backing files, so only root asks.
    const passthrough = this.opts.passthrough !== false && this.ops.open !== undefined && process.getuid?.() === 0 &&
      (k.flags & P.InitFlag.INIT_EXT) !== 0 && (k.flags2 & P.InitFlag2.PASSTHROUGH) !== 0;
    if (passthrough) {
      this.flags = (this.flags | P.InitFlag.INIT_EXT) >>> 0;
      this.passthrough = new Passthrough(this.fd, true);
    }
    // Node ids are not handles that outlive the kernel's cache: without this, name_to_handle_at succeeds
    // and open_by_handle_at fails with ESTALE once the inode is evicted. The kernel overlay without
    // nfs_export refuses both (EOPNOTSUPP), and so does the kernel's FUSE client with this flag.
    const noExport = (k.flags & P.InitFlag.INIT_EXT) !== 0 && (k.flags2 & P.InitFlag2.NO_EXPORT_SUPPORT) !== 0;
    if (noExport) this.flags = (this.flags | P.InitFlag.INIT_EXT) >>> 0;
    this.initialized = true;
    const maxPages = this.flags & P.InitFlag.MAX_PAGES ? Math.ceil(this.maxWrite / PAGE) : 32;
    const maxWrite = Math.min(this.maxWrite, maxPages * PAGE);
    this.ops.init?.({ major: P.FUSE_KERNEL_VERSION, minor: this.minor, flags: this.flags, maxWrite });
    this.reply(
      P.encodeInitOut(unique, {
        major: P.FUSE_KERNEL_VERSION,
        minor: this.minor,
        maxReadahead: k.maxReadahead,
        flags: this.flags,
        maxBackground: 16,
        congestionThreshold: 12,
        maxWrite,
        timeGran: 1,
        maxPages,
        flags2: (passthrough ? P.InitFlag2.PASSTHROUGH : 0) | (noExport ? P.InitFlag2.NO_EXPORT_SUPPORT : 0),
        maxStackDepth: passthrough ? MAX_STACK_DEPTH : 0,
      }),
    );
  }

  /** An OPEN/CREATE answer with its backing file handed to the kernel where passthrough allows. */
  private withBacking(nodeid: number, r: OpenReply): OpenOut {
    let out: OpenOut = r;
    if (this.passthrough !== undefined) out = this.passthrough.opened(nodeid, r, r.backing);
    else r.backing?.release();
    // Asked last, as it may cost a system call that a passthrough open does not need.
    if (out.keepCache === true && out.backingId === undefined && r.dropCacheIf?.() === true) out = { ...out, keepCache: false };
    return out;
  }

  private caller(h: InHeader): FuseCaller {
    return { unique: h.unique, uid: h.uid, gid: h.gid, pid: h.pid };
  }

  private dispatch(h: InHeader, buf: Buffer, off: number, end: number): void {
    const ops = this.ops;
    const u = h.unique;
    const t = this.timeouts;
    const O = P.Opcode;
    switch (h.opcode) {
      case O.FORGET:
        ops.forget?.(h.nodeid, P.decodeForget(buf, off));
        this.passthrough?.forgotten(h.nodeid);
        this.forgotten.add(1);
        return;
      case O.BATCH_FORGET: {
        const list = P.decodeBatchForget(buf, off, end);
        for (const [nodeid, n] of list) {
          ops.forget?.(nodeid, n);
          this.passthrough?.forgotten(nodeid);
        }
        this.forgotten.add(list.length);
        return;
      }
      case O.INTERRUPT:
      case O.NOTIFY_REPLY:
        // The interrupted request is answered already or about to be (see the top); retrieve replies are unused.
        return;
      case O.DESTROY:
        this.destroy();
        return this.replyOk(u);
      case O.LOOKUP: {
        if (!ops.lookup) break;
        const [name] = P.readName(buf, off, end);
        return this.reply(P.encodeEntryOut(u, ops.lookup(this.caller(h), h.nodeid, name), t));
      }
      case O.GETATTR: {
        if (!ops.getattr) break;
        return this.reply(P.encodeAttrOut(u, ops.getattr(this.caller(h), h.nodeid, P.decodeGetattrIn(buf, off, end)), t));
      }
      case O.STATX: {
        if (!ops.statx) break;
        const a = P.decodeStatxIn(buf, off);
        return this.reply(P.encodeStatxOut(u, ops.statx(this.caller(h), h.nodeid, a.fh, a.sxFlags, a.sxMask), t));
      }
      case O.SETATTR: {
        if (!ops.setattr) break;
        return this.reply(P.encodeAttrOut(u, ops.setattr(this.caller(h), h.nodeid, P.decodeSetattrIn(buf, off)), t));
      }
      case O.READLINK: {
        if (!ops.readlink) break;
        const target = ops.readlink(this.caller(h), h.nodeid);
        return this.replyData(u, typeof target === 'string' ? nameToBytes(target) : target);
      }
      case O.SYMLINK: {
        if (!ops.symlink) break;
        const a = P.decodeSymlink(buf, off, end);
        return this.reply(P.encodeEntryOut(u, ops.symlink(this.caller(h), h.nodeid, a.name, a.target), t));
      }
      case O.MKNOD: {
        if (!ops.mknod) break;
        const a = P.decodeMknodIn(buf, off, end);
        return this.reply(P.encodeEntryOut(u, ops.mknod(this.caller(h), h.nodeid, a.name, a.mode, a.rdev, a.umask), t));
      }
      case O.MKDIR: {
        if (!ops.mkdir) break;
        const a = P.decodeMkdirIn(buf, off, end);
        return this.reply(P.encodeEntryOut(u, ops.mkdir(this.caller(h), h.nodeid, a.name, a.mode, a.umask), t));
      }
      case O.UNLINK: {
        if (!ops.unlink) break;
        ops.unlink(this.caller(h), h.nodeid, P.readName(buf, off, end)[0]);
        return this.replyOk(u);
      }
      case O.RMDIR: {
        if (!ops.rmdir) break;
        ops.rmdir(this.caller(h), h.nodeid, P.readName(buf, off, end)[0]);
        return this.replyOk(u);
      }
      case O.RENAME:
      case O.RENAME2: {
        if (!ops.rename) break;
        const a = P.decodeRenameIn(buf, off, end, h.opcode === O.RENAME2);
        ops.rename(this.caller(h), h.nodeid, a.oldName, a.newDir, a.newName, a.flags);
        return this.replyOk(u);
      }
      case O.LINK: {
        if (!ops.link) break;
        const a = P.decodeLinkIn(buf, off, end);
        return this.reply(P.encodeEntryOut(u, ops.link(this.caller(h), a.oldNodeid, h.nodeid, a.name), t));
      }
      case O.OPEN:
      case O.OPENDIR: {
        const dir = h.opcode === O.OPENDIR;
        const open = dir ? ops.opendir : ops.open;
        const noOpenFlag = dir ? P.InitFlag.NO_OPENDIR_SUPPORT : P.InitFlag.NO_OPEN_SUPPORT;
        const a = P.decodeOpenIn(buf, off);
        if (!open) {
          // ENOSYS switches the kernel to no-open mode; a kernel without it gets a handle that means nothing.
          if (this.flags & noOpenFlag) break;
          return this.reply(P.encodeOpenOut(u, { fh: 0 }));
        }
        const r = open.call(ops, this.caller(h), h.nodeid, a.flags, a.openFlags);
        return this.reply(P.encodeOpenOut(u, dir ? r : this.withBacking(h.nodeid, r)));
      }
      case O.READ: {
        const a = P.decodeReadIn(buf, off);
        // An offset past 2^53 (a bigint) is served here: the I/O threads take numbers.
        if (this.io !== undefined && ops.leaseData !== undefined && a.size >= this.ioMinSize && typeof a.offset === 'number' && this.io.takesData(a.size)) {
          const lease = ops.leaseData(this.caller(h), h.nodeid, a.fh, 'read');
          if (lease !== undefined) return this.io.read(u, lease, a.offset, a.size);
        }
        if (!ops.read) break;
        return this.replyData(u, ops.read(this.caller(h), h.nodeid, a.fh, a.offset, a.size));
      }
      case O.WRITE: {
        const a = P.decodeWriteIn(buf, off, end);
        // FUSE always names the offset, also for O_APPEND: the kernel puts the write at the end of the size it knows.
        if (this.io !== undefined && ops.leaseData !== undefined && a.data.length >= this.ioMinSize && this.io.isSlot(buf) && typeof a.offset === 'number' && this.io.takesData(a.data.length)) {
          const lease = ops.leaseData(this.caller(h), h.nodeid, a.fh, 'write', a.writeFlags);
          if (lease !== undefined) {
            this.io.write(u, lease, a.offset, buf, a.data.byteOffset - buf.byteOffset, a.data.length);
            this.slotTaken = true;
            return;
          }
        }
        if (!ops.write) break;
        return this.reply(P.encodeWriteOut(u, ops.write(this.caller(h), h.nodeid, a.fh, a.offset, a.data, a.writeFlags)));
      }
      case O.FLUSH: {
        if (!ops.flush) break;
        const a = P.decodeFlushIn(buf, off);
        ops.flush(this.caller(h), h.nodeid, a.fh, a.lockOwner);
        return this.replyOk(u);
      }
      case O.RELEASE: {
        const a = P.decodeReleaseIn(buf, off);
        // Writes through a shared mapping of a passthrough file change the backing file's data and times
        // behind the FUSE inode, whose attributes the kernel keeps and never drops for them: drop them with
        // the last reference (attribute-only, so it takes no lock). Such a mapping needs an O_RDWR handle.
        if (this.passthrough?.released(a.fh) === true && (a.flags & O_ACCMODE) === fsConstants.O_RDWR) {
          writeNotify(this.fd, P.encodeNotifyInvalInode(h.nodeid, -1, 0));
        }
        ops.release?.(this.caller(h), h.nodeid, a.fh, a.flags);
        return this.replyOk(u);
      }
      case O.RELEASEDIR: {
        const a = P.decodeReleaseIn(buf, off);
        ops.releasedir?.(this.caller(h), h.nodeid, a.fh);
        return this.replyOk(u);
      }
      case O.FSYNC:
      case O.FSYNCDIR: {
        const fsync = h.opcode === O.FSYNC ? ops.fsync : ops.fsyncdir;
        if (!fsync) break;
        const a = P.decodeFsyncIn(buf, off);
        fsync.call(ops, this.caller(h), h.nodeid, a.fh, a.datasync);
        return this.replyOk(u);
      }
      case O.READDIR:
      case O.READDIRPLUS:
        return this.readdir(h, buf, off, h.opcode === O.READDIRPLUS);
      case O.STATFS: {
        // Without statfs, answer what libfuse does, so df and friends still work.
        const s = ops.statfs?.(this.caller(h), h.nodeid) ?? { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 512, namelen: 255, frsize: 512 };
        return this.reply(P.encodeStatfsOut(u, s));
      }
      case O.SETXATTR: {
        if (!ops.setxattr) break;
        const a = P.decodeSetxattrIn(buf, off, end, (this.flags & P.InitFlag.SETXATTR_EXT) !== 0);
        ops.setxattr(this.caller(h), h.nodeid, a.name, a.value, a.flags, a.setxattrFlags);
        return this.replyOk(u);
      }
      case O.GETXATTR:
      case O.LISTXATTR: {
        const list = h.opcode === O.LISTXATTR;
        if (list ? !ops.listxattr : !ops.getxattr) break;
        const a = P.decodeGetxattrIn(buf, off, end, !list);
        const value = list
          ? P.encodeXattrNames(ops.listxattr!(this.caller(h), h.nodeid))
          : ops.getxattr!(this.caller(h), h.nodeid, a.name);
        if (value === undefined) {
          if (this.opts.debug) process.stderr.write('fuse:   -> ENODATA\n');
          return this.replyError(u, ERRNO.ENODATA ?? 61);
        }
        if (a.size === 0) return this.reply(P.encodeXattrSize(u, value.length));
        if (value.length > a.size) return this.replyError(u, ERRNO.ERANGE ?? 34);
        return this.replyData(u, value);
      }
      case O.REMOVEXATTR: {
        if (!ops.removexattr) break;
        ops.removexattr(this.caller(h), h.nodeid, P.readName(buf, off, end)[0]);
        return this.replyOk(u);
      }
      case O.ACCESS: {
        if (!ops.access) break;
        ops.access(this.caller(h), h.nodeid, P.decodeAccessIn(buf, off));
        return this.replyOk(u);
      }
      case O.CREATE: {
        if (!ops.create) break;
        const a = P.decodeCreateIn(buf, off, end);
        const r = ops.create(this.caller(h), h.nodeid, a.name, a.mode, a.flags, a.umask, a.openFlags);
        return this.reply(P.encodeCreateOut(u, r.entry, this.withBacking(r.entry.nodeid, r.open), t));
      }
      case O.TMPFILE: {
        // ENOSYS makes the kernel answer EOPNOTSUPP to every O_TMPFILE from then on.
        if (!ops.tmpfile) break;
        const a = P.decodeCreateIn(buf, off, end);
        const r = ops.tmpfile(this.caller(h), h.nodeid, a.mode, a.flags, a.umask);
        return this.reply(P.encodeCreateOut(u, r.entry, this.withBacking(r.entry.nodeid, r.open), t));
      }
      case O.FALLOCATE: {
        if (!ops.fallocate) break;
        const a = P.decodeFallocateIn(buf, off);
        ops.fallocate(this.caller(h), h.nodeid, a.fh, a.offset, a.length, a.mode);
        return this.replyOk(u);
      }
      case O.LSEEK: {
        if (!ops.lseek) break;
        const a = P.decodeLseekIn(buf, off);
        return this.reply(P.encodeLseekOut(u, ops.lseek(this.caller(h), h.nodeid, a.fh, a.offset, a.whence)));
      }
      case O.COPY_FILE_RANGE: {
        if (!ops.copyFileRange) break;
        const a = P.decodeCopyFileRangeIn(buf, off);
        return this.reply(P.encodeWriteOut(u, ops.copyFileRange(this.caller(h), { nodeidIn: h.nodeid, ...a })));
      }
      case O.IOCTL: {
        if (!ops.ioctl) break;
        const a = P.decodeIoctlIn(buf, off, end);
        return this.reply(P.encodeIoctlOut(u, 0, ops.ioctl(this.caller(h), h.nodeid, a.fh, a.cmd, a.input, a.outSize)));
      }
      default:
        break;
    }
    // Not implemented: ENOSYS, never silence. For most opcodes the kernel remembers and stops asking.
    this.replyError(u, ERRNO.ENOSYS ?? 38);
  }

  /** READDIR and READDIRPLUS: pack entries into the kernel's buffer until the next one would not fit. */
  private readdir(h: InHeader, buf: Buffer, off: number, plus: boolean): void {
    const ops = this.ops;
    const a = P.decodeReaddirIn(buf, off);
    const caller = this.caller(h);
    const out = Buffer.allocUnsafe(P.OUT_HEADER_SIZE + a.size);
    let pos = P.OUT_HEADER_SIZE;
    const limit = out.length;
    const t = this.timeouts;

    const add = (e: DirEntry, lookup: (() => EntryOut | null) | undefined): boolean => {
      const name = nameToBytes(e.name);
      const size = plus ? P.direntplusSize(name.length) : P.direntSize(name.length);
      if (pos + size > limit) return false;
      if (plus) {
        // '.' and '..' are never counted as lookups by the kernel, so they must not carry a node.
        const isDot = name.equals(DOT) || name.equals(DOTDOT);
        let entry: EntryOut | null = null;
        if (!isDot && lookup) {
          try {
            entry = lookup();
          } catch {
            entry = null; // gone since listed: send the name alone
          }
          // A negative entry (node id 0) is gone too: its attributes are zeros, not the listed d_ino.
          if (entry?.nodeid === 0) entry = null;
        }
        pos = P.writeDirentplus(out, pos, entry, t, entry ? entry.attr.ino : e.ino, e.off, e.type, name);
      } else {
        pos = P.writeDirent(out, pos, e.ino, e.off, e.type, name);
      }
      return true;
    };

    if (plus && ops.readdirplus) {
      ops.readdirplus(caller, h.nodeid, a.fh, a.offset, { add });
    } else {
      if (!ops.readdir) return this.replyError(h.unique, ERRNO.ENOSYS ?? 38);
      const lookup = ops.lookup;
      for (const e of ops.readdir(caller, h.nodeid, a.fh, a.offset)) {
        if (!add(e, plus && lookup ? () => lookup.call(ops, caller, h.nodeid, e.name) : undefined)) break;
      }
    }
    P.encodeOutHeader(out, pos, 0, h.unique);
    this.reply(out.subarray(0, pos));
  }
}

/**
 * Requests on a node being copied up that need not wait for it, as the kernel lets them by
 * (ovl_copy_up_start locks out only what changes the inode): reads of data and attributes, read-only
 * opens, and the requests that only end something.
 */
function goesOnDuringCopyUp(opcode: number, buf: Buffer, off: number): boolean {
  const O = P.Opcode;
  switch (opcode) {
    case O.READ: case O.GETATTR: case O.STATX: case O.GETXATTR: case O.LISTXATTR: case O.ACCESS: case O.READLINK:
    case O.FLUSH: case O.RELEASE: case O.FORGET: case O.INTERRUPT: case O.NOTIFY_REPLY:
      return true;
    case O.OPEN: {
      const flags = P.decodeOpenIn(buf, off).flags;
      return (flags & O_ACCMODE) === O_RDONLY && (flags & O_TRUNC) === 0;
    }
    default:
      return false;
  }
}

/** What a shut-down file system still serves (see FuseConnection.shutDown); these answer no EIO on XFS either. */
function servedWhenDown(opcode: number): boolean {
  const O = P.Opcode;
  switch (opcode) {
    case O.FORGET: case O.BATCH_FORGET: case O.RELEASE: case O.RELEASEDIR: case O.FLUSH: case O.INTERRUPT:
    case O.NOTIFY_REPLY: case O.DESTROY: case O.STATFS: case O.IOCTL:
      return true;
    default:
      return false;
  }
}

function codeOfErrno(errno: number): string {
  for (const [code, n] of Object.entries(ERRNO)) if (n === errno) return code;
  return 'EIO';
}

function noReply(opcode: number): boolean {
  return opcode === P.Opcode.FORGET || opcode === P.Opcode.BATCH_FORGET || opcode === P.Opcode.INTERRUPT || opcode === P.Opcode.NOTIFY_REPLY;
}

/**
 * The request loop over one connection. `run` serves until the kernel ends the connection, or, when it
 * is `interruptible`, until a signal interrupts a wait or its slice of time is over: then it returns
 * false and can be run again (serveFuseInSlices).
 */
class ServingLoop {
  private readonly server: Server;
  private readonly io: IoThreads | undefined;
  private buf: Buffer;
  private readonly reader: DeviceReader;
  /** Requests served so far. */
  served = 0;

  constructor(
    fd: number,
    ops: RawFileSystem,
    private readonly opts: ServeOptions,
    private readonly notifier: Notifier | undefined,
    private readonly interruptible: boolean,
  ) {
    this.server = new Server(fd, ops, opts);
    this.io = this.server.io;
    // With I/O threads, requests are read into shared slots, so that a WRITE can hand its data over as is.
    this.buf = this.io !== undefined ? this.io.takeSlot() : Buffer.allocUnsafe(this.server.bufSize);
    this.reader = new DeviceReader(fd, spinWindowFromEnv());
  }

  /** True once the connection has ended; false when it gave the thread back (interruptible only). */
  run(sliceEndsAt = Infinity): boolean {
    const { server, io, notifier, interruptible } = this;
    // Errors are answers here (ENOENT, ENODATA, EEXIST), thrown through the file system by the thousand:
    // capturing a stack for each cost more than the system call it reports (measured: 30-90 µs against
    // 3-10 µs without). Stacks come back with `debug`, for the failures that are bugs.
    const stackTraceLimit = Error.stackTraceLimit;
    if (this.opts.debug !== true) Error.stackTraceLimit = 0;
    try {
      while (!server.done) {
        let n: number;
        try {
          io?.waitForRequest(() => server.replayable);
          if (server.replayable) {
            server.replay();
            notifier?.flush();
            continue;
          }
          server.collectWhenQuiet();
          n = this.reader.read(this.buf);
        } catch (err) {
          const code = codeOf(err);
          // A signal ended a wait: give the thread back, or (in a worker) wait again.
          if (code === 'EINTR' && interruptible) return false;
          // ENOENT: the request we were about to read was interrupted; EINTR/EAGAIN: just try again.
          if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') continue;
          if (code === 'ENODEV' || code === 'ECONNABORTED') break; // unmounted or aborted
          throw err;
        }
        if (n === 0) break;
        if (n < P.IN_HEADER_SIZE) continue;
        server.handle(this.buf, n);
        this.served++;
        notifier?.flush();
        if (server.slotTaken) {
          server.slotTaken = false;
          this.buf = io!.takeSlot();
        }
        if (interruptible && Date.now() >= sliceEndsAt) return false;
      }
      return true;
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
  }

  /** Once the connection has ended (or serving failed). */
  close(): void {
    // Jobs in flight still hold leases, which the file system's destroy may want back.
    try {
      this.io?.close();
    } finally {
      this.server.destroy();
    }
  }
}

/**
 * Serves the connection on `fd` until the kernel ends it (unmount or abort → ENODEV). Blocks the calling
 * thread throughout: for a worker, whose event loop nothing else needs. `notifier`, when given, is flushed
 * after every reply (see Notifier).
 */
export function serveFuse(fd: number, ops: RawFileSystem, opts: ServeOptions = {}, notifier?: Notifier): void {
  const loop = new ServingLoop(fd, ops, opts, notifier, false);
  try {
    loop.run();
  } finally {
    loop.close();
  }
}

/**
 * Busy, serving gives the thread back to its event loop after SLICE_MS, so that signal handlers, child
 * exits and timers run while requests keep coming. Idle, it sleeps in a plain blocking read of the
 * device, which SIGINT, SIGTERM and SIGHUP (once they have handlers) and a SIGALRM every ALARM_MS
 * interrupt: a signal sent to the process while the thread sleeps lands on it (the kernel picks the main
 * thread) and ends the wait at once; one that lands while it runs, or that another thread took, only
 * marks itself for the event loop, which the next slice's end or alarm lets run. The slice is timed
 * with Date.now(): a millisecond is fine enough, and performance.now() checks its receiver through a
 * wrapper that allocates, after every request.
 */
const SLICE_MS = 50;
const ALARM_MS = 1000;
const { SIGINT, SIGTERM, SIGHUP, SIGALRM } = constants.signals;
const INTERRUPTING = [SIGINT, SIGTERM, SIGHUP, SIGALRM];

/**
 * Requests the ovlfs daemon serves before V8 may optimize its code (ServeOptions.optimizeAfter). A
 * container's mount serves a few thousand requests in its life, and in those V8's optimizing compiler
 * costs more than it saves: it compiles the hot request paths on its threads and throws some of the code
 * away again. Measured (open+close pairs 2 ms apart on a fresh daemon, CPU of all its threads, medians of
 * 5 mounts interleaved): the first 1,000 pairs cost 0.62× with the compiler held back; past this count,
 * where a mount that keeps serving gets optimized code, 4,000 pairs back to back cost 1.05×.
 */
export const OPTIMIZE_AFTER = 10_000;

function nextTurn(): Promise<void> {
  return new Promise((resolveTurn) => setImmediate(resolveTurn));
}

/**
 * Serves the connection on `fd` on this thread, in slices between turns of its event loop, until the
 * kernel ends it: for a process that serves and still hears signals and child exits (the ovlfs daemon),
 * with no second Node environment to start. Between slices the thread runs whatever else is due. It owns
 * SIGALRM (and the process's ITIMER_REAL) while it serves.
 */
export async function serveFuseInSlices(fd: number, ops: RawFileSystem, opts: ServeOptions = {}, notifier?: Notifier): Promise<void> {
  const loop = new ServingLoop(fd, ops, opts, notifier, true);
  let optimizing = !(opts.optimizeAfter !== undefined && opts.optimizeAfter > 0);
  if (!optimizing) setFlagsFromString('--no-opt');
  const onAlarm = (): void => {}; // only to interrupt the read: without a listener SIGALRM would kill the process
  process.on('SIGALRM', onAlarm);
  setAlarmInterval(ALARM_MS);
  try {
    for (;;) {
      // Again before each slice: a handler installed meanwhile (mountFuse's SIGTERM) comes with SA_RESTART.
      interruptWith(INTERRUPTING);
      if (loop.run(Date.now() + SLICE_MS)) break;
      if (!optimizing && loop.served >= opts.optimizeAfter!) {
        setFlagsFromString('--opt');
        optimizing = true;
      }
      // Two turns: a slice that began in the poll phase (from an I/O callback) would otherwise go on in the
      // check phase of the same turn, and the signal that ended it would wait for the next poll.
      await nextTurn();
      await nextTurn();
    }
  } finally {
    if (!optimizing) setFlagsFromString('--opt');
    setAlarmInterval(0);
    process.off('SIGALRM', onAlarm);
    loop.close();
  }
}
