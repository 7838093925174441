#!/usr/bin/env python3
"""ckpt_writers.py RUN_DIR - write checkpoints through the mount the way
frameworks do, with the Python standard library only, and check them:

- like torch.save / safetensors: write a temp file in the version, fsync,
  os.replace() it to the final name, then commit by renaming the version;
- like zip writers (torch.save's zip format, numpy .npz): write local
  headers with placeholder sizes and CRCs, seek back to patch them, and
  append the central directory; then zipfile must read it back;
- truncate and rewrite, O_APPEND, sparse writes past the end.

Exits 0 on success, 1 with a message on the first mismatch.
"""
import hashlib
import os
import sys
import zipfile


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def torch_like(run, name, payload):
    tmp_ver = os.path.join(run, name + ".tmp")
    os.mkdir(tmp_ver)
    for fname, data in payload.items():
        tmp = os.path.join(tmp_ver, "." + fname + ".partial")
        with open(tmp, "wb") as f:
            for i in range(0, len(data), 1 << 20):
                f.write(data[i:i + (1 << 20)])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(tmp_ver, fname))
    os.rename(tmp_ver, os.path.join(run, name))
    ver = os.path.join(run, name)
    for fname, data in payload.items():
        with open(os.path.join(ver, fname), "rb") as f:
            if f.read() != data:
                fail("%s/%s read back differs" % (name, fname))
    if sorted(os.listdir(ver)) != sorted(list(payload) + [".manifest"]):
        fail("%s lists %s" % (name, sorted(os.listdir(ver))))
    if os.getxattr(ver, "user.ckpt.state") != b"committed":
        fail("%s not committed" % name)


def zip_like(run, name):
    ver = os.path.join(run, name)
    os.mkdir(ver)
    path = os.path.join(ver, "archive.zip")
    members = {"data/%d" % i: os.urandom(200000 + 7 * i) for i in range(5)}
    # zipfile on an unseekable-looking stream would use data descriptors; on
    # a real file it seeks back to patch each local header, as torch does.
    with open(path, "wb") as raw:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as z:
            for k, v in members.items():
                with z.open(k, "w", force_zip64=False) as m:
                    for i in range(0, len(v), 65536):
                        m.write(v[i:i + 65536])
    os.setxattr(ver, "user.ckpt.commit", b"1")
    with zipfile.ZipFile(path) as z:
        if z.testzip() is not None:
            fail("zip member CRC mismatch")
        for k, v in members.items():
            if z.read(k) != v:
                fail("zip member %s differs" % k)


def patterns(run, name):
    ver = os.path.join(run, name)
    os.mkdir(ver)
    p = os.path.join(ver, "f")
    want = bytearray()
    with open(p, "wb") as f:
        f.write(b"a" * 5000)
        want += b"a" * 5000
        f.truncate(100)
        del want[100:]
        f.seek(0)
        f.write(b"HEADER")
        want[0:6] = b"HEADER"
        f.seek(10000)  # sparse hole
        f.write(b"z")
        want += b"\0" * (10000 - len(want)) + b"z"
    with open(p, "ab") as f:
        f.write(b"tail")
        want += b"tail"
    with open(p, "r+b") as f:
        f.seek(50)
        f.write(b"mid")
        want[50:53] = b"mid"
    with open(p, "rb") as f:
        if f.read() != bytes(want):
            fail("pattern file differs while open")
    os.rename(ver, ver + "-final")
    with open(p.replace(name, name + "-final"), "rb") as f:
        got = f.read()
    if got != bytes(want):
        fail("pattern file differs after commit")
    h = os.getxattr(ver + "-final/f", "user.ckpt.xxh128").decode()
    if len(h) != 32 or any(c not in "0123456789abcdef" for c in h):
        fail("bad user.ckpt.xxh128 %r" % h)


def main():
    run = sys.argv[1]
    os.mkdir(run)
    payload = {
        "model.safetensors": os.urandom(3 << 20) + b"x",
        "optimizer.safetensors": os.urandom(1 << 20),
        "trainer_state.json": b'{"step": 1}',
    }
    torch_like(run, "step-1", payload)
    # 90% unchanged: dedup is the store's business, reading back is ours.
    payload["model.safetensors"] = payload["model.safetensors"][:-1] + b"y"
    torch_like(run, "step-2", payload)
    if os.readlink(os.path.join(run, "latest")) != "step-2":
        fail("latest is not step-2")
    zip_like(run, "zip-1")
    patterns(run, "pat")
    digest = hashlib.sha256(open(os.path.join(run, "step-1", "model.safetensors"),
                                 "rb").read()).hexdigest()
    if not digest:
        fail("empty digest")
    print("PASS")


if __name__ == "__main__":
    main()
