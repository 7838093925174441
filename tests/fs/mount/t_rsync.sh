#!/usr/bin/env bash
# t_rsync.sh - rsync into open versions (issue 12, SPEC §2 "POSIX inside a
# version"): `rsync -a` (its default: each file written to a temp name
# .NAME.XXXXXX, then renamed) of a tree with modes, times, symlinks and
# hard links; then `rsync -a --delete` into the same open version after
# changes to the source (content, a removed file and directory, a new file,
# modes, times, a symlink's target); `rsync -aH` (hard links kept); and
# `rsync -a` of a committed version (modes without write bits) into a new
# one. Each exits 0 and the open and the committed version equal the same
# rsync into a plain directory (tree.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tree.sh"
lib_init "$@"

SRC=$T/src PLAIN=$T/plain
tree_make "$SRC" || fail "tree_make"
tree_links "$SRC" || fail "tree_links"
mount_fs
R=$MNT/run
mkdir "$R" "$PLAIN" || fail "mkdir"

note "rsync -a into an open version"
in_both rsync sh -c 'rsync -a "$0/" "$DEST/"' "$SRC"

note "rsync -a --delete after changes to the source, into the same open version"
dd if=/dev/urandom of="$SRC/model/weights.bin" bs=4096 seek=100 count=10 conv=notrunc status=none ||
	fail "change weights.bin"
rm "$SRC/optim/shards/rank-2.pt" && rmdir "$SRC/empty-dir" || fail "remove from the source"
echo new >"$SRC/optim/new.txt" && chmod 0600 "$SRC/config.json" && chmod 0700 "$SRC/model" ||
	fail "change the source"
if [ -L "$SRC/weights-link" ]; then
	ln -sfn optim/state.pt "$SRC/weights-link" && rm "$SRC/dangling" && echo was-a-link >"$SRC/dangling" ||
		fail "change the source's symlinks"
fi
tree_touch "$SRC" 1600000000 || fail "new times"
in_both rsync sh -c 'rsync -a --delete "$0/" "$DEST/"' "$SRC"
[ -e "$R/rsync.tmp/optim/shards/rank-2.pt" ] && fail "rsync --delete left rank-2.pt"
commit_both rsync

note "rsync -aH (hard links kept) into an open version"
in_both rsync-H sh -c 'rsync -aH "$0/" "$DEST/"' "$SRC"
tree_same "$SRC" "$R/rsync-H.tmp"
commit_both rsync-H

note "rsync -a of a committed version into a new one"
in_both restored sh -c 'rsync -a --exclude=/.manifest "$0/" "$DEST/"' "$R/rsync"
commit_both restored
umount_fs
echo PASS
