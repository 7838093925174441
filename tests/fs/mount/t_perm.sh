#!/usr/bin/env bash
# t_perm.sh - mode checks on a mount without allow_other, where the daemon
# makes them instead of the kernel (no default_permissions, fs/fuse/perm.c,
# docs/mount.md "Permissions"): perm_cases.py tries every way in to files
# and directories whose modes deny their owner something (create, mkdir,
# symlink, link, unlink, rmdir and rename in a 0500 directory, lookups in a
# 0600 one, listing a 0300 one, moving a 0500 directory, opens, O_TRUNC,
# truncate, access, utime and user.* xattrs of 0000, 0444 and 0200 files,
# ftruncate of a descriptor already open), once in a local directory and
# once in an open version, as the same user: the outcomes must be the same.
# For root (a mount by root) and for uid 65534 (a mount by that user through
# fusermount3). With -o allow_other the kernel checks (t_owner, t_erofs).
. "$(dirname "$0")/lib.sh"
lib_init "$@"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (a second user's mount)"; exit 77; }
chmod 711 "$T" # mktemp made it 0700: let uid 65534 reach its own directory
cp "$(dirname "$0")/perm_cases.py" "$T/cases.py" && chmod 644 "$T/cases.py" || fail "copy cases"
PY=/usr/bin/python3
other() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
U=$T/u
UPID=
# root cannot stat the user's mount (no allow_other): ask the kernel's table
user_mounted() { grep -q " $U/mnt " /proc/self/mountinfo; }
perm_cleanup() {
	local rc=$?

	if user_mounted; then
		umount "$U/mnt" 2>/dev/null || umount -l "$U/mnt"
	fi
	[ -n "$UPID" ] && { wait "$UPID" 2>/dev/null || true; }
	(exit "$rc")
	lib_cleanup
}
trap perm_cleanup EXIT

# compare WHO LOCAL MOUNTED: the cases' outcomes in both directories
compare() {
	"${@:4}" "$PY" "$T/cases.py" "$2" >"$T/$1.local" 2>&1 || fail "$1: cases in a local directory: $(tail -3 "$T/$1.local")"
	"${@:4}" "$PY" "$T/cases.py" "$3" >"$T/$1.mount" 2>&1 || fail "$1: cases in the open version: $(tail -3 "$T/$1.mount")"
	diff "$T/$1.local" "$T/$1.mount" >"$T/$1.diff" || {
		cat "$T/$1.diff"
		fail "$1: the mount and a local directory disagree (< local, > mount)"
	}
	note "$1: $(wc -l <"$T/$1.local") cases, $(grep -c 'EACCES\|FALSE' "$T/$1.local") denied, the same on the mount"
}

note "root, a mount by root without allow_other"
mount_fs
grep " $MNT " /proc/self/mountinfo | grep -q default_permissions && fail "mounted with default_permissions"
mkdir -p "$MNT/run/v.tmp" "$T/local-root" || fail "mkdir"
compare root "$T/local-root" "$MNT/run/v.tmp" env
# the version's name is cached for a second now: a commit must still show
# its new modes at once, whichever way it came
mkdir "$MNT/run/x" "$MNT/run/y.tmp" && chmod 750 "$MNT/run/x" "$MNT/run/y.tmp" || fail "mkdir x, y"
stat "$MNT/run/x/." "$MNT/run/y.tmp/." >/dev/null || fail "stat x, y"
setfattr -n user.ckpt.commit -v 1 "$MNT/run/x" || fail "commit x by setfattr"
mv "$MNT/run/y.tmp" "$MNT/run/y" || fail "commit y by rename"
[ "$(stat -c %a "$MNT/run/x") $(stat -c %a "$MNT/run/y")" = "550 550" ] ||
	fail "modes right after the commits: $(stat -c %a "$MNT/run/x" "$MNT/run/y")"
umount_fs

note "uid 65534, a mount by that user"
mkdir -p "$U/mnt" "$U/local" && chown -R 65534:65534 "$U" || fail "mkdir $U"
# The user's own mount, as fusermount3 would make it for them (/dev/fuse
# may be root's only, as here): root opens /dev/fuse and mounts it for uid
# 65534, and the user's daemon serves it (libfuse's /dev/fd/N mount point).
"$PY" - "$U/mnt" "$CKPTFS" "$U/store" "$T/user.log" <<'PY' &
import ctypes, os, sys
mnt, ckptfs, store, log = sys.argv[1:]
fd = os.open("/dev/fuse", os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
data = "fd=%d,rootmode=40000,user_id=65534,group_id=65534" % fd
MS_NOSUID, MS_NODEV = 2, 4
if libc.mount(b"ckptfs", mnt.encode(), b"fuse.ckptfs", MS_NOSUID | MS_NODEV, data.encode()) != 0:
    sys.exit("mount: " + os.strerror(ctypes.get_errno()))
os.set_inheritable(fd, True)
err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(err, 2)
os.execvp("setpriv", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                      ckptfs, store, "/dev/fd/%d" % fd, "-f"])
PY
UPID=$!
for _ in $(seq 1 200); do
	grep -q "mounted" "$T/user.log" 2>/dev/null && break
	kill -0 "$UPID" 2>/dev/null || break
	sleep 0.05
done
user_mounted && grep -q "mounted" "$T/user.log" || { cat "$T/user.log"; fail "the user's mount"; }
other mkdir -p "$U/mnt/run/v.tmp" || fail "mkdir as the user"
compare user "$U/local" "$U/mnt/run/v.tmp" other
# root does not reach another user's mount without allow_other
[ -e "$U/mnt/run" ] 2>/dev/null && fail "root reached the user's mount"
other "$PY" -c "import os; os.rename('$U/mnt/run/v.tmp', '$U/mnt/run/v')" || fail "commit as the user"
[ "$(other stat -c %a "$U/mnt/run/v/none")" = 444 ] || fail "committed mode: $(other stat -c %a "$U/mnt/run/v/none")"
other "$PY" -c "open('$U/mnt/run/v/none', 'a')" 2>/dev/null && fail "a committed file opened for writing"
umount "$U/mnt" || fail "unmount the user's mount"
wait "$UPID" || fail "the user's daemon exited with $?"
UPID=
check_log "$T/user.log"
echo PASS
