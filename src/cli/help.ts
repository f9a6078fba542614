// The --help texts: one per subcommand, and the overview.

const OPTIONS = `mount options (-o, comma-separated; ',' and ':' in a path are escaped with '\\'):
  lowerdir=A:B:C        lower layers, top-most first (required)
  upperdir=DIR          the writable layer; needs workdir on the same filesystem (omit both: read-only)
  workdir=DIR           an empty directory ovlfs uses to build entries atomically
  redirect_dir=on|follow|off|nofollow   whether directory renames may create redirects (default follow)
  metacopy=on|off       copy up metadata only on chmod/chown/… (default off)
  index=off, xino=on|off|auto, volatile   as for the kernel overlay
  userxattr             keep overlay xattrs under user.overlay.* (the default without privilege and
                        in a user namespace, where trusted.* xattrs are out of reach)
  ro                    mount read-only
  remount               change a live mount's ro/rw and generic flags in place (mount -o remount,ro
                        MNT runs the helper so); the overlay's options are ignored, as by the kernel
  noatime, nodev, nosuid, noexec, …   passed on to the mount
fuse-overlayfs's options, as containers/storage passes them:
  fsync=0               skip fsync to the upper layer (the same as volatile)
  uidmapping=C:H:N[:C:H:N…], gidmapping=…   layer id C+i shows as H+i on the mount; what the mount
                        creates is stored with the caller's id mapped back; unmapped ids show as 65534
  squash_to_uid=N, squash_to_gid=N, squash_to_root   every file shows this owner
  xattr_permissions=1|2 keep chown/chmod in a security.*/user.containers.* override_stat xattr
allow_other and default_permissions are on when permitted: every user sees the mount, and the kernel
checks permissions from the mode bits, as it does for the kernel overlay.`;

const PRIVILEGE = `Without root: as root in a user namespace (podman and buildah rootless run their mount program
there) ovlfs mounts directly and uses user.overlay.* xattrs. As a plain user it mounts through
fusermount3 (package fuse3) on a mount point the user owns; allow_other then needs user_allow_other in
/etc/fuse.conf, and without it only the user sees the mount.`;

export const HELP = `Usage:
  ovlfs mount -o lowerdir=DIR[:DIR…],upperdir=DIR,workdir=DIR[,OPTIONS] [-f] [-d] MOUNTPOINT
  ovlfs [-f] [-d] -o OPTIONS MOUNTPOINT                  (fuse-overlayfs's form, for mount_program)
  ovlfs umount [--lazy] MOUNTPOINT
  ovlfs [mount-helper] SOURCE MOUNTPOINT -o OPTIONS     (mount(8) helper form)
  ovlfs pull|diff|commit|run …                          (images: see ovlfs pull --help, …)
  ovlfs COMMAND --help | --help | --version

Mounts the Linux overlay filesystem, served from user space over FUSE by ovlfs, at MOUNTPOINT. The
command returns once the mount is live; a daemon serves it until it is unmounted.

Commands:
  mount         for people: an option ovlfs does not know is an error
  umount        unmount (the daemon then exits)
  mount-helper  for mount -t fuse.ovlfs
  (none)        'ovlfs -o OPTIONS MOUNTPOINT' takes fuse-overlayfs's command line, so ovlfs can be the
                mount_program of containers/storage (podman, buildah): options it does not know get a
                warning on stderr and are ignored, as fuse-overlayfs does; as root it returns once it has
                mounted, while its daemon starts (the kernel holds requests until the daemon answers).
                Run as dist/bin/ovlfs.sh, a daemon whose mount has ended waits 5 minutes as a spare for
                the next mount started the same way, which it then serves with no Node start-up
                (OVLFS_SPARE=0 turns that off; spares wait in OVLFS_SPARE_DIR, by default
                $XDG_RUNTIME_DIR/ovlfs/spares or /run/ovlfs/spares)

${OPTIONS}

${PRIVILEGE}

Exit status: 0 mounted (or unmounted); 1 bad usage or no permission; 32 the mount failed.`;

export const MOUNT_HELP = `Usage: ovlfs mount -o lowerdir=DIR[:DIR…],upperdir=DIR,workdir=DIR[,OPTIONS] [FLAGS] MOUNTPOINT
       ovlfs -o OPTIONS [FLAGS] MOUNTPOINT        (fuse-overlayfs's form: unknown options are ignored)

Mounts an overlay at MOUNTPOINT and returns once it is live; a daemon serves it until it is unmounted
('ovlfs umount', umount(8), 'fusermount3 -u', or SIGTERM/SIGINT to the daemon). In fuse-overlayfs's form
as root, the command returns as soon as it has mounted and the daemon starts meanwhile; a layout the
overlay refuses only then (overlapping layers, upper and work on two filesystems) is detached, and the
reason goes to --log.

flags:
  -f, --foreground      stay attached, log to stderr, unmount on SIGINT/SIGTERM
  -d, --debug           log every FUSE request (stays attached unless --log is given)
  --log FILE            the daemon's log (default: none)
  --pidfile FILE        write the serving process's pid to FILE once mounted
  -h, --help            this text

${OPTIONS}

${PRIVILEGE}

Exit status: 0 mounted; 1 bad usage or no permission; 32 the mount failed (the reason is on stderr).`;

export const UMOUNT_HELP = `Usage: ovlfs umount [--lazy] MOUNTPOINT

Unmounts an ovlfs mount; its daemon then exits. A mount made through fusermount3 is unmounted with
'fusermount3 -u', any other with umount(8).

flags:
  -l, --lazy            detach now even if busy
  -h, --help            this text

Exit status: 0 unmounted; 1 bad usage or not mounted; 32 the unmount failed.`;

export const HELPER_HELP = `Usage: ovlfs mount-helper SOURCE MOUNTPOINT -o OPTIONS
       mount -t fuse.ovlfs SOURCE MOUNTPOINT -o OPTIONS

mount(8) runs /sbin/mount.fuse.ovlfs SOURCE MOUNTPOINT -o OPTIONS: link that name to this command
(or make it a script running 'ovlfs mount-helper "$@"'), or put ovlfs in /usr/local/bin or /usr/bin
for fuse3's mount.fuse (mount(8) clears PATH). Options ovlfs does not know get a warning and are
ignored in this form; -n, -s, -v and -t are mount(8)'s and are accepted.

${OPTIONS}`;
