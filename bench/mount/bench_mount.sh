#!/usr/bin/env bash
# bench_mount.sh - ckptfs through the mount vs the same bytes straight to the
# same disk, in one run (docs/performance.md has figures and how to read them).
#
#   bench/mount/bench_mount.sh BUILD/fs/fuse/ckptfs [SECTION...]
#
# Sections (all by default):
#   write   a checkpoint of BENCH_GB GiB (default 2) in BENCH_FILES files
#           (default 4), 1 MiB writes, committed by rename, vs `dd bs=1M
#           conv=fsync` of the same bytes to a directory on the same disk;
#           alternating, BENCH_ROUNDS rounds (default 3); fresh random bytes
#           each round so that dedup does not help.
#   read    cold read (caches dropped) of that checkpoint through the mount vs
#           the direct copy.
#   ls      `ls -l` of a run with BENCH_VERSIONS versions (default 10000).
#   rss     the daemon's peak RSS while writing BENCH_RSS_GB GiB (default 8)
#           with -o write_buffer=BENCH_WB (default 64M).
#
# BENCH_OPTS (e.g. odirect=off) are extra -o options for the write and read
# sections. BENCH_DIR (default /var/tmp) is where the store, the mount point and the
# direct copies go: the same disk for both sides. Needs root (drop_caches).
set -uo pipefail

CKPTFS=${1:?usage: bench_mount.sh CKPTFS_BINARY [write|read|ls|rss ...]}
shift
SECTIONS=${*:-write read ls rss}
GB=${BENCH_GB:-2}
NFILES=${BENCH_FILES:-4}
ROUNDS=${BENCH_ROUNDS:-3}
NVER=${BENCH_VERSIONS:-10000}
RSS_GB=${BENCH_RSS_GB:-8}
WB=${BENCH_WB:-64M}
OPTS=${BENCH_OPTS:+-o $BENCH_OPTS}

T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/ckptfs-bench.XXXXXX") || exit 1
SHM=$(mktemp -d /dev/shm/ckptfs-bench.XXXXXX) || exit 1
STORE=$T/store
MNT=$T/mnt
DIRECT=$T/direct
mkdir -p "$MNT" "$DIRECT"
DPID=

cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "$DPID" ] && wait "$DPID" 2>/dev/null
	rm -rf "$T" "$SHM"
}
trap cleanup EXIT

mount_fs() {
	"$CKPTFS" "$STORE" "$MNT" -f "$@" 2>"$T/daemon.log" &
	DPID=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$MNT" && return 0
		sleep 0.05
	done
	cat "$T/daemon.log"
	echo "bench: ckptfs did not mount" >&2
	exit 1
}

umount_fs() {
	fusermount3 -u "$MNT"
	wait "$DPID"
	DPID=
}

drop() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

now() {
	date +%s.%N
}

# secs START: seconds since START.
secs() {
	echo "$(now) - $1" | bc -l
}

fresh_source() {
	local i per=$((GB * 1024 / NFILES))
	for i in $(seq 1 "$NFILES"); do
		head -c $((per << 20)) /dev/urandom >"$SHM/src.$i"
	done
}

fmt() {
	printf '%.3f' "$1"
}

bench_write() {
	local r i t0 tm td sum_m=0 sum_d=0 bytes=$((GB << 30))
	echo "== write+commit: $GB GiB in $NFILES files, 1 MiB writes, $ROUNDS rounds ${OPTS}"
	# shellcheck disable=SC2086
	mount_fs $OPTS
	mkdir -p "$MNT/bench"
	for r in $(seq 1 "$ROUNDS"); do
		fresh_source
		drop
		t0=$(now)
		mkdir "$MNT/bench/v$r.tmp"
		for i in $(seq 1 "$NFILES"); do
			dd if="$SHM/src.$i" of="$MNT/bench/v$r.tmp/shard-$i.bin" bs=1M status=none
		done
		mv "$MNT/bench/v$r.tmp" "$MNT/bench/v$r"
		tm=$(secs "$t0")
		drop
		t0=$(now)
		mkdir -p "$DIRECT/v$r"
		for i in $(seq 1 "$NFILES"); do
			dd if="$SHM/src.$i" of="$DIRECT/v$r/shard-$i.bin" bs=1M conv=fsync status=none
		done
		sync -f "$DIRECT/v$r"
		td=$(secs "$t0")
		echo "round $r: mount $(fmt "$tm") s ($(fmt "$(echo "$bytes / $tm / 1048576" | bc -l)") MiB/s)," \
			"direct $(fmt "$td") s ($(fmt "$(echo "$bytes / $td / 1048576" | bc -l)") MiB/s)," \
			"ratio $(fmt "$(echo "$td / $tm" | bc -l)")"
		sum_m=$(echo "$sum_m + $tm" | bc -l)
		sum_d=$(echo "$sum_d + $td" | bc -l)
		[ "$r" -lt "$ROUNDS" ] && rm -rf "$DIRECT/v$r"
	done
	echo "write+commit ratio (direct time / mount time, >= 1 means the mount is as fast): $(fmt "$(echo "$sum_d / $sum_m" | bc -l)")"
	umount_fs
}

bench_read() {
	local i t0 tm td v bytes=$((GB << 30))
	echo "== cold read: $GB GiB, 1 MiB reads, caches dropped ${OPTS}"
	# shellcheck disable=SC2086
	mount_fs $OPTS
	v=$(readlink "$MNT/bench/latest" 2>/dev/null)
	if [ -z "$v" ]; then
		echo "(no checkpoint from the write section; writing one)"
		umount_fs
		ROUNDS=1 bench_write >/dev/null
		# shellcheck disable=SC2086
		mount_fs $OPTS
		v=$(readlink "$MNT/bench/latest")
	fi
	for r in 1 2; do
		drop
		t0=$(now)
		for i in $(seq 1 "$NFILES"); do
			dd if="$MNT/bench/$v/shard-$i.bin" of=/dev/null bs=1M status=none
		done
		tm=$(secs "$t0")
		drop
		t0=$(now)
		for i in $(seq 1 "$NFILES"); do
			dd if="$DIRECT/$v/shard-$i.bin" of=/dev/null bs=1M status=none
		done
		td=$(secs "$t0")
		echo "read $r: mount $(fmt "$tm") s ($(fmt "$(echo "$bytes / $tm / 1048576" | bc -l)") MiB/s)," \
			"direct $(fmt "$td") s ($(fmt "$(echo "$bytes / $td / 1048576" | bc -l)") MiB/s)," \
			"ratio $(fmt "$(echo "$td / $tm" | bc -l)")"
	done
	umount_fs
}

bench_ls() {
	local t0
	echo "== ls -l of a run with $NVER versions"
	mount_fs
	t0=$(now)
	python3 - "$MNT/many" "$NVER" <<'PY'
import os, sys
run, n = sys.argv[1], int(sys.argv[2])
os.mkdir(run)
for i in range(n):
    v = os.path.join(run, "step-%06d" % i)
    os.mkdir(v + ".tmp")
    with open(os.path.join(v + ".tmp", "model.bin"), "wb") as f:
        f.write(b"%d" % i)
    os.rename(v + ".tmp", v)
PY
	echo "created $NVER committed versions in $(fmt "$(secs "$t0")") s"
	drop
	t0=$(now)
	n=$(ls -l "$MNT/many" | wc -l)
	echo "ls -l (cold: caches dropped): $(fmt "$(secs "$t0")") s, $n lines"
	t0=$(now)
	ls -l "$MNT/many" >/dev/null
	echo "ls -l (again, within the kernel's cache timeouts): $(fmt "$(secs "$t0")") s"
	umount_fs
	mount_fs
	t0=$(now)
	ls -l "$MNT/many" >/dev/null
	echo "ls -l (fresh mount: store reopened): $(fmt "$(secs "$t0")") s"
	umount_fs
}

bench_rss() {
	local max=0 rss t0 wpid
	echo "== daemon RSS while writing $RSS_GB GiB (write_buffer=$WB)"
	rm -rf "$STORE"
	mount_fs -o "write_buffer=$WB"
	mkdir -p "$MNT/rss/v.tmp"
	t0=$(now)
	dd if=/dev/urandom of="$MNT/rss/v.tmp/big" bs=1M count=$((RSS_GB * 1024)) status=none &
	wpid=$!
	while kill -0 "$wpid" 2>/dev/null; do
		rss=$(awk '/VmRSS/ {print $2}' "/proc/$DPID/status")
		[ "${rss:-0}" -gt "$max" ] && max=$rss
		sleep 0.2
	done
	wait "$wpid"
	mv "$MNT/rss/v.tmp" "$MNT/rss/v"
	echo "wrote and committed $RSS_GB GiB in $(fmt "$(secs "$t0")") s"
	echo "daemon peak VmRSS sampled: $((max / 1024)) MiB; VmHWM: $(($(awk '/VmHWM/ {print $2}' "/proc/$DPID/status") / 1024)) MiB (bound: write_buffer + 64 MiB)"
	umount_fs
}

echo "ckptfs mount benchmark: $(date -u +%FT%TZ), $(nproc) CPUs, disk of $T: $(df --output=source "$T" | tail -1)"
for s in $SECTIONS; do
	case $s in
	write) bench_write ;;
	read) bench_read ;;
	ls) bench_ls ;;
	rss) bench_rss ;;
	*) echo "bench: unknown section $s (write, read, ls, rss)" >&2; exit 2 ;;
	esac
done
