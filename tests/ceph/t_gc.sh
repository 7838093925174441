#!/bin/bash
# t_gc.sh - gc with many hosts (issue 13). `ckpt gc` from a third client,
# with no clock margin at all (CKPT_RADOS_GC_GRACE_S=0), while two other
# mounts write loses nothing: the chunks of a file still open for writing
# (in no part and no manifest yet), chunks a host deduplicates against the
# garbage of a deleted version, versions committed while gc runs. And what
# nobody references any more goes at once, not after a grace of hours: the
# chunks of deleted versions, and of a version abandoned by a host killed
# with -9 once its lease ran out.
. "$(dirname "$0")/lib.sh"
rlib_init "$@"
[ -x "$CKPT" ] || fail "ckpt binary $CKPT is missing"
R() { rados -c "$CONF" -p "$POOL" "$@"; }
chunk_objects() { R ls | grep -c '^ckptfs\.c\.'; }
gc() { CKPT_RADOS_GC_GRACE_S=0 "$CKPT" gc --store "$URL" --json | tr -d "\n"; }
# The distinct chunks named by the manifests of every committed version
# (read on host $1).
referenced() {
	python3 - "$T/$1" <<'PY'
import glob, json, sys
hs = set()
for m in glob.glob(sys.argv[1] + "/*/*/.manifest"):
    for f in json.load(open(m)).get("files", []):
        hs.update(c[0] for c in f.get("chunks", []))
print(len(hs))
PY
}
# the store holds exactly the chunks committed versions name
exact() {
	local n r
	n=$(chunk_objects)
	r=$(referenced "$1")
	[ "$n" = "$r" ] || {
		echo "chunk objects $n, referenced $r"
		return 1
	}
}

mount_host A
mount_host B
A=$T/A B=$T/B
mkdir "$A/run" || fail "mkdir run"
wait_for test -d "$B/run" || fail "run not on B"

note "a file open for writing: its chunks are in no part and no manifest, and stay"
head -c $((24 << 20)) /dev/urandom >"$T/x"
mkdir "$A/run/v1.tmp" || fail "open v1"
exec 7>"$A/run/v1.tmp/x"
cat "$T/x" >&7 || fail "write x"
enough() { [ "$(chunk_objects)" -ge 20 ]; }
wait_for enough || fail "the chunks of x were not written: $(chunk_objects)"
out=$(gc) || fail "gc: $out"
note "gc while x is open: $out"
exec 7>&-
mv "$A/run/v1.tmp" "$A/run/v1" || fail "commit v1"

note "garbage deduplicated against by an open file stays"
head -c $((8 << 20)) /dev/urandom >"$T/y"
mkdir "$A/run/d.tmp" && cp "$T/y" "$A/run/d.tmp/y" && mv "$A/run/d.tmp" "$A/run/d" || fail "commit d"
rm -r "$A/run/d" || fail "delete d"
mkdir "$B/run/w.tmp" || fail "open w on B"
exec 8>"$B/run/w.tmp/y"
cat "$T/y" >&8 || fail "write y on B"
sleep 1 # its chunk writes (dedup hits) are done
out=$(gc) || fail "gc: $out"
note "gc while y is open on B: $out"
exec 8>&-
mv "$B/run/w.tmp" "$B/run/w" || fail "commit w on B"

note "gc in a loop while A and B commit and delete in a loop"
for k in 0 1 2; do head -c $((3 << 20)) /dev/urandom >"$T/pool$k"; done
writer() { # HOST N: versions HOST-I with a file of its own and one of the pool
	local h=$1 i m=$T/$1
	for ((i = 1; i <= $2; i++)); do
		head -c $(((1 + i % 3) << 20)) /dev/urandom >"$T/own-$h-$i"
		mkdir "$m/run/$h-$i.tmp" &&
			cp "$T/own-$h-$i" "$m/run/$h-$i.tmp/own" &&
			cp "$T/pool$((i % 3))" "$m/run/$h-$i.tmp/pool" &&
			mv "$m/run/$h-$i.tmp" "$m/run/$h-$i" || return 1
		# keep the last two of this host: the rest is garbage, and the
		# pool's chunks go between garbage and referenced
		[ "$i" -gt 2 ] && { rm -r "$m/run/$h-$((i - 2))" || return 1; }
	done
	return 0
}
writer A 12 &
wa=$!
writer B 12 &
wb=$!
ngc=0
while kill -0 $wa 2>/dev/null || kill -0 $wb 2>/dev/null; do
	gc >/dev/null || fail "gc during the writes"
	ngc=$((ngc + 1))
done
wait $wa || fail "writer on A"
wait $wb || fail "writer on B"
note "$ngc gc runs during the writes"

note "a fresh host reads every committed version bitwise equal"
mount_host C
C=$T/C
wait_for test -e "$C/run/B-12" -a -e "$C/run/A-12" || fail "the last versions are not on C"
cmp "$T/x" "$C/run/v1/x" || fail "v1/x (open during gc) differs"
cmp "$T/y" "$C/run/w/y" || fail "w/y (deduplicated against garbage during gc) differs"
for h in A B; do
	for i in 11 12; do
		cmp "$T/own-$h-$i" "$C/run/$h-$i/own" && cmp "$T/pool$((i % 3))" "$C/run/$h-$i/pool" ||
			fail "$h-$i differs on C"
	done
done
out=$(gc) || fail "gc: $out"
note "gc once nobody writes: $out"
exact C || fail "garbage of the deleted versions is left, or a referenced chunk went"

note "a host killed with -9 mid-write: its open version and its chunks go once its lease ran out"
CKPT_RADOS_LEASE_S=3 mount_host D
D=$T/D
wait_for test -d "$D/run" || fail "run not on D"
head -c $((6 << 20)) /dev/urandom >"$T/z"
mkdir "$D/run/k.tmp" && cp "$T/z" "$D/run/k.tmp/closed" || fail "write k on D"
exec 9>"$D/run/k.tmp/open"
head -c $((5 << 20)) /dev/urandom >&9
sleep 1
kill -9 "${HPID[D]}"
wait "${HPID[D]}" 2>/dev/null
unset "HPID[D]"
exec 9>&-
fusermount3 -u "$D" 2>/dev/null || umount -l "$D" 2>/dev/null
before=$(chunk_objects)
sleep 4 # CKPT_RADOS_LEASE_S=3
out=$(gc) || fail "gc: $out"
note "gc after D's lease ran out: $out"
echo "$out" | grep -q '"versions_removed": *1' || fail "k.tmp was not removed: $out"
note "chunk objects: $before before, $(chunk_objects) after"
exact C || fail "D's chunks are left, or a referenced chunk went"
cmp "$T/x" "$C/run/v1/x" && cmp "$T/own-A-12" "$C/run/A-12/own" || fail "a committed version lost data"
for h in A B C; do umount_host $h; done
echo PASS
