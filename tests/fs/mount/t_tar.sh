#!/usr/bin/env bash
# t_tar.sh - `tar -xf` as root into an open version (issue 12, SPEC §2
# "POSIX inside a version"): a tree with modes 0600/0644/0755/0640/4755,
# private directories, fixed times, symlinks and hard links, extracted with
# root's defaults (owners, modes, times, and the archive's "./" entry onto
# the version directory itself); exit 0, and the open and the committed
# version equal the same extraction in a plain directory (tree.sh). Then
# `tar -cf` of the committed version lists and extracts as the source does.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tree.sh"
lib_init "$@"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: tar -x keeps owners and set-uid bits as root only"; exit 77; }

SRC=$T/src PLAIN=$T/plain
tree_make "$SRC" || fail "tree_make"
tree_links "$SRC" || fail "tree_links"
tar --format=posix -cf "$T/ckpt.tar" -C "$SRC" . || fail "tar -cf of the source (pax: times in ns)"
mount_fs
R=$MNT/run
mkdir "$R" "$PLAIN" || fail "mkdir"

note "tar -xf into an open version, committed"
in_both tar sh -c 'tar -xf "$0" -C "$DEST"' "$T/ckpt.tar"
commit_both tar
tree_same "$SRC" "$R/tar" committed

note "tar -cf of the committed version"
tar --format=posix -cf "$T/back.tar" -C "$R/tar" --exclude=./.manifest . || fail "tar -cf of the committed version"
mkdir "$PLAIN/back" && tar -xf "$T/back.tar" -C "$PLAIN/back" || fail "tar -xf of the committed version's archive"
tree_same "$PLAIN/back" "$R/tar"

note "an archive holding .manifest (tar -cf of a committed version without --exclude)"
tar --format=posix -cf "$T/with-manifest.tar" -C "$R/tar" . || fail "tar -cf with .manifest"
mkdir "$R/again.tmp" || fail "mkdir again.tmp"
# tar unlinks what is in the way and creates it again: it must get an error
# for the reserved name and go on, not find it there forever
timeout 120 tar -xf "$T/with-manifest.tar" -C "$R/again.tmp" 2>"$T/tar.err"
rc=$?
[ "$rc" -eq 2 ] || fail "tar -x of an archive holding .manifest exited $rc (124: it looped): $(cat "$T/tar.err")"
grep -q '\.manifest: Cannot open: Operation not permitted' "$T/tar.err" ||
	fail "tar did not name .manifest: $(cat "$T/tar.err")"
mv "$R/again.tmp" "$R/again" || fail "commit of the extraction"
tree_same "$SRC" "$R/again" committed
umount_fs
echo PASS
