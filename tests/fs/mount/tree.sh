# shellcheck shell=bash
# tree.sh - run a tool in a plain directory and in an open version, commit,
# and compare (sourced after lib.sh, which gives fail, note, xattr, xxh).
#
#   tree_make DIR         a checkpoint-like source tree (below)
#   tree_links DIR        add symlinks and hard links to it
#   tree_list DIR [committed]
#                         one line per entry: path, type, mode, owner, link
#                         count, size, mtime (ns), symlink target, hard-link
#                         group; `committed` prints modes without write bits
#                         (what a commit keeps, SPEC §2); .manifest at the
#                         root is left out
#   tree_same PLAIN VER [committed]
#                         VER holds what PLAIN holds: diff -r (symlinks not
#                         followed), tree_list equal, and for a committed VER
#                         user.ckpt.xxh128 of each file equals xxhsum's
#   in_both NAME CMD...   run CMD (exit 0 required) with $DEST set to
#                         $PLAIN/NAME and then to $R/NAME.tmp (an open
#                         version, made when missing) and compare them
#   commit_both NAME      commit $R/NAME.tmp by rename to $R/NAME and
#                         compare it with $PLAIN/NAME again
#
# $PLAIN (a plain directory) and $R (a run on the mount) must be set.
# TREE_TIMES=0 leaves mtimes out (for tools that do not keep them).

# tree_make DIR: files of modes 0600, 0644, 0755, 0640 and 4755 (set-uid
# kept by root), directories of modes 0700, 0755 and 0750, an empty file
# and an empty directory, a name like rsync's temp files, content of 0 to
# 3 MiB, times set by tree_touch.
tree_make() {
	local d=$1

	mkdir -p "$d/model" "$d/optim/shards" "$d/priv" "$d/empty-dir" || return 1
	head -c 3000000 /dev/urandom >"$d/model/weights.bin" || return 1
	head -c 70000 /dev/urandom >"$d/optim/state.pt" || return 1
	for i in 0 1 2; do
		head -c $((4096 * i + 100)) /dev/urandom >"$d/optim/shards/rank-$i.pt" || return 1
	done
	echo '{"step": 500, "lr": 0.1}' >"$d/config.json"
	printf '#!/bin/sh\necho resume\n' >"$d/resume.sh"
	echo "token" >"$d/priv/secret"
	echo "suid" >"$d/suid-tool"
	echo "group" >"$d/optim/group.txt"
	echo "temp-like" >"$d/.ckpt.pt.Ab12Cd"
	: >"$d/empty"
	chmod 0600 "$d/priv/secret" "$d/optim/state.pt" || return 1
	chmod 0644 "$d/config.json" "$d/model/weights.bin" || return 1
	chmod 0755 "$d/resume.sh" || return 1
	chmod 0640 "$d/optim/group.txt" || return 1
	chmod 4755 "$d/suid-tool" || return 1
	chmod 0700 "$d/priv" && chmod 0750 "$d/optim" && chmod 0755 "$d/model" || return 1
	tree_touch "$d" 1500000000
}

# tree_touch DIR BASE: give every entry of DIR (symlinks and DIR included)
# its own mtime and atime, BASE seconds plus 1000 s per entry plus some ns,
# all in the past, so that tools that keep times (and rsync, which skips
# directories whose time looks the same to the second) show them.
tree_touch() {
	python3 - "$1" "$2" <<'PY'
import os, sys
top, base = sys.argv[1], int(sys.argv[2])
paths = []
for root, dirs, files in os.walk(top):
    paths += [os.path.join(root, n) for n in sorted(dirs + files)]
for i, p in enumerate(sorted(paths) + [top]):  # a directory's own time after its entries
    t = (base + 1000 * i) * 10**9 + 123456789 + i
    os.utime(p, ns=(t + 500, t), follow_symlinks=False)
PY
}

# tree_links DIR: a relative symlink to a file, one to a directory, a
# dangling one, an absolute target (only text: it is never followed), a
# Hugging Face-style snapshot -> blob link, and hard links: two names in
# one directory and one in another.
tree_links() {
	local d=$1

	mkdir -p "$d/blobs" "$d/snapshots/abc" || return 1
	head -c 50000 /dev/urandom >"$d/blobs/e3b0c442" || return 1
	ln -s ../../blobs/e3b0c442 "$d/snapshots/abc/model.safetensors" &&
		ln -s model/weights.bin "$d/weights-link" &&
		ln -s optim "$d/optim-link" &&
		ln -s does-not-exist "$d/dangling" &&
		ln -s /etc/hostname "$d/absolute" || return 1
	ln "$d/optim/shards/rank-0.pt" "$d/optim/shards/rank-0.hard" &&
		ln "$d/optim/shards/rank-0.pt" "$d/rank-0-top.pt" &&
		ln "$d/resume.sh" "$d/model/resume-hard.sh" || return 1
	tree_touch "$d" 1500000000
}

# tree_list DIR [committed]
tree_list() {
	python3 - "$1" "${2:-}" "${TREE_TIMES:-1}" <<'PY'
import os, stat, sys
top, committed, times = sys.argv[1], sys.argv[2] == "committed", sys.argv[3] != "0"
groups = {}  # inode -> first path (hard links share it)
rows = []
for root, dirs, files in os.walk(top):
    dirs.sort()
    names = sorted(dirs + files)
    if root == top:
        rows.append(".")
    for n in names:
        p = os.path.join(root, n)
        rel = os.path.relpath(p, top)
        if rel == ".manifest":
            continue
        rows.append(rel)
for rel in rows:
    p = os.path.join(top, rel)
    st = os.lstat(p)
    kind = stat.S_IFMT(st.st_mode)
    mode = stat.S_IMODE(st.st_mode)
    if committed:
        mode &= ~0o222
    target = os.readlink(p) if stat.S_ISLNK(kind) else ""
    group = ""
    if stat.S_ISREG(kind) and st.st_nlink > 1:
        group = "=" + groups.setdefault(st.st_ino, rel)
    fields = [rel, {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l"}.get(kind, "?"),
              "%04o" % mode if not stat.S_ISLNK(kind) else "-",
              "%d:%d" % (st.st_uid, st.st_gid), str(st.st_nlink),
              str(st.st_size) if not stat.S_ISDIR(kind) else "-",
              str(st.st_mtime_ns) if times else "-", target, group]
    print(" ".join(fields))
PY
}

# tree_same PLAIN VER [committed]
tree_same() {
	local f

	diff -r --no-dereference --exclude=.manifest "$1" "$2" || fail "$2 differs from $1 (diff -r)"
	tree_list "$1" "${3:-}" >"$T/tree.plain" || fail "tree_list $1"
	tree_list "$2" >"$T/tree.ver" || fail "tree_list $2"
	diff -u "$T/tree.plain" "$T/tree.ver" ||
		fail "$2 differs from $1 in types, modes, owners, link counts, sizes, times or targets"
	[ "${3:-}" = committed ] || return 0
	while IFS= read -r f; do
		[ "$(xattr user.ckpt.xxh128 "$2/$f")" = "$(xxh "$1/$f")" ] ||
			fail "user.ckpt.xxh128 of $2/$f is not xxhsum's of $1/$f"
	done < <(cd "$1" && find . -type f | sed 's|^\./||')
}

# in_both NAME CMD...
in_both() {
	local name=$1 rc
	shift

	mkdir -p "$PLAIN/$name" || fail "mkdir $PLAIN/$name"
	DEST=$PLAIN/$name "$@" >"$T/$name.plain.out" 2>&1 ||
		fail "'$*' in a plain directory (the test is wrong): $(cat "$T/$name.plain.out")"
	[ -d "$R/$name.tmp" ] || mkdir "$R/$name.tmp" || fail "mkdir of the open version $R/$name.tmp"
	DEST=$R/$name.tmp "$@" >"$T/$name.out" 2>&1
	rc=$?
	[ "$rc" -eq 0 ] || fail "'$*' in an open version exited $rc: $(cat "$T/$name.out")"
	tree_same "$PLAIN/$name" "$R/$name.tmp"
}

# commit_both NAME: commit $R/NAME.tmp by rename to $R/NAME; it must still
# equal $PLAIN/NAME, modes without their write bits.
commit_both() {
	mv "$R/$1.tmp" "$R/$1" || fail "commit of $1 by rename"
	[ "$(xattr user.ckpt.state "$R/$1")" = committed ] || fail "$1 is not committed"
	tree_same "$PLAIN/$1" "$R/$1" committed
}
