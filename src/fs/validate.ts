// Argument validation and Node's own error classes for the whole facade: the same checks, in the
// same order, with the same `code`, class and message text as Node 20's lib/internal/validators.js,
// lib/internal/errors.js and lib/internal/fs/utils.js. Argument errors are TypeError/RangeError
// with an ERR_* code; system errors (errors.ts) stay system errors.
//
// Stacks: every public function of the facade is wrapped by `publicApi` (index.ts), which re-aims
// the stack of any error it lets through at its caller, as Node's hideStackFrames does.
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_EXCL, O_SYNC, F_OK, R_OK, W_OK, X_OK } = fs.constants;
const { COPYFILE_EXCL, COPYFILE_FICLONE, COPYFILE_FICLONE_FORCE } = fs.constants;

// --- error classes --------------------------------------------------------------------------------

/** Marks errors built here (Node's kIsNodeError); publicApi re-aims their stacks. */
export const NODE_ERROR = Symbol('ovlfs.nodeError');

export type NodeError<E extends Error = Error> = E & { code: string };

type ErrorClass = new (message?: string) => Error;

/**
 * An error as Node's makeNodeErrorWithCode builds it: class `Base`, an own enumerable `code`, a
 * non-enumerable message, and a stack whose first line reads `TypeError [ERR_X]: message`.
 */
export function nodeError<E extends Error>(Base: new (message?: string) => E, code: string, message: string, caller?: Function): NodeError<E> {
  const err = new Base() as NodeError<E>;
  Object.defineProperty(err, 'message', { value: message, enumerable: false, writable: true, configurable: true });
  err.code = code;
  Object.defineProperty(err, NODE_ERROR, { value: true });
  // Node's errors print as `TypeError [ERR_X]: message`.
  Object.defineProperty(err, 'toString', { value: function toString(this: Error) { return `${this.name} [${code}]: ${this.message}`; }, enumerable: false, writable: true, configurable: true });
  restack(err, caller ?? nodeError);
  return err;
}

/** Recomputes `err.stack` so that it starts at the caller of `fn`, with Node's `Name [CODE]` header. */
export function restack(err: Error, fn: Function): void {
  const code = (err as { code?: unknown }).code;
  const isNode = (err as unknown as Record<symbol, unknown>)[NODE_ERROR] === true;
  if (isNode && typeof code === 'string') {
    // The header is taken from name and message when the stack is captured (Node's addCodeToName).
    const name = err.name;
    Object.defineProperty(err, 'name', { value: `${name} [${code}]`, configurable: true, writable: true, enumerable: false });
    Error.captureStackTrace(err, fn);
    // V8 formats the stack when it is first read: read it while the name still carries the code.
    void err.stack;
    delete (err as { name?: string }).name;
    if (err.name !== name) Object.defineProperty(err, 'name', { value: name, configurable: true, writable: true, enumerable: false });
  } else {
    Error.captureStackTrace(err, fn);
  }
}

export function isNodeError(err: unknown): err is NodeError {
  return err instanceof Error && (err as unknown as Record<symbol, unknown>)[NODE_ERROR] === true;
}

const classRegExp = /^[A-Z][a-zA-Z0-9]*$/;
const kTypes = ['string', 'function', 'number', 'object', 'Function', 'Object', 'boolean', 'bigint', 'symbol'];

function formatList(array: string[], type = 'and'): string {
  switch (array.length) {
    case 0: return '';
    case 1: return `${array[0]}`;
    case 2: return `${array[0]} ${type} ${array[1]}`;
    case 3: return `${array[0]}, ${array[1]}, ${type} ${array[2]}`;
    default: return `${array.slice(0, -1).join(', ')}, ${type} ${array[array.length - 1]}`;
  }
}

/** Node's determineSpecificType: the "Received …" part of ERR_INVALID_ARG_TYPE. */
export function describeReceived(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'bigint': return `type bigint (${value}n)`;
    case 'number':
      if (value === 0) return 1 / value === -Infinity ? 'type number (-0)' : 'type number (0)';
      if (value !== value) return 'type number (NaN)';
      if (value === Infinity) return 'type number (Infinity)';
      if (value === -Infinity) return 'type number (-Infinity)';
      return `type number (${value})`;
    case 'boolean': return value ? 'type boolean (true)' : 'type boolean (false)';
    case 'symbol': return `type symbol (${String(value)})`;
    case 'function': return `function ${value.name}`;
    case 'object': {
      const ctor = (value as { constructor?: { name?: string } }).constructor;
      if (ctor && 'name' in ctor) return `an instance of ${ctor.name}`;
      return inspect(value, { depth: -1 });
    }
    case 'string': {
      let s = value;
      if (s.length > 28) s = `${s.slice(0, 25)}...`;
      if (!s.includes("'")) return `type string ('${s}')`;
      return `type string (${JSON.stringify(s)})`;
    }
    default: {
      let s = inspect(value, { colors: false });
      if (s.length > 28) s = `${s.slice(0, 25)}...`;
      return `type ${typeof value} (${s})`;
    }
  }
}

export function ERR_INVALID_ARG_TYPE(name: string, expected: string | string[], actual: unknown): NodeError<TypeError> {
  const list = Array.isArray(expected) ? expected : [expected];
  let msg = 'The ';
  if (name.endsWith(' argument')) msg += `${name} `;
  else msg += `"${name}" ${name.includes('.') ? 'property' : 'argument'} `;
  msg += 'must be ';
  const types: string[] = [];
  const instances: string[] = [];
  const other: string[] = [];
  for (const value of list) {
    if (kTypes.includes(value)) types.push(value.toLowerCase());
    else if (classRegExp.test(value)) instances.push(value);
    else other.push(value);
  }
  if (instances.length > 0) {
    const pos = types.indexOf('object');
    if (pos !== -1) {
      types.splice(pos, 1);
      instances.push('Object');
    }
  }
  if (types.length > 0) {
    msg += `${types.length > 1 ? 'one of type' : 'of type'} ${formatList(types, 'or')}`;
    if (instances.length > 0 || other.length > 0) msg += ' or ';
  }
  if (instances.length > 0) {
    msg += `an instance of ${formatList(instances, 'or')}`;
    if (other.length > 0) msg += ' or ';
  }
  if (other.length > 0) {
    if (other.length > 1) msg += `one of ${formatList(other, 'or')}`;
    else {
      if (other[0].toLowerCase() !== other[0]) msg += 'an ';
      msg += `${other[0]}`;
    }
  }
  msg += `. Received ${describeReceived(actual)}`;
  return nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', msg);
}

export function ERR_INVALID_ARG_VALUE(name: string, value: unknown, reason = 'is invalid', Base: ErrorClass = TypeError): NodeError {
  let inspected = inspect(value);
  if (inspected.length > 128) inspected = `${inspected.slice(0, 128)}...`;
  const type = String(name).includes('.') ? 'property' : 'argument';
  return nodeError(Base, 'ERR_INVALID_ARG_VALUE', `The ${type} '${name}' ${reason}. Received ${inspected}`);
}

function addNumericalSeparator(val: string): string {
  let res = '';
  let i = val.length;
  const start = val[0] === '-' ? 1 : 0;
  for (; i >= start + 4; i -= 3) res = `_${val.slice(i - 3, i)}${res}`;
  return `${val.slice(0, i)}${res}`;
}

export function ERR_OUT_OF_RANGE(str: string, range: string, input: unknown, replaceDefaultBoolean = false): NodeError<RangeError> {
  let msg = replaceDefaultBoolean ? str : `The value of "${str}" is out of range.`;
  let received: string;
  if (Number.isInteger(input) && Math.abs(input as number) > 2 ** 32) {
    received = addNumericalSeparator(String(input));
  } else if (typeof input === 'bigint') {
    received = String(input);
    if (input > 2n ** 32n || input < -(2n ** 32n)) received = addNumericalSeparator(received);
    received += 'n';
  } else {
    received = inspect(input);
  }
  msg += ` It must be ${range}. Received ${received}`;
  return nodeError(RangeError, 'ERR_OUT_OF_RANGE', msg);
}

export function ERR_MISSING_ARGS(...args: Array<string | string[]>): NodeError<TypeError> {
  const wrap = (a: string): string => `"${a}"`;
  const names = args.map((a) => (Array.isArray(a) ? a.map(wrap).join(' or ') : wrap(a)));
  return nodeError(TypeError, 'ERR_MISSING_ARGS', `The ${formatList(names)} argument${args.length > 1 ? 's' : ''} must be specified`);
}

export function ERR_FS_FILE_TOO_LARGE(size: number | bigint): NodeError<RangeError> {
  return nodeError(RangeError, 'ERR_FS_FILE_TOO_LARGE', `File size (${size}) is greater than 2 GiB`);
}

export function ERR_FS_INVALID_SYMLINK_TYPE(type: unknown): NodeError {
  return nodeError(Error, 'ERR_FS_INVALID_SYMLINK_TYPE', `Symlink type must be one of "dir", "file", or "junction". Received "${String(type)}"`);
}

export function ERR_INCOMPATIBLE_OPTION_PAIR(a: string, b: string): NodeError<TypeError> {
  return nodeError(TypeError, 'ERR_INCOMPATIBLE_OPTION_PAIR', `Option "${a}" cannot be used in combination with option "${b}"`);
}

export function ERR_METHOD_NOT_IMPLEMENTED(method: string): NodeError {
  return nodeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', `The ${method} method is not implemented`);
}

export function ERR_INVALID_STATE(message: string, Base: ErrorClass = Error): NodeError {
  return nodeError(Base, 'ERR_INVALID_STATE', `Invalid state: ${message}`);
}

export function ERR_DIR_CLOSED(): NodeError {
  return nodeError(Error, 'ERR_DIR_CLOSED', 'Directory handle was closed');
}

export function ERR_DIR_CONCURRENT_OPERATION(): NodeError {
  return nodeError(Error, 'ERR_DIR_CONCURRENT_OPERATION', 'Cannot do synchronous work on directory handle with concurrent asynchronous operations');
}

export function ERR_ILLEGAL_CONSTRUCTOR(): NodeError<TypeError> {
  return nodeError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'Illegal constructor');
}

export function ERR_INVALID_THIS(type: string): NodeError<TypeError> {
  return nodeError(TypeError, 'ERR_INVALID_THIS', `Value of "this" must be of type ${type}`);
}

export function ERR_UNKNOWN_ENCODING(encoding: unknown): NodeError<TypeError> {
  return nodeError(TypeError, 'ERR_UNKNOWN_ENCODING', `Unknown encoding: ${String(encoding)}`);
}

/** Node's AbortError (not a NodeError: name 'AbortError', code 'ABORT_ERR'). */
export class AbortError extends Error {
  code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

export function abortError(signal: AbortSignal | undefined): AbortError {
  return new AbortError(undefined, { cause: signal?.reason });
}

/** Throws AbortError when `signal` has fired: called at every await point of an abortable call. */
export function checkAborted(signal: AbortSignal | null | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

// --- validators -----------------------------------------------------------------------------------

export function validateInteger(value: unknown, name: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): asserts value is number {
  if (typeof value !== 'number') throw ERR_INVALID_ARG_TYPE(name, 'number', value);
  if (!Number.isInteger(value)) throw ERR_OUT_OF_RANGE(name, 'an integer', value);
  if (value < min || value > max) throw ERR_OUT_OF_RANGE(name, `>= ${min} && <= ${max}`, value);
}

export function validateInt32(value: unknown, name: string, min = -2147483648, max = 2147483647): asserts value is number {
  if (typeof value !== 'number') throw ERR_INVALID_ARG_TYPE(name, 'number', value);
  if (!Number.isInteger(value)) throw ERR_OUT_OF_RANGE(name, 'an integer', value);
  if (value < min || value > max) throw ERR_OUT_OF_RANGE(name, `>= ${min} && <= ${max}`, value);
}

export function validateUint32(value: unknown, name: string, positive = false): asserts value is number {
  if (typeof value !== 'number') throw ERR_INVALID_ARG_TYPE(name, 'number', value);
  if (!Number.isInteger(value)) throw ERR_OUT_OF_RANGE(name, 'an integer', value);
  const min = positive ? 1 : 0;
  const max = 4_294_967_295;
  if (value < min || value > max) throw ERR_OUT_OF_RANGE(name, `>= ${min} && <= ${max}`, value);
}

export function validateString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw ERR_INVALID_ARG_TYPE(name, 'string', value);
}

export function validateNumber(value: unknown, name: string, min?: number, max?: number): asserts value is number {
  if (typeof value !== 'number') throw ERR_INVALID_ARG_TYPE(name, 'number', value);
  if ((min != null && value < min) || (max != null && value > max) || ((min != null || max != null) && Number.isNaN(value))) {
    throw ERR_OUT_OF_RANGE(name, `${min != null ? `>= ${min}` : ''}${min != null && max != null ? ' && ' : ''}${max != null ? `<= ${max}` : ''}`, value);
  }
}

export function validateBoolean(value: unknown, name: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw ERR_INVALID_ARG_TYPE(name, 'boolean', value);
}

export function validateOneOf(value: unknown, name: string, oneOf: readonly unknown[]): void {
  if (!oneOf.includes(value)) {
    const allowed = oneOf.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ');
    throw ERR_INVALID_ARG_VALUE(name, value, 'must be one of: ' + allowed);
  }
}

export const kValidateObjectAllowNullable = 1;
export const kValidateObjectAllowArray = 2;
export const kValidateObjectAllowFunction = 4;

export function validateObject(value: unknown, name: string, options = 0): asserts value is Record<string, unknown> {
  if (options === 0) {
    if (value === null || Array.isArray(value) || typeof value !== 'object') throw ERR_INVALID_ARG_TYPE(name, 'Object', value);
    return;
  }
  if ((options & kValidateObjectAllowNullable) === 0 && value === null) throw ERR_INVALID_ARG_TYPE(name, 'Object', value);
  if ((options & kValidateObjectAllowArray) === 0 && Array.isArray(value)) throw ERR_INVALID_ARG_TYPE(name, 'Object', value);
  const t = typeof value;
  if (t !== 'object' && ((options & kValidateObjectAllowFunction) === 0 || t !== 'function')) throw ERR_INVALID_ARG_TYPE(name, 'Object', value);
}

export function validateFunction(value: unknown, name: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw ERR_INVALID_ARG_TYPE(name, 'Function', value);
}

export function validateArray(value: unknown, name: string, minLength = 0): asserts value is unknown[] {
  if (!Array.isArray(value)) throw ERR_INVALID_ARG_TYPE(name, 'Array', value);
  if (value.length < minLength) throw ERR_INVALID_ARG_VALUE(name, value, `must be longer than ${minLength}`);
}

export function validateAbortSignal(signal: unknown, name: string): asserts signal is AbortSignal | undefined {
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || !('aborted' in signal))) {
    throw ERR_INVALID_ARG_TYPE(name, 'AbortSignal', signal);
  }
}

export function validateBuffer(buffer: unknown, name = 'buffer'): asserts buffer is NodeJS.ArrayBufferView {
  if (!ArrayBuffer.isView(buffer)) throw ERR_INVALID_ARG_TYPE(name, ['Buffer', 'TypedArray', 'DataView'], buffer);
}

/** The callback of a callback form (Node 20: ERR_INVALID_ARG_TYPE on "cb"). */
export function makeCallback<F>(cb: F): F & ((...args: never[]) => unknown) {
  validateFunction(cb, 'cb');
  return cb;
}

// --- fs-specific ----------------------------------------------------------------------------------

const octalReg = /^[0-7]+$/;
const modeDesc = 'must be a 32-bit unsigned integer or an octal string';

export function parseFileMode(value: unknown, name: string, def?: number): number {
  value ??= def;
  if (typeof value === 'string') {
    if (!octalReg.test(value)) throw ERR_INVALID_ARG_VALUE(name, value, modeDesc);
    value = Number.parseInt(value, 8);
  }
  validateUint32(value, name);
  return value;
}

function isURL(x: unknown): x is URL {
  return x != null && typeof x === 'object' && typeof (x as URL).href === 'string' && typeof (x as URL).protocol === 'string' &&
    (x as { auth?: unknown }).auth === undefined && (x as { path?: unknown }).path === undefined;
}

export function toPathIfFileURL(p: unknown): unknown {
  if (!isURL(p)) return p;
  return fileURLToPath(p);
}

/** Node's validatePath after toPathIfFileURL: a string or Uint8Array without NUL bytes. */
export function getValidatedPath(fileURLOrPath: unknown, propName = 'path'): string | Buffer {
  const p = toPathIfFileURL(fileURLOrPath);
  if (typeof p !== 'string' && !(p instanceof Uint8Array)) throw ERR_INVALID_ARG_TYPE(propName, ['string', 'Buffer', 'URL'], p);
  if (typeof p === 'string' ? p.includes('\u0000') : p.includes(0)) {
    throw ERR_INVALID_ARG_VALUE(propName, p, 'must be a string, Uint8Array, or URL without null bytes');
  }
  return typeof p === 'string' ? p : Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

export function getValidatedFd(fd: unknown, propName = 'fd'): number {
  if (Object.is(fd, -0)) return 0;
  validateInt32(fd, propName, 0);
  return fd;
}

/** Node's stringToFlags. */
export function stringToFlags(flags: unknown, name = 'flags'): number {
  if (typeof flags === 'number') {
    validateInt32(flags, name);
    return flags;
  }
  if (flags == null) return O_RDONLY;
  switch (flags) {
    case 'r': return O_RDONLY;
    case 'rs': case 'sr': return O_RDONLY | O_SYNC;
    case 'r+': return O_RDWR;
    case 'rs+': case 'sr+': return O_RDWR | O_SYNC;
    case 'w': return O_TRUNC | O_CREAT | O_WRONLY;
    case 'wx': case 'xw': return O_TRUNC | O_CREAT | O_WRONLY | O_EXCL;
    case 'w+': return O_TRUNC | O_CREAT | O_RDWR;
    case 'wx+': case 'xw+': return O_TRUNC | O_CREAT | O_RDWR | O_EXCL;
    case 'a': return O_APPEND | O_CREAT | O_WRONLY;
    case 'ax': case 'xa': return O_APPEND | O_CREAT | O_WRONLY | O_EXCL;
    case 'as': case 'sa': return O_APPEND | O_CREAT | O_WRONLY | O_SYNC;
    case 'a+': return O_APPEND | O_CREAT | O_RDWR;
    case 'ax+': case 'xa+': return O_APPEND | O_CREAT | O_RDWR | O_EXCL;
    case 'as+': case 'sa+': return O_APPEND | O_CREAT | O_RDWR | O_SYNC;
  }
  throw ERR_INVALID_ARG_VALUE('flags', flags);
}

/** Symlink types: a string must be 'dir', 'file' or 'junction'; anything that is not a string is ignored. */
export function validateSymlinkType(type: unknown): void {
  if (typeof type === 'string' && type !== 'dir' && type !== 'file' && type !== 'junction') throw ERR_FS_INVALID_SYMLINK_TYPE(type);
}

/** Node's toUnixTimestamp, in seconds; a negative number means "now" (as Node has it), a Date is exact. */
export function toUnixTimestamp(time: unknown, name = 'time'): number {
  if (typeof time === 'string' && +time == (time as unknown as number)) return +time;
  if (typeof time === 'number' && Number.isFinite(time)) {
    if (time < 0) return Date.now() / 1000;
    return time;
  }
  if (time instanceof Date) return time.getTime() / 1000;
  throw ERR_INVALID_ARG_TYPE(name, ['Date', 'Time in seconds'], time);
}

export function validateOffsetLengthRead(offset: number, length: number, bufferLength: number): void {
  if (offset < 0) throw ERR_OUT_OF_RANGE('offset', '>= 0', offset);
  if (length < 0) throw ERR_OUT_OF_RANGE('length', '>= 0', length);
  if (offset + length > bufferLength) throw ERR_OUT_OF_RANGE('length', `<= ${bufferLength - offset}`, length);
}

export function validateOffsetLengthWrite(offset: number, length: number, byteLength: number): void {
  if (offset > byteLength) throw ERR_OUT_OF_RANGE('offset', `<= ${byteLength}`, offset);
  if (length > byteLength - offset) throw ERR_OUT_OF_RANGE('length', `<= ${byteLength - offset}`, length);
  if (length < 0) throw ERR_OUT_OF_RANGE('length', '>= 0', length);
  validateInt32(length, 'length', 0);
}

export function validatePosition(position: unknown, name: string): asserts position is number | bigint {
  if (typeof position === 'number') {
    validateInteger(position, name, -1);
  } else if (typeof position === 'bigint') {
    if (!(position >= -(2n ** 63n) && position <= 2n ** 63n - 1n)) {
      throw ERR_OUT_OF_RANGE(name, `>= ${-(2n ** 63n)} && <= ${2n ** 63n - 1n}`, position);
    }
  } else {
    throw ERR_INVALID_ARG_TYPE(name, ['integer', 'bigint'], position);
  }
}

export function validateBufferArray(buffers: unknown, propName = 'buffers'): NodeJS.ArrayBufferView[] {
  if (!Array.isArray(buffers)) throw ERR_INVALID_ARG_TYPE(propName, 'ArrayBufferView[]', buffers);
  for (const b of buffers) if (!ArrayBuffer.isView(b)) throw ERR_INVALID_ARG_TYPE(propName, 'ArrayBufferView[]', buffers);
  return buffers as NodeJS.ArrayBufferView[];
}

export function validateStringAfterArrayBufferView(buffer: unknown, name: string): asserts buffer is string {
  if (typeof buffer !== 'string') throw ERR_INVALID_ARG_TYPE(name, ['string', 'Buffer', 'TypedArray', 'DataView'], buffer);
}

export function assertEncoding(encoding: unknown): void {
  if (encoding && !Buffer.isEncoding(encoding as string)) {
    throw ERR_INVALID_ARG_VALUE('encoding', encoding, 'is invalid encoding');
  }
}

export interface FsOptions {
  encoding?: BufferEncoding | 'buffer' | null;
  flag?: string | number;
  mode?: number | string;
  signal?: AbortSignal;
  [key: string]: unknown;
}

/** Node's getOptions: a string is the encoding, an object is checked, a function or nullish is the default. */
export function getOptions<T extends object = FsOptions>(options: unknown, defaultOptions: T = {} as T): T & FsOptions {
  if (options == null || typeof options === 'function') return defaultOptions as T & FsOptions;
  let o: FsOptions;
  if (typeof options === 'string') {
    o = { ...defaultOptions, encoding: options as BufferEncoding };
  } else if (typeof options !== 'object') {
    throw ERR_INVALID_ARG_TYPE('options', ['string', 'Object'], options);
  } else {
    o = options as FsOptions;
  }
  if (o.encoding !== 'buffer') assertEncoding(o.encoding);
  if (o.signal !== undefined) validateAbortSignal(o.signal, 'options.signal');
  return o as T & FsOptions;
}

const kMinimumAccessMode = Math.min(F_OK, W_OK, R_OK, X_OK);
const kMaximumAccessMode = F_OK | W_OK | R_OK | X_OK;
const kMinimumCopyMode = Math.min(0, COPYFILE_EXCL, COPYFILE_FICLONE, COPYFILE_FICLONE_FORCE);
const kMaximumCopyMode = COPYFILE_EXCL | COPYFILE_FICLONE | COPYFILE_FICLONE_FORCE;

export function getValidMode(mode: unknown, type: 'access' | 'copyFile'): number {
  let min = kMinimumAccessMode;
  let max = kMaximumAccessMode;
  let def = F_OK;
  if (type === 'copyFile') {
    min = kMinimumCopyMode;
    max = kMaximumCopyMode;
    def = (mode as number) || 0;
  }
  if (mode == null) return def;
  validateInteger(mode, 'mode', min, max);
  return mode;
}

export interface RmdirOptions { recursive: boolean; retryDelay: number; maxRetries: number; force?: boolean }

export function validateRmdirOptions(options: unknown, defaults: RmdirOptions = { retryDelay: 100, maxRetries: 0, recursive: false }): RmdirOptions {
  if (options === undefined) return defaults;
  validateObject(options, 'options');
  const o = { ...defaults, ...options } as RmdirOptions;
  validateBoolean(o.recursive, 'options.recursive');
  validateInt32(o.retryDelay, 'options.retryDelay', 0);
  validateUint32(o.maxRetries, 'options.maxRetries');
  return o;
}

export function validateRmOptionsShape(options: unknown): RmdirOptions & { force: boolean } {
  const o = validateRmdirOptions(options, { recursive: false, force: false, retryDelay: 100, maxRetries: 0 }) as RmdirOptions & { force: boolean };
  validateBoolean(o.force, 'options.force');
  return o;
}

export interface CpOptions {
  dereference: boolean; errorOnExist: boolean; filter?: (src: string, dest: string) => unknown; force: boolean;
  preserveTimestamps: boolean; recursive: boolean; verbatimSymlinks: boolean; mode: number;
}

export function validateCpOptions(options: unknown): CpOptions {
  const defaults = { dereference: false, errorOnExist: false, filter: undefined, force: true, preserveTimestamps: false, recursive: false, verbatimSymlinks: false, mode: 0 };
  if (options === undefined) return { ...defaults };
  validateObject(options, 'options');
  const o = { ...defaults, ...options } as CpOptions;
  validateBoolean(o.dereference, 'options.dereference');
  validateBoolean(o.errorOnExist, 'options.errorOnExist');
  validateBoolean(o.force, 'options.force');
  validateBoolean(o.preserveTimestamps, 'options.preserveTimestamps');
  validateBoolean(o.recursive, 'options.recursive');
  validateBoolean(o.verbatimSymlinks, 'options.verbatimSymlinks');
  o.mode = getValidMode(o.mode, 'copyFile');
  if (o.dereference && o.verbatimSymlinks) throw ERR_INCOMPATIBLE_OPTION_PAIR('dereference', 'verbatimSymlinks');
  if (o.filter !== undefined) validateFunction(o.filter, 'options.filter');
  return o;
}

let recursiveRmdirWarned = false;

/** DEP0147, once per process, as Node emits it. */
export function emitRecursiveRmdirWarning(): void {
  if (recursiveRmdirWarned || process.noDeprecation) return;
  recursiveRmdirWarned = true;
  process.emitWarning(
    'In future versions of Node.js, fs.rmdir(path, { recursive: true }) will be removed. Use fs.rm(path, { recursive: true }) instead',
    'DeprecationWarning',
    'DEP0147',
  );
}

/** Node's kIoMaxLength: the largest single read or write. */
export const kIoMaxLength = 2 ** 31 - 1;

/** Wraps a public function so that any error it throws has a stack starting at its caller. */
export function publicApi<F extends (...args: never[]) => unknown>(fn: F, name = fn.name): F {
  const wrapped = function (this: unknown, ...args: never[]): unknown {
    try {
      return fn.apply(this, args);
    } catch (err) {
      if (err instanceof Error && (isNodeError(err) || typeof (err as { syscall?: unknown }).syscall === 'string')) restack(err, wrapped);
      throw err;
    }
  };
  Object.defineProperty(wrapped, 'name', { value: name });
  Object.defineProperty(wrapped, 'length', { value: fn.length });
  return wrapped as unknown as F;
}

/** Node's largest user or group id (uid/gid arguments). */
export const kMaxUserId = 2 ** 32 - 1;

/** The binding's own fd check (GetValidatedFd in node's C++), used where lib/fs.js leaves it to the binding. */
export function getValidatedFdNative(fd: unknown): number {
  if (typeof fd !== 'number') {
    throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "fd" argument must be of type number. Received ${describeReceived(fd)}`);
  }
  const outOfRange = fd < 0 || fd > 2147483647;
  if (outOfRange || !Number.isSafeInteger(fd)) {
    if (outOfRange && Number.isFinite(fd)) {
      throw nodeError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "fd" is out of range. It must be >= 0 && <= 2147483647. Received ${String(fd)}`);
    }
    throw nodeError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "fd" is out of range. It must be an integer. Received ${String(fd)}`);
  }
  return fd;
}

/** The binding's mode check for access and copyFile (GetValidFileMode in node's C++). */
export function getValidFileModeNative(mode: unknown, type: 'access' | 'copyFile'): number {
  if (typeof mode === 'number') {
    if (!Number.isFinite(mode)) throw nodeError(RangeError, 'ERR_OUT_OF_RANGE', 'mode is out of range');
  } else if (mode != null) {
    throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'mode must be int32 or null/undefined');
  }
  const min = type === 'copyFile' ? kMinimumCopyMode : kMinimumAccessMode;
  const max = type === 'copyFile' ? kMaximumCopyMode : kMaximumAccessMode;
  if (mode == null) return type === 'copyFile' ? 0 : F_OK;
  const m = (mode as number) | 0;
  if (m < min || m > max) throw nodeError(RangeError, 'ERR_OUT_OF_RANGE', `mode is out of range: >= ${min} && <= ${max}`);
  return m;
}

/** Node's validateEncoding: hex data must have an even length. */
export function validateEncoding(data: string, encoding: unknown): void {
  const normalized = typeof encoding === 'string' ? encoding.toLowerCase() : encoding;
  if (normalized === 'hex' && data.length % 2 !== 0) {
    throw ERR_INVALID_ARG_VALUE('encoding', encoding, `is invalid for data of length ${data.length}`);
  }
}

let nonPortableTemplateWarned = false;

/** mkdtemp templates ending in X get Node's one-time portability warning. */
export function warnOnNonPortableTemplate(template: string | Buffer): void {
  if (nonPortableTemplateWarned) return;
  if ((typeof template === 'string' && template.endsWith('X')) || (typeof template !== 'string' && template.at(-1) === 0x58)) {
    process.emitWarning('mkdtemp() templates ending with X are not portable. For details see: https://nodejs.org/api/fs.html');
    nonPortableTemplateWarned = true;
  }
}
