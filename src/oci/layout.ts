// The OCI image layout on disk: oci-layout, index.json and blobs/<alg>/<hex>. Blobs are written
// aside, verified while they stream, and renamed into place, so a blob file is always whole and true.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, createReadStream, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { fsError } from '../errors.js';
import { DigestVerifier, parseDigest, verifyBytes } from './digest.js';
import { checkDescriptor, MediaType, type Descriptor, type Index } from './media-types.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
const LAYOUT_VERSION = '1.0.0';

export function blobPath(dir: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(dir, 'blobs', algorithm, hex);
}

/** Makes `dir` an image layout if it is not one yet. */
export function initLayout(dir: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  if (!existsSync(join(dir, 'oci-layout'))) writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
  if (!existsSync(join(dir, 'index.json'))) writeIndex(dir, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
}

export function isLayout(dir: string): boolean {
  return existsSync(join(dir, 'oci-layout')) && existsSync(join(dir, 'index.json'));
}

/** Opens a file of a layout without following a symlink at its last component. */
function readNoFollow(path: string): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function readIndex(dir: string): Index {
  let bytes;
  try {
    bytes = readNoFollow(join(dir, 'index.json'));
  } catch (e) {
    throw fsError((e as NodeJS.ErrnoException).code ?? 'EIO', 'open', join(dir, 'index.json'), undefined, 'not an OCI image layout (no index.json)');
  }
  let index: Index;
  try {
    index = JSON.parse(bytes.toString('utf8')) as Index;
  } catch {
    throw fsError('EBADMSG', 'manifest', join(dir, 'index.json'), undefined, 'index.json is not valid JSON');
  }
  if (index === null || typeof index !== 'object' || !Array.isArray(index.manifests)) throw fsError('EBADMSG', 'manifest', join(dir, 'index.json'), undefined, 'index.json has no manifests');
  index.manifests.forEach((m, i) => checkDescriptor(m, `${join(dir, 'index.json')} manifests[${i}]`));
  return index;
}

function writeIndex(dir: string, index: Index): void {
  const tmp = join(dir, `.index.json.${randomBytes(6).toString('hex')}`);
  writeFileSync(tmp, JSON.stringify(index));
  renameSync(tmp, join(dir, 'index.json'));
}

/** The manifest descriptor tagged `tag`, or the only one when no tag is asked for. */
export function findManifest(dir: string, tag: string | undefined): Descriptor {
  const { manifests } = readIndex(dir);
  if (tag === undefined) {
    if (manifests.length === 1) return manifests[0]!;
    throw fsError('ENOENT', 'manifest', dir, undefined, `the layout holds ${manifests.length} images: name one with oci:DIR:TAG`);
  }
  const found = manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (found === undefined) throw fsError('ENOENT', 'manifest', `${dir}:${tag}`, undefined, `no image tagged '${tag}' in the layout`);
  return found;
}

/** Points `tag` at `desc` in index.json (replacing what it pointed at). */
export function setTag(dir: string, desc: Descriptor, tag: string, annotations: Record<string, string> = {}): void {
  const index = readIndex(dir);
  index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  index.manifests.push({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size, annotations: { ...annotations, [REF_NAME]: tag } });
  writeIndex(dir, index);
}

/** A blob's bytes, refused unless they match its descriptor. */
export function readBlob(dir: string, desc: Pick<Descriptor, 'digest'> & { size?: number }): Buffer {
  let bytes;
  try {
    bytes = readNoFollow(blobPath(dir, desc.digest));
  } catch (e) {
    throw fsError((e as NodeJS.ErrnoException).code ?? 'EIO', 'open', desc.digest, undefined, `blob missing from ${dir}`);
  }
  if (desc.size !== undefined && bytes.length !== desc.size) throw fsError('EBADMSG', 'verify', desc.digest, undefined, `blob has ${bytes.length} bytes, its descriptor says ${desc.size}`);
  verifyBytes(bytes, desc.digest);
  return bytes;
}

export function hasBlob(dir: string, desc: Descriptor): boolean {
  try {
    const st = statSync(blobPath(dir, desc.digest), { throwIfNoEntry: false });
    return st !== undefined && st.isFile() && st.size === desc.size;
  } catch {
    return false;
  }
}

/** A stream of a blob's bytes; it fails at the end unless they match the descriptor. */
export function blobStream(dir: string, desc: Descriptor): Readable {
  const fd = openSync(blobPath(dir, desc.digest), constants.O_RDONLY | constants.O_NOFOLLOW);
  return createReadStream('', { fd }).pipe(new DigestVerifier(desc.digest, desc.size));
}

/** Writes a blob from a stream, verified, into place. */
export async function writeBlob(dir: string, desc: Pick<Descriptor, 'digest' | 'size'>, source: Readable): Promise<void> {
  const target = blobPath(dir, desc.digest);
  mkdirSync(join(target, '..'), { recursive: true });
  const tmp = `${target}.${randomBytes(6).toString('hex')}.partial`;
  try {
    await pipeline(source, new DigestVerifier(desc.digest, desc.size), createWriteStream(tmp, { flags: 'wx' }));
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Writes bytes as a blob and returns its descriptor. */
export function writeBlobBytes(dir: string, bytes: Buffer, mediaType: string, digest: string): Descriptor {
  const target = blobPath(dir, digest);
  mkdirSync(join(target, '..'), { recursive: true });
  const tmp = `${target}.${randomBytes(6).toString('hex')}.partial`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, target);
  return { mediaType, digest, size: bytes.length };
}
