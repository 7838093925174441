#!/usr/bin/env python3
"""tempfiles.py DIR - unlinked files that stay open, the way tools use them
in a checkpoint directory DIR (t_tempfile.sh runs it in a plain directory
and in an open version and compares the trees):

  tempfile.TemporaryFile(dir=DIR): 3 MiB written, fstat, read back, grown
      by ftruncate, written at an offset, mapped shared and changed through
      the mapping, read back;
  a file unlinked between two descriptors (one write-only, one read-write):
      writes through the write-only one still reach the other;
  os.replace over a file a reader holds open (torch.save's temp file +
      rename): the reader still reads the old bytes, new opens the new ones;
  tempfile.NamedTemporaryFile(dir=DIR) (unlinked at close).

DIR ends with kept.bin and model.pt only. (A commit while unlinked files
are open: t_unlinked.sh.)
Exits 0 on success, 1 with a message on the first mismatch.
"""
import mmap
import os
import random
import sys
import tempfile


def fail(msg):
    print("FAIL:", msg, "in", D)
    sys.exit(1)


def data(seed, n):
    return random.Random(seed).randbytes(n)


def check_fd(fd, want, what, readable=True):
    st = os.fstat(fd)
    if st.st_size != len(want):
        fail("%s: fstat size %d, want %d" % (what, st.st_size, len(want)))
    if st.st_nlink != 0:
        fail("%s: st_nlink %d after unlink, want 0" % (what, st.st_nlink))
    if readable and os.pread(fd, len(want) + 1, 0) != want:
        fail("%s: pread gives other bytes" % what)


def temporary_file():
    f = tempfile.TemporaryFile(dir=D)
    a = data(1, 3 << 20)
    f.write(a)
    f.flush()
    check_fd(f.fileno(), a, "TemporaryFile")
    f.seek(0)
    if f.read() != a:
        fail("TemporaryFile: read back other bytes")
    os.ftruncate(f.fileno(), 4 << 20)
    want = bytearray(a + bytes(1 << 20))
    os.pwrite(f.fileno(), b"patched", 1000)
    want[1000:1007] = b"patched"
    with mmap.mmap(f.fileno(), 4 << 20, mmap.MAP_SHARED) as m:
        m[(4 << 20) - 4096:] = b"M" * 4096
        m.flush()
    want[(4 << 20) - 4096:] = b"M" * 4096
    check_fd(f.fileno(), bytes(want), "TemporaryFile after ftruncate, pwrite, mmap")
    if any(n.startswith("tmp") for n in os.listdir(D)):
        fail("TemporaryFile left a name: %s" % os.listdir(D))
    f.close()


def unlinked_between_descriptors():
    p = os.path.join(D, "scratch.bin")
    wo = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    rw = os.open(p, os.O_RDWR)
    os.write(wo, data(2, 100000))
    os.unlink(p)
    if os.path.lexists(p):
        fail("scratch.bin still there after unlink")
    os.write(wo, data(3, 200000))
    check_fd(wo, data(2, 100000) + data(3, 200000), "write-only descriptor after unlink",
             readable=False)
    check_fd(rw, data(2, 100000) + data(3, 200000), "read-write descriptor after unlink")
    os.close(wo)
    check_fd(rw, data(2, 100000) + data(3, 200000), "the other descriptor after a close")
    os.close(rw)


def replace_under_reader():
    p = os.path.join(D, "model.pt")
    with open(p, "wb") as f:
        f.write(data(4, 500000))
    r = os.open(p, os.O_RDONLY)
    with open(p + ".tmp", "wb") as f:
        f.write(data(5, 300000))
    os.replace(p + ".tmp", p)
    check_fd(r, data(4, 500000), "a reader of a file replaced by rename")
    os.close(r)
    with open(p, "rb") as f:
        if f.read() != data(5, 300000):
            fail("model.pt after os.replace is not the new content")


def named_temporary_file():
    with tempfile.NamedTemporaryFile(dir=D) as f:
        f.write(data(6, 70000))
        f.flush()
        if os.path.getsize(f.name) != 70000:
            fail("NamedTemporaryFile: size by name")
    with open(os.path.join(D, "kept.bin"), "wb") as f:
        f.write(data(7, 123456))


D = sys.argv[1] if len(sys.argv) > 1 else None
if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tempfiles.py DIR")
    temporary_file()
    unlinked_between_descriptors()
    replace_under_reader()
    named_temporary_file()
    names = sorted(os.listdir(D))
    if names not in (["kept.bin", "model.pt"], [".manifest", "kept.bin", "model.pt"]):
        fail("DIR holds %s" % names)
