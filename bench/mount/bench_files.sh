#!/usr/bin/env bash
# bench_files.sh - many small files in one open version (issue 11, item 10):
# creating N files through the mount vs in a directory on the same disk, in
# one run, and the ratio (goal: the mount within 5x of the disk).
#
#   bench/mount/bench_files.sh BUILD/fs/fuse/ckptfs [BUILD/bench/mount/nullfs]
#
# For each N in BENCH_NFILES (default "10000 100000"), BENCH_ROUNDS rounds
# (default 3), the order of the sides rotated every round:
#   mount   mkdir an open version, create N files of a few bytes each (open,
#           write, close, one Python process), then commit by rename;
#   direct  the same files in a plain directory, then sync -f (syncfs of
#           that filesystem: the durable counterpart of a commit);
#   null    with nullfs given: the same files and rename on nullfs, a FUSE
#           filesystem that answers every request at once and keeps nothing
#           (bench/mount/nullfs.c), mounted and opening files the way
#           ckptfs does (--noflush --no-perm): the floor of the kernel's
#           round trips for this work, which no FUSE filesystem goes below.
# Totals are reported two ways: the sums over the rounds, and the best round
# of each side (a shared machine only ever adds time, so the best rounds are
# the fairest pair).
# Each thousand is timed too, so a cost that grows with the directory shows
# as a rising per-thousand time (the old defect: 0.8 s for the first
# thousand, 56.9 s for the tenth). BENCH_DIR (default /var/tmp): where the
# store, the mount point and the direct directory go. BENCH_ALLOW_OTHER=1:
# both FUSE sides mounted as with -o allow_other, where the kernel checks
# modes (one request more per file, docs/mount.md "Caching").
# BENCH_CKPTFS_OPTS: more options for the ckptfs mount, as one word each
# ("-o io_uring"). BENCH_URING=1: one side more, uring: a second ckptfs
# mount with -o io_uring (FUSE over io_uring, docs/mount.md), the same work
# as mount; as root the fuse module's enable_uring is set to Y for the run
# and put back after.
set -uo pipefail

CKPTFS=${1:?usage: bench_files.sh CKPTFS_BINARY [NULLFS_BINARY]}
NULLFS=${2:-}
NLIST=${BENCH_NFILES:-10000 100000}
ROUNDS=${BENCH_ROUNDS:-3}

T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/ckptfs-bench-files.XXXXXX") || exit 1
STORE=$T/store
MNT=$T/mnt
DIRECT=$T/direct
NMNT=$T/null
UMNT=$T/umnt
mkdir -p "$MNT" "$DIRECT" "$NMNT" "$UMNT"
DPID= NPID= UPID= UOLD=
ENABLE_URING=/sys/module/fuse/parameters/enable_uring

cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	mountpoint -q "$NMNT" && fusermount3 -u "$NMNT"
	mountpoint -q "$UMNT" && fusermount3 -u "$UMNT"
	[ -n "$DPID" ] && wait "$DPID" 2>/dev/null
	[ -n "$NPID" ] && wait "$NPID" 2>/dev/null
	[ -n "$UPID" ] && wait "$UPID" 2>/dev/null
	[ -n "$UOLD" ] && echo "$UOLD" >"$ENABLE_URING"
	rm -rf "$T"
}
trap cleanup EXIT

# wait_mount NAME DIR LOG: wait up to 10 s for DIR to be mounted
wait_mount() {
	for _ in $(seq 1 200); do
		mountpoint -q "$2" && return 0
		sleep 0.05
	done
	cat "$3"
	echo "bench: $1 did not mount" >&2
	exit 1
}

COPTS=() NOPTS=(--noflush --no-perm)
if [ "${BENCH_ALLOW_OTHER:-0}" = 1 ]; then
	COPTS=(-o allow_other) NOPTS=(--noflush)
fi
# shellcheck disable=SC2206 # one word per option, as documented
XOPTS=(${BENCH_CKPTFS_OPTS:-})
"$CKPTFS" "$STORE" "$MNT" -f "${COPTS[@]}" "${XOPTS[@]}" 2>"$T/daemon.log" &
DPID=$!
wait_mount ckptfs "$MNT" "$T/daemon.log"
mkdir "$MNT/run" || exit 1
SIDES="mount direct"
if [ "${BENCH_URING:-0}" = 1 ]; then
	if [ -w "$ENABLE_URING" ] && [ "$(cat "$ENABLE_URING")" != Y ]; then
		UOLD=$(cat "$ENABLE_URING")
		echo Y >"$ENABLE_URING"
	fi
	"$CKPTFS" "$STORE-uring" "$UMNT" -f -o io_uring "${COPTS[@]}" "${XOPTS[@]}" 2>"$T/uring.log" &
	UPID=$!
	wait_mount "ckptfs -o io_uring" "$UMNT" "$T/uring.log"
	mkdir "$UMNT/run" || exit 1
	grep -q "io_uring: .* queues" "$T/uring.log" ||
		echo "bench: the io_uring mount serves over /dev/fuse: $(cat "$T/uring.log")"
	SIDES="mount uring direct"
fi
if [ -n "$NULLFS" ]; then
	# as ckptfs is mounted here: default_permissions only with allow_other,
	# and write-only opens send no FLUSH at close (docs/mount.md, "Caching")
	"$NULLFS" "${NOPTS[@]}" "$NMNT" 2>"$T/nullfs.log" &
	NPID=$!
	wait_mount nullfs "$NMNT" "$T/nullfs.log"
	SIDES="$SIDES null"
fi

# mkfiles DIR N: create DIR/f-000000 ... with a few distinct bytes each;
# prints the total seconds and the slowest and fastest thousand.
mkfiles() {
	python3 - "$1" "$2" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
t0 = last = time.monotonic()
per = []
for i in range(n):
    fd = os.open(os.path.join(d, "f-%06d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"file %d\n" % i)
    os.close(fd)
    if (i + 1) % 1000 == 0:
        now = time.monotonic()
        per.append(now - last)
        last = now
print("%.3f %.3f %.3f %.3f" % (time.monotonic() - t0, per[0] if per else 0,
                               per[-1] if per else 0, max(per) if per else 0))
PY
}

now() {
	date +%s.%N
}

fmt() {
	printf '%.3f' "$1"
}

# side NAME N ROUND: one side's run; sets S_CREATE S_TOTAL S_FIRST S_LAST
side() {
	local t0 out
	case $1 in
	mount)
		mkdir "$MNT/run/v-$2-$3.tmp" || exit 1
		out=$(mkfiles "$MNT/run/v-$2-$3.tmp" "$2") || exit 1
		t0=$(now)
		mv "$MNT/run/v-$2-$3.tmp" "$MNT/run/v-$2-$3" || exit 1
		;;
	uring)
		mkdir "$UMNT/run/v-$2-$3.tmp" || exit 1
		out=$(mkfiles "$UMNT/run/v-$2-$3.tmp" "$2") || exit 1
		t0=$(now)
		mv "$UMNT/run/v-$2-$3.tmp" "$UMNT/run/v-$2-$3" || exit 1
		;;
	null)
		mkdir "$NMNT/v-$2-$3.tmp" || exit 1
		out=$(mkfiles "$NMNT/v-$2-$3.tmp" "$2") || exit 1
		t0=$(now)
		mv "$NMNT/v-$2-$3.tmp" "$NMNT/v-$2-$3" || exit 1
		;;
	*)
		mkdir "$DIRECT/d-$2-$3" || exit 1
		out=$(mkfiles "$DIRECT/d-$2-$3" "$2") || exit 1
		t0=$(now)
		sync -f "$DIRECT/d-$2-$3"
		;;
	esac
	read -r S_CREATE S_FIRST S_LAST _ <<<"$out"
	S_TOTAL=$(echo "$S_CREATE + $(now) - $t0" | bc -l)
}

# min A B
min() {
	if [ "$(echo "$1 < $2" | bc -l)" = 1 ]; then echo "$1"; else echo "$2"; fi
}

ratio() {
	fmt "$(echo "$1 / $2" | bc -l)"
}

echo "ckptfs many-files benchmark: $(date -u +%FT%TZ), $(nproc) CPUs, disk of $T: $(df --output=source "$T" | tail -1), load $(cut -d' ' -f1-3 /proc/loadavg), ckptfs ${COPTS[*]:-} ${XOPTS[*]:-(no options)}, nullfs ${NOPTS[*]}"
for n in $NLIST; do
	echo "== $n files of a few bytes in one directory, $ROUNDS rounds (sides: $SIDES)"
	for v in m u d n; do
		eval "sum_$v=0 sumc_$v=0 best_$v=1000000000 bestc_$v=1000000000"
	done
	for r in $(seq 1 "$ROUNDS"); do
		# rotate the order: each side goes first in turn
		order=$SIDES
		for _ in $(seq 2 "$r"); do order="${order#* } ${order%% *}"; done
		line="round $r:"
		for s in $order; do
			side "$s" "$n" "$r"
			v=${s:0:1}
			eval "sum_$v=\$(echo \"\$sum_$v + $S_TOTAL\" | bc -l)"
			eval "sumc_$v=\$(echo \"\$sumc_$v + $S_CREATE\" | bc -l)"
			eval "best_$v=\$(min \"\$best_$v\" $S_TOTAL)"
			eval "bestc_$v=\$(min \"\$bestc_$v\" $S_CREATE)"
			case $s in
			uring) line="$line uring create $(fmt "$S_CREATE") s, +commit $(fmt "$S_TOTAL") s;" ;;
			mount) line="$line mount create $(fmt "$S_CREATE") s (first thousand $(fmt "$S_FIRST") s, last $(fmt "$S_LAST") s), +commit $(fmt "$S_TOTAL") s;" ;;
			null) line="$line nullfs create $(fmt "$S_CREATE") s, +rename $(fmt "$S_TOTAL") s;" ;;
			*) line="$line direct create $(fmt "$S_CREATE") s, +sync $(fmt "$S_TOTAL") s;" ;;
			esac
		done
		echo "$line"
		rm -rf "${DIRECT:?}/d-$n-$r"
		rmdir "$MNT/run/v-$n-$r" || exit 1
		[ -n "$UPID" ] && { rmdir "$UMNT/run/v-$n-$r" || exit 1; }
		[ -n "$NULLFS" ] && { rmdir "$NMNT/v-$n-$r" || exit 1; }
	done
	echo "$n files: ratio mount/direct (goal <= 5): sums of $ROUNDS rounds: create $(ratio "$sumc_m" "$sumc_d"), create+commit vs create+sync $(ratio "$sum_m" "$sum_d");" \
		"best rounds: create $(ratio "$bestc_m" "$bestc_d") ($(fmt "$bestc_m") s vs $(fmt "$bestc_d") s), with commit/sync $(ratio "$best_m" "$best_d")"
	if [ -n "$UPID" ]; then
		echo "$n files: -o io_uring: uring/direct best create $(ratio "$bestc_u" "$bestc_d") ($(fmt "$bestc_u") s), with commit/sync $(ratio "$best_u" "$best_d"), sums create $(ratio "$sumc_u" "$sumc_d"); uring/mount best create $(ratio "$bestc_u" "$bestc_m")"
	fi
	if [ -n "$NULLFS" ]; then
		echo "$n files: the FUSE floor: nullfs/direct best create $(ratio "$bestc_n" "$bestc_d") ($(fmt "$bestc_n") s); mount/nullfs best create $(ratio "$bestc_m" "$bestc_n"), sums $(ratio "$sumc_m" "$sumc_n")"
	fi
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
