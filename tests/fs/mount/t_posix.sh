#!/usr/bin/env bash
# t_posix.sh - POSIX inside an open version (SPEC §2, issues 11 and 12), with
# real tools: rm -r and rsync --delete of an open version (.manifest never
# blocks them); names of rsync's temp files (.ckpt.pt.XXXXXX) and others
# starting with .ckpt; FIFOs and device nodes refused with EPERM; chmod and
# chown of the open version directory; fallocate (mode 0, KEEP_SIZE,
# PUNCH_HOLE, ZERO_RANGE).
. "$(dirname "$0")/lib.sh"
lib_init "$@"

mount_fs
R=$MNT/run1
mkdir "$R" || fail "mkdir run"

note "rm -r of an open version"
V=$R/v-rm
mkdir -p "$V/sub/deeper" || fail "mkdir -p in an open version"
echo a >"$V/a" && echo b >"$V/sub/b" && echo c >"$V/sub/deeper/c" || fail "writes"
rm -r "$V" || fail "rm -r of an open version failed"
[ -e "$V" ] && fail "the open version is still there after rm -r"
mkdir "$V" || fail "mkdir of the removed version's name"
rm -rf "$V/.manifest" || fail "rm -f .manifest of an open version"
rmdir "$V" || fail "rmdir of the empty open version after removing .manifest"

note "names starting with .ckpt, .stats and .manifest below the root"
V=$R/v-names
mkdir "$V" || fail "mkdir version"
for n in .ckpt .ckpt-tmp-x .ckpt.pt.Ab12Cd .stats; do
	echo "$n" >"$V/$n" || fail "create $n in an open version"
	[ "$(cat "$V/$n")" = "$n" ] || fail "read back $n"
done
mkdir "$V/sub" && echo m >"$V/sub/.manifest" || fail "create sub/.manifest"
mv "$V/.ckpt-tmp-x" "$V/.ckpt-renamed" || fail "rename to a .ckpt name"
expect_err "File exists" mkdir "$V/.manifest"
ls -a "$V" | grep -qx .ckpt-renamed || fail "ls does not list .ckpt-renamed"

note "rsync -a into an open version (temp files .NAME.XXXXXX), then --delete"
SRC=$T/src
mkdir -p "$SRC/d"
head -c 300000 /dev/urandom >"$SRC/ckpt.pt"
echo cfg >"$SRC/d/config.json"
echo old >"$SRC/old.txt"
chmod 0640 "$SRC/d/config.json"
V=$R/v-rsync
mkdir "$V" || fail "mkdir version"
rsync -a "$SRC/" "$V/" || fail "rsync -a into an open version exited $?"
cmp "$SRC/ckpt.pt" "$V/ckpt.pt" || fail "rsync copy of ckpt.pt differs"
[ "$(stat -c %a "$V/d/config.json")" = 640 ] || fail "rsync -a did not keep mode 0640"
rm "$SRC/old.txt"
echo new >"$SRC/new.txt"
rsync -a --delete "$SRC/" "$V/" || fail "rsync -a --delete into an open version exited $?"
[ -e "$V/old.txt" ] && fail "rsync --delete left old.txt"
[ "$(cat "$V/new.txt")" = new ] || fail "rsync --delete: new.txt missing"
mv "$V" "$R/v-rsync-done" || fail "commit after rsync"
diff -r "$SRC" "$R/v-rsync-done" -x .manifest || fail "committed rsync copy differs"

note "FIFOs and device nodes: EPERM; mknod of a regular file works"
V=$R/v-nodes
mkdir "$V" || fail "mkdir version"
expect_err "Operation not permitted" mkfifo "$V/fifo"
expect_err "Operation not permitted" mknod "$V/null" c 1 3
expect_err "Operation not permitted" mknod "$V/blk" b 7 0
python3 -c 'import os, stat, sys; os.mknod(sys.argv[1], stat.S_IFREG | 0o600)' "$V/reg" ||
	fail "mknod of a regular file"
[ -f "$V/reg" ] && [ "$(stat -c %s "$V/reg")" = 0 ] || fail "mknod S_IFREG made no empty file"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$V/sock" \
	2>"$T/sock.err" && fail "a socket was created in a version"
grep -q "Operation not permitted" "$T/sock.err" || fail "socket: $(cat "$T/sock.err")"

note "chmod and chown of the open version directory and inside it"
V=$R/v-own
mkdir "$V" && echo x >"$V/f" || fail "mkdir version"
chmod 0700 "$V" || fail "chmod of an open version directory"
[ "$(stat -c %a "$V")" = 700 ] || fail "version dir mode is $(stat -c %a "$V") after chmod 700"
chmod 0755 "$V" || fail "chmod 0755 of the version directory"
chown "$(id -u):$(id -g)" "$V" "$V/f" || fail "chown to the mount's owner"
expect_err "Operation not permitted" chown 12345 "$V/f"
expect_err "Operation not permitted" chown 12345 "$V"
chmod 0600 "$V/f" || fail "chmod of a file"
[ "$(stat -c %a "$V/f")" = 600 ] || fail "file mode after chmod 600"
mv "$V" "$R/v-own-done" || fail "commit"
expect_err "Read-only file system" chmod 0700 "$R/v-own-done"

note "fallocate"
V=$R/v-falloc
mkdir "$V" || fail "mkdir version"
fallocate -l 10M "$V/f" || fail "fallocate -l 10M"
[ "$(stat -c %s "$V/f")" = 10485760 ] || fail "size after fallocate -l 10M: $(stat -c %s "$V/f")"
cmp -n 10485760 "$V/f" /dev/zero || fail "fallocated bytes are not zeros"
fallocate -n -l 20M "$V/f" || fail "fallocate --keep-size"
[ "$(stat -c %s "$V/f")" = 10485760 ] || fail "fallocate --keep-size changed the size"
head -c 100000 /dev/urandom >"$T/rnd"
cp "$T/rnd" "$V/g" || fail "cp"
fallocate -p -o 4096 -l 8192 "$V/g" || fail "fallocate --punch-hole"
fallocate -z -o 50000 -l 60000 "$V/g" || fail "fallocate --zero-range"
python3 - "$T/rnd" <<'PY' || fail "making the expected punched file"
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[4096:4096 + 8192] = bytes(8192)
b[50000:110000] = bytes(60000)
open(sys.argv[1] + ".want", "wb").write(b)
PY
cmp "$T/rnd.want" "$V/g" || fail "punch-hole/zero-range result differs"
[ "$(stat -c %s "$V/g")" = 110000 ] || fail "zero-range past the end did not extend"
expect_err "Operation not supported" fallocate -c -o 0 -l 4096 "$V/g"
mv "$V" "$R/v-falloc-done" || fail "commit"
cmp "$T/rnd.want" "$R/v-falloc-done/g" || fail "committed punched file differs"
expect_err "Read-only file system" fallocate -l 20M "$R/v-falloc-done/f"

alive "after the POSIX checks"
umount_fs
echo "PASS"
