// Directory entries with node:fs's Dirent surface (Node does not let us construct its own).
import type * as fs from 'node:fs';

const S_IFMT = 0o170000;

export class Dirent<Name extends string | Buffer = string> implements fs.Dirent<Name> {
  constructor(
    readonly name: Name,
    /** S_IFMT bits. */
    private readonly type: number,
    readonly parentPath: string,
  ) {}
  /** Deprecated alias of parentPath that Node 20 still offers. */
  get path(): string { return this.parentPath; }
  isFile(): boolean { return (this.type & S_IFMT) === 0o100000; }
  isDirectory(): boolean { return (this.type & S_IFMT) === 0o040000; }
  isSymbolicLink(): boolean { return (this.type & S_IFMT) === 0o120000; }
  isBlockDevice(): boolean { return (this.type & S_IFMT) === 0o060000; }
  isCharacterDevice(): boolean { return (this.type & S_IFMT) === 0o020000; }
  isFIFO(): boolean { return (this.type & S_IFMT) === 0o010000; }
  isSocket(): boolean { return (this.type & S_IFMT) === 0o140000; }
}
