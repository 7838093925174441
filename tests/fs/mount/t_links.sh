#!/usr/bin/env bash
# t_links.sh - symlinks and hard links inside versions (SPEC §2, issue 12),
# checked against the same operations in a plain directory: symlinks with
# any target text (relative, absolute, dangling, spaces and newlines, bytes
# that are not UTF-8, 4095 bytes), readlink and lstat in open and committed
# versions and after a remount, `ckpt show` and `ckpt verify` of them, a
# damaged target in the stored manifest read as EIO and reported by verify;
# hard links (st_nlink, one st_ino, shared content and attributes, unlink of
# one name, rename(2) between two names of one file), kept by the commit and
# a remount; links across versions EXDEV, into committed versions EROFS.
. "$(dirname "$0")/lib.sh"
lib_init "$@"
CKPT=$(dirname "$CKPTFS")/../../tools/ckpt/ckpt
[ -x "$CKPT" ] || fail "the ckpt CLI $CKPT is missing; build first"

# tree DIR: every entry with its type, symlink target (as hex: any bytes),
# mode and link count; hard links show as the same group number.
tree() {
	python3 - "$1" <<'PY'
import os, sys
top = sys.argv[1]
inos = {}
for d, dirs, files in os.walk(top):
    for n in sorted(dirs + files):
        p = os.path.join(d, n)
        rel = os.path.relpath(p, top)
        if rel == ".manifest":
            continue
        st = os.lstat(p)
        if os.path.islink(p):
            t = os.readlink(os.fsencode(p)).hex()
            print(rel, "l", t, st.st_size)
        elif os.path.isdir(p):
            print(rel, "d", oct(st.st_mode & 0o7777))
        else:
            g = inos.setdefault(st.st_ino, len(inos))
            print(rel, "f", oct(st.st_mode & 0o7777), st.st_size, st.st_nlink, "g%d" % g,
                  open(p, "rb").read().hex()[:64])
PY
}

# make DIR: the same symlinks and hard links, made by the same calls
make() {
	local d=$1
	mkdir -p "$d/sub" || return 1
	echo hello >"$d/a" || return 1
	ln -s a "$d/rel" && ln -s /usr/share/ckptfs-test/abs "$d/abs" && ln -s does/not/exist "$d/dangling" &&
		ln -s sub "$d/todir" && ln -s ../a "$d/sub/up" &&
		ln -s 'two words
and a newline' "$d/odd" || return 1
	python3 -c 'import os, sys; os.symlink(b"\xff\xfe-not-utf8", os.path.join(sys.argv[1], "bytes").encode())' "$d" || return 1
	python3 -c 'import os, sys; os.symlink("x" * 4095, os.path.join(sys.argv[1], "long"))' "$d" || return 1
	ln "$d/a" "$d/hard" && ln "$d/a" "$d/sub/hard2" || return 1
	echo more >>"$d/hard" || return 1
	chmod 0640 "$d/sub/hard2" || return 1
	echo solo >"$d/b" && ln "$d/b" "$d/b2" && rm "$d/b" || return 1
	python3 -c 'import os, sys; os.rename(sys.argv[1] + "/hard", sys.argv[1] + "/a")' "$d" ||
		return 1 # two names of one file: rename(2) does nothing
	mv "$d/dangling" "$d/sub/dangling" && ln -s gone "$d/gone" && rm "$d/gone"
}

mount_fs
R=$MNT/run1
mkdir "$R" || fail "mkdir run"

note "symlinks and hard links in an open version, as in a plain directory"
make "$T/plain" || fail "making the plain tree"
V=$R/v1
mkdir "$V" || fail "mkdir version"
make "$V" || fail "the same calls in an open version failed"
tree "$T/plain" >"$T/want"
tree "$V" >"$T/got"
diff "$T/want" "$T/got" || fail "the open version differs from the plain directory"
[ "$(cat "$V/rel")" = "$(printf 'hello\nmore')" ] || fail "reading through a symlink"
[ "$(stat -c %h "$V/a")" = 3 ] || fail "a has $(stat -c %h "$V/a") links, expected 3"
[ "$(stat -c %i "$V/a")" = "$(stat -c %i "$V/sub/hard2")" ] || fail "hard links differ in st_ino"
[ "$(stat -c %i "$V/a")" != "$(stat -c %i "$V/b2")" ] || fail "two files share an st_ino"
[ "$(stat -c %a "$V/hard")" = 640 ] || fail "chmod of one name is not seen through the others"
ls -l "$V/rel" | grep -q -- '-> a$' || fail "ls -l does not show rel -> a"
[ "$(find "$V" -maxdepth 1 -type l | wc -l)" = 6 ] || fail "find -type l sees $(find "$V" -maxdepth 1 -type l | wc -l) symlinks"
touch -h -d @1000000000 "$V/rel" || fail "touch -h of a symlink"
[ "$(stat -c %Y "$V/rel")" = 1000000000 ] || fail "touch -h did not set the symlink's mtime"
expect_err "File name too long" python3 -c 'import os; os.symlink("x" * 4096, "'"$V"'/toolong")'
expect_err "File exists" ln -s x "$V/a"
expect_err "File exists" ln -s x "$V/.manifest"
expect_err "File exists" ln "$V/a" "$V/.manifest"
mkdir "$R/v2" || fail "mkdir v2"
expect_err "Invalid cross-device link" ln "$V/a" "$R/v2/a"
grep -q '"type": "symlink"' "$V/.manifest" || fail ".manifest of an open version lists no symlink"
grep -q '"inode": 1' "$V/.manifest" || fail ".manifest of an open version shows no inode for hard links"

note "the commit keeps them"
mv "$V" "$R/c1" || fail "commit"
C=$R/c1
tree "$C" >"$T/got"
sed -e 's/ 0o640 / 0o440 /' -e 's/ 0o644 / 0o444 /' -e 's/ 0o755$/ 0o555/' "$T/want" >"$T/want.c"
diff "$T/want.c" "$T/got" || fail "the committed version differs"
[ "$(readlink "$C/rel")" = a ] || fail "readlink in a committed version"
[ "$(stat -c %h "$C/sub/hard2")" = 3 ] || fail "committed hard link count $(stat -c %h "$C/sub/hard2")"
[ "$(stat -c %i "$C/a")" = "$(stat -c %i "$C/sub/hard2")" ] || fail "committed hard links differ in st_ino"
expect_err "Read-only file system" ln -s x "$C/new"
expect_err "Read-only file system" ln "$C/a" "$C/a3"
expect_err "Invalid cross-device link" ln "$C/a" "$R/v2/a"
"$CKPT" --mount "$MNT" show run1/c1 >"$T/show" || fail "ckpt show exited $?"
want=$(printf %s a | xxhsum -H2 | cut -d' ' -f1)
grep -E "^1 +$want +- +rel -> a$" "$T/show" >/dev/null || { cat "$T/show"; fail "ckpt show does not list rel -> a with the XXH128 of its target"; }
grep -q "^Symlinks: *8$" "$T/show" || fail "ckpt show does not count 8 symlinks"
grep -q "bytes -> hex:fffe2d6e6f742d75746638" "$T/show" || fail "ckpt show: the non-UTF-8 target"
"$CKPT" --mount "$MNT" verify run1/c1 >"$T/verify" 2>&1 || { cat "$T/verify"; fail "ckpt verify of a version with links failed"; }

note "a remount reads them back from the manifest"
umount_fs
mount_fs
tree "$C" >"$T/got"
diff "$T/want.c" "$T/got" || fail "the committed version differs after a remount"
cp -a "$C" "$T/copy" || fail "cp -a out of a committed version"
[ "$(stat -c %h "$T/copy/a")" = 3 ] || fail "cp -a did not see the hard links (st_ino)"

note "a damaged symlink target in the stored manifest: EIO, and verify says so"
umount_fs
M=$STORE/runs/run1/versions/c1
grep -q '"target":"a"' "$M" || fail "the stored manifest has no \"target\":\"a\""
sed -i 's/"target":"a"/"target":"b"/' "$M"
mount_fs
expect_err "Input/output error" readlink -v "$C/rel"
[ "$(readlink "$C/sub/up")" = ../a ] || fail "an intact symlink next to the damaged one"
if "$CKPT" --mount "$MNT" verify run1/c1 >"$T/verify" 2>&1; then
	cat "$T/verify"
	fail "ckpt verify passed a damaged symlink"
fi
grep -q "rel" "$T/verify" || { cat "$T/verify"; fail "ckpt verify does not name rel"; }
[ "$(xattr user.ckpt.state "$C")" = corrupt ] || fail "the version is $(xattr user.ckpt.state "$C"), not corrupt"

alive "after the link checks"
umount_fs
echo "PASS"
