// Image references in skopeo's transport syntax: docker://HOST[:PORT]/REPO[:TAG|@DIGEST],
// oci:DIR[:TAG] and oci-archive:FILE[:TAG]. A bad reference is EINVAL naming what is wrong.
import { resolve } from 'node:path';

import { fsError } from '../errors.js';
import { parseDigest } from './digest.js';

export interface RegistryReference {
  transport: 'docker';
  /** host[:port] as written, or the Docker Hub's API host for a name without one. */
  host: string;
  repository: string;
  /** A tag, or a digest (sha256:…) when the reference pins one. */
  reference: string;
}

export interface LayoutReference {
  transport: 'oci' | 'oci-archive';
  /** The layout directory (oci:) or the archive file (oci-archive:), absolute. */
  path: string;
  /** The tag in the layout's index.json; undefined means the only image there. */
  tag?: string;
}

export type ImageReference = RegistryReference | LayoutReference;

const DOCKER_HUB = 'registry-1.docker.io';
// The distribution spec's grammar for repository names and tags.
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

function invalid(ref: string, why: string): Error {
  return fsError('EINVAL', 'reference', ref, undefined, `invalid image reference (${why})`);
}

export function parseReference(ref: string): ImageReference {
  const colon = ref.indexOf(':');
  if (colon < 0) throw invalid(ref, 'expected docker://, oci: or oci-archive:');
  const transport = ref.slice(0, colon);
  const rest = ref.slice(colon + 1);
  if (transport === 'docker') return parseRegistry(ref, rest);
  if (transport === 'oci' || transport === 'oci-archive') {
    // As skopeo reads it: the path ends at the first ':', what follows is the tag.
    const sep = rest.indexOf(':');
    const path = sep < 0 ? rest : rest.slice(0, sep);
    const tag = sep < 0 ? undefined : rest.slice(sep + 1);
    if (path === '') throw invalid(ref, `${transport}: needs a path`);
    if (tag !== undefined && !TAG.test(tag)) throw invalid(ref, `bad tag '${tag}'`);
    return { transport, path: resolve(path), ...(tag === undefined ? {} : { tag }) };
  }
  throw invalid(ref, `unknown transport '${transport}'`);
}

function parseRegistry(ref: string, rest: string): RegistryReference {
  if (!rest.startsWith('//')) throw invalid(ref, 'docker: takes //HOST/REPO:TAG');
  let name = rest.slice(2);
  let reference = 'latest';
  const at = name.indexOf('@');
  if (at >= 0) {
    reference = name.slice(at + 1);
    parseDigest(reference, ref);
    name = name.slice(0, at);
  } else {
    const lastColon = name.lastIndexOf(':');
    if (lastColon > name.lastIndexOf('/')) {
      reference = name.slice(lastColon + 1);
      name = name.slice(0, lastColon);
      if (!TAG.test(reference)) throw invalid(ref, `bad tag '${reference}'`);
    }
  }
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  let host = DOCKER_HUB;
  let repository = name;
  if (first.includes('.') || first.includes(':') || first === 'localhost') {
    host = first;
    repository = name.slice(slash + 1);
  } else if (!name.includes('/')) {
    repository = `library/${name}`;
  }
  if (!REPOSITORY.test(repository)) throw invalid(ref, `bad repository name '${repository}'`);
  return { transport: 'docker', host, repository, reference };
}

export function formatReference(ref: ImageReference): string {
  if (ref.transport === 'docker') return `docker://${ref.host}/${ref.repository}${ref.reference.includes(':') ? '@' : ':'}${ref.reference}`;
  return `${ref.transport}:${ref.path}${ref.tag === undefined ? '' : `:${ref.tag}`}`;
}
