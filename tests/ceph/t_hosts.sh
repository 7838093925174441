#!/bin/bash
# t_hosts.sh - three ckptfs daemons ("hosts" A, B, C) on one RADOS pool:
# a version written on A and committed by rename reads bitwise equal on B and
# C, latest agrees on all three, a run and a commit made on one host show on
# the others, a deletion too, and retention set on one host and applied by
# another's commits.
. "$(dirname "$0")/lib.sh"
rlib_init "$@"

mount_host A
mount_host B
mount_host C
A=$T/A B=$T/B C=$T/C

note "write on A, commit by rename"
mkdir "$A/run" "$A/run/step-1.tmp" || fail "mkdir on A"
head -c $((5 * 1024 * 1024 + 123)) /dev/urandom >"$A/run/step-1.tmp/model.bin"
mkdir "$A/run/step-1.tmp/sub"
echo hello >"$A/run/step-1.tmp/sub/notes.txt"
mv "$A/run/step-1.tmp" "$A/run/step-1" || fail "commit by rename on A"
want=$(xxhsum -H2 "$A/run/step-1/model.bin" | cut -d' ' -f1)

for h in B C; do
	wait_for test -e "$T/$h/run/step-1/model.bin" || fail "step-1 not visible on $h"
	cmp "$A/run/step-1/model.bin" "$T/$h/run/step-1/model.bin" || fail "model.bin differs on $h"
	cmp "$A/run/step-1/sub/notes.txt" "$T/$h/run/step-1/sub/notes.txt" || fail "notes differ on $h"
	got=$(getfattr --only-values -n user.ckpt.xxh128 "$T/$h/run/step-1/model.bin")
	[ "$got" = "$want" ] || fail "xxh128 on $h is $got, want $want"
	st=$(getfattr --only-values -n user.ckpt.state "$T/$h/run/step-1")
	[ "$st" = committed ] || fail "state on $h is $st"
done

note "commits on B and C: latest agrees everywhere"
mkdir "$B/run/step-2.tmp" && echo two >"$B/run/step-2.tmp/f" && mv "$B/run/step-2.tmp" "$B/run/step-2" ||
	fail "commit on B"
for h in A B C; do
	wait_for latest_is $h step-2 || fail "latest on $h is $(readlink "$T/$h/run/latest"), want step-2"
done
mkdir "$C/run/step-3.tmp" && echo three >"$C/run/step-3.tmp/f" && mv "$C/run/step-3.tmp" "$C/run/step-3" ||
	fail "commit on C"
for h in A B C; do
	wait_for latest_is $h step-3 || fail "latest on $h is $(readlink "$T/$h/run/latest"), want step-3"
	[ "$(cat "$T/$h/run/latest/f")" = three ] || fail "latest/f on $h"
done
s1=$(grep -o '"seq": [0-9]*' "$A/run/step-1/.manifest")
s2=$(grep -o '"seq": [0-9]*' "$B/run/step-2/.manifest")
s3=$(grep -o '"seq": [0-9]*' "$A/run/step-3/.manifest")
note "seqs: $s1 $s2 $s3"
[ "${s1#*: }" -lt "${s2#*: }" ] && [ "${s2#*: }" -lt "${s3#*: }" ] || fail "seq not ordered: $s1 $s2 $s3"

note "same version name committed on A and on B: one wins, the other EEXIST"
mkdir "$A/run/x.tmp" "$B/run/y.tmp" && echo a >"$A/run/x.tmp/f" && echo b >"$B/run/y.tmp/f" || fail "open x, y"
mv "$A/run/x.tmp" "$A/run/same" || fail "first commit of 'same'"
sleep 1.5 # B's name cache for the new name, if any, expires (entry timeout 1 s)
out=$(mv -T "$B/run/y.tmp" "$B/run/same" 2>&1) && fail "second commit of 'same' on B succeeded: $out"
note "the loser: $out"
[ "$(cat "$B/run/same/f")" = a ] || fail "B sees the loser's content"

note "deletion on C shows on A and B"
rm -r "$C/run/step-1" || fail "rm -r on C"
for h in A B; do
	wait_for test ! -e "$T/$h/run/step-1" || fail "step-1 still on $h"
done

note "a new run on B shows on A"
mkdir "$B/other" || fail "mkdir run on B"
wait_for test -d "$A/other" || fail "run other not on A"

note "retention set on A, applied by B's commits, seen on A and C"
mkdir "$A/keep" && setfattr -n user.ckpt.keep_last -v 2 "$A/keep" || fail "keep_last on A"
kl() { [ "$(getfattr --only-values -n user.ckpt.keep_last "$B/keep" 2>/dev/null)" = 2 ]; }
wait_for kl || fail "keep_last not on B"
for i in 1 2 3 4; do
	mkdir "$B/keep/k$i.tmp" && echo "$i" >"$B/keep/k$i.tmp/f" && mv "$B/keep/k$i.tmp" "$B/keep/k$i" ||
		fail "commit k$i on B"
done
for h in A B C; do
	gone() { [ ! -e "$T/$1/keep/k1" ] && [ ! -e "$T/$1/keep/k2" ] && [ -e "$T/$1/keep/k4" ]; }
	wait_for gone $h || fail "retention on $h: $(ls "$T/$h/keep" | tr '\n' ' ')"
	[ "$(ls "$T/$h/keep" | grep -c '^k')" -eq 2 ] || fail "keep on $h: $(ls "$T/$h/keep" | tr '\n' ' ')"
done

note "a host mounted later sees everything"
mount_host D
[ "$(readlink "$T/D/run/latest")" = same ] || fail "latest on D is $(readlink "$T/D/run/latest")"
cmp "$A/run/step-2/f" "$T/D/run/step-2/f" || fail "step-2 on D"
for h in A B C D; do umount_host $h; done
echo PASS
