#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_rdzv.py CKPTD_BIN [--runs N]

A gang across hosts (docs/ranks.md "Many hosts"): rank fault -> first step
of every resumed rank, 2 hosts x 2 ranks, backoff 0, with the two-ckptd,
one-tree, real-etcd setup of tests/supervisor/test_rdzv.py; side by side
with the same 4 fake ranks as one gang on one host (no etcd: the best
direct path ckptd has). The fault is rank 2 (on hostB) exiting 1; "first
step" is the moment the last of the 4 resumed ranks has done its first step
(fake_rank.py's first_step trace). The checkpoint is tiny (fake_rank reads
a state file), so the figure is the coordination's cost alone; the goal is
<= 1 s plus the time to read the checkpoint.

Prints median / min / max per figure, the ratio of the two medians, and
`uptime` before and after (the machine is shared)."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "supervisor"))
from harness import Ckptd, trace  # noqa: E402
from test_rdzv import FAKE_RANK, Gang  # noqa: E402

ARGS = ["--steps", "30", "--step-ms", "20", "--ckpt-every", "5", "--shard-kib", "16",
        "--fault", "exit1@12:rank=2"]
REC = {"backoff_ms": 0, "max_backoff_ms": 0, "grace_s": 5, "poll_interval_ms": 200}


def ev_time(e):
    return datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


def figures(tr, since):
    ts = [t for t in tr if t["time"] >= since]
    fault = [t for t in ts if t["event"] == "fault"][0]["time"]
    first = [t["time"] for t in ts if t["event"] == "first_step" and t["attempt"] == 2]
    assert len(first) == 4, "resumed ranks: %d" % len(first)
    return fault, max(first)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckptd")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    up0 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    many, one, prop, plan = [], [], [], []
    g = Gang(a.ckptd)
    try:
        for h in g.hosts:
            h.start()
        g.etcd.start()
        for i in range(a.runs):
            t0 = time.time()
            ids = g.submit("bench%d" % i, *ARGS, recovery=REC)
            g.wait_all(ids, ["COMPLETED", "FAILED"], 120)
            fault, first = figures(trace(g.trace), t0)
            many.append((first - fault) * 1000)
            da = ev_time([e for e in g.hosts[0].events(ids[0]) if e["event"] == "detected"][0])
            db = ev_time([e for e in g.hosts[1].events(ids[1]) if e["event"] == "detected"][0])
            sel = max(ev_time([e for e in h.events(x) if e["event"] == "checkpoint_selected"][0])
                      for h, x in zip(g.hosts, ids))
            prop.append((da - db) * 1000)
            plan.append((sel - max(da, db)) * 1000)
    finally:
        g.close()
        shutil.rmtree(g.tmp, ignore_errors=True)
    d = Ckptd(a.ckptd)
    try:
        d.start()
        tr = os.path.join(d.tmp, "trace")
        for i in range(a.runs):
            t0 = time.time()
            opid = d.submit({"name": "bench", "command": [sys.executable, FAKE_RANK, "--trace",
                                                          tr] + ARGS,
                             "resources": {"procs_per_node": 4, "gpus": 0}, "recovery": REC})
            d.wait_status(opid, ["COMPLETED", "FAILED"], 120)
            fault, first = figures(trace(tr), t0)
            one.append((first - fault) * 1000)
    finally:
        d.cleanup()
    up1 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    def line(name, xs, goal):
        print("%-58s median %7.1f ms  min %7.1f  max %7.1f  (n=%d, %s)" %
              (name, statistics.median(xs), min(xs), max(xs), len(xs), goal))
    print("rdzv bench (%s); uptime before: %s" % (time.strftime("%Y-%m-%d %H:%M:%S"), up0))
    line("2 hosts x 2 ranks: rank fault -> every rank's first step", many,
         "goal <= 1000 ms + checkpoint read")
    line("  of which: hostB detected -> hostA detected (etcd watch)", prop, "-")
    line("  of which: last detected -> checkpoint_selected", plan, "stop + rendezvous + plan")
    line("1 host x 4 ranks (no etcd): the same", one, "direct path")
    print("ratio 2 hosts / 1 host (medians): %.2f" % (statistics.median(many) /
                                                      statistics.median(one)))
    print("uptime after: %s" % up1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
