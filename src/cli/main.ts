#!/usr/bin/env node
// The ovlfs command's entry point (the package's bin): everything it does is in commands.ts, loaded
// after the serving thread was started ahead where this process will serve (serving-thread.ts).
import { startServingThreadEarly } from './serving-thread.js';

// Defined (true) by scripts/bundle.mjs, where the worker and the file system sit next to this file.
declare const OVLFS_BUNDLE: boolean;

// ovlfs.sh's pipe, fuse-overlayfs's form (a flag first), root: the form mount-in-place.ts serves.
if (typeof OVLFS_BUNDLE !== 'undefined' && process.env.OVLFS_STATUS_FD !== undefined && process.argv[2]?.startsWith('-') && process.getuid?.() === 0) {
  startServingThreadEarly();
}
const { main } = await import('./commands.js');
process.exitCode = await main(process.argv.slice(1));
