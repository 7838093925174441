#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark of ckpt-train's checkpoint saves: async vs sync.

For each mode (none, async, sync) it trains PRESET for STEPS steps with one
checkpoint after step SAVE_AT (none: no checkpoint until the end), times
every step from the STEP reports on a notify socket, and reads the trainer's
own per-save figures from stderr. It prints:

  blocking   how long the training loop was held by the save
             (ckpt-train's "save step N ... blocking_s"); goal: async <= 5% of sync
  overhead   extra training time caused by one checkpoint: the sum of the step
             intervals from SAVE_AT to the end, minus the same number of
             median pre-save intervals; includes the validation pass that
             every checkpoint runs for its val_loss metadata, the snapshot and,
             for async, the writer thread competing for CPU and memory.
             At one checkpoint a minute the overhead fraction is overhead/60 s;
             goal <= 1%.

Usage: bench_save.py CKPT_TRAIN [--model large] [--steps 14] [--save-at 4]
                     [--dir DIR] [--threads 1] [--modes none,async,sync,async+eval]
                     [--repeat N] [--device cpu|cuda] [--batch-size B]
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def run_once(train, args, mode, workdir):
    run_dir = os.path.join(workdir, "run-" + mode)
    sock_path = os.path.join(workdir, "notify-" + mode)
    shutil.rmtree(run_dir, ignore_errors=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(0.2)
    times = {}
    done = [False]

    def loop():
        while not done[0]:
            try:
                d = s.recv(8192).decode()
            except socket.timeout:
                continue
            t = time.monotonic()
            kv = dict(l.split("=", 1) for l in d.split("\n") if l)
            if "LOSS" in kv and "STEP" in kv:
                times[int(kv["STEP"])] = t

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    cmd = [train, "--model", args.model, "--max-steps", str(args.steps),
           "--checkpoint-every-epochs", "0", "--threads", str(args.threads),
           "--run-dir", run_dir, "--device", args.device]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if mode != "none":
        cmd += ["--checkpoint-every-steps", str(args.save_at)]
    if mode.startswith("sync"):
        cmd += ["--sync-save"]
    if not mode.endswith("+eval"):
        cmd += ["--no-checkpoint-eval"]
    env = dict(os.environ, CKPT_NOTIFY_SOCKET=sock_path)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    time.sleep(0.5)
    done[0] = True
    th.join()
    s.close()
    os.unlink(sock_path)
    shutil.rmtree(run_dir, ignore_errors=True)
    if p.returncode != 0:
        sys.exit("ckpt-train failed (%d):\n%s" % (p.returncode, p.stderr))
    blocking = write = None
    m = re.search(r"save step %d \(\w+\) blocking_s=([0-9.]+)" % args.save_at, p.stderr)
    if m and mode != "none":
        blocking = float(m.group(1))
    m = re.search(r"step-%08d committed \(periodic\) write_s=([0-9.]+)" % args.save_at, p.stderr)
    if m and mode != "none":
        write = float(m.group(1))
    m = re.search(r"train_cpu_s ([0-9.]+)", p.stdout)
    train_cpu = float(m.group(1)) if m else None
    m = re.search(r"writer_cpu_s=([0-9.]+)", p.stderr)
    writer_cpu = float(m.group(1)) if m and mode.startswith("async") else None
    steps = sorted(times)
    if steps != list(range(1, args.steps + 1)):
        sys.exit("missing STEP reports: %s" % steps)
    iv = {i: times[i + 1] - times[i] for i in range(1, args.steps)}
    base = statistics.median(iv[i] for i in range(1, args.save_at))
    after = [iv[i] for i in range(args.save_at, args.steps)]
    overhead = sum(after) - len(after) * base
    return {"mode": mode, "step_s": base, "blocking_s": blocking, "write_s": write,
            "overhead_s": overhead, "save_interval_s": iv[args.save_at],
            "writer_cpu_s": writer_cpu, "train_cpu_s": train_cpu}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("--model", default="large")
    ap.add_argument("--steps", type=int, default=14)
    ap.add_argument("--save-at", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=0)
    ap.add_argument("--modes", default="none,async,sync",
                    help="none, async, sync, async+eval (validation at the checkpoint)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per mode, interleaved")
    args = ap.parse_args()
    modes = args.modes.split(",")
    workdir = tempfile.mkdtemp(prefix="bench-ckpt-train-", dir=args.dir)
    runs = {m: [] for m in modes}
    try:
        for _ in range(args.repeat):
            for m in modes:
                runs[m].append(run_once(args.train, args, m, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("preset=%s steps=%d save_at=%d threads=%d repeat=%d dir=%s" % (
        args.model, args.steps, args.save_at, args.threads, args.repeat,
        args.dir or tempfile.gettempdir()))
    med = {}
    for m in modes:
        for r in runs[m]:
            print("  run %-10s step_s=%.3f save_interval_s=%.3f blocking_s=%s write_s=%s"
                  " overhead_s=%.3f writer_cpu_s=%s train_cpu_s=%.3f" % (
                      r["mode"], r["step_s"], r["save_interval_s"],
                      "-" if r["blocking_s"] is None else "%.4f" % r["blocking_s"],
                      "-" if r["write_s"] is None else "%.3f" % r["write_s"], r["overhead_s"],
                      "-" if r["writer_cpu_s"] is None else "%.3f" % r["writer_cpu_s"],
                      r["train_cpu_s"]))
        med[m] = {k: (statistics.median(r[k] for r in runs[m])
                      if runs[m][0][k] is not None else None)
                  for k in ("step_s", "blocking_s", "write_s", "overhead_s", "train_cpu_s")}
        o = med[m]["overhead_s"]
        print("median %-10s blocking_s=%s overhead_s=%.3f overhead_at_1_per_min=%.2f%%" % (
            m, "-" if med[m]["blocking_s"] is None else "%.4f" % med[m]["blocking_s"], o,
            100 * o / 60))
    if "none" in med:
        for m in modes:
            if m != "none":
                d = med[m]["train_cpu_s"] - med["none"]["train_cpu_s"]
                print("%-10s training-thread CPU vs none: %+.3f s per checkpoint = %+.2f%% at one"
                      " a minute" % (m, d, 100 * d / 60))
    if "async" in med and "sync" in med:
        a, s = med["async"]["blocking_s"], med["sync"]["blocking_s"]
        print("async blocking / sync blocking = %.2f%% (goal <= 5%%)" % (100 * a / s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
