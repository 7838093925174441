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
    opid = d.submit(spec(d, "--steps", "30", "--fault", "hang@15:attempt=1",
                         recovery={"heartbeat_timeout_s": 1, "grace_s": 1}))
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
        check(json.load(f)["type"] == "cancellation", "not the cancellation checkpoint")
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


def build_bin(rel):
    root = os.environ.get("CKPTFS_BUILD_ROOT", "")
    p = os.path.join(root, rel)
    return p if root and os.access(p, os.X_OK) else None


def mounted(path):
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(l.split()[4] == real for l in f)


def t_ckptfs(d):
    """On a real ckptfs mount that ckptd mounts itself: NaN recovery, then
    the newest version's data corrupted in the store (a flipped byte) is
    skipped because reading user.ckpt.verify fails."""
    fs = build_bin("fs/fuse/ckptfs")
    if not fs:
        raise Skip("fs/fuse/ckptfs is not built in this build dir")
    if not os.path.exists("/dev/fuse"):
        raise Skip("no /dev/fuse")
    d.stop()
    store, mnt = os.path.join(d.tmp, "store"), os.path.join(d.tmp, "mnt")
    with open(d.cfg, "w") as f:
        f.write("store: %s\nmount: %s\nckptfs: %s\n" % (store, mnt, fs))
    d.mnt = mnt
    d.start()
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
    "config": t_config,
    "poll_error": t_poll_error,
    "down_exit": t_down_exit,
    "strategies": t_strategies,
    "concurrency": t_concurrency,
    "ckpt_train": t_ckpt_train,
    "db_migrate": t_db_migrate,
}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print("usage: test_ckptd.py CKPTD_BIN CASE (%s)" % ", ".join(CASES))
        return 2
    d = Ckptd(sys.argv[1])
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
