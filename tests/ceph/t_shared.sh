#!/bin/bash
# t_shared.sh - one open version written by three ckptfs "hosts" (A, B, C)
# on one RADOS pool (docs/store-format.md "Open versions shared by hosts"):
# each host's closed files show on the others while the version is open
# (and are read-only there); a commit by rename on A publishes every host's
# files, bitwise equal on all; a file still open for writing on B makes A's
# rename EBUSY; user.ckpt.writers=3 with a part set on each host commits on
# the last part, never before; kill -9 of B mid-write: B's closed file is in
# A's commit, its torn file never, and the commit waits (EBUSY) until B's
# lease has run out.
. "$(dirname "$0")/lib.sh"
rlib_init "$@"

mount_host A
mount_host B
mount_host C
A=$T/A B=$T/B C=$T/C

sum() { xxhsum -H2 "$1" | cut -d' ' -f1; }

note "one open version, files from three hosts"
mkdir "$A/run" "$A/run/s1.tmp" || fail "mkdir on A"
# no wait: B's lookup of a version it has not heard of yet asks the store
head -c $((3 * 1024 * 1024 + 5)) /dev/urandom >"$T/b.bin"
cp "$T/b.bin" "$B/run/s1.tmp/optim-1.bin" || fail "write on B into A's open version"
head -c $((2 * 1024 * 1024 + 77)) /dev/urandom >"$A/run/s1.tmp/model.bin" || fail "write on A"
mkdir -p "$C/run/s1.tmp/shards" && echo c-shard >"$C/run/s1.tmp/shards/optim-2.txt" || fail "write on C"
[ "$(getfattr --only-values -n user.ckpt.state "$B/run/s1.tmp")" = open ] || fail "s1.tmp is not open on B"
wait_for test -e "$A/run/s1.tmp/optim-1.bin" || fail "B's closed file not visible on A"
cmp "$T/b.bin" "$A/run/s1.tmp/optim-1.bin" || fail "B's file reads differently on A"
wait_for test -e "$B/run/s1.tmp/model.bin" || fail "A's closed file not visible on B"
cmp "$A/run/s1.tmp/model.bin" "$B/run/s1.tmp/model.bin" || fail "A's file reads differently on B"
wait_for test -e "$A/run/s1.tmp/shards/optim-2.txt" || fail "C's file not visible on A"
out=$(echo x 2>&1 >>"$A/run/s1.tmp/optim-1.bin") && fail "A changed B's file"
note "A writing B's file: $out"
wait_for test -e "$C/run/s1.tmp/model.bin" || fail "A's file not visible on C"
rm "$C/run/s1.tmp/model.bin" 2>/dev/null && fail "C removed A's file"

note "a file open for writing on B holds A's rename back (EBUSY)"
exec 7>"$B/run/s1.tmp/late.bin"
echo still-writing >&7
out=$(mv "$A/run/s1.tmp" "$A/run/s1" 2>&1) && fail "rename on A published with a file open on B"
echo "$out" | grep -q 'busy' || fail "rename on A: $out, want EBUSY"
[ "$(getfattr --only-values -n user.ckpt.state "$A/run/s1.tmp")" = open ] || fail "s1.tmp not open after EBUSY"
exec 7>&-
wait_for mv "$A/run/s1.tmp" "$A/run/s1" || fail "rename on A after B closed its file"

note "the commit holds every host's files, bitwise equal everywhere"
for h in A B C; do
	wait_for test -d "$T/$h/run/s1" || fail "s1 not on $h"
	[ "$(getfattr --only-values -n user.ckpt.state "$T/$h/run/s1")" = committed ] || fail "s1 on $h not committed"
	[ ! -e "$T/$h/run/s1.tmp" ] || fail "s1.tmp still on $h"
	for f in model.bin optim-1.bin shards/optim-2.txt late.bin; do
		[ -f "$T/$h/run/s1/$f" ] || fail "s1/$f missing on $h"
		cmp "$A/run/s1/$f" "$T/$h/run/s1/$f" || fail "s1/$f differs on $h"
		[ "$(getfattr --only-values -n user.ckpt.xxh128 "$T/$h/run/s1/$f")" = "$(sum "$T/$h/run/s1/$f")" ] ||
			fail "xxh128 of s1/$f on $h"
	done
	wait_for latest_is "$h" s1 || fail "latest on $h"
done
cmp "$T/b.bin" "$C/run/s1/optim-1.bin" || fail "B's file in the commit differs"
[ "$(cat "$A/run/s1/late.bin")" = still-writing ] || fail "late.bin"
ckpt_verify=$("$CKPT" verify --store "$URL" run/s1 2>&1) || fail "ckpt verify run/s1: $ckpt_verify"

note "user.ckpt.writers=3 across hosts: the last part commits"
mkdir "$A/run/s2" && setfattr -n user.ckpt.writers -v 3 "$A/run/s2" || fail "writers=3 on A"
echo r0 >"$A/run/s2/r0" && setfattr -n user.ckpt.commit -v rank=0 "$A/run/s2" || fail "part 0 on A"
echo r1 >"$B/run/s2/r1" && setfattr -n user.ckpt.commit -v rank=1 "$B/run/s2" || fail "part 1 on B"
[ "$(getfattr --only-values -n user.ckpt.state "$C/run/s2")" = open ] || fail "s2 committed before its last part"
[ "$(getfattr --only-values -n user.ckpt.parts "$C/run/s2")" = "0, 1" ] ||
	fail "parts on C: $(getfattr --only-values -n user.ckpt.parts "$C/run/s2")"
setfattr -n user.ckpt.commit -v 1 "$C/run/s2" 2>/dev/null && fail "commit on C before part 2"
echo r2 >"$C/run/s2/r2" && setfattr -n user.ckpt.commit -v rank=2 "$C/run/s2" || fail "part 2 on C"
for h in A B C; do
	st() { [ "$(getfattr --only-values -n user.ckpt.state "$T/$1/run/s2" 2>/dev/null)" = committed ]; }
	wait_for st "$h" || fail "s2 not committed on $h"
	[ "$(cat "$T/$h/run/s2/r0" "$T/$h/run/s2/r1" "$T/$h/run/s2/r2" | tr '\n' ' ')" = "r0 r1 r2 " ] ||
		fail "s2's files on $h"
done

note "parts on A and B set at the same moment, 30 times: both setxattrs succeed"
# each host can be the last (each publishes its part, then reads the
# other's): the one whose commit loses finds the version committed
python3 - "$A/race" "$B/race" <<'PY' || fail "parts set at once on two hosts"
import multiprocessing as mp, os, sys, time
a, b = sys.argv[1], sys.argv[2]
os.mkdir(a)

def part(d, k, bar, q):
    with open(os.path.join(d, "r%d" % k), "w") as f:
        f.write("r%d" % k)
    bar.wait()
    try:
        os.setxattr(d, "user.ckpt.commit", b"rank=%d" % k)
        q.put(None)
    except OSError as e:
        q.put("%s rank=%d: %s" % (d, k, e))

errs = []
for i in range(30):
    v = "v-%02d" % i
    os.mkdir(os.path.join(a, v))
    os.setxattr(os.path.join(a, v), "user.ckpt.writers", b"2")
    end = time.time() + 10
    while time.time() < end:  # B hears of the version and its writers
        try:
            if os.getxattr(os.path.join(b, v), "user.ckpt.writers") == b"2":
                break
        except OSError:
            pass
        time.sleep(0.01)
    bar, q = mp.Barrier(2), mp.Queue()
    ps = [mp.Process(target=part, args=(os.path.join(m, v), k, bar, q))
          for k, m in enumerate((a, b))]
    for p in ps:
        p.start()
    errs += [e for e in (q.get() for _ in ps) if e]
    for p in ps:
        p.join()
    for m in (a, b):
        end = time.time() + 5
        while time.time() < end and os.getxattr(os.path.join(m, v), "user.ckpt.state") != b"committed":
            time.sleep(0.01)
        if os.getxattr(os.path.join(m, v), "user.ckpt.state") != b"committed":
            errs.append("%s/%s is not committed" % (m, v))
        elif sorted(os.listdir(os.path.join(m, v))) != [".manifest", "r0", "r1"]:
            errs.append("%s/%s holds %s" % (m, v, os.listdir(os.path.join(m, v))))
if errs:
    sys.exit("\n".join(errs[:10]) + "\n%d failures" % len(errs))
PY

note "a rank killed before its part: the version stays open"
mkdir "$A/run/s3" && setfattr -n user.ckpt.writers -v 2 "$A/run/s3" || fail "writers=2 on s3"
echo r0 >"$A/run/s3/r0" && setfattr -n user.ckpt.commit -v rank=0 "$A/run/s3" || fail "part 0 of s3"
echo half >"$B/run/s3/r1"
sleep 0.3
[ "$(getfattr --only-values -n user.ckpt.state "$A/run/s3")" = open ] || fail "s3 committed without part 1"

note "kill -9 of B mid-write: its closed file is committed, its torn one never"
mkdir "$B/run/bonly.tmp" && echo b >"$B/run/bonly.tmp/f" || fail "B's own open version"
mkdir "$A/run/s4.tmp" || fail "mkdir s4.tmp"
cp "$T/b.bin" "$B/run/s4.tmp/closed.bin" || fail "closed.bin on B"
# the kernel sends the RELEASE after close(2) has returned (and with
# FOPEN_NOFLUSH no FLUSH before it): B's file is closed for the other hosts
# once it is in B's part, which A sees; kill B only then
wait_for test -e "$A/run/s4.tmp/closed.bin" || fail "B's closed file never reached A"
exec 8>"$B/run/s4.tmp/torn.bin"
head -c $((5 * 1024 * 1024)) /dev/urandom >&8
kill -9 "${HPID[B]}"
wait "${HPID[B]}" 2>/dev/null
unset "HPID[B]"
exec 8>&-
fusermount3 -u "$B" 2>/dev/null || umount -l "$B" 2>/dev/null
# B's part says one file open until its lease runs out (10 s): EBUSY
out=$(mv "$A/run/s4.tmp" "$A/run/s4" 2>&1) && fail "rename while dead B's lease holds: committed"
note "right after the kill: $out"
for _ in $(seq 1 60); do
	mv "$A/run/s4.tmp" "$A/run/s4" 2>/dev/null && break
	sleep 0.5
done
[ -d "$A/run/s4" ] || fail "s4 never committed after B's lease ran out"
cmp "$T/b.bin" "$A/run/s4/closed.bin" || fail "B's closed file is not in s4"
[ ! -e "$A/run/s4/torn.bin" ] || fail "B's torn file is in s4"
wait_for test -d "$C/run/s4" || fail "s4 not on C"

note "gc: B's own open version goes once B's lease ran out (not after 6 h); s3 stays"
out=$("$CKPT" gc --store "$URL" 2>&1) || fail "ckpt gc: $out"
note "$out"
echo "$out" | grep -q 'and 1 incomplete version' || fail "gc removed not just bonly.tmp: $out"
wait_for test ! -e "$A/run/bonly.tmp" || fail "bonly.tmp still on A after gc"
[ "$(getfattr --only-values -n user.ckpt.state "$A/run/s3")" = open ] || fail "gc took s3"
[ ! -e "$C/run/s4/torn.bin" ] || fail "torn file on C"

note "B mounts again: it sees everything, s3 still open"
mount_host B
cmp "$A/run/s4/closed.bin" "$B/run/s4/closed.bin" || fail "s4 on B"
cmp "$A/run/s1/model.bin" "$B/run/s1/model.bin" || fail "s1 on B"
[ "$(getfattr --only-values -n user.ckpt.state "$B/run/s3")" = open ] || fail "s3 on B is $(getfattr --only-values -n user.ckpt.state "$B/run/s3")"
for h in A B C; do umount_host $h; done
echo PASS
