#!/usr/bin/env node
// The ovlfs command as installed (dist/bin/ovlfs.cjs, built by scripts/bundle.mjs): it runs the command's
// bundle beside it (ovlfs-main.cjs, main.ts with everything it loads) from its V8 code cache. Both are
// CommonJS, so that Node starts no ES module loader and no module is looked up at start-up.
import { fileURLToPath } from 'node:url';

import { runWithCodeCache } from './code-cache.js';

runWithCodeCache(fileURLToPath(new URL('./ovlfs-main.cjs', import.meta.url)));
