#!/usr/bin/env bash
# t_tools.sh - the mounted tree with real tools (issue 4): mkdir, cp, dd, cat,
# ls -l, stat, mv, find, du, getfattr/setfattr; commit by rename and by
# setfattr; read-back equal; user.ckpt.xxh128 equals xxhsum -H2; EROFS in
# committed versions; latest; .stats and .manifest; rm -r and rmdir of
# committed versions; pinned -> EBUSY; SIGTERM unmounts cleanly.
. "$(dirname "$0")/lib.sh"
lib_init "$@"

SRC=$T/src
mkdir -p "$SRC/sub"
head -c 3000000 /dev/urandom >"$SRC/model.bin"
head -c 100000 /dev/urandom >"$SRC/sub/opt.bin"
echo '{"step": 500}' >"$SRC/state.json"

mount_fs
R=$MNT/run1

note "runs and versions by mkdir"
mkdir "$R" || fail "mkdir run"
mkdir "$R/step-500.tmp" || fail "mkdir version"
[ "$(xattr user.ckpt.state "$R/step-500.tmp")" = open ] || fail "new version not open"
[ -e "$R/latest" ] && fail "latest exists before any commit"

note "cp, dd, mkdir inside an open version"
cp "$SRC/model.bin" "$R/step-500.tmp/" || fail "cp model.bin"
mkdir "$R/step-500.tmp/sub" || fail "mkdir sub"
cp "$SRC/sub/opt.bin" "$R/step-500.tmp/sub/" || fail "cp opt.bin"
dd if="$SRC/state.json" of="$R/step-500.tmp/state.json" bs=1M status=none || fail "dd"
cmp "$SRC/model.bin" "$R/step-500.tmp/model.bin" || fail "read-back of an open file"
[ "$(stat -c %s "$R/step-500.tmp/model.bin")" = 3000000 ] || fail "size of open file"
setfattr -n user.ckpt.meta.step -v 500 "$R/step-500.tmp" || fail "setfattr meta on open"
setfattr -n user.ckpt.meta.val_loss -v 2.5 "$R/step-500.tmp" || fail "setfattr meta"

note "commit by rename"
mv "$R/step-500.tmp" "$R/step-500" || fail "rename commit"
[ -e "$R/step-500.tmp" ] && fail "old name still there after the rename commit"
[ "$(xattr user.ckpt.state "$R/step-500")" = committed ] || fail "not committed after rename"
[ "$(readlink "$R/latest")" = step-500 ] || fail "latest is not step-500"
[ -n "$(xattr user.ckpt.seq "$R/step-500")" ] || fail "no user.ckpt.seq"
xattr user.ckpt.committed "$R/step-500" | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' ||
	fail "user.ckpt.committed is not ISO 8601 UTC"
[ "$(xattr user.ckpt.meta.step "$R/step-500")" = 500 ] || fail "meta lost by commit"

note "read-back, hashes, modes"
cmp "$SRC/model.bin" "$R/latest/model.bin" || fail "read-back through latest"
cmp "$SRC/sub/opt.bin" "$R/step-500/sub/opt.bin" || fail "read-back sub/opt.bin"
cat "$R/step-500/state.json" | cmp - "$SRC/state.json" || fail "cat state.json"
for f in model.bin sub/opt.bin state.json; do
	h=$(xattr user.ckpt.xxh128 "$R/step-500/$f")
	[ "$h" = "$(xxh "$SRC/$f")" ] || fail "user.ckpt.xxh128 of $f is '$h', xxhsum says $(xxh "$SRC/$f")"
done
[ "$(stat -c %a "$R/step-500/model.bin")" = 444 ] || fail "committed file mode not 0444"
[ "$(stat -c %a "$R/step-500")" = 555 ] || fail "committed dir mode not 0555"
[ "$(stat -c %a "$R/step-500/sub")" = 555 ] || fail "committed subdir mode not 0555"
[ "$(stat -c %h "$R/step-500")" = 3 ] || fail "link count of a version with one subdir is not 3"
ls -l "$R" "$R/step-500" >/dev/null || fail "ls -l"
[ "$(find "$R/step-500" -type f | wc -l)" = 4 ] || fail "find does not see 3 files and .manifest"
[ "$(du -sb "$R/step-500/model.bin" | cut -f1)" = 3000000 ] || fail "du of model.bin"
[ "$(stat -f -c %l "$MNT")" = 255 ] || fail "statfs name length"
[ "$(stat -f -c %b "$MNT")" = "$(stat -f -c %b "$T")" ] || fail "statfs is not the store's disk"
[ "$(ls "$R" | tr '\n' ' ')" = "$(ls "$R" | tr '\n' ' ')" ] || fail "readdir order"
[ -r "$R/step-500/model.bin" ] && [ ! -x "$R/step-500/model.bin" ] || fail "access(2)"
getfattr -d "$R/step-500" | grep -q 'user.ckpt.meta.val_loss="2.5"' || fail "getfattr -d"

note "immutability: EROFS"
expect_err "Read-only file system" dd if=/dev/zero of="$R/step-500/model.bin" bs=1 count=1 conv=notrunc status=none
expect_err "Read-only file system" truncate -s 0 "$R/step-500/model.bin"
expect_err "Read-only file system" chmod 600 "$R/step-500/model.bin"
expect_err "Read-only file system" mv "$R/step-500/model.bin" "$R/step-500/m2.bin"
expect_err "Read-only file system" touch "$R/step-500/new"
expect_err "Read-only file system" mkdir "$R/step-500/newdir"
cmp "$SRC/model.bin" "$R/step-500/model.bin" || fail "committed content changed"
setfattr -n user.ckpt.meta.note -v ok "$R/step-500" || fail "meta on a committed version"

note ".manifest and .stats"
python3 - "$R/step-500/.manifest" "$MNT/.stats" <<'PY' || fail ".manifest/.stats are not valid JSON"
import json, sys
m = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[2]))
assert s["total_runs"] == 1 and s["total_checkpoints"] == 1, s
for k in ("total_size_bytes", "stored_bytes", "dedup_ratio", "oldest_checkpoint"):
    assert k in s, k
PY
grep -q "$(xxh "$SRC/model.bin")" "$R/step-500/.manifest" || fail ".manifest lacks the file hash"
expect_err "" sh -c "echo x > '$MNT/.stats'"

note "commit by setfattr, metric and best"
mkdir "$R/step-600" && cp "$SRC/state.json" "$R/step-600/" || fail "step-600"
setfattr -n user.ckpt.meta.val_loss -v 1.5 "$R/step-600" || fail "meta step-600"
setfattr -n user.ckpt.commit -v 1 "$R/step-600" || fail "setfattr commit"
[ "$(xattr user.ckpt.state "$R/step-600")" = committed ] || fail "setfattr did not commit"
[ "$(readlink "$R/latest")" = step-600 ] || fail "latest is not step-600"
setfattr -n user.ckpt.metric -v val_loss:min "$R" || fail "set metric"
[ "$(xattr user.ckpt.metric "$R")" = val_loss:min ] || fail "metric read-back"
[ "$(readlink "$R/best")" = step-600 ] || fail "best is not step-600"
setfattr -n user.ckpt.keep_last -v 5 "$R" || fail "set keep_last"
[ "$(xattr user.ckpt.keep_last "$R")" = 5 ] || fail "keep_last read-back"
[ "$(xattr user.ckpt.verify "$R/step-500")" = ok ] || fail "verify of a good version"

note "pinned -> EBUSY"
setfattr -n user.ckpt.pinned -v 1 "$R/step-500" || fail "pin"
[ "$(xattr user.ckpt.pinned "$R/step-500")" = 1 ] || fail "pinned read-back"
expect_err "busy" rm "$R/step-500/state.json"
expect_err "busy" rmdir "$R/step-500"
setfattr -n user.ckpt.pinned -v 0 "$R/step-500" || fail "unpin"

note "rm -r of the latest committed version"
rm -r "$R/step-600" || fail "rm -r step-600"
[ -e "$R/step-600" ] && fail "step-600 still there"
[ "$(readlink "$R/latest")" = step-500 ] || fail "latest did not fall back to step-500"
note "rmdir of a committed version removes it whole"
mkdir "$R/step-700" && cp "$SRC/state.json" "$R/step-700/" && mv "$R/step-700" "$R/step-701" ||
	fail "step-701"
rmdir "$R/step-701" || fail "rmdir of a committed version"
[ -e "$R/step-701" ] && fail "step-701 still there"
expect_err "not empty" rmdir "$R"
mkdir "$R/open" && touch "$R/open/f" || fail "open version"
expect_err "not empty" rmdir "$R/open"
rm "$R/open/f" && rmdir "$R/open" || fail "rmdir of an empty open version"

note "errors"
expect_err "No such file" cat "$R/nope"
expect_err "Not a directory" ls "$R/step-500/state.json/x"
expect_err "Is a directory" cat "$R/step-500/sub"
mkdir -p "$MNT/run2/v" || fail "run2"
expect_err "cross-device" python3 -c "import os; os.rename('$R/step-500/state.json', '$MNT/run2/v/x')"
touch "$MNT/run2/v/a" || fail "touch in open version"
expect_err "cross-device" python3 -c "import os; os.rename('$MNT/run2/v/a', '$R/step-500/a')"
expect_err "exists" mkdir "$R/latest"

note "SIGTERM unmounts cleanly"
kill -TERM "$DPID"
wait "$DPID"
rc=$?
DPID=
check_log "$DLOG"
[ "$rc" -eq 0 ] || fail "daemon exit status $rc after SIGTERM"
mountpoint -q "$MNT" && fail "still mounted after SIGTERM"

note "remount: everything committed is still there"
mount_fs
cmp "$SRC/model.bin" "$R/latest/model.bin" || fail "read-back after remount"
[ "$(xattr user.ckpt.meta.note "$R/step-500")" = ok ] || fail "meta after remount"
umount_fs
echo PASS
