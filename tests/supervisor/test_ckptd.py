#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_ckptd.py CKPTD_BIN CASE - integration tests of ckptd with real
processes: a real ckptd, real shims and fake trainers (fake_trainer.py),
real SQLite, real kill -9. One case per meson test; exit 0 pass, 1 fail,
77 skip."""
import concurrent.futures
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Ckptd, Fail, Skip, check, fake_cmd, pid_alive, trace  # noqa: E402

FAST = {"backoff_ms": 50, "max_backoff_ms": 1000, "grace_s": 2, "poll_interval_ms": 200}


def spec(d, *args, recovery=None, trace_name="trace", **kw):
    rec = dict(FAST)
    rec.update(recovery or {})
    s = {"name": "t", "command": fake_cmd(d.tmp, *args, name=trace_name), "recovery": rec}
    s.update(kw)
    return s


def names(evs):
    return [e["event"] for e in evs]


def subseq(want, got):
    it = iter(got)
    return all(any(w == g for g in it) for w in want)


def t_nan(d):
    # checkpoints every 5 steps: step 25's is written right after the NaN
    # report, so it is a poisoned version that selection must skip
    opid = d.submit(spec(d, "--steps", "40", "--ckpt-every", "5", "--fault",
                         "nan@25:attempt=1"))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s" % o["status"])
    check(os.path.exists(os.path.join(o["run_dir"], "step-000025")), "no poisoned version")
    evs = names(d.events(opid))
    check(subseq(["submitted", "started", "detected", "checkpoint_selected", "client_created",
                  "completed"], evs), "events out of order: %s" % evs)
    check(evs.count("completed") == 1 and evs.count("detected") == 1, "events %s" % evs)
    det = [e for e in d.events(opid) if e["event"] == "detected"][0]
    check("nan" in det["reason"] and det["step"] == 25, "detected %s" % det)
    sel = [e for e in d.events(opid) if e["event"] == "checkpoint_selected"][0]
    check(sel["checkpoint"].endswith("/step-000020"), "selected %s" % sel["checkpoint"])
    tr = [t for t in trace(os.path.join(d.tmp, "trace")) if t["event"] == "start"]
    check(len(tr) == 2 and tr[1]["attempt"] == 2 and tr[1]["start"] == 21,
          "trainer starts %s" % tr)
    check(tr[1]["restore_optimizer"] == "1", "CKPT_RESTORE_OPTIMIZER %s" % tr[1])


def crash(kind, sig):
    def t(d):
        opid = d.submit(spec(d, "--steps", "30", "--fault", "%s@15:attempt=1" % kind))
        o = d.wait_status(opid, ["COMPLETED", "FAILED"])
        check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
        det = d.wait_event(opid, "detected")
        want = "exit status 1" if sig is None else "signal %d" % sig
        check(want in det["reason"], "detected reason %r, wanted %r" % (det["reason"], want))
        check(o["attempt"] == 2 and o["recoveries"] == 1, "attempts %s" % o["attempt"])
        sel = d.wait_event(opid, "checkpoint_selected")
        check(sel["checkpoint"].endswith("step-000010"), "selected %s" % sel["checkpoint"])
    return t


def t_hang(d):
    # the timeout covers the resumed trainer's start too: 1 s was less than
    # a Python start under a loaded CI machine (attempts 2 and 3 "hung")
    opid = d.submit(spec(d, "--steps", "30", "--fault", "hang@15:attempt=1",
                         recovery={"heartbeat_timeout_s": 3, "grace_s": 1}))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s" % o["status"])
    det = d.wait_event(opid, "detected")
    check(det["reason"].startswith("hang"), "detected %s" % det["reason"])
    # the hung trainer ignored SIGTERM: it must have been SIGKILLed after grace
    hung = [t for t in trace(os.path.join(d.tmp, "trace")) if t["event"] == "start"][0]["pid"]
    check(not pid_alive(hung), "the hung trainer %d is still alive" % hung)


def t_exit78(d):
    opid = d.submit(spec(d, "--steps", "30", "--fault", "exit78@12"))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "FAILED" and "78" in o["reason"], "status %s %s" % (o["status"],
                                                                          o["reason"]))
    time.sleep(0.5)
    evs = names(d.events(opid))
    check("client_created" not in evs and "detected" not in evs, "retried: %s" % evs)
    check(o["attempt"] == 1, "attempt %d" % o["attempt"])
    check(o["resumable"] is True, "a FAILED op with a checkpoint is resumable")


def t_exhausted(d):
    marker = os.path.join(d.tmp, "on_failure_ran")
    opid = d.submit(spec(d, "--steps", "30", "--ckpt-every", "2", "--fault", "exit1@5",
                         recovery={"max_attempts": 3,
                                   "on_failure": ["/bin/sh", "-c",
                                                  'echo "$CKPT_OPERATION_ID $CKPT_STATUS" > %s'
                                                  % marker],
                                   "on_recovery": ["/bin/false"]}))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "FAILED", "status %s" % o["status"])
    evs = names(d.events(opid))
    check(evs.count("client_created") == 2 and "exhausted" in evs and "failed" in evs,
          "events %s" % evs)
    check(evs.index("exhausted") < evs.index("failed"), "order %s" % evs)
    for _ in range(100):
        if os.path.exists(marker):
            break
        time.sleep(0.05)
    check(os.path.exists(marker), "on_failure hook did not run")
    with open(marker) as f:
        check(f.read().split() == [opid, "FAILED"], "hook env wrong")
    check(d.req("GET", "/healthz")[0] == 200, "ckptd died after a failing on_recovery hook")


def t_backoff(d):
    opid = d.submit(spec(d, "--steps", "30", "--ckpt-every", "1", "--fault", "exit1@3",
                         recovery={"max_attempts": 4, "backoff_ms": 200,
                                   "max_backoff_ms": 500}))
    d.wait_status(opid, ["FAILED", "COMPLETED"], timeout=40)
    evs = d.events(opid)
    sels = [e for e in evs if e["event"] == "checkpoint_selected"]
    check([e["delay_ms"] for e in sels] == [200, 400, 500],
          "delays %s (want 200, 400, 500)" % [e["delay_ms"] for e in sels])
    from datetime import datetime

    def t(e):
        return datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
    cre = [e for e in evs if e["event"] == "client_created"]
    check(len(cre) == 3, "client_created %d" % len(cre))
    for s, c in zip(sels, cre):
        gap = (t(c) - t(s)) * 1000
        # the restart never comes before the delay (1 ms clock rounding)
        check(gap >= s["delay_ms"] - 2, "restart after %.0f ms, delay %d" % (gap, s["delay_ms"]))


def flip(path):
    with open(path, "r+b") as f:
        b = f.read(1)
        f.seek(0)
        f.write(bytes([b[0] ^ 0x5A]))


def t_corrupt_newest(d):
    opid = d.submit(spec(d, "--steps", "40", "--fault", "hang@25:attempt=1",
                         recovery={"heartbeat_timeout_s": 2, "grace_s": 1}))
    tr = os.path.join(d.tmp, "trace")
    for _ in range(400):
        if any(t["event"] == "hang" for t in trace(tr)):
            break
        time.sleep(0.05)
    run = d.op(opid)["run_dir"]
    flip(os.path.join(run, "step-000020", "trainer_state.json"))  # newest one
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("step-000010"),
          "resumed from %s, not the previous good step-000010" % sel["checkpoint"])
    with open(os.path.join(d.tmp, "ckptd.out")) as f:
        log = f.read()
    check("skipping %s/step-000020" % run in log, "no log line about skipping the corrupt one")


def t_spike(d):
    opid = d.submit(spec(d, "--steps", "40", "--ckpt-every", "5", "--fault",
                         "spike@30:attempt=1",
                         recovery={"loss_spike": {"factor": 10, "window": 5,
                                                  "rollback_steps": 15, "skip_batches": 3}}))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s" % o["status"])
    det = d.wait_event(opid, "detected")
    check("spike" in det["reason"], det["reason"])
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("step-000015"), "selected %s" % sel["checkpoint"])
    st = [t for t in trace(os.path.join(d.tmp, "trace")) if t["event"] == "start"]
    check(st[1]["skip"] == 3 and st[1]["start"] == 19, "resume %s" % st[1])


def t_corrupted_report(d):
    opid = d.submit(spec(d, "--steps", "30", "--fault", "corrupted@22:attempt=1"))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s" % o["status"])
    det = d.wait_event(opid, "detected")
    check("injected at step 22" in det["reason"], det["reason"])
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("step-000020"), sel["checkpoint"])


def wait_trace(d, pred, timeout=20, name="trace"):
    end = time.time() + timeout
    while time.time() < end:
        for t in trace(os.path.join(d.tmp, name)):
            if pred(t):
                return t
        time.sleep(0.05)
    raise Fail("trace condition not met in %d s" % timeout)


def integrity(d):
    out = subprocess.run(["sqlite3", os.path.join(d.state, "ckptd.db"),
                          "PRAGMA integrity_check;"], capture_output=True, text=True)
    check(out.stdout.strip() == "ok", "integrity_check: %r %r" % (out.stdout, out.stderr))


def t_kill9_running(d):
    opid = d.submit(spec(d, "--steps", "120", "--step-ms", "25"))
    t = wait_trace(d, lambda t: t["event"] == "start")
    time.sleep(0.5)
    d.kill9()
    time.sleep(0.5)
    check(pid_alive(t["pid"]), "the trainer died with ckptd")
    integrity(d)
    d.start()
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=40)
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    evs = names(d.events(opid))
    check(evs.count("completed") == 1 and evs.count("started") == 1, "events %s" % evs)
    starts = [x for x in trace(os.path.join(d.tmp, "trace")) if x["event"] == "start"]
    check(len(starts) == 1, "trainer started %d times" % len(starts))
    # and once more: a ckptd restart after completion does not run it again
    d.stop()
    d.start()
    time.sleep(0.5)
    evs = names(d.events(opid))
    check(evs.count("completed") == 1 and d.op(opid)["status"] == "COMPLETED", "%s" % evs)
    integrity(d)


def t_kill9_recovery(d):
    opid = d.submit(spec(d, "--steps", "40", "--fault", "exit1@15:attempt=1",
                         recovery={"backoff_ms": 1500, "max_backoff_ms": 5000}))
    d.wait_event(opid, "checkpoint_selected")
    d.kill9()  # in the backoff: no trainer runs, a restart is due
    integrity(d)
    d.start()
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=40)
    check(o["status"] == "COMPLETED", "status %s" % o["status"])
    evs = names(d.events(opid))
    check(evs.count("client_created") == 1 and evs.count("completed") == 1, "events %s" % evs)
    starts = [x for x in trace(os.path.join(d.tmp, "trace")) if x["event"] == "start"]
    check([s["attempt"] for s in starts] == [1, 2], "starts %s" % starts)
    # second variant: kill -9 while the new trainer runs after a recovery
    opid = d.submit(spec(d, "--steps", "80", "--step-ms", "25", "--fault",
                         "exit1@15:attempt=1", trace_name="trace2"))
    d.wait_event(opid, "client_created")
    tr = wait_trace(d, lambda t: t["event"] == "start" and t["attempt"] == 2, name="trace2")
    d.kill9()
    check(pid_alive(tr["pid"]), "the resumed trainer died with ckptd")
    time.sleep(0.3)
    d.start()
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=40)
    check(o["status"] == "COMPLETED", "status %s" % o["status"])
    evs = names(d.events(opid))
    check(evs.count("completed") == 1, "events %s" % evs)
    integrity(d)


def t_sigterm_restart(d):
    opid = d.submit(spec(d, "--steps", "80", "--step-ms", "25"))
    t = wait_trace(d, lambda t: t["event"] == "start")
    rc = d.stop()
    check(rc == 0, "ckptd exit status %s on SIGTERM" % rc)
    check(not os.path.exists(d.sock), "socket left behind")
    check(pid_alive(t["pid"]), "the trainer died with a clean ckptd shutdown")
    d.start()
    o = d.wait_status(opid, ["COMPLETED"], timeout=40)
    check(names(d.events(opid)).count("completed") == 1, "completed twice")
    check(o["attempt"] == 1, "attempt %d" % o["attempt"])


def t_cancel_resume(d):
    opid = d.submit(spec(d, "--steps", "200", "--step-ms", "20"))
    wait_trace(d, lambda t: t["event"] == "start")
    time.sleep(0.6)
    st, body = d.req("POST", "/api/v1/operations/%s/cancel" % opid)
    check(st == 200, "cancel %s %s" % (st, body))
    o = d.wait_status(opid, ["CANCELLED"])
    canc = d.wait_event(opid, "cancelled")
    check(canc["checkpoint"], "no cancellation checkpoint")
    with open(os.path.join(canc["checkpoint"], "trainer_state.json")) as f:
        cst = json.load(f)
        check(cst["type"] == "cancellation", "not the cancellation checkpoint")
    # the steps finished while being stopped still count: progress and the
    # cancellation checkpoint agree
    check(o["progress"]["step"] == cst["step"],
          "progress says step %s, the cancellation checkpoint step %s" %
          (o["progress"]["step"], cst["step"]))
    check(o["resumable"], "CANCELLED with a checkpoint must be resumable")
    st, body = d.req("POST", "/api/v1/operations/%s/cancel" % opid)
    check(st == 409 and body["error"]["code"] == "conflict", "second cancel %s" % st)
    st, lst = d.req("GET", "/api/v1/operations?status=cancelled&resumable=true")
    check(st == 200 and [x["id"] for x in lst["operations"]] == [opid], "list %s" % lst)

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(d.req, "POST", "/api/v1/operations/%s/resume" % opid)
                for _ in range(2)]
        codes = sorted(f.result()[0] for f in futs)
    check(codes == [200, 409], "concurrent resumes answered %s" % codes)
    d.wait_event(opid, "resumed")
    starts = [x for x in trace(os.path.join(d.tmp, "trace")) if x["event"] == "start"]
    for _ in range(100):
        starts = [x for x in trace(os.path.join(d.tmp, "trace")) if x["event"] == "start"]
        if len(starts) >= 2:
            break
        time.sleep(0.05)
    check(len(starts) == 2 and starts[1]["resume"] == canc["checkpoint"],
          "resumed from %s, not %s" % (starts[-1].get("resume"), canc["checkpoint"]))
    d.req("POST", "/api/v1/operations/%s/cancel" % opid)
    d.wait_status(opid, ["CANCELLED"])


def t_malformed(d):
    ok = d.submit(spec(d, "--steps", "5"))
    bad_specs = [
        b"{", b"[1,2]", b"null", b"\"str\"", b"{\"a\":1,\"a\":2}", b"\xff\xfe",
        {"bogus": 1}, {"hyperparams": {"batch_size": 0}}, {"hyperparams": {"batch_size": "x"}},
        {"hyperparams": {"lr": -1}}, {"hyperparams": {"early_stopping": {"x": 1}}},
        {"hyperparams": {"lr_scheduler": "exp"}}, {"model": "bert-base"},
        {"dataset": "s3://bucket/x"}, {"command": []}, {"command": "x" * 5000},
        {"command": [1]}, {"recovery": {"max_attempts": 0}},
        {"recovery": {"checkpoint_strategy": "newest"}},
        {"recovery": {"checkpoint_strategy": "specific:../../etc"}},
        {"recovery": {"backoff_ms": 100, "max_backoff_ms": 10}},
        {"recovery": {"loss_spike": {"factor": "big"}}}, {"schedule": {"cron": "* *"}},
        {"secrets": {"TOKEN": "plain"}}, {"secrets": {"TOKEN": {"env": "NOT_SET_XYZ_123"}}},
        {"name": "../../etc/passwd"}, {"project_id": "a/b"}, {"checkpoint": {"keep_last": -1}},
        {"resources": {"gpus": 1.5}}, {"recovery": {"enabled": "yes"}},
    ]
    n = 0
    for b in bad_specs:
        st, body = d.req("POST", "/api/v1/operations", b)
        check(st == 400 and isinstance(body, dict) and body["error"]["message"],
              "spec %r answered %s %s" % (b, st, body))
        n += 1
    st, body = d.req("POST", "/api/v1/operations", b"{" + b" " * (2 << 20) + b"}")
    check(st == 413 and body["error"]["code"] == "too_large", "huge body %s" % st)
    n += 1
    reqs = [("GET", "/api/v1/operations/../../etc/passwd", 400),
            ("GET", "/api/v1/operations/op_x", 400),
            ("GET", "/api/v1/operations/op_training_20200101_000000_abcdef", 404),
            ("GET", "/api/v1/operations/%2e%2e%2fetc", 400),
            ("GET", "/api/v1/operations?status=BOGUS", 400),
            ("GET", "/api/v1/operations?limit=-1", 400),
            ("GET", "/api/v1/operations?resumable=maybe", 400),
            ("DELETE", "/api/v1/operations", 405),
            ("PUT", "/api/v1/operations/" + ok, 405),
            ("GET", "/api/v1/operations/%s/cancel" % ok, 405),
            ("GET", "/api/v1/operations/%s/nope" % ok, 404),
            ("GET", "/api/v1/operations/%s/logs?offset=x" % ok, 400),
            ("GET", "/api/v1/operations/%s/events?after=-5" % ok, 400),
            ("GET", "/api/v1/checkpoints/../../x", 400),
            ("POST", "/api/v1/checkpoints/cleanup?max_age_days=abc", 400),
            ("GET", "/nope", 404),
            ("POST", "/api/v1/operations", 400)]
    for m, p, want in reqs:
        st, body = d.req(m, p)
        check(st == want and body["error"]["message"], "%s %s answered %s %s" % (m, p, st, body))
        n += 1
    st, body = d.req("POST", "/api/v1/operations", {}, headers={"Idempotency-Key": "a b"})
    check(st == 400 and "Idempotency-Key" in body["error"]["message"], "idem %s" % st)
    n += 1
    check(n >= 30, "only %d malformed inputs" % n)
    check(d.req("GET", "/healthz")[0] == 200, "ckptd died")
    check(d.proc.poll() is None, "ckptd exited")
    # idempotency: same key, same op; 201 then 200
    st1, b1 = d.req("POST", "/api/v1/operations", spec(d, "--steps", "3"),
                    headers={"Idempotency-Key": "k-1"})
    st2, b2 = d.req("POST", "/api/v1/operations", spec(d, "--steps", "3"),
                    headers={"Idempotency-Key": "k-1"})
    check((st1, st2) == (201, 200) and b1["id"] == b2["id"], "idempotency %s %s" % (st1, st2))


def t_secrets(d):
    src = "s3cr3t-from-env-%d" % os.getpid()
    inline = "inl1ne-v4lue-%d" % os.getpid()
    d.env["SECRET_SRC"] = src
    d.stop()
    d.start()
    sha = hashlib.sha256(src.encode()).hexdigest()
    opid = d.submit(spec(d, "--steps", "15", "--secret-env", "TOKEN", "--secret-sha256", sha,
                         "--fault", "exit1@12:attempt=1",
                         ) | {"secrets": {"TOKEN": {"env": "SECRET_SRC"},
                                          "OTHER": {"value": inline}}})
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s" % o["status"])
    tr = [t for t in trace(os.path.join(d.tmp, "trace")) if t["event"] == "secret"]
    check(len(tr) == 2 and all(t["ok"] for t in tr), "the trainer did not get the secret")
    answers = [json.dumps(d.op(opid)), json.dumps(d.events(opid)),
               json.dumps(d.req("GET", "/api/v1/operations")[1]),
               d.req("GET", "/api/v1/operations/%s/logs" % opid)[1],
               d.req("GET", "/metrics")[1]]
    for a in answers:
        check(src not in a and inline not in a, "a secret leaked into an API answer")
    d.stop()
    for root, _, files in os.walk(d.tmp):
        if root.startswith(os.path.join(d.state, "secrets")):
            continue  # the 0600 store for inline values, by design
        for f in files:
            if not os.path.isfile(os.path.join(root, f)):
                continue  # the notify sockets
            with open(os.path.join(root, f), "rb") as fh:
                data = fh.read()
            check(src.encode() not in data and inline.encode() not in data,
                  "a secret is in %s" % os.path.join(root, f))
    for f in glob.glob(os.path.join(d.state, "secrets", "*", "*")):
        check(os.stat(f).st_mode & 0o777 == 0o600, "secret file mode")


def t_cron_cleanup(d):
    opid = d.submit(spec(d, "--steps", "3") | {"schedule": {"cron": "0 0 1 1 *"}})
    o = d.op(opid)
    check(o["status"] == "PENDING", "a cron job must wait: %s" % o["status"])
    st, _ = d.req("POST", "/api/v1/operations/%s/cancel" % opid)
    check(st == 200 and d.op(opid)["status"] == "CANCELLED", "cancel pending")
    run = d.submit(spec(d, "--steps", "20"))
    d.wait_status(run, ["COMPLETED"])
    st, stats = d.req("GET", "/api/v1/checkpoints/stats")
    check(st == 200 and stats["total_checkpoints"] >= 2 and stats["total_size_bytes"] > 0,
          "stats %s" % stats)
    st, ck = d.req("GET", "/api/v1/checkpoints/" + run)
    check(st == 200 and ck["latest"]["version"] == "step-000020", "checkpoints %s" % ck)
    orphan = os.path.join(d.runs, "op_training_20200101_000000_abcdef")
    os.makedirs(os.path.join(orphan, "step-1"))
    st, res = d.req("POST", "/api/v1/checkpoints/cleanup?max_age_days=0")
    check(st == 200 and res["removed_orphans"] == 1 and res["removed_checkpoints"] >= 2,
          "cleanup %s" % res)
    check(not os.path.exists(orphan), "orphan kept")
    st, _ = d.req("DELETE", "/api/v1/checkpoints/" + run)
    check(st == 200, "delete %s" % st)
    st, m = d.req("GET", "/metrics")
    check(st == 200 and "ckptd_operations{status=\"COMPLETED\"} 1" in m, "metrics %s" % m)
    st, mw = d.req("GET", "/api/v1/operations/%s/metrics" % run)
    check(st == 200 and mw["windows"] and mw["windows"][0]["count"] > 0, "windows %s" % mw)
    st, logs = d.req("GET", "/api/v1/operations/%s/logs" % run)
    check(st == 200 and "--- ckptd: attempt 1 ---" in logs, "logs %r" % logs[:200])


def t_config(d):
    """Layers (built-in < policy file < job spec), loopback TCP with a bearer
    token, and a second ckptd on the same state dir refused."""
    import http.client
    import socket as so
    with so.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tok = os.path.join(d.tmp, "token")
    with open(tok, "w") as f:
        f.write("t0ken-%d\n" % os.getpid())
    os.chmod(tok, 0o600)
    pol = os.path.join(d.tmp, "policy.yaml")
    with open(pol, "w") as f:
        f.write("recovery: {max_attempts: 7, backoff_ms: 10}\nhyperparams: {epochs: 9}\n")
    d.stop()
    with open(d.cfg, "a") as f:
        f.write("listen_tcp: %d\ntoken_file: %s\npolicy: %s\nmax_concurrent: 2\n" %
                (port, tok, pol))
    d.start()
    opid = d.submit({"command": ["/bin/true"], "hyperparams": {"epochs": 2}})
    sp = d.op(opid)["spec"]
    check(sp["recovery"]["max_attempts"] == 7 and sp["hyperparams"]["epochs"] == 2 and
          sp["hyperparams"]["batch_size"] == 32, "layers: %s" % sp)
    d.wait_status(opid, ["COMPLETED"])
    for hdr, want in (({}, 401), ({"Authorization": "Bearer wrong"}, 401),
                      ({"Authorization": "Bearer t0ken-%d" % os.getpid()}, 200)):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/api/v1/operations", headers=hdr)
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        check(r.status == want, "TCP %s answered %s %s" % (hdr, r.status, body))
    out = subprocess.run([d.bin, "--state-dir", d.state, "--config", d.cfg],
                         capture_output=True, text=True, timeout=10)
    check(out.returncode == 1 and "already runs" in out.stderr, "second ckptd: %r" % out.stderr)
    bad = os.path.join(d.tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write("mount: /x\nbogus: 1\n")
    out = subprocess.run([d.bin, "--state-dir", d.state + "2", "--config", bad],
                         capture_output=True, text=True, timeout=10)
    check(out.returncode == 2 and "bogus: unknown key" in out.stderr, "bad config %r" % out.stderr)
    st, info = d.req("GET", "/api/v1/daemon")
    check(st == 200 and info["pid"] == d.proc.pid, "daemon %s" % info)
    check(os.stat(d.sock).st_mode & 0o777 == 0o600, "socket mode")
    check(os.stat(os.path.join(d.state, "ckptd.db")).st_mode & 0o777 == 0o600, "db mode")


def t_poll_error(d):
    """An unreadable run dir gives poll_error events and the poller goes on."""
    opid = d.submit(spec(d, "--steps", "150", "--step-ms", "20", "--ckpt-every", "1000"))
    wait_trace(d, lambda t: t["event"] == "start")
    run = d.op(opid)["run_dir"]
    os.rmdir(run)
    with open(run, "w") as f:
        f.write("not a directory")
    e1 = d.wait_event(opid, "poll_error")
    check("Not a directory" in e1["reason"], e1["reason"])
    d.wait_event(opid, "poll_error", count=2)  # it keeps polling
    os.unlink(run)
    os.mkdir(run)
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))


def t_down_exit(d):
    """A trainer that ends while ckptd is down: its exit is collected once."""
    opid = d.submit(spec(d, "--steps", "40", "--step-ms", "20"))
    wait_trace(d, lambda t: t["event"] == "start")
    d.kill9()
    wait_trace(d, lambda t: t["event"] == "done")
    time.sleep(0.3)
    d.start()
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED" and o["exit"] == {"code": 0}, "op %s" % o)
    check(names(d.events(opid)).count("completed") == 1, "completed not once")
    # and a crash while down is recovered after the restart
    opid = d.submit(spec(d, "--steps", "40", "--step-ms", "20", "--fault", "exit1@20:attempt=1",
                         trace_name="trace2"))
    wait_trace(d, lambda t: t["event"] == "start", name="trace2")
    d.kill9()
    wait_trace(d, lambda t: t["event"] == "crash", name="trace2")
    time.sleep(0.3)
    d.start()
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED" and o["recoveries"] == 1, "op %s" % o)
    det = d.wait_event(opid, "detected")
    check("exit status 1" in det["reason"], det["reason"])
    integrity(d)


def t_strategies(d):
    """best picks the lowest val_loss; specific:PATH picks that version."""
    opid = d.submit(spec(d, "--steps", "40", "--ckpt-every", "5", "--best-at", "15",
                         "--fault", "exit1@33:attempt=1",
                         recovery={"checkpoint_strategy": "best"}))
    d.wait_status(opid, ["COMPLETED"])
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("/step-000015"), "best chose %s" % sel["checkpoint"])
    path = sel["checkpoint"]
    opid = d.submit(spec(d, "--steps", "40", "--ckpt-every", "5", "--fault",
                         "exit1@33:attempt=1", trace_name="trace2",
                         recovery={"checkpoint_strategy": "specific:" + path}))
    d.wait_status(opid, ["COMPLETED"])
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"] == path, "specific chose %s" % sel["checkpoint"])
    st = [t for t in trace(os.path.join(d.tmp, "trace2")) if t["event"] == "start"]
    check(st[1]["resume"] == path and st[1]["start"] == 16, "resume %s" % st[1])
    # ckpt-train's trainer_state.json: each version's own last_val_loss
    # counts, never best_val_loss (the run's lowest so far, equal for every
    # version after the best one)
    opid = d.submit(spec(d, "--steps", "40", "--ckpt-every", "5", "--best-at", "15",
                         "--ckpt-train-state", "--fault", "exit1@33:attempt=1",
                         trace_name="trace3", recovery={"checkpoint_strategy": "best"}))
    d.wait_status(opid, ["COMPLETED"])
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("/step-000015"),
          "best chose %s from ckpt-train's trainer_state.json" % sel["checkpoint"])


def t_concurrency(d):
    """max_concurrent 1: a second recovery waits until the first relaunched."""
    ops = [d.submit(spec(d, "--steps", "40", "--step-ms", "20", "--fault", "exit1@12:attempt=1",
                         trace_name="trace%d" % i, recovery={"backoff_ms": 800}))
           for i in range(2)]
    for o in ops:
        check(d.wait_status(o, ["COMPLETED", "FAILED"])["status"] == "COMPLETED", "status")
    from datetime import datetime

    def t(e):
        return datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
    sel = sorted((t(d.wait_event(o, "checkpoint_selected")), o) for o in ops)
    first, second = sel[0][1], sel[1][1]
    created = t(d.wait_event(first, "client_created"))
    check(sel[1][0] >= created - 0.002,
          "the second recovery chose a checkpoint %.3f s before the first one ended" %
          (created - sel[1][0]))


def sql(db, q):
    out = subprocess.run(["sqlite3", db, q], capture_output=True, text=True)
    check(out.returncode == 0, "sqlite3 %s: %s" % (q, out.stderr))
    return out.stdout.strip()


def t_db_migrate(d):
    """A ckptd.db written before schema versioning (user_version 0, dumped
    from a real run) is migrated in order up to the current version, keeps
    its operations and events, and is not migrated twice; a database from a
    newer ckptd is refused, unchanged."""
    d.stop()
    db = os.path.join(d.state, "ckptd.db")
    for f in glob.glob(db + "*"):
        os.unlink(f)
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "ckptd-db-v0.sql")) as f:
        dump = f.read().replace("@TMP@", d.tmp).replace("@HERE@", here)
    out = subprocess.run(["sqlite3", db], input=dump, capture_output=True, text=True)
    check(out.returncode == 0 and sql(db, "PRAGMA user_version") == "0",
          "cannot load the v0 dump: %s" % out.stderr)
    opid = sql(db, "SELECT id FROM operations")
    for v in ("step-000010", "step-000020"):
        os.makedirs(os.path.join(d.runs, opid, v))
        with open(os.path.join(d.runs, opid, v, "trainer_state.json"), "w") as f:
            json.dump({"step": int(v[5:])}, f)
    events_before = sql(db, "SELECT count(*) FROM events")
    d.start()
    st, info = d.req("GET", "/api/v1/daemon")
    want = info.get("db_schema_version") if st == 200 else None
    check(isinstance(want, int) and want >= 1, "daemon info has no db_schema_version: %s" % info)
    o = d.op(opid)
    check(o["status"] == "COMPLETED" and o["checkpoint"]["version"] == "step-000020",
          "the old operation after migration: %s" % o)
    check(len(d.events(opid)) == int(events_before), "events %s" % names(d.events(opid)))
    d.stop()
    check(sql(db, "PRAGMA user_version") == str(want), "user_version %s, want %d" %
          (sql(db, "PRAGMA user_version"), want))
    integrity(d)
    with open(os.path.join(d.tmp, "ckptd.out")) as f:
        log = f.read()
    check(log.count("migrated from schema version 0 to 1") == 1, "no migration in the log")
    d.start()
    d.stop()
    with open(os.path.join(d.tmp, "ckptd.out")) as f:
        check(f.read().count("migrated from schema version") == want,
              "migrated again on the second start")
    # a database from the future: refused, and left as it was
    sql(db, "PRAGMA user_version = %d" % (want + 5))
    out = subprocess.run([d.bin, "--state-dir", d.state, "--config", d.cfg],
                         capture_output=True, text=True, timeout=20)
    check(out.returncode == 1 and "newer than this ckptd knows" in out.stderr,
          "a newer database: rc %d %r" % (out.returncode, out.stderr))
    check(sql(db, "PRAGMA user_version") == str(want + 5), "the newer database was changed")
    sql(db, "PRAGMA user_version = %d" % want)
    d.start()

def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def ckpt_cli(d, *args):
    """The real ckpt CLI against this ckptd (None when it is not built)."""
    cli = build_bin("tools/ckpt/ckpt")
    if not cli:
        return None
    return subprocess.run([cli, "--state-dir", d.state] + list(args), capture_output=True,
                          text=True, timeout=30)


def next_fire_py(minute, hour, dows, after):
    """The next UTC minute after `after` at HH:MM on one of `dows` (0 = Sunday)."""
    import datetime
    t = datetime.datetime.fromtimestamp(int(after) // 60 * 60 + 60, datetime.timezone.utc)
    while not (t.minute == minute and t.hour == hour and (t.isoweekday() % 7) in dows):
        t += datetime.timedelta(minutes=1)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def t_cron_schedule(d):
    """Issue 11 item 1: a cron that never fires is refused at submit (it used
    to submit ~200 operations a second); crontab(5) names and @macros; the
    next fire time in the API and in `ckpt ops status`; one operation per
    fire time, also when fire times were missed while ckptd was down and
    when ckptd died between starting a run and recording it."""
    fds = fd_count(d.proc.pid)
    for cron in ("0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *", "0 0 31 jun,SEP,nov *"):
        st, body = d.req("POST", "/api/v1/operations",
                         spec(d, "--steps", "3") | {"schedule": {"cron": cron}})
        check(st == 400 and "schedule.cron" in body["error"]["message"] and
              "5 years" in body["error"]["message"],
              "cron %r answered %s %s" % (cron, st, body))
    time.sleep(0.5)
    st, lst = d.req("GET", "/api/v1/operations")
    check(st == 200 and lst["total"] == 0, "operations after refused crons: %s" % lst["total"])
    check(fd_count(d.proc.pid) <= fds + 3, "fds %d -> %d" % (fds, fd_count(d.proc.pid)))
    st, body = d.req("POST", "/api/v1/operations",
                     spec(d, "--steps", "3") | {"schedule": {"cron": "@reboot"}})
    check(st == 400 and "schedule.cron" in body["error"]["message"], "@reboot %s" % body)

    now = time.time()
    daily = d.submit(spec(d, "--steps", "3") | {"schedule": {"cron": "@daily"}})
    o = d.op(daily)
    want = time.strftime("%Y-%m-%dT00:00:00.000Z", time.gmtime(now // 86400 * 86400 + 86400))
    check(o["status"] == "PENDING" and o["schedule"] == {
        "cron": "@daily", "fire_time": want, "next_fire": want}, "@daily: %s" % o["schedule"])
    mon = d.submit(spec(d, "--steps", "3") | {"schedule": {"cron": "30 4 * * MON,wed"}})
    want = next_fire_py(30, 4, (1, 3), now)
    check(d.op(mon)["schedule"]["next_fire"] == want,
          "MON,wed: %s, want %s" % (d.op(mon)["schedule"], want))
    out = ckpt_cli(d, "ops", "status", mon)
    if out is not None:
        line = [l for l in out.stdout.splitlines() if l.startswith("Next Fire:")]
        check(out.returncode == 0 and line and
              time.strftime("%Y-%m-%d 04:30", time.strptime(want, "%Y-%m-%dT%H:%M:%S.000Z"))
              in line[0], "ckpt ops status: %r %r" % (out.stdout, out.stderr))

    # fire times missed while ckptd was down: the run starts once, and the
    # next one is the first fire time after now, not a catch-up
    yearly = d.submit(spec(d, "--steps", "3") | {"schedule": {"cron": "0 0 1 1 *"}})
    d.stop()
    db = os.path.join(d.state, "ckptd.db")
    sql(db, "UPDATE operations SET not_before = %f, fire_at = %f WHERE id = '%s'" %
        (now - 3 * 366 * 86400, now - 3 * 366 * 86400, yearly))
    d.start()
    o = d.wait_status(yearly, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "yearly %s" % o)
    nxt = sql(db, "SELECT id, fire_at FROM operations WHERE scheduled_by = '%s'" % yearly)
    check(nxt.count("\n") == 0 and nxt, "successors of the yearly run: %r" % nxt)
    nid, nfire = nxt.split("|")
    jan1 = time.strptime(time.strftime("%Y", time.gmtime(now)), "%Y")
    import calendar
    want = calendar.timegm((jan1.tm_year + 1, 1, 1, 0, 0, 0))
    check(abs(float(nfire) - want) < 1, "next fire %s, want %d" % (nfire, want))
    check(d.op(yearly)["schedule"]["next_fire"] == d.op(nid)["schedule"]["fire_time"],
          "next_fire of a started run: %s" % d.op(yearly)["schedule"])
    # ckptd died after submitting the next run but before recording the start
    d.stop()
    sql(db, "UPDATE operations SET status = 0 WHERE id = '%s'" % yearly)
    d.start()
    d.wait_status(yearly, ["COMPLETED", "FAILED"])
    n = sql(db, "SELECT count(*) FROM operations WHERE scheduled_by = '%s'" % yearly)
    check(n == "1", "%s operations scheduled after one run" % n)
    st, lst = d.req("GET", "/api/v1/operations?status=PENDING")
    check(lst["total"] == 3, "pending: %s" % [x["id"] for x in lst["operations"]])
    for x in lst["operations"]:
        d.req("POST", "/api/v1/operations/%s/cancel" % x["id"])
    # SIGTERM while schedules wait: a clean stop (the harness checks the status)


def t_fd_leak(d):
    """Issue 11 item 2: 300 short operations leave ckptd's fd count where it
    was (the notify socket of each finished operation used to stay open)."""
    before = fd_count(d.proc.pid)
    ids = []
    for batch in range(6):
        ids += [d.submit({"name": "fd%d" % i, "command": ["/bin/true"],
                          "recovery": dict(FAST)}) for i in range(50)]
        for opid in ids[-50:]:
            d.wait_status(opid, ["COMPLETED"], timeout=60)
    time.sleep(0.3)
    after = fd_count(d.proc.pid)
    check(after <= before + 3, "ckptd had %d fds before 300 operations, %d after" %
          (before, after))
    socks = os.listdir(os.path.join(d.state, "notify"))
    check(not socks, "%d notify sockets left in the state dir" % len(socks))


def version_reads(d):
    st, txt = d.req("GET", "/metrics")
    check(st == 200, "/metrics answered %s" % st)
    for line in txt.splitlines():
        if line.startswith("ckptd_version_reads_total "):
            return int(line.split()[1])
    raise Fail("/metrics has no ckptd_version_reads_total")


def t_history(d):
    """Issue 18's soak: with a long history of finished operations, the
    answers about checkpoints must not read every version of it again (each
    /metrics and checkpoints/stats read every version's files, and a list of
    operations every version of each: ckptd's loop got slower with every
    commit). Counted by ckptd_version_reads_total, not timed. What the stats
    keep of a finished run follows its run dir (a version removed by hand, a
    DELETE). The 30 s windows of a running operation include the current
    one, which answers now come from memory instead of a write."""
    ids = []
    for i in range(5):
        ids.append(d.submit(spec(d, "--steps", "30", "--ckpt-every", "5", "--ckpt-bytes", "100",
                                 trace_name="trace%d" % i)))
    for opid in ids:
        check(d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=60)["status"] == "COMPLETED",
              "operation %s did not complete" % opid)
    runs = [d.op(opid)["run_dir"] for opid in ids]
    # a finished operation's spec text is not kept in memory: read back
    o = d.op(ids[0])
    check(o["spec"] and o["spec"]["name"] == "t" and o["spec"]["command"],
          "GET of a finished operation: spec %s" % o.get("spec"))

    def on_disk():
        vs = [os.path.join(r, v) for r in runs for v in os.listdir(r) if v.startswith("step-")]
        size = sum(os.path.getsize(os.path.join(dp, f)) for v in vs
                   for dp, _, fs in os.walk(v) for f in fs)
        return len(vs), size

    def stats_match(why):
        n, size = on_disk()
        st, s = d.req("GET", "/api/v1/checkpoints/stats")
        check(st == 200 and s["total_checkpoints"] == n and s["total_size_bytes"] == size,
              "%s: stats %s, on disk %d versions of %d bytes" % (why, s, n, size))
        return n

    def settle():
        # a run dir changed in the last 2 s is counted afresh on every
        # answer (its timestamps cannot tell the next change yet)
        for _ in range(200):
            if all(time.time() - max(os.stat(r).st_mtime, os.stat(r).st_ctime) > 3
                   for r in runs):
                return
            time.sleep(0.05)
        raise Fail("the run dirs kept changing")

    settle()
    check(stats_match("after 5 runs") == 30, "5 runs of 6 versions: %d" % on_disk()[0])
    before = version_reads(d)
    for _ in range(3):
        stats_match("again")
    after = version_reads(d)
    check(after == before, "3 checkpoints/stats and a /metrics read %d versions of 5 finished "
          "runs again (want 0: nothing changed)" % (after - before))
    st, lst = d.req("GET", "/api/v1/operations")
    check(st == 200 and [o["id"] for o in lst["operations"]] == ids[::-1] and
          all(o["checkpoint"]["step"] == 30 for o in lst["operations"]),
          "list: %s" % lst)
    listed = version_reads(d) - after
    check(listed <= 5, "a list of 5 operations read %d versions (want at most one each: its "
          "checkpoint)" % listed)
    st, lim = d.req("GET", "/api/v1/operations?limit=2")
    check(st == 200 and [o["id"] for o in lim["operations"]] == ids[::-1][:2] and
          lim["total"] == 2, "limit=2: %s" % lim)

    shutil.rmtree(os.path.join(runs[0], "step-000010"))
    check(stats_match("a version removed by hand") == 29, "removed by hand")
    st, res = d.req("DELETE", "/api/v1/checkpoints/" + ids[1])
    check(st == 200 and res["deleted"] == 6, "delete: %s %s" % (st, res))
    check(stats_match("after a DELETE") == 23, "after a DELETE")

    hold = os.path.join(d.tmp, "hold")
    opid = d.submit(spec(d, "--steps", "20", "--ckpt-every", "5", "--hold", hold,
                         trace_name="trace_hold"))
    for _ in range(400):
        if (d.op(opid)["progress"]["step"] or 0) >= 20:
            break
        time.sleep(0.05)
    # a running operation: its versions, once read, are not parsed again
    # while their files are unchanged (the stats, /metrics and the poller
    # list its run dir all the time), and a change is seen at once
    run = d.op(opid)["run_dir"]
    runs.append(run)
    settle()
    for v in os.listdir(run):
        for _ in range(100):
            t = os.stat(os.path.join(run, v, "trainer_state.json"))
            if time.time() - max(t.st_mtime, t.st_ctime) > 3:
                break
            time.sleep(0.05)
    n = stats_match("a running operation")
    before = version_reads(d)
    for _ in range(3):
        stats_match("a running operation, again")
    st, ck = d.req("GET", "/api/v1/checkpoints/" + opid)
    after = version_reads(d)
    check(after == before, "3 stats, its checkpoints and a /metrics read %d versions of a "
          "running operation again (want 0)" % (after - before))
    flip(os.path.join(run, "step-000010", "trainer_state.json"))
    st, ck = d.req("GET", "/api/v1/checkpoints/" + opid)
    states = {c["version"]: c["state"] for c in ck["checkpoints"]}
    check(states.get("step-000010") == "corrupt", "after a flip: %s" % states)
    n, _ = on_disk()
    st, s = d.req("GET", "/api/v1/checkpoints/stats")
    check(s["total_checkpoints"] == n - 1, "a corrupt version is counted: %s" % s)
    w = metrics_of(d, opid, "?resolution=30s")
    check(sum(x["count"] for x in w["windows"]) == 20, "a running operation's windows count "
          "%s losses, not its 20 steps: %s" % (sum(x["count"] for x in w["windows"]), w))
    old = metrics_of(d, opid)
    check(sum(x["count"] for x in old["downsampled"]["300"]) == 20, "5 m windows %s" % old)
    open(hold, "w").close()
    d.wait_status(opid, ["COMPLETED"])
    w = metrics_of(d, opid, "?resolution=30s")
    check(sum(x["count"] for x in w["windows"]) == 20, "windows after the end: %s" % w)


def t_checkpoint_reports(d):
    """Issue 11 item 3: CHECKPOINT= reports of anything but a committed
    version of the operation's own run dir are rejected, counted and logged,
    never recorded."""
    other = os.path.join(d.runs, "op_training_20200101_000000_abcdef")
    outside = os.path.join(d.tmp, "outside")
    for v in (os.path.join(other, "step-000010"), os.path.join(outside, "step-000010")):
        os.makedirs(v)
        with open(os.path.join(v, "trainer_state.json"), "w") as f:
            json.dump({"step": 10}, f)
    bad = [outside + "/step-000010@4", other + "/step-000010@6",
           "{run}/../op_training_20200101_000000_abcdef/step-000010@7",
           "{run}/step-000010/../../op_training_20200101_000000_abcdef/step-000010@12",
           "{run}/evil@13", "{run}@15", "{run}/step-000010/weights.bin@16",
           "{run}/step-999999@17", "/@18"]
    args = ["--steps", "30", "--step-ms", "20", "--symlink", "evil=" + outside + "/step-000010"]
    for b in bad:
        args += ["--report", b]
    opid = d.submit(spec(d, *args))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    run = o["run_dir"]
    reported = [t for t in trace(os.path.join(d.tmp, "trace")) if t["event"] == "reported"]
    check(len(reported) == len(bad), "the trainer sent %d of %d reports" %
          (len(reported), len(bad)))
    cps = [e for e in d.events(opid) if e["event"] == "checkpoint_committed"]
    paths = sorted(e["checkpoint"] for e in cps)
    want = sorted(os.path.join(run, v) for v in os.listdir(run) if v.startswith("step-"))
    check(paths == want, "checkpoint_committed for %s, want exactly %s" % (paths, want))
    check(o["checkpoint"]["path"] == os.path.join(run, "step-000030"), "checkpoint %s" %
          o["checkpoint"])
    st, m = d.req("GET", "/metrics")
    check("ckptd_checkpoint_reports_rejected_total %d\n" % len(bad) in m and
          "ckptd_notify_rejected_total %d\n" % len(bad) in m,
          "metrics: %s" % [l for l in m.splitlines() if "rejected" in l])
    with open(os.path.join(d.tmp, "ckptd.out")) as f:
        log = f.read()
    check(log.count("rejected the report CHECKPOINT=") == len(bad),
          "%d rejections logged" % log.count("rejected the report CHECKPOINT="))
    with open(os.path.join(d.state, "events.jsonl")) as f:
        check(outside not in f.read(), "a rejected path is in events.jsonl")


def committed_events(d, opid):
    out = {}
    for e in d.events(opid):
        if e["event"] == "checkpoint_committed":
            out.setdefault(e["checkpoint"], []).append(e)
    return out


def check_one_event_each(d, opid):
    run = d.op(opid)["run_dir"]
    evs = committed_events(d, opid)
    vers = sorted(os.path.join(run, v) for v in os.listdir(run)
                  if v.startswith("step-") and not v.endswith(".tmp"))
    check(sorted(evs) == vers, "versions without an event: %s; events of non-versions: %s" %
          (sorted(set(vers) - set(evs)), sorted(set(evs) - set(vers))))
    many = {k: len(v) for k, v in evs.items() if len(v) != 1}
    check(not many, "versions with more than one event: %s" % many)
    return evs


def t_reconcile(d):
    """Issue 11 item 4: every committed version has exactly one
    checkpoint_committed event: versions committed while ckptd was down get
    theirs at restart; a version whose report came after the fault (an async
    save) gets one when the attempt ends."""
    opid = d.submit(spec(d, "--steps", "60", "--step-ms", "20", "--ckpt-every", "5"))
    wait_trace(d, lambda t: t["event"] == "first_step")
    time.sleep(0.3)
    d.kill9()
    wait_trace(d, lambda t: t["event"] == "done")
    d.start()
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s" % o["status"])
    evs = check_one_event_each(d, opid)
    late = [p for p, e in evs.items() if "found at restart" in e[0]["reason"]]
    check(late, "no version was found at restart: %s" %
          {p: e[0]["reason"] for p, e in evs.items()})
    check(all(e[0]["step"] == int(p[-6:]) for p, e in evs.items()),
          "event steps: %s" % {p: e[0]["step"] for p, e in evs.items()})
    d.stop()
    d.start()
    check_one_event_each(d, opid)  # and not again at the next start
    reconcile_late(d)


def reconcile_late(d):
    # the demo's case: step 20's report comes after the NaN at 25 (and no
    # poller run comes in between)
    opid = d.submit(spec(d, "--steps", "40", "--fault", "nan@25:attempt=1",
                         "--late-report", "20", trace_name="trace2",
                         recovery={"poll_interval_ms": 600000}))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED", "status %s" % o["status"])
    evs = check_one_event_each(d, opid)
    seq = {e["seq"]: e for e in d.events(opid)}
    s20 = evs[os.path.join(o["run_dir"], "step-000020")][0]
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"] == s20["checkpoint"] and s20["seq"] < sel["seq"],
          "step-000020 selected (%s) without an event before: %s" % (sel["checkpoint"],
                                                                   s20))
    check(s20["attempt"] == 1 and "attempt 1 ended" in s20["reason"], "event %s" % s20)


def t_demo_events(d):
    """tools/demo's job on a real ckptfs with the real ckpt-train: every
    committed version has one checkpoint_committed event (attempt 1's
    step-00000120, committed after the NaN, had none)."""
    tr = build_bin("trainer/ckpt-train")
    if not tr:
        raise Skip("trainer/ckpt-train is not built in this build dir")
    restart_on_ckptfs(d)
    opid = d.submit({"name": "demo", "model": "tiny", "command": [
        tr, "--model", "tiny", "--max-steps", "200", "--checkpoint-every-steps", "40",
        "--device", "cpu", "--inject", "nan@130:attempt=1"],
        "checkpoint": {"every_steps": 40, "keep_last": 10, "keep_best": 1},
        "recovery": dict(FAST)})
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=80)
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    sel = d.wait_event(opid, "checkpoint_selected")
    evs = check_one_event_each(d, opid)
    check(sel["checkpoint"] in evs and evs[sel["checkpoint"]][0]["seq"] < sel["seq"],
          "the selected %s has no event before its selection" % sel["checkpoint"])


def t_http(d):
    """Issue 11 item 5: a path that is not UTF-8 gets a 4xx with the error
    body (it got a bare close); 500 concurrent clients are all answered (the
    listen backlog was 128 and connects failed with EAGAIN)."""
    import http.client
    import socket as so
    failed = []
    for path in ("/api/v1/%ff%fe", "/%c3%28", "/api/v1/operations/%ed%a0%80",
                 "/api/v1/operations?status=%ff"):
        try:
            st, body = d.req("GET", path)
        except (OSError, http.client.HTTPException) as e:
            st, body = None, repr(e)
        if not (st and 400 <= st < 500 and isinstance(body, dict) and
                body["error"]["message"]):
            failed.append("GET %s answered %s %r" % (path, st, body))
    # 500 clients at once: all connect (a socket with a timeout connects
    # non-blocking, as most HTTP clients do, so a full listen queue is
    # EAGAIN), then all send, then all read their answer
    import selectors
    n = 500
    socks, results = [], [None] * n
    for i in range(n):
        s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
        s.settimeout(60)
        try:
            s.connect(d.sock)
        except OSError as e:
            results[i] = "connect: %r" % e
        socks.append(s)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        if results[i] is None:
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, [i, b""])
            except OSError as e:
                results[i] = "send: %r" % e
    end = time.time() + 60
    while sel.get_map() and time.time() < end:
        for key, _ in sel.select(1):
            i, data = key.data
            try:
                b = key.fileobj.recv(4096)
            except OSError as e:
                b, results[i] = b"", "recv: %r" % e
            if b:
                key.data[1] = data + b
                continue
            sel.unregister(key.fileobj)
            if results[i] is None:
                results[i] = data.split(b"\r\n", 1)[0] if data else "closed without an answer"
    for s in socks:
        s.close()
    bad = [r for r in results if r != b"HTTP/1.1 200 OK"]
    if bad:
        failed.append("%d of %d concurrent clients not answered 200, e.g. %s" %
                      (len(bad), n, bad[:3]))
    check(not failed, "; ".join(failed))
    check(d.req("GET", "/healthz")[0] == 200, "ckptd died")


def t_yaml_numbers(d):
    """Issue 11 item 6: YAML 1.2 core schema numbers in a job spec sent by the
    real ckpt CLI (YAML to JSON) and in ckptd's own config."""
    d.stop()
    with open(d.cfg, "a") as f:
        f.write("max_concurrent: 0x2\ncleanup_interval_s: 0o7020\n")
    d.start()
    job = os.path.join(d.tmp, "job.yaml")
    cmd = json.dumps(fake_cmd(d.tmp, "--steps", "3"))
    with open(job, "w") as f:
        f.write("name: y\ncommand: %s\nhyperparams: {batch_size: 0x20, epochs: 0o17}\n"
                "recovery: {poll_interval_ms: 0x64}\n" % cmd)
    out = ckpt_cli(d, "submit", job)
    if out is None:
        raise Skip("tools/ckpt/ckpt is not built in this build dir")
    st, lst = d.req("GET", "/api/v1/operations")
    check(out.returncode == 0 and lst["total"] == 1, "ckpt run: %s %r %r" %
          (out.returncode, out.stdout, out.stderr))
    sp = d.op(lst["operations"][0]["id"])["spec"]
    check(sp["hyperparams"]["batch_size"] == 32 and sp["hyperparams"]["epochs"] == 15 and
          sp["recovery"]["poll_interval_ms"] == 100, "spec %s" % sp)
    for val, want in ((".nan", "got nan"), (".inf", "got inf"), ("-.Inf", "got -inf")):
        with open(job, "w") as f:
            f.write("name: y\ncommand: %s\nhyperparams: {lr: %s}\n" % (cmd, val))
        out = ckpt_cli(d, "submit", job)
        check(out.returncode != 0 and "hyperparams.lr" in out.stderr and want in out.stderr,
              "lr: %s: %s %r" % (val, out.returncode, out.stderr))
    st, body = d.req("POST", "/api/v1/operations",
                     {"command": ["/bin/true"], "hyperparams": {"lr": {"!!float": ".nan"}}})
    check(st == 400 and "got nan" in body["error"]["message"], "JSON form %s" % body)


def t_hardening(d):
    """Issue 11 item 7: on_recovery as one string with spaces refused with a
    hint; a token_file open to group/others refused; listen_tcp without a
    token_file refused; GET /metrics passes promtool check metrics."""
    st, body = d.req("POST", "/api/v1/operations",
                     {"command": ["/bin/true"], "recovery": {"on_recovery": "logger x"}})
    check(st == 400 and "recovery.on_recovery" in body["error"]["message"] and
          "[logger, x]" in body["error"]["message"], "on_recovery: %s %s" % (st, body))
    st, body = d.req("POST", "/api/v1/operations", {"command": "python3 train.py"})
    check(st == 400 and "argv list" in body["error"]["message"], "command: %s" % body)
    d.submit({"command": ["/bin/true"], "recovery": {"on_recovery": "logger"}})

    promtool = shutil.which("promtool")
    if not promtool:
        raise Fail("promtool not found: install the Debian package prometheus "
                   "(tools/install-deps)")
    opid = d.submit(spec(d, "--steps", "200", "--step-ms", "20"))
    wait_trace(d, lambda t: t["event"] == "first_step")
    time.sleep(0.3)
    st, m = d.req("GET", "/metrics")
    check("ckptd_trainer_step{" in m, "no running trainer in /metrics")
    out = subprocess.run([promtool, "check", "metrics"], input=m, capture_output=True,
                         text=True, timeout=30)
    check(out.returncode == 0, "promtool check metrics: %s %s\n%s" % (out.stdout, out.stderr, m))
    d.req("POST", "/api/v1/operations/%s/cancel" % opid)
    d.wait_status(opid, ["CANCELLED"])

    import socket as so
    with so.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = open(d.cfg).read()
    state2 = d.state + "-2"

    def start_with(extra):
        with open(d.cfg + "2", "w") as f:
            f.write(base + extra)
        return subprocess.run([d.bin, "--state-dir", state2, "--config", d.cfg + "2"],
                              capture_output=True, text=True, timeout=20)
    out = start_with("listen_tcp: %d\n" % port)
    check(out.returncode == 2 and "token_file" in out.stderr and "listen_tcp" in out.stderr,
          "listen_tcp without token_file: %s %r" % (out.returncode, out.stderr))
    tok = os.path.join(d.tmp, "token")
    with open(tok, "w") as f:
        f.write("t0ken\n")
    for mode in (0o644, 0o640, 0o602):
        os.chmod(tok, mode)
        out = start_with("listen_tcp: %d\ntoken_file: %s\n" % (port, tok))
        check(out.returncode == 2 and "chmod 600" in out.stderr and tok in out.stderr,
              "token_file mode %o: %s %r" % (mode, out.returncode, out.stderr))


def build_bin(rel):
    root = os.environ.get("CKPTFS_BUILD_ROOT", "")
    p = os.path.join(root, rel)
    return p if root and os.access(p, os.X_OK) else None


def mounted(path):
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(l.split()[4] == real for l in f)


def restart_on_ckptfs(d, extra=""):
    """Restart ckptd on a store it mounts itself with the built ckptfs
    (skip without one), extra: more config lines; returns (store, mount)."""
    fs = build_bin("fs/fuse/ckptfs")
    if not fs:
        raise Skip("fs/fuse/ckptfs is not built in this build dir")
    if not os.path.exists("/dev/fuse"):
        raise Skip("no /dev/fuse")
    d.stop()
    store, mnt = os.path.join(d.tmp, "store"), os.path.join(d.tmp, "mnt")
    with open(d.cfg, "w") as f:
        f.write("store: %s\nmount: %s\nckptfs: %s\n%s" % (store, mnt, fs, extra))
    d.mnt = mnt
    d.start()
    return store, mnt


def ckptfs_argv(mnt):
    """The argv of the ckptfs process serving mnt (None if there is none)."""
    for p in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")[:-1]
        except (OSError, ValueError):
            continue
        if len(argv) > 2 and os.path.basename(argv[0]) == b"ckptfs" and \
                os.fsencode(mnt) in argv:
            return [a.decode() for a in argv]
    return None


def t_ckptfs_options(d):
    """mount_options: the ckptfs that ckptd starts gets them as -o (here the
    resident tier), and a recovery works on that mount; a value that could
    be taken for other arguments is refused at start (exit 2); a ckptfs
    that refuses an option makes ckptd fall back to the plain directory."""
    store, mnt = restart_on_ckptfs(d, "mount_options: resident=16M,verify=first\n")
    check(mounted(mnt), "ckptd did not mount %s; see ckptd.out" % mnt)
    argv = ckptfs_argv(mnt)
    check(argv and argv[-2:] == ["-o", "resident=16M,verify=first"],
          "ckptfs runs as %s" % argv)
    opid = d.submit(spec(d, "--steps", "40", "--fault", "nan@25:attempt=1"))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=60)
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("/step-000020"), "selected %s" % sel["checkpoint"])
    # the ckptfs ckptd started logs into ckptd.log (its stderr, a file)
    with open(os.path.join(d.state, "ckptd.log")) as f:
        log = f.read()
    check(re.search(r"Z ckptfs\[\d+\]: mounted .* on %s\n" % re.escape(mnt), log),
          "no line of ckptfs in ckptd.log: %s" % log[-2000:])

    for bad in ("resident=2G verify=first", "-f", "''"):
        cfg = os.path.join(d.tmp, "bad.yaml")
        with open(cfg, "w") as f:
            f.write("mount: %s\nmount_options: %s\n" % (mnt, bad))
        out = subprocess.run([d.bin, "--state-dir", d.state + "2", "--config", cfg],
                             capture_output=True, text=True, timeout=10)
        check(out.returncode == 2 and "mount_options" in out.stderr,
              "mount_options %r: %s %r" % (bad, out.returncode, out.stderr))

    d.stop()
    subprocess.run(["fusermount3", "-u", mnt], check=True)
    with open(d.cfg) as f:
        cfg = f.read().replace("resident=16M,verify=first", "resident=lots")
    with open(d.cfg, "w") as f:
        f.write(cfg)
    d.start()
    check(not mounted(mnt), "mounted with resident=lots")
    with open(os.path.join(d.state, "ckptd.log")) as f:
        log = f.read()
    check("without mounting; using %s as a plain directory" % mnt in log, "log: %s" % log[-2000:])


def t_ckptfs_rados(d):
    """ckptd on a RADOS store (store: rados://POOL?conf=...), mounted by ckptd
    with the built ckptfs on a real one-node cluster (tests/ceph/cluster.sh):
    the NaN demo recovers from the newest good version, as on a directory."""
    fs = build_bin("fs/fuse/ckptfs")
    if not fs:
        raise Skip("fs/fuse/ckptfs is not built in this build dir")
    if not os.path.exists("/dev/fuse"):
        raise Skip("no /dev/fuse")
    cluster = os.path.join(os.environ.get("CKPTFS_SOURCE_ROOT", ""), "tests/ceph/cluster.sh")
    cdir = os.path.join(d.tmp, "ceph")
    r = subprocess.run(["bash", cluster, "start", cdir, "ckpt"], capture_output=True, text=True)
    try:
        if r.returncode == 77:
            raise Skip("the Ceph packages are missing: %s" % r.stderr.strip())
        check(r.returncode == 0, "the test cluster did not start: %s" % r.stderr[-2000:])
        d.stop()
        url = "rados://ckpt?conf=%s" % r.stdout.strip()
        mnt = os.path.join(d.tmp, "mnt")
        with open(d.cfg, "w") as f:
            f.write("store: %s\nmount: %s\nckptfs: %s\n" % (url, mnt, fs))
        d.mnt = mnt
        d.start()
        if not mounted(mnt):
            raise Fail("ckptd did not mount %s on %s; see ckptd.out" % (url, mnt))
        opid = d.submit(spec(d, "--steps", "40", "--ckpt-every", "5", "--fault",
                             "nan@25:attempt=1"))
        o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=60)
        check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
        sel = d.wait_event(opid, "checkpoint_selected")
        check(sel["checkpoint"].endswith("/step-000020"), "selected %s" % sel["checkpoint"])
        tr = [t for t in trace(os.path.join(d.tmp, "trace")) if t["event"] == "start"]
        check(len(tr) == 2 and tr[1]["start"] == 21, "trainer starts %s" % tr)
        st, ck = d.req("GET", "/api/v1/checkpoints/" + opid)
        check(ck["checkpoints"] and all(c["state"] == "committed" for c in ck["checkpoints"]),
              "states %s" % ck)
        objs = subprocess.run(["rados", "-c", r.stdout.strip(), "-p", "ckpt", "ls"],
                              capture_output=True, text=True).stdout.split()
        check(any(o.startswith("ckptfs.run.") for o in objs), "no run head in the pool: %s" % objs)
        d.stop()
        # ckptd unmounts; its ckptfs closes the store while the cluster is up
        for _ in range(150):
            if not any(mnt.encode() in open("/proc/%s/cmdline" % p, "rb").read()
                       for p in os.listdir("/proc") if p.isdigit()
                       and os.path.exists("/proc/%s/cmdline" % p)):
                break
            time.sleep(0.1)
    finally:
        subprocess.run(["bash", cluster, "stop", cdir])


def t_ckptfs(d):
    """On a real ckptfs mount that ckptd mounts itself: NaN recovery, then
    the newest version's data corrupted in the store (a flipped byte) is
    skipped because reading user.ckpt.verify fails."""
    store, mnt = restart_on_ckptfs(d)
    if not mounted(mnt):
        raise Fail("ckptd did not mount %s with %s; see ckptd.out" % (mnt, fs))
    st, info = d.req("GET", "/api/v1/daemon")
    check(info["mounted_by_ckptd"] and info["ckptfs_mount"], "daemon info %s" % info)
    opid = d.submit(spec(d, "--steps", "40", "--fault", "nan@25:attempt=1"))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=60)
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("/step-000020"), "selected %s" % sel["checkpoint"])
    st, ck = d.req("GET", "/api/v1/checkpoints/" + opid)
    check(all(c["state"] == "committed" for c in ck["checkpoints"]), "states %s" % ck)
    check(os.getxattr(o["run_dir"], "user.ckpt.metric") == b"val_loss:min" and
          os.getxattr(o["run_dir"], "user.ckpt.keep_last") == b"3",
          "the job's retention is not on the run dir")

    # corruption in the store: hang on attempt 1, flip a byte of step 20's data
    opid = d.submit(spec(d, "--steps", "40", "--ckpt-bytes", "200000", "--salt", "x2", "--fault",
                         "hang@25:attempt=1", trace_name="trace2",
                         recovery={"heartbeat_timeout_s": 2, "grace_s": 1}))
    wait_trace(d, lambda t: t["event"] == "hang", name="trace2")
    needle = hashlib.sha256(b"x2:1:20").digest()
    hit = None
    for root, _, files in os.walk(store):
        for fn in files:
            p = os.path.join(root, fn)
            with open(p, "rb") as fh:
                data = fh.read()
            i = data.find(needle)
            if i >= 0:
                hit = (p, i)
                break
        if hit:
            break
    if not hit:
        raise Skip("step 20's data is not stored verbatim in the store (compressed?); "
                   "cannot flip a byte of it")
    with open(hit[0], "r+b") as fh:
        fh.seek(hit[1])
        b = fh.read(1)
        fh.seek(hit[1])
        fh.write(bytes([b[0] ^ 0xFF]))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=60)
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("/step-000010"),
          "resumed from %s, not the previous good step-000010" % sel["checkpoint"])


def t_ckpt_train(d):
    """End to end with the reference trainer: NaN injected on attempt 1."""
    tr = build_bin("trainer/ckpt-train")
    if not tr:
        raise Skip("trainer/ckpt-train is not built in this build dir")
    opid = d.submit({"name": "e2e", "model": "tiny", "command": [
        tr, "--model", "tiny", "--max-steps", "40", "--checkpoint-every-steps", "10",
        "--device", "cpu", "--inject", "nan@25:attempt=1"], "recovery": dict(FAST)})
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=80)
    evs = names(d.events(opid))
    check(o["status"] == "COMPLETED", "status %s %s; events %s" % (o["status"], o["reason"],
                                                                  evs))
    check(subseq(["detected", "checkpoint_selected", "client_created", "completed"], evs),
          "events %s" % evs)
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"] and sel["checkpoint"].endswith("20"),
          "selected %s (want the step-20 version)" % sel["checkpoint"])
    check(o["progress"]["step"] == 40, "progress %s" % o["progress"])


def metrics_of(d, opid, q=""):
    st, m = d.req("GET", "/api/v1/operations/%s/metrics%s" % (opid, q))
    check(st == 200, "metrics%s answered %s %s" % (q, st, m))
    return m


def t_steps(d):
    """Every reported step is kept (attempt 2 trains steps 21-25 again after
    the NaN at 25: rows of their own), the cursor after_attempt/after
    follows, windows keep working (a NaN does not poison their mean), the
    steps survive a ckptd restart, and metrics_keep_steps prunes old ones."""
    opid = d.submit(spec(d, "--steps", "40", "--ckpt-every", "5", "--fault", "nan@25:attempt=1"))
    d.wait_status(opid, ["COMPLETED"])
    m = metrics_of(d, opid, "?resolution=step")
    want = [(1, s) for s in range(1, 26)] + [(2, s) for s in range(21, 41)]
    check(list(zip(m["attempt"], m["step"])) == want and m["count"] == len(want),
          "points %s" % list(zip(m["attempt"], m["step"])))
    check(m["last"] == {"attempt": 2, "step": 40}, "last %s" % m["last"])
    check(m["loss"][24] is None and m["nonfinite"] == [
        {"attempt": 1, "step": 25, "what": "loss=nan"}], "the NaN: %s" % m["nonfinite"])
    check(all(isinstance(v, float) for i, v in enumerate(m["loss"]) if i != 24), "losses")
    check(len(m["time_ms"]) == len(want) and len(m["epoch"]) == len(want), "columns")
    a = metrics_of(d, opid, "?resolution=step&after=35")
    check(a["step"] == [36, 37, 38, 39, 40], "after=35: %s" % a["step"])
    a = metrics_of(d, opid, "?resolution=step&after_attempt=1&after=23")
    check(list(zip(a["attempt"], a["step"])) == [(1, 24), (1, 25)] + want[25:],
          "after_attempt=1&after=23: %s" % list(zip(a["attempt"], a["step"])))
    a = metrics_of(d, opid, "?resolution=step&after_attempt=2&after=40")
    check(a["count"] == 0 and a["last"] is None and a["step"] == [], "past the end: %s" % a)
    for q in ("?resolution=2m", "?resolution=step&after=-1", "?resolution=step&after_attempt=1",
              "?after=x"):
        st, body = d.req("GET", "/api/v1/operations/%s/metrics%s" % (opid, q))
        check(st == 400 and body["error"]["code"] == "invalid_request", "%s: %s %s" %
              (q, st, body))
    for res, secs in (("30s", 30), ("5m", 300), ("1h", 3600)):
        w = metrics_of(d, opid, "?resolution=" + res)
        check(w["resolution"] == res and w["window_s"] == secs and w["windows"], "%s: %s" %
              (res, w))
        for x in w["windows"]:
            check(x["loss_min"] <= x["loss_mean"] <= x["loss_max"], "%s window %s" % (res, x))
    old = metrics_of(d, opid)
    check(old["window_s"] == 30 and "downsampled" in old, "no resolution: %s" % old)
    check(metrics_of(d, opid, "?resolution=30s&after=40")["windows"] == [], "30s after=40")

    d.stop()
    d.start()
    again = metrics_of(d, opid, "?resolution=step")
    check(again["step"] == m["step"] and again["loss"] == m["loss"], "after a restart: %s" %
          again["step"])

    d.stop()
    with open(d.cfg, "a") as f:
        f.write("metrics_keep_steps: 10\n")
    d.start()
    opid = d.submit(spec(d, "--steps", "60", trace_name="trace2"))
    d.wait_status(opid, ["COMPLETED"])
    steps = metrics_of(d, opid, "?resolution=step")["step"]
    check(set(range(51, 61)) <= set(steps) and min(steps) > 40,
          "metrics_keep_steps 10 of 60 steps kept %s" % steps)


def t_steps_live(d):
    """A running operation's steps answer with the ones still waiting in
    memory (written at most once a second): every step its progress has
    shown is there, in order, once; a follower's cursor reads each step
    exactly once; and the whole is what is stored at the end."""
    opid = d.submit(spec(d, "--steps", "150", "--step-ms", "20", "--ckpt-every", "50"))
    seen, last, reads = [], None, 0
    while True:
        o = d.op(opid)
        m = metrics_of(d, opid, "?resolution=step")
        keys = list(zip(m["attempt"], m["step"]))
        check(keys == sorted(set(keys)), "not in order or twice: %s" % keys)
        if o["progress"]["step"] is not None and o["status"] == "RUNNING":
            check((1, o["progress"]["step"]) in keys,
                  "progress at step %s, the steps end at %s" % (o["progress"]["step"],
                                                               keys[-1:]))
        q = "?resolution=step" + ("&after_attempt=%d&after=%d" % last if last else "")
        f = metrics_of(d, opid, q)
        seen += list(zip(f["attempt"], f["step"]))
        if f["last"]:
            last = (f["last"]["attempt"], f["last"]["step"])
        reads += 1
        if o["status"] not in ("PENDING", "RUNNING"):
            break
        time.sleep(0.05)
    d.wait_status(opid, ["COMPLETED"])
    f = metrics_of(d, opid, "?resolution=step" + ("&after_attempt=%d&after=%d" % last
                                                   if last else ""))
    seen += list(zip(f["attempt"], f["step"]))
    want = [(1, s) for s in range(1, 151)]
    check(seen == want, "the follower read %s (%d reads)" % (seen, reads))
    check(list(zip(*[metrics_of(d, opid, "?resolution=step")[k] for k in ("attempt", "step")]))
          == want, "stored at the end")


def t_dashboard_http(d):
    """The page on the Unix socket (gzip, ETag, HEAD) and over TCP only with
    the token: `POST /api/v1/dashboard` opens a loopback port with a fresh
    token, and a configured listen_tcp + token_file are used as they are."""
    import http.client
    import socket as so
    st, body, r = d.req("GET", "/", raw=True)
    check(st == 200 and r.getheader("Content-Type") == "text/html; charset=utf-8" and
          b"window.ckptDash" in body and r.getheader("Content-Encoding") is None,
          "GET / %s %s" % (st, r.getheaders()))
    check("default-src 'none'" in r.getheader("Content-Security-Policy"), "no CSP")
    st, gz, r = d.req("GET", "/", headers={"Accept-Encoding": "gzip"}, raw=True)
    import gzip
    check(st == 200 and r.getheader("Content-Encoding") == "gzip" and
          gzip.decompress(gz) == body, "gzip: %s %s" % (st, r.getheaders()))
    st, _, r2 = d.req("GET", "/index.html", headers={"If-None-Match": r.getheader("ETag")},
                      raw=True)
    check(st == 304, "If-None-Match answered %s" % st)
    st, head, _ = d.req("HEAD", "/", raw=True)
    check(st == 200 and head == b"", "HEAD %s" % st)
    st, _ = d.req("POST", "/")
    check(st == 405, "POST / answered %s" % st)

    def tcp(port, method, path, hdr=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request(method, path, headers=hdr or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    st, info = d.req("POST", "/api/v1/dashboard")
    check(st == 200 and len(info["token"]) == 48 and info["port"] > 0 and
          info["url"] == "http://127.0.0.1:%d/?token=%s" % (info["port"], info["token"]),
          "dashboard: %s %s" % (st, info))
    port, tok = info["port"], info["token"]
    st, again = d.req("POST", "/api/v1/dashboard")
    check(again == info, "a second POST /api/v1/dashboard: %s" % again)
    # a wrong token: the real one with its last character changed (a fixed
    # "0" was the real token whenever that ended in 0, one run in 16)
    wrong = tok[:-1] + ("1" if tok[-1] == "0" else "0")
    for method, path, hdr, want in (
            ("GET", "/", None, 401), ("GET", "/?token=" + wrong, None, 401),
            ("GET", "/?token=" + tok, None, 200),
            ("GET", "/", {"Authorization": "Bearer " + tok}, 200),
            ("GET", "/api/v1/operations?token=" + tok, None, 200),
            ("GET", "/metrics", None, 401),
            ("POST", "/api/v1/daemon/stop?token=" + tok, None, 401)):
        st, body = tcp(port, method, path, hdr)
        check(st == want, "%s %s %s answered %s" % (method, path.replace(tok, "TOKEN"),
                                                   hdr and "with the header", st))
        check(want == 200 or b"ckptDash" not in body, "the page without the token")

    with so.socket() as s:
        s.bind(("127.0.0.1", 0))
        cport = s.getsockname()[1]
    tf = os.path.join(d.tmp, "token")
    with open(tf, "w") as f:
        f.write("configured-token\n")
    os.chmod(tf, 0o600)
    d.stop()
    with open(d.cfg, "a") as f:
        f.write("listen_tcp: %d\ntoken_file: %s\n" % (cport, tf))
    d.start()
    st, info = d.req("POST", "/api/v1/dashboard")
    check(st == 200 and info["port"] == cport and info["token"] == "configured-token",
          "with listen_tcp and token_file: %s" % info)
    st, _ = tcp(cport, "GET", "/?token=configured-token")
    check(st == 200, "configured listener answered %s" % st)


def t_nice(d):
    """resources.nice: the trainer runs at that nice, and so does its
    session's autogroup where the kernel has one (a trainer's own nice
    counts for nothing against other sessions there); a bad value is
    refused at submit with the key. Every answer has ckptd's own time in
    Server-Timing (what the soak reports next to the client's)."""
    st, body = d.req("POST", "/api/v1/operations",
                     spec(d, "--steps", "10", resources={"gpus": 0, "nice": 20}))
    check(st == 400 and "resources.nice" in body["error"]["message"], "nice 20: %s %s" %
          (st, body))
    opid = d.submit(spec(d, "--steps", "400", "--step-ms", "20", resources={"gpus": 0,
                                                                              "nice": 7}))
    deadline = time.time() + 20
    pid = None
    while time.time() < deadline and not pid:
        pid = d.op(opid).get("pid")
        time.sleep(0.1)
    check(pid, "no trainer pid")
    with open("/proc/%d/stat" % pid) as f:
        nice = int(f.read().rsplit(")", 1)[1].split()[16])
    check(nice == 7, "the trainer's nice is %d, not 7" % nice)
    if os.path.exists("/proc/%d/autogroup" % pid):
        with open("/proc/%d/autogroup" % pid) as f:
            ag = f.read().strip()
        check(ag.endswith(" nice 7"), "the trainer's autogroup: %s" % ag)
        with open("/proc/self/autogroup") as f:
            check(f.read().split()[0] != ag.split()[0], "the trainer is in our session")
    st, _, r = d.req("GET", "/healthz", raw=True)
    timing = r.getheader("Server-Timing") or ""
    check(st == 200 and timing.startswith("ckptd;dur=") and float(timing[10:]) >= 0,
          "Server-Timing: %r" % timing)
    st, _ = d.req("POST", "/api/v1/operations/%s/cancel" % opid)
    check(st in (200, 202), "cancel: %s" % st)
    d.wait_status(opid, ["CANCELLED"])


CASES = {
    "nan": t_nan,
    "crash_exit1": crash("exit1", None),
    "crash_sigkill": crash("sigkill", 9),
    "crash_sigsegv": crash("sigsegv", 11),
    "hang": t_hang,
    "exit78": t_exit78,
    "exhausted": t_exhausted,
    "backoff": t_backoff,
    "corrupt_newest": t_corrupt_newest,
    "spike": t_spike,
    "corrupted_report": t_corrupted_report,
    "kill9_running": t_kill9_running,
    "kill9_recovery": t_kill9_recovery,
    "sigterm_restart": t_sigterm_restart,
    "cancel_resume": t_cancel_resume,
    "malformed": t_malformed,
    "secrets": t_secrets,
    "cron_cleanup": t_cron_cleanup,
    "ckptfs": t_ckptfs,
    "ckptfs_rados": t_ckptfs_rados,
    "ckptfs_options": t_ckptfs_options,
    "config": t_config,
    "poll_error": t_poll_error,
    "down_exit": t_down_exit,
    "strategies": t_strategies,
    "concurrency": t_concurrency,
    "ckpt_train": t_ckpt_train,
    "steps": t_steps,
    "steps_live": t_steps_live,
    "dashboard_http": t_dashboard_http,
    "db_migrate": t_db_migrate,
    "cron_schedule": t_cron_schedule,
    "fd_leak": t_fd_leak,
    "history": t_history,
    "checkpoint_reports": t_checkpoint_reports,
    "reconcile": t_reconcile,
    "demo_events": t_demo_events,
    "http": t_http,
    "yaml_numbers": t_yaml_numbers,
    "hardening": t_hardening,
    "nice": t_nice,
}


# Cases about counts, not durability, whose ckptd state dir goes on tmpfs:
# fd_leak's 300 operations are ~1,500 fsyncs of ckptd.db (25 s on a disk,
# 5 s on tmpfs).
ON_TMPFS = {"fd_leak"}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print("usage: test_ckptd.py CKPTD_BIN CASE (%s)" % ", ".join(CASES))
        return 2
    tmp = None
    if sys.argv[2] in ON_TMPFS and os.access("/dev/shm", os.W_OK):
        import tempfile
        tmp = tempfile.mkdtemp(prefix="ckptd-test-", dir="/dev/shm")
    d = Ckptd(sys.argv[1], tmp=tmp)
    try:
        d.start()
        CASES[sys.argv[2]](d)
        rc = d.stop()
        bad = d.sanitizer_findings()
        check(not bad, "sanitizer findings in ckptd or a shim:\n%s" % bad)
        check(rc == 0, "ckptd exited with status %s on SIGTERM" % rc)
        print("ok:", sys.argv[2])
        return 0
    except Skip as e:
        print("SKIP:", sys.argv[2], e)
        return 77
    except Fail as e:
        print("FAIL:", sys.argv[2], e)
        print("state dir", d.tmp)
        try:
            with open(os.path.join(d.tmp, "ckptd.out")) as f:
                print(f.read()[-3000:])
        except OSError:
            pass
        return 1
    finally:
        d.cleanup()  # also unmounts d.mnt


if __name__ == "__main__":
    sys.exit(main())
