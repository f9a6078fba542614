// Where an image goes: a registry (blobs it has are skipped, blobs in another repository of the same
// registry are mounted, the rest uploaded in chunks), a layout directory or an oci-archive.
import { createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { fsError } from '../errors.js';
import { packArchive } from './archive.js';
import { hasBlob, initLayout, setTag, writeBlob, writeBlobBytes } from './layout.js';
import type { Descriptor } from './media-types.js';
import { formatReference, type ImageReference } from './reference.js';
import { RegistryClient, type RegistryOptions } from './registry-client.js';

export interface ImageDestination {
  readonly name: string;
  /**
   * Puts a blob there from `file` (verified on the way), unless it is there already or can be
   * mounted from `mountFrom` (an image reference of the same registry).
   */
  putBlob(desc: Descriptor, file: string | undefined, mountFrom?: ImageReference): Promise<'present' | 'mounted' | 'uploaded'>;
  /** Stores the manifest under the destination's tag; call last, after every blob it names. */
  putManifest(bytes: Buffer, desc: Descriptor): Promise<void>;
  /** Cleans up; with `finished`, writes what was put (an archive is written here). */
  close(finished: boolean): Promise<void>;
}

export function openDestination(ref: ImageReference, options: RegistryOptions): ImageDestination {
  const name = formatReference(ref);
  if (ref.transport === 'docker') {
    if (ref.reference.includes(':')) throw fsError('EINVAL', 'reference', name, undefined, 'a destination needs a tag, not a digest');
    const client = new RegistryClient(ref.host, options);
    return {
      name,
      putBlob: (desc, file, mountFrom) => {
        const from = mountFrom?.transport === 'docker' && mountFrom.host === ref.host ? mountFrom.repository : undefined;
        return client.pushBlob(ref.repository, desc, file, from);
      },
      putManifest: (bytes, desc) => client.putManifest(ref.repository, ref.reference, bytes, desc.mediaType),
      close: () => Promise.resolve(),
    };
  }
  const scratch = ref.transport === 'oci-archive' ? mkdtempSync(join(tmpdir(), 'ovlfs-archive-')) : undefined;
  const dir = scratch ?? ref.path;
  initLayout(dir);
  return {
    name,
    putBlob: async (desc, file) => {
      if (hasBlob(dir, desc)) return 'present';
      if (file === undefined || !existsSync(file)) throw fsError('ENOENT', 'copy', desc.digest, undefined, `blob is not in the local image, so it cannot be written to ${name}`);
      await writeBlob(dir, desc, createReadStream(file));
      return 'uploaded';
    },
    putManifest: (bytes, desc) => {
      writeBlobBytes(dir, bytes, desc.mediaType, desc.digest);
      setTag(dir, desc, ref.tag ?? 'latest');
      return Promise.resolve();
    },
    close: async (finished) => {
      if (scratch === undefined) return;
      try {
        if (finished) await packArchive(scratch, ref.path);
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    },
  };
}
