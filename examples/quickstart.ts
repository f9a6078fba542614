// Quick start: overlay this repository's own src/ (read-only lower layer) with a writable upper
// layer, change things through the merged view, and show that only the upper layer changed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openOverlay } from '../src/index.js';

const lower = path.resolve(import.meta.dirname ?? '.', '..', 'src');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-quickstart-'));
const upperdir = path.join(scratch, 'upper');
const workdir = path.join(scratch, 'work');
fs.mkdirSync(upperdir);
fs.mkdirSync(workdir);

const overlay = openOverlay({ lowerdir: [lower], upperdir, workdir, redirect_dir: 'on' });
const ofs = overlay.fs;
try {
  console.log(`lower layer: ${lower}`);
  console.log(`merged view of /: ${(ofs.readdirSync('/') as string[]).join(', ')}`);

  // An fd opened read-only before the copy-up sees what is written after it.
  const fd = ofs.openSync('/index.ts', 'r');
  ofs.appendFileSync('/index.ts', '\n// appended through the overlay\n');
  const tail = Buffer.alloc(64);
  const size = ofs.fstatSync(fd).size;
  const n = ofs.readSync(fd, tail, 0, 64, Math.max(0, size - 64));
  console.log(`read-only fd sees the new tail: ${JSON.stringify(tail.subarray(0, n).toString().trim().split('\n').pop())}`);
  ofs.closeSync(fd);

  ofs.unlinkSync('/errors.ts');                      // leaves a whiteout
  ofs.renameSync('/fuse', '/fuse-renamed');          // O(1) via the redirect xattr
  ofs.mkdirSync('/notes');
  ofs.writeFileSync('/notes/hello.txt', 'hello from the upper layer\n');

  console.log(`merged view now: ${(ofs.readdirSync('/') as string[]).join(', ')}`);
  console.log('upper layer holds only the changes:');
  for (const entry of fs.readdirSync(upperdir, { recursive: true }) as string[]) {
    const st = fs.lstatSync(path.join(upperdir, entry));
    const kind = st.isCharacterDevice() ? 'whiteout (0/0 char device)' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : `file, ${st.size} bytes`;
    console.log(`  ${entry}: ${kind}`);
  }
  console.log(`lower src/errors.ts still there: ${fs.existsSync(path.join(lower, 'errors.ts'))}`);
} finally {
  overlay.close();
  fs.rmSync(scratch, { recursive: true, force: true });
}
