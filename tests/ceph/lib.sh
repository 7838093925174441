# shellcheck shell=bash
# lib.sh - shared helpers of the RADOS tests (suite 'rados'; sourced).
#
# Usage:   . "$(dirname "$0")/lib.sh"; rlib_init "$@"
# Arguments of every test: the ckptfs binary, then the ckpt binary.
# rlib_init starts a one-node cluster (cluster.sh) in a temp dir $T with a
# pool, and sets $CONF, $POOL and $URL (rados://POOL?conf=CONF). mount_host
# NAME starts one ckptfs on $URL at $T/NAME (a "host"); the trap unmounts
# every mount, stops the daemons and the cluster and removes $T.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER=$HERE/cluster.sh

fail() {
	echo "FAIL: $*"
	exit 1
}

note() {
	echo "--- $*"
}

declare -A HPID HLOG

rlib_cleanup() {
	local rc=$? h
	for h in "${!HPID[@]}"; do
		mountpoint -q "$T/$h" 2>/dev/null && { fusermount3 -u "$T/$h" 2>/dev/null || umount -l "$T/$h" 2>/dev/null; }
		kill "${HPID[$h]}" 2>/dev/null
	done
	sleep 0.3
	for h in "${!HPID[@]}"; do
		kill -9 "${HPID[$h]}" 2>/dev/null
		if [ "$rc" -ne 0 ] && [ -f "${HLOG[$h]}" ]; then
			echo "--- log of host $h (last lines):"
			tail -n 20 "${HLOG[$h]}"
		fi
	done
	[ -n "${T:-}" ] && [ -d "$T/ceph" ] && "$CLUSTER" stop "$T/ceph"
	[ -n "${T:-}" ] && rm -rf "$T"
	exit "$rc"
}

rlib_init() {
	CKPTFS=${1:?usage: TEST CKPTFS_BINARY CKPT_BINARY}
	CKPT=${2:-}
	[ -x "$CKPTFS" ] || fail "ckptfs binary $CKPTFS is missing; build first"
	if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
		echo "SKIP: /dev/fuse or fusermount3 is missing; these tests need FUSE"
		exit 77
	fi
	T=$(mktemp -d /tmp/ckptfs-rados.XXXXXX) || exit 1
	trap rlib_cleanup EXIT
	trap 'exit 1' INT TERM
	POOL=ckpt
	local rc
	CONF=$("$CLUSTER" start "$T/ceph" "$POOL")
	rc=$?
	if [ "$rc" -eq 77 ]; then
		rm -rf "$T"
		trap - EXIT
		exit 77
	fi
	[ "$rc" -eq 0 ] || fail "the test cluster did not start"
	URL="rados://$POOL?conf=$CONF"
}

# mount_host NAME [URL] [ckptfs options...]: mount URL at $T/NAME (foreground
# daemon, stderr in $T/NAME.log) and wait for it.
mount_host() {
	local h=$1 url=${2:-$URL} _
	shift
	[ $# -gt 0 ] && shift
	mkdir -p "$T/$h"
	HLOG[$h]=$T/$h.log
	"$CKPTFS" "$url" "$T/$h" -f "$@" 2>>"${HLOG[$h]}" &
	HPID[$h]=$!
	for _ in $(seq 1 400); do
		mountpoint -q "$T/$h" && return 0
		kill -0 "${HPID[$h]}" 2>/dev/null || break
		sleep 0.05
	done
	cat "${HLOG[$h]}"
	fail "ckptfs did not mount $url on $T/$h"
}

umount_host() {
	local h=$1
	fusermount3 -u "$T/$h" || fail "cannot unmount $T/$h"
	wait "${HPID[$h]}"
	local rc=$?
	unset "HPID[$h]"
	[ "$rc" -eq 0 ] || fail "ckptfs of host $h exited $rc"
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "${HLOG[$h]}"; then
		cat "${HLOG[$h]}"
		fail "sanitizer report in host $h's log"
	fi
}

# wait_for TEST...: retry the test command for up to 10 s.
wait_for() {
	local _
	for _ in $(seq 1 200); do
		"$@" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# latest_is HOST VERSION: HOST's run/latest points at VERSION (for wait_for).
latest_is() {
	[ "$(readlink "$T/$1/${3:-run}/latest")" = "$2" ]
}
