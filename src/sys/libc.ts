// The C library, loaded once through koffi, and the one place that turns a failed call into a
// Node-shaped error. koffi saves errno right after each call, so reading it here is reliable.
import koffi from 'koffi';
import { constants } from 'node:os';
import { hostError, type FsError } from '../errors.js';
import { cPath, hasRawBytes } from '../names.js';

export const libc = koffi.load('libc.so.6');

const CODES = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno as Record<string, number>)) {
  // EWOULDBLOCK and EAGAIN, EDEADLOCK and EDEADLK, ENOTSUP and EOPNOTSUPP share numbers: keep Node's first name.
  if (!CODES.has(value)) CODES.set(value, name);
}

/** The errno name of a positive errno number, e.g. 2 -> 'ENOENT'. */
export function errnoCode(errno: number): string {
  return CODES.get(errno) ?? 'EIO';
}

/** The errno the last call left. */
export function lastErrno(): number {
  return koffi.errno();
}

/** The error for a call that returned -1: `ENOENT: no such file or directory, openat2 'x'`. */
export function failure(syscall: string, path?: string, dest?: string): FsError {
  return hostError(errnoCode(koffi.errno()), syscall, path, dest);
}

/** Throws the error for a call that returned a negative value; returns the value otherwise. */
export function check(ret: number, syscall: string, path?: string, dest?: string): number {
  if (ret < 0) throw failure(syscall, path, dest);
  return ret;
}

/**
 * Declares a function; a symbol the C library lacks is reported when first called (and by
 * `probe`), so that importing this module never fails on an older libc.
 */
export function declare<F extends (...args: never[]) => unknown>(prototype: string): F {
  let fn: (...args: unknown[]) => unknown;
  try {
    fn = libc.func(prototype);
  } catch {
    const name = /(\w+)\s*\(/.exec(prototype)?.[1] ?? prototype;
    return ((..._args: never[]) => {
      throw hostError('ENOSYS', name);
    }) as unknown as F;
  }
  if (!/char\s*\*/.test(prototype)) return fn as unknown as F;
  const wrap = WITH_ARITY[parameterCount(prototype) - 1];
  if (wrap !== undefined) return wrap(fn) as unknown as F;
  return ((...args: unknown[]) => fn(...args.map(withRawBytes))) as unknown as F;
}

/** A name that carries raw (non-UTF-8) bytes goes to the kernel as those bytes (see names.ts). */
function withRawBytes(a: unknown): unknown {
  return typeof a === 'string' && hasRawBytes(a) ? cPath(a) : a;
}

type Call = (...args: unknown[]) => unknown;
const w = withRawBytes;
// Wrappers of fixed arity rather than rest parameters and a spread call: between a container's
// requests the daemon runs cold, and there the rest array and the spread cost as much as the call.
// Indexed by the number of parameters less one (a prototype with a string has at least one).
const WITH_ARITY: ReadonlyArray<(fn: Call) => Call> = [
  (fn) => (a) => fn(w(a)),
  (fn) => (a, b) => fn(w(a), w(b)),
  (fn) => (a, b, c) => fn(w(a), w(b), w(c)),
  (fn) => (a, b, c, d) => fn(w(a), w(b), w(c), w(d)),
  (fn) => (a, b, c, d, e) => fn(w(a), w(b), w(c), w(d), w(e)),
  (fn) => (a, b, c, d, e, f) => fn(w(a), w(b), w(c), w(d), w(e), w(f)),
  (fn) => (a, b, c, d, e, f, g) => fn(w(a), w(b), w(c), w(d), w(e), w(f), w(g)),
];

/** How many parameters a C prototype declares ('void' and '()' are none). */
function parameterCount(prototype: string): number {
  const params = /\((.*)\)/s.exec(prototype)?.[1]?.trim() ?? '';
  return params === '' || params === 'void' ? 0 : params.split(',').length;
}

export { koffi };
