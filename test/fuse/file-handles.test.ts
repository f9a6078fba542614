// File handles through the ovlfs mount, next to the kernel overlay without nfs_export (the default): a
// handle that could be opened again is refused (name_to_handle_at answers EOPNOTSUPP, so xfstests'
// _require_exportfs skips), and a handle asked for only as an identifier (AT_HANDLE_FID, as fanotify
// takes it) is given. Without FUSE_NO_EXPORT_SUPPORT at INIT, the kernel's FUSE client encodes handles
// from node ids that open_by_handle_at cannot find again once the inode is evicted (ESTALE).
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import koffi from 'koffi';

import { libc } from '../../src/sys/libc.js';
import { mountSideBySide, sideBySideSkip, type SideBySide } from '../support/side-by-side.js';

const reason = sideBySideSkip('file handle tests');

const AT_HANDLE_FID = 0x200;
const MAX_HANDLE_SZ = 128;
const nameToHandleAt = libc.func('int name_to_handle_at(int dirfd, const char *path, _Inout_ uint8_t *handle, _Out_ int *mount_id, int flags)');

/** 'ok' or the errno name name_to_handle_at answers for `path`. */
function handleOf(path: string, flags: number): string {
  const handle = Buffer.alloc(8 + MAX_HANDLE_SZ);
  handle.writeUInt32LE(MAX_HANDLE_SZ, 0);
  const mountId = [0];
  if (nameToHandleAt(-100, path, handle, mountId, flags) === 0) return 'ok';
  const errno = koffi.errno();
  return ({ 95: 'EOPNOTSUPP', 116: 'ESTALE', 2: 'ENOENT' } as Record<number, string>)[errno] ?? `errno ${errno}`;
}

describe('file handles, as the kernel overlay without nfs_export', { skip: reason }, () => {
  let s: SideBySide;

  before(async () => {
    s = await mountSideBySide('ovlfs-handles-', (dir) => {
      for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d), { recursive: true });
      mkdirSync(join(dir, 'l', 'dir'));
      writeFileSync(join(dir, 'l', 'dir', 'lower'), 'below\n');
    }, (dir) => `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`);
    for (const m of [s.kmnt, s.omnt]) writeFileSync(join(m, 'upper'), 'above\n');
  });
  after(async () => {
    await s?.close();
  });

  for (const [what, flags] of [['an exportable handle', 0], ['a fid (AT_HANDLE_FID)', AT_HANDLE_FID]] as const) {
    test(what, () => {
      for (const name of ['upper', 'dir', 'dir/lower', '']) {
        const kernel = handleOf(join(s.kmnt, name), flags);
        assert.equal(handleOf(join(s.omnt, name), flags), kernel, `name_to_handle_at(${name || '.'}, ${flags}): the kernel overlay answers ${kernel}`);
      }
    });
  }
});
