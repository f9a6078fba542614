#!/bin/sh
# The ovlfs command for containers/storage's mount_program, so that only one Node starts before the
# mount answers (README, "Start-up"). In fuse-overlayfs's form (the first argument a flag) it starts
# ovlfs.cjs in the background with a pipe on fd 3 and returns as soon as ovlfs.cjs says its exit status
# there: as root, once it has mounted; the same process then goes on to serve the mount. A spare daemon
# that waits for a mount (src/cli/spare.ts) takes it instead, when there is one that may (OVLFS_SPARE=0
# turns spares off). Every other form, and the forms that stay attached (-f, -d, debug), run ovlfs.cjs
# as it is.
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

# $state and $start: fields 3 and 22 of a /proc/PID/stat line given from field 3 on (a process's state
# and start time).
stat_fields() {
  set -- $1
  state=$1
  shift 19
  start=$1
}

# Hands the mount to a spare daemon (src/cli/spare.ts): a daemon whose mount has ended and that waits
# for the next one. 0 when one took it: it then holds this shell's fd 3 (the status pipe), 1 (stdout)
# and 5 (stderr, kept there because the 2>/dev/null below hold fd 2 while the spare opens them).
handoff() {
  [ "${OVLFS_SPARE-}" != 0 ] || return 1
  dir=${OVLFS_SPARE_DIR:-${XDG_RUNTIME_DIR:-/run}/ovlfs/spares}
  me=
  for ready in "$dir"/*.ready; do
    [ -f "$ready" ] || return 1
    # Only a spare of this user's: a file someone else put there could name any process to signal.
    [ -O "$ready" ] || continue
    # This shell's pid (not $$, the script's), read only once there is a spare to claim.
    [ -n "$me" ] || read -r me _ 2>/dev/null </proc/self/stat || return 1
    name=${ready%.ready}
    spare=${name##*/}
    pid=${spare%.*}
    # A process with the spare's pid that started later is not the spare; a zombie is none either.
    read -r stat 2>/dev/null <"/proc/$pid/stat" || continue
    stat_fields "${stat##*) }"
    [ "$start" = "${spare#*.}" ] || continue
    case $state in Z | X) continue ;; esac
    # The spare answers with a signal that nothing else would mind if it went astray: SIGURG taken,
    # SIGWINCH refused; either ends the wait at once.
    answer=
    sleep 5 >/dev/null 3>&- 5>&- &
    wait_pid=$!
    trap 'answer=taken; kill "$wait_pid" 2>/dev/null' URG
    trap 'answer=refused; kill "$wait_pid" 2>/dev/null' WINCH
    # O_EXCL: of the scripts that race for one spare, one makes the claim.
    set -C
    if { printf '%s\0' "$me" "$@" >"$name.claim"; } 2>/dev/null && kill -USR2 "$pid" 2>/dev/null; then
      set +C
      wait "$wait_pid" 2>/dev/null
    else
      set +C
      answer=gone # claimed by another script, retiring, or dead
      kill "$wait_pid" 2>/dev/null
    fi
    trap - URG WINCH
    # Collects the sleep quietly (a wait that a trap ended has not, and dash would say "Terminated").
    wait "$wait_pid" 2>/dev/null
    case $answer in
    taken) return 0 ;;
    refused | gone) ;;
    # No answer in 5 s: it died or hangs; it must not take this mount later.
    *) kill -KILL "$pid" 2>/dev/null ;;
    esac
  done
  return 1
}

exec 4>&1
status=$(handoff "$@" 3>&1 1>&4 4>&- 5>&2 || OVLFS_STATUS_FD=3 node "$js" "$@" 3>&1 1>&4 4>&- &)
exec 4>&-
case $status in
'' | *[!0-9]*) exit 32 ;;
esac
exit "$status"
