// The tar header (POSIX ustar, with pax extended headers), read and written byte by byte.
//
// Our own codec, not a library's: an OCI layer carries binary xattr values (security.capability)
// in pax records, which must survive byte for byte both ways, and a layer we write must be the same
// bytes every time (fixed field formatting, sub-second mtimes in pax, records in a fixed order).

export const BLOCK = 512;

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One entry as a layer sees it: the pax and GNU long-name records already applied. */
export interface TarEntry {
  /** The name as the archive spells it (not normalised). */
  path: string;
  type: TarType;
  /** Permission bits (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow the header (regular files only; 0 otherwise). */
  size: number;
  mtimeNs: bigint;
  atimeNs?: bigint;
  /** Symlink target, or the hard link's target path. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** SCHILY.xattr.* records: name to raw value. */
  xattrs: Map<string, Buffer>;
}

const TYPE_BY_FLAG: Record<string, TarType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};
const FLAG_BY_TYPE: Record<TarType, string> = {
  file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6',
};
/** Entry kinds a layer cannot hold, by typeflag, for the error that refuses them. */
const UNSUPPORTED: Record<string, string> = {
  S: 'GNU sparse file', D: 'GNU dump directory', M: 'GNU multi-volume continuation', V: 'GNU volume label', N: 'GNU old long name',
};

/** What precedes an entry's own header: pax records, GNU long names, or nothing yet. */
export type RawHeader =
  | { kind: 'entry'; flag: string; name: string; linkname: string; mode: number; uid: number; gid: number; size: number; mtime: bigint; devmajor: number; devminor: number }
  | { kind: 'pax' | 'pax-global' | 'gnu-long-name' | 'gnu-long-link'; size: number; name: string };

export class TarFormatError extends Error {}

function cString(block: Buffer, offset: number, length: number): string {
  const end = block.indexOf(0, offset);
  return block.toString('utf8', offset, end < 0 || end > offset + length ? offset + length : end);
}

/** An octal field, or base-256 (high bit set, as GNU and Go write numbers too big for octal). */
function numeric(block: Buffer, offset: number, length: number, field: string): bigint {
  const first = block[offset]!;
  if (first & 0x80) {
    const negative = first === 0xff;
    let value = BigInt(first & 0x7f);
    for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(block[offset + i]!);
    return negative ? value - (1n << BigInt(8 * length - 1)) : value;
  }
  const text = block.toString('latin1', offset, offset + length).replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '');
  if (text === '') return 0n;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`invalid ${field} field ${JSON.stringify(text)} in tar header`);
  return BigInt('0o' + text);
}

function small(value: bigint, field: string): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError(`${field} out of range in tar header`);
  return Number(value);
}

/** Decodes one header block: null for an all-zero block (the end of the archive). */
export function decodeHeader(block: Buffer): RawHeader | null {
  let sum = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    sum += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (block.every((b) => b === 0)) return null;
  const stored = Number(numeric(block, 148, 8, 'checksum'));
  if (stored !== sum && stored !== signed) throw new TarFormatError('bad tar header checksum (not a tar, or a compressed or corrupt one)');
  const flag = String.fromCharCode(block[156]!);
  let name = cString(block, 0, 100);
  // ustar (not GNU's "ustar  ", whose bytes there mean something else) splits long names into prefix and name.
  if (block.toString('latin1', 257, 263) === 'ustar\0' && block[345] !== 0) name = `${cString(block, 345, 155)}/${name}`;
  const size = small(numeric(block, 124, 12, 'size'), 'size');
  switch (flag) {
    case 'x': return { kind: 'pax', size, name };
    case 'g': return { kind: 'pax-global', size, name };
    case 'L': return { kind: 'gnu-long-name', size, name };
    case 'K': return { kind: 'gnu-long-link', size, name };
  }
  if (UNSUPPORTED[flag] !== undefined) throw new TarFormatError(`${UNSUPPORTED[flag]} entries are not supported ('${name}')`);
  if (TYPE_BY_FLAG[flag] === undefined) throw new TarFormatError(`unknown tar entry type ${JSON.stringify(flag)} ('${name}')`);
  return {
    kind: 'entry',
    flag,
    name,
    linkname: cString(block, 157, 100),
    mode: Number(numeric(block, 100, 8, 'mode') & 0o7777n),
    uid: small(numeric(block, 108, 8, 'uid'), 'uid'),
    gid: small(numeric(block, 116, 8, 'gid'), 'gid'),
    size,
    mtime: numeric(block, 136, 12, 'mtime'),
    devmajor: small(numeric(block, 329, 8, 'devmajor'), 'devmajor'),
    devminor: small(numeric(block, 337, 8, 'devminor'), 'devminor'),
  };
}

/** Splits pax records ("LEN KEY=VALUE\n"); values stay bytes, as xattr values are binary. */
export function decodePax(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    const length = space < 0 ? NaN : Number(data.toString('latin1', pos, space));
    if (!Number.isInteger(length) || length <= 0 || pos + length > data.length || data[pos + length - 1] !== 0x0a) {
      // Some writers pad the record block with NULs.
      if (data.subarray(pos).every((b) => b === 0)) break;
      throw new TarFormatError('malformed pax extended header record');
    }
    const equals = data.indexOf(0x3d, space + 1);
    if (equals < 0 || equals >= pos + length) throw new TarFormatError('malformed pax extended header record');
    records.set(data.toString('utf8', space + 1, equals), data.subarray(equals + 1, pos + length - 1));
    pos += length;
  }
  return records;
}

/** A pax time ("1700000000.5", "-1.25") in nanoseconds. */
export function parsePaxTime(text: string, key: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (m === null) throw new TarFormatError(`invalid pax ${key} ${JSON.stringify(text)}`);
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  return m[1] === '-' ? -ns : ns;
}

/** Builds the entry from its header and the pax records (global first, then its own) that precede it. */
export function applyRecords(raw: Extract<RawHeader, { kind: 'entry' }>, pax: Map<string, Buffer>, longName?: string, longLink?: string): TarEntry {
  let type = TYPE_BY_FLAG[raw.flag]!;
  const text = (key: string): string | undefined => {
    const value = pax.get(key);
    return value === undefined || value.length === 0 ? undefined : value.toString('utf8');
  };
  const decimal = (key: string, fallback: number): number => {
    const value = text(key);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new TarFormatError(`invalid pax ${key} ${JSON.stringify(value)}`);
    return Number(value);
  };
  for (const key of pax.keys()) {
    if (key.startsWith('GNU.sparse.')) throw new TarFormatError(`GNU sparse file entries are not supported ('${raw.name}')`);
  }
  const path = text('path') ?? longName ?? raw.name;
  // Old tars mark directories only by a trailing slash.
  if (type === 'file' && raw.flag !== '7' && path.endsWith('/')) type = 'dir';
  const mtime = text('mtime');
  const atime = text('atime');
  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of pax) {
    if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice('SCHILY.xattr.'.length), value);
  }
  const entry: TarEntry = {
    path,
    type,
    mode: raw.mode,
    uid: decimal('uid', raw.uid),
    gid: decimal('gid', raw.gid),
    size: decimal('size', raw.size),
    mtimeNs: mtime !== undefined ? parsePaxTime(mtime, 'mtime') : raw.mtime * 1_000_000_000n,
    linkname: text('linkpath') ?? longLink ?? raw.linkname,
    devmajor: raw.devmajor,
    devminor: raw.devminor,
    xattrs,
  };
  if (atime !== undefined) entry.atimeNs = parsePaxTime(atime, 'atime');
  return entry;
}

// --- writing --------------------------------------------------------------------------------------

/** What the writer needs of an entry (never an atime); xattrs in the order they are to be written. */
export type TarHeaderInput = Pick<TarEntry, 'path' | 'type' | 'mode' | 'uid' | 'gid' | 'size' | 'mtimeNs'>
  & Partial<Pick<TarEntry, 'linkname' | 'devmajor' | 'devminor'>>
  & { xattrs?: ReadonlyArray<readonly [string, Buffer]> };

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/** A field of `width` bytes: octal digits padded with zeros, then a NUL. */
function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  // The length counts its own digits.
  let length = body.length + 1;
  while (String(length).length + body.length > length) length++;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

function paxTime(ns: bigint): string {
  const negative = ns < 0n;
  const abs = negative ? -ns : ns;
  const fraction = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${abs / 1_000_000_000n}${fraction === '' ? '' : '.' + fraction}`;
}

/** Printable ASCII that fits the field: otherwise the value goes in a pax record. */
function fitsField(value: string, width: number): boolean {
  return /^[\x20-\x7e]*$/.test(value) && value.length <= width;
}

function header(name: string, flag: string, fields: { mode: number; uid: number; gid: number; size: number; mtime: number; linkname: string; devmajor: number; devminor: number }): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'latin1');
  block.write(octal(fields.mode, 8), 100, 'latin1');
  block.write(octal(fields.uid, 8), 108, 'latin1');
  block.write(octal(fields.gid, 8), 116, 'latin1');
  block.write(octal(fields.size, 12), 124, 'latin1');
  block.write(octal(fields.mtime, 12), 136, 'latin1');
  block.write(flag, 156, 'latin1');
  block.write(fields.linkname, 157, 100, 'latin1');
  block.write('ustar\x0000', 257, 'latin1');
  block.write(octal(fields.devmajor, 8), 329, 'latin1');
  block.write(octal(fields.devminor, 8), 337, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return block;
}

/** Zero bytes up to the next block boundary after `size` bytes of data. */
export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

/**
 * The header of one entry, preceded by a pax header when a value does not fit ustar's fields
 * (long or non-ASCII names, big ids or sizes, sub-second or out-of-range mtimes, xattrs).
 * The same input always gives the same bytes: no uname/gname, no atime or ctime.
 */
export function encodeHeader(entry: TarHeaderInput): Buffer {
  const records: Array<[string, Buffer]> = [];
  const name = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  const linkname = entry.linkname ?? '';
  const seconds = entry.mtimeNs / 1_000_000_000n - (entry.mtimeNs % 1_000_000_000n < 0n ? 1n : 0n);
  const exactSeconds = entry.mtimeNs % 1_000_000_000n === 0n;
  const mtimeFits = seconds >= 0n && seconds <= BigInt(MAX_OCTAL_11);
  if (!fitsField(name, 100)) records.push(['path', Buffer.from(name)]);
  if (!fitsField(linkname, 100)) records.push(['linkpath', Buffer.from(linkname)]);
  if (entry.uid > MAX_OCTAL_7) records.push(['uid', Buffer.from(String(entry.uid))]);
  if (entry.gid > MAX_OCTAL_7) records.push(['gid', Buffer.from(String(entry.gid))]);
  if (entry.size > MAX_OCTAL_11) records.push(['size', Buffer.from(String(entry.size))]);
  if (!exactSeconds || !mtimeFits) records.push(['mtime', Buffer.from(paxTime(entry.mtimeNs))]);
  for (const [xname, value] of entry.xattrs ?? []) records.push([`SCHILY.xattr.${xname}`, value]);
  const fields = {
    mode: entry.mode & 0o7777,
    uid: entry.uid > MAX_OCTAL_7 ? 0 : entry.uid,
    gid: entry.gid > MAX_OCTAL_7 ? 0 : entry.gid,
    size: entry.size > MAX_OCTAL_11 ? 0 : entry.size,
    mtime: mtimeFits ? Number(seconds) : 0,
    linkname: fitsField(linkname, 100) ? linkname : '',
    devmajor: entry.devmajor ?? 0,
    devminor: entry.devminor ?? 0,
  };
  // A reader that ignores pax still gets a harmless, printable name.
  const ustarName = fitsField(name, 100) ? name : name.replace(/[^\x20-\x7e]/g, '_').slice(-100);
  const main = header(ustarName, FLAG_BY_TYPE[entry.type], fields);
  if (records.length === 0) return main;
  const body = Buffer.concat(records.map(([key, value]) => paxRecord(key, value)));
  const paxName = `PaxHeaders/${ustarName}`.slice(0, 100);
  const paxHeader = header(paxName, 'x', { mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, linkname: '', devmajor: 0, devminor: 0 });
  return Buffer.concat([paxHeader, body, padding(body.length), main]);
}
