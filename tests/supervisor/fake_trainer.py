#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_trainer.py - a small, fast, deterministic trainer that speaks the
trainer protocol of SPEC section 4, for ckptd's tests.

It reports STEP/EPOCH/LOSS to CKPT_NOTIFY_SOCKET, writes versions into
CKPT_RUN_DIR as NAME.tmp/ then renames them (a commit on ckptfs), resumes
from CKPT_RESUME_FROM, saves a cancellation checkpoint and exits 0 on
SIGTERM, and injects faults on command:

  --fault KIND@STEP[:attempt=N]   KIND: nan, inf, exit1, exit78, sigkill,
                                  sigsegv, hang, corrupted, spike
  --hold FILE                     after the last step, wait until FILE exists
                                  (reporting every 50 ms), then finish
Each run appends one line per start and end to --trace (JSON), so tests can
see which attempt resumed from where.

  --report PATH@STEP              also send CHECKPOINT=PATH at STEP ({run} is
                                  CKPT_RUN_DIR): reports ckptd must reject
  --late-report STEP              the CHECKPOINT= of the save at STEP is sent
                                  only after the next fault (as an async save
                                  that commits after the trainer went bad)
  --symlink NAME=TARGET           a symlink NAME in the run dir at start
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import time

stop = False
BEST_AT = None  # --best-at: the step whose val_loss is lowest
CKPT_TRAIN_STATE = False  # --ckpt-train-state: trainer_state.json as ckpt-train writes it
best_so_far = float("inf")


def on_term(signum, frame):
    global stop
    stop = True


def notify(msg):
    name = os.environ.get("CKPT_NOTIFY_SOCKET")
    if not name:
        return
    if name.startswith("@"):
        name = "\0" + name[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(msg.encode(), name)
    except OSError:
        pass
    finally:
        s.close()


def trace(path, **kw):
    if not path:
        return
    kw["time"] = time.time()
    with open(path, "a") as f:
        f.write(json.dumps(kw) + "\n")


LATE = set()  # --late-report steps
held = []     # their CHECKPOINT= lines, sent after the next fault


def save(run_dir, step, epoch, attempt, nbytes, kind, salt=""):
    name = "step-%06d" % step
    tmp = os.path.join(run_dir, name + ".tmp")
    final = os.path.join(run_dir, name)
    notify("SAVING=1")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(os.path.join(tmp, "weights.bin"), "wb") as f:
        # with --salt the data also differs per attempt, so a rewritten
        # version never dedups onto the chunks of an earlier one
        seed = ("%s:%d:%d" % (salt, attempt, step)) if salt else str(step)
        chunk = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB
        left = nbytes
        while left > 0:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())
    vl = 1.0 / (1 + step) if BEST_AT is None else 1.0 + abs(step - BEST_AT) / 100.0
    state = {"step": step, "epoch": epoch, "val_loss": vl,
             "attempt": attempt, "type": kind, "format_version": 1}
    if CKPT_TRAIN_STATE:
        # ckpt-train's keys: this step's evaluation and the lowest so far,
        # no val_loss key and no metadata attribute
        global best_so_far
        best_so_far = min(best_so_far, vl)
        del state["val_loss"]
        state.update(last_val_loss=vl, last_val_step=step, best_val_loss=best_so_far)
    with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    for k, v in (("step", step), ("epoch", epoch), ("val_loss", state.get("val_loss"))):
        if v is None:
            continue
        try:
            os.setxattr(tmp, "user.ckpt.meta." + k, str(v).encode())
        except OSError:
            pass
    if os.path.exists(final):
        shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    if step in LATE:
        notify("SAVING=0")
        held.append("CHECKPOINT=%s" % final)
    else:
        notify("SAVING=0\nCHECKPOINT=%s" % final)
    return final


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--ckpt-every", type=int, default=10)
    ap.add_argument("--steps-per-epoch", type=int, default=10)
    ap.add_argument("--step-ms", type=float, default=10)
    ap.add_argument("--ckpt-bytes", type=int, default=4096)
    ap.add_argument("--fault", action="append", default=[])
    ap.add_argument("--trace")
    ap.add_argument("--salt", default="", help="mixed into the checkpoint data")
    ap.add_argument("--secret-env")
    ap.add_argument("--secret-sha256")
    ap.add_argument("--best-at", type=int)
    ap.add_argument("--ckpt-train-state", action="store_true")
    ap.add_argument("--report", action="append", default=[])
    ap.add_argument("--late-report", action="append", type=int, default=[])
    ap.add_argument("--symlink", action="append", default=[])
    ap.add_argument("--hold")
    args = ap.parse_args()
    global BEST_AT, CKPT_TRAIN_STATE
    BEST_AT = args.best_at
    CKPT_TRAIN_STATE = args.ckpt_train_state
    LATE.update(args.late_report)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    run_dir = os.environ.get("CKPT_RUN_DIR") or "."
    attempt = int(os.environ.get("CKPT_ATTEMPT", "1"))
    resume = os.environ.get("CKPT_RESUME_FROM")
    skip = int(os.environ.get("CKPT_SKIP_BATCHES", "0") or 0)
    os.makedirs(run_dir, exist_ok=True)
    for ln in args.symlink:
        name, target = ln.split("=", 1)
        if not os.path.lexists(os.path.join(run_dir, name)):
            os.symlink(target, os.path.join(run_dir, name))
    reports = {}
    for r in args.report:
        path, at = r.rsplit("@", 1)
        reports.setdefault(int(at), []).append(path.replace("{run}", run_dir))

    if args.secret_env:
        v = os.environ.get(args.secret_env, "")
        ok = hashlib.sha256(v.encode()).hexdigest() == args.secret_sha256
        trace(args.trace, event="secret", ok=ok)

    start = 1
    if resume:
        with open(os.path.join(resume, "trainer_state.json")) as f:
            st = json.load(f)
        start = st["step"] + 1 + skip
        loaded = 0
        with open(os.path.join(resume, "weights.bin"), "rb") as f:  # load the weights
            while True:
                b = f.read(8 << 20)
                if not b:
                    break
                loaded += len(b)
        trace(args.trace, event="loaded", attempt=attempt, bytes=loaded)
    trace(args.trace, event="start", attempt=attempt, resume=resume, start=start,
          pid=os.getpid(), restore_optimizer=os.environ.get("CKPT_RESTORE_OPTIMIZER"),
          skip=skip, gpus={k: os.environ.get(k) for k in (
              "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")})
    print("fake_trainer: attempt %d starting at step %d%s" %
          (attempt, start, " from " + resume if resume else ""), flush=True)

    faults = {}
    for f in args.fault:
        kind, rest = f.split("@", 1)
        parts = rest.split(":")
        step = int(parts[0])
        only = None
        for p in parts[1:]:
            if p.startswith("attempt="):
                only = int(p[8:])
        if only is None or only == attempt:
            faults[step] = kind

    poisoned = False
    notify("READY=1\nSTATUS=training")
    step = start
    while step <= args.steps:
        if stop and poisoned:
            # a trainer that knows its state is bad does not save it
            trace(args.trace, event="stopped_poisoned", attempt=attempt, step=step - 1)
            return 0
        if stop:
            save(run_dir, step - 1, (step - 1) // args.steps_per_epoch, attempt,
                 args.ckpt_bytes, "cancellation", args.salt)
            trace(args.trace, event="cancelled", attempt=attempt, step=step - 1)
            return 0
        time.sleep(args.step_ms / 1000.0)
        epoch = step // args.steps_per_epoch
        loss = 2.0 / (1 + 0.01 * step)
        kind = faults.get(step)
        if kind in ("nan", "inf", "spike", "corrupted"):
            poisoned = True
        if kind in ("nan", "inf"):
            trace(args.trace, event="fault", attempt=attempt, step=step)
            notify("STEP=%d\nEPOCH=%d\nLOSS=%s" % (step, epoch, kind))
        elif kind == "spike":
            notify("STEP=%d\nEPOCH=%d\nLOSS=%f" % (step, epoch, loss * 100))
        elif kind == "corrupted":
            notify("STEP=%d\nCORRUPTED=1\nREASON=injected at step %d" % (step, step))
        else:
            notify("STEP=%d\nEPOCH=%d\nLOSS=%f" % (step, epoch, loss))
        if kind and held:
            for h in held:
                notify(h)
            held.clear()
        for path in reports.get(step, []):
            notify("CHECKPOINT=%s" % path)
            trace(args.trace, event="reported", attempt=attempt, step=step, reported=path)
        if step == start:
            trace(args.trace, event="first_step", attempt=attempt, step=step)
        if kind == "exit1":
            trace(args.trace, event="crash", attempt=attempt, step=step)
            os._exit(1)
        if kind == "exit78":
            os._exit(78)
        if kind == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "sigsegv":
            signal.signal(signal.SIGSEGV, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGSEGV)
        if kind == "hang":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a real hang ignores it too
            trace(args.trace, event="hang", attempt=attempt, step=step)
            while True:
                time.sleep(1)
        if step % args.ckpt_every == 0:
            save(run_dir, step, epoch, attempt, args.ckpt_bytes, "periodic", args.salt)
        step += 1
    while args.hold and not os.path.exists(args.hold) and not stop:
        notify("STEP=%d\nSTATUS=holding" % args.steps)
        time.sleep(0.05)
    if args.hold and stop:
        save(run_dir, args.steps, args.steps // args.steps_per_epoch, attempt, args.ckpt_bytes,
             "cancellation", args.salt)
        trace(args.trace, event="cancelled", attempt=attempt, step=args.steps)
        return 0
    final = os.path.join(run_dir, "step-%06d" % args.steps)
    if args.steps % args.ckpt_every or not os.path.exists(final):
        final = save(run_dir, args.steps, args.steps // args.steps_per_epoch, attempt,
                     args.ckpt_bytes, "final", args.salt)
    notify("STOPPING=1\nSTATUS=done")
    trace(args.trace, event="done", attempt=attempt, final=final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
