// Running a CommonJS bundle with a V8 code cache beside it (FILE.cache): reading compiled code back costs
// the serving thread less than compiling its bundle again at every mount. A cache that is missing, made for
// other bytes or another Node, or that V8 rejects, is written anew once the bundle has run, so that it holds
// what loading compiled; where it cannot be written (a read-only install) the bundle just compiles.
import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

type ModuleWrapper = (exports: unknown, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;

/** Runs the CommonJS file `file` as require() would, and returns its exports. */
export function runWithCodeCache(file: string, cacheFile = `${file}.cache`): unknown {
  const source = readFileSync(file);
  // V8 checks its own version and flags, but of the source only the length, and would run the code of other
  // bytes of that length: the cache starts with the Node and the exact bytes it was made for (comparing
  // them costs less than a hash, whose module a fresh thread would have to load).
  const key = Buffer.concat([Buffer.from(`${process.version} ${process.arch}\n`), source]);
  let cachedData: Buffer | undefined;
  try {
    const cache = readFileSync(cacheFile);
    if (cache.length > key.length && cache.subarray(0, key.length).equals(key)) cachedData = cache.subarray(key.length);
  } catch {
    // no cache yet
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`, { filename: file, cachedData });
  const module = { exports: {} as unknown };
  (script.runInThisContext() as ModuleWrapper)(module.exports, createRequire(file), module, file, dirname(file));
  if (cachedData === undefined || script.cachedDataRejected === true) writeCache(cacheFile, key, script);
  return module.exports;
}

/** Written aside and renamed, so that a reader never sees half a cache; opened first, so that a directory that cannot take it costs no serialization. */
function writeCache(cacheFile: string, key: Buffer, script: Script): void {
  const temp = `${cacheFile}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  let fd: number;
  try {
    fd = openSync(temp, 'wx', 0o644);
  } catch {
    return;
  }
  try {
    try {
      writeSync(fd, key);
      writeSync(fd, script.createCachedData());
    } finally {
      closeSync(fd);
    }
    renameSync(temp, cacheFile);
  } catch {
    try {
      unlinkSync(temp);
    } catch {
      // gone already
    }
  }
}
