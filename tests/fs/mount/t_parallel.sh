#!/usr/bin/env bash
# t_parallel.sh - 4 writers commit versions in parallel (each in its own run,
# by rename) while 4 readers read committed versions and check every file
# against user.ckpt.xxh128 and xxhsum: no errors, all hashes right.
. "$(dirname "$0")/lib.sh"
lib_init "$@"

NV=${CKPT_PAR_VERSIONS:-6}
mount_fs
for w in 1 2 3 4; do
	mkdir "$MNT/w$w" || fail "mkdir w$w"
	head -c $((3 << 20)) /dev/urandom >"$T/src$w"
done

writer() {
	local w=$1 v
	for v in $(seq 1 "$NV"); do
		# Each version differs in its first 4 KiB: dedup sees the rest.
		head -c 4096 /dev/urandom | dd of="$T/src$w" bs=4096 count=1 conv=notrunc status=none
		mkdir "$MNT/w$w/v$v.tmp" || return 1
		dd if="$T/src$w" of="$MNT/w$w/v$v.tmp/model" bs=1M status=none || return 1
		head -c 70000 "$T/src$w" >"$MNT/w$w/v$v.tmp/small" || return 1
		mv "$MNT/w$w/v$v.tmp" "$MNT/w$w/v$v" || return 1
		xxh "$T/src$w" >"$T/want.w$w.v$v"
	done
	touch "$T/done.w$w"
}

reader() {
	local r=$1 n=0 w v f h got
	while [ "$(ls "$T"/done.w* 2>/dev/null | wc -l)" -lt 4 ]; do
		for w in 1 2 3 4; do
			v=$(readlink "$MNT/w$w/latest" 2>/dev/null) || continue
			for f in model small; do
				h=$(getfattr --only-values -n user.ckpt.xxh128 "$MNT/w$w/$v/$f") || {
					echo "reader $r: getfattr $w/$v/$f failed"; return 1; }
				got=$(xxh "$MNT/w$w/$v/$f") || { echo "reader $r: read $w/$v/$f failed"; return 1; }
				[ "$h" = "$got" ] || { echo "reader $r: $w/$v/$f hash $got != $h"; return 1; }
				n=$((n + 1))
			done
		done
	done
	echo "reader $r: $n files checked"
	[ "$n" -gt 0 ] || { echo "reader $r: read nothing"; return 1; }
}

pids=()
for w in 1 2 3 4; do writer $w & pids+=($!); done
rpids=()
for r in 1 2 3 4; do reader $r & rpids+=($!); done
for p in "${pids[@]}"; do
	wait "$p" || { touch "$T"/done.w1 "$T"/done.w2 "$T"/done.w3 "$T"/done.w4; fail "a writer failed"; }
done
for p in "${rpids[@]}"; do wait "$p" || fail "a reader failed"; done

note "every version of every writer is committed and right"
for w in 1 2 3 4; do
	for v in $(seq 1 "$NV"); do
		[ "$(xattr user.ckpt.state "$MNT/w$w/v$v")" = committed ] || fail "w$w/v$v not committed"
		[ "$(xxh "$MNT/w$w/v$v/model")" = "$(cat "$T/want.w$w.v$v")" ] || fail "w$w/v$v/model differs"
	done
	[ "$(readlink "$MNT/w$w/latest")" = "v$NV" ] || fail "w$w latest"
done
alive "after the parallel run"
umount_fs
echo PASS
