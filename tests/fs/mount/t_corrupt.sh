#!/usr/bin/env bash
# t_corrupt.sh - one byte flipped in the store under a committed version: cat
# fails with EIO (never wrong bytes), the version's state becomes corrupt,
# user.ckpt.verify fails with EIO, latest moves away from it, and the other
# version still reads back.
#
# The test finds the stored bytes by content (a random block of the file is
# searched for in every file under the store), so it does not depend on the
# store's layout; it needs chunks stored uncompressed.
. "$(dirname "$0")/lib.sh"
lib_init "$@"

head -c $((2 << 20)) /dev/urandom >"$T/a"
head -c $((2 << 20)) /dev/urandom >"$T/b"
mount_fs
mkdir -p "$MNT/r/v1" "$MNT/r/v2" || fail "mkdir"
cp "$T/a" "$MNT/r/v1/data" && setfattr -n user.ckpt.commit -v 1 "$MNT/r/v1" || fail "v1"
cp "$T/b" "$MNT/r/v2/data" && setfattr -n user.ckpt.commit -v 1 "$MNT/r/v2" || fail "v2"
[ "$(readlink "$MNT/r/latest")" = v2 ] || fail "latest is not v2"
umount_fs

note "flip one byte of v2's data in the store"
flip_stored "$T/b" $(((2 << 20) / 2 + 12345)) || fail "could not find v2's bytes in the store"

mount_fs
cmp "$T/a" "$MNT/r/v1/data" || fail "v1 does not read back"
expect_err "Input/output error" cat "$MNT/r/v2/data"
[ "$(xattr user.ckpt.state "$MNT/r/v2")" = corrupt ] || fail "v2 is not corrupt after the EIO"
expect_err "Input/output error" getfattr -n user.ckpt.verify "$MNT/r/v2"
[ "$(xattr user.ckpt.verify "$MNT/r/v1")" = ok ] || fail "v1 does not verify"
[ "$(readlink "$MNT/r/latest")" = v1 ] || fail "latest still points at the corrupt version"
grep -q "EIO" "$DLOG" || fail "the EIO was not logged"
alive "after EIO"
umount_fs
echo PASS
