#!/usr/bin/env bash
# bench_mount.sh - ckptfs through the mount vs the same bytes straight to the
# same disk, in one run (docs/performance.md has figures and how to read them).
#
#   bench/mount/bench_mount.sh BUILD/fs/fuse/ckptfs [SECTION...]
#
# Sections (write read read4 ls rss by default):
#   write   a checkpoint of BENCH_GB GiB (default 2) in BENCH_FILES files
#           (default 4), 1 MiB writes, committed by rename, vs `dd bs=1M
#           conv=fsync` of the same bytes to a directory on the same disk,
#           and `dd bs=1M oflag=direct` (the disk without the page cache) for
#           reference; BENCH_ROUNDS rounds (default 3), the order of the
#           sides reversed every other round, caches dropped and BENCH_REST
#           seconds (default 5) of rest before each side; fresh random bytes
#           each round so that dedup does not help.
#   read    cold read of a checkpoint of the same shape, one file after the
#           other with `dd bs=1M`, through the mount vs the same bytes written
#           the way users write them (`dd bs=1M conv=fsync`) to the same disk;
#           BENCH_ROUNDS rounds, order alternating, the page cache dropped
#           right before each side and no rest (BENCH_READ_REST, default 0:
#           this box's disk reads at a fraction of its speed after a few
#           seconds idle, docs/performance.md); each side is read once
#           untimed just before (BENCH_READ_WARM=0: not), so that both find
#           the disk's host cache in the same state.
#   read4   the same, with the BENCH_FILES files read by as many readers at
#           once (the aggregate).
#   ls      `ls -l` of a run with BENCH_VERSIONS versions (default 10000).
#   rss     the daemon's peak RSS while writing BENCH_RSS_GB GiB (default 8)
#           with -o write_buffer=BENCH_WB (default 64M).
#
# BENCH_TMPFS=1 puts the store, the mount point and the direct copies on
# tmpfs (/dev/shm): no disk in the way, so write, read and read4 measure the
# mount's own ceiling against tmpfs itself.
# BENCH_OPTS (e.g. odirect=off) are extra -o options for the write and read
# sections. BENCH_DIR (default /var/tmp) is where the store, the mount point and the
# direct copies go: the same disk for both sides. Needs root (drop_caches).
set -uo pipefail

CKPTFS=${1:?usage: bench_mount.sh CKPTFS_BINARY [write|read|ls|rss ...]}
shift
SECTIONS=${*:-write read read4 ls rss}
GB=${BENCH_GB:-2}
NFILES=${BENCH_FILES:-4}
ROUNDS=${BENCH_ROUNDS:-3}
NVER=${BENCH_VERSIONS:-10000}
RSS_GB=${BENCH_RSS_GB:-8}
WB=${BENCH_WB:-64M}
OPTS=${BENCH_OPTS:+-o $BENCH_OPTS}
REST=${BENCH_REST:-5}
READ_REST=${BENCH_READ_REST:-0}
READ_WARM=${BENCH_READ_WARM:-1}
BASE=${BENCH_DIR:-/var/tmp}
[ "${BENCH_TMPFS:-0}" = 1 ] && BASE=/dev/shm

T=$(mktemp -d "$BASE/ckptfs-bench.XXXXXX") || exit 1
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

# rest: let the disk settle before a timed side. On this project's build box
# the virtual disk slows down after a gigabyte or two of sustained transfer
# and recovers when idle, so whichever side ran second would pay for the
# first; a pause and a changing order keep that out of the ratio.
rest() {
	drop
	sleep "$REST"
}

# write_mount R: the checkpoint of round R through the mount, committed by mv.
write_mount() {
	local i
	mkdir "$MNT/bench/v$1.tmp"
	for i in $(seq 1 "$NFILES"); do
		dd if="$SHM/src.$i" of="$MNT/bench/v$1.tmp/shard-$i.bin" bs=1M status=none
	done
	mv "$MNT/bench/v$1.tmp" "$MNT/bench/v$1"
}

# write_direct R FLAGS...: the same bytes straight to the disk with dd FLAGS.
write_direct() {
	local i r=$1
	shift
	rm -rf "$DIRECT/v$r"
	mkdir -p "$DIRECT/v$r"
	for i in $(seq 1 "$NFILES"); do
		dd if="$SHM/src.$i" of="$DIRECT/v$r/shard-$i.bin" bs=1M "$@" status=none
	done
	sync -f "$DIRECT/v$r"
}

# timed VAR CMD...: run CMD after a rest, seconds into VAR.
timed() {
	local var=$1 t0
	shift
	rest
	t0=$(now)
	"$@"
	printf -v "$var" '%s' "$(secs "$t0")"
}

mibs() {
	fmt "$(echo "$1 / $2 / 1048576" | bc -l)"
}

bench_write() {
	local r tm td to sum_m=0 sum_d=0 sum_o=0 bytes=$((GB << 30)) ratios=()
	echo "== write+commit: $GB GiB in $NFILES files, 1 MiB writes, $ROUNDS rounds," \
		"order alternating, ${REST}s rest before each side ${OPTS}"
	# shellcheck disable=SC2086
	mount_fs $OPTS
	mkdir -p "$MNT/bench"
	for r in $(seq 1 "$ROUNDS"); do
		fresh_source
		if [ $((r % 2)) -eq 1 ]; then
			timed tm write_mount "$r"
			timed td write_direct "$r" conv=fsync
			timed to write_direct "$r" oflag=direct
		else
			timed to write_direct "$r" oflag=direct
			timed td write_direct "$r" conv=fsync
			timed tm write_mount "$r"
		fi
		echo "round $r: mount $(fmt "$tm") s ($(mibs "$bytes" "$tm") MiB/s)," \
			"dd conv=fsync $(fmt "$td") s ($(mibs "$bytes" "$td") MiB/s)," \
			"dd oflag=direct $(fmt "$to") s ($(mibs "$bytes" "$to") MiB/s)," \
			"ratio $(fmt "$(echo "$td / $tm" | bc -l)")   load $(cut -d' ' -f1 /proc/loadavg)"
		ratios+=("$(echo "$td / $tm" | bc -l)")
		sum_m=$(echo "$sum_m + $tm" | bc -l)
		sum_d=$(echo "$sum_d + $td" | bc -l)
		sum_o=$(echo "$sum_o + $to" | bc -l)
		[ "$r" -lt "$ROUNDS" ] && rm -rf "$DIRECT/v$r"
	done
	echo "write+commit ratio (dd conv=fsync time / mount time, >= 1 means the mount is as fast): $(fmt "$(echo "$sum_d / $sum_m" | bc -l)")"
	echo "write+commit ratio, median of $ROUNDS rounds: $(fmt "$(median "${ratios[@]}")")"
	echo "vs dd oflag=direct (the disk without the page cache): $(fmt "$(echo "$sum_o / $sum_m" | bc -l)")"
	umount_fs
}

# read_all DIR: every shard of the checkpoint in DIR, one after the other,
# 1 MiB reads.
read_all() {
	local i
	for i in $(seq 1 "$NFILES"); do
		dd if="$1/shard-$i.bin" of=/dev/null bs=1M status=none
	done
}

# read_par DIR: every shard at once, one reader each.
read_par() {
	local i pids=()
	for i in $(seq 1 "$NFILES"); do
		dd if="$1/shard-$i.bin" of=/dev/null bs=1M status=none &
		pids+=($!)
	done
	wait "${pids[@]}"
}

# cold VAR CMD...: drop the page cache (and rest READ_REST seconds), then
# run CMD, its seconds into VAR. With READ_WARM (default 1) CMD runs once
# before, untimed, after a drop of its own: this box's disk is a file on
# its host, whose page cache keeps what was read last, so without it the
# side that ran second found its bytes evicted by the other side's (and
# a side read twice in a row ran 2-5x faster the second time).
cold() {
	local var=$1 t0
	shift
	if [ "$READ_WARM" = 1 ]; then
		drop
		"$@"
	fi
	drop
	[ "$READ_REST" != 0 ] && sleep "$READ_REST"
	t0=$(now)
	"$@"
	printf -v "$var" '%s' "$(secs "$t0")"
}

# median of the arguments
median() {
	printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# read_side READER: cold reads through the mount vs the direct copy,
# BENCH_ROUNDS rounds, order alternating; ratio per round and median.
read_side() {
	local reader=$1 r tm td ratios=() bytes=$((GB << 30))
	for r in $(seq 1 "$ROUNDS"); do
		if [ $((r % 2)) -eq 1 ]; then
			cold tm "$reader" "$MNT/bench/read"
			cold td "$reader" "$DIRECT/read"
		else
			cold td "$reader" "$DIRECT/read"
			cold tm "$reader" "$MNT/bench/read"
		fi
		ratios+=("$(echo "$td / $tm" | bc -l)")
		echo "round $r: mount $(fmt "$tm") s ($(mibs "$bytes" "$tm") MiB/s)," \
			"direct $(fmt "$td") s ($(mibs "$bytes" "$td") MiB/s)," \
			"ratio $(fmt "${ratios[-1]}")   load $(cut -d' ' -f1 /proc/loadavg)"
	done
	echo "$2 ratio (direct time / mount time), median of $ROUNDS rounds: $(fmt "$(median "${ratios[@]}")")"
}

# The checkpoint both read sections read: written once per run, through the
# mount (committed by rename) and with `dd conv=fsync` to the direct side,
# file by file in turns, so neither copy is the more recently written one.
READ_READY=
read_setup() {
	local i
	[ -n "$READ_READY" ] && return
	# shellcheck disable=SC2086
	mount_fs $OPTS
	fresh_source
	mkdir -p "$MNT/bench/read.tmp" "$DIRECT/read"
	for i in $(seq 1 "$NFILES"); do
		dd if="$SHM/src.$i" of="$MNT/bench/read.tmp/shard-$i.bin" bs=1M status=none
		dd if="$SHM/src.$i" of="$DIRECT/read/shard-$i.bin" bs=1M conv=fsync status=none
	done
	mv "$MNT/bench/read.tmp" "$MNT/bench/read"
	sync
	READ_READY=1
}

read_teardown() {
	[ -z "$READ_READY" ] && return
	umount_fs
	READ_READY=
}

bench_read() {
	echo "== cold read: $GB GiB in $NFILES files, one after the other, dd bs=1M," \
		"page cache dropped before each side, ${READ_REST}s rest, order alternating ${OPTS}"
	read_setup
	read_side read_all "cold read"
}

bench_read4() {
	echo "== cold read, $NFILES readers at once: $GB GiB in $NFILES files, dd bs=1M each," \
		"page cache dropped before each side, order alternating ${OPTS}"
	read_setup
	read_side read_par "cold read ($NFILES readers)"
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

echo "ckptfs mount benchmark: $(date -u +%FT%TZ), $(nproc) CPUs, disk of $T: $(df --output=source "$T" | tail -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $SECTIONS; do
	case $s in
	write) bench_write ;;
	read) bench_read ;;
	read4) bench_read4 ;;
	ls) read_teardown; bench_ls ;;
	rss) read_teardown; bench_rss ;;
	*) echo "bench: unknown section $s (write, read, read4, ls, rss)" >&2; exit 2 ;;
	esac
done
read_teardown
