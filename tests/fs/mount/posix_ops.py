#!/usr/bin/env python3
"""posix_ops.py MOUNT TABLE.md [--print] - every POSIX operation of the table
in docs/mount.md ("POSIX operations") run for real in an open version, in a
committed version and on a run directory of the mounted tree MOUNT; each
result (ok or the errno name) must be the one the table gives. With --print,
print the table of what happened instead of checking it.

Each operation gets fresh places made for it (so removing, renaming or
retiring in one never changes what the next one sees):
  open       MOUNT/o-N/v, an open version
  committed  MOUNT/c-N/v, a committed version
  run        MOUNT/r-N, a run holding a committed version `v` (`latest`)
             and an open version `w`
Each version holds f (100 bytes, 0644), x (0755), p (0600), d/ (0777, with
d/g), e/ (an empty directory) and s -> f (a symlink, where the mount makes
them). The script runs as root, who passes every mode check: in committed
versions the EROFS comes from the version, not from the modes.

Exits 0 when every cell matches, 1 listing the cells that do not.
"""
import ctypes
import errno
import fcntl
import mmap
import os
import re
import shutil
import sys

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10
FALLOC_FL_COLLAPSE_RANGE = 0x08
PLACES = ("open", "committed", "run")
OPS = {}


def op(name):
    def reg(f):
        OPS[name] = f
        return f
    return reg


def j(*a):
    return os.path.join(*a)


def libc_check(ret):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def with_fd(path, flags, fn):
    fd = os.open(path, flags)
    try:
        return fn(fd)
    finally:
        os.close(fd)


def falloc(mode, off=0, length=1 << 20):
    return lambda b: with_fd(j(b, "f"), os.O_RDWR,
                             lambda fd: libc_check(LIBC.fallocate(fd, mode, off, length)))


def other_version(b):
    """An open version next to b (in the same run)."""
    o = j(os.path.dirname(b), "other")
    if not os.path.isdir(o):
        os.mkdir(o)
    return o


@op("create")
def _create(b):
    os.close(os.open(j(b, "new"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


@op("open-r")
def _open_r(b):
    with_fd(j(b, "f"), os.O_RDONLY, lambda fd: os.read(fd, 100))


@op("open-w")
def _open_w(b):
    with_fd(j(b, "f"), os.O_WRONLY, lambda fd: os.pwrite(fd, b"w", 10))


@op("o-trunc")
def _o_trunc(b):
    os.close(os.open(j(b, "f"), os.O_WRONLY | os.O_TRUNC))


@op("o-append")
def _o_append(b):
    with_fd(j(b, "f"), os.O_WRONLY | os.O_APPEND, lambda fd: os.write(fd, b"more"))


@op("write-past-end")
def _write_past_end(b):
    with_fd(j(b, "f"), os.O_WRONLY, lambda fd: os.pwrite(fd, b"far", 5 << 20))


@op("truncate")
def _truncate(b):
    os.truncate(j(b, "f"), 10)


@op("ftruncate")
def _ftruncate(b):
    with_fd(j(b, "f"), os.O_RDWR, lambda fd: os.ftruncate(fd, 3 << 20))


OPS["fallocate"] = falloc(0)
OPS["fallocate-keep-size"] = falloc(FALLOC_FL_KEEP_SIZE)
OPS["fallocate-punch-hole"] = falloc(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
OPS["fallocate-zero-range"] = falloc(FALLOC_FL_ZERO_RANGE, 0, 4096)
OPS["fallocate-collapse-range"] = falloc(FALLOC_FL_COLLAPSE_RANGE, 0, 4096)


@op("mmap-shared-r")
def _mmap_shared_r(b):
    def m(fd):
        with mmap.mmap(fd, 100, mmap.MAP_SHARED, mmap.PROT_READ) as mm:
            mm[0:10]
    with_fd(j(b, "f"), os.O_RDONLY, m)


@op("mmap-shared-w")
def _mmap_shared_w(b):
    def m(fd):
        with mmap.mmap(fd, 100, mmap.MAP_SHARED) as mm:
            mm[0:4] = b"mmap"
            mm.flush()
    with_fd(j(b, "f"), os.O_RDWR, m)


@op("mmap-private")
def _mmap_private(b):
    def m(fd):
        with mmap.mmap(fd, 100, mmap.MAP_PRIVATE) as mm:
            mm[0:4] = b"priv"
    with_fd(j(b, "f"), os.O_RDONLY, m)


@op("mkdir")
def _mkdir(b):
    os.mkdir(j(b, "newdir"))


@op("rmdir")
def _rmdir(b):
    os.rmdir(j(b, "e"))


@op("rmdir-nonempty")
def _rmdir_nonempty(b):
    os.rmdir(j(b, "d"))


@op("unlink")
def _unlink(b):
    os.unlink(j(b, "f"))


@op("unlink-manifest")
def _unlink_manifest(b):
    os.unlink(j(b, ".manifest"))


@op("unlink-latest")
def _unlink_latest(b):
    os.unlink(j(b, "latest"))


@op("rename")
def _rename(b):
    os.rename(j(b, "f"), j(b, "f2"))


@op("rename-over")
def _rename_over(b):
    os.rename(j(b, "f"), j(b, "x"))


@op("rename-dir")
def _rename_dir(b):
    os.rename(j(b, "d"), j(b, "d2"))


@op("rename-other-version")
def _rename_other_version(b):
    os.rename(j(b, "f"), j(other_version(b), "f"))


def renameat2(a, b, flags):
    LIBC.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                               ctypes.c_uint]
    libc_check(LIBC.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), flags))


@op("rename-noreplace")
def _rename_noreplace(b):
    renameat2(j(b, "f"), j(b, "x"), 1)  # RENAME_NOREPLACE onto an existing name


@op("rename-exchange")
def _rename_exchange(b):
    renameat2(j(b, "f"), j(b, "x"), 2)  # RENAME_EXCHANGE


@op("open-w-manifest")
def _open_w_manifest(b):
    os.close(os.open(j(b, ".manifest"), os.O_WRONLY))


@op("link")
def _link(b):
    os.link(j(b, "f"), j(b, "f-hard"))


@op("link-other-version")
def _link_other_version(b):
    os.link(j(b, "f"), j(other_version(b), "f-hard"))


@op("symlink")
def _symlink(b):
    os.symlink("f", j(b, "new-link"))


@op("readlink")
def _readlink(b):
    os.readlink(j(b, "latest" if os.path.lexists(j(b, "latest")) else "s"))


@op("mkfifo")
def _mkfifo(b):
    os.mkfifo(j(b, "fifo"))


@op("mknod-char")
def _mknod_char(b):
    os.mknod(j(b, "null"), 0o600 | 0o020000, os.makedev(1, 3))


@op("chmod")
def _chmod(b):
    os.chmod(j(b, "f"), 0o600)


@op("chmod-dir")
def _chmod_dir(b):
    os.chmod(j(b, "d"), 0o700)


@op("chmod-here")
def _chmod_here(b):
    os.chmod(b, 0o700)


@op("chown-owner")
def _chown_owner(b):
    os.chown(j(b, "f"), os.getuid(), os.getgid())


@op("chown-other")
def _chown_other(b):
    os.chown(j(b, "f"), 12345, 12345)


@op("chown-here")
def _chown_here(b):
    os.chown(b, os.getuid(), os.getgid())


@op("utimensat")
def _utimensat(b):
    os.utime(j(b, "f"), ns=(1_600_000_000_000_000_001, 1_500_000_000_000_000_001))


@op("utimensat-now")
def _utimensat_now(b):
    os.utime(j(b, "f"))


@op("utimensat-here")
def _utimensat_here(b):
    os.utime(b, ns=(1_600_000_000_000_000_001, 1_500_000_000_000_000_001))


@op("setxattr-user")
def _setxattr_user(b):
    os.setxattr(j(b, "f"), "user.other", b"1")


@op("getxattr-xxh128")
def _getxattr_xxh128(b):
    os.getxattr(j(b, "f"), "user.ckpt.xxh128")


@op("stat")
def _stat(b):
    os.stat(j(b, "f"))


@op("readdir")
def _readdir(b):
    os.listdir(b)


@op("statfs")
def _statfs(b):
    os.statvfs(b)


@op("access-w")
def _access_w(b):
    LIBC.access.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc_check(LIBC.access(os.fsencode(j(b, "f")), os.W_OK))


@op("fsync")
def _fsync(b):
    with_fd(j(b, "f"), os.O_RDONLY, os.fsync)


@op("flock")
def _flock(b):
    with_fd(j(b, "f"), os.O_RDONLY, lambda fd: fcntl.flock(fd, fcntl.LOCK_SH))


@op("fcntl-lock")
def _fcntl_lock(b):
    with_fd(j(b, "f"), os.O_RDONLY, lambda fd: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB))


@op("o-tmpfile")
def _o_tmpfile(b):
    os.close(os.open(b, os.O_TMPFILE | os.O_RDWR, 0o600))


@op("rm-r")
def _rm_r(b):
    shutil.rmtree(b)


@op("rmdir-version")
def _rmdir_version(b):
    os.rmdir(b)


@op("rename-version")
def _rename_version(b):
    os.rename(b, b + "-renamed")


@op("fstat-unlinked")
def _fstat_unlinked(b):
    def f(fd):
        os.unlink(j(b, "f"))
        os.fstat(fd)
        os.pread(fd, 100, 0)
    with_fd(j(b, "f"), os.O_RDONLY, f)


@op("copy-file-range")
def _copy_file_range(b):
    def f(src):
        with_fd(j(b, "copy"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                lambda dst: os.copy_file_range(src, dst, 100))
    with_fd(j(b, "f"), os.O_RDONLY, f)


@op("ficlone")
def _ficlone(b):
    FICLONE = 0x40049409
    def f(src):
        with_fd(j(b, "clone"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                lambda dst: fcntl.ioctl(dst, FICLONE, src))
    with_fd(j(b, "f"), os.O_RDONLY, f)


@op("seek-data-hole")
def _seek_data_hole(b):
    with_fd(j(b, "f"), os.O_RDONLY,
            lambda fd: (os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE)))


@op("fchmod")
def _fchmod(b):
    with_fd(j(b, "f"), os.O_RDONLY, lambda fd: os.fchmod(fd, 0o600))


@op("fchown-owner")
def _fchown_owner(b):
    with_fd(j(b, "f"), os.O_RDONLY, lambda fd: os.fchown(fd, os.getuid(), os.getgid()))


@op("lchown-symlink")
def _lchown_symlink(b):
    os.lchown(j(b, "s"), os.getuid(), os.getgid())


@op("lutimes-symlink")
def _lutimes_symlink(b):
    os.utime(j(b, "s"), ns=(1_600_000_000_000_000_001, 1_500_000_000_000_000_001),
             follow_symlinks=False)


@op("open-nofollow")
def _open_nofollow(b):
    os.close(os.open(j(b, "s"), os.O_RDONLY | os.O_NOFOLLOW))


def direct_io(path, flags, fn):
    buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
    with_fd(path, flags | os.O_DIRECT, lambda fd: fn(fd, buf))


@op("o-direct-r")
def _o_direct_r(b):
    direct_io(j(b, "f"), os.O_RDONLY, lambda fd, buf: os.preadv(fd, [buf], 0))


@op("o-direct-w")
def _o_direct_w(b):
    direct_io(j(b, "f"), os.O_WRONLY, lambda fd, buf: os.pwritev(fd, [buf], 0))


@op("rename-dir-over-nonempty")
def _rename_dir_over_nonempty(b):
    os.rename(j(b, "e"), j(b, "d"))


@op("create-manifest")
def _create_manifest(b):
    os.close(os.open(j(b, ".manifest"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


@op("create-manifest-unlinked")
def _create_manifest_unlinked(b):
    os.unlink(j(b, ".manifest"))
    os.close(os.open(j(b, ".manifest"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


@op("rename-onto-manifest")
def _rename_onto_manifest(b):
    os.rename(j(b, "f"), j(b, ".manifest"))


@op("listxattr")
def _listxattr(b):
    os.listxattr(j(b, "f"))


@op("fdatasync-w")
def _fdatasync_w(b):
    def f(fd):
        os.pwrite(fd, b"sync", 0)
        os.fdatasync(fd)
    with_fd(j(b, "f"), os.O_WRONLY, f)


def populate(v):
    with open(j(v, "f"), "wb") as f:
        f.write(bytes(range(100)))
    for name, mode in (("x", 0o755), ("p", 0o600)):
        with open(j(v, name), "wb") as f:
            f.write(name.encode() * 10)
        os.chmod(j(v, name), mode)
    os.chmod(j(v, "f"), 0o644)
    os.mkdir(j(v, "d"))
    with open(j(v, "d", "g"), "wb") as f:
        f.write(b"g")
    os.chmod(j(v, "d"), 0o777)
    os.mkdir(j(v, "e"))
    try:
        os.symlink("f", j(v, "s"))
    except OSError:
        pass  # a mount without symlinks: readlink then says so


def place(mnt, where, n):
    if where == "open":
        v = j(mnt, "o-%d" % n, "v")
        os.makedirs(v)
        populate(v)
        return v
    if where == "committed":
        run = j(mnt, "c-%d" % n)
        os.makedirs(j(run, "v.tmp"))
        populate(j(run, "v.tmp"))
        os.rename(j(run, "v.tmp"), j(run, "v"))
        return j(run, "v")
    run = j(mnt, "r-%d" % n)
    os.makedirs(j(run, "v.tmp"))
    populate(j(run, "v.tmp"))
    os.rename(j(run, "v.tmp"), j(run, "v"))
    os.mkdir(j(run, "w"))
    populate(j(run, "w"))
    return run


def same(a, b):
    """ENOTSUP and EOPNOTSUPP are one number on Linux; man pages use both."""
    alias = {"ENOTSUP": "EOPNOTSUPP"}
    return alias.get(a, a) == alias.get(b, b)


def run_op(mnt, name, where, n):
    b = place(mnt, where, n)
    try:
        OPS[name](b)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def read_table(path):
    """{op: {place: expected}} from the table after the marker line."""
    rows, inside = {}, False
    for line in open(path, encoding="utf-8"):
        if "<!-- posix-ops" in line:
            inside = True
            continue
        if not inside:
            continue
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.match(r"`([a-z0-9-]+)`", cells[0])
        if not m:
            continue  # the header and its rule
        want = {}
        for where, cell in zip(PLACES, cells[-3:]):
            t = re.match(r"(ok|E[A-Z]+|—)", cell)
            if not t:
                sys.exit("posix_ops.py: %s: cell '%s' of %s starts with neither ok, an "
                         "errno name nor —" % (path, cell, m.group(1)))
            want[where] = t.group(1)
        rows[m.group(1)] = want
    return rows


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: posix_ops.py MOUNT TABLE.md [--print]")
    mnt, table = sys.argv[1], sys.argv[2]
    printing = "--print" in sys.argv[3:]
    rows = read_table(table)
    if not printing:
        missing = sorted(set(OPS) - set(rows))
        unknown = sorted(set(rows) - set(OPS))
        if missing or unknown:
            sys.exit("posix_ops.py: the table in %s and this script disagree: not in the "
                     "table: %s; not in the script: %s" % (table, missing, unknown))
    bad, n = [], 0
    for name in OPS:
        got = {}
        for where in PLACES:
            want = rows.get(name, {}).get(where, "?")
            if want == "—" and not printing:
                continue
            n += 1
            got[where] = run_op(mnt, name, where, n)
            if not printing and not same(got[where], want):
                bad.append("%s in the %s column: %s, the table says %s" %
                           (name, where, got[where], want))
        if printing:
            print("| `%s` | %s |" % (name, " | ".join(got[w] for w in PLACES)))
    if bad:
        print("\n".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
