// Manifests, indexes and configs: the media types ovlfs accepts, and checks of the JSON it reads
// (a registry or a layout is hostile input, so every field used is checked before it is used).
import { fsError } from '../errors.js';
import { parseDigest } from './digest.js';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

const MANIFESTS = new Set<string>([MediaType.ociManifest, MediaType.dockerManifest]);
const INDEXES = new Set<string>([MediaType.ociIndex, MediaType.dockerList]);
const LAYERS = new Map<string, Compression>([
  [MediaType.ociLayer, 'none'],
  [MediaType.ociLayerGzip, 'gzip'],
  [MediaType.ociLayerZstd, 'zstd'],
  [MediaType.dockerLayerGzip, 'gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
]);

/** What a registry is asked for: every manifest and index form ovlfs reads. */
export const MANIFEST_ACCEPT = [...MANIFESTS, ...INDEXES].join(', ');

export type Compression = 'none' | 'gzip' | 'zstd';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
  [key: string]: unknown;
}

function bad(what: string, why: string): Error {
  return fsError('EBADMSG', 'manifest', what, undefined, why);
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw bad(what, 'not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad(what, 'not a JSON object');
  return value as Record<string, unknown>;
}

export function checkDescriptor(value: unknown, what: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (d === null || typeof d !== 'object') throw bad(what, 'a descriptor is not an object');
  if (typeof d.mediaType !== 'string') throw bad(what, 'a descriptor has no mediaType');
  parseDigest(d.digest as string, what);
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) throw bad(what, `descriptor ${d.digest} has no valid size`);
  return d as Descriptor;
}

export type ManifestOrIndex = { kind: 'manifest'; manifest: Manifest } | { kind: 'index'; index: Index };

/**
 * Reads manifest bytes whose media type is `mediaType` (the registry's Content-Type, or the
 * descriptor's), refusing any type but an image manifest or an index, and a body that disagrees.
 */
export function parseManifest(bytes: Buffer, mediaType: string | undefined, what: string): ManifestOrIndex {
  const json = parseJson(bytes, what);
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  // A registry answering application/json (or nothing) is read by the body's own mediaType.
  const type = mediaType !== undefined && mediaType !== '' && mediaType !== 'application/json' && mediaType !== 'text/plain' ? mediaType : declared;
  if (declared !== undefined && type !== declared) throw bad(what, `media type ${type} but the body says ${declared}`);
  if (json.schemaVersion !== 2) throw bad(what, `schemaVersion ${String(json.schemaVersion)} is not 2`);
  const isIndex = type !== undefined ? INDEXES.has(type) : Array.isArray(json.manifests);
  if (type !== undefined && !isIndex && !MANIFESTS.has(type)) throw bad(what, `wrong media type ${type}: not an image manifest or index`);
  if (isIndex) {
    if (!Array.isArray(json.manifests)) throw bad(what, 'an index without manifests');
    json.manifests.forEach((m, i) => checkDescriptor(m, `${what} manifests[${i}]`));
    return { kind: 'index', index: json as unknown as Index };
  }
  const config = checkDescriptor(json.config, `${what} config`);
  if (config.mediaType !== MediaType.ociConfig && config.mediaType !== MediaType.dockerConfig) {
    throw bad(what, `config has media type ${config.mediaType}, not an image config`);
  }
  if (!Array.isArray(json.layers)) throw bad(what, 'a manifest without layers');
  json.layers.forEach((l, i) => {
    const layer = checkDescriptor(l, `${what} layers[${i}]`);
    layerCompression(layer);
  });
  return { kind: 'manifest', manifest: json as unknown as Manifest };
}

export function layerCompression(layer: Descriptor): Compression {
  const compression = LAYERS.get(layer.mediaType);
  if (compression === undefined) throw bad(layer.digest, `layer has media type ${layer.mediaType}, not a layer tar`);
  return compression;
}

/** The image for linux/amd64 (what a container on this machine runs), as skopeo and podman choose. */
export function choosePlatform(index: Index, what: string, arch = hostArchitecture()): Descriptor {
  const images = index.manifests.filter((m) => MANIFESTS.has(m.mediaType) || INDEXES.has(m.mediaType));
  const match = images.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch) ?? (images.length === 1 && images[0]!.platform === undefined ? images[0] : undefined);
  if (match === undefined) {
    const have = images.map((m) => `${m.platform?.os ?? '?'}/${m.platform?.architecture ?? '?'}`).join(', ');
    throw fsError('ENOENT', 'manifest', what, undefined, `no image for linux/${arch} in the index (it has: ${have || 'none'})`);
  }
  return match;
}

export function hostArchitecture(): string {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return arch[process.arch] ?? process.arch;
}

export function parseConfig(bytes: Buffer, what: string): ImageConfig {
  const json = parseJson(bytes, what);
  const rootfs = json.rootfs as ImageConfig['rootfs'] | undefined;
  if (rootfs?.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) throw bad(what, 'config has no rootfs.diff_ids');
  rootfs.diff_ids.forEach((d) => parseDigest(d, `${what} diff_ids`));
  return json as unknown as ImageConfig;
}
