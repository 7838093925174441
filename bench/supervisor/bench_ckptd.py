#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_ckptd.py CKPTD_BIN [--runs N] [--gib G] [--mount ckptfs|plain]
                [--ckptfs BIN] [--ckptfs-opts OPTS]

Supervisor latencies with a real ckptd and the fake trainer of
tests/supervisor (Python, so its interpreter start-up is inside figure 2):

 1. crash -> `detected`: the trainer's time just before _exit(1) (its trace)
    to the `detected` event's time (ms resolution). Goal: median <= 50 ms.
 2. restart decision -> trainer exec: the `checkpoint_selected` event (with
    backoff_ms 0 that is the restart decision) to the first line the new
    trainer runs (after python3 start-up). Goal: <= 0.5 s.
 3. fault -> first resumed step with a G GiB checkpoint, backoff excluded:
    the NaN report to the first step of the resumed attempt, which first reads
    the whole checkpoint back; minus delay_ms (0 here). Goal: <= 3 s.
    Split into stop (detected -> selected: SIGTERM until the trainer is
    gone), selected -> the resumed trainer's exec (ckptd's relaunch), exec
    -> checkpoint read (python3's start-up and the read of G GiB), and the
    first step.

With --ckptfs-opts (e.g. resident=2G) ckptd starts ckptfs with `-o OPTS`
(its config's mount_options); without it, with ckptfs's defaults.

Prints one line per figure with median / min / max over the runs.
"""
import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "supervisor"))
from harness import Ckptd, fake_cmd, trace  # noqa: E402


def ev_time(e):
    return datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


def one(d, args, name, *fault, ckpt_bytes=4096, steps=12, every=5):
    tr = os.path.join(d.tmp, name)
    # /bin/sh stamps the moment the trainer's command starts (exec + ~2 ms),
    # before python3's own start-up
    cmd = ["/bin/sh", "-c", 'date +%s.%N >> "$0"; exec "$@"', tr + ".exec"] + fake_cmd(
        d.tmp, "--steps", str(steps), "--ckpt-every", str(every), "--step-ms", "5",
        "--ckpt-bytes", str(ckpt_bytes), *fault, name=name)
    opid = d.submit({"name": "bench", "command": cmd,
        "recovery": {"backoff_ms": 0, "max_backoff_ms": 0, "grace_s": 5,
                     "poll_interval_ms": 60000}})
    d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=600)
    return d.events(opid), trace(tr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckptd")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--big-runs", type=int, default=3)
    ap.add_argument("--mount", default="plain", choices=["plain", "ckptfs"])
    ap.add_argument("--ckptfs", help="ckptfs binary for --mount ckptfs")
    ap.add_argument("--ckptfs-opts", help="ckptd mounts ckptfs with -o OPTS (mount_options)")
    a = ap.parse_args()
    if a.mount == "ckptfs" and not a.ckptfs:
        a.ckptfs = os.path.join(os.path.dirname(os.path.abspath(a.ckptd)), "..", "fs", "fuse",
                                "ckptfs")

    cfg = None
    d = Ckptd(a.ckptd)
    if a.mount == "ckptfs":
        cfg = "store: %s/store\nmount: %s/mnt\nckptfs: %s\n" % (d.tmp, d.tmp, a.ckptfs)
        if a.ckptfs_opts:
            cfg += "mount_options: %s\n" % a.ckptfs_opts
        d = Ckptd(a.ckptd, config=cfg, tmp=d.tmp)
        d.mnt = os.path.join(d.tmp, "mnt")
    try:
        d.start()
        det, dec, dexec = [], [], []
        for i in range(a.runs):
            evs, tr = one(d, a, "trace%d" % i, "--fault", "exit1@7:attempt=1")
            crash = [t for t in tr if t["event"] == "crash"][0]["time"]
            detected = ev_time([e for e in evs if e["event"] == "detected"][0])
            sel = ev_time([e for e in evs if e["event"] == "checkpoint_selected"][0])
            start2 = [t for t in tr if t["event"] == "start" and t["attempt"] == 2][0]["time"]
            with open(os.path.join(d.tmp, "trace%d.exec" % i)) as f:
                ex = float(f.read().split()[1])
            dexec.append((ex - sel) * 1000)
            det.append((detected - crash) * 1000)
            dec.append((start2 - sel) * 1000)
        big, stop, relaunch, load, bexec, bread = [], [], [], [], [], []
        nbytes = int(a.gib * (1 << 30))
        for i in range(a.big_runs):
            evs, tr = one(d, a, "big%d" % i, "--fault", "nan@7:attempt=1",
                          ckpt_bytes=nbytes, steps=40, every=5)
            fault = [t for t in tr if t["event"] == "fault"][0]["time"]
            first = [t for t in tr if t["event"] == "first_step" and t["attempt"] == 2][0]["time"]
            delay = [e for e in evs if e["event"] == "checkpoint_selected"][0]["delay_ms"]
            ld = [t for t in tr if t["event"] == "loaded"][0]
            loaded = ld["bytes"]
            assert loaded == nbytes, "the resumed trainer loaded %d bytes" % loaded
            big.append((first - fault) * 1000 - delay)
            dt = ev_time([e for e in evs if e["event"] == "detected"][0])
            st = ev_time([e for e in evs if e["event"] == "checkpoint_selected"][0])
            s2 = [t for t in tr if t["event"] == "start" and t["attempt"] == 2][0]["time"]
            stop.append((st - dt) * 1000)
            relaunch.append((s2 - st) * 1000 - delay)
            with open(os.path.join(d.tmp, "big%d.exec" % i)) as f:
                ex = float(f.read().split()[1])
            bexec.append((ex - st) * 1000 - delay)
            bread.append((ld["time"] - ex) * 1000)
            load.append((first - s2) * 1000)

        def line(name, xs, unit, goal):
            print("%-48s median %8.1f %s  min %8.1f  max %8.1f  (n=%d, goal %s)" %
                  (name, statistics.median(xs), unit, min(xs), max(xs), len(xs), goal))
        print("ckptd bench (%s tree%s, %s, load %s)" % (
            a.mount, " -o " + a.ckptfs_opts if a.ckptfs_opts else "",
            time.strftime("%Y-%m-%d %H:%M:%S"), " ".join(open("/proc/loadavg").read().split()[:3])))
        line("crash -> detected", det, "ms", "<= 50 ms median")
        line("restart decision -> trainer exec (kernel)", dexec, "ms", "<= 500 ms")
        line("restart decision -> trainer's first line", dec, "ms", "(incl. python3 start)")
        line("fault -> first resumed step, %.2f GiB ckpt" % a.gib, big, "ms", "<= 3000 ms")
        line("  of which: stop (SIGTERM, trainer exits)", stop, "ms", "-")
        line("  of which: select, relaunch, load (python3)", relaunch, "ms", "-")
        line("    selected -> trainer exec (ckptd)", bexec, "ms", "-")
        line("    exec -> checkpoint read (python3 + read)", bread, "ms", "-")
        line("  of which: first step", load, "ms", "-")
        return 0
    finally:
        d.cleanup()


if __name__ == "__main__":
    sys.exit(main())
