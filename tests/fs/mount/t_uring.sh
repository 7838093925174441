#!/usr/bin/env bash
# t_uring.sh - -o io_uring (FUSE over io_uring, docs/mount.md): with the fuse
# module's enable_uring set to Y, requests come over the rings and ls, cat,
# cp, rm, a commit by rename and by xattr, a shared mapping written back at
# its commit all work; a kill -9 of the daemon leaves no process hanging on
# the mount; with enable_uring=N the mount says so and serves over
# /dev/fuse. The old enable_uring is put back at the end. Skips (77) where
# the kernel has no FUSE over io_uring or the parameter is not writable.
. "$(dirname "$0")/lib.sh"
lib_init "$@"

EU=/sys/module/fuse/parameters/enable_uring
if ! [ -w "$EU" ]; then
	echo "SKIP: $EU is missing or not writable (Linux 6.14+ and root needed)"
	exit 77
fi
OLD=$(cat "$EU")
uring_cleanup() {
	local rc=$?

	echo "$OLD" >"$EU"
	(exit "$rc")
	lib_cleanup
}
trap uring_cleanup EXIT

R=$MNT/r
echo Y >"$EU"

note "over the rings: ls, cp, cat, rm, commits"
mount_fs -o io_uring
grep -q "io_uring: [0-9]* queues" "$DLOG" || fail "the rings did not start: $(cat "$DLOG")"
mkdir "$R" "$R/v1.tmp" || fail "mkdir"
SRC=$T/src
mkdir -p "$SRC/sub/deeper"
for i in $(seq 1 200); do echo "small file $i" >"$SRC/f$i"; done
head -c $((9 << 20)) /dev/urandom >"$SRC/sub/big" || fail "source data"
head -c 123457 /dev/urandom >"$SRC/sub/deeper/odd" || fail "source data"
cp -r "$SRC/." "$R/v1.tmp/" || fail "cp -r into the open version"
diff -r -x .manifest "$SRC" "$R/v1.tmp" || fail "the open version differs from its source"
n=$(find "$R/v1.tmp" -mindepth 1 -maxdepth 1 ! -name .manifest | wc -l)
[ "$n" = 201 ] || fail "the open version lists $n names, not 201"
rm "$R/v1.tmp/f7" "$R/v1.tmp/f8" || fail "rm"
rm "$SRC/f7" "$SRC/f8"
[ "$(cat "$R/v1.tmp/f9")" = "small file 9" ] || fail "cat"
mv "$R/v1.tmp" "$R/v1" || fail "commit by rename"
diff -r -x .manifest "$SRC" "$R/v1" || fail "the committed version differs"
[ "$(xxh "$R/v1/sub/big")" = "$(xxh "$SRC/sub/big")" ] || fail "big file after commit"

# a commit runs off the ring thread: it writes a shared mapping back first,
# and those writes come over the rings while the commit waits
mkdir "$R/v2" || fail "mkdir v2"
python3 - "$R/v2/mapped" <<'PY' || fail "shared mapping written back at its commit"
import mmap, os, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 1 << 20)
m = mmap.mmap(fd, 1 << 20, mmap.MAP_SHARED)
m[0:6] = b"HELLO\n"
m[(1 << 20) - 4:] = b"END\n"
os.setxattr(os.path.dirname(p), "user.ckpt.commit", b"1")
with open(p, "rb") as f:
    data = f.read()
sys.exit(0 if data[:6] == b"HELLO\n" and data[-4:] == b"END\n" else 1)
PY
[ "$(xattr user.ckpt.state "$R/v2")" = committed ] || fail "v2 is not committed: $(xattr user.ckpt.state "$R/v2")"
umount_fs
grep -E "io_uring: [1-9][0-9]* requests came over the rings" "$DLOG" ||
	fail "no request came over the rings: $(cat "$DLOG")"

note "kill -9 of the daemon: the kernel tears the rings down"
mount_fs -o io_uring
diff -r -x .manifest "$SRC" "$R/v1" || fail "v1 after a remount"
mkdir "$R/v3.tmp" || fail "mkdir v3"
(while :; do cat "$R/v1/sub/big" >/dev/null 2>&1 || break; done) &
RPID=$!
sleep 0.3
kill9_fs
# the reader sees the mount gone and stops; nothing waits on a dead ring
for _ in $(seq 1 100); do
	kill -0 "$RPID" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$RPID" 2>/dev/null; then
	kill -9 "$RPID"
	fail "a reader of the mount still runs 10 s after the daemon's kill -9"
fi
wait "$RPID" 2>/dev/null
mount_fs -o io_uring
timeout 10 diff -r -x .manifest "$SRC" "$R/v1" || fail "v1 after the kill -9"
umount_fs

note "enable_uring=N: the mount says so and serves over /dev/fuse"
echo N >"$EU"
mount_fs -o io_uring
grep -q "does not offer FUSE over io_uring" "$DLOG" || fail "no word of the fallback: $(cat "$DLOG")"
diff -r -x .manifest "$SRC" "$R/v1" || fail "v1 over /dev/fuse"
if ! { mkdir "$R/v4.tmp" && cp "$SRC/f1" "$R/v4.tmp/" && mv "$R/v4.tmp" "$R/v4"; }; then
	fail "a commit over /dev/fuse"
fi
umount_fs
grep -q "requests came over the rings" "$DLOG" && fail "the fallback mount used rings"
echo "PASS"
