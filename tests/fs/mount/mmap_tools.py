#!/usr/bin/env python3
"""mmap_tools.py CASE DIR... - memory-map files in each DIR the way tools do,
and check what they read back. t_mmap.sh runs each case in a plain directory
and in an open version (one process: torch is slow to import), commits the
version, and compares the two trees. The bytes written are the same in every
DIR (fixed seeds).

Cases:
  numpy    np.save + np.load(mmap_mode='r'); np.lib.format.open_memmap
           (mode='w+'), changed again with mode='r+'
  torch    torch.from_file(shared=True) written and read back; torch.save
           and torch.load
  pymmap   Python's mmap.mmap: a 3 MiB file written through a shared
           mapping page by page in a scattered order, msync, read back
           with read(2); a second process reads it through its own mapping

Exits 0 on success, 1 with a message on the first mismatch.
"""
import mmap
import os
import random
import subprocess
import sys


def fail(msg):
    print("FAIL:", msg, "in", DIR)
    sys.exit(1)


def case_numpy(d):
    import numpy as np

    a = np.arange(100000, dtype=np.int64)
    np.save(os.path.join(d, "a.npy"), a)
    m = np.load(os.path.join(d, "a.npy"), mmap_mode="r")
    if not np.array_equal(m, a):
        fail("np.load(mmap_mode='r') reads other values")
    del m

    p = os.path.join(d, "b.npy")
    w = np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(512, 1024))
    w[:] = np.arange(512 * 1024, dtype=np.float32).reshape(512, 1024)
    w.flush()
    del w
    r = np.lib.format.open_memmap(p, mode="r+")
    r[100:200] = -1.0
    del r  # no flush: unmapping writes the pages back
    want = np.arange(512 * 1024, dtype=np.float32).reshape(512, 1024)
    want[100:200] = -1.0
    if not np.array_equal(np.load(p), want):
        fail("open_memmap w+/r+ then np.load: other values")
    if not np.array_equal(np.load(p, mmap_mode="r"), want):
        fail("open_memmap w+/r+ then np.load(mmap_mode='r'): other values")


def case_torch(d):
    import torch

    p = os.path.join(d, "t.bin")
    n = 300000
    t = torch.from_file(p, shared=True, size=n, dtype=torch.float32)
    t[:] = torch.arange(n, dtype=torch.float32)
    del t
    t = torch.from_file(p, shared=True, size=n, dtype=torch.float32)
    if not torch.equal(t, torch.arange(n, dtype=torch.float32)):
        fail("torch.from_file(shared=True) reads other values")
    t[::7] = 0.5
    del t
    want = torch.arange(n, dtype=torch.float32)
    want[::7] = 0.5
    with open(p, "rb") as f:
        got = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    if not torch.equal(got, want):
        fail("read(2) after writing through torch.from_file: other values")

    g = torch.Generator().manual_seed(7)
    sd = {"w": torch.randn(256, 256, generator=g), "b": torch.arange(1000), "step": 500}
    torch.save(sd, os.path.join(d, "model.pt"))
    back = torch.load(os.path.join(d, "model.pt"))
    if not (torch.equal(back["w"], sd["w"]) and torch.equal(back["b"], sd["b"])
            and back["step"] == 500):
        fail("torch.load gives another state dict")


def page_data(i):
    return (b"%08d" % i) * 512  # 4096 bytes


def case_pymmap(d):
    p = os.path.join(d, "m.bin")
    npages = 768  # 3 MiB
    order = list(range(npages))
    random.Random(1).shuffle(order)
    with open(p, "w+b") as f:
        f.truncate(npages * 4096)
        m = mmap.mmap(f.fileno(), npages * 4096, mmap.MAP_SHARED)
        for i in order:
            m[i * 4096:(i + 1) * 4096] = page_data(i)
        m.flush()
        m.close()
    want = b"".join(page_data(i) for i in range(npages))
    with open(p, "rb") as f:
        if f.read() != want:
            fail("read(2) after writing through mmap.mmap: other bytes")
    # Another process, its own read-only shared mapping.
    code = ("import mmap,sys; f=open(sys.argv[1],'rb'); "
            "m=mmap.mmap(f.fileno(),0,mmap.MAP_SHARED,mmap.PROT_READ); "
            "sys.stdout.buffer.write(m[:])")
    out = subprocess.run([sys.executable, "-c", code, p], stdout=subprocess.PIPE,
                         check=True).stdout
    if out != want:
        fail("a second process's shared mapping reads other bytes")


DIR = None
CASES = {"numpy": case_numpy, "torch": case_torch, "pymmap": case_pymmap}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in CASES:
        print("usage: mmap_tools.py %s DIR..." % "|".join(CASES))
        sys.exit(2)
    for DIR in sys.argv[2:]:
        CASES[sys.argv[1]](DIR)
