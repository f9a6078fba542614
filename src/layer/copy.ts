// Copying a file's data between two open real files: a reflink where the filesystem offers one,
// copy_file_range inside the kernel where both are host files, reads and writes otherwise.
import { copyFileRange, ficlone, lseek, SEEK_DATA } from '../sys/index.js';
import { errorCode, hostError } from '../errors.js';
import type { FileOffset, RealFile } from './types.js';

const CHUNK = 1 << 20;

export interface CopyDataOptions {
  /** Fail (with the filesystem's errno) rather than copy when a clone is not possible (COPYFILE_FICLONE_FORCE). */
  cloneOnly?: boolean;
  /** Try a clone first (default true). */
  clone?: boolean;
  /**
   * Skip the source's holes and set the size at the end, as the kernel's ovl_copy_up_file does, so that a
   * copy-up of a sparse file stays sparse (and one with data near 2^63 can be made at all).
   */
  skipHoles?: boolean;
}

/** Copies all of src's data into dst from offset 0 (dst is expected empty or truncated). Returns the bytes copied. */
export function copyFileData(src: RealFile, dst: RealFile, options: CopyDataOptions = {}): number {
  const size = src.stat().size;
  if (src.fd !== undefined && dst.fd !== undefined) {
    if (options.clone !== false || options.cloneOnly) {
      try {
        ficlone(dst.fd, src.fd);
        return size;
      } catch (err) {
        if (options.cloneOnly) throw err;
      }
    }
    let pos: FileOffset = 0;
    let dataPos: FileOffset = -1;
    let skipHoles = options.skipHoles === true;
    try {
      for (;;) {
        if (skipHoles && dataPos < pos) {
          const next = nextData(src.fd, pos);
          if (next === null) break;
          if (next === undefined) skipHoles = false;
          else if ((dataPos = next) > pos) pos = next;
        }
        const n = copyFileRange(src.fd, pos, dst.fd, pos, CHUNK);
        if (n === 0) break;
        pos = typeof pos === 'number' && Number.isSafeInteger(pos + n) ? pos + n : BigInt(pos) + BigInt(n);
      }
    } catch (err) {
      // Across filesystems before 5.19, or where a filesystem refuses: copy by hand from where it stopped.
      const code = errorCode(err);
      if (code !== 'EXDEV' && code !== 'EINVAL' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP' && code !== 'ENOTSUP') throw err;
      if (typeof pos !== 'number') throw err;
      return copyByHand(src, dst, pos);
    }
    if (options.skipHoles !== true) return Number(pos);
    // Past a last hole, the size is the source's.
    const end = src.stat();
    const length = end.sizeExact ?? end.size;
    if (pos < length) dst.truncate(length);
    return size;
  }
  if (options.cloneOnly) throw hostError('EOPNOTSUPP', 'ioctl');
  return copyByHand(src, dst, 0);
}

/** The next data at or after `pos`: null where only a hole follows (ENXIO), undefined where the filesystem cannot say. */
export function nextData(fd: number, pos: FileOffset): FileOffset | null | undefined {
  try {
    return lseek(fd, pos, SEEK_DATA);
  } catch (err) {
    return errorCode(err) === 'ENXIO' ? null : undefined;
  }
}

function copyByHand(src: RealFile, dst: RealFile, from: number): number {
  const buffer = Buffer.allocUnsafe(CHUNK);
  let pos = from;
  for (;;) {
    const n = src.read(buffer, 0, buffer.length, pos);
    if (n === 0) return pos;
    for (let done = 0; done < n; ) done += dst.write(buffer, done, n - done, pos + done);
    pos += n;
  }
}
