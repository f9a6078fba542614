// mount(2) for a FUSE file system, called directly instead of running mount(8): every container start
// runs the mount program, and forking this process for mount(8) cost more than everything else the
// mount does. Generic options become MS_* flags; the rest is the FUSE data string (fd=…,rootmode=…).
// koffi is loaded on the first mount, not on import: the data string is wanted where koffi is not.
import { createRequire } from 'node:module';

type MountCall = (source: string, target: string, fstype: string, flags: number, data: string) => number;
type Koffi = typeof import('koffi');

let koffi: Koffi | undefined;
let mountCall: MountCall | undefined;

function libcMount(): { call: MountCall; errno: () => number } {
  if (koffi === undefined || mountCall === undefined) {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
    mountCall = koffi.load('libc.so.6').func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)') as MountCall;
  }
  const k = koffi;
  return { call: mountCall, errno: () => k.errno() };
}

/** How the mount is made, as mount(8)'s -o and the FUSE data string take it. */
export interface FuseMountFlags {
  /** Let users other than the mounter in (mount option allow_other). */
  allowOther?: boolean;
  /** Let the kernel check permissions from the mode bits, so no ACCESS requests are sent. */
  defaultPermissions?: boolean;
  readOnly?: boolean;
  /** Further -o options for mount(8), e.g. 'noatime'. */
  extraOptions?: string[];
}

/** The options of a FUSE mount served on /dev/fuse fd `fd`, for mountFuseSyscall (or, after the first four, fusermount3). */
export function fuseMountData(fd: number, o: FuseMountFlags): string {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const parts = [`fd=${fd}`, 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`];
  if (o.allowOther) parts.push('allow_other');
  if (o.defaultPermissions) parts.push('default_permissions');
  if (o.readOnly) parts.push('ro');
  parts.push(...(o.extraOptions ?? []));
  return parts.join(',');
}

const FLAGS: Record<string, number> = {
  ro: 1, // MS_RDONLY
  nosuid: 2,
  nodev: 4,
  noexec: 8,
  sync: 16,
  dirsync: 128,
  noatime: 1024,
  nodiratime: 2048,
  relatime: 1 << 21,
  strictatime: 1 << 24,
  lazytime: 1 << 25,
};

const MS_REMOUNT = 32;

/** Mounts; throws an Error naming the errno (as mount(8) would report it) on failure. */
export function mountFuseSyscall(source: string, target: string, fstype: string, options: string): void {
  let flags = 0;
  const data: string[] = [];
  for (const o of options.split(',')) {
    if (o === '') continue;
    const f = FLAGS[o];
    if (f !== undefined) flags |= f;
    else data.push(o);
  }
  callMount(source, target, fstype, flags, data.join(','));
}

/**
 * Changes the flags of the FUSE mount at `target` to `options` (generic options only: ro, nosuid,
 * noatime, ...; what is not named is cleared, as mount(8) asks), as the kernel's fuse_reconfigure
 * takes it: the superblock turns read-only or back, the daemon is not asked, and FUSE's own options
 * cannot change (the kernel ignores them on a remount).
 */
export function remountFuseSyscall(target: string, options: string[]): void {
  let flags = MS_REMOUNT;
  for (const o of options) flags |= FLAGS[o] ?? 0;
  callMount('', target, '', flags, '');
}

function callMount(source: string, target: string, fstype: string, flags: number, data: string): void {
  const libc = libcMount();
  if (libc.call(source, target, fstype, flags, data) !== 0) {
    const errno = libc.errno();
    const e = new Error(`mount(2) of ${target} failed: ${errnoName(errno)}`) as NodeJS.ErrnoException;
    e.errno = -errno;
    throw e;
  }
}

function errnoName(n: number): string {
  const names: Record<number, string> = { 1: 'EPERM (not permitted)', 2: 'ENOENT', 13: 'EACCES', 16: 'EBUSY', 30: 'EROFS', 19: 'ENODEV (no fuse in this kernel)', 20: 'ENOTDIR', 22: 'EINVAL' };
  return names[n] ?? `errno ${n}`;
}
