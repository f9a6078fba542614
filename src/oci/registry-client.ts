// A client of the distribution API (/v2/): manifests, blobs fetched with resumable ranges and
// verified as they stream, chunked uploads and cross-repository mounts. One client per registry
// host; it keeps the authorization each scope earned.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

import { fsError } from '../errors.js';
import { digestMismatch, parseDigest } from './digest.js';
import { MANIFEST_ACCEPT, type Descriptor } from './media-types.js';
import { basicHeader, fetchToken, parseChallenge, type Credentials } from './registry-auth.js';

export interface RegistryOptions {
  /** false: plain http (for a registry on 127.0.0.1), as skopeo's --tls-verify=false. */
  tlsVerify?: boolean;
  creds?: Credentials;
  /** Upload chunk size in bytes (default 8 MiB). */
  chunkSize?: number;
  /** Attempts at a blob download whose connection breaks (default 4); each resumes with a Range. */
  attempts?: number;
  /** A blob download that receives nothing for this many ms is broken off and resumed (default 30 s). */
  stallTimeout?: number;
}

interface RegistryRequest {
  headers?: Record<string, string>;
  body?: Buffer;
  scopes: string[];
  signal?: AbortSignal;
}

const DEFAULT_CHUNK = 8 << 20;

export class RegistryClient {
  readonly base: string;
  private readonly authorizations = new Map<string, string>();
  private basic = false;

  constructor(
    readonly host: string,
    private readonly options: RegistryOptions = {},
  ) {
    this.base = `${options.tlsVerify === false ? 'http' : 'https'}://${host}`;
  }

  static pullScope(repository: string): string {
    return `repository:${repository}:pull`;
  }

  static pushScope(repository: string): string {
    return `repository:${repository}:pull,push`;
  }

  /** Sends a request, answering one auth challenge; returns the response whatever its status. */
  private async request(method: string, url: string, init: RegistryRequest): Promise<Response> {
    const target = new URL(url, this.base);
    const send = (): Promise<Response> => {
      const headers: Record<string, string> = { ...init.headers };
      const auth = this.basic && this.options.creds !== undefined ? basicHeader(this.options.creds) : this.authorizations.get(init.scopes.join(' '));
      if (auth !== undefined) headers.authorization = auth;
      return fetch(target, { method, headers, ...(init.body === undefined ? {} : { body: new Uint8Array(init.body) }), ...(init.signal === undefined ? {} : { signal: init.signal }), redirect: 'follow' }).catch((e: unknown) => {
        throw fsError('ECONNREFUSED', method.toLowerCase(), target.href, undefined, `cannot reach the registry: ${errorText(e)}`);
      });
    };
    let res = await send();
    if (res.status !== 401) return res;
    const header = res.headers.get('www-authenticate');
    await res.body?.cancel();
    if (header === null) return res;
    const challenge = parseChallenge(header);
    if (challenge.scheme === 'basic') {
      if (this.options.creds === undefined || this.basic) return send();
      this.basic = true;
    } else if (challenge.scheme === 'bearer') {
      const token = await fetchToken(challenge, init.scopes, this.options.creds, this.host);
      this.authorizations.set(init.scopes.join(' '), `Bearer ${token}`);
    } else {
      return send();
    }
    res = await send();
    return res;
  }

  private async fail(res: Response, syscall: string, what: string): Promise<never> {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { errors?: { code?: string; message?: string }[] };
      const first = body.errors?.[0];
      if (first !== undefined) detail += `: ${first.code ?? ''} ${first.message ?? ''}`.trimEnd();
    } catch {
      // Not the API's JSON error: the status says it.
    }
    const code = res.status === 401 || res.status === 403 ? 'EACCES' : res.status === 404 ? 'ENOENT' : 'EIO';
    throw fsError(code, syscall, what, undefined, `registry ${this.host} answered ${detail}`);
  }

  /** A manifest or index, by tag or digest; verified when asked for by digest. */
  async getManifest(repository: string, reference: string): Promise<{ bytes: Buffer; mediaType: string | undefined }> {
    const what = `${this.host}/${repository}:${reference}`;
    const res = await this.request('GET', `/v2/${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT }, scopes: [RegistryClient.pullScope(repository)] });
    if (!res.ok) await this.fail(res, 'manifest', what);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (reference.includes(':')) {
      const { algorithm } = parseDigest(reference);
      const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
      if (actual !== reference) throw digestMismatch(reference, actual, 'manifest');
    }
    return { bytes, mediaType: res.headers.get('content-type')?.split(';')[0]?.trim() };
  }

  /**
   * Downloads a blob into `file`, hashing as it streams. A connection that breaks is resumed with a
   * Range request from the last byte written; the blob is refused if it is longer than its
   * descriptor or does not match its digest.
   */
  async fetchBlob(repository: string, desc: Descriptor, file: string, onBytes?: (n: number) => void): Promise<void> {
    const { algorithm } = parseDigest(desc.digest);
    const out = await open(file, 'w');
    let hash = createHash(algorithm);
    let have = 0;
    const attempts = this.options.attempts ?? 4;
    const stallTimeout = this.options.stallTimeout ?? 30_000;
    try {
      for (let attempt = 1; ; attempt++) {
        const headers: Record<string, string> = have > 0 ? { range: `bytes=${have}-` } : {};
        // A connection that goes silent is broken off, and resumed like one that broke.
        const stall = new AbortController();
        let timer = setTimeout(() => stall.abort(), stallTimeout);
        let res: Response;
        try {
          res = await this.request('GET', `/v2/${repository}/blobs/${desc.digest}`, { headers, scopes: [RegistryClient.pullScope(repository)], signal: stall.signal });
        } catch (e) {
          clearTimeout(timer);
          if (attempt >= attempts) throw e;
          continue;
        }
        if (!res.ok) {
          clearTimeout(timer);
          await this.fail(res, 'blob', desc.digest);
        }
        const range = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
        if (have > 0 && (res.status !== 206 || range === null || Number(range[1]) !== have)) {
          // The server sent the whole blob again: start over.
          onBytes?.(-have);
          have = 0;
          hash = createHash(algorithm);
          await out.truncate(0);
        }
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            if (have + chunk.length > desc.size) {
              throw fsError('EBADMSG', 'verify', desc.digest, undefined, `blob is larger than its descriptor's ${desc.size} bytes`);
            }
            clearTimeout(timer);
            await out.write(chunk, 0, chunk.length, have);
            hash.update(chunk);
            have += chunk.length;
            onBytes?.(chunk.length);
            timer = setTimeout(() => stall.abort(), stallTimeout);
          }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EBADMSG' || attempt >= attempts) throw e;
          continue;
        } finally {
          clearTimeout(timer);
        }
        if (have < desc.size && attempt < attempts) continue;
        break;
      }
    } finally {
      await out.close();
    }
    if (have !== desc.size) throw fsError('EBADMSG', 'verify', desc.digest, undefined, `blob has ${have} bytes, its descriptor says ${desc.size}`);
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (actual !== desc.digest) throw digestMismatch(desc.digest, actual);
  }

  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`, { scopes: [RegistryClient.pushScope(repository)] });
    if (res.status === 404) return false;
    if (!res.ok) await this.fail(res, 'blob', digest);
    return true;
  }

  /**
   * Uploads a blob unless the registry has it: first as a cross-repository mount from `from` (no
   * bytes sent), else in chunks of `chunkSize` from `file`. Returns how it got there.
   */
  async pushBlob(repository: string, desc: Descriptor, file: string | undefined, from?: string): Promise<'present' | 'mounted' | 'uploaded'> {
    if (await this.hasBlob(repository, desc.digest)) return 'present';
    const scopes = [RegistryClient.pushScope(repository), ...(from !== undefined && from !== repository ? [RegistryClient.pullScope(from)] : [])];
    const query = from !== undefined && from !== repository ? `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}` : '';
    let res = await this.request('POST', `/v2/${repository}/blobs/uploads/${query}`, { scopes, headers: { 'content-length': '0' } });
    if (res.status === 201) return 'mounted';
    if (res.status !== 202) await this.fail(res, 'upload', desc.digest);
    if (file === undefined) throw fsError('ENOENT', 'upload', desc.digest, undefined, `blob is neither in the local image nor mountable from ${from ?? 'another repository'}`);
    let location = this.location(res, desc.digest);
    const input = await open(file, 'r');
    try {
      const chunkSize = this.options.chunkSize ?? DEFAULT_CHUNK;
      const buffer = Buffer.alloc(Math.min(chunkSize, Math.max(desc.size, 1)));
      for (let offset = 0; offset < desc.size; ) {
        const { bytesRead } = await input.read(buffer, 0, Math.min(buffer.length, desc.size - offset), offset);
        if (bytesRead === 0) throw fsError('EIO', 'upload', file, undefined, 'the blob file is shorter than its descriptor');
        res = await this.request('PATCH', location, {
          scopes,
          body: buffer.subarray(0, bytesRead),
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + bytesRead - 1}`, 'content-length': String(bytesRead) },
        });
        if (res.status !== 202) await this.fail(res, 'upload', desc.digest);
        location = this.location(res, desc.digest);
        await res.body?.cancel();
        offset += bytesRead;
      }
    } finally {
      await input.close();
    }
    const url = new URL(location, this.base);
    url.searchParams.set('digest', desc.digest);
    res = await this.request('PUT', url.href, { scopes, headers: { 'content-length': '0' } });
    if (res.status !== 201) await this.fail(res, 'upload', desc.digest);
    await res.body?.cancel();
    return 'uploaded';
  }

  private location(res: Response, what: string): string {
    const location = res.headers.get('location');
    if (location === null) throw fsError('EIO', 'upload', what, undefined, `registry ${this.host} gave no upload location`);
    return new URL(location, this.base).href;
  }

  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<void> {
    const res = await this.request('PUT', `/v2/${repository}/manifests/${reference}`, {
      scopes: [RegistryClient.pushScope(repository)],
      body: bytes,
      headers: { 'content-type': mediaType },
    });
    if (res.status !== 201) await this.fail(res, 'manifest', `${this.host}/${repository}:${reference}`);
    await res.body?.cancel();
  }
}

function errorText(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
}
