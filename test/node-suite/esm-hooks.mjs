// Module hooks (registered by preload.ts): inside Node's source tree, `fs`, `node:fs`,
// `fs/promises` and `node:fs/promises` resolve to modules that re-export the overlay's objects.
let root = '';
let fsKeys = [];
let promisesKeys = [];

export function initialize(data) {
  root = data.root;
  fsKeys = data.fsKeys;
  promisesKeys = data.promisesKeys;
}

const NAMES = { fs: 'fs', 'node:fs': 'fs', 'fs/promises': 'promises', 'node:fs/promises': 'promises' };

export async function resolve(specifier, context, next) {
  const which = NAMES[specifier];
  if (which !== undefined && context.parentURL?.startsWith(`file://${root}/`)) {
    return { url: `ovlfs-node-suite:${which}`, shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.startsWith('ovlfs-node-suite:')) {
    const which = url.slice('ovlfs-node-suite:'.length);
    const keys = which === 'fs' ? fsKeys : promisesKeys;
    const source = [
      `const m = globalThis[Symbol.for('ovlfs.nodeSuite')].${which};`,
      'export default m;',
      ...keys.map((k) => `export const ${k} = m.${k};`),
    ].join('\n');
    return { format: 'module', source, shortCircuit: true };
  }
  return next(url, context);
}
