#!/usr/bin/env bash
# t_unlinked.sh - an unlinked file stays usable through its open descriptors
# (SPEC §2, issue 12), on the default mount and with -o open_cache=on:
# fstat (st_nlink 0), pread, pwrite, ftruncate, fchmod and futimens on the
# descriptor until the last close; a commit meanwhile is not held back and
# commits nothing of it; its bytes (here a staging file) are dropped at the
# last close; tempfile.TemporaryFile(dir=OPEN_VERSION) works; a file
# replaced by rename keeps working for the descriptor that had it open.
. "$(dirname "$0")/lib.sh"
lib_init "$@"

for opts in "" "-o open_cache=on"; do
	note "mount ${opts:-(default options)}"
	# shellcheck disable=SC2086
	mount_fs $opts
	R=$MNT/run1
	mkdir -p "$R" || fail "mkdir run"
	V=$R/v
	mkdir "$V" || fail "mkdir version"
	echo keep >"$V/keep" || fail "write keep"
	python3 - "$V" "$STORE" <<'PY' || fail "the unlinked-file checks failed (${opts:-default})"
import os, subprocess, sys, tempfile

v, store = sys.argv[1], sys.argv[2]
def check(what, cond):
    if not cond:
        sys.exit("FAIL: " + what)

# a file written, unlinked, used through its descriptor
data = os.urandom(3 << 20)
fd = os.open(v + "/scratch", os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, data)
os.unlink(v + "/scratch")
check("the name is still there after unlink", not os.path.exists(v + "/scratch"))
st = os.fstat(fd)
check("fstat size %d" % st.st_size, st.st_size == len(data))
check("fstat st_nlink %d after unlink" % st.st_nlink, st.st_nlink == 0)
check("pread after unlink", os.pread(fd, len(data), 0) == data)
os.pwrite(fd, b"HOLE", 1000)  # not at the end: the file moves to a staging file
data = data[:1000] + b"HOLE" + data[1004:]
check("pread after pwrite", os.pread(fd, len(data), 0) == data)
os.fchmod(fd, 0o640)
check("fchmod", os.fstat(fd).st_mode & 0o7777 == 0o640)
os.utime(fd, ns=(1000000000 * 10**9, 1100000000 * 10**9))
check("futimens", os.fstat(fd).st_mtime_ns == 1100000000 * 10**9)
os.ftruncate(fd, 5000)
check("ftruncate", os.fstat(fd).st_size == 5000 and os.pread(fd, 9000, 0) == data[:5000])
staged = os.listdir(store + "/staging")
check("no staging file while the unlinked file is written out of order", staged)

# a name made again is another file; the descriptor keeps the old one
with open(v + "/scratch", "wb") as f:
    f.write(b"new file")
check("the old descriptor sees the new file", os.fstat(fd).st_size == 5000)

# a file replaced by rename (rsync, editors) keeps working for its reader
with open(v + "/cfg", "wb") as f:
    f.write(b"old")
rfd = os.open(v + "/cfg", os.O_RDONLY)
with open(v + "/cfg.tmp", "wb") as f:
    f.write(b"replacement")
os.rename(v + "/cfg.tmp", v + "/cfg")
check("read of a replaced file", os.pread(rfd, 100, 0) == b"old")
check("fstat of a replaced file", os.fstat(rfd).st_size == 3)

# tempfile.TemporaryFile: mkstemp, unlink, use
with tempfile.TemporaryFile(dir=v) as t:
    t.write(b"x" * 100000)
    t.seek(0)
    check("TemporaryFile read back", t.read() == b"x" * 100000)
    check("TemporaryFile left a name", sorted(os.listdir(v)) == [".manifest", "cfg", "keep", "scratch"])

    # the open temporary file and descriptor do not hold the commit back
    r = subprocess.run(["mv", v, v + "-c"])
    check("commit with unlinked files open exited %d" % r.returncode, r.returncode == 0)
    t.seek(0)
    check("TemporaryFile after the commit", t.read(10) == b"x" * 10)
check("fstat after the commit", os.fstat(fd).st_size == 5000)
check("pread after the commit", os.pread(fd, 100, 0) == data[:100])
os.close(fd)
os.close(rfd)
c = v + "-c"
check("the commit holds %s" % sorted(os.listdir(c)),
      sorted(os.listdir(c)) == [".manifest", "cfg", "keep", "scratch"])
check("committed scratch is the new file", open(c + "/scratch", "rb").read() == b"new file")
check("committed cfg is the replacement", open(c + "/cfg", "rb").read() == b"replacement")
m = open(c + "/.manifest").read()
check("the manifest names an unlinked file", "tmp" not in m)
PY
	# the last close dropped the staging file (RELEASE comes after close)
	for _ in $(seq 1 100); do
		[ -z "$(ls -A "$STORE/staging")" ] && break
		sleep 0.05
	done
	[ -z "$(ls -A "$STORE/staging")" ] || fail "staging files left after the last close: $(ls "$STORE/staging")"
	alive "after the unlinked-file checks"
	umount_fs
	rm -rf "$STORE"
done
echo "PASS"
