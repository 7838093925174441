#!/bin/bash
# bench_rados.sh - ckptfs on a RADOS pool against librados' own CLI on the
# same cluster, in one run (tests/ceph/cluster.sh: one memstore OSD on this
# host). Prints, side by side with ratios:
#   write+commit of SIZE (1 GiB) through the mount (dd, then rename)
#       vs the same bytes as 16 MiB objects, P at a time
#   cold read (a fresh mount) vs reading the same objects back, P at a time
#   cross-host visibility: a commit on mount A until mount B sees it
# P (4) = the mount's write budget / 16 MiB (write_buffer=64M, chunk_size=16M),
# so both sides have the same bytes in flight (the mount's read-ahead keeps
# 64 MiB in flight too). Also the default 1 MiB chunks.
# The direct path is rados_direct (librados aio from one process, the same
# bytes, P in flight) and, for reference, the rados CLI (one process per
# object: its start-up counts; first round only).
# ROUNDS (CKPT_BENCH_ROUNDS, 1) repeats each pair with fresh random bytes
# (nothing deduplicated against the last round), the mount first in even
# rounds and rados_direct first in odd ones, one line per round. Every
# figure is MB/s (10^6 bytes).
# WARM (CKPT_BENCH_WARM_MIB, 2 x SIZE; 0: off): before each measured step
# this many MiB are touched and freed. On a VM whose free memory the host
# takes back (free page reporting, as on the development machine) the first
# touch of such a page costs ~10 us: 380 MB/s against 1.7 GB/s for memory
# freed a moment ago. The OSD's memstore (writes) and the reader's page
# cache (reads through the mount) take 1 GiB each, so whichever step met
# memory freed long ago paid up to 2.5 s more (write+commit varied from
# 0.35 to 2.38 of librados with the OSD's CPU 1.7 s or 6 s for the same
# bytes). Warmed, each step meets memory freed a moment ago.
# Usage: bench_rados.sh CKPTFS RADOS_DIRECT [SIZE_MIB [ROUNDS]]   (CKPT_BENCH_MIB too)
set -uo pipefail
CKPTFS=${1:?usage: bench_rados.sh CKPTFS RADOS_DIRECT [SIZE_MIB]}
DIRECT=${2:?usage: bench_rados.sh CKPTFS RADOS_DIRECT [SIZE_MIB]}
MIB=${3:-${CKPT_BENCH_MIB:-1024}}
ROUNDS=${4:-${CKPT_BENCH_ROUNDS:-1}}
WARM=${CKPT_BENCH_WARM_MIB:-$((2 * MIB))}
HERE=$(cd "$(dirname "$0")" && pwd)
CLUSTER=$HERE/../../tests/ceph/cluster.sh
P=4
T=$(mktemp -d /var/tmp/bench-rados.XXXXXX)
PIDS=()
# unmount M: a mount still busy (a reader not yet gone) gets a second try;
# one whose daemon died (ENOTCONN: mountpoint(1) says "not a mountpoint")
# is detached lazily, so that nothing is left behind for rm -r
unmount() {
	grep -qs " $1 fuse" /proc/mounts || return 0
	fusermount3 -u "$1" 2>/dev/null && return 0
	sleep 1
	fusermount3 -u "$1" 2>/dev/null && return 0
	echo "bench_rados: $1 stays busy or its daemon is gone: detaching it (fusermount3 -uz)" >&2
	fusermount3 -uz "$1"
	return 1
}
cleanup() {
	for m in "$T"/m*; do unmount "$m"; done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	"$CLUSTER" stop "$T/ceph" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export CEPH_MEMSTORE_BYTES=$(((4 * MIB + 1024) << 20))
CONF=$("$CLUSTER" start "$T/ceph" ckpt) || exit $?
URL="rados://ckpt?conf=$CONF"
R() { rados -c "$CONF" -p ckpt "$@"; }

echo "load: $(uptime)"
echo "warm: $WARM MiB touched and freed before each measured step"
# fresh random bytes, and the same bytes as 16 MiB pieces for rados put/get
newdata() {
	rm -rf "$T/pieces"
	head -c $((MIB << 20)) /dev/urandom >"$T/data"
	mkdir "$T/pieces"
	split -b 16M -d -a 4 "$T/data" "$T/pieces/p"
	ls "$T/pieces" >"$T/list"
}

now() { date +%s.%N; }
warm() { ((WARM > 0)) && python3 -c "b = b'\\x01' * ($WARM << 20)"; true; }
mbps() { python3 -c "import sys; print(f'{$MIB*1.048576/($2-$1):.0f}')" _ "$1" "$2"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }

mountit() { # DIR OPTS
	mkdir -p "$1"
	"$CKPTFS" "$URL" "$1" -f -o "$2" 2>>"$T/daemon.log" &
	PIDS+=($!)
	for _ in $(seq 1 200); do mountpoint -q "$1" && return 0; sleep 0.05; done
	echo "mount failed"; cat "$T/daemon.log"; exit 1
}

rados_put() {
	local t0 t1
	sync
	warm
	t0=$(now)
	xargs -P $P -I{} rados -c "$CONF" -p ckpt put "direct.{}" "$T/pieces/{}" <"$T/list" || exit 1
	t1=$(now)
	mbps "$t0" "$t1"
}
rados_get() {
	local t0 t1
	warm
	t0=$(now)
	xargs -P $P -I{} rados -c "$CONF" -p ckpt get "direct.{}" /dev/null <"$T/list" || exit 1
	t1=$(now)
	mbps "$t0" "$t1"
}
mount_write() { # MOUNT RUN
	local t0 t1
	mkdir -p "$1/$2"
	mkdir "$1/$2/v.tmp"
	warm
	t0=$(now)
	dd if="$T/data" of="$1/$2/v.tmp/data" bs=16M status=none || exit 1
	mv "$1/$2/v.tmp" "$1/$2/v" || exit 1
	t1=$(now)
	mbps "$t0" "$t1"
}
mount_read() { # MOUNT RUN
	local t0 t1
	warm
	t0=$(now)
	dd if="$1/$2/v/data" of=/dev/null bs=16M status=none || exit 1
	t1=$(now)
	mbps "$t0" "$t1"
}

direct_put() { sync; warm; "$DIRECT" "$CONF" ckpt raw "$T/data" $P put || exit 1; }
direct_get() { warm; "$DIRECT" "$CONF" ckpt raw "$T/data" $P get || exit 1; }

printf '%-30s %9s %14s %7s %14s %7s\n' "$MIB MiB, $P in flight" "ckptfs" "librados aio" "ratio" "rados CLI" "ratio"
row() { # WHAT MOUNT DIRECT CLI
	local cli=- cr=-
	[ -n "$4" ] && { cli="$4 MB/s"; cr=$(ratio "$2" "$4"); }
	printf '%-30s %4s MB/s %9s MB/s %7s %14s %7s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$cli" "$cr"
}
# MOUNT_CMD DIRECT_CMD: both figures, "MOUNT DIRECT", rados_direct first in
# odd rounds ($k)
both() {
	local m d
	if ((k % 2)); then
		d=$($2)
		m=$($1)
	else
		m=$($1)
		d=$($2)
	fi
	echo "$m $d"
}
for cs in 16M 1M; do
	o="write_buffer=64M,chunk_size=$cs"
	for ((k = 1; k <= ROUNDS; k++)); do
		newdata
		rp='' rg=''
		[ "$k" = 1 ] && rp=$(rados_put)
		mountit "$T/mw$cs" "$o"
		run=r$cs.$k
		read -r mw dp < <(both "mount_write $T/mw$cs $run" direct_put)
		unmount "$T/mw$cs" || exit 1
		mountit "$T/mr$cs" "$o" # fresh daemon: nothing cached
		[ "$k" = 1 ] && rg=$(rados_get)
		read -r mr dg < <(both "mount_read $T/mr$cs $run" direct_get)
		cmp "$T/data" "$T/mr$cs/$run/v/data" || { echo "read back differs"; tail "$T/daemon.log"; exit 1; }
		# this round's bytes go: the next round writes new ones in their place
		rm -r "$T/mr$cs/$run/v" || exit 1
		unmount "$T/mr$cs" || exit 1
		row "write+commit, chunks $cs" "$mw" "$dp" "$rp"
		row "cold read, chunks $cs" "$mr" "$dg" "$rg"
		R ls | grep -E '^(direct|raw|ckptfs\.c)\.' | xargs -r -n 256 rados -c "$CONF" -p ckpt rm
	done
	echo "load: $(uptime)"
done

mountit "$T/mA" "write_buffer=64M"
mountit "$T/mB" "write_buffer=64M"
mkdir "$T/mA/lat"
python3 - "$T/mA/lat" "$T/mB/lat" 100 <<'PY'
import os, sys, time
a, b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.monotonic()
while not os.path.isdir(b):
    if time.monotonic() - t0 > 10: sys.exit("run not on B")
    time.sleep(0.001)
lat = []
for i in range(n):
    os.mkdir(f"{a}/v{i}.tmp")
    with open(f"{a}/v{i}.tmp/f", "w") as f: f.write(str(i))
    os.rename(f"{a}/v{i}.tmp", f"{a}/v{i}")
    t0 = time.monotonic()
    while not os.path.exists(f"{b}/v{i}"):
        if time.monotonic() - t0 > 10: sys.exit(f"v{i} not on B after 10 s")
        time.sleep(0.0002)
    lat.append((time.monotonic() - t0) * 1000)
lat.sort()
print(f"cross-host visibility over {n} commits: median {lat[n//2]:.1f} ms, "
      f"p90 {lat[int(n*0.9)]:.1f} ms, max {lat[-1]:.1f} ms (goal: median <= 100 ms)")
PY
echo "load: $(uptime)"
