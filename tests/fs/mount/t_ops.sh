#!/usr/bin/env bash
# t_ops.sh - every POSIX operation of the table in docs/mount.md ("POSIX
# operations") run for real in open versions, committed versions and run
# directories (posix_ops.py); each result must be the table's. A change of
# behaviour fails here until the table says so.
. "$(dirname "$0")/lib.sh"
lib_init "$@"
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the table is what root sees (other users get EACCES from the modes first)"
	exit 77
fi
DOC=$(cd "$(dirname "$0")/../../.." && pwd)/docs/mount.md

mount_fs
python3 "$(dirname "$0")/posix_ops.py" "$MNT" "$DOC" ||
	fail "results differ from the table in docs/mount.md (\"POSIX operations\"): fix the code or the table"
alive "after every operation"
umount_fs
echo PASS
