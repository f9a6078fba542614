#!/bin/sh
# The ovlfs command for containers/storage's mount_program, so that only one Node starts before the
# mount answers (README, "Start-up"). In fuse-overlayfs's form (the first argument a flag) it starts
# ovlfs.cjs in the background with a pipe on fd 3 and returns as soon as ovlfs.cjs says its exit status
# there: as root, once it has mounted; the same process then goes on to serve the mount. Every other
# form, and the forms that stay attached (-f, -d, debug), run ovlfs.cjs as it is.
self=$0
[ -L "$self" ] && self=$(readlink -f "$self")
js=${self%/*}/ovlfs.cjs
case $1 in
-*) ;;
*) exec node "$js" "$@" ;;
esac
case " $* " in
*" -f "* | *" --foreground "* | *" -d "* | *" --debug "* | *debug*) exec node "$js" "$@" ;;
esac
# The mount makes no TLS connection; reading these certificates costs every Node start-up time.
unset NODE_EXTRA_CA_CERTS
exec 4>&1
status=$(OVLFS_STATUS_FD=3 node "$js" "$@" 3>&1 1>&4 4>&- &)
exec 4>&-
case $status in
'' | *[!0-9]*) exit 32 ;;
esac
exit "$status"
