# shellcheck shell=bash
# lib.sh - shared helpers of the mount tests (sourced, not run).
#
# Usage in a test:   . "$(dirname "$0")/lib.sh"; lib_init "$@"
# Arguments of every test: the path of the ckptfs binary.
# lib_init makes a temp dir ($T) with a store ($STORE) and mount point ($MNT),
# and a trap that unmounts, stops the daemon and removes $T on any exit.
# mount_fs starts the daemon in the foreground (-f) with its stderr in
# $T/daemon.N.log; umount_fs unmounts and fails the test when the daemon did
# not exit 0 or its log holds a sanitizer report.

set -uo pipefail

fail() {
	echo "FAIL: $*"
	exit 1
}

note() {
	echo "--- $*"
}

DPID=
DLOG=
NMOUNT=0

lib_cleanup() {
	local rc=$?

	if [ -n "${MNT:-}" ] && mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill "$DPID" 2>/dev/null
		sleep 0.5
		kill -9 "$DPID" 2>/dev/null
	fi
	if [ "$rc" -ne 0 ] && [ -n "$DLOG" ] && [ -f "$DLOG" ]; then
		echo "--- daemon log ($DLOG), last lines:"
		tail -n 40 "$DLOG"
	fi
	[ -n "${T:-}" ] && rm -rf "$T"
	exit "$rc"
}

lib_init() {
	CKPTFS=${1:?usage: TEST CKPTFS_BINARY}
	[ -x "$CKPTFS" ] || fail "ckptfs binary $CKPTFS is missing; build first"
	if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
		echo "SKIP: /dev/fuse or fusermount3 is missing; these tests need FUSE"
		exit 77
	fi
	T=$(mktemp -d /tmp/ckptfs-test.XXXXXX) || exit 1
	STORE=$T/store
	MNT=$T/mnt
	mkdir -p "$MNT"
	trap lib_cleanup EXIT
	trap 'exit 1' INT TERM
}

# mount_fs [-o opts]: start ckptfs STORE MNT -f ... and wait for the mount.
# CKPTFS_TEST_OPTS: options every mount of the tests gets ("-o io_uring": the
# suite over FUSE over io_uring, with the fuse module's enable_uring set).
mount_fs() {
	local _

	NMOUNT=$((NMOUNT + 1))
	DLOG=$T/daemon.$NMOUNT.log
	# shellcheck disable=SC2086 # one word per option
	# (not holding cache_hold's lock: a daemon left behind would keep it)
	"$CKPTFS" "$STORE" "$MNT" -f ${CKPTFS_TEST_OPTS:-} "$@" 2>"$DLOG" 8>&- &
	DPID=$!
	for _ in $(seq 1 200); do
		if mountpoint -q "$MNT"; then
			return 0
		fi
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$DLOG"
	fail "ckptfs did not mount $MNT"
}

# check_log FILE: no sanitizer report in a daemon log.
check_log() {
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$1"; then
		cat "$1"
		fail "sanitizer report in the daemon log $1"
	fi
}

# umount_fs: unmount, wait for the daemon, require exit 0 and a clean log.
umount_fs() {
	local rc

	fusermount3 -u "$MNT" || fail "fusermount3 -u $MNT failed"
	for _ in $(seq 1 600); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.05
	done
	wait "$DPID"
	rc=$?
	DPID=
	check_log "$DLOG"
	[ "$rc" -eq 0 ] || fail "the daemon exited with status $rc after unmount"
}

# kill9_fs: kill -9 the daemon and clear the dead mount.
kill9_fs() {
	kill -9 "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
	DPID=
	check_log "$DLOG"
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	for _ in $(seq 1 100); do
		mountpoint -q "$MNT" || return 0
		sleep 0.05
	done
	fail "$MNT still mounted after kill -9"
}

# alive: the daemon still runs and the mount answers.
alive() {
	kill -0 "$DPID" 2>/dev/null || fail "the daemon died ($*)"
	stat "$MNT/.stats" >/dev/null || fail "the mount stopped answering ($*)"
}

# expect_err ERRNO_TEXT CMD...: CMD must fail and print ERRNO_TEXT.
expect_err() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then
		fail "'$*' succeeded; expected '$want'"
	fi
	case "$out" in
	*"$want"*) ;;
	*) fail "'$*' failed with '$out'; expected '$want'" ;;
	esac
}

# xattr NAME PATH: the value of an xattr (empty on error).
xattr() {
	getfattr --only-values -n "$1" "$2" 2>/dev/null
}

# need_drop: skip the test (77) unless the page cache can be dropped (root);
# then drop drops it.
need_drop() {
	if ! [ -w /proc/sys/vm/drop_caches ]; then
		echo "SKIP: dropping the page cache (/proc/sys/vm/drop_caches) needs root"
		exit 77
	fi
}

# The page cache is the machine's, and meson runs tests in parallel: every
# drop takes CACHE_LOCK exclusively, and a test that counts cached pages
# holds it shared (cache_hold) so that another test's drop cannot empty the
# cache it counts (one candidate for t_resident.sh's 6126 of 6144 pages in
# a sanitizer run, not reproduced). Its own drops let go of it meanwhile.
# fd 8 holds it.
CACHE_LOCK=/tmp/ckptfs-tests-page-cache.lock
cache_hold() {
	exec 8>>"$CACHE_LOCK"
	flock -s 8
	CACHE_HELD=1
}

drop() {
	sync
	[ -n "${CACHE_HELD:-}" ] && flock -u 8
	flock -x "$CACHE_LOCK" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
	[ -n "${CACHE_HELD:-}" ] && flock -s 8
	return 0
}

# xxh PATH: what xxhsum -H2 prints for a file (its progress display on
# stderr is dropped; a read error leaves the output empty).
xxh() {
	xxhsum -H2 "$1" 2>/dev/null | cut -d' ' -f1
}

# flip_stored SRC OFF: flip one byte of the store's copy of SRC's bytes at
# OFF. The bytes are found by content (the 64 bytes at OFF searched for in
# every file under $STORE), so this does not depend on the store's layout;
# it needs chunks stored uncompressed. Prints what it flipped.
flip_stored() {
	python3 - "$1" "$2" "$STORE" <<'PY'
import os, sys
data = open(sys.argv[1], "rb").read()
off = int(sys.argv[2])
needle = data[off:off + 64]
for root, dirs, files in os.walk(sys.argv[3]):
    for name in files:
        p = os.path.join(root, name)
        with open(p, "r+b") as f:
            blob = f.read()
            i = blob.find(needle)
            if i < 0:
                continue
            f.seek(i + 7)
            f.write(bytes([blob[i + 7] ^ 0x01]))
            print("flipped byte %d of %s" % (i + 7, p))
            sys.exit(0)
sys.exit(1)
PY
}
