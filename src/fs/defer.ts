// How the asynchronous forms turn a synchronous core call into Node's async contract: the call runs
// now (so it is atomic within the process), its result arrives on a later turn of the event loop.
// setImmediate rather than nextTick: a stream reading a large file through a chain of callbacks
// must not starve timers and I/O, as a nextTick chain would.

export type Callback = (err: Error | null, ...results: unknown[]) => void;

/**
 * Whether an error is an argument-validation error that Node throws synchronously from the
 * callback and promise forms alike (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ...). System errors
 * and ERR_FS_* errors (rm's ERR_FS_EISDIR, cp's ERR_FS_CP_*) are delivered asynchronously.
 */
export function isArgumentError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_') && !code.startsWith('ERR_FS_');
}

export function invalidCallback(cb: unknown): TypeError {
  const received = cb === undefined ? 'undefined' : cb === null ? 'null' : `type ${typeof cb} (${String(cb)})`;
  const err = new TypeError(`The "cb" argument must be of type function. Received ${received}`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

/** Runs `fn` now and delivers `(null, ...results)` or `(err, ...onError)` to `cb` later. */
export function deliver(cb: Callback, fn: () => unknown[], onError: unknown[] = []): void {
  let results: unknown[];
  try {
    results = fn();
  } catch (err) {
    if (isArgumentError(err)) throw err;
    setImmediate(cb, err as Error, ...onError);
    return;
  }
  setImmediate(cb, null, ...results);
}

/** Node's AbortError, as raised when an AbortSignal cancels readFile/writeFile. */
export function abortError(signal: AbortSignal | undefined): Error {
  const err = new Error('The operation was aborted', { cause: signal?.reason }) as Error & { code: string };
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  return err;
}

export function checkAborted(signal: AbortSignal | null | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}
