// Errors shaped like Node's own: `ENOENT: no such file or directory, open '/x'` with code, errno
// (negative), syscall and path, so callers written for node:fs handle ours unchanged.
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/** libuv's descriptions, the ones Node's own fs errors carry, by code. */
const MESSAGES = new Map<string, string>();
for (const [name, description] of getSystemErrorMap().values()) MESSAGES.set(name, description);
// Codes libuv does not describe: ESTALE in strerror(3)'s words; EOPNOTSUPP is ENOTSUP on Linux.
MESSAGES.set('ESTALE', 'stale file handle');
MESSAGES.set('EOPNOTSUPP', MESSAGES.get('ENOTSUP') ?? 'operation not supported');

const ERRNO = constants.errno as Record<string, number>;

/** Marks errors the overlay raised itself: their paths are overlay paths already. */
export const OVERLAY_ERROR = Symbol('ovlfs.error');

export interface FsError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
  dest?: string;
}

/** Builds a Node-style system error. `detail` replaces the default description (for option errors). */
export function fsError(code: string, syscall: string, path?: string, dest?: string, detail?: string): FsError {
  const err = buildError(code, syscall, path, dest, detail);
  Object.defineProperty(err, OVERLAY_ERROR, { value: true });
  Error.captureStackTrace?.(err, fsError);
  return err;
}

/**
 * The same error for a failed host call (src/sys/): its path is a layer path, so it is left
 * unmarked and `relabel` gives it the overlay path the caller used.
 */
export function hostError(code: string, syscall: string, path?: string, dest?: string): FsError {
  const err = buildError(code, syscall, path, dest);
  Error.captureStackTrace?.(err, hostError);
  return err;
}

function buildError(code: string, syscall: string, path?: string, dest?: string, detail?: string): FsError {
  const description = detail ?? MESSAGES.get(code) ?? code.toLowerCase();
  let message = `${code}: ${description}, ${syscall}`;
  if (path !== undefined) message += ` '${path}'`;
  if (dest !== undefined) message += ` -> '${dest}'`;
  const err = new Error(message) as FsError;
  err.errno = -(ERRNO[code] ?? 0);
  err.code = code;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  if (dest !== undefined) err.dest = dest;
  return err;
}

export function isFsError(err: unknown): err is FsError {
  return err instanceof Error && typeof (err as FsError).code === 'string';
}

/** The errno code of an error thrown by node:fs or by us, or undefined. */
export function errorCode(err: unknown): string | undefined {
  return isFsError(err) ? err.code : undefined;
}

/**
 * Re-labels an error raised on a real (host) path with the overlay path and syscall the caller used,
 * so no host path leaks into messages.
 */
export function relabel(err: unknown, syscall: string, path?: string, dest?: string): Error {
  if (err instanceof Error && (err as unknown as Record<symbol, unknown>)[OVERLAY_ERROR] === true) return err;
  const code = errorCode(err);
  if (code === undefined) return err instanceof Error ? err : new Error(String(err));
  return fsError(code, syscall, path, dest);
}

/** Errors from @napi-rs/xattr carry "(os error N)" in the message; map them back to a code. */
export function xattrErrorCode(err: unknown): string {
  const m = err instanceof Error ? /\(os error (\d+)\)/.exec(err.message) : null;
  if (!m) return 'EIO';
  const n = Number(m[1]);
  for (const [name, value] of Object.entries(ERRNO)) if (value === n) return name;
  return 'EIO';
}
