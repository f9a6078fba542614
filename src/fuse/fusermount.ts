// Mounting a FUSE file system without root, the way libfuse does: fusermount3 (setuid root, from the
// fuse3 package) opens /dev/fuse, mounts it on a mount point the user owns, and hands the open device
// back over a Unix socket whose fd number it finds in $_FUSE_COMMFD, as an SCM_RIGHTS message.
// Node can make neither a socketpair nor a recvmsg with control data, so both go through koffi here.
import { accessSync, closeSync, constants } from 'node:fs';

import koffi from 'koffi';

import { childProcess } from '../sys/lazy-builtins.js';

const libc = koffi.load('libc.so.6');
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;

const socketpair = libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)') as (d: number, t: number, p: number, sv: number[]) => number;
const iovec = koffi.struct('ovlfs_iovec', { iov_base: 'void *', iov_len: 'size_t' });
const msghdr = koffi.struct('ovlfs_msghdr', {
  msg_name: 'void *',
  msg_namelen: 'uint32_t',
  msg_iov: koffi.pointer(iovec),
  msg_iovlen: 'size_t',
  msg_control: 'void *',
  msg_controllen: 'size_t',
  msg_flags: 'int',
});
const recvmsg = libc.func('recvmsg', 'intptr_t', ['int', koffi.inout(koffi.pointer(msghdr)), 'int']) as (fd: number, msg: Record<string, unknown>, flags: number) => number;

/** The fusermount3 on PATH (or the usual places), or undefined. */
export function findFusermount(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/bin', '/usr/local/bin']) {
    if (dir === '') continue;
    const p = `${dir}/fusermount3`;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Receives one fd sent with SCM_RIGHTS on `sock`, or undefined if the peer closed without one. */
function receiveFd(sock: number): number | undefined {
  const data = Buffer.alloc(1);
  const control = Buffer.alloc(64); // CMSG_SPACE(sizeof(int)) is 24 on 64-bit Linux
  const msg = {
    msg_name: null,
    msg_namelen: 0,
    msg_iov: [{ iov_base: data, iov_len: data.length }],
    msg_iovlen: 1,
    msg_control: control,
    msg_controllen: control.length,
    msg_flags: 0,
  };
  let n: number;
  do n = recvmsg(sock, msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && koffi.errno() === 4 /* EINTR */);
  if (n <= 0) return undefined;
  // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; unsigned char data[]; }
  const len = Number(control.readBigUInt64LE(0));
  if (len < 20 || control.readInt32LE(8) !== SOL_SOCKET || control.readInt32LE(12) !== SCM_RIGHTS) return undefined;
  return control.readInt32LE(16);
}

/**
 * Mounts through fusermount3 and returns the /dev/fuse fd to serve. `options` are fusermount3's -o
 * (fsname=…,subtype=…,allow_other,default_permissions,ro,nodev,…). Throws with fusermount3's message.
 */
export function fusermountMount(fusermount: string, mountpoint: string, options: string): number {
  const sv = [-1, -1];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) throw new Error(`socketpair failed (errno ${koffi.errno()})`);
  const [mine, theirs] = sv as [number, number];
  try {
    // spawn's stdio array maps index i to the child's fd i: its end of the socket is fd 3 there.
    const r = childProcess().spawnSync(fusermount, ['-o', options, '--', mountpoint], {
      stdio: ['ignore', 'ignore', 'pipe', theirs],
      env: { ...process.env, _FUSE_COMMFD: '3' },
      encoding: 'utf8',
    });
    closeSync(theirs);
    if (r.error) throw new Error(`cannot run ${fusermount}: ${r.error.message}`);
    const fd = receiveFd(mine);
    if (r.status !== 0 || fd === undefined) {
      if (fd !== undefined) closeSync(fd);
      throw new Error(`${fusermount} failed: ${(r.stderr ?? '').trim().replace(/^fusermount3: /, '') || `status ${r.status}`}`);
    }
    return fd;
  } finally {
    closeSync(mine);
  }
}

/** Unmounts a mount made by fusermountMount; `lazy` detaches it even if busy. */
export function fusermountUnmount(fusermount: string, mountpoint: string, lazy = false): { status: number | null; stderr: string } {
  const r = childProcess().spawnSync(fusermount, [lazy ? '-uz' : '-u', '--', mountpoint], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  return { status: r.status, stderr: (r.stderr ?? '').trim() };
}
