#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_rank.py - one rank of a fake data-parallel gang, for ckptd's gang
tests (test_ranks.py). Python stdlib only, so a gang starts in milliseconds.

It reads the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, ...) and
SPEC section 4's, reports STEP/LOSS to its own CKPT_NOTIFY_SOCKET, and saves
every --ckpt-every steps into one version written by all ranks, as
examples/pytorch_ddp_train.py does on ckptfs: rank 0 makes
RUN/step-NNNNNN.aATTEMPT/ and sets user.ckpt.writers=WORLD_SIZE, each rank
writes its shard (shard-K.bin, --shard-kib KiB in 16 KiB writes,
--save-ms ms apart) and state-K.json, closes them and commits its part
(user.ckpt.commit=rank=K). On a plain directory rank 0 writes
trainer_state.json (what makes a plain version complete for ckptd) once every
rank's state file is there.

Resume: CKPT_RESUME_FROM/state-K.json gives the step; every rank must get
the same CKPT_RESUME_FROM (the trace shows it).

  --fault KIND@STEP[:rank=K][:attempt=N]  KIND: exit1, exit78, sigkill, nan,
                                          hang, corrupted (default rank 0,
                                          attempt 1)
  --trace PATH                            one JSON line per start, save, end
"""
import argparse
import errno
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_trainer import notify, trace  # noqa: E402

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def shard_bytes(step, rank, kib):
    # deterministic content, different per step and rank
    seed = ("%d:%d:" % (step, rank)).encode()
    return (seed * (1024 // len(seed) + 1))[:1024] * kib


def xattr(path, name):
    try:
        return os.getxattr(path, name)
    except OSError:
        return None


def wait_for(pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        if stop:
            return False
        if pred():
            return True
        time.sleep(0.01)
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--step-ms", type=int, default=10)
    p.add_argument("--ckpt-every", type=int, default=10)
    p.add_argument("--shard-kib", type=int, default=64)
    p.add_argument("--save-ms", type=int, default=0)
    p.add_argument("--fault", action="append", default=[])
    p.add_argument("--trace")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    attempt = int(os.environ.get("CKPT_ATTEMPT", "1"))
    run = os.environ["CKPT_RUN_DIR"]
    resume = os.environ.get("CKPT_RESUME_FROM")
    faults = {}
    for f in a.fault:
        kind, rest = f.split("@", 1)
        parts = rest.split(":")
        opts = dict(x.split("=") for x in parts[1:])
        if int(opts.get("rank", 0)) == rank and int(opts.get("attempt", 1)) == attempt:
            faults[int(parts[0])] = kind
    step = 0
    if resume:
        with open(os.path.join(resume, "state-%d.json" % rank)) as f:
            step = json.load(f)["step"]
    env = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                                          "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
                                          "CKPT_NOTIFY_SOCKET", "CKPT_RUN_DIR")}
    trace(a.trace, event="start", rank=rank, attempt=attempt, resume=resume, step=step,
          pid=os.getpid(), pgid=os.getpgid(0), env=env)
    notify("READY=1")
    first = True
    while step < a.steps and not stop:
        step += 1
        kind = faults.get(step)
        loss = 1.0 / step
        if kind == "exit1":
            trace(a.trace, event="fault", rank=rank, kind=kind, step=step)
            sys.exit(1)
        if kind == "exit78":
            sys.exit(78)
        if kind == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "nan":
            notify("STEP=%d\nLOSS=nan" % step)
            wait_for(lambda: False, 30)
            break
        if kind == "corrupted":
            notify("STEP=%d\nCORRUPTED=1\nREASON=rank %d saw bad data" % (step, rank))
            wait_for(lambda: False, 30)
            break
        if kind == "hang":
            trace(a.trace, event="hang", rank=rank, step=step)
            wait_for(lambda: False, 60)
            break
        notify("STEP=%d\nLOSS=%r" % (step, loss))
        if first:  # for bench/supervisor/bench_rdzv.py: restart -> first step
            trace(a.trace, event="first_step", rank=rank, attempt=attempt, step=step)
            first = False
        time.sleep(a.step_ms / 1000.0)
        if step % a.ckpt_every == 0 or step == a.steps:
            if not save(a, run, step, rank, world, attempt):
                break
    trace(a.trace, event="end", rank=rank, attempt=attempt, step=step, stopped=stop)
    sys.exit(0)


def save(a, run, step, rank, world, attempt):
    name = "step-%06d.a%d" % (step, attempt)
    vdir = os.path.join(run, name)
    notify("SAVING=1")
    if rank == 0:
        os.makedirs(run, exist_ok=True)
        os.mkdir(vdir)
        if xattr(vdir, "user.ckpt.state") == b"open":
            os.setxattr(vdir, "user.ckpt.writers", b"%d" % world)
    # ckptfs: an open version with its writers set; a plain dir: just there
    if not wait_for(lambda: os.path.isdir(vdir) and
                    (xattr(vdir, "user.ckpt.state") != b"open" or
                     xattr(vdir, "user.ckpt.writers") is not None)):
        return False
    ckptfs = xattr(vdir, "user.ckpt.state") is not None
    trace(a.trace, event="save", rank=rank, step=step, version=name)
    data = shard_bytes(step, rank, a.shard_kib)
    with open(os.path.join(vdir, "shard-%d.bin" % rank), "wb") as f:
        for off in range(0, len(data), 16384):
            f.write(data[off:off + 16384])
            f.flush()
            if a.save_ms:
                time.sleep(a.save_ms / 1000.0 / max(1, len(data) // 16384))
    with open(os.path.join(vdir, "state-%d.json" % rank), "w") as f:
        json.dump({"step": step, "rank": rank, "world": world}, f)
    if ckptfs:
        # the part that completes the set commits the version; while a file
        # of it still counts as open (its RELEASE comes after close(2), on
        # this host or another) that is EBUSY, and setting it again retries
        # (docs/mount.md "Many writers"): as a real rank would, for 3 s
        end = time.time() + 3
        while True:
            try:
                os.setxattr(vdir, "user.ckpt.commit", b"rank=%d" % rank)
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.time() > end or stop:
                    raise
                trace(a.trace, event="commit_busy", rank=rank, step=step)
                time.sleep(0.05)
    elif rank == 0:
        # a plain dir: complete once trainer_state.json is there (ckptd's
        # convention), written when every rank's state file is
        if not wait_for(lambda: all(os.path.exists(os.path.join(vdir, "state-%d.json" % k))
                                    for k in range(world))):
            return False
        with open(os.path.join(vdir, "trainer_state.json"), "w") as f:
            json.dump({"step": step, "world": world}, f)
    trace(a.trace, event="saved", rank=rank, step=step, version=name)
    notify("SAVING=0")
    return True


if __name__ == "__main__":
    main()
