#!/usr/bin/env python3
"""perm_cases.py DIR - mode checks as the caller meets them, in the empty
directory DIR: makes files and directories with modes that deny the owner
something, tries each way in, and prints one line per try, "name: OK" or
"name: ERRNO". t_perm.sh runs it in a local directory and in an open version
as the same user: the two outputs must be the same (the daemon's checks,
fs/fuse/perm.c, against the kernel's own on a local file system). Only the
outcomes of checks are compared, so only tries whose answer the mode decides
(of user.* xattrs, only whether they were denied: what a local file
system stores there, ckptfs refuses)."""
import errno
import os
import sys

B = sys.argv[1]


def j(*a):
    return os.path.join(B, *a)


def tr(name, fn):
    try:
        r = fn()
        out = "OK" if r is None or r is True else ("FALSE" if r is False else "OK")
    except OSError as e:
        out = errno.errorcode.get(e.errno, str(e.errno))
    print("%s: %s" % (name, out))


def trx(name, fn):
    """An xattr try: only whether the mode denied it (what a local file
    system stores as user.*, ckptfs refuses: ENOTSUP, ENODATA)."""
    try:
        fn()
        out = "not denied"
    except OSError as e:
        out = "EACCES" if e.errno == errno.EACCES else "not denied"
    print("%s: %s" % (name, out))


def make(path, mode, data=b"x\n"):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)
    os.chmod(path, mode)


def openclose(path, flags):
    os.close(os.open(path, flags, 0o644))


# directories that deny the owner write (0500), search (0600), read (0300)
for d in ("ro", "nox", "noread", "mv-src", "mv-dst"):
    os.mkdir(j(d))
make(j("ro", "f"), 0o644)
os.mkdir(j("ro", "sub"))
make(j("nox", "f"), 0o644)
make(j("noread", "f"), 0o644)
os.mkdir(j("mv-src", "dir"))
make(j("plain"), 0o644)
make(j("fd-file"), 0o644)
os.chmod(j("ro"), 0o500)
os.chmod(j("nox"), 0o600)
os.chmod(j("noread"), 0o300)
os.chmod(j("mv-src", "dir"), 0o500)
# files that deny the owner everything (0000), write (0444), read (0200)
make(j("none"), 0o000)
make(j("ro-file"), 0o444)
make(j("wo-file"), 0o200)

tr("create in 0500 dir", lambda: openclose(j("ro", "new"), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
tr("mkdir in 0500 dir", lambda: os.mkdir(j("ro", "newdir")))
tr("symlink in 0500 dir", lambda: os.symlink("t", j("ro", "ln")))
tr("link into 0500 dir", lambda: os.link(j("plain"), j("ro", "hard")))
tr("unlink in 0500 dir", lambda: os.unlink(j("ro", "f")))
tr("rmdir in 0500 dir", lambda: os.rmdir(j("ro", "sub")))
tr("rename in 0500 dir", lambda: os.rename(j("ro", "f"), j("ro", "g")))
tr("rename out of 0500 dir", lambda: os.rename(j("ro", "f"), j("moved")))
tr("rename into 0500 dir", lambda: os.rename(j("plain"), j("ro", "plain")))
tr("open in 0500 dir", lambda: openclose(j("ro", "f"), os.O_RDONLY))
tr("listdir 0500 dir", lambda: os.listdir(j("ro")) and None)
tr("stat in 0600 dir", lambda: os.stat(j("nox", "f")) and None)
tr("open in 0600 dir", lambda: openclose(j("nox", "f"), os.O_RDONLY))
tr("create in 0600 dir", lambda: openclose(j("nox", "new"), os.O_WRONLY | os.O_CREAT))
tr("listdir 0600 dir", lambda: sorted(os.listdir(j("nox"))) and None)
tr("chdir 0600 dir", lambda: os.chdir(j("nox")))
tr("listdir 0300 dir", lambda: os.listdir(j("noread")) and None)
tr("open in 0300 dir", lambda: openclose(j("noread", "f"), os.O_RDONLY))
tr("create in 0300 dir", lambda: openclose(j("noread", "new"), os.O_WRONLY | os.O_CREAT))
tr("chdir 0300 dir", lambda: os.chdir(j("noread")))
os.chdir("/")
tr("move 0500 dir to another dir", lambda: os.rename(j("mv-src", "dir"), j("mv-dst", "dir")))
tr("rename 0500 dir in its dir", lambda: os.rename(j("mv-src", "dir"), j("mv-src", "dir2")))
for f in ("none", "ro-file", "wo-file"):
    tr("open %s O_RDONLY" % f, lambda: openclose(j(f), os.O_RDONLY))
    tr("open %s O_WRONLY" % f, lambda: openclose(j(f), os.O_WRONLY))
    tr("open %s O_RDWR" % f, lambda: openclose(j(f), os.O_RDWR))
    tr("open %s O_RDONLY|O_TRUNC" % f, lambda: openclose(j(f), os.O_RDONLY | os.O_TRUNC))
    tr("open %s O_CREAT" % f, lambda: openclose(j(f), os.O_WRONLY | os.O_CREAT))
    tr("truncate %s" % f, lambda: os.truncate(j(f), 1))
    for m, n in ((os.R_OK, "R"), (os.W_OK, "W"), (os.X_OK, "X"), (os.F_OK, "F")):
        tr("access %s %s" % (f, n), lambda: os.access(j(f), m))
    tr("utime %s" % f, lambda: os.utime(j(f), (1, 2)))
    tr("utime now %s" % f, lambda: os.utime(j(f)))
    tr("stat %s" % f, lambda: os.stat(j(f)) and None)
trx("getxattr of 0000 file", lambda: os.getxattr(j("none"), "user.x"))
trx("setxattr of 0444 file", lambda: os.setxattr(j("ro-file"), "user.x", b"1"))
trx("removexattr of 0444 file", lambda: os.removexattr(j("ro-file"), "user.x"))
trx("getxattr in 0600 dir", lambda: os.getxattr(j("nox", "f"), "user.x"))
for d in ("ro", "nox", "noread"):
    for m, n in ((os.R_OK, "R"), (os.W_OK, "W"), (os.X_OK, "X")):
        tr("access %s dir %s" % (d, n), lambda: os.access(j(d), m))
fd = os.open(j("fd-file"), os.O_WRONLY)
os.chmod(j("fd-file"), 0o444)
tr("ftruncate of a descriptor open for writing, file now 0444", lambda: os.ftruncate(fd, 1))
tr("write to it", lambda: os.write(fd, b"y") and None)
os.close(fd)
tr("chmod of 0000 file by the owner", lambda: os.chmod(j("none"), 0o644))
tr("unlink of 0444 file", lambda: os.unlink(j("ro-file")))

# give everything back, so that the tree can be removed
for d in ("ro", "nox", "noread", "mv-src/dir", "mv-dst/dir", "mv-src/dir2"):
    if os.path.isdir(j(d)):
        os.chmod(j(d), 0o755)
