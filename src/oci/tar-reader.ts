// Reads a tar stream entry by entry: each entry with an iterator over its data, which must be
// consumed (or is skipped) before the next entry is read. Nothing is buffered beyond one entry's
// headers, so a layer of any size streams through in constant memory.
import {
  BLOCK, TarFormatError, applyRecords, decodeHeader, decodePax, padding, type RawHeader, type TarEntry,
} from './tar-header.js';

/** pax and GNU long-name records are held in memory: a bigger one is not a layer, it is an attack. */
const MAX_RECORD_BYTES = 1 << 20;

/** Pulls exact byte counts out of a stream of chunks. */
class ByteSource {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  /** Bytes consumed so far, for messages. */
  offset = 0;
  constructor(private readonly input: AsyncIterator<unknown>) {}

  /** Buffers at least n bytes; false when the stream ends first. */
  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.done) {
      const next = await this.input.next();
      if (next.done) {
        this.done = true;
        break;
      }
      const value = next.value;
      const chunk = typeof value === 'string' ? Buffer.from(value) : Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array);
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    return this.buffered >= n;
  }

  /** Up to n bytes (at least one), without copying when a chunk holds them. */
  private takeUpTo(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length <= n) {
      this.chunks.shift();
      out = first;
    } else {
      out = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    }
    this.buffered -= out.length;
    this.offset += out.length;
    return out;
  }

  /** Exactly n bytes; null when the stream ended cleanly before any of them; an error if it ended partway. */
  async read(n: number, what: string): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.buffered === 0) return null;
      throw new TarFormatError(`truncated tar: the stream ends inside ${what}`);
    }
    const parts: Buffer[] = [];
    let missing = n;
    while (missing > 0) {
      const part = this.takeUpTo(missing);
      parts.push(part);
      missing -= part.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Reads the stream to its end, discarding it. */
  async drain(): Promise<void> {
    this.chunks.length = 0;
    this.buffered = 0;
    while (!this.done) {
      if ((await this.input.next()).done) this.done = true;
    }
  }

  /** Up to n bytes (at least one, n > 0) as they arrive. */
  async chunk(n: number, what: string): Promise<Buffer> {
    if (!(await this.fill(1))) throw new TarFormatError(`truncated tar: the stream ends inside ${what}`);
    return this.takeUpTo(n);
  }
}

export interface TarReadEntry {
  entry: TarEntry;
  /** The entry's data; read it before asking for the next entry, or it is skipped. */
  data: AsyncIterable<Buffer>;
}

/**
 * The entries of an uncompressed tar stream, in archive order. A stream that is not a tar, is cut
 * short, or ends without the end-of-archive blocks throws a TarFormatError that says where.
 */
export async function* readTar(input: AsyncIterable<unknown>): AsyncGenerator<TarReadEntry> {
  const source = new ByteSource(input[Symbol.asyncIterator]());
  let globalPax = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await source.read(BLOCK, 'a header');
    if (block === null) throw new TarFormatError('truncated tar: no end-of-archive marker');
    let raw: RawHeader | null;
    try {
      raw = decodeHeader(block);
    } catch (err) {
      if (err instanceof TarFormatError) err.message += ` at byte ${source.offset - BLOCK}`;
      throw err;
    }
    // Zero blocks end the archive. What follows them (record padding) is read to the end and
    // dropped, as tar(1) reads whole records: whoever feeds the stream sees it consumed.
    if (raw === null) {
      // A second block must be zero too or missing, as Go's archive/tar (containerd, Docker) wants
      // it: entries hidden after a lone zero block are an error, not something to skip quietly.
      const second = await source.read(BLOCK, 'the end-of-archive marker');
      if (second !== null && !second.every((b) => b === 0)) {
        throw new TarFormatError(`data after a zero block at byte ${source.offset - 2 * BLOCK}: not an end-of-archive marker`);
      }
      await source.drain();
      return;
    }
    if (raw.kind !== 'entry') {
      if (raw.size > MAX_RECORD_BYTES) throw new TarFormatError(`tar ${raw.kind} record of ${raw.size} bytes is too big`);
      const body = (await source.read(raw.size, `the ${raw.kind} record`)) ?? Buffer.alloc(0);
      await source.read(padding(raw.size).length, `the ${raw.kind} record`);
      if (raw.kind === 'pax') pax = decodePax(body);
      else if (raw.kind === 'pax-global') globalPax = new Map([...globalPax, ...decodePax(body)]);
      else if (raw.kind === 'gnu-long-name') longName = body.toString('utf8').replace(/\0.*$/s, '');
      else longLink = body.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    const entry = applyRecords(raw, new Map([...globalPax, ...(pax ?? [])]), longName, longLink);
    pax = longName = longLink = undefined;
    // Only regular files carry data. Links, directories, devices and FIFOs are a header alone
    // whatever their size field says (POSIX; Go's archive/tar reads them so too): reading data
    // there would make this reader see other entries than the tools that wrote and checked the layer.
    const dataSize = entry.type === 'file' ? entry.size : 0;
    entry.size = dataSize;
    const what = `the data of '${entry.path}'`;
    let remaining = dataSize;
    yield {
      entry,
      data: {
        async *[Symbol.asyncIterator]() {
          while (remaining > 0) {
            const part = await source.chunk(remaining, what);
            remaining -= part.length;
            yield part;
          }
        },
      },
    };
    // Whatever the consumer left unread is skipped.
    while (remaining > 0) remaining -= (await source.chunk(remaining, what)).length;
    await source.read(padding(dataSize).length, what);
  }
}
