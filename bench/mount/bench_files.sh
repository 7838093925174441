#!/usr/bin/env bash
# bench_files.sh - many small files in one open version (issue 11, item 10):
# creating N files through the mount vs in a directory on the same disk, in
# one run, and the ratio (goal: the mount within 5x of the disk).
#
#   bench/mount/bench_files.sh BUILD/fs/fuse/ckptfs
#
# For each N in BENCH_NFILES (default "10000 100000"), BENCH_ROUNDS rounds
# (default 2), the order of the sides reversed every other round:
#   mount   mkdir an open version, create N files of a few bytes each (open,
#           write, close, one Python process), then commit by rename;
#   direct  the same files in a plain directory, then sync(1) (the durable
#           counterpart of a commit).
# Each thousand is timed too, so a cost that grows with the directory shows
# as a rising per-thousand time (the old defect: 0.8 s for the first
# thousand, 56.9 s for the tenth). BENCH_DIR (default /var/tmp): where the
# store, the mount point and the direct directory go.
set -uo pipefail

CKPTFS=${1:?usage: bench_files.sh CKPTFS_BINARY}
NLIST=${BENCH_NFILES:-10000 100000}
ROUNDS=${BENCH_ROUNDS:-2}

T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/ckptfs-bench-files.XXXXXX") || exit 1
STORE=$T/store
MNT=$T/mnt
DIRECT=$T/direct
mkdir -p "$MNT" "$DIRECT"
DPID=

cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "$DPID" ] && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

"$CKPTFS" "$STORE" "$MNT" -f 2>"$T/daemon.log" &
DPID=$!
for _ in $(seq 1 200); do
	mountpoint -q "$MNT" && break
	sleep 0.05
done
mountpoint -q "$MNT" || {
	cat "$T/daemon.log"
	echo "bench: ckptfs did not mount" >&2
	exit 1
}
mkdir "$MNT/run" || exit 1

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
	if [ "$1" = mount ]; then
		mkdir "$MNT/run/v-$2-$3.tmp" || exit 1
		out=$(mkfiles "$MNT/run/v-$2-$3.tmp" "$2") || exit 1
		t0=$(now)
		mv "$MNT/run/v-$2-$3.tmp" "$MNT/run/v-$2-$3" || exit 1
	else
		mkdir "$DIRECT/d-$2-$3" || exit 1
		out=$(mkfiles "$DIRECT/d-$2-$3" "$2") || exit 1
		t0=$(now)
		sync
	fi
	read -r S_CREATE S_FIRST S_LAST _ <<<"$out"
	S_TOTAL=$(echo "$S_CREATE + $(now) - $t0" | bc -l)
}

echo "ckptfs many-files benchmark: $(date -u +%FT%TZ), $(nproc) CPUs, disk of $T: $(df --output=source "$T" | tail -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $NLIST; do
	echo "== $n files of a few bytes in one directory, $ROUNDS rounds"
	sum_m=0 sum_d=0 sum_mc=0 sum_dc=0
	for r in $(seq 1 "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then order="mount direct"; else order="direct mount"; fi
		for s in $order; do
			side "$s" "$n" "$r"
			if [ "$s" = mount ]; then
				m_c=$S_CREATE m_t=$S_TOTAL m_f=$S_FIRST m_l=$S_LAST
			else
				d_c=$S_CREATE d_t=$S_TOTAL
			fi
		done
		echo "round $r: mount create $(fmt "$m_c") s (first thousand $(fmt "$m_f") s, last $(fmt "$m_l") s), +commit $(fmt "$m_t") s;" \
			"direct create $(fmt "$d_c") s, +sync $(fmt "$d_t") s; ratio (mount/direct) create $(fmt "$(echo "$m_c / $d_c" | bc -l)"), with commit/sync $(fmt "$(echo "$m_t / $d_t" | bc -l)")"
		sum_m=$(echo "$sum_m + $m_t" | bc -l)
		sum_d=$(echo "$sum_d + $d_t" | bc -l)
		sum_mc=$(echo "$sum_mc + $m_c" | bc -l)
		sum_dc=$(echo "$sum_dc + $d_c" | bc -l)
		rm -rf "${DIRECT:?}/d-$n-$r"
		rmdir "$MNT/run/v-$n-$r" || exit 1
	done
	echo "$n files: ratio mount/direct (goal <= 5): create $(fmt "$(echo "$sum_mc / $sum_dc" | bc -l)"), create+commit vs create+sync $(fmt "$(echo "$sum_m / $sum_d" | bc -l)")"
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
