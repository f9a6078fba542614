// mount(2) for a FUSE file system, called directly instead of running mount(8): every container start
// runs the mount program, and forking this process for mount(8) cost more than everything else the
// mount does. Generic options become MS_* flags; the rest is the FUSE data string (fd=…,rootmode=…).
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const mountCall = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)') as (
  source: string,
  target: string,
  fstype: string,
  flags: number,
  data: string,
) => number;

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
  if (mountCall(source, target, fstype, flags, data.join(',')) !== 0) {
    const errno = koffi.errno();
    const e = new Error(`mount(2) of ${target} failed: ${errnoName(errno)}`) as NodeJS.ErrnoException;
    e.errno = -errno;
    throw e;
  }
}

function errnoName(n: number): string {
  const names: Record<number, string> = { 1: 'EPERM (not permitted)', 2: 'ENOENT', 13: 'EACCES', 16: 'EBUSY', 19: 'ENODEV (no fuse in this kernel)', 20: 'ENOTDIR', 22: 'EINVAL' };
  return names[n] ?? `errno ${n}`;
}
