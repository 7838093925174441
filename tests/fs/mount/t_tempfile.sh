#!/usr/bin/env bash
# t_tempfile.sh - unlinked files stay usable through their descriptors in
# an open version (issue 12, SPEC §2 "POSIX inside a version"):
# tempfile.TemporaryFile(dir=VERSION) (write, fstat, read, ftruncate, shared
# mmap), a file unlinked between a write-only and a read-write descriptor,
# os.replace over a file a reader holds, NamedTemporaryFile (tempfiles.py);
# the version then equals the same run in a plain directory, open and
# committed (a commit while such files are open: t_unlinked.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tree.sh"
lib_init "$@"
HERE=$(cd "$(dirname "$0")" && pwd)

PLAIN=$T/plain TREE_TIMES=0
mount_fs
R=$MNT/run
mkdir "$R" "$PLAIN" || fail "mkdir"

note "unlinked open files in an open version, as in a plain directory"
in_both tmp sh -c 'python3 "$0" "$DEST"' "$HERE/tempfiles.py"
commit_both tmp

alive "after the unlinked files"
umount_fs
echo PASS
