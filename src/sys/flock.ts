// flock(2), which Node lacks: an upper layer's in-use lock, the stand-in for the kernel overlay's
// I_OVL_INUSE mark on its upper and work directories. The lock belongs to the open file, so it is held
// until the layer closes its fd or the process ends, however it ends.
import { declare, failure, lastErrno } from './libc.js';

const flockCall = declare<(fd: number, operation: number) => number>('int flock(int fd, int operation)');
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

/**
 * Takes an exclusive lock on the file open at `fd` without waiting: 'locked', or 'busy' when another open
 * file holds one, or 'unsupported' where the filesystem has no such locks.
 */
export function tryLockExclusive(fd: number, path: string): 'locked' | 'busy' | 'unsupported' {
  if (flockCall(fd, LOCK_EX | LOCK_NB) === 0) return 'locked';
  const errno = lastErrno();
  if (errno === EWOULDBLOCK) return 'busy';
  // ENOLCK, EINVAL, EOPNOTSUPP: no locks here, as on some network filesystems; the layer works without.
  if (errno === 37 || errno === 22 || errno === 95) return 'unsupported';
  throw failure('flock', path);
}
