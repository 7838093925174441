#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_ranks.py CKPTD_BIN CASE - gangs of ranks (SPEC §9, docs/ranks.md)
with a real ckptd: fake ranks (fake_rank.py, stdlib) for the supervision
rules, the real PyTorch DDP example (examples/pytorch_ddp_train.py) for
exact resume, torchrun itself for the environment. Exit 0 pass, 1 fail,
77 skip.

CKPT_TEST_LARGE=1: gang_kill_in_save runs 20 rounds (3 otherwise)."""
import json
import os
import random
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Fail, Skip, check, pid_alive, run_case, trace  # noqa: E402
from test_ckptd import build_bin, integrity, mounted, names, restart_on_ckptfs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
FAKE_RANK = os.path.join(HERE, "fake_rank.py")
DDP = os.path.join(ROOT, "examples", "pytorch_ddp_train.py")
FAST = {"backoff_ms": 0, "max_backoff_ms": 1000, "grace_s": 2, "poll_interval_ms": 200}


def gang_spec(d, nproc, *args, recovery=None, trace_name="trace", **kw):
    rec = dict(FAST)
    rec.update(recovery or {})
    s = {"name": "gang", "command": [sys.executable, FAKE_RANK, "--trace",
                                     os.path.join(d.tmp, trace_name)] + list(args),
         "resources": {"procs_per_node": nproc, "gpus": 0}, "recovery": rec}
    s.update(kw)
    return s


def starts(d, name="trace"):
    return [t for t in trace(os.path.join(d.tmp, name)) if t["event"] == "start"]


def by_attempt(ts):
    out = {}
    for t in ts:
        out.setdefault(t["attempt"], []).append(t)
    return out


def wait_ranks(d, opid, pred, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        o = d.op(opid)
        if o["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            raise Fail("operation %s ended (%s: %s) while waiting for its ranks" %
                       (opid, o["status"], o["reason"]))
        if o.get("ranks") and pred(o):
            return o
        time.sleep(0.02)
    raise Fail("rank condition not met in %d s: %s" % (timeout, d.op(opid).get("ranks")))


def check_gang_restart(d, opid, nproc, name="trace"):
    """Every attempt started all ranks, each attempt's ranks with one
    CKPT_RESUME_FROM, the one checkpoint_selected chose."""
    att = by_attempt(starts(d, name))
    sels = [e for e in d.events(opid) if e["event"] == "checkpoint_selected"]
    for a, ts in sorted(att.items()):
        check(sorted(t["rank"] for t in ts) == list(range(nproc)),
              "attempt %d started ranks %s" % (a, sorted(t["rank"] for t in ts)))
        resumes = {t["resume"] for t in ts}
        check(len(resumes) == 1, "attempt %d: the ranks resumed from %s" % (a, resumes))
        if a > 1:
            check(resumes == {sels[a - 2]["checkpoint"]},
                  "attempt %d resumed from %s, checkpoint_selected said %s" %
                  (a, resumes, sels[a - 2]["checkpoint"]))
    return att


def t_gang_fault(d):
    """A rank that exits 1 stops the whole gang, which restarts together from
    one version; events name the rank and host; the API lists each rank; the
    logs of each rank; the CLI's table and --rank."""
    opid = d.submit(gang_spec(d, 3, "--steps", "60", "--step-ms", "40", "--ckpt-every", "10",
                              "--fault", "exit1@15:rank=1"))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=90)
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    att = check_gang_restart(d, opid, 3)
    check(sorted(att) == [1, 2], "attempts %s" % sorted(att))
    evs = d.events(opid)
    check(all(e.get("host") == o["host"] for e in evs), "an event without the host: %s" % evs)
    det = [e for e in evs if e["event"] == "detected"]
    check(len(det) == 1 and det[0]["rank"] == 1 and
          det[0]["reason"] == "rank 1 on %s: exit status 1" % o["host"], "detected %s" % det)
    sel = [e for e in evs if e["event"] == "checkpoint_selected"]
    check(sel[0]["checkpoint"].endswith("/step-000010.a1"), "selected %s" % sel)
    # the others were stopped by ckptd (SIGTERM), not left to run on
    ends = [t for t in trace(os.path.join(d.tmp, "trace"))
            if t["event"] == "end" and t["attempt"] == 1]
    check(sorted(t["rank"] for t in ends) == [0, 2] and all(t["stopped"] for t in ends),
          "attempt 1's other ranks: %s" % ends)
    # the API: each rank, its host, step, exit
    check(o["world_size"] == 3 and [r["rank"] for r in o["ranks"]] == [0, 1, 2],
          "ranks %s" % o.get("ranks"))
    check(all(r["host"] == o["host"] and r["step"] == 60 and r["exit"] == {"code": 0}
              for r in o["ranks"]), "ranks %s" % o["ranks"])
    # each rank's own environment and notify socket
    envs = {t["rank"]: t["env"] for t in att[1]}
    check(len({e["CKPT_NOTIFY_SOCKET"] for e in envs.values()}) == 3, "shared notify sockets")
    check(len({e["CKPT_RUN_DIR"] for e in envs.values()}) == 1, "run dirs differ")
    check(all(envs[k]["RANK"] == str(k) and envs[k]["LOCAL_RANK"] == str(k) and
              envs[k]["WORLD_SIZE"] == "3" and envs[k]["LOCAL_WORLD_SIZE"] == "3" and
              envs[k]["GROUP_RANK"] == "0" and envs[k]["MASTER_ADDR"] == "127.0.0.1"
              for k in envs), "torchrun variables %s" % envs)
    check(len({e["MASTER_PORT"] for e in envs.values()}) == 1, "MASTER_PORT differs by rank")
    # logs: rank 0's by default, each rank's with ?rank=K
    st, body = d.req("GET", "/api/v1/operations/%s/logs?rank=2" % opid)
    check(st == 200 and "--- ckptd: attempt 2 ---" in body, "rank 2's log: %s %r" % (st, body))
    st, body = d.req("GET", "/api/v1/operations/%s/logs?rank=7" % opid)
    check(st == 404 and "no rank 7" in body["error"]["message"], "rank 7: %s %s" % (st, body))
    ckpt = build_bin("tools/ckpt/ckpt")
    if ckpt:
        env = dict(os.environ, CKPT_SOCKET=d.sock)
        out = subprocess.run([ckpt, "ops", "status", opid], env=env, capture_output=True,
                             text=True)
        check(out.returncode == 0 and "Ranks:           3 here of 3" in out.stdout and
              "RANK  HOST" in out.stdout, "ckpt ops status:\n%s%s" % (out.stdout, out.stderr))
        out = subprocess.run([ckpt, "ops", "logs", opid, "--rank", "1"], env=env,
                             capture_output=True, text=True)
        check(out.returncode == 0 and "--- ckptd: attempt 1 ---" in out.stdout,
              "ckpt ops logs --rank 1: %s %s" % (out.stdout, out.stderr))


def t_gang_detect(d):
    """NaN on rank 2, a hang of rank 1, CORRUPTED=1 from rank 0: each stops
    the gang and rolls it back to a version before the fault; exit 78 of one
    rank fails the gang without a retry."""
    cases = [("nan@25:rank=2", 2, "loss is nan at step 25", "/step-000020.a1"),
             ("hang@25:rank=1", 1, "hang: no report", "/step-000020.a1"),
             ("corrupted@25:rank=0", 0, "rank 0 saw bad data", "/step-000020.a1")]
    ops = []
    for i, (fault, rank, why, sel) in enumerate(cases):
        ops.append(d.submit(gang_spec(d, 3, "--steps", "40", "--step-ms", "20", "--ckpt-every",
                                      "10", "--fault", fault, trace_name="trace%d" % i,
                                      recovery={"heartbeat_timeout_s": 3})))
        o = d.wait_status(ops[-1], ["COMPLETED", "FAILED"], timeout=90)
        check(o["status"] == "COMPLETED", "%s: %s %s" % (fault, o["status"], o["reason"]))
        det = d.wait_event(ops[-1], "detected")
        check(det["rank"] == rank and why in det["reason"], "%s: detected %s" % (fault, det))
        s = d.wait_event(ops[-1], "checkpoint_selected")
        check(s["checkpoint"].endswith(sel), "%s: selected %s" % (fault, s["checkpoint"]))
        check_gang_restart(d, ops[-1], 3, "trace%d" % i)
    opid = d.submit(gang_spec(d, 3, "--steps", "200", "--step-ms", "20", "--fault",
                              "exit78@5:rank=1", trace_name="trace78"))
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=60)
    check(o["status"] == "FAILED" and "rank 1 on" in o["reason"] and "EX_CONFIG" in o["reason"],
          "exit 78: %s %s" % (o["status"], o["reason"]))
    # one attempt only (a rank stopped before it wrote its start is no retry)
    st78 = starts(d, "trace78")
    check(st78 and all(t["attempt"] == 1 for t in st78), "exit 78 was retried: %s" %
          [(t["rank"], t["attempt"]) for t in st78])
    check("checkpoint_selected" not in names(d.events(opid)), "exit 78: a recovery began")


def t_gang_readopt(d):
    """kill -9 of ckptd while a gang runs, and again while it is stopping
    after a fault: a restarted ckptd re-adopts every rank (none started
    twice) and the gang completes."""
    opid = d.submit(gang_spec(d, 3, "--steps", "100", "--step-ms", "30", "--ckpt-every", "10",
                              "--fault", "exit1@70:rank=2"))
    o = wait_ranks(d, opid, lambda o: all((r["step"] or 0) >= 5 for r in o["ranks"]))
    pids = [r["pid"] for r in o["ranks"]]
    d.kill9()
    time.sleep(0.3)
    check(all(pid_alive(p) for p in pids), "ranks died with ckptd")
    integrity(d)
    d.start()
    o = d.op(opid)
    check(o["status"] == "RUNNING" and [r["pid"] for r in o["ranks"]] == pids,
          "after the restart: %s %s" % (o["status"], o["ranks"]))
    # the fault at 70: kill -9 ckptd as soon as it is stopping the gang
    for _ in range(3000):
        if d.op(opid)["status"] == "RECOVERING":
            break
        time.sleep(0.01)
    d.kill9()
    d.start()
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=90)
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    att = check_gang_restart(d, opid, 3)
    check(sorted(att) == [1, 2], "attempts %s (a rank started twice?)" % sorted(att))
    evs = names(d.events(opid))
    check(evs.count("completed") == 1 and evs.count("detected") == 1, "events %s" % evs)
    integrity(d)


ENVDUMP = r"""
import json, os, sys
with open(os.path.join(sys.argv[1], "env.%s.json" % os.environ["RANK"]), "w") as f:
    json.dump(dict(os.environ), f)
"""

# What ckptd does differently from torchrun on purpose (docs/ranks.md).
ONLY_TORCHRUN = {"TORCHELASTIC_USE_AGENT_STORE"}
VALUE_DIFFERS = {"MASTER_PORT", "TORCHELASTIC_ERROR_FILE", "TORCHELASTIC_RUN_ID"}


def t_gang_env(d):
    """torchrun --nproc_per_node 2 and ckpt run --nproc-per-node 2 give the
    same script the same environment, but for the differences documented in
    docs/ranks.md and SPEC §4's CKPT_* (and CUDA_VISIBLE_DEVICES & co., which
    ckptd sets from the GPUs it assigns)."""
    torchrun = "/usr/bin/torchrun"
    ckpt = build_bin("tools/ckpt/ckpt")
    if not os.access(torchrun, os.X_OK):
        raise Skip("no torchrun (python3-torch)")
    if not ckpt:
        raise Skip("tools/ckpt/ckpt is not built")
    script = os.path.join(d.tmp, "envdump.py")
    with open(script, "w") as f:
        f.write(ENVDUMP)
    a, b = os.path.join(d.tmp, "torchrun"), os.path.join(d.tmp, "ckpt")
    os.mkdir(a)
    os.mkdir(b)
    # both trainers start from one environment: ckptd's (the test's), as
    # torchrun's workers start from torchrun's
    # Debian's torch 1.13 on Python 3.11 fails to map its default "-r 0"
    # (IntFlag iteration changed); -r 1 -t 1 takes the mapping's other path
    r = subprocess.run([torchrun, "-r", "1", "-t", "1", "--log_dir",
                        os.path.join(d.tmp, "tlog"), "--nproc_per_node", "2",
                        script, a], env=dict(d.env), capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0 and "no attribute 'get'" in r.stderr:
        raise Skip("this torchrun cannot start workers: %s" % r.stderr[-300:])
    check(r.returncode == 0, "torchrun: %s" % r.stderr[-2000:])
    env = dict(os.environ, CKPT_SOCKET=d.sock)
    r = subprocess.run([ckpt, "run", "--nproc-per-node", "2", "--max-attempts", "1", "--",
                        "/usr/bin/python3", script, b], env=env, capture_output=True, text=True,
                       timeout=120)
    check(r.returncode == 0, "ckpt run: %s %s" % (r.stdout[-1000:], r.stderr[-1000:]))
    for rank in (0, 1):
        with open(os.path.join(a, "env.%d.json" % rank)) as f:
            te = json.load(f)
        with open(os.path.join(b, "env.%d.json" % rank)) as f:
            ce = json.load(f)
        ours = {k for k in ce if k.startswith("CKPT_") or
                k in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
        only_t = set(te) - set(ce)
        only_c = set(ce) - set(te) - ours
        check(only_t == ONLY_TORCHRUN, "rank %d: only torchrun sets %s" % (rank, only_t))
        check(not only_c, "rank %d: only ckpt run sets %s" % (rank, only_c))
        differ = {k for k in te if k in ce and te[k] != ce[k]}
        check(differ == VALUE_DIFFERS, "rank %d: values differ for %s: %s" %
              (rank, differ, {k: (te[k], ce[k]) for k in differ}))
        check(ce["CKPT_RUN_DIR"] and ce["CKPT_NOTIFY_SOCKET"] and ce["RANK"] == str(rank),
              "rank %d: %s" % (rank, ce))


def version_complete(vdir, world, kib):
    for k in range(world):
        p = os.path.join(vdir, "shard-%d.bin" % k)
        if not os.path.exists(p) or os.path.getsize(p) != kib * 1024:
            return False
        if not os.path.exists(os.path.join(vdir, "state-%d.json" % k)):
            return False
    return True


def xattr(path, name):
    try:
        return os.getxattr(path, name).decode()
    except OSError:
        return None


def t_gang_kill_in_save(d):
    """kill -9 of one rank at a random moment of a multi-rank save, round
    after round, on a real ckptfs mount: no committed version ever misses a
    rank's files, and each restart resumes every rank from the newest
    version committed before (never one the killed attempt left open)."""
    rounds = 20 if os.environ.get("CKPT_TEST_LARGE") == "1" else 3
    world, kib = 3, 256
    store, mnt = restart_on_ckptfs(d)
    check(mounted(mnt), "ckptd did not mount %s" % mnt)
    rng = random.Random(int(os.environ.get("CKPT_TEST_SEED", "0")) or None)
    opid = d.submit(gang_spec(d, world, "--steps", "100000", "--step-ms", "20", "--ckpt-every",
                              "3", "--shard-kib", str(kib), "--save-ms", "300",
                              recovery={"max_attempts": rounds + 5},
                              # every version stays to be looked at (no retention)
                              checkpoint={"keep_last": 0, "keep_best": 0}))
    killed_in_save = 0
    d.wait_event(opid, "checkpoint_committed", timeout=90)  # something to go back to
    for rnd in range(rounds):
        att = rnd + 1
        target = rng.randrange(world)
        # every rank of the attempt runs (a slow start under load would
        # otherwise be stopped before its first line), the target saves
        o = wait_ranks(d, opid, lambda o: o["attempt"] == att and o["status"] == "RUNNING" and
                       all((r["step"] or 0) > 0 for r in o["ranks"]) and
                       o["ranks"][target]["state"] == "saving", timeout=90)
        pid = o["ranks"][target]["pid"]
        time.sleep(rng.uniform(0, 0.35))
        saving = d.op(opid)["ranks"][target]["state"] == "saving"
        os.kill(pid, signal.SIGKILL)
        killed_in_save += saving
        d.wait_event(opid, "client_created", count=att, timeout=90)
    # the last attempt runs (each rank has reported) before it is cancelled
    wait_ranks(d, opid, lambda o: o["attempt"] == rounds + 1 and
               all((r["step"] or 0) > 0 for r in o["ranks"]), timeout=90)
    st, _ = d.req("POST", "/api/v1/operations/%s/cancel" % opid)
    check(st == 200, "cancel answered %s" % st)
    o = d.wait_status(opid, ["CANCELLED", "FAILED"], timeout=90)
    run = o["run_dir"]
    committed, left = {}, []
    for name in sorted(os.listdir(run)):
        vdir = os.path.join(run, name)
        if name in ("latest", "best") or not os.path.isdir(vdir):
            continue
        state = xattr(vdir, "user.ckpt.state")
        if state == "committed":
            check(version_complete(vdir, world, kib),
                  "committed %s misses a rank's files: %s" % (name, os.listdir(vdir)))
            committed[name] = int(xattr(vdir, "user.ckpt.seq"))
        else:
            left.append((name, state))
    check(len(left) >= killed_in_save // 2,
          "only %d versions left uncommitted after %d kills in a save" %
          (len(left), killed_in_save))
    check(all(s == "open" for _, s in left), "left versions %s" % left)
    sels = [e for e in d.events(opid) if e["event"] == "checkpoint_selected"]
    check(len(sels) == rounds, "%d recoveries for %d kills" % (len(sels), rounds))
    for rnd, e in enumerate(sels):
        name = os.path.basename(e["checkpoint"])
        check(name in committed, "round %d resumed from %s, not a committed version" %
              (rnd + 1, name))
        # newest: no version the killed attempt (or earlier) committed after it
        older = [n for n, seq in committed.items()
                 if seq > committed[name] and int(n.rsplit(".a", 1)[1]) <= rnd + 1]
        check(not older, "round %d resumed from %s although %s was committed" %
              (rnd + 1, name, older))
    check_gang_restart(d, opid, world)
    print("%d rounds, %d kills inside a save, %d versions left open, %d committed" %
          (rounds, killed_in_save, len(left), len(committed)))


def torch_python():
    for py in (sys.executable, "/usr/bin/python3"):
        r = subprocess.run([py, "-c", "import torch.distributed"], capture_output=True)
        if r.returncode == 0:
            return py
    return None


def ddp_run(d, py, tag, extra=(), kill_rank=None, kill_at=0):
    spec = {"name": "ddp-" + tag,
            "command": [py, DDP, "--steps", "40", "--save-every", "10", "--step-sleep", "0.02",
                        "--timeout", "20"] + list(extra),
            "resources": {"procs_per_node": 4, "gpus": 0},
            "recovery": dict(FAST, heartbeat_timeout_s=0, max_attempts=3)}
    opid = d.submit(spec)
    if kill_rank is not None:
        o = wait_ranks(d, opid, lambda o: (o["ranks"][kill_rank]["step"] or 0) >= kill_at,
                       timeout=240)
        os.kill(o["ranks"][kill_rank]["pid"], signal.SIGKILL)
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=300)
    check(o["status"] == "COMPLETED", "%s: %s %s" % (tag, o["status"], o["reason"]))
    return opid, o


def final_files(o):
    vdir = os.path.join(o["run_dir"], "step-000040")
    check(xattr(vdir, "user.ckpt.state") == "committed", "%s is not committed" % vdir)
    out = {}
    for n in ["model.pt", "trainer_state.json"] + ["optim-rank-%d.pt" % k for k in range(4)]:
        with open(os.path.join(vdir, n), "rb") as f:
            out[n] = f.read()
    return out


def t_ddp(d):
    """examples/pytorch_ddp_train.py, 4 ranks, gloo, ZeroRedundancyOptimizer,
    on ckptfs: kill -9 of rank 2 mid-run, and a NaN reported by rank 1,
    both end with the model and every optimizer shard bitwise those of an
    uninterrupted run; all 4 ranks restart from the same version."""
    py = torch_python()
    if not py:
        raise Skip("no Python with torch (python3-torch)")
    restart_on_ckptfs(d)
    _, ref = ddp_run(d, py, "ref")
    want = final_files(ref)
    opid, o = ddp_run(d, py, "kill", kill_rank=2, kill_at=25)
    det = d.wait_event(opid, "detected")
    check(det["rank"] == 2 and "signal 9" in det["reason"], "detected %s" % det)
    got = final_files(o)
    check(got == want, "after kill -9 of rank 2: %s differ" %
          [n for n in want if got[n] != want[n]])
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("/step-000020") or sel["checkpoint"].endswith("/step-000010"),
          "kill: selected %s" % sel["checkpoint"])
    evs = names(d.events(opid))
    check(evs.count("client_created") == 1, "kill: events %s" % evs)
    opid, o = ddp_run(d, py, "nan", extra=["--inject", "nan@25:rank=1"])
    det = d.wait_event(opid, "detected")
    check(det["rank"] == 1 and "nan" in det["reason"], "detected %s" % det)
    sel = d.wait_event(opid, "checkpoint_selected")
    check(sel["checkpoint"].endswith("/step-000020"), "nan: selected %s" % sel["checkpoint"])
    got = final_files(o)
    check(got == want, "after a NaN on rank 1: %s differ" %
          [n for n in want if got[n] != want[n]])
    # each attempt's ranks all got the selected version (their logs say so)
    for k in range(4):
        st, log = d.req("GET", "/api/v1/operations/%s/logs?rank=%d" % (opid, k))
        check(st == 200 and "rank %d: resumed from %s at step 20" % (k, sel["checkpoint"]) in log,
              "rank %d's log: %s" % (k, log[-500:] if isinstance(log, str) else log))


CASES = {n[2:]: f for n, f in list(globals().items()) if n.startswith("t_")}


if __name__ == "__main__":
    sys.exit(run_case(CASES, sys.argv))
