// Where an image comes from: a registry, a layout directory or an oci-archive, behind one interface
// that hands out manifests and verified blobs.
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { extractArchive } from './archive.js';
import { blobStream, findManifest, readBlob } from './layout.js';
import type { Descriptor } from './media-types.js';
import { formatReference, type ImageReference } from './reference.js';
import { RegistryClient, type RegistryOptions } from './registry-client.js';

export interface ImageSource {
  /** The reference, for messages and for the pulled image's annotation. */
  readonly name: string;
  /** The tag the image goes by, for the pulled layout's index.json. */
  readonly tag: string;
  /** The manifest (or index) the reference names, or the one with `digest`; bytes as stored. */
  manifest(digest?: string): Promise<{ bytes: Buffer; mediaType: string | undefined }>;
  /** Writes a blob to `file`, refusing it unless it matches `desc`. */
  fetchBlob(desc: Descriptor, file: string, onBytes?: (n: number) => void): Promise<void>;
  close(): void;
}

export async function openSource(ref: ImageReference, options: RegistryOptions): Promise<ImageSource> {
  if (ref.transport === 'docker') {
    const client = new RegistryClient(ref.host, options);
    return {
      name: formatReference(ref),
      tag: ref.reference.includes(':') ? 'latest' : ref.reference,
      manifest: (digest) => client.getManifest(ref.repository, digest ?? ref.reference),
      fetchBlob: (desc, file, onBytes) => client.fetchBlob(ref.repository, desc, file, onBytes),
      close: () => undefined,
    };
  }
  let dir = ref.path;
  let scratch: string | undefined;
  if (ref.transport === 'oci-archive') {
    scratch = mkdtempSync(join(tmpdir(), 'ovlfs-archive-'));
    dir = scratch;
    try {
      await extractArchive(ref.path, dir);
    } catch (e) {
      rmSync(scratch, { recursive: true, force: true });
      throw e;
    }
  }
  return {
    name: formatReference(ref),
    tag: ref.tag ?? 'latest',
    manifest: (digest) => {
      const desc = digest === undefined ? findManifest(dir, ref.tag) : undefined;
      const bytes = readBlob(dir, desc ?? { digest: digest! });
      return Promise.resolve({ bytes, mediaType: desc?.mediaType });
    },
    fetchBlob: async (desc, file, onBytes) => {
      const stream = blobStream(dir, desc);
      if (onBytes !== undefined) stream.on('data', (chunk: Buffer) => onBytes(chunk.length));
      await pipeline(stream, createWriteStream(file));
    },
    close: () => {
      if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
    },
  };
}
