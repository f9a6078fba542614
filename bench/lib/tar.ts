// A minimal ustar/pax reader for `npm pack` tarballs, so the same untar code runs on every peer
// (the library and the in-process peers have no tar(1) of their own).
import { gunzipSync } from 'node:zlib';

export interface TarEntry {
  path: string;
  type: 'file' | 'dir';
  mode: number;
  data: Buffer;
}

function field(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString('utf8');
}

export function readTgz(tgz: Buffer): TarEntry[] {
  const tar = gunzipSync(tgz);
  const out: TarEntry[] = [];
  let longName: string | undefined;
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = parseInt(field(h, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(h[156]!) || '0';
    const prefix = field(h, 345, 155);
    let name = prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100);
    const data = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m) longName = m[1];
      continue;
    }
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    if (longName !== undefined) {
      name = longName;
      longName = undefined;
    }
    const mode = parseInt(field(h, 100, 8).trim() || '644', 8) & 0o7777;
    if (type === '5') out.push({ path: name.replace(/\/$/, ''), type: 'dir', mode, data: Buffer.alloc(0) });
    else if (type === '0' || type === '\0') out.push({ path: name, type: 'file', mode, data: Buffer.from(data) });
  }
  return out;
}
