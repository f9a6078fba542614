// Runs as an unprivileged user (see unprivileged.test.ts): user.overlay.* xattrs and 0/0 whiteouts.
import * as fs from 'node:fs';
import * as xattr from '@napi-rs/xattr';
import { Overlay } from '../../src/overlay/overlay.js';
import { SyncFs } from '../../src/fs/sync.js';

const [base] = process.argv.slice(2);
const overlay = new Overlay({ lowerdir: `${base}/lower`, upperdir: `${base}/upper`, workdir: `${base}/work`, redirect_dir: 'on' });
const ofs = new SyncFs(overlay);
const ro = ofs.openSync('/d/file', 'r');
ofs.appendFileSync('/d/file', '+');
const buffer = Buffer.alloc(64);
const seen = buffer.subarray(0, ofs.readSync(ro, buffer, 0, 64, 0)).toString();
ofs.unlinkSync('/d/gone');
ofs.rmSync('/sub', { recursive: true });
ofs.mkdirSync('/sub');
ofs.renameSync('/d', '/e');
let refused = '';
try { ofs.openSync('/readonly', 'r+'); } catch (e) { refused = (e as { code: string }).code; }
const result = {
  refused,
  noCopy: !fs.existsSync(`${base}/upper/readonly`),
  uid: process.getuid?.(),
  seen,
  listing: (ofs.readdirSync('/e') as string[]).sort(),
  root: (ofs.readdirSync('/') as string[]).sort(),
  whiteoutXattr: xattr.getAttributeSync(`${base}/upper/d/gone`, 'user.overlay.whiteout') !== null,
  parentMarker: xattr.getAttributeSync(`${base}/upper/d`, 'user.overlay.opaque')?.toString(),
  opaque: xattr.getAttributeSync(`${base}/upper/sub`, 'user.overlay.opaque')?.toString(),
  redirect: xattr.getAttributeSync(`${base}/upper/e`, 'user.overlay.redirect')?.toString(),
  trusted: fs.readdirSync(`${base}/upper`).length > 0,
};
overlay.close();
const again = new SyncFs(new Overlay({ lowerdir: `${base}/lower`, upperdir: `${base}/upper`, workdir: `${base}/work`, redirect_dir: 'on' }));
process.stdout.write(JSON.stringify({ ...result, reopened: (again.readdirSync('/e') as string[]).sort(), reopenedRoot: (again.readdirSync('/') as string[]).sort() }));
