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
python3 - "$T/b" "$STORE" <<'PY' || fail "could not find v2's bytes in the store"
import os, sys
data = open(sys.argv[1], "rb").read()
off = len(data) // 2 + 12345
needle = data[off:off + 64]
for root, dirs, files in os.walk(sys.argv[2]):
    for name in files:
        p = os.path.join(root, name)
        with open(p, "r+b") as f:
            blob = f.read()
            i = blob.find(needle)
            if i < 0:
                continue
            f.seek(i + 7)
            f.write(bytes([blob[i + 7] ^ 0x01]))
            print("flipped byte %d of %s" % (i + 7, p))
            sys.exit(0)
sys.exit(1)
PY

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
