// oci-archive: an image layout in one tar file. Read by extracting the layout's own files (and
// nothing else) into a private temporary directory; written by packing a layout directory.
import { createReadStream, createWriteStream, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import tar from 'tar-stream';

import { fsError } from '../errors.js';

const LAYOUT_NAME = /^(oci-layout|index\.json|blobs\/(sha256\/[a-f0-9]{64}|sha512\/[a-f0-9]{128}))$/;

/** Extracts the layout in `archive` into the empty directory `dir`. */
export async function extractArchive(archive: string, dir: string): Promise<void> {
  const extract = tar.extract();
  const done = pipeline(createReadStream(archive), extract).catch((e: unknown) => {
    throw fsError((e as NodeJS.ErrnoException).code ?? 'EBADMSG', 'extract', archive, undefined, `not a readable oci-archive (${e instanceof Error ? e.message : String(e)})`);
  });
  for await (const entry of extract) {
    const name = posix.normalize(entry.header.name).replace(/^\.\//, '').replace(/\/$/, '');
    if (entry.header.type === 'directory' && /^(\.|blobs|blobs\/sha256|blobs\/sha512)$/.test(name)) {
      entry.resume();
      continue;
    }
    if (entry.header.type !== 'file' || !LAYOUT_NAME.test(name)) {
      entry.resume();
      throw fsError('EBADMSG', 'extract', entry.header.name, undefined, `archive ${archive} holds an entry that is not part of an image layout`);
    }
    const target = join(dir, name);
    mkdirSync(dirname(target), { recursive: true });
    await pipeline(entry, createWriteStream(target, { flags: 'wx' }));
  }
  await done;
}

/** Packs the layout directory `dir` into `archive` (written aside and renamed into place). */
export async function packArchive(dir: string, archive: string): Promise<void> {
  const pack = tar.pack();
  const tmp = `${archive}.${randomBytes(6).toString('hex')}.partial`;
  const written = pipeline(pack, createWriteStream(tmp, { flags: 'wx' }));
  try {
    const add = async (rel: string): Promise<void> => {
      const st = statSync(join(dir, rel));
      if (st.isDirectory()) {
        pack.entry({ name: `${rel}/`, type: 'directory', mode: 0o755, mtime: new Date(0) });
        for (const name of readdirSync(join(dir, rel)).sort()) await add(posix.join(rel, name));
        return;
      }
      const entry = pack.entry({ name: rel, size: st.size, mode: 0o644, mtime: new Date(0) });
      await pipeline(createReadStream(join(dir, rel)), entry);
    };
    for (const name of ['oci-layout', 'index.json', 'blobs']) await add(name);
    pack.finalize();
    await written;
    renameSync(tmp, archive);
  } catch (e) {
    pack.destroy();
    rmSync(tmp, { force: true });
    throw e;
  }
}
