#!/usr/bin/env bash
# t_multiwriter.sh - one version written by many processes (SPEC §9,
# docs/mount.md "Many writers"): a file still open for writing makes a
# commit fail with EBUSY (never a partial version), a rename right after a
# close commits (the RELEASE the kernel sends after close(2) is waited for),
# and user.ckpt.writers=N: the version commits once each of N writers has
# set user.ckpt.commit=rank=K, never before, and a writer killed before its
# part leaves the version open, then incomplete after a remount.
. "$(dirname "$0")/lib.sh"
lib_init "$@"
PY=${PYTHON:-python3}

mount_fs
R=$MNT/run
mkdir -p "$R" || fail "mkdir run"

note "a file open for writing: rename and user.ckpt.commit give EBUSY"
mkdir "$R/busy.tmp" || fail "mkdir busy.tmp"
exec 7>"$R/busy.tmp/model.pt"
echo weights >&7
expect_err "Device or resource busy" mv "$R/busy.tmp" "$R/busy"
expect_err "Device or resource busy" setfattr -n user.ckpt.commit -v 1 "$R/busy.tmp"
[ "$(xattr user.ckpt.state "$R/busy.tmp")" = open ] || fail "busy.tmp is not open after EBUSY"
[ ! -e "$R/busy" ] || fail "busy appeared although its commit failed"
grep -q "busy.tmp has 1 file still open for writing" "$DLOG" || fail "the EBUSY reason is not logged"
echo more >&7
exec 7>&-
mv "$R/busy.tmp" "$R/busy" || fail "rename after the close"
[ "$(cat "$R/busy/model.pt")" = "$(printf 'weights\nmore')" ] || fail "busy/model.pt content"
note "a read-only descriptor does not hold the commit"
mkdir "$R/ro.tmp" && echo x >"$R/ro.tmp/f" || fail "ro.tmp"
exec 8<"$R/ro.tmp/f"
mv "$R/ro.tmp" "$R/ro" || fail "rename with a reader open"
exec 8<&-

note "close, then rename at once, 40 times: never EBUSY"
"$PY" - "$R" <<'PY' || fail "rename right after close"
import os, sys
r = sys.argv[1]
for i in range(40):
    d = os.path.join(r, "fast-%02d.tmp" % i)
    os.mkdir(d)
    for k in range(4):
        with open(os.path.join(d, "part-%d" % k), "wb") as f:
            f.write(os.urandom(4096 + 1000 * k))
    os.rename(d, os.path.join(r, "fast-%02d" % i))
PY

note "user.ckpt.writers=3: parts by rank, the last commits"
mkdir "$R/mw.tmp" || fail "mkdir mw.tmp"
setfattr -n user.ckpt.writers -v 3 "$R/mw.tmp" || fail "set writers"
setfattr -n user.ckpt.writers -v 3 "$R/mw.tmp" || fail "set the same writers again"
[ "$(xattr user.ckpt.writers "$R/mw.tmp")" = 3 ] || fail "get writers"
getfattr -d "$R/mw.tmp" 2>/dev/null | grep -q 'user.ckpt.writers="3"' || fail "writers not listed"
for k in 0 2; do
	echo "rank $k" >"$R/mw.tmp/shard-$k" || fail "write shard $k"
	setfattr -n user.ckpt.commit -v rank=$k "$R/mw.tmp" || fail "part $k"
done
setfattr -n user.ckpt.commit -v rank=2 "$R/mw.tmp" || fail "part 2 again"
[ "$(xattr user.ckpt.state "$R/mw.tmp")" = open ] || fail "committed with 2 of 3 parts"
[ "$(xattr user.ckpt.parts "$R/mw.tmp")" = "0, 2" ] || fail "parts: '$(xattr user.ckpt.parts "$R/mw.tmp")'"
expect_err "Device or resource busy" mv "$R/mw.tmp" "$R/mw"
expect_err "Device or resource busy" setfattr -n user.ckpt.commit -v 1 "$R/mw.tmp"
grep -q "2 of 3 have committed their part" "$DLOG" || fail "the missing parts are not logged"
CKPT=$(dirname "$CKPTFS")/../../tools/ckpt/ckpt
if [ -x "$CKPT" ]; then
	expect_err "user.ckpt.writers=3 and only ranks 0, 2 committed their part" \
		"$CKPT" commit --mount "$MNT" run/mw.tmp
fi
expect_err "Invalid argument" setfattr -n user.ckpt.commit -v rank=3 "$R/mw.tmp"
expect_err "Invalid argument" setfattr -n user.ckpt.commit -v rank=x "$R/mw.tmp"
expect_err "Device or resource busy" setfattr -n user.ckpt.writers -v 4 "$R/mw.tmp"
expect_err "Operation not permitted" setfattr -n user.ckpt.parts -v 1 "$R/mw.tmp"
echo "rank 1" >"$R/mw.tmp/shard-1" || fail "write shard 1"
setfattr -n user.ckpt.commit -v rank=1 "$R/mw.tmp" || fail "part 1"
[ "$(xattr user.ckpt.state "$R/mw.tmp")" = committed ] || fail "not committed after the last part"
[ "$(readlink "$R/latest")" = mw.tmp ] || fail "latest is not mw.tmp"
[ "$(cat "$R/mw.tmp/shard-1")" = "rank 1" ] || fail "shard-1"
expect_err "Read-only file system" setfattr -n user.ckpt.writers -v 3 "$R/mw.tmp"

note "the last part with a file still open: EBUSY, retried by setting it again"
mkdir "$R/late.tmp" && setfattr -n user.ckpt.writers -v 2 "$R/late.tmp" || fail "late.tmp"
setfattr -n user.ckpt.commit -v rank=0 "$R/late.tmp" || fail "late part 0"
exec 7>"$R/late.tmp/straggler"
expect_err "Device or resource busy" setfattr -n user.ckpt.commit -v rank=1 "$R/late.tmp"
exec 7>&-
setfattr -n user.ckpt.commit -v rank=1 "$R/late.tmp" || fail "late part 1 retried"
[ "$(xattr user.ckpt.state "$R/late.tmp")" = committed ] || fail "late.tmp not committed"

note "removing user.ckpt.writers lets the version commit as it is"
mkdir "$R/rm.tmp" && setfattr -n user.ckpt.writers -v 2 "$R/rm.tmp" || fail "rm.tmp"
setfattr -n user.ckpt.commit -v rank=0 "$R/rm.tmp" || fail "rm part 0"
setfattr -x user.ckpt.writers "$R/rm.tmp" || fail "remove writers"
expect_err "Invalid argument" setfattr -n user.ckpt.commit -v rank=1 "$R/rm.tmp"
mv "$R/rm.tmp" "$R/rm" || fail "rename after removing writers"

note "4 processes at once, each its file and its part"
mkdir "$R/gang.tmp" && setfattr -n user.ckpt.writers -v 4 "$R/gang.tmp" || fail "gang.tmp"
pids=()
for k in 0 1 2 3; do
	"$PY" - "$R/gang.tmp" $k <<'PY' &
import os, sys
d, k = sys.argv[1], int(sys.argv[2])
with open(os.path.join(d, "shard-%d.bin" % k), "wb") as f:
    for i in range(64):
        f.write(bytes([k]) * 65536)
os.setxattr(d, "user.ckpt.commit", b"rank=%d" % k)
PY
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a gang writer failed"; done
[ "$(xattr user.ckpt.state "$R/gang.tmp")" = committed ] || fail "gang.tmp not committed"
for k in 0 1 2 3; do
	[ "$(stat -c %s "$R/gang.tmp/shard-$k.bin")" = 4194304 ] || fail "shard-$k.bin size"
done

note "a writer killed before its part: open, then incomplete after a remount"
mkdir "$R/dead.tmp" && setfattr -n user.ckpt.writers -v 2 "$R/dead.tmp" || fail "dead.tmp"
echo a >"$R/dead.tmp/shard-0" && setfattr -n user.ckpt.commit -v rank=0 "$R/dead.tmp" ||
	fail "dead part 0"
"$PY" -c "
import os, signal
f = open('$R/dead.tmp/shard-1', 'wb'); f.write(b'x' * 100000); f.flush()
os.kill(os.getpid(), signal.SIGKILL)" && fail "the writer was not killed"
[ "$(xattr user.ckpt.state "$R/dead.tmp")" = open ] || fail "dead.tmp is not open"
umount_fs
mount_fs
[ "$(xattr user.ckpt.state "$R/dead.tmp")" = incomplete ] || fail "dead.tmp is not incomplete"
[ "$(readlink "$R/latest")" = gang.tmp ] || fail "latest moved: $(readlink "$R/latest")"
umount_fs
echo "PASS"
