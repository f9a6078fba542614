// Copying a file's data between two open real files: a reflink where the filesystem offers one,
// copy_file_range inside the kernel where both are host files, reads and writes otherwise.
import { copyFileRange, ficlone } from '../sys/index.js';
import { errorCode, hostError } from '../errors.js';
import type { RealFile } from './types.js';

const CHUNK = 1 << 20;

export interface CopyDataOptions {
  /** Fail (with the filesystem's errno) rather than copy when a clone is not possible (COPYFILE_FICLONE_FORCE). */
  cloneOnly?: boolean;
  /** Try a clone first (default true). */
  clone?: boolean;
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
    let pos = 0;
    try {
      for (;;) {
        const n = copyFileRange(src.fd, pos, dst.fd, pos, CHUNK);
        if (n === 0) return pos;
        pos += n;
      }
    } catch (err) {
      // Across filesystems before 5.19, or where a filesystem refuses: copy by hand from where it stopped.
      const code = errorCode(err);
      if (code !== 'EXDEV' && code !== 'EINVAL' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP' && code !== 'ENOTSUP') throw err;
      return copyByHand(src, dst, pos);
    }
  }
  if (options.cloneOnly) throw hostError('EOPNOTSUPP', 'ioctl');
  return copyByHand(src, dst, 0);
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
