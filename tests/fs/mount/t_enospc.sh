#!/usr/bin/env bash
# t_enospc.sh - a store whose disk fills up (SPEC §3: ENOSPC reaches the
# writer at write, fsync, close or commit; the daemon keeps running; nothing
# committed is lost). The store is on a 24 MiB tmpfs. Write-only descriptors
# send no FLUSH at close (FOPEN_NOFLUSH, docs/mount.md "Caching"), so this
# checks the other places: a file far larger than the free space fails at
# write (the chunks that did not reach the disk fail the writes after them);
# small files that only go to the disk at the commit (and a cp that fits in
# the writes in flight) make the commit fail with ENOSPC, and the version
# stays open; the committed version before it reads back whole; once the
# failed versions are removed and the garbage collected, new commits work,
# and everything committed survives a remount.
. "$(dirname "$0")/lib.sh"
lib_init "$@"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (a small tmpfs for the store)"; exit 77; }
SMALL=$T/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=24m ckptfs-test-enospc "$SMALL" || { echo "SKIP: cannot mount a tmpfs"; exit 77; }
STORE=$SMALL/store
enospc_cleanup() {
	local rc=$?

	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
	fi
	[ -n "$DPID" ] && { wait "$DPID" 2>/dev/null || true; }
	DPID=
	umount "$SMALL" 2>/dev/null || umount -l "$SMALL"
	(exit "$rc")
	lib_cleanup
}
trap enospc_cleanup EXIT

# small DIR N: N files of a few distinct bytes each (one process)
small() {
	python3 - "$1" "$2" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    fd = os.open(os.path.join(d, "f-%04d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"small file %d of %s\n" % (i, d.encode()))
    os.close(fd)
PY
}

mount_fs
R=$MNT/run
mkdir -p "$R/v1.tmp" || fail "mkdir v1"
head -c 2M /dev/urandom >"$T/two" || fail "random bytes"
cp "$T/two" "$R/v1.tmp/two" && small "$R/v1.tmp" 200 || fail "write v1"
mv "$R/v1.tmp" "$R/v1" || fail "commit v1"
(cd "$R/v1" && xxhsum -H2 two f-*) >"$T/v1.xxh" 2>/dev/null || fail "hash v1"

note "a file larger than the free space fails at write"
mkdir "$R/v2.tmp" || fail "mkdir v2"
# 256 MiB: more than the writes the store keeps in flight (64 MiB), so the
# writer waits for the disk and hears of its failures
out=$(dd if=/dev/urandom of="$R/v2.tmp/big" bs=1M count=256 2>&1) && fail "dd of 256 MiB to 22 MiB free succeeded"
case "$out" in
*"error writing"*"No space left on device"*) ;;
*) fail "dd did not fail at write with ENOSPC: $out" ;;
esac
expect_err "No space left on device" mv "$R/v2.tmp" "$R/v2"
[ "$(xattr user.ckpt.state "$R/v2.tmp")" = open ] || fail "v2.tmp is not open after the failed commit"
alive "after the failed write"

note "small files on a full disk: the commit fails"
mkdir "$R/v3.tmp" || fail "mkdir v3"
small "$R/v3.tmp" 300 || fail "small files: open, write or close failed (their bytes go to the disk at commit)"
cp "$T/two" "$R/v3.tmp/two" 2>"$T/cp.err" || note "cp failed: $(cat "$T/cp.err")"
expect_err "No space left on device" mv "$R/v3.tmp" "$R/v3"
[ "$(xattr user.ckpt.state "$R/v3.tmp")" = open ] || fail "v3.tmp is not open after the failed commit"
grep -q "No space left on device" "$DLOG" || fail "ENOSPC not logged"
alive "after the failed commits"
(cd "$R/v1" && xxhsum -H2 -c "$T/v1.xxh") >/dev/null || fail "v1 does not read back whole"

note "space again: remove the failed versions, collect, commit"
rm -r "$R/v2.tmp" "$R/v3.tmp" || fail "rm -r of the failed open versions"
setfattr -n user.ckpt.gc -v 1 "$MNT" || fail "gc"
mkdir "$R/v4.tmp" && small "$R/v4.tmp" 300 && cp "$T/two" "$R/v4.tmp/two" || fail "write v4"
mv "$R/v4.tmp" "$R/v4" || fail "commit v4 after the gc"
(cd "$R/v4" && xxhsum -H2 two f-*) >"$T/v4.xxh" 2>/dev/null || fail "hash v4"
umount_fs

note "remount: v1 and v4 whole"
mount_fs
(cd "$MNT/run/v1" && xxhsum -H2 -c "$T/v1.xxh") >/dev/null || fail "v1 after the remount"
(cd "$MNT/run/v4" && xxhsum -H2 -c "$T/v4.xxh") >/dev/null || fail "v4 after the remount"
[ ! -e "$MNT/run/v2" ] && [ ! -e "$MNT/run/v3" ] || fail "a failed version shows as committed"
umount_fs
echo PASS
