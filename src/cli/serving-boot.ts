// The first module of the serving thread started ahead (serving-thread.ts), bundled to serving-boot.cjs:
// it runs the thread's program, serving.cjs beside it, from its code cache (code-cache.ts).
import { fileURLToPath } from 'node:url';

import { runWithCodeCache } from './code-cache.js';

runWithCodeCache(fileURLToPath(new URL('./serving.cjs', import.meta.url)));
