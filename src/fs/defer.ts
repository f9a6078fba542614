// How the asynchronous forms turn a synchronous core call into Node's async contract: the call runs
// now (so it is atomic within the process), its result arrives on a later turn of the event loop.
// setImmediate rather than nextTick: a stream reading a large file through a chain of callbacks
// must not starve timers and I/O, as a nextTick chain would. Callbacks run with `this` undefined,
// as Node's makeCallback calls them.
import { isNodeError, validateFunction } from './validate.js';

export type Callback = (err: Error | null, ...results: unknown[]) => void;

/** Node's ERR_FS_* errors that its async forms report through the callback, not by throwing. */
const DELIVERED = new Set(['ERR_FS_FILE_TOO_LARGE', 'ERR_FS_EISDIR', 'ERR_FS_CP_EINVAL', 'ERR_FS_CP_DIR_TO_NON_DIR',
  'ERR_FS_CP_EEXIST', 'ERR_FS_CP_FIFO_PIPE', 'ERR_FS_CP_NON_DIR_TO_DIR', 'ERR_FS_CP_SOCKET', 'ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY',
  'ERR_FS_CP_UNKNOWN']);

/**
 * Whether an error is an argument-validation error, which Node throws synchronously from the
 * callback forms (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ...). System errors and the ERR_FS_*
 * errors of a running operation are delivered to the callback.
 */
export function isArgumentError(err: unknown): boolean {
  return isNodeError(err) && !DELIVERED.has(err.code);
}

/** The callback argument, checked as Node's makeCallback checks it. */
export function makeCallback(cb: unknown): Callback {
  validateFunction(cb, 'cb');
  return cb as Callback;
}

/** Calls `cb(...args)` on a later turn with `this` undefined. */
export function later(cb: Callback, ...args: unknown[]): void {
  setImmediate(() => Reflect.apply(cb, undefined, args));
}

/** Runs `fn` now and delivers `(null, ...results)` or `(err, ...onError)` to `cb` later. */
export function deliver(cb: Callback, fn: () => unknown[], onError: unknown[] = []): void {
  let results: unknown[];
  try {
    results = fn();
  } catch (err) {
    if (isArgumentError(err)) throw err;
    later(cb, err as Error, ...onError);
    return;
  }
  later(cb, null, ...results);
}
