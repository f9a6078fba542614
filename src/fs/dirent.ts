// Directory entries are Node's own fs.Dirent (Node 20 exports the class): `instanceof fs.Dirent`
// holds, `new fs.Dirent(name, UV_DIRENT_FILE, path)` works as in Node, and every method is Node's.
// The core reports entry types as S_IFMT bits; Node's Dirent takes libuv's UV_DIRENT_* numbers.
import * as fs from 'node:fs';

export const Dirent = fs.Dirent;
export type Dirent<Name extends string | Buffer = string> = fs.Dirent<Name>;

const { UV_DIRENT_UNKNOWN, UV_DIRENT_FILE, UV_DIRENT_DIR, UV_DIRENT_LINK, UV_DIRENT_FIFO, UV_DIRENT_SOCKET, UV_DIRENT_CHAR, UV_DIRENT_BLOCK } =
  fs.constants as typeof fs.constants & Record<string, number>;

const BY_FORMAT: Record<number, number> = {
  0o100000: UV_DIRENT_FILE, 0o040000: UV_DIRENT_DIR, 0o120000: UV_DIRENT_LINK, 0o010000: UV_DIRENT_FIFO,
  0o140000: UV_DIRENT_SOCKET, 0o020000: UV_DIRENT_CHAR, 0o060000: UV_DIRENT_BLOCK,
};

/** A Dirent for an entry whose type the core gives as S_IFMT bits. */
export function direntOf<Name extends string | Buffer>(name: Name, format: number, parentPath: string): fs.Dirent<Name> {
  const Ctor = fs.Dirent as unknown as new (name: Name, type: number, path: string) => fs.Dirent<Name>;
  return new Ctor(name, BY_FORMAT[format & 0o170000] ?? UV_DIRENT_UNKNOWN, parentPath);
}
