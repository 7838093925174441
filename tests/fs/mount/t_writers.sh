#!/usr/bin/env bash
# t_writers.sh - checkpoint writers as frameworks do it (ckpt_writers.py:
# temp file + os.replace, zip writers that seek back, truncate, append), and
# autocommit for frameworks that never rename.
. "$(dirname "$0")/lib.sh"
lib_init "$@"

mount_fs -o autocommit=1
python3 "$(dirname "$0")/ckpt_writers.py" "$MNT/pyrun" || fail "ckpt_writers.py"

note "autocommit=1: an idle open version is committed"
mkdir -p "$MNT/auto/v1" || fail "mkdir"
exec 7>"$MNT/auto/v1/data"
echo hello >&7
sleep 2.5
# A file open for writing holds the commit back.
[ "$(xattr user.ckpt.state "$MNT/auto/v1")" = open ] || fail "committed while a writer had it open"
exec 7>&-
for _ in $(seq 1 50); do
	[ "$(xattr user.ckpt.state "$MNT/auto/v1")" = committed ] && break
	sleep 0.1
done
[ "$(xattr user.ckpt.state "$MNT/auto/v1")" = committed ] || fail "autocommit did not commit"
[ "$(readlink "$MNT/auto/latest")" = v1 ] || fail "latest after autocommit"
[ "$(cat "$MNT/auto/v1/data")" = hello ] || fail "content after autocommit"
grep -q "autocommitted auto/v1" "$DLOG" || fail "autocommit not logged"
umount_fs
echo PASS
