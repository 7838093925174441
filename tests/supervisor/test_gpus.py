#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_gpus.py CKPTD_BIN CASE FAKE_NVML_SO - resources.gpus with a real
ckptd, real shims and fake trainers (fake_trainer.py) that record the
CUDA_VISIBLE_DEVICES they were given: assignment, the queue, recovery on the
same GPUs, kill -9 of ckptd, the inventory (config, a /proc fixture, NVML's
dlopen path), the real ckpt-train, and on a GPU machine NVML vs nvidia-smi.
Exit 0 pass, 1 fail, 77 skip."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Ckptd, Fail, Skip, check, fake_cmd, pid_alive, trace  # noqa: E402

FAST = {"backoff_ms": 50, "max_backoff_ms": 1000, "grace_s": 2, "poll_interval_ms": 200}
FOUR = "[0, 1, 2, 3]"
OPS = "/api/v1/operations"


def spec(d, gpus, *args, name, recovery=None):
    rec = dict(FAST)
    rec.update(recovery or {})
    s = {"name": name, "command": fake_cmd(d.tmp, *args, name="trace" + name),
         "recovery": rec}
    if gpus is not None:
        s["resources"] = {"gpus": gpus}
    return s


def hold(d, name):
    return os.path.join(d.tmp, "release" + name)


def release(d, name):
    open(hold(d, name), "w").close()


def starts(d, name):
    return [t for t in trace(os.path.join(d.tmp, "trace" + name)) if t["event"] == "start"]


def wait_start(d, name, attempt=1, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        for t in starts(d, name):
            if t["attempt"] == attempt:
                return t
        time.sleep(0.05)
    raise Fail("trainer %s attempt %d did not start within %d s" % (name, attempt, timeout))


def cvd(t):
    """The trainer's CUDA_VISIBLE_DEVICES as a list of ints, checking that
    NVIDIA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER came with it."""
    env = t["gpus"]
    v = env["CUDA_VISIBLE_DEVICES"]
    check(v is not None, "CUDA_VISIBLE_DEVICES not set: %s" % env)
    check(env["NVIDIA_VISIBLE_DEVICES"] == v, "NVIDIA_VISIBLE_DEVICES %s" % env)
    check(env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID", "CUDA_DEVICE_ORDER %s" % env)
    return [int(x) for x in v.split(",")] if v else []


def wait_reason(d, opid, want, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        o = d.op(opid)
        if o["reason"] == want:
            return o
        time.sleep(0.05)
    raise Fail("operation %s: reason %r, want %r (status %s)" % (opid, o["reason"], want,
                                                                o["status"]))


def gpus_info(d):
    st, g = d.req("GET", "/api/v1/gpus")
    check(st == 200, "GET /api/v1/gpus answered %s %s" % (st, g))
    st, info = d.req("GET", "/api/v1/daemon")
    check(st == 200 and info.get("gpus", {}).get("count") == g["count"],
          "/api/v1/daemon has no gpus like /api/v1/gpus: %s" % info)
    return g


def holders(d):
    return {x["index"]: x["operation"] for x in gpus_info(d)["devices"]}


def seq(d, opid, event):
    return d.wait_event(opid, event)["seq"]


def t_queue(d):
    a = d.submit(spec(d, 2, "--steps", "5", "--hold", hold(d, "A"), name="A"))
    b = d.submit(spec(d, 2, "--steps", "5", "--hold", hold(d, "B"), name="B"))
    ta, tb = wait_start(d, "A"), wait_start(d, "B")
    ga, gb = cvd(ta), cvd(tb)
    check(len(ga) == 2 and len(gb) == 2 and not set(ga) & set(gb) and
          set(ga) | set(gb) == {0, 1, 2, 3}, "sets %s and %s" % (ga, gb))
    oa, ob = d.op(a), d.op(b)
    check(oa["status"] == "RUNNING" and ob["status"] == "RUNNING", "both run at once")
    check(oa["gpus"] == ga and ob["gpus"] == gb, "API %s %s vs env %s %s" %
          (oa["gpus"], ob["gpus"], ga, gb))
    check(pid_alive(ta["pid"]) and pid_alive(tb["pid"]), "both trainers alive")
    h = holders(d)
    check(all(h[i] == a for i in ga) and all(h[i] == b for i in gb), "holders %s" % h)

    # a job of 0 GPUs does not wait, and runs with no GPU
    z = d.submit(spec(d, 0, "--steps", "3", name="Z"))
    check(d.wait_status(z, ["COMPLETED", "FAILED"])["status"] == "COMPLETED", "Z")
    check(cvd(wait_start(d, "Z")) == [], "a job of 0 GPUs got %s" % starts(d, "Z"))

    # a third job of 2 waits, saying why
    c = d.submit(spec(d, 2, "--steps", "3", name="C"))
    o = wait_reason(d, c, "waiting for 2 GPUs; 0 free")
    check(o["status"] == "PENDING" and o["gpus"] == [] and not starts(d, "C"), "C %s" % o)
    g = gpus_info(d)
    check(g["count"] == 4 and g["free"] == 0 and g["source"] == "config" and
          g["queue"] == [{"operation": c, "gpus": 2}], "inventory %s" % g)

    # more than the host has: 400 naming the field and the count
    st, body = d.req("POST", OPS, spec(d, 5, name="X"))
    msg = body["error"]["message"] if st == 400 else ""
    check(st == 400 and body["error"]["code"] == "invalid_spec" and
          msg.startswith("resources.gpus:") and "this host has 4" in msg,
          "5 GPUs answered %s %s" % (st, body))

    # one finishes: the waiting one starts, on the GPUs it gave back
    release(d, "A")
    check(d.wait_status(a, ["COMPLETED", "FAILED"])["status"] == "COMPLETED", "A")
    gc = cvd(wait_start(d, "C"))
    check(sorted(gc) == sorted(ga), "C got %s, A gave back %s" % (gc, ga))
    check(seq(d, c, "started") > seq(d, a, "completed"), "C started before A ended")
    check(d.op(b)["status"] == "RUNNING", "B")
    check(d.wait_status(c, ["COMPLETED", "FAILED"])["status"] == "COMPLETED", "C")
    check(d.op(c)["gpus"] == [], "an ended operation holds no GPUs")

    # first come, first served: B holds 2, so 2 are free; D (3) waits, and
    # E (1), which would fit, waits behind it
    dd = d.submit(spec(d, 3, "--steps", "3", "--hold", hold(d, "D"), name="D"))
    wait_reason(d, dd, "waiting for 3 GPUs; 2 free")
    e = d.submit(spec(d, 1, "--steps", "3", name="E"))
    wait_reason(d, e, "waiting for 1 GPU; 2 free, but %s, ahead in the queue, waits for "
                "3 GPUs" % dd)
    check(d.op(e)["status"] == "PENDING" and not starts(d, "E"), "E overtook D")
    check([x["operation"] for x in gpus_info(d)["queue"]] == [dd, e], "queue order")
    release(d, "B")
    gd, ge = cvd(wait_start(d, "D")), cvd(wait_start(d, "E"))
    check(len(gd) == 3 and len(ge) == 1 and set(gd) | set(ge) == {0, 1, 2, 3},
          "D %s E %s" % (gd, ge))
    check(seq(d, dd, "started") < seq(d, e, "started"), "E started before D")
    release(d, "D")
    for x in (b, dd, e):
        check(d.wait_status(x, ["COMPLETED", "FAILED"])["status"] == "COMPLETED", x)
    g = gpus_info(d)
    check(g["free"] == 4 and all(x["operation"] is None for x in g["devices"]), "%s" % g)


def t_recovery(d):
    """A NaN recovers on the same GPUs; a job waiting for GPUs does not get
    them while the recovery is under way."""
    a = d.submit(spec(d, 2, "--steps", "40", "--ckpt-every", "5", "--fault", "nan@25:attempt=1",
                      "--hold", hold(d, "A"), name="A", recovery={"backoff_ms": 1500, "max_backoff_ms": 5000}))
    b = d.submit(spec(d, 2, "--steps", "5", "--hold", hold(d, "B"), name="B"))
    ga1 = cvd(wait_start(d, "A"))
    wait_start(d, "B")
    c = d.submit(spec(d, 2, "--steps", "3", name="C"))
    wait_reason(d, c, "waiting for 2 GPUs; 0 free")
    d.wait_event(a, "checkpoint_selected")  # the old trainer is gone; in the backoff
    o = d.op(a)
    check(o["status"] == "RECOVERING" and o["gpus"] == ga1, "A in recovery: %s" % o)
    oc = d.op(c)
    check(oc["status"] == "PENDING" and oc["reason"] == "waiting for 2 GPUs; 0 free",
          "C took the GPUs of a recovery: %s" % oc)
    check(all(holders(d)[i] == a for i in ga1), "holders %s" % holders(d))
    t2 = wait_start(d, "A", attempt=2)
    check(cvd(t2) == ga1, "attempt 2 on %s, attempt 1 on %s" % (cvd(t2), ga1))
    check(t2["resume"] and t2["resume"].endswith("step-000020"), "resume %s" % t2["resume"])
    check(d.op(c)["status"] == "PENDING", "C")
    release(d, "A")
    o = d.wait_status(a, ["COMPLETED", "FAILED"])
    check(o["status"] == "COMPLETED" and o["recoveries"] == 1, "A %s" % o)
    check(sorted(cvd(wait_start(d, "C"))) == sorted(ga1), "C")
    release(d, "B")
    for x in (b, c):
        check(d.wait_status(x, ["COMPLETED", "FAILED"])["status"] == "COMPLETED", x)


def integrity(d):
    out = subprocess.run(["sqlite3", os.path.join(d.state, "ckptd.db"),
                          "PRAGMA integrity_check;"], capture_output=True, text=True)
    check(out.stdout.strip() == "ok", "integrity_check: %r %r" % (out.stdout, out.stderr))


def sql(d, q):
    out = subprocess.run(["sqlite3", os.path.join(d.state, "ckptd.db"), q],
                         capture_output=True, text=True)
    check(out.returncode == 0, "sqlite3 %s: %s" % (q, out.stderr))
    return out.stdout.strip()


def t_kill9(d):
    """kill -9 of ckptd and a restart keep who holds what and the queue."""
    # X first, so that A holds 2,3 and B, after X, 0,1: sets a restarted
    # ckptd could not guess by handing out free GPUs in order again
    x = d.submit(spec(d, 2, "--steps", "5", "--hold", hold(d, "X"), name="X"))
    gx = cvd(wait_start(d, "X"))
    a = d.submit(spec(d, 2, "--steps", "5", "--hold", hold(d, "A"), name="A"))
    ga = cvd(wait_start(d, "A"))
    release(d, "X")
    d.wait_status(x, ["COMPLETED"])
    b = d.submit(spec(d, 2, "--steps", "5", "--hold", hold(d, "B"), name="B"))
    gb = cvd(wait_start(d, "B"))
    check(gx == [0, 1] and ga == [2, 3] and gb == [0, 1], "X %s A %s B %s" % (gx, ga, gb))
    # C holds until E has been seen waiting: a C that ran to its end would
    # free its GPUs and let E start, by rights
    c = d.submit(spec(d, 2, "--steps", "3", "--hold", hold(d, "C"), name="C"))
    e = d.submit(spec(d, 1, "--steps", "3", name="E"))
    wait_reason(d, e, "waiting for 1 GPU; 0 free, but %s, ahead in the queue, waits for "
                "2 GPUs" % c)
    before = holders(d)
    d.kill9()
    check(sql(d, "SELECT gpus FROM operations WHERE id='%s'" % a) ==
          ",".join(map(str, ga)), "the db does not hold A's set")
    integrity(d)
    d.start()
    check(holders(d) == before, "holders after restart %s, before %s" % (holders(d), before))
    oa, ob = d.op(a), d.op(b)
    check(oa["status"] == "RUNNING" and oa["gpus"] == ga and ob["status"] == "RUNNING" and
          ob["gpus"] == gb, "after restart: %s %s" % (oa, ob))
    check([x["operation"] for x in gpus_info(d)["queue"]] == [c, e], "queue after restart")
    wait_reason(d, c, "waiting for 2 GPUs; 0 free")
    check(len(starts(d, "A")) == 1 and len(starts(d, "B")) == 1, "trainers restarted")
    release(d, "A")
    check(d.wait_status(a, ["COMPLETED", "FAILED"])["status"] == "COMPLETED", "A")
    check(sorted(cvd(wait_start(d, "C"))) == sorted(ga), "C not on A's GPUs")
    check(d.op(e)["status"] == "PENDING", "E overtook C")
    release(d, "B")
    ge = cvd(wait_start(d, "E"))
    check(len(ge) == 1 and ge[0] in gb, "E on %s, not on B's %s" % (ge, gb))
    release(d, "C")
    for x in (b, c, e):
        check(d.wait_status(x, ["COMPLETED", "FAILED"])["status"] == "COMPLETED", x)
    check(len(starts(d, "C")) == 1 and len(starts(d, "E")) == 1, "started twice")
    integrity(d)


def restart(d, gpus_line, env):
    d.stop()
    with open(d.cfg, "w") as f:
        f.write("mount: %s\nmount_ckptfs: never\n%s" % (d.runs, gpus_line))
    d.env = dict(os.environ)
    for k in ("CKPTD_TEST_NVML_LIB", "CKPTD_TEST_PROC_GPUS", "FAKE_NVML_COUNT"):
        d.env.pop(k, None)
    d.env.update(env)
    d.start()
    return gpus_info(d)


def proc_fixture(d):
    root = os.path.join(d.tmp, "proc-gpus")
    for bus, model, uuid in (("0000:b1:00.0", "NVIDIA H200", "GPU-bbbb"),
                             ("0000:3b:00.0", "NVIDIA H100 80GB HBM3", "GPU-aaaa")):
        os.makedirs(os.path.join(root, bus))
        with open(os.path.join(root, bus, "information"), "w") as f:
            f.write("Model: \t\t %s\nGPU UUID: \t %s\nDevice Minor: \t 3\n" % (model, uuid))
    return root


def t_inventory(d):
    nvml = sys.argv[3]
    absent = os.path.join(d.tmp, "no", "libnvidia-ml.so.1")
    # gpus: 0 in the config: none; a job that does not ask gets 0, one that
    # asks for 1 is refused
    g = gpus_info(d)
    check(g["source"] == "config" and g["count"] == 0, "%s" % g)
    z = d.submit(spec(d, None, "--steps", "2", name="Z"))
    check(d.op(z)["spec"]["resources"]["gpus"] == 0, "default on a host of none")
    d.wait_status(z, ["COMPLETED"])
    check(cvd(wait_start(d, "Z")) == [], "Z")
    st, body = d.req("POST", OPS, spec(d, 1, name="X"))
    check(st == 400 and "this host has 0" in body["error"]["message"] and
          "resources: {gpus: 0}" in body["error"]["message"], "%s %s" % (st, body))

    # no gpus key: NVML absent, so the driver's /proc tree (a fixture here)
    g = restart(d, "", {"CKPTD_TEST_NVML_LIB": absent, "CKPTD_TEST_PROC_GPUS": proc_fixture(d)})
    check(g["source"] == "proc" and g["count"] == 2 and absent in g["note"], "%s" % g)
    check([(x["index"], x["uuid"], x["name"]) for x in g["devices"]] ==
          [(0, "GPU-aaaa", "NVIDIA H100 80GB HBM3"), (1, "GPU-bbbb", "NVIDIA H200")],
          "devices %s" % g["devices"])
    y = d.submit(spec(d, None, "--steps", "2", name="Y"))
    check(d.op(y)["spec"]["resources"]["gpus"] == 1, "default on a host with GPUs")
    d.wait_status(y, ["COMPLETED"])
    check(cvd(wait_start(d, "Y")) == [0], "Y %s" % starts(d, "Y"))

    # the NVML path through dlopen, against the stand-in library
    g = restart(d, "", {"CKPTD_TEST_NVML_LIB": nvml, "FAKE_NVML_COUNT": "3",
                        "CKPTD_TEST_PROC_GPUS": os.path.join(d.tmp, "none")})
    check(g["source"] == "nvml" and g["count"] == 3 and
          g["devices"][2]["uuid"] == "GPU-fake0000-0000-0000-0000-000000000002", "%s" % g)
    # a library that is not NVML, and no /proc tree: none, saying why
    g = restart(d, "", {"CKPTD_TEST_NVML_LIB": "libm.so.6",
                        "CKPTD_TEST_PROC_GPUS": os.path.join(d.tmp, "none")})
    check(g["source"] == "none" and g["count"] == 0 and "has no nvmlInit_v2" in g["note"],
          "%s" % g)
    with open(os.path.join(d.state, "ckptd.log")) as f:
        check("GPUs: no GPUs found" in f.read(), "the log does not say what was found")

    # the CLI shows it
    ckpt = os.path.join(os.environ.get("CKPTFS_BUILD_ROOT", ""), "tools", "ckpt", "ckpt")
    g = restart(d, "gpus: [0, 5]\n", {})
    check([x["index"] for x in g["devices"]] == [0, 5], "%s" % g)
    if os.access(ckpt, os.X_OK):
        h = d.submit(spec(d, 1, "--steps", "5", "--hold", hold(d, "H"), name="H"))
        gh = cvd(wait_start(d, "H"))
        out = subprocess.run([ckpt, "--socket", d.sock, "daemon", "status"],
                             capture_output=True, text=True, timeout=20)
        check(out.returncode == 0 and re.search(r"gpus\s+2 \(config\), 1 free", out.stdout)
              and re.search(r"GPU %d\s+%s" % (gh[0], h), out.stdout),
              "ckpt daemon status:\n%s%s" % (out.stdout, out.stderr))
        out = subprocess.run([ckpt, "--socket", d.sock, "ops", "status", h],
                             capture_output=True, text=True, timeout=20)
        check(re.search(r"GPUs:\s+%d\n" % gh[0], out.stdout), "ckpt ops status:\n%s" %
              out.stdout)
        release(d, "H")
        d.wait_status(h, ["COMPLETED"])

    # bad config values: exit 2 naming the key
    for bad, want in (("gpus: 4", "gpus: must be auto, 0"), ("gpus: [0, 0]", "listed twice"),
                      ("gpus: [x]", "gpus[0]"), ("gpus: [300]", "gpus[0]")):
        cfg = os.path.join(d.tmp, "bad.yaml")
        with open(cfg, "w") as f:
            f.write("mount: %s\n%s\n" % (d.runs, bad))
        out = subprocess.run([d.bin, "--state-dir", d.state + "-bad", "--config", cfg],
                             capture_output=True, text=True, timeout=20)
        check(out.returncode == 2 and want in out.stderr, "%s: rc %d %r" %
              (bad, out.returncode, out.stderr))


def build_bin(rel):
    root = os.environ.get("CKPTFS_BUILD_ROOT", "")
    p = os.path.join(root, rel)
    return p if root and os.access(p, os.X_OK) else None


def log_of(d, opid):
    st, text = d.req("GET", "%s/%s/logs" % (OPS, opid))
    check(st == 200, "logs answered %s" % st)
    return text


def t_ckpt_train(d):
    """The reference trainer under ckptd: a job of 0 GPUs gets an empty
    CUDA_VISIBLE_DEVICES, which --device auto takes for the CPU and
    --device cuda refuses (exit 78, not retried)."""
    tr = build_bin("trainer/ckpt-train")
    if not tr:
        raise Skip("trainer/ckpt-train is not built in this build dir")
    cmd = [tr, "--model", "tiny", "--max-steps", "10", "--checkpoint-every-steps", "5"]
    a = d.submit({"name": "auto", "command": cmd + ["--device", "auto"],
                  "resources": {"gpus": 0}, "recovery": FAST})
    o = d.wait_status(a, ["COMPLETED", "FAILED"], timeout=80)
    check(o["status"] == "COMPLETED", "auto: %s" % o)
    check("on cpu (CUDA_VISIBLE_DEVICES is empty" in log_of(d, a), log_of(d, a)[-2000:])
    c = d.submit({"name": "cuda", "command": cmd + ["--device", "cuda"],
                  "resources": {"gpus": 0}, "recovery": FAST})
    o = d.wait_status(c, ["COMPLETED", "FAILED"], timeout=80)
    check(o["status"] == "FAILED" and "78" in o["reason"], "cuda: %s" % o)
    check("CUDA_VISIBLE_DEVICES is empty" in log_of(d, c), log_of(d, c)[-2000:])


def t_host(d):
    """On a GPU machine: the NVML inventory is what nvidia-smi -L lists, and
    ckpt-train --device auto runs on the GPU ckptd assigned."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Skip("no nvidia-smi here (%s): needs a GPU machine" % e)
    if out.returncode != 0:
        raise Skip("nvidia-smi -L failed (%s): needs a GPU machine" % out.stderr.strip())
    smi = []
    for line in out.stdout.splitlines():
        m = re.match(r"GPU (\d+): (.*) \(UUID: (GPU-[0-9a-fA-F-]+)\)", line)
        if m:
            smi.append((int(m.group(1)), m.group(2), m.group(3)))
    g = restart(d, "", {})
    print("nvidia-smi -L:", smi, "\nckptd:", g)
    check(g["source"] == "nvml", "inventory from %s, not NVML: %s" % (g["source"], g["note"]))
    check([(x["index"], x["name"], x["uuid"]) for x in g["devices"]] == smi,
          "NVML inventory %s, nvidia-smi -L %s" % (g["devices"], smi))
    tr = build_bin("trainer/ckpt-train")
    if not tr:
        raise Skip("inventory OK; trainer/ckpt-train is not built, so not run on its GPU")
    last = g["devices"][-1]
    # hold every GPU but the last, so the job's one is known in advance
    holdn = d.submit(spec(d, g["count"] - 1, "--steps", "3", "--hold", hold(d, "N"), name="N"))
    if g["count"] > 1:
        wait_start(d, "N")
    j = d.submit({"name": "gpu", "command": [tr, "--model", "tiny", "--max-steps", "20",
                                              "--device", "auto"],
                  "resources": {"gpus": 1}, "recovery": FAST})
    o = d.wait_status(j, ["COMPLETED", "FAILED"], timeout=80)
    log = log_of(d, j)
    check(o["status"] == "COMPLETED", "ckpt-train on a GPU: %s\n%s" % (o, log[-2000:]))
    check(o["gpus"] == [] and
          " on cuda (%s, %s; CUDA_VISIBLE_DEVICES=%d);" % (last["name"], last["uuid"],
                                                           last["index"]) in log,
          "ckpt-train did not run on GPU %s:\n%s" % (last, log[-2000:]))
    release(d, "N")
    d.wait_status(holdn, ["COMPLETED"])


CASES = {
    "queue": (t_queue, FOUR),
    "recovery": (t_recovery, FOUR),
    "kill9": (t_kill9, FOUR),
    "inventory": (t_inventory, "0"),
    "ckpt_train": (t_ckpt_train, "0"),
    "host": (t_host, "0"),
}


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in CASES:
        print("usage: test_gpus.py CKPTD_BIN CASE FAKE_NVML_SO (%s)" % ", ".join(CASES))
        return 2
    fn, gpus = CASES[sys.argv[2]]
    d = Ckptd(sys.argv[1], gpus=gpus)
    try:
        d.start()
        fn(d)
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
        d.cleanup()


if __name__ == "__main__":
    sys.exit(main())
