#!/bin/bash
# t_kill.sh - kill -9 of host A's ckptfs at random moments while it writes
# and commits (CKPT_TEST_KILLS rounds: 8, 20 with CKPT_TEST_LARGE=1) while host B reads:
# B never shows anything torn (every committed version it lists reads back
# with the XXH128 of its manifest), every version A's rename reported as
# committed is there and verifies, and A mounts again after each kill
# (removing the staging directories the killed daemons left).
. "$(dirname "$0")/lib.sh"
rlib_init "$@"
N=${CKPT_TEST_KILLS:-8}
[ "${CKPT_TEST_LARGE:-}" = 1 ] && N=${CKPT_TEST_KILLS:-20}

mount_host B
B=$T/B
mkdir "$B/run" || fail "mkdir run on B"
: >"$T/committed"

writer() { # round: open, write, commit versions until A goes
	local r=$1 i=0
	while :; do
		local v=r$r-$i
		mkdir "$T/A/run/$v.tmp" 2>/dev/null || return 0
		head -c $((RANDOM * 64 + 100000)) /dev/urandom >"$T/A/run/$v.tmp/a" 2>/dev/null || return 0
		head -c $((RANDOM * 16)) /dev/urandom >"$T/A/run/$v.tmp/b" 2>/dev/null || return 0
		mv "$T/A/run/$v.tmp" "$T/A/run/$v" 2>/dev/null || return 0
		echo "$v" >>"$T/committed"
		i=$((i + 1))
	done
}

check_version() { # HOST VERSION: every file reads with its manifest's hash
	local d=$T/$1/run/$2 f want got
	for f in a b; do
		want=$(getfattr --only-values -n user.ckpt.xxh128 "$d/$f" 2>/dev/null) || return 1
		got=$(xxhsum -H2 "$d/$f" 2>/dev/null | cut -d' ' -f1) || return 1
		[ -n "$got" ] && [ "$got" = "$want" ] || return 1
	done
}

reader() { # B reads every committed version it sees, until told to stop
	while [ ! -e "$T/stop" ]; do
		for d in "$B/run/"r*; do
			[ -d "$d" ] || continue
			v=$(basename "$d")
			st=$(getfattr --only-values -n user.ckpt.state "$d" 2>/dev/null) || continue
			[ "$st" = committed ] || continue
			if ! check_version B "$v"; then
				# deleted meanwhile is fine; committed and wrong is not
				[ -e "$d" ] && [ "$(getfattr --only-values -n user.ckpt.state "$d" 2>/dev/null)" = committed ] &&
					echo "$v" >>"$T/torn"
			fi
		done
	done
}
reader &
rp=$!

for ((r = 0; r < N; r++)); do
	mountpoint -q "$T/A" && { fusermount3 -u "$T/A" 2>/dev/null || umount -l "$T/A"; }
	mount_host A
	[ -d "$T/A/run" ] || fail "round $r: A does not see the run after remounting"
	writer $r &
	wp=$!
	sleep "$(python3 -c 'import random; print(random.uniform(0.05, 1.2))')"
	kill -9 "${HPID[A]}"
	echo "${HPID[A]}" >>"$T/killed"
	wait "${HPID[A]}" 2>/dev/null
	unset "HPID[A]"
	wait $wp
	fusermount3 -u "$T/A" 2>/dev/null || umount -l "$T/A"
done
touch "$T/stop"
wait $rp
[ ! -s "$T/torn" ] || fail "B showed torn committed versions: $(sort -u "$T/torn" | head -5 | tr '\n' ' ')"

note "$(wc -l <"$T/committed") versions committed across $N kills; all on B and verified"
for v in $(cat "$T/committed"); do
	wait_for test -e "$B/run/$v" || fail "committed $v is missing on B"
	check_version B "$v" || fail "committed $v does not verify on B"
done
mount_host A
for v in $(cat "$T/committed"); do
	check_version A "$v" || fail "committed $v does not verify on A after remounting"
done
for p in $(cat "$T/killed"); do
	left=$(ls -d "${TMPDIR:-/var/tmp}/ckptfs-stage-$p-"* 2>/dev/null)
	[ -z "$left" ] || fail "the staging directory of killed ckptfs $p is left: $left"
done
inc=$(ls "$T/A/run" | grep -c '\.tmp$')
note "versions left open by the kills (incomplete): $inc"
umount_host A
umount_host B
echo PASS
