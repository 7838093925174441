#!/usr/bin/env bash
# t_times.sh - mtime, ctime and atime in an open version behave as in a
# plain directory (the same checks run on both): write, append, O_TRUNC,
# truncate, chmod, utimensat (kept to the nanosecond, atime included),
# entries added to and removed from a directory; a commit keeps the times
# the files had (SPEC §2).
. "$(dirname "$0")/lib.sh"
lib_init "$@"

cat >"$T/times.py" <<'PY'
import os, sys, time
d = sys.argv[1]
problems = []

def check(cond, what):
    if not cond:
        problems.append(what)

def tick():
    time.sleep(0.03)  # beyond the kernel's coarse clock (one jiffy)

p = os.path.join(d, "f")
before = time.time_ns()
with open(p, "wb") as f:
    f.write(b"x" * 100)
st0 = os.stat(p)
check(st0.st_mtime_ns == st0.st_ctime_ns, "create: mtime != ctime")
check(st0.st_mtime_ns >= before - 20_000_000, "create: mtime before the create")

tick()
with open(p, "r+b") as f:
    f.write(b"y")
st1 = os.stat(p)
check(st1.st_mtime_ns > st0.st_mtime_ns, "write: mtime unchanged")
check(st1.st_ctime_ns > st0.st_ctime_ns, "write: ctime unchanged")

tick()
with open(p, "ab") as f:
    f.write(b"z")
st2 = os.stat(p)
check(st2.st_mtime_ns > st1.st_mtime_ns, "append: mtime unchanged")

tick()
with open(p, "wb"):
    pass  # O_TRUNC of a non-empty file
st3 = os.stat(p)
check(st3.st_size == 0, "O_TRUNC: size")
check(st3.st_mtime_ns > st2.st_mtime_ns, "O_TRUNC: mtime unchanged")
check(st3.st_ctime_ns > st2.st_ctime_ns, "O_TRUNC: ctime unchanged")

tick()
os.truncate(p, 5000)
st4 = os.stat(p)
check(st4.st_mtime_ns > st3.st_mtime_ns, "truncate: mtime unchanged")
check(st4.st_ctime_ns > st3.st_ctime_ns, "truncate: ctime unchanged")

tick()
os.chmod(p, 0o640)
st5 = os.stat(p)
check(st5.st_mtime_ns == st4.st_mtime_ns, "chmod: mtime changed")
check(st5.st_ctime_ns > st4.st_ctime_ns, "chmod: ctime unchanged")

tick()
at, mt = 1_600_000_000_123_456_789, 1_500_000_000_987_654_321
os.utime(p, ns=(at, mt))
st6 = os.stat(p)
check(st6.st_atime_ns == at, "utimensat: atime %d, set %d" % (st6.st_atime_ns, at))
check(st6.st_mtime_ns == mt, "utimensat: mtime %d, set %d" % (st6.st_mtime_ns, mt))
check(st6.st_ctime_ns > st5.st_ctime_ns, "utimensat: ctime unchanged")

sub = os.path.join(d, "sub")
os.mkdir(sub)
sd0 = os.stat(sub)
tick()
open(os.path.join(sub, "a"), "wb").close()
sd1 = os.stat(sub)
check(sd1.st_mtime_ns > sd0.st_mtime_ns, "create in a directory: its mtime unchanged")
tick()
os.rename(os.path.join(sub, "a"), os.path.join(sub, "b"))
sd2 = os.stat(sub)
check(sd2.st_mtime_ns > sd1.st_mtime_ns, "rename in a directory: its mtime unchanged")
tick()
os.unlink(os.path.join(sub, "b"))
sd3 = os.stat(sub)
check(sd3.st_mtime_ns > sd2.st_mtime_ns, "unlink in a directory: its mtime unchanged")
os.utime(sub, ns=(at, mt))

if problems:
    print("\n".join(problems))
    sys.exit(1)
PY

mkdir "$T/plain"
python3 "$T/times.py" "$T/plain" || fail "the checks fail on a plain directory (the test is wrong)"
mount_fs
V=$MNT/run/v.tmp
mkdir -p "$V" || fail "mkdir version"
note "times in an open version"
python3 "$T/times.py" "$V" || fail "times in an open version differ from a plain directory's"
stat -c '%n %X %Y %x %y' "$V/f" "$V/sub" >"$T/open.times"

note "commit keeps them"
mv "$V" "$MNT/run/v" || fail "commit"
stat -c '%n %X %Y %x %y' "$MNT/run/v/f" "$MNT/run/v/sub" | sed "s|$MNT/run/v/|$V/|" >"$T/committed.times"
diff "$T/open.times" "$T/committed.times" || fail "the commit changed the times"
umount_fs
mount_fs
stat -c '%n %X %Y %x %y' "$MNT/run/v/f" "$MNT/run/v/sub" | sed "s|$MNT/run/v/|$V/|" >"$T/remount.times"
diff "$T/open.times" "$T/remount.times" || fail "times after remount"
umount_fs
echo PASS
