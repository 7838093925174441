#!/usr/bin/env bash
# t_mount_helper.sh - mounting the way mount(8) and /etc/fstab do: through
# the fuse3 helper (mount.fuse3 with -t fuse.ckptfs, which runs
# `ckptfs STORE MOUNT -o ...` in the background), a test fstab with
# `mount -T FSTAB`, and unmounting with umount(8). The daemonized ckptfs
# logs to syslog, so sanitizer reports go to files ($T/asan.*) and are checked.
. "$(dirname "$0")/lib.sh"
lib_init "$@"
command -v mount.fuse3 >/dev/null || { echo "SKIP: mount.fuse3 (package fuse3) is missing"; exit 77; }

BIN=$(cd "$(dirname "$CKPTFS")" && pwd)
export PATH="$BIN:$PATH"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/asan"

# wait_gone: the background daemon of $STORE has exited.
wait_gone() {
	for _ in $(seq 1 200); do
		pgrep -f "ckptfs $STORE " >/dev/null || return 0
		sleep 0.05
	done
	fail "the daemon of $STORE did not exit after umount"
}

check_asan() {
	if ls "$T"/asan.* >/dev/null 2>&1; then
		cat "$T"/asan.*
		fail "sanitizer report from the daemon"
	fi
}

note "mount.fuse3 STORE MNT -t fuse.ckptfs -o OPTS"
mount.fuse3 "$STORE" "$MNT" -t fuse.ckptfs -o autocommit=30,verify=always,write_buffer=32M ||
	fail "mount.fuse3 failed"
mountpoint -q "$MNT" || fail "not mounted after mount.fuse3"
findmnt -n -o FSTYPE "$MNT" | grep -qx fuse.ckptfs || fail "fstype is not fuse.ckptfs"
mkdir -p "$MNT/r/v" && echo hi >"$MNT/r/v/f" && mv "$MNT/r/v" "$MNT/r/v1" || fail "use"
umount "$MNT" || fail "umount"
wait_gone
check_asan

# mount(8) runs helpers with a clean environment (no PATH): an installed
# ckptfs is found in /usr/local/bin or /usr/bin with the fuse.ckptfs type; a
# build-tree binary is named in the source field as PROGRAM#STORE.
note "fstab line: PROGRAM#STORE MNT fuse OPTS 0 0, mount -T FSTAB MNT"
printf '%s#%s %s fuse noauto,verify=first,keep_last=3 0 0\n' "$CKPTFS" "$STORE" "$MNT" >"$T/fstab"
mount -T "$T/fstab" "$MNT" || fail "mount via a test fstab failed"
[ "$(cat "$MNT/r/v1/f")" = hi ] || fail "content through the fstab mount"
umount "$MNT" || fail "umount"
wait_gone
check_asan

note "mount -t fuse.ckptfs and a fuse.ckptfs fstab line, ckptfs in /usr/local/bin"
# In a private mount namespace a directory holding ckptfs is bound over
# /usr/local/bin, as after `meson install`, so nothing on the host changes.
if unshare -m --propagation private true 2>/dev/null; then
	mkdir -p "$T/bin"
	ln -s "$CKPTFS" "$T/bin/ckptfs"
	printf '%s %s fuse.ckptfs noauto,verify=always 0 0\n' "$STORE" "$MNT" >"$T/fstab2"
	unshare -m --propagation private bash -c '
		set -e
		mount --bind "$1/bin" /usr/local/bin
		mount -t fuse.ckptfs "$2" "$3" -o autocommit=10,keep_last=4
		[ "$(findmnt -n -o FSTYPE "$3")" = fuse.ckptfs ]
		[ "$(cat "$3/r/v1/f")" = hi ]
		umount "$3"
		mount -T "$1/fstab2" "$3"
		[ "$(cat "$3/r/v1/f")" = hi ]
		umount "$3"' _ "$T" "$STORE" "$MNT" || fail "mount -t fuse.ckptfs / fstab with fuse.ckptfs"
	wait_gone
	check_asan
else
	echo "(no unshare -m here: mount -t fuse.ckptfs not tested)"
fi

note "a bad option is refused with a message and status 2"
expect_err "verify=sometimes" "$CKPTFS" "$STORE" "$MNT" -o verify=sometimes
mountpoint -q "$MNT" && fail "mounted despite a bad option"
echo PASS
