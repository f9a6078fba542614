// Images: the library face of src/oci. Pull an image into a layout whose unpacked layers are
// lowerdirs, list an upper layer's changes, commit them as a new layer, run a command in an image.
export { pull, layerDir, DEFAULT_MAX_LAYER_SIZE, type PullOptions, type PulledImage } from './pull.js';
export { commit, readBaseImage, type CommitOptions, type CommittedImage, type BaseImage } from './commit.js';
export { run, type RunOptions, type RunResult } from './run.js';
export { diffUpper, type Change } from './diff.js';
export { packUpper } from './layer-pack.js';
export { unpackLayer } from './layer-unpack.js';
export { parseReference, formatReference, type ImageReference } from './reference.js';
export { parseCredentials, type Credentials } from './registry-auth.js';
export { RegistryClient, type RegistryOptions } from './registry-client.js';
export { MediaType, type Descriptor, type Manifest, type Index, type ImageConfig } from './media-types.js';
