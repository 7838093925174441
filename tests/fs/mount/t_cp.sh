#!/usr/bin/env bash
# t_cp.sh - `cp -a` into open versions (issue 12, SPEC §2 "POSIX inside a
# version"): a tree with modes, times, symlinks and hard links copied into
# an open version (`cp -a SRC/. VERSION/`, which also gives the version
# directory the source's mode and times) and as a new version (`cp -a SRC
# RUN/NEW.tmp`, which makes it by mkdir); exit 0, and the open and the
# committed version equal the same copy into a plain directory (tree.sh).
# Then `cp -a` of the committed version out of the mount (a restore) equals
# it too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tree.sh"
lib_init "$@"

SRC=$T/src PLAIN=$T/plain
tree_make "$SRC" || fail "tree_make"
tree_links "$SRC" || fail "tree_links"
mount_fs
R=$MNT/run
mkdir "$R" "$PLAIN" || fail "mkdir"

note "cp -a SRC/. into an open version"
in_both cp sh -c 'cp -a "$0/." "$DEST/"' "$SRC"
tree_same "$SRC" "$R/cp.tmp"
commit_both cp

note "cp -a SRC RUN/NEW.tmp: a new version"
cp -a "$SRC" "$PLAIN/new" || fail "cp -a into a plain directory"
cp -a "$SRC" "$R/new.tmp" || fail "cp -a SRC RUN/new.tmp exited $?"
[ "$(xattr user.ckpt.state "$R/new.tmp")" = open ] || fail "cp -a did not make an open version"
tree_same "$PLAIN/new" "$R/new.tmp"
commit_both new

note "cp -a of the committed version out of the mount"
cp -a "$R/cp" "$PLAIN/restored" || fail "cp -a out of the mount"
tree_same "$PLAIN/restored" "$R/cp" # .manifest copied too, and left out

umount_fs
echo PASS
