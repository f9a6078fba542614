// FUSE passthrough (Linux 6.9+): for an open whose file system hands over a backing fd, the kernel
// reads and writes that file itself, at the backing filesystem's speed, and READ/WRITE never reach us.
// The fd is registered once per node id with FUSE_DEV_IOC_BACKING_OPEN and the id goes back in the
// OPEN/CREATE reply (FOPEN_PASSTHROUGH); FUSE_DEV_IOC_BACKING_CLOSE follows the node's last such handle.
//
// The kernel's rules (fs/fuse/iomode.c), which a wrong answer turns into EIO for the caller's open:
//   - an inode is either in cached mode (handles through the page cache) or in passthrough mode, never
//     both: while a cached handle is open on a node, its new opens are cached too, and while a
//     passthrough handle is open, its new opens are passthrough (the file system's state decides
//     which it offers; it offers a backing fd whenever it may);
//   - every passthrough handle of an inode has the same backing file, so one registration per node id;
//   - a passthrough open carries no FOPEN flag but DIRECT_IO, PARALLEL_DIRECT_WRITES and NOFLUSH, so
//     no KEEP_CACHE: and a later cached open must drop the pages, which passthrough writes bypassed.
// Registering needs CAP_SYS_ADMIN in the initial namespace; without it (EPERM), or where backing files
// cannot stack (ELOOP), every open stays cached, silently.
import { errorCode } from '../../errors.js';
import { ioctl } from '../../sys/index.js';
import type { OpenOut } from '../structs.js';
import type { DataLease } from './io-threads.js';

/** _IOW(229, 1, struct fuse_backing_map { int32 fd; uint32 flags; uint64 padding; }) */
const FUSE_DEV_IOC_BACKING_OPEN = 0x4010e501;
/** _IOW(229, 2, uint32 backing_id) */
const FUSE_DEV_IOC_BACKING_CLOSE = 0x4004e502;

/** Backing files of a plain filesystem: one level below ours. */
export const MAX_STACK_DEPTH = 1;

interface Backing {
  id: number;
  handles: number;
}

/** The passthrough bookkeeping of one connection, on the serving thread. */
export class Passthrough {
  private readonly backings = new Map<number, Backing>();
  /** Open cached-mode handles per node id. */
  private readonly cached = new Map<number, number>();
  /** Node ids whose data passthrough handles may have changed behind the page cache. */
  private readonly bypassed = new Set<number>();
  private readonly handles = new Map<number, { nodeid: number; passthrough: boolean }>();
  private readonly map = Buffer.alloc(16);

  constructor(
    private readonly devFd: number,
    /** Whether the kernel agreed to FUSE_PASSTHROUGH at INIT. */
    private enabled: boolean,
  ) {}

  /**
   * The OPEN or CREATE reply for handle `out.fh` on `nodeid`: passthrough to `backing` where the rules
   * allow, else cached. The lease is released here either way (the kernel holds its own reference).
   */
  opened(nodeid: number, out: OpenOut, backing: DataLease | undefined): OpenOut {
    try {
      if (backing !== undefined && this.enabled && !out.directIo && (this.cached.get(nodeid) ?? 0) === 0) {
        const b = this.backings.get(nodeid) ?? this.register(nodeid, backing.fd);
        if (b !== undefined) {
          b.handles++;
          this.handles.set(out.fh, { nodeid, passthrough: true });
          this.bypassed.add(nodeid);
          return { ...out, keepCache: false, backingId: b.id };
        }
      }
    } finally {
      backing?.release();
    }
    if (out.directIo) return out;
    this.cached.set(nodeid, (this.cached.get(nodeid) ?? 0) + 1);
    this.handles.set(out.fh, { nodeid, passthrough: false });
    if (!this.bypassed.delete(nodeid)) return out;
    // Pages cached before the passthrough writes are stale: this open drops them.
    return { ...out, keepCache: false };
  }

  /**
   * The kernel forgot `nodeid`: it evicted the inode, and its page cache with it, so nothing stale is
   * left to drop (and ids are never reused, so the mark would only pile up).
   */
  forgotten(nodeid: number): void {
    this.bypassed.delete(nodeid);
  }

  /**
   * The handle `fh` was released: its node leaves cached mode, or its backing file goes, with the last.
   * True if it was a passthrough handle.
   */
  released(fh: number): boolean {
    const h = this.handles.get(fh);
    if (h === undefined) return false;
    this.handles.delete(fh);
    if (!h.passthrough) {
      const n = (this.cached.get(h.nodeid) ?? 1) - 1;
      if (n > 0) this.cached.set(h.nodeid, n);
      else this.cached.delete(h.nodeid);
      return false;
    }
    const b = this.backings.get(h.nodeid);
    if (b === undefined || --b.handles > 0) return true;
    this.backings.delete(h.nodeid);
    this.map.writeUInt32LE(b.id, 0);
    try {
      ioctl(this.devFd, FUSE_DEV_IOC_BACKING_CLOSE, this.map.subarray(0, 4));
    } catch {
      // The connection is going away: the kernel drops its backing files with it.
    }
    return true;
  }

  private register(nodeid: number, fd: number): Backing | undefined {
    this.map.fill(0);
    this.map.writeInt32LE(fd, 0);
    let id: number;
    try {
      id = ioctl(this.devFd, FUSE_DEV_IOC_BACKING_OPEN, this.map);
    } catch (err) {
      // Not allowed (EPERM: no CAP_SYS_ADMIN), not offered (EOPNOTSUPP) or a backing filesystem that
      // is itself stacked (ELOOP): stop offering. Anything else: this open is cached.
      const code = errorCode(err);
      if (code === 'EPERM' || code === 'EOPNOTSUPP' || code === 'ELOOP' || code === 'ENOTTY') this.enabled = false;
      return undefined;
    }
    const b: Backing = { id, handles: 0 };
    this.backings.set(nodeid, b);
    return b;
  }
}
