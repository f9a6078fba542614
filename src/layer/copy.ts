// Copying a file's data between two open real files: a reflink where the filesystem offers one,
// copy_file_range inside the kernel where both are host files, reads and writes otherwise.
import { copyFileRange, ficlone, lseek, SEEK_DATA } from '../sys/index.js';
import { errorCode, hostError } from '../errors.js';
import { advanceOffset as advance, type FileOffset, type RealFile } from './types.js';

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

/**
 * Copies all of src's data into dst from offset 0 (dst is expected empty or truncated). Returns the
 * bytes copied, or with skipHoles the source's size.
 */
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
    // Cleared once copy_file_range refuses (across filesystems before 5.19, and between some since):
    // the chunks go by hand from there, the holes still skipped, as the kernel's ovl_copy_up_file does.
    let inKernel = true;
    let buffer: Buffer | undefined;
    for (;;) {
      if (skipHoles && dataPos < pos) {
        const next = nextData(src.fd, pos);
        if (next === null) break;
        if (next === undefined) skipHoles = false;
        else if ((dataPos = next) > pos) pos = next;
      }
      let n = inKernel ? copyChunkInKernel(src.fd, dst.fd, pos) : undefined;
      if (n === undefined) {
        inKernel = false;
        n = copyChunkByHand(src, dst, (buffer ??= Buffer.allocUnsafe(CHUNK)), pos);
      }
      if (n === 0) break;
      pos = advance(pos, n);
    }
    if (options.skipHoles !== true) return Number(pos);
    // Past a last hole, the size is the source's.
    const end = src.stat();
    const length = end.sizeExact ?? end.size;
    if (pos < length) dst.truncate(length);
    return size;
  }
  if (options.cloneOnly) throw hostError('EOPNOTSUPP', 'ioctl');
  const buffer = Buffer.allocUnsafe(CHUNK);
  let pos: FileOffset = 0;
  for (let n: number; (n = copyChunkByHand(src, dst, buffer, pos)) > 0; ) pos = advance(pos, n);
  return Number(pos);
}

/** One chunk by copy_file_range at `pos` on both sides: the bytes copied, undefined where the call is refused. */
function copyChunkInKernel(src: number, dst: number, pos: FileOffset): number | undefined {
  try {
    return copyFileRange(src, pos, dst, pos, CHUNK);
  } catch (err) {
    const code = errorCode(err);
    if (code !== 'EXDEV' && code !== 'EINVAL' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP' && code !== 'ENOTSUP') throw err;
    return undefined;
  }
}

/** One chunk read at `pos` and written at the same offset (bigint positions past 2^53): the bytes copied, 0 at the end. */
function copyChunkByHand(src: RealFile, dst: RealFile, buffer: Buffer, pos: FileOffset): number {
  const n = src.read(buffer, 0, buffer.length, pos);
  for (let done = 0; done < n; ) done += dst.write(buffer, done, n - done, advance(pos, done));
  return n;
}

/** The next data at or after `pos`: null where only a hole follows (ENXIO), undefined where the filesystem cannot say. */
export function nextData(fd: number, pos: FileOffset): FileOffset | null | undefined {
  try {
    return lseek(fd, pos, SEEK_DATA);
  } catch (err) {
    return errorCode(err) === 'ENXIO' ? null : undefined;
  }
}
