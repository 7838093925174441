#!/usr/bin/env bash
# t_mmap.sh - shared mmap of files in open versions on the default mount
# (issue 12, SPEC §2 "POSIX inside a version"): numpy memory maps, torch
# from_file(shared=True), Python's mmap, SQLite in WAL mode, each run in a
# plain directory and in an open version, committed and compared (diff -r,
# xxh128; torch.load of the committed model.pt; the committed database
# passes integrity_check and dumps as the plain one); a commit while a file
# is still mapped with dirty pages; writes through that mapping after the
# commit never show in the committed file; write-only and mapping
# descriptors of one file see each other's writes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tree.sh"
lib_init "$@"
HERE=$(cd "$(dirname "$0")" && pwd)

# Debian's python3-numpy and python3-torch are in the system python, which a
# python3 earlier in PATH (a virtualenv, pyenv) may not see.
PY=
for p in python3 /usr/bin/python3; do
	if "$p" -c 'import importlib.util as u; assert u.find_spec("numpy") and u.find_spec("torch")' 2>/dev/null; then
		PY=$p
		break
	fi
done
[ -n "$PY" ] || fail "no python3 with numpy and torch (install python3-numpy python3-torch: tools/install-deps)"

PLAIN=$T/plain
mkdir -p "$PLAIN"
mount_fs
R=$MNT/run
mkdir "$R" || fail "mkdir run"

# same_files A B: B (a committed version) holds what A holds (tree.sh:
# bytes, modes without write bits, sizes, xxh128; not times, which differ).
same_files() {
	TREE_TIMES=0 tree_same "$1" "$2" committed
}

for c in numpy torch pymmap; do
	note "$c: in a plain directory and in an open version, committed, compared"
	mkdir "$PLAIN/$c" "$R/$c.tmp" || fail "mkdir $c"
	"$PY" "$HERE/mmap_tools.py" "$c" "$PLAIN/$c" "$R/$c.tmp" || fail "$c"
	mv "$R/$c.tmp" "$R/$c" || fail "commit of $c"
	same_files "$PLAIN/$c" "$R/$c"
done
"$PY" - "$PLAIN/torch/model.pt" "$R/torch/model.pt" <<'PYT' || fail "torch.load of the committed model.pt"
import sys, torch
a, b = (torch.load(p) for p in sys.argv[1:3])
assert a.keys() == b.keys() and a["step"] == b["step"], (a.keys(), b.keys())
assert all(torch.equal(a[k], b[k]) for k in ("w", "b")), "other tensors"
PYT

note "sqlite3 in WAL mode"
sql_run() {
	sqlite3 -batch -bail "$1/db.sqlite" <<'SQL' >"$1/out.txt"
PRAGMA journal_mode=WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
INSERT INTO t(v, b) SELECT 'row ' || i, zeroblob(200) FROM n;
UPDATE t SET v = 'changed' WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
PRAGMA wal_checkpoint(TRUNCATE);
INSERT INTO t(v) VALUES ('after checkpoint');
SELECT count(*), sum(length(v)) FROM t;
PRAGMA integrity_check;
SQL
}
mkdir "$PLAIN/sqlite" "$R/sqlite.tmp" || fail "mkdir sqlite"
sql_run "$PLAIN/sqlite" || fail "sqlite3 in a plain directory"
sql_run "$R/sqlite.tmp" || fail "sqlite3 in WAL mode in an open version: $(cat "$R/sqlite.tmp/out.txt")"
grep -qx wal "$R/sqlite.tmp/out.txt" || fail "journal_mode is not wal: $(cat "$R/sqlite.tmp/out.txt")"
grep -qx ok "$R/sqlite.tmp/out.txt" || fail "integrity_check: $(cat "$R/sqlite.tmp/out.txt")"
mv "$R/sqlite.tmp" "$R/sqlite" || fail "commit of sqlite"
same_files "$PLAIN/sqlite" "$R/sqlite"
[ "$(sqlite3 "file:$R/sqlite/db.sqlite?immutable=1" 'SELECT count(*) FROM t')" = 4001 ] ||
	fail "the committed database does not answer"
[ "$(sqlite3 "file:$R/sqlite/db.sqlite?immutable=1" 'PRAGMA integrity_check')" = ok ] ||
	fail "integrity_check of the committed database"
diff <(sqlite3 "$PLAIN/sqlite/db.sqlite" .dump) <(sqlite3 "file:$R/sqlite/db.sqlite?immutable=1" .dump) ||
	fail "the committed database dumps otherwise than the plain one"

note "commit while a file is mapped with dirty pages; writes after the commit"
# live.py VERSION_TMP VERSION WANT: write pattern A through a shared mapping
# (no msync), commit by rename while mapped, then write pattern B through
# the same mapping; another process must read A from the committed file.
cat >"$T/live.py" <<'PY'
import mmap, os, subprocess, sys
tmp, ver, want = sys.argv[1:4]
size = 2 << 20
a = bytes((i * 7 + 3) & 0xff for i in range(4096)) * (size // 4096)
open(want, "wb").write(a)
f = open(os.path.join(tmp, "live.bin"), "w+b")
f.truncate(size)
m = mmap.mmap(f.fileno(), size, mmap.MAP_SHARED)
for off in range(size - 4096, -1, -4096):  # back to front: not a stream
    m[off:off + 4096] = a[off:off + 4096]
os.rename(tmp, ver)  # the commit; the pages are still dirty here
m[:] = b"B" * size
read = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"
got = subprocess.run([sys.executable, "-c", read, os.path.join(ver, "live.bin")],
                     stdout=subprocess.PIPE, check=True).stdout
if got != a:
    print("FAIL: a reader of the committed file sees %s" %
          ("the writes made after the commit" if got[:1] == b"B" else "other bytes"))
    sys.exit(1)
try:
    m.flush()
    print("msync after the commit: no error")
except OSError as e:
    print("msync after the commit:", os.strerror(e.errno))
m.close()
f.close()
PY
mkdir "$R/live.tmp" || fail "mkdir live"
"$PY" "$T/live.py" "$R/live.tmp" "$R/live" "$T/live.want" || fail "live.py"
[ "$(xattr user.ckpt.state "$R/live")" = committed ] || fail "live not committed"
[ "$(xattr user.ckpt.xxh128 "$R/live/live.bin")" = "$(xxh "$T/live.want")" ] ||
	fail "the commit lacks what the mapping held dirty at the rename"
cmp "$T/live.want" "$R/live/live.bin" || fail "committed live.bin differs"
expect_err "Read-only file system" "$PY" -c "open('$R/live/live.bin', 'r+b')"

note "a write-only descriptor and a shared mapping of one file"
cat >"$T/mixed.py" <<'PY'
import mmap, os, sys
p = os.path.join(sys.argv[1], "mixed.bin")
with open(p, "wb") as f:
    f.write(b"A" * 8192)
rw = os.open(p, os.O_RDWR)
m = mmap.mmap(rw, 8192, mmap.MAP_SHARED)
assert m[0:1] == b"A"
wo = os.open(p, os.O_WRONLY)
os.pwrite(wo, b"B" * 4096, 0)
if m[0:4096] != b"B" * 4096:
    sys.exit("FAIL: the mapping does not see a write of a write-only descriptor")
m[4096:4100] = b"MMMM"  # dirty page, then a write-only write over it
os.pwrite(wo, b"C" * 4096, 4096)
if m[4096:8192] != b"C" * 4096:
    sys.exit("FAIL: the mapping does not see a write over its dirty page")
m.close()
os.close(rw)
os.close(wo)
with open(p, "rb") as f:
    if f.read() != b"B" * 4096 + b"C" * 4096:
        sys.exit("FAIL: the file holds other bytes than the last writes")
PY
mkdir "$R/mixed" || fail "mkdir mixed"
"$PY" "$T/mixed.py" "$R/mixed" || fail "mixed.py"
mv "$R/mixed" "$R/mixed.c" || fail "commit mixed"
[ "$(head -c 1 "$R/mixed.c/mixed.bin")$(tail -c 1 "$R/mixed.c/mixed.bin")" = BC ] ||
	fail "committed mixed.bin"

note "remount: the committed files are what the plain directory holds"
umount_fs
mount_fs
for c in numpy torch pymmap sqlite; do
	diff -r --exclude=.manifest "$PLAIN/$c" "$R/$c" || fail "$c after remount"
done
cmp "$T/live.want" "$R/live/live.bin" || fail "live.bin after remount"
umount_fs
echo PASS
