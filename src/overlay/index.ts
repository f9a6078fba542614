// The core's public surface: the faces (src/fs, src/fuse, src/cli) import from here and nowhere
// else in src/overlay, so nodes and open files change only through Overlay's methods.
export { Overlay, isOverlayXattr } from './overlay.js';
export type { OverlayNode } from './node.js';
export type { CopyUpJob } from './copy-up.js';
export type { DataLease, OpenFile, PositionRange } from './file.js';
export type { OvlStat, SetAttr } from './inode.js';
export type { OvlDirent } from './readdir.js';
export type { RenameFlags } from './dir.js';
export type { OverlayOptions } from './options.js';
export { inUserNamespace, parseMountOptions, splitEscaped } from './options.js';
export { isNormalName, MAX_SYMLINKS } from './namei.js';
export { processCaller, type Caller } from './permission.js';
