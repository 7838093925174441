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

note "shared mmap of a file being written: works by default and with open_cache=on, ENODEV with off"
# mmap_write.py DIR: write through a shared mapping; prints ENODEV when refused
cat >"$T/mmap_write.py" <<'PY'
import errno, mmap, os, sys
d = sys.argv[1]
os.mkdir(d + ".tmp")
p = os.path.join(d + ".tmp", "m.bin")
with open(p, "w+b") as f:
    f.truncate(3 << 20)
    try:
        m = mmap.mmap(f.fileno(), 3 << 20, mmap.MAP_SHARED)
    except OSError as e:
        print(errno.errorcode[e.errno])
        sys.exit(0)
    for i in range(3 << 20 >> 12):
        m[i << 12:(i << 12) + 4] = b"%04d" % (i % 10000)
    m.flush()
    m.close()
os.rename(d + ".tmp", d)
with open(os.path.join(d, "m.bin"), "rb") as f:
    data = f.read()
ok = all(data[i << 12:(i << 12) + 4] == b"%04d" % (i % 10000) for i in range(3 << 20 >> 12))
print("mapped-ok" if ok else "mapped-wrong")
PY
mkdir -p "$MNT/mm" || fail "mkdir mm"
out=$(python3 "$T/mmap_write.py" "$MNT/mm/v1") || fail "mmap_write.py (default)"
[ "$out" = mapped-ok ] || fail "shared mmap with the default open_cache=auto: got '$out'"
[ "$(xattr user.ckpt.state "$MNT/mm/v1")" = committed ] || fail "mmap-written version not committed"
umount_fs
mount_fs -o open_cache=on
out=$(python3 "$T/mmap_write.py" "$MNT/mm/v2") || fail "mmap_write.py (open_cache=on)"
[ "$out" = mapped-ok ] || fail "shared mmap with open_cache=on: got '$out'"
[ "$(xattr user.ckpt.state "$MNT/mm/v2")" = committed ] || fail "mmap-written version not committed"
umount_fs
mount_fs -o open_cache=off
out=$(python3 "$T/mmap_write.py" "$MNT/mm/v3") || fail "mmap_write.py (open_cache=off)"
[ "$out" = ENODEV ] || fail "shared mmap with open_cache=off: expected ENODEV, got '$out'"
echo hello >"$MNT/mm/v3.tmp/plain" || fail "plain write after a refused mmap"
[ "$(cat "$MNT/mm/v3.tmp/plain")" = hello ] || fail "plain read-back after a refused mmap"
umount_fs
if "$CKPTFS" "$STORE" "$MNT" -f -o open_cache=maybe 2>"$T/bad.log"; then
	fail "open_cache=maybe accepted"
fi
grep -q "expected auto, on or off" "$T/bad.log" || fail "open_cache=maybe: no clear message"

note "chunk_size=4M: new chunks of 4 MiB, read back equal; a bad size is refused"
mount_fs -o chunk_size=4M
mkdir -p "$MNT/cs/v1.tmp" || fail "mkdir cs"
head -c $((10 << 20)) /dev/urandom >"$T/ten.bin"
cp "$T/ten.bin" "$MNT/cs/v1.tmp/ten.bin" || fail "cp into chunk_size=4M"
mv "$MNT/cs/v1.tmp" "$MNT/cs/v1" || fail "commit"
cmp "$T/ten.bin" "$MNT/cs/v1/ten.bin" || fail "read-back with 4 MiB chunks"
lens=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(" ".join(str(c[1]) for c in m["files"][0]["chunks"]))' "$MNT/cs/v1/.manifest")
[ "$lens" = "4194304 4194304 2097152" ] || fail "chunk lengths with chunk_size=4M: $lens"
umount_fs
for bad in 3 100G 4Q; do
	if "$CKPTFS" "$STORE" "$MNT" -f -o chunk_size=$bad 2>"$T/bad.log"; then
		fail "chunk_size=$bad accepted"
	fi
	grep -q "expected a size from 4K to 64M" "$T/bad.log" || fail "chunk_size=$bad: no clear message"
done
echo PASS
