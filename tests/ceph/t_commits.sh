#!/bin/bash
# t_commits.sh - hosts A and B commit into one run at the same time (100
# versions each, CKPT_TEST_COMMITS to change): none lost, none duplicated,
# seq strictly ordered, latest the same on both. Then the latency of a
# commit on A until B sees it, over 100 commits (printed; no threshold: the
# benchmark is bench/rados).
. "$(dirname "$0")/lib.sh"
rlib_init "$@"
N=${CKPT_TEST_COMMITS:-100}

mount_host A
mount_host B
A=$T/A B=$T/B
mkdir "$A/run" || fail "mkdir run"
wait_for test -d "$B/run" || fail "run not on B"

commits() {
	local h=$1 i
	for ((i = 0; i < N; i++)); do
		mkdir "$T/$h/run/$h-$i.tmp" || return 1
		echo "$h $i" >"$T/$h/run/$h-$i.tmp/f" || return 1
		mv "$T/$h/run/$h-$i.tmp" "$T/$h/run/$h-$i" || return 1
	done
}
note "$N commits on A and on B at once"
commits A &
pa=$!
commits B &
pb=$!
wait $pa || fail "a commit on A failed"
wait $pb || fail "a commit on B failed"

note "every version on both hosts, once, with its content"
for h in A B; do
	for o in A B; do
		for ((i = 0; i < N; i++)); do
			wait_for test -e "$T/$h/run/$o-$i/f" || fail "$o-$i missing on $h"
		done
	done
	n=$(ls "$T/$h/run" | grep -c -- '^[AB]-[0-9]*$')
	[ "$n" -eq $((2 * N)) ] || fail "$h lists $n versions, want $((2 * N))"
done
[ "$(cat "$B/run/A-7/f")" = "A 7" ] || fail "content of A-7 on B"

note "seq: distinct and in commit order on each host"
for h in A B; do
	for v in "$T/$h/run/"[AB]-*; do
		s=$(grep -o '"seq": [0-9]*' "$v/.manifest") || fail "no seq in $v"
		echo "${s#*: } $(basename "$v")"
	done | sort -n >"$T/seq.$h"
	d=$(cut -d' ' -f1 "$T/seq.$h" | uniq -d | head -3)
	[ -z "$d" ] || fail "duplicated seq on $h: $d"
	# each host's own versions in the order it committed them
	for o in A B; do
		grep " $o-" "$T/seq.$h" | cut -d' ' -f2 | sed "s/^$o-//" >"$T/order"
		sort -n -c "$T/order" || fail "$o's commits out of seq order on $h"
	done
done
cmp "$T/seq.A" "$T/seq.B" || fail "A and B disagree on seqs"
last=$(tail -n 1 "$T/seq.A" | cut -d' ' -f2)
for h in A B; do
	wait_for latest_is $h "$last" || fail "latest on $h is $(readlink "$T/$h/run/latest"), want $last"
done
note "latest $last on both"

note "visibility latency A -> B over $N commits"
python3 - "$A/run" "$B/run" "$N" <<'PY' || fail "latency run"
import os, sys, time
a, b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lat = []
for i in range(n):
    os.mkdir(f"{a}/lat-{i}.tmp")
    with open(f"{a}/lat-{i}.tmp/f", "w") as f:
        f.write(str(i))
    os.rename(f"{a}/lat-{i}.tmp", f"{a}/lat-{i}")
    t0 = time.monotonic()
    while not os.path.exists(f"{b}/lat-{i}"):
        if time.monotonic() - t0 > 10:
            sys.exit(f"lat-{i} not on B after 10 s")
        time.sleep(0.0005)
    lat.append(time.monotonic() - t0)
lat.sort()
print(f"commit on A visible on B: median {lat[len(lat)//2]*1000:.1f} ms, "
      f"max {lat[-1]*1000:.1f} ms over {n} commits")
PY
umount_host A
umount_host B
echo PASS
