// Pull: an image from a registry, layout or archive into an image layout DIR, every blob checked
// against its digest, and each layer unpacked into DIR/layers/<diff id hex>/ in the kernel's
// on-disk format, ready to be a lowerdir. A layer already unpacked there (same diff id) is reused.
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { fsError } from '../errors.js';
import { decompressor, SizeLimit } from './decompress.js';
import { DigestCounter, fileDigest, parseDigest, sha256Digest } from './digest.js';
import { openSource, type ImageSource } from './image-source.js';
import { blobPath, hasBlob, initLayout, readBlob, setTag, writeBlobBytes } from './layout.js';
import { unpackLayer } from './layer-unpack.js';
import { choosePlatform, layerCompression, MediaType, parseConfig, parseManifest, type Descriptor, type ImageConfig, type Manifest } from './media-types.js';
import { imageXattrs, type XattrChoice } from './xattr-choice.js';
import { Progress } from './progress.js';
import { parseReference, type ImageReference } from './reference.js';
import type { RegistryOptions } from './registry-client.js';

export const SOURCE_ANNOTATION = 'ovlfs.source';
/** Default limit on a layer's inflated size: 8 GiB. */
export const DEFAULT_MAX_LAYER_SIZE = 8 * 2 ** 30;

export interface PullOptions extends RegistryOptions, XattrChoice {
  /** A layer that inflates past this many bytes is refused (default 8 GiB). */
  maxLayerSize?: number;
  /** Layers fetched and unpacked at once (default 3). */
  parallel?: number;
  /** Progress on stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

export interface PulledImage {
  /** The layout directory. */
  dir: string;
  /** The unpacked layers, top-most first: the lowerdir= value, joined with ':'. */
  lowerdirs: string[];
  manifest: Descriptor;
  config: ImageConfig;
}

/** The directory a layer with this diff id is unpacked into. */
export function layerDir(dir: string, diffId: string): string {
  return join(dir, 'layers', parseDigest(diffId).hex);
}

export async function pull(src: string | ImageReference, dir: string, options: PullOptions = {}): Promise<PulledImage> {
  const ref = typeof src === 'string' ? parseReference(src) : src;
  dir = resolve(dir);
  initLayout(dir);
  mkdirSync(join(dir, 'layers'), { recursive: true });
  const source = await openSource(ref, options);
  try {
    const { manifest, descriptor } = await resolveManifest(source, dir);
    await fetchBlob(source, dir, manifest.config);
    const config = parseConfig(readBlob(dir, manifest.config), manifest.config.digest);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) {
      throw fsError('EBADMSG', 'manifest', descriptor.digest, undefined, `${manifest.layers.length} layers but the config lists ${diffIds.length} diff ids`);
    }
    const progress = new Progress(
      manifest.layers.reduce((n, l) => n + l.size, 0),
      manifest.layers.length,
      options.progress ?? process.stderr.isTTY === true,
    );
    const xattrs = imageXattrs(options);
    await inParallel(options.parallel ?? 3, manifest.layers.map((layer, i) => async () => {
      const target = layerDir(dir, diffIds[i]!);
      if (!(existsSync(target) && hasBlob(dir, layer))) {
        await fetchBlob(source, dir, layer, (n) => progress.bytes(n));
        if (!existsSync(target)) await unpackBlob(dir, layer, diffIds[i]!, { ...xattrs, maxBytes: options.maxLayerSize ?? DEFAULT_MAX_LAYER_SIZE });
      }
      progress.layer();
    }));
    progress.finish();
    setTag(dir, descriptor, source.tag, { [SOURCE_ANNOTATION]: source.name });
    return { dir, lowerdirs: diffIds.map((d) => layerDir(dir, d)).reverse(), manifest: descriptor, config };
  } finally {
    source.close();
  }
}

/** The image manifest the source names: through an index, the linux/<this arch> one. */
async function resolveManifest(source: ImageSource, dir: string): Promise<{ manifest: Manifest; descriptor: Descriptor }> {
  let { bytes, mediaType } = await source.manifest();
  let parsed = parseManifest(bytes, mediaType, source.name);
  if (parsed.kind === 'index') {
    const chosen = choosePlatform(parsed.index, source.name);
    ({ bytes, mediaType } = await source.manifest(chosen.digest));
    if (sha256Digest(bytes) !== chosen.digest && !chosen.digest.startsWith('sha512:')) throw fsError('EBADMSG', 'verify', chosen.digest, undefined, 'manifest does not match its digest');
    parsed = parseManifest(bytes, mediaType ?? chosen.mediaType, chosen.digest);
    if (parsed.kind !== 'manifest') throw fsError('EBADMSG', 'manifest', chosen.digest, undefined, 'an index inside an index');
  }
  const type = parsed.manifest.mediaType ?? (mediaType === MediaType.dockerManifest ? mediaType : MediaType.ociManifest);
  const descriptor = writeBlobBytes(dir, bytes, type, sha256Digest(bytes));
  return { manifest: parsed.manifest, descriptor };
}

/** Puts a verified blob into the layout, unless a whole and true copy is there already. */
async function fetchBlob(source: ImageSource, dir: string, desc: Descriptor, onBytes?: (n: number) => void): Promise<void> {
  const target = blobPath(dir, desc.digest);
  if (hasBlob(dir, desc) && (await fileDigest(target)) === desc.digest) return;
  mkdirSync(join(target, '..'), { recursive: true });
  const tmp = `${target}.${randomBytes(6).toString('hex')}.partial`;
  try {
    await source.fetchBlob(desc, tmp, onBytes);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Unpacks a layer blob aside and renames it into DIR/layers/<diff id hex> once the uncompressed
 * bytes proved to be the diff id the config names.
 */
async function unpackBlob(dir: string, layer: Descriptor, diffId: string, options: { xattrPrefix: string; privileged: boolean; maxBytes: number }): Promise<void> {
  const target = layerDir(dir, diffId);
  const tmp = join(dir, 'layers', `.${parseDigest(diffId).hex}.${randomBytes(6).toString('hex')}.partial`);
  mkdirSync(tmp);
  const input = createReadStream(blobPath(dir, layer.digest), { highWaterMark: 1 << 20 });
  const counter = new DigestCounter();
  const tarStream = new PassThrough();
  const flowing = pipeline(input, decompressor(layerCompression(layer)), new SizeLimit(options.maxBytes, layer.digest), counter, tarStream);
  const unpacked = unpackLayer(tarStream, tmp, options).then(() => {
    // The tar may end before the stream does (padding): the rest still counts for the diff id.
    tarStream.resume();
  });
  try {
    await Promise.all([unpacked, flowing]);
    if (counter.digest() !== diffId) {
      throw fsError('EBADMSG', 'verify', layer.digest, undefined, `layer unpacks to ${counter.digest()}, the config's diff id is ${diffId}`);
    }
    renameSync(tmp, target);
  } catch (e) {
    input.destroy();
    tarStream.destroy();
    unpacked.catch(() => undefined);
    flowing.catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function inParallel(limit: number, jobs: (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < jobs.length && failed === undefined) {
      const job = jobs[next++]!;
      try {
        await job();
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, worker));
  if (failed !== undefined) throw failed;
}
