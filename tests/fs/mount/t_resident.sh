#!/usr/bin/env bash
# t_resident.sh - the resident tier (-o resident=SIZE, fs/store/resident.c,
# fs/fuse/fill.c): a version just committed is pushed into the kernel's page
# cache from the daemon's memory, reads back equal; with the page cache
# dropped it is read from the daemon's memory (the bytes it hashed when they
# were written), so a chunk damaged on disk since does not matter while it
# is resident, and without the tier (a fresh mount) the same read goes to
# the disk and is checked (EIO). The daemon's RSS stays within the budget +
# 64 MiB while more than the budget is written, what no longer fits is read
# from the store as before, and the run's older version leaves the kernel's
# cache once the newer one is in.
#
# Dropping the page cache needs root; fincore (util-linux) shows the cache.
. "$(dirname "$0")/lib.sh"
lib_init "$@"

need_drop
cache_hold

# cached PATH: pages of PATH in the kernel's page cache
cached() {
	fincore -nb -o PAGES "$1" | tr -d ' '
}

# all_cached PATH BYTES WHEN: wait up to 30 s for every page of PATH to be in
# the kernel's cache (without fincore: nothing to check)
all_cached() {
	local want=$((($2 + $(getconf PAGESIZE) - 1) / $(getconf PAGESIZE)))

	command -v fincore >/dev/null || return 0
	for _ in $(seq 1 300); do
		[ "$(cached "$1")" = "$want" ] && return 0
		sleep 0.1
	done
	fail "$1: $(cached "$1") of $want pages cached $3; not cached: $(missing "$1")"
}

# missing PATH: the page ranges of PATH not in the kernel's cache (mincore)
missing() {
	python3 - "$1" <<'PY'
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
n = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
p = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
vec = (ctypes.c_ubyte * n)()
if p in (None, ctypes.c_void_p(-1).value) or libc.mincore(p, size, vec) != 0:
    sys.exit("mmap/mincore failed: %s" % os.strerror(ctypes.get_errno()))
runs, start = [], None
for i in range(n + 1):
    hole = i < n and not vec[i] & 1
    if hole and start is None:
        start = i
    elif not hole and start is not None:
        runs.append("pages %d-%d" % (start, i - 1))
        start = None
print(", ".join(runs[:20]) or "none")
PY
}

rss_kib() {
	awk '/VmRSS/ {print $2}' "/proc/$DPID/status"
}

head -c $((12 << 20)) /dev/urandom >"$T/a"
head -c $((48 << 20)) /dev/urandom >"$T/big"

mount_fs -o resident=32M

note "the thread that pushes pages runs at the lowest CPU priority, below the daemon's own"
# (at the daemon's priority its page-cache copies delayed the foreground by
# tens of ms on a busy host: a supervisor told its trainer to stop too late)
fill_nice=
for t in /proc/"$DPID"/task/*; do
	[ "$(cat "$t/comm")" = ckptfs-push ] && fill_nice=$(awk '{print $19}' "$t/stat")
done
main_nice=$(awk '{print $19}' "/proc/$DPID/stat")
[ -n "$fill_nice" ] || fail "no thread ckptfs-push in the daemon"
[ "$fill_nice" = 19 ] || fail "the push thread runs at nice $fill_nice, not 19"
[ "$main_nice" -lt 19 ] || fail "the daemon itself runs at nice $main_nice"

mkdir -p "$MNT/r/v1.tmp" || fail "mkdir"
dd if="$T/a" of="$MNT/r/v1.tmp/data" bs=1M status=none || fail "write v1"
mv "$MNT/r/v1.tmp" "$MNT/r/v1" || fail "commit v1"

note "the commit fills the kernel's cache of the file (in the background)"
all_cached "$MNT/r/v1/data" $((12 << 20)) "after the commit"
cmp "$T/a" "$MNT/r/v1/data" || fail "v1 does not read back"

note "page cache dropped, a chunk damaged on disk: read from the daemon's memory"
flip_stored "$T/a" $((5 << 20)) || fail "could not find v1's bytes in the store"
drop
cmp "$T/a" "$MNT/r/v1/data" || fail "v1 read from the resident tier differs"
[ "$(xattr user.ckpt.state "$MNT/r/v1")" = committed ] || fail "v1 is not committed"

note "more than the budget: RSS stays within it + 64 MiB, the rest comes from the store"
mkdir -p "$MNT/r/v2.tmp" || fail "mkdir v2"
dd if="$T/big" of="$MNT/r/v2.tmp/data" bs=1M status=none || fail "write v2"
mv "$MNT/r/v2.tmp" "$MNT/r/v2" || fail "commit v2"
if command -v fincore >/dev/null; then
	# the newest version of the run replaces the older one in the kernel's cache
	for _ in $(seq 1 300); do
		[ "$(cached "$MNT/r/v1/data")" = 0 ] && break
		sleep 0.1
	done
	[ "$(cached "$MNT/r/v1/data")" = 0 ] ||
		fail "v1/data: $(cached "$MNT/r/v1/data") pages still cached after v2 was filled"
	[ "$(cached "$MNT/r/v2/data")" -gt 0 ] || fail "nothing of v2 was filled"
fi
rss=$(rss_kib)
[ "$rss" -le $(((32 + 64) << 10)) ] || fail "daemon RSS $rss KiB > budget 32 MiB + 64 MiB"
drop
cmp "$T/big" "$MNT/r/v2/data" || fail "v2 does not read back"
# v1's chunks were evicted by v2's: its damaged chunk is read from disk now
expect_err "Input/output error" sh -c "cat '$MNT/r/v1/data' >/dev/null"
alive "after the reads"

note "a reader right after the commit: it and the fill leave the whole file cached, equal"
head -c $((24 << 20)) /dev/urandom >"$T/c"
mkdir -p "$MNT/r/v4.tmp" && cp "$T/c" "$MNT/r/v4.tmp/data" && mv "$MNT/r/v4.tmp" "$MNT/r/v4" ||
	fail "v4"
cmp "$T/c" "$MNT/r/v4/data" || fail "v4 read during its fill differs"
all_cached "$MNT/r/v4/data" $((24 << 20)) "after a read during the fill"
cmp "$T/c" "$MNT/r/v4/data" || fail "v4 does not read back"

umount_fs

note "a fresh mount without the tier reads the damaged chunk from disk: EIO"
mount_fs
mkdir -p "$MNT/r/v3.tmp" && cp "$T/a" "$MNT/r/v3.tmp/data" && mv "$MNT/r/v3.tmp" "$MNT/r/v3" ||
	fail "v3"
drop
# v3 dedups onto v1's chunks, the damaged one included: read from disk, checked
expect_err "Input/output error" sh -c "cat '$MNT/r/v3/data' >/dev/null"
umount_fs
echo PASS
