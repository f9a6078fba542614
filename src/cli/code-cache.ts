// Running the command's CommonJS bundle with a V8 code cache beside it (FILE.cache): reading compiled code
// back costs a mount's start-up less than compiling the bundle again, and a cache made once a daemon has
// served holds the functions its requests compiled too, which a fresh daemon would otherwise compile on
// its first requests. A cache that is missing, made for other bytes or another Node, or that V8 rejects
// is written anew when a daemon's serving ends (saveCodeCache); other runs only read it, and where it
// cannot be written (a read-only install, a user who does not own it) the bundle just compiles.
import { closeSync, fstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

type ModuleWrapper = (exports: unknown, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;

// The launcher and the bundle each hold their own copy of this module: the writer is kept where both see it.
const WRITER = Symbol.for('ovlfs.codeCacheWriter');
type Holder = { [WRITER]?: () => void };

/** Runs the CommonJS file `file` as require() would, from its code cache when one fits, and returns its exports. */
export function runWithCodeCache(file: string, cacheFile = `${file}.cache`): unknown {
  const fd = openSync(file, 'r');
  let source: Buffer;
  let key: Buffer;
  try {
    // V8 checks its own version and flags, but of the source only the length, and would run the code of
    // other bytes of that length: the cache starts with the Node and the identity of the file it was made
    // for, which a rebuild (a new file) and an edit (a new ctime, which nothing can set back) change.
    // Hashing the bytes would load node:crypto, which costs more here than the whole cache saves.
    const st = fstatSync(fd, { bigint: true });
    key = Buffer.from(`${process.version} ${process.arch} ${st.dev}:${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}\n`);
    source = readFileSync(fd);
  } finally {
    closeSync(fd);
  }
  let cachedData: Buffer | undefined;
  try {
    const cache = readFileSync(cacheFile);
    if (cache.length > key.length && cache.subarray(0, key.length).equals(key)) cachedData = cache.subarray(key.length);
  } catch {
    // no cache yet
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`, { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    (globalThis as Holder)[WRITER] = () => writeCache(cacheFile, key, script);
  }
  const module = { exports: {} as unknown };
  (script.runInThisContext() as ModuleWrapper)(module.exports, createRequire(file), module, file, dirname(file));
  return module.exports;
}

/**
 * Writes the code cache of the bundle this process runs, if it had none that fit; once (later calls do
 * nothing), and nothing outside runWithCodeCache. Called when a daemon's serving ends, so that the cache
 * holds what serving compiled; V8's flags must be as they were at start-up, or the next run rejects it.
 */
export function saveCodeCache(): void {
  const holder = globalThis as Holder;
  const write = holder[WRITER];
  delete holder[WRITER];
  write?.();
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
