// Which overlay xattrs an image's layers carry: trusted.overlay.* when privileged, user.overlay.*
// otherwise (and in a user namespace), as the mount chooses them, so a pulled layer is a lowerdir
// for the mount made in the same place.
import { inUserNamespace } from '../overlay/index.js';

export interface XattrChoice {
  /** true: user.overlay.*; false: trusted.overlay.*; default: as the mount would choose. */
  userxattr?: boolean;
}

export function isPrivileged(): boolean {
  return process.getuid?.() === 0 && !inUserNamespace();
}

export function imageXattrs(choice: XattrChoice): { xattrPrefix: string; privileged: boolean } {
  const privileged = isPrivileged();
  const user = choice.userxattr ?? !privileged;
  return { xattrPrefix: user ? 'user.overlay.' : 'trusted.overlay.', privileged };
}
