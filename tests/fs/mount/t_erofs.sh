#!/usr/bin/env bash
# t_erofs.sh - committed versions stay immutable whatever their mode bits
# say (issue 12, SPEC §2): a tree whose files and directories were made
# world-writable (0666, 0777, 6777, 1777) in the open version is committed;
# then root (who passes every mode check) and another user (uid 65534, on
# an allow_other mount) try every way to change it: open for writing,
# O_TRUNC, O_APPEND, truncate, chmod (giving write bits back), chown,
# utimensat, create, mkdir, mknod, rename, setxattr. Root gets EROFS from
# each (EPERM for chown to another user and for setxattr); the other user
# EROFS, EACCES or EPERM. Afterwards every mode, size, time and hash is what the commit
# made, before and after a remount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tree.sh"
lib_init "$@"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (the check is that root too gets EROFS)"; exit 77; }

mount_fs -o allow_other
chmod 711 "$T" # mktemp made it 0700: let uid 65534 reach the mount
R=$MNT/run
V=$R/v.tmp
mkdir -p "$V" || fail "mkdir version"
tree_make "$V" || fail "tree_make in the open version"
chmod 0666 "$V/config.json" && chmod 0777 "$V/resume.sh" && chmod 6777 "$V/suid-tool" &&
	chmod 1777 "$V/priv" && chmod 0777 "$V/optim" "$V" || fail "chmod to world-writable"
mv "$V" "$R/v" || fail "commit"
V=$R/v
[ "$(stat -c %a "$V/config.json") $(stat -c %a "$V/priv") $(stat -c %a "$V")" = "444 1555 555" ] ||
	fail "committed modes: $(stat -c %a "$V/config.json" "$V/priv" "$V")"
tree_list "$V" >"$T/before" || fail "tree_list"
find "$V" -type f -exec xxhsum -H2 {} + >"$T/before.xxh" 2>/dev/null || fail "xxhsum"

cat >"$T/attack.py" <<'PY'
import errno, os, sys
v, allowed = sys.argv[1], set(sys.argv[2].split(","))
def ops(f, d):
    yield "open O_WRONLY", lambda: os.open(f, os.O_WRONLY)
    yield "open O_RDWR", lambda: os.open(f, os.O_RDWR)
    yield "O_TRUNC", lambda: os.open(f, os.O_RDONLY | os.O_TRUNC)
    yield "O_APPEND", lambda: os.open(f, os.O_WRONLY | os.O_APPEND)
    yield "truncate", lambda: os.truncate(f, 0)
    yield "chmod u+w", lambda: os.chmod(f, 0o777)
    yield "chmod dir", lambda: os.chmod(d, 0o777)
    yield "chown", lambda: os.chown(f, 12345, 12345)
    yield "utimensat", lambda: os.utime(f, ns=(1, 1))
    yield "utimensat now", lambda: os.utime(f)
    yield "create", lambda: os.open(os.path.join(d, "new"), os.O_WRONLY | os.O_CREAT, 0o666)
    yield "mkdir", lambda: os.mkdir(os.path.join(d, "newdir"))
    yield "mknod", lambda: os.mknod(os.path.join(d, "node"), 0o100666)
    yield "rename", lambda: os.rename(f, f + ".moved")
    if d != v:
        yield "rename dir", lambda: os.rename(d, d + ".moved")
    yield "setxattr", lambda: os.setxattr(f, "user.ckpt.xxh128", b"0" * 32)
bad = []
for f, d in ((os.path.join(v, "config.json"), v), (os.path.join(v, "resume.sh"), v),
             (os.path.join(v, "suid-tool"), v), (os.path.join(v, "priv", "secret"), os.path.join(v, "priv")),
             (os.path.join(v, "optim", "group.txt"), os.path.join(v, "optim"))):
    for name, fn in ops(f, d):
        try:
            fn()
            bad.append("%s of %s succeeded" % (name, f))
        except OSError as e:
            code = errno.errorcode.get(e.errno, str(e.errno))
            if code not in allowed and not (name in ("setxattr", "chown") and code in ("EPERM", "ENOTSUP")):
                bad.append("%s of %s: %s, want %s" % (name, f, code, " or ".join(sorted(allowed))))
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY

note "root: EROFS from every change"
python3 "$T/attack.py" "$V" EROFS || fail "root changed a committed version or got another error"
note "another user: EROFS or EACCES"
setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 "$T/attack.py" "$V" EROFS,EACCES,EPERM ||
	fail "uid 65534 changed a committed version or got another error"

note "nothing changed, before and after a remount"
for when in now remount; do
	[ "$when" = remount ] && { umount_fs; mount_fs; }
	tree_list "$V" | diff -u "$T/before" - || fail "modes, sizes or times changed ($when)"
	find "$V" -type f -exec xxhsum -H2 {} + 2>/dev/null | diff -u "$T/before.xxh" - ||
		fail "content changed ($when)"
	[ "$(xattr user.ckpt.verify "$V")" = ok ] || fail "verify ($when)"
done
umount_fs
echo PASS
