// Commit: an upper layer becomes one more layer on top of a pulled image (config diff_ids and
// history, a new manifest), written to a layout or archive or pushed to a registry. The base
// image's directory is only read.
import { createWriteStream, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

import { fsError } from '../errors.js';
import { DigestCounter, sha256Digest } from './digest.js';
import { openDestination } from './image-destination.js';
import { blobPath, findManifest, readBlob } from './layout.js';
import { packUpper } from './layer-pack.js';
import { choosePlatform, MediaType, parseConfig, parseManifest, type Descriptor, type ImageConfig, type Manifest } from './media-types.js';
import { layerDir, SOURCE_ANNOTATION } from './pull.js';
import { parseReference, type ImageReference } from './reference.js';
import type { RegistryOptions } from './registry-client.js';
import { imageXattrs, type XattrChoice } from './xattr-choice.js';

export interface CommitOptions extends RegistryOptions, XattrChoice {
  /** The image in the layout to build on, when it holds more than one. */
  tag?: string;
  /** The history entry's created_by (default 'ovlfs commit'). */
  createdBy?: string;
  /** The new config's time (default: $SOURCE_DATE_EPOCH, else now). */
  created?: Date;
}

export interface CommittedImage {
  manifest: Descriptor;
  layer: Descriptor;
  diffId: string;
  /** How each blob reached the destination, by digest. */
  blobs: Record<string, 'present' | 'mounted' | 'uploaded'>;
}

export interface BaseImage {
  dir: string;
  descriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  /** The unpacked layers present in the layout, top-most first. */
  lowerdirs: string[];
  /** Where the image was pulled from (for cross-repository mounts). */
  source?: ImageReference;
}

/** Reads the image in layout `dir` (pulled by ovlfs pull, or any OCI layout). */
export function readBaseImage(dir: string, tag?: string): BaseImage {
  dir = resolve(dir);
  let descriptor = findManifest(dir, tag);
  const sourceName = descriptor.annotations?.[SOURCE_ANNOTATION];
  let parsed = parseManifest(readBlob(dir, descriptor), descriptor.mediaType, descriptor.digest);
  if (parsed.kind === 'index') {
    descriptor = choosePlatform(parsed.index, dir);
    parsed = parseManifest(readBlob(dir, descriptor), descriptor.mediaType, descriptor.digest);
    if (parsed.kind !== 'manifest') throw fsError('EBADMSG', 'manifest', descriptor.digest, undefined, 'an index inside an index');
  }
  const manifest = parsed.manifest;
  const config = parseConfig(readBlob(dir, manifest.config), manifest.config.digest);
  const lowerdirs = config.rootfs.diff_ids.map((d) => layerDir(dir, d)).filter((d) => existsSync(d)).reverse();
  let source: ImageReference | undefined;
  try {
    source = sourceName === undefined ? undefined : parseReference(sourceName);
  } catch {
    source = undefined;
  }
  return { dir, descriptor, manifest, config, lowerdirs, ...(source === undefined ? {} : { source }) };
}

function createdTime(options: CommitOptions): Date {
  if (options.created !== undefined) return options.created;
  const epoch = process.env.SOURCE_DATE_EPOCH;
  return epoch !== undefined && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date();
}

export async function commit(fromDir: string, upperDir: string, dest: string | ImageReference, options: CommitOptions = {}): Promise<CommittedImage> {
  const base = readBaseImage(fromDir, options.tag);
  const destRef = typeof dest === 'string' ? parseReference(dest) : dest;
  const { xattrPrefix } = imageXattrs(options);
  const scratch = mkdtempSync(join(tmpdir(), 'ovlfs-commit-'));
  const destination = openDestination(destRef, options);
  let finished = false;
  try {
    const layerFile = join(scratch, 'layer.tar.gz');
    const tar = new DigestCounter();
    const gzipped = new DigestCounter();
    await pipeline(packUpper(resolve(upperDir), { xattrPrefix, lowerdirs: base.lowerdirs }), tar, createGzip(), gzipped, createWriteStream(layerFile));
    const docker = base.descriptor.mediaType === MediaType.dockerManifest;
    const layer: Descriptor = { mediaType: docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip, digest: gzipped.digest(), size: gzipped.bytes };
    const diffId = tar.digest();

    const created = createdTime(options).toISOString();
    const config: ImageConfig = {
      ...base.config,
      created,
      rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, diffId] },
      history: [...(base.config.history ?? []), { created, created_by: options.createdBy ?? 'ovlfs commit' }],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDesc: Descriptor = { mediaType: base.manifest.config.mediaType, digest: sha256Digest(configBytes), size: configBytes.length };
    const configFile = join(scratch, 'config.json');
    writeFileSync(configFile, configBytes);

    const manifest: Manifest = { ...base.manifest, config: configDesc, layers: [...base.manifest.layers, layer] };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDesc: Descriptor = { mediaType: base.descriptor.mediaType, digest: sha256Digest(manifestBytes), size: manifestBytes.length };

    const blobs: CommittedImage['blobs'] = {};
    for (const l of base.manifest.layers) {
      const file = blobPath(base.dir, l.digest);
      blobs[l.digest] = await destination.putBlob(l, existsSync(file) ? file : undefined, base.source);
    }
    blobs[configDesc.digest] = await destination.putBlob(configDesc, configFile);
    blobs[layer.digest] = await destination.putBlob(layer, layerFile);
    await destination.putManifest(manifestBytes, manifestDesc);
    finished = true;
    return { manifest: manifestDesc, layer, diffId, blobs };
  } finally {
    await destination.close(finished);
    rmSync(scratch, { recursive: true, force: true });
  }
}
