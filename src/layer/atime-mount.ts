// The upper layer reached through a private clone of its mount whose atime flags are the overlay's,
// as the kernel's overlay reaches its upper layer (ovl_get_upper clones the mount and drops the host's
// atime flags). A read of an upper file then updates its atime by the overlay's rule, in the kernel,
// without a utimensat (which would change the ctime too).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as sys from '../sys/index.js';
import {
  MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
  mountSetattr, openTreeClone,
} from '../sys/mount-api.js';

export type AtimeRule = 'relatime' | 'strictatime' | 'noatime';

const RULE_ATTR: Record<AtimeRule, number> = {
  relatime: MOUNT_ATTR_RELATIME,
  strictatime: MOUNT_ATTR_STRICTATIME,
  noatime: MOUNT_ATTR_NOATIME,
};

/** The clone (kept open for the layer's life) and the directories opened again through it. */
export interface AtimeMount {
  tree: number;
  fds: number[];
}

/**
 * Opens the directories open at `fds` again through one private clone of the mount of their common
 * ancestor (an upper layer and its work dir must share a mount, or a rename between them is EXDEV),
 * with the atime flags `rule` and `nodiratime` say. Undefined where that cannot be done: no
 * CAP_SYS_ADMIN over the mount namespace (EPERM), a kernel before 5.12, or the directories not on
 * the ancestor's mount; the caller keeps its own fds then, and the host mount's rules.
 */
export function reopenWithAtime(fds: number[], rule: AtimeRule, nodiratime: boolean): AtimeMount | undefined {
  let tree: number | undefined;
  const opened: number[] = [];
  try {
    const paths = fds.map((fd) => fs.readlinkSync(`/proc/self/fd/${fd}`));
    const ancestor = paths.reduce(commonAncestor);
    tree = openTreeClone(sys.AT_FDCWD, ancestor);
    setAtimeRule(tree, rule, nodiratime);
    for (let i = 0; i < fds.length; i++) {
      const rel = path.relative(ancestor, paths[i]!) || '.';
      const fd = sys.openat2(tree, rel, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, { noSymlinks: true });
      opened.push(fd);
      // The clone holds the ancestor's mount only: a directory on a mount below it would be the
      // directory that mount covers, not the layer.
      const was = sys.statx(fds[i]!, '', sys.AT_EMPTY_PATH);
      const now = sys.statx(fd, '', sys.AT_EMPTY_PATH);
      if (was.dev !== now.dev || was.ino !== now.ino) throw new Error('not on the ancestor mount');
    }
    return { tree, fds: opened };
  } catch {
    for (const fd of opened) fs.closeSync(fd);
    if (tree !== undefined) fs.closeSync(tree);
    return undefined;
  }
}

/**
 * Gives the clone `tree` new atime flags, as a remount gives the kernel overlay's mount new ones: every
 * real file opened through the clone, already open or not, reads by them from the next read on.
 */
export function setAtimeRule(tree: number, rule: AtimeRule, nodiratime: boolean): void {
  mountSetattr(tree, RULE_ATTR[rule] | (nodiratime ? MOUNT_ATTR_NODIRATIME : 0), MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME);
}

function commonAncestor(a: string, b: string): string {
  const as = a.split('/');
  const bs = b.split('/');
  let n = 0;
  while (n < as.length && n < bs.length && as[n] === bs[n]) n++;
  return as.slice(0, n).join('/') || '/';
}
