// What this process holds open, from /proc/self/fd.
import { readdirSync, readlinkSync } from 'node:fs';

/** This process's fds open on `path` itself (a file or a directory, not what is inside it). */
export function fdsOn(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}
