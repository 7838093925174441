#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""soak_ckptd.py CKPTD_BIN CKPT_TRAIN_BIN [--minutes M] [--runs 8] [--rate 100]
                 [--mount plain|ckptfs --ckptfs BIN] [--json OUT]

A soak of a real ckptd (issue 18): RUNS supervised runs of the real ckpt-train
at once for M minutes (each saving every few seconds; a run that completes is
replaced by a new one, so RUNS are always running), the first with a NaN
injected (nan@STEP:attempt=1), the second with a hang (hang@STEP:attempt=1,
found by heartbeat_timeout_s), and RATE API requests a second spread over
every read endpoint. At the end no new runs start; the ones running finish.

The runs have resources.nice 10 (--trainer-nice): ckptd sets their nice and
their session's autogroup's, as a deployment that wants ckptd to answer
while trainers spin the CPUs would. With nice(1) in the command instead,
the kernel's autogroup made each trainer's session weigh as much as ckptd's
whole session, and ckptd waited on the run queue (docs/performance.md).

Reports: requests, errors by status, p50/p99 latency per endpoint and in
all, on the client's side (connect to last byte, over the Unix socket, from
a one-thread client process of its own) and on ckptd's (its Server-Timing
header: its time from the request's head read to its answer queued); how
long ckptd and the client waited for a CPU (schedstat); ckptd's RSS, CPU and open fds per minute (all
of them, and its own: less the API connections open in ckptd at that
moment, its fds of sockets accepted on ckptd.sock as /proc/net/unix lists
them, which follow the latency, not a leak; the client's count of its open
requests differed from ckptd's by several at the sampling moment, more
than 10% of its 20-30 own fds); events and operations counted
against what happened. Checks
(exit 1 when one fails):
  - 0 errors (every request answered 2xx), and the client reached 95% of RATE;
  - every detection recovered (2 detections, nan and hang, each followed by a
    new attempt from a checkpoint, and every run COMPLETED);
  - every committed version has exactly one checkpoint_committed event;
  - ckptd's counters agree with the events (ckptd_events_total = the events
    of all operations; detections and recoveries);
  - RSS and ckptd's own fds flat: the last minute's median within 10% of
    the second's
    (needs --minutes >= 3 to mean anything; with less it compares what it has).
  - p99 <= 50 ms (issue 18) on ckptd's side and on the client's; the
    client's also depends on how busy the machine is besides the soak.
"""
import argparse
import json
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "supervisor"))
from harness import Ckptd  # noqa: E402


def api_conn_inodes(sock):
    """Inodes of the connections accepted on the Unix socket `sock` now: in
    /proc/net/unix an accepted socket has its listener's path, but not its
    __SO_ACCEPTCON flag (0x10000)."""
    out = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            p = line.split()
            if len(p) >= 8 and p[7] == sock and not int(p[3], 16) & 0x10000:
                out.add(p[6])
    return out


def proc_sample(pid, sock):
    """RSS (KiB), open fds, CPU seconds (user + system) of a process, and
    how many of its fds are API connections (accepted on `sock`)."""
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    conns = api_conn_inodes(sock)
    fds, api = 0, 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        fds += 1
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        api += link.startswith("socket:[") and link[8:-1] in conns
    return rss, fds, cpu, api


def calibrate(tr, nice):
    """Steps a second of one tiny ckpt-train here (no checkpoints)."""
    import subprocess
    import tempfile
    d = tempfile.mkdtemp(prefix="soak-cal-")
    t = time.time()
    subprocess.run(["nice", "-n", str(nice), tr, "--model", "tiny", "--max-steps", "1000",
                    "--checkpoint-every-steps", "0", "--checkpoint-every-epochs", "0",
                    "--device", "cpu", "--run-dir", d], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    el = time.time() - t
    subprocess.run(["rm", "-rf", d])
    return 1000 / el


class Load:
    """RATE requests a second, each on a fresh connection, from a process of
    its own with one thread and non-blocking sockets (at most MAX_IN_FLIGHT
    at once). A request's time is its own: from its connect to its last
    byte. With a thread per request on a busy 2-core machine the clock also
    ran while a thread waited for the GIL behind the others' Python."""

    MAX_IN_FLIGHT = 32

    def __init__(self, d, rate):
        import multiprocessing as mp
        self.sock, self.rate = d.sock, rate
        self.ops = []  # ids to ask about (the parent's copy)
        self.results = []  # (endpoint, status, seconds)
        self.ctx = mp.get_context("fork")
        self.new_ops = self.ctx.Queue()
        self.stop_ev = self.ctx.Event()
        self.res_r, self.res_w = self.ctx.Pipe(duplex=False)
        self.inflight = self.ctx.Value("i", 0, lock=False)  # requests open now

    def add_op(self, opid):
        self.ops.append(opid)
        self.new_ops.put(opid)

    @staticmethod
    def targets(rnd, ops):
        op = rnd.choice(ops) if ops else None
        t = [("healthz", "/healthz"), ("metrics", "/metrics"),
             ("list", "/api/v1/operations"),
             ("list_filter", "/api/v1/operations?status=RUNNING,RECOVERING&limit=20"),
             ("daemon", "/api/v1/daemon"), ("gpus", "/api/v1/gpus"),
             ("ckpt_stats", "/api/v1/checkpoints/stats"), ("dashboard", "/")]
        if op:
            b = "/api/v1/operations/" + op
            t += [("op", b), ("events", b + "/events?limit=1000"),
                  ("events_after", b + "/events?after=%d" % rnd.randint(0, 200)),
                  ("logs", b + "/logs?limit=4096"), ("op_metrics", b + "/metrics"),
                  ("op_metrics_step", b + "/metrics?resolution=step"),
                  ("op_metrics_30s", b + "/metrics?resolution=30s"),
                  ("checkpoints", "/api/v1/checkpoints/" + op)]
        return t

    @staticmethod
    def complete(buf, eof):
        """The status of one answer once all of it is in `buf` (at `eof`,
        the server closed), else None; "exception short" when it closed
        before the Content-Length bytes came."""
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return "exception short" if eof else None
        head = buf[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        for h in head[1:]:
            k, _, v = h.partition(":")
            if k.strip().lower() == "content-length":
                if len(buf) - end - 4 >= int(v):
                    return status
                return "exception short" if eof else None
        return status if eof else None  # no length: until the server closes

    def run(self):
        import selectors
        import socket
        import queue
        rnd = random.Random(1)
        sel = selectors.DefaultSelector()
        ops, out, inflight = [], [], {}  # ops: what came through new_ops
        period = 1.0 / self.rate
        nxt = time.monotonic()

        def done(s, st):
            name, t0, buf = inflight.pop(s)
            out.append((name, st, time.perf_counter() - t0, server_ms(buf)))
            sel.unregister(s)
            s.close()

        # at the stop no new request starts; the ones in flight end
        while not self.stop_ev.is_set() or inflight:
            try:
                while True:
                    ops.append(self.new_ops.get_nowait())
            except queue.Empty:
                pass
            now = time.monotonic()
            while (now >= nxt and len(inflight) < self.MAX_IN_FLIGHT and
                   not self.stop_ev.is_set()):
                nxt += period
                name, path = rnd.choice(self.targets(rnd, ops))
                t0 = time.perf_counter()
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.settimeout(30)
                    s.connect(self.sock)
                    # close: ckptd's side goes with the answer (a kept-alive
                    # one would stay until ckptd noticed the client's close)
                    s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close"
                               "\r\n\r\n" % path).encode())
                    s.setblocking(False)
                except OSError as e:
                    out.append((name, "exception %s" % type(e).__name__,
                                time.perf_counter() - t0, None))
                    s.close()
                    continue
                inflight[s] = (name, t0, bytearray())
                sel.register(s, selectors.EVENT_READ)
            self.inflight.value = len(inflight)
            wait = max(0.0, nxt - time.monotonic()) if len(inflight) < self.MAX_IN_FLIGHT \
                else 0.05
            for key, _ in sel.select(min(wait, 0.05)):
                s = key.fileobj
                try:
                    chunk = s.recv(1 << 20)
                except BlockingIOError:
                    continue
                except OSError as e:
                    done(s, "exception %s" % type(e).__name__)
                    continue
                buf = inflight[s][2]
                buf += chunk
                st = self.complete(buf, not chunk)
                if st is not None:
                    done(s, st)
            t = time.perf_counter()
            for s, (name, t0, _) in list(inflight.items()):
                if t - t0 > 30:
                    done(s, "exception timeout")
        for s in list(inflight):
            done(s, "exception unfinished")
        self.res_w.send(out)

    def start(self):
        self.proc = self.ctx.Process(target=self.run, daemon=True)
        self.proc.start()

    def finish(self):
        self.stop_ev.set()
        self.results = self.res_r.recv()
        self.proc.join()


def server_ms(buf):
    """ckptd's own time on a request, its Server-Timing: ckptd;dur=MS."""
    end = buf.find(b"\r\n\r\n")
    for h in bytes(buf[:max(end, 0)]).decode("latin-1").split("\r\n")[1:]:
        k, _, v = h.partition(":")
        if k.strip().lower() == "server-timing" and "dur=" in v:
            try:
                return float(v.split("dur=", 1)[1].split(";")[0].split(",")[0])
            except ValueError:
                return None
    return None


def schedstat(pid):
    """(CPU ns, run-queue wait ns, slices) of every thread of a process:
    /proc/PID/task/*/schedstat. The wait is time runnable but not running."""
    tot = [0, 0, 0]
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return tot
    for t in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                for i, v in enumerate(f.read().split()[:3]):
                    tot[i] += int(v)
        except OSError:
            pass
    return tot


def autogroup(pid):
    try:
        with open("/proc/%d/autogroup" % pid) as f:
            return f.read().strip()
    except OSError:
        return "none (no autogroup in this kernel)"


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] if v else float("nan")


def prom(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckptd")
    ap.add_argument("ckpt_train")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--save-every-s", type=float, default=3,
                    help="seconds between checkpoints of a run (from a calibration)")
    ap.add_argument("--run-s", type=float, default=40, help="seconds one run lasts, about")
    ap.add_argument("--trainer-nice", type=int, default=10,
                    help="the runs' resources.nice (0: as ckptd)")
    ap.add_argument("--mount", default="plain", choices=["plain", "ckptfs"])
    ap.add_argument("--ckptfs", help="ckptfs binary for --mount ckptfs")
    ap.add_argument("--json", help="write the figures here too")
    a = ap.parse_args()

    sps = calibrate(a.ckpt_train, a.trainer_nice)
    # the runs share the CPUs: a run's rate is about the machine's / runs
    share = max(1.0, sps * min(os.cpu_count() or 1, a.runs) / a.runs)
    every = max(20, int(share * a.save_every_s))
    steps = max(every * 4, int(share * a.run_s) // every * every)
    fault_step = every * 2 + every // 2
    print("calibration: %.0f steps/s alone; a run: %d steps, a checkpoint every %d steps, "
          "faults at step %d" % (sps, steps, every, fault_step), flush=True)

    d = Ckptd(a.ckptd, config_extra="max_concurrent: %d\n" % a.runs)
    if a.mount == "ckptfs":
        cfg = "store: %s/store\nmount: %s/mnt\nckptfs: %s\nmax_concurrent: %d\ngpus: 0\n" % (
            d.tmp, d.tmp, a.ckptfs, a.runs)
        d = Ckptd(a.ckptd, config=cfg, tmp=d.tmp)
        d.mnt = os.path.join(d.tmp, "mnt")
    ok = True
    try:
        d.start()
        pid = d.proc.pid

        def submit(i, inject=None):
            cmd = [a.ckpt_train, "--model", "tiny",
                   "--max-steps", str(steps), "--checkpoint-every-steps", str(every),
                   "--checkpoint-every-epochs", "0", "--device", "cpu"]
            if inject:
                cmd += ["--inject", inject]
            return d.submit({"name": "soak-%d" % i, "model": "tiny", "command": cmd,
                             "resources": {"gpus": 0, "nice": a.trainer_nice},
                             "checkpoint": {"every_steps": every, "keep_last": 100000,
                                            "keep_best": 0},
                             "recovery": {"backoff_ms": 100, "max_backoff_ms": 1000,
                                          "grace_s": 5, "poll_interval_ms": 1000,
                                          "heartbeat_timeout_s": 5, "max_attempts": 3}})

        load = Load(d, a.rate)
        live, all_ops, n = [], [], 0
        for i in range(a.runs):
            inj = {0: "nan@%d:attempt=1" % fault_step,
                   1: "hang@%d:attempt=1" % fault_step}.get(i)
            live.append(submit(n, inj))
            n += 1
        all_ops += live
        for opid in live:
            load.add_op(opid)
        load.start()
        t0 = time.time()
        sched0 = {"ckptd": schedstat(pid), "client": schedstat(load.proc.pid)}
        trainer_ag = None
        end = t0 + a.minutes * 60
        samples = []  # (seconds since start, rss KiB, fds, cpu s, API connections)
        last_sample = 0
        while time.time() < end:
            now = time.time()
            if now - last_sample >= 5:
                samples.append((now - t0,) + proc_sample(pid, os.path.realpath(d.sock)))
                last_sample = now
            if trainer_ag is None and now - t0 > 10:
                st, o = d.req("GET", "/api/v1/operations/" + live[-1])
                tp = o.get("pid") if st == 200 else None
                if tp:
                    trainer_ag = autogroup(tp)
            for opid in list(live):
                st, o = d.req("GET", "/api/v1/operations/" + opid)
                if st == 200 and o["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    live.remove(opid)
                    if time.time() < end - a.run_s / 2:
                        new = submit(n)
                        n += 1
                        live.append(new)
                        all_ops.append(new)
                        load.add_op(new)
            time.sleep(1)
        samples.append((time.time() - t0,) + proc_sample(pid, os.path.realpath(d.sock)))
        sched = {k: [b - a for a, b in zip(v, schedstat(pid if k == "ckptd" else load.proc.pid))]
                 for k, v in sched0.items()}
        sched["seconds"] = time.time() - t0
        sched["trainer_autogroup"] = trainer_ag
        load.finish()
        # the runs still going finish (no new ones), then the counts
        for opid in live:
            d.wait_status(opid, ["COMPLETED", "FAILED", "CANCELLED"], timeout=600)
        fig = report(d, a, load, samples, all_ops, sched)
        ok = fig["ok"]
        if a.json:
            with open(a.json, "w") as f:
                json.dump(fig, f, indent=1)
        f = d.sanitizer_findings()
        if f:
            print("SANITIZER:", f)
            ok = False
    finally:
        d.cleanup()
    print("soak: %s" % ("all checks passed" if ok else "FAILED"))
    return 0 if ok else 1


def report(d, a, load, samples, all_ops, sched):
    checks = []
    res = load.results
    lat = [r[2] * 1000 for r in res]
    srv = [r[3] for r in res if r[3] is not None]
    errs = {}
    for name, st, _, _ in res:
        if not (isinstance(st, int) and 200 <= st < 300):
            errs["%s %s" % (st, name)] = errs.get("%s %s" % (st, name), 0) + 1
    dur = samples[-1][0] if samples else 1
    print("requests: %d in %.0f s (%.1f/s), errors: %d %s" %
          (len(res), dur, len(res) / dur, sum(errs.values()), errs or ""))
    print("latency ms, client side (connect to last byte): p50 %.2f p99 %.2f max %.2f "
          "(issue 18: p99 <= 50)" % (pct(lat, 50), pct(lat, 99), max(lat) if lat else 0))
    print("latency ms, ckptd side (Server-Timing: head read to answer queued; %d of %d "
          "answers): p50 %.2f p99 %.2f max %.2f" % (len(srv), len(res), pct(srv, 50),
                                                    pct(srv, 99), max(srv) if srv else 0))
    by, bys = {}, {}
    for name, _, s, sv in res:
        by.setdefault(name, []).append(s * 1000)
        if sv is not None:
            bys.setdefault(name, []).append(sv)
    print("  %-16s %5s   client: %7s %7s   ckptd: %7s %7s" % ("endpoint", "n", "p50", "p99",
                                                                "p50", "p99"))
    for name in sorted(by):
        sv = bys.get(name, [])
        print("  %-16s %5d           %7.2f %7.2f          %7.2f %7.2f" %
              (name, len(by[name]), pct(by[name], 50), pct(by[name], 99), pct(sv, 50),
               pct(sv, 99)))
    # what the client's time is besides ckptd's: waits for a CPU (run queue)
    secs = sched["seconds"]
    print("run-queue wait (/proc/PID/task/*/schedstat: runnable, not running) over %.0f s; "
          "trainers at resources.nice %d, a trainer's %s" %
          (secs, a.trainer_nice, sched["trainer_autogroup"]))
    for k in ("ckptd", "client"):
        cpu, wait, slices = sched[k]
        print("  %-6s CPU %5.1f%% of a core, waited %5.1f%% of the time, %.3f ms a wait "
              "(%d slices)" % (k, 100 * cpu / 1e9 / secs, 100 * wait / 1e9 / secs,
                               wait / 1e6 / max(slices, 1), slices))
    checks.append(("0 errors", not errs))
    checks.append(("p99 <= 50 ms on ckptd's side (%.1f)" % pct(srv, 99), pct(srv, 99) <= 50))
    checks.append(("p99 <= 50 ms on the client's side (%.1f)" % pct(lat, 99),
                   pct(lat, 99) <= 50))
    # the load itself: a busy machine can starve the client (Python threads)
    checks.append(("the load reached %.0f requests/s (got %.1f)" % (a.rate, len(res) / dur),
                   len(res) / dur >= 0.95 * a.rate))

    # RSS and fds per minute: the median of the 5 s samples in each minute
    minutes = {}
    for t, rss, fds, cpu, api in samples:
        minutes.setdefault(int(t // 60), []).append((rss, fds, cpu, t, api))
    per_min = []
    print("ckptd per minute (median of 5 s samples; CPU: its share of one core; own fds: "
          "less its API connections): minute rss_MiB fds own_fds cpu%")
    for m in sorted(minutes):
        rss = statistics.median(x[0] for x in minutes[m]) / 1024
        fds = statistics.median(x[1] for x in minutes[m])
        own = statistics.median(x[1] - x[4] for x in minutes[m])
        x0, x1 = minutes[m][0], minutes[m][-1]
        cpu = 100 * (x1[2] - x0[2]) / (x1[3] - x0[3]) if x1[3] > x0[3] else 0
        per_min.append((m + 1, rss, fds, cpu, own))
        print("  %3d %8.1f %5.0f %7.0f %5.1f" % (m + 1, rss, fds, own, cpu))
    print("load average at the end: %.1f %.1f %.1f" % os.getloadavg())
    full = [p for p in per_min if len(minutes[p[0] - 1]) >= 6]  # whole-ish minutes
    if len(full) >= 2:
        second, last = full[min(1, len(full) - 1)], full[-1]
        flat = (last[1] <= second[1] * 1.10 and last[4] <= second[4] * 1.10)
        print("flat: last minute %d vs minute %d: rss %.1f / %.1f MiB, own fds %.0f / %.0f "
              "(all fds %.0f / %.0f)" % (last[0], second[0], last[1], second[1], last[4],
                                        second[4], last[2], second[2]))
        checks.append(("RSS and own fds flat (last minute within 10%% of minute %d)" %
                       second[0], flat))

    # operations and events against what happened
    evs_all, statuses, one_each = [], {}, []
    for opid in all_ops:
        o = d.op(opid)
        statuses[o["status"]] = statuses.get(o["status"], 0) + 1
        evs = d.events(opid)
        evs_all += evs
        run = o["run_dir"]
        vers = sorted(os.path.join(run, v) for v in os.listdir(run)
                      if v.startswith("step-") and not v.endswith(".tmp")) \
            if os.path.isdir(run) else []
        com = {}
        for e in evs:
            if e["event"] == "checkpoint_committed":
                com.setdefault(e["checkpoint"], []).append(e)
        if sorted(com) != vers or any(len(v) != 1 for v in com.values()):
            one_each.append((opid, sorted(set(vers) - set(com)), sorted(set(com) - set(vers)),
                             {k: len(v) for k, v in com.items() if len(v) != 1}))
        # every detection recovered: a later new attempt in the same operation
        for e in evs:
            if e["event"] == "detected":
                later = [x for x in evs if x["seq"] > e["seq"] and
                         x["event"] in ("client_created", "resumed") and
                         x["attempt"] == e["attempt"] + 1]
                e["_recovered"] = bool(later) and o["status"] == "COMPLETED"
    kinds = {}
    for e in evs_all:
        kinds[e["event"]] = kinds.get(e["event"], 0) + 1
    det = [e for e in evs_all if e["event"] == "detected"]
    commits = kinds.get("checkpoint_committed", 0)
    print("operations: %d submitted, by status %s" % (len(all_ops), statuses))
    print("events: %d %s" % (len(evs_all), dict(sorted(kinds.items()))))
    print("detections: %s" % [(e["operation"][-6:], e["attempt"], e["reason"],
                               e["_recovered"]) for e in det])
    st, txt = d.req("GET", "/metrics")
    m = prom(txt) if st == 200 else {}
    print("ckptd /metrics: events_total %d, detections nan %d corrupted %d hang %d, "
          "recoveries %d, notify datagrams %d, rejected %d" %
          (m.get("ckptd_events_total", -1), m.get('ckptd_detections_total{reason="nan"}', -1),
           m.get('ckptd_detections_total{reason="corrupted"}', -1),
           m.get('ckptd_detections_total{reason="hang"}', -1),
           m.get("ckptd_recoveries_total", -1), m.get("ckptd_notify_datagrams_total", -1),
           m.get("ckptd_notify_rejected_total", -1)))
    checks.append(("every run COMPLETED", statuses.get("COMPLETED", 0) == len(all_ops)))
    checks.append(("2 detections (nan, hang), each recovered",
                   sorted(e["reason"].split()[0] for e in det) != [] and len(det) == 2 and
                   all(e["_recovered"] for e in det)))
    checks.append(("every committed version has one checkpoint_committed event (%d)" % commits,
                   not one_each))
    if one_each:
        print("  versions/events that differ (op, versions without, events without, dups):",
              one_each[:5])
    checks.append(("ckptd_events_total = the operations' events",
                   m.get("ckptd_events_total") == len(evs_all)))
    # a NaN comes with CORRUPTED=1 from ckpt-train: counted as nan or corrupted
    nan = m.get('ckptd_detections_total{reason="nan"}', 0) + m.get(
        'ckptd_detections_total{reason="corrupted"}', 0)
    checks.append(("ckptd's detections: 1 nan/corrupted, 1 hang, no other; 2 recoveries",
                   nan == 1 and m.get('ckptd_detections_total{reason="hang"}') == 1 and
                   sum(v for k, v in m.items() if k.startswith("ckptd_detections_total")) == 2 and
                   m.get("ckptd_recoveries_total") == 2))
    ok = True
    for name, good in checks:
        print("check: %-70s %s" % (name, "ok" if good else "FAILED"))
        ok &= bool(good)
    return {"requests": len(res), "seconds": dur, "errors": errs,
            "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "ckptd_p50_ms": pct(srv, 50), "ckptd_p99_ms": pct(srv, 99), "sched": sched,
            "per_minute": per_min,
            "operations": len(all_ops), "statuses": statuses, "events": kinds,
            "detections": [e["reason"] for e in det], "checks": checks, "ok": ok}


if __name__ == "__main__":
    sys.exit(main())
