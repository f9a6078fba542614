// The argument shapes of read and write that node:fs accepts in its callback and FileHandle forms,
// reduced to the one positional shape SyncFs.readSync/writeSync take.

export interface ReadArgs {
  buffer: NodeJS.ArrayBufferView;
  offset: number;
  length: number;
  position: number | bigint | null;
}

interface ReadParams {
  buffer?: NodeJS.ArrayBufferView;
  offset?: number | null;
  length?: number | null;
  position?: number | bigint | null;
}

function isView(x: unknown): x is NodeJS.ArrayBufferView {
  return ArrayBuffer.isView(x);
}

function asParams(x: unknown): ReadParams {
  return x !== null && typeof x === 'object' ? (x as ReadParams) : {};
}

/**
 * read(buffer, offset?, length?, position?), read(buffer, { offset, length, position }) and
 * read({ buffer, offset, length, position }), with Node's defaults (a 16 KiB buffer, offset 0, the
 * rest of the buffer, the current position).
 */
export function readArgs(bufferOrParams: unknown, offsetOrParams?: unknown, length?: unknown, position?: unknown): ReadArgs {
  let buffer: NodeJS.ArrayBufferView;
  let params: ReadParams;
  if (isView(bufferOrParams)) {
    buffer = bufferOrParams;
    params = offsetOrParams !== null && typeof offsetOrParams === 'object'
      ? asParams(offsetOrParams)
      : { offset: offsetOrParams as number | null | undefined, length: length as number | null | undefined, position: position as number | bigint | null | undefined };
  } else {
    params = asParams(bufferOrParams);
    buffer = params.buffer ?? Buffer.alloc(16384);
  }
  const offset = typeof params.offset === 'number' ? params.offset : 0;
  const len = typeof params.length === 'number' ? params.length : buffer.byteLength - offset;
  const pos = typeof params.position === 'number' || typeof params.position === 'bigint' ? params.position : null;
  return { buffer, offset, length: len, position: pos };
}

export interface WriteArgs {
  data: NodeJS.ArrayBufferView | string;
  /** For a buffer: offset; for a string: position. */
  a: number | null;
  /** For a buffer: length; for a string: encoding. */
  b: number | BufferEncoding | null;
  /** For a buffer: position. */
  c: number | null;
}

/**
 * write(buffer, offset?, length?, position?), write(buffer, { offset, length, position }) and
 * write(string, position?, encoding?), in SyncFs.writeSync's positional form.
 */
export function writeArgs(data: unknown, a?: unknown, b?: unknown, c?: unknown): WriteArgs {
  if (isView(data)) {
    let offset = a;
    let length = b;
    let position = c;
    if (a !== null && typeof a === 'object') ({ offset, length, position } = a as ReadParams);
    const off = typeof offset === 'number' ? offset : 0;
    return {
      data,
      a: off,
      b: typeof length === 'number' ? length : data.byteLength - off,
      c: typeof position === 'number' ? position : null,
    };
  }
  if (typeof data !== 'string') {
    const err = new TypeError(`The "buffer" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${data === null ? 'null' : typeof data}`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  return {
    data,
    a: typeof a === 'number' ? a : null,
    b: typeof b === 'string' ? (b as BufferEncoding) : 'utf8',
    c: null,
  };
}
