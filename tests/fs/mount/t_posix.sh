#!/usr/bin/env bash
# t_posix.sh - POSIX inside an open version (SPEC §2, issues 11 and 12), with
# real tools: rm -r and rsync --delete of an open version (.manifest never
# blocks them); names of rsync's temp files (.ckpt.pt.XXXXXX) and others
# starting with .ckpt; FIFOs and device nodes refused with EPERM; chmod and
# chown of the open version directory; fallocate (mode 0, KEEP_SIZE,
# PUNCH_HOLE, ZERO_RANGE); modes kept at commit without their write bits;
# times as on ext4 (write, append, O_TRUNC, truncate, chmod, directory
# entries, utimensat of atime) and kept by the commit; S_ISUID/S_ISGID
# cleared when someone else writes.
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

note "modes: kept at commit, without write bits"
V=$R/v-modes
mkdir "$V" "$V/priv" "$V/pub" || fail "mkdir"
for m in 600 644 755 640 4755; do
	echo "$m" >"$V/f$m" && chmod "$m" "$V/f$m" || fail "chmod $m"
done
chmod 700 "$V/priv" && chmod 755 "$V/pub" && chmod 750 "$V" || fail "chmod of directories"
[ "$(stat -c %a "$V/f600")" = 600 ] || fail "open file mode 600 shown as $(stat -c %a "$V/f600")"
mv "$V" "$R/v-modes-c" || fail "commit"
V=$R/v-modes-c
for mw in 600:400 644:444 755:555 640:440 4755:4555; do
	got=$(stat -c %a "$V/f${mw%%:*}")
	[ "$got" = "${mw#*:}" ] || fail "committed f${mw%%:*} has mode $got, expected ${mw#*:}"
done
[ "$(stat -c %a "$V/priv")" = 500 ] || fail "committed 0700 dir has mode $(stat -c %a "$V/priv")"
[ "$(stat -c %a "$V/pub")" = 555 ] || fail "committed 0755 dir has mode $(stat -c %a "$V/pub")"
[ "$(stat -c %a "$V")" = 550 ] || fail "committed version dir (0750) has mode $(stat -c %a "$V")"
grep -q '"mode": *256' "$V/.manifest" || fail ".manifest does not show 0400 (256) for f600"
expect_err "Read-only file system" sh -c "echo x >>'$V/f644'"
[ "$(stat -c %a "$V/f644")" = 444 ] || fail "committed mode changed by a refused write"

note "times as on ext4, and kept by the commit"
# ns PATH: "atime mtime ctime" in nanoseconds
ns() {
	python3 -c 'import os, sys; s = os.stat(sys.argv[1]); print(s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns)' "$1"
}
# changed WHAT OP...: OP must move mtime and ctime of $F past the old ones
changed() {
	local what=$1 a0 m0 c0 a1 m1 c1
	shift
	touch -d @1000000000 "$F" || fail "touch -d"
	read -r a0 m0 c0 <<<"$(ns "$F")"
	"$@" || fail "$what failed"
	read -r a1 m1 c1 <<<"$(ns "$F")"
	[ "$m1" -gt "$m0" ] || fail "$what did not change mtime ($m0 -> $m1)"
	[ "$c1" -gt "$c0" ] || fail "$what did not change ctime ($c0 -> $c1)"
}
V=$R/v-times
mkdir "$V" && echo first >"$V/f" || fail "mkdir"
F=$V/f
changed "a write" sh -c "echo more >'$F.tmp' && dd if='$F.tmp' of='$F' bs=1 seek=2 conv=notrunc status=none"
changed "an append" sh -c "echo app >>'$F'"
changed "O_TRUNC" sh -c ": >'$F'"
changed "truncate" truncate -s 100 "$F"
rm -f "$F.tmp"
touch -d @1000000000 "$F"
read -r _ m0 c0 <<<"$(ns "$F")"
chmod 640 "$F" || fail "chmod"
read -r _ m1 c1 <<<"$(ns "$F")"
[ "$m1" = "$m0" ] || fail "chmod changed mtime"
[ "$c1" -gt "$c0" ] || fail "chmod did not change ctime"
F=$V
changed "creating an entry" sh -c ": >'$V/new'"
changed "removing an entry" rm "$V/new"
mkdir "$V/sub" || fail "mkdir sub"
F=$V/sub
changed "mkdir in a directory" mkdir "$V/sub/dir"
changed "rename out of a directory" mv "$V/sub/dir" "$V/dir"
touch -a -d @1234567890 "$V/f" || fail "touch -a"
touch -m -d @1111111111 "$V/sub" || fail "touch -m of a directory"
read -r a m c <<<"$(ns "$V/f")"
[ "$a" = 1234567890000000000 ] || fail "explicit atime not kept: $a"
[ "$m" != 1234567890000000000 ] || fail "touch -a changed mtime"
before_f=$(ns "$V/f") before_sub=$(ns "$V/sub")
mv "$V" "$R/v-times-c" || fail "commit"
[ "$(ns "$R/v-times-c/f")" = "$before_f" ] || fail "commit changed f's times: $before_f -> $(ns "$R/v-times-c/f")"
[ "$(ns "$R/v-times-c/sub")" = "$before_sub" ] || fail "commit changed sub's times"
umount_fs
mount_fs
[ "$(ns "$R/v-times-c/f")" = "$before_f" ] || fail "f's times lost by a remount"
expect_err "Read-only file system" touch -d @1 "$R/v-times-c/f"

note "S_ISUID and S_ISGID cleared when someone else writes"
umount_fs
mount_fs -o allow_other
chmod 711 "$T" # mktemp made it 0700: let uid 65534 reach the mount
V=$R/v-suid
mkdir "$V" && echo x >"$V/s" && echo x >"$V/r" || fail "mkdir"
chmod 6777 "$V/s" "$V/r" || fail "chmod 6777"
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo y >>'$V/s'" ||
	fail "a write as uid 65534"
[ "$(stat -c %a "$V/s")" = 777 ] || fail "after another user's write the mode is $(stat -c %a "$V/s")"
echo y >>"$V/r" || fail "a write as root"
[ "$(stat -c %a "$V/r")" = 6777 ] || fail "root's write changed the mode to $(stat -c %a "$V/r")"

alive "after the POSIX checks"
umount_fs
echo "PASS"
