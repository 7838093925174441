#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of ckpt-train (suite 'trainer'): real processes, real
signals, real SIGKILL, a real notify socket, real files on disk.

Usage: test_trainer.py CKPT_TRAIN TEST_NAME   (exit 0 pass, 1 fail, 77 skip)
"""
import json
import math
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

TRAIN = sys.argv[1]
TINY = ["--model", "tiny", "--lr", "1e-3", "--seed", "7"]


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def run(args, env_extra=None, expect=0, timeout=240):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("CKPT_"):
            del env[k]
    env.update(env_extra or {})
    p = subprocess.run([TRAIN] + args, env=env, capture_output=True, text=True,
                       timeout=timeout)
    if expect is not None and p.returncode != expect:
        raise Fail("ckpt-train %s exited %d, expected %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(args), p.returncode, expect, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def versions(run_dir):
    return sorted(d for d in os.listdir(run_dir) if d.startswith("step-")
                  and not d.endswith(".tmp") and ".tmp." not in d)


def latest(run_dir):
    v = versions(run_dir)
    check(v, "no committed version in %s" % run_dir)
    return os.path.join(run_dir, v[-1])


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def state(vdir):
    with open(os.path.join(vdir, "trainer_state.json")) as f:
        return json.load(f)


# ---- an independent safetensors reader (struct + json only) ----
def read_safetensors(path):
    data = read_file(path)
    check(len(data) >= 8, "%s: shorter than 8 bytes" % path)
    (hlen,) = struct.unpack("<Q", data[:8])
    check(8 + hlen <= len(data), "%s: header length %d past the end" % (path, hlen))
    check((8 + hlen) % 8 == 0, "%s: data section not 8-byte aligned" % path)
    raw = data[8:8 + hlen]
    text = raw.decode("utf-8")
    check(text == text.rstrip(" ") + " " * (len(text) - len(text.rstrip(" "))),
          "%s: padding is not spaces" % path)
    header = json.loads(text)
    body = data[8 + hlen:]
    meta = header.pop("__metadata__", {})
    check(all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()),
          "%s: __metadata__ must map strings to strings" % path)
    spans = []
    tensors = {}
    for name, t in header.items():
        check(set(t) == {"dtype", "shape", "data_offsets"}, "%s: %s keys %s" % (path, name, t))
        check(t["dtype"] == "F32", "%s: %s dtype %s" % (path, name, t["dtype"]))
        n = 1
        for s in t["shape"]:
            check(isinstance(s, int) and s > 0, "%s: %s bad shape" % (path, name))
            n *= s
        a, b = t["data_offsets"]
        check(0 <= a <= b <= len(body) and b - a == 4 * n,
              "%s: %s offsets %s do not match shape %s" % (path, name, (a, b), t["shape"]))
        spans.append((a, b))
        vals = struct.unpack("<%df" % n, body[a:b])
        check(all(math.isfinite(v) for v in vals), "%s: %s has non-finite values" % (path, name))
        tensors[name] = (t["shape"], vals)
    spans.sort()
    pos = 0
    for a, b in spans:
        check(a == pos, "%s: gap or overlap at byte %d" % (path, a))
        pos = b
    check(pos == len(body), "%s: %d trailing bytes" % (path, len(body) - pos))
    return meta, tensors


def validate_version(vdir):
    meta, model = read_safetensors(os.path.join(vdir, "model.safetensors"))
    check("embed" in model and "out.weight" in model, "%s: model tensors missing" % vdir)
    ometa, opt = read_safetensors(os.path.join(vdir, "optimizer.safetensors"))
    for name, (shape, _) in model.items():
        check(opt["exp_avg." + name][0] == shape and opt["exp_avg_sq." + name][0] == shape,
              "%s: optimizer state for %s missing or misshapen" % (vdir, name))
    st = state(vdir)
    check(st["format_version"] == 1, "format_version")
    check(meta["step"] == str(st["step"]) == ometa["step"], "%s: step disagrees" % vdir)
    return st


# ---- notify socket ----
class Listener:
    """Binds the notify socket and collects reports on a thread, so that a
    trainer never blocks on a full socket queue while the test waits."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.reports = []
        self.queue = queue.Queue()
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop:
            try:
                data = self.sock.recv(8192)
            except socket.timeout:
                continue
            except OSError:
                return
            r = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            self.queue.put(r)

    def poll(self, timeout):
        try:
            r = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        self.reports.append(r)
        return r

    def drain(self):
        while self.poll(0.3) is not None:
            pass

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()
        os.unlink(self.path)


def small_dataset(tmp, size=4000):
    corpus = os.path.join(os.environ.get("CKPTFS_SOURCE_ROOT", "."), "trainer/corpus/corpus.txt")
    path = os.path.join(tmp, "small.txt")
    with open(corpus, "rb") as f, open(path, "wb") as g:
        g.write(f.read(size))
    return path


def sigterm_after(tmp, args, run_dir, step):
    """Run ckpt-train ARGS into run_dir, SIGTERM it once it reports a loss at
    `step` or later; returns (exit code, stderr, the reports it sent)."""
    lis = Listener(tmp)
    env = dict(os.environ, CKPT_NOTIFY_SOCKET=lis.path, CKPT_RUN_DIR=run_dir)
    proc = subprocess.Popen([TRAIN] + args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        while True:
            r = lis.poll(60)
            check(r is not None, "no report from the trainer")
            if int(r.get("STEP", 0)) >= step and "LOSS" in r:
                proc.send_signal(signal.SIGTERM)
                break
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    lis.drain()
    lis.close()
    return proc.returncode, err, lis.reports


# ---- tests ----
def crash_resume(tmp, extra):
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    common = TINY + ["--max-steps", "200", "--checkpoint-every-steps", "50"] + extra
    run(common + ["--run-dir", a])
    p = run(common + ["--run-dir", b, "--inject", "crash@120"], expect=None)
    check(p.returncode == -signal.SIGKILL, "crash injection: rc %d, not SIGKILL" % p.returncode)
    # step-100 may not be committed: its async save can still be in flight
    # when the SIGKILL comes 20 steps later, which is what a crash looks like.
    after = versions(b)
    check(after in (["step-00000050"], ["step-00000050", "step-00000100"]),
          "after crash: %s" % after)
    resume_step = int(after[-1][5:])
    # A torn version left by a crash must not stop the next commit of that name.
    os.makedirs(os.path.join(b, "step-00000150.tmp"))
    with open(os.path.join(b, "step-00000150.tmp", "junk"), "w") as f:
        f.write("torn")
    p = run(common + ["--run-dir", b], {"CKPT_RESUME_FROM": latest(b)})
    check("resumed from" in p.stderr and "at step %d," % resume_step in p.stderr, p.stderr)
    check(versions(b)[-1] == "step-00000200", "resumed run: %s" % versions(b))
    check(not os.path.exists(os.path.join(b, "step-00000150.tmp")), "stale .tmp left")
    for f in ("model.safetensors", "optimizer.safetensors"):
        x = read_file(os.path.join(a, "step-00000200", f))
        y = read_file(os.path.join(b, "step-00000200", f))
        check(x == y, "%s differs between the straight and the resumed run" % f)
    sa, sb = state(os.path.join(a, "step-00000200")), state(os.path.join(b, "step-00000200"))
    for k in ("step", "epoch", "data_position", "rng", "best_val_loss", "bad_epochs", "loss"):
        check(sa[k] == sb[k], "trainer_state %s differs: %s vs %s" % (k, sa[k], sb[k]))
    for d in (a, b):
        for v in versions(d):
            validate_version(os.path.join(d, v))
    return sa


def t_exact_resume(tmp):
    crash_resume(tmp, [])


def t_exact_resume_accum(tmp):
    st = crash_resume(tmp, ["--grad-accum", "3"])
    check(st["data_position"]["micro_batch"] == 600, "accumulation: %s" % st["data_position"])


def t_exact_resume_epoch(tmp):
    # 3600 training bytes -> 112 batches per epoch: the resumed part (100..200)
    # crosses the epoch boundary, with its validation and reshuffle.
    st = crash_resume(tmp, ["--dataset", small_dataset(tmp), "--epochs", "5"])
    check(st["epoch"] == 1 and st["best_val_loss"] is not None, "epoch boundary: %s" % st)


def t_restore_optimizer_0(tmp):
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    common = TINY + ["--max-steps", "200", "--checkpoint-every-steps", "100"]
    run(common + ["--run-dir", a])
    first = run(TINY + ["--max-steps", "1", "--run-dir", os.path.join(tmp, "one")]).stdout
    first_loss = float(first.split("step 1 loss ")[1].split()[0])
    p = run(common + ["--run-dir", b], {"CKPT_RESUME_FROM": os.path.join(a, "step-00000100"),
                                        "CKPT_RESTORE_OPTIMIZER": "0"})
    check("optimizer state fresh" in p.stderr, p.stderr)
    st = validate_version(os.path.join(b, "step-00000200"))
    # Fresh moments change the trajectory: the weights must differ from the
    # run that kept its optimizer state...
    check(read_file(os.path.join(a, "step-00000200", "model.safetensors")) !=
          read_file(os.path.join(b, "step-00000200", "model.safetensors")),
          "CKPT_RESTORE_OPTIMIZER=0 gave the same weights as a full restore")
    # ...and it still trains: finite, and well below the first step's loss.
    check(math.isfinite(st["loss"]) and st["last_val_loss"] < first_loss - 1.0,
          "weights-only resume did not train: first loss %.3f, %s" % (first_loss, st))
    _, opt = read_safetensors(os.path.join(b, "step-00000200", "optimizer.safetensors"))
    check(any(x != 0 for x in opt["exp_avg_sq.out.bias"][1]), "moments were not rebuilt")


def t_safetensors(tmp):
    run(TINY + ["--max-steps", "30", "--checkpoint-every-steps", "10", "--run-dir", tmp])
    vs = versions(tmp)
    check(vs == ["step-00000010", "step-00000020", "step-00000030"], vs)
    for v in vs:
        validate_version(os.path.join(tmp, v))
    meta, model = read_safetensors(os.path.join(tmp, vs[-1], "model.safetensors"))
    check(model["embed"][0] == [256, 16] and model["h0.weight"][0] == [128, 64], "shapes")
    check(meta["preset"] == "tiny", meta)
    # Page-cache writes (where O_DIRECT is refused) give the same bytes.
    b = os.path.join(tmp, "buffered")
    run(TINY + ["--max-steps", "30", "--checkpoint-every-steps", "10", "--run-dir", b],
        {"CKPT_TRAIN_NO_DIRECT_IO": "1"})
    for v in vs:
        for f in ("model.safetensors", "optimizer.safetensors"):
            check(read_file(os.path.join(tmp, v, f)) == read_file(os.path.join(b, v, f)),
                  "%s/%s differs between direct and buffered writes" % (v, f))


def t_sigterm(tmp):
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    common = TINY + ["--max-steps", "1000", "--checkpoint-every-steps", "300"]
    run(common + ["--run-dir", a])
    rc, err, reports = sigterm_after(tmp, common, b, 50)
    check(rc == 0, "SIGTERM: rc %d\n%s" % (rc, err))
    keys = [k for r in reports for k in r]
    check("STOPPING" in keys, "no STOPPING=1")
    cps = [r["CHECKPOINT"] for r in reports if "CHECKPOINT" in r]
    check(cps, "no CHECKPOINT report")
    cp = cps[-1]
    check(os.path.isdir(cp) and not cp.endswith(".tmp"), "checkpoint %s not committed" % cp)
    st = validate_version(cp)
    check(st["reason"] == "cancel" and 50 <= st["step"] < 1000, "cancel state %s" % st)
    lis = Listener(tmp)
    env = dict(os.environ, CKPT_NOTIFY_SOCKET=lis.path, CKPT_RUN_DIR=b, CKPT_RESUME_FROM=cp)
    p = subprocess.run([TRAIN] + common, env=env, capture_output=True, text=True, timeout=240)
    check(p.returncode == 0, "resume after SIGTERM: rc %d\n%s" % (p.returncode, p.stderr))
    lis.drain()
    steps = [int(r["STEP"]) for r in lis.reports if "LOSS" in r]
    check(steps and steps[0] == st["step"] + 1, "resumed at %s, expected %d" % (
        steps[:1], st["step"] + 1))
    x = read_file(os.path.join(a, "step-00001000", "model.safetensors"))
    y = read_file(os.path.join(b, "step-00001000", "model.safetensors"))
    check(x == y, "SIGTERM + resume is not bitwise equal to the straight run")
    lis.close()


def t_best_val_loss(tmp):
    """best_val_loss is the lowest validation loss so far, at epoch ends and
    at checkpoints alike: never null once a validation happened (the `best`
    link exists then), never above the version's own val loss. Early
    stopping still counts epoch ends only: a run with an extra cancellation
    save ends with the same weights and stops at the same step."""
    import re
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    common = TINY + ["--dataset", small_dataset(tmp), "--epochs", "3", "--patience", "1",
                     "--checkpoint-every-steps", "40"]
    p = run(common + ["--run-dir", a])
    evals = [(int(m.group(1)), float(m.group(2))) for m in
             re.finditer(r"^epoch \d+ step (\d+) val_loss ([0-9.]+)", p.stdout, re.M)]
    check(evals, "no epoch-end validation in the output:\n" + p.stdout[-2000:])
    vs = versions(a)
    for v in vs:
        st = state(os.path.join(a, v))
        if st["last_val_step"] == st["step"] and st["last_val_loss"] is not None:
            evals.append((st["step"], st["last_val_loss"]))
    for v in vs:
        st = state(os.path.join(a, v))
        seen = [x for s_, x in evals if s_ <= st["step"]]
        check(seen, "%s: no validation before it" % v)
        check(st["best_val_loss"] is not None,
              "%s: best_val_loss is null after %d validations" % (v, len(seen)))
        check(abs(st["best_val_loss"] - min(seen)) < 1e-6,
              "%s: best_val_loss %s, but the lowest validation so far is %s" %
              (v, st["best_val_loss"], min(seen)))
        if st["last_val_step"] == st["step"]:
            check(st["best_val_loss"] <= st["last_val_loss"],
                  "%s: best_val_loss %s above its own val loss %s" %
                  (v, st["best_val_loss"], st["last_val_loss"]))
    # A cancellation save in the first epoch (an evaluation the straight run
    # never made), then a resume: same weights, same last step.
    rc, err, _ = sigterm_after(tmp, common, b, 50)
    check(rc == 0, "SIGTERM: rc %d\n%s" % (rc, err))
    cancel = latest(b)
    st = state(cancel)
    check(st["reason"] == "cancel" and st["epoch"] == 0, "cancel state %s" % st)
    check(st["best_val_loss"] is not None and st["best_val_loss"] <= st["last_val_loss"],
          "cancellation in epoch 1: best_val_loss %s, last_val_loss %s" %
          (st["best_val_loss"], st["last_val_loss"]))
    run(common + ["--run-dir", b], {"CKPT_RESUME_FROM": cancel})
    check(versions(a)[-1] == versions(b)[-1],
          "early stopping moved: %s vs %s" % (versions(a)[-1], versions(b)[-1]))
    for f in ("model.safetensors", "optimizer.safetensors"):
        check(read_file(os.path.join(a, vs[-1], f)) == read_file(os.path.join(b, vs[-1], f)),
              "%s differs after a cancellation save and resume" % f)


def t_format_version(tmp):
    run(TINY + ["--max-steps", "10", "--run-dir", tmp])
    v = os.path.join(tmp, "step-00000010")
    old = os.path.join(tmp, "old")
    shutil.copytree(v, old)
    st = state(old)
    st["format_version"] = 999
    with open(os.path.join(old, "trainer_state.json"), "w") as f:
        json.dump(st, f)
    p = run(TINY + ["--max-steps", "20", "--run-dir", tmp], {"CKPT_RESUME_FROM": old}, expect=78)
    check("format_version 999" in p.stderr and "version 1" in p.stderr, p.stderr)
    # A checkpoint of another preset is a config error too.
    p = run(["--model", "small", "--max-steps", "20", "--run-dir", tmp],
            {"CKPT_RESUME_FROM": v}, expect=78)
    check("'tiny' model" in p.stderr, p.stderr)


def t_bad_flags(tmp):
    cases = [
        (["--model", "huge"], "known presets: tiny, small, base, large"),
        (["--bogus"], "unknown or incomplete option --bogus"),
        (["--inject", "boom@3"], "unknown kind"),
        (["--inject", "nan@x"], "STEP must be"),
        (["--inject", "nan@3:attempt=0"], "attempt=N"),
        (["--batch-size", "0"], "--batch-size 0"),
        (["--lr", "abc"], "--lr abc"),
        (["--device", "tpu"], "--device tpu"),
        (["--dataset", "s3://bucket/x"], "only local paths"),
        (["--dataset", os.path.join(tmp, "missing.txt")], "cannot open dataset"),
    ]
    for args, msg in cases:
        p = run(["--run-dir", tmp] + args, expect=78)
        check(msg in p.stderr, "%s: stderr lacks %r:\n%s" % (args, msg, p.stderr))
    p = run(["--model", "tiny"], expect=78)
    check("CKPT_RUN_DIR" in p.stderr, p.stderr)
    p = run(TINY + ["--max-steps", "2", "--device", "cuda", "--run-dir", tmp], expect=None)
    check(p.returncode == 0 or (p.returncode == 78 and "CUDA" in p.stderr),
          "--device cuda: rc %d %s" % (p.returncode, p.stderr))
    p = run(["--help"])
    check("usage: ckpt-train" in p.stdout, p.stdout)


def t_notify(tmp):
    lis = Listener(tmp)
    env = {"CKPT_NOTIFY_SOCKET": lis.path, "CKPT_RUN_DIR": os.path.join(tmp, "r")}
    # 112 batches per epoch: 130 steps see one epoch end.
    run(TINY + ["--max-steps", "130", "--checkpoint-every-steps", "60", "--inject",
                "spike@70", "--dataset", small_dataset(tmp)], env)
    lis.drain()
    rs = lis.reports
    check(rs and "READY" in rs[0], "first report is not READY: %s" % rs[:1])
    keys = set(k for r in rs for k in r)
    for k in ("READY", "STEP", "LOSS", "EPOCH", "VAL_LOSS", "SAVING", "CHECKPOINT", "STOPPING"):
        check(k in keys, "no %s report" % k)
    saving = [r["SAVING"] for r in rs if "SAVING" in r]
    check(saving[:2] == ["1", "0"] and saving.count("1") == saving.count("0"), saving)
    loss = {int(r["STEP"]): float(r["LOSS"]) for r in rs if "LOSS" in r}
    check(sorted(loss) == list(range(1, 131)), "STEP reports not 1..130")
    check(loss[70] > 50 * loss[69], "spike@70 not reported: %s %s" % (loss[69], loss[70]))
    ep = [r for r in rs if "EPOCH" in r]
    check(ep[0]["EPOCH"] == "1" and math.isfinite(float(ep[0]["VAL_LOSS"])), ep)
    cps = [r["CHECKPOINT"] for r in rs if "CHECKPOINT" in r]
    check([os.path.basename(c) for c in cps] == ["step-00000060", "step-00000120",
                                                  "step-00000130"], cps)
    # NaN loss: CORRUPTED with a reason, exit 3, nothing committed after it.
    lis.reports.clear()
    env["CKPT_RUN_DIR"] = os.path.join(tmp, "n")
    run(TINY + ["--max-steps", "50", "--checkpoint-every-steps", "10", "--inject", "nan@25"],
        env, expect=3)
    lis.drain()
    bad = [r for r in lis.reports if "CORRUPTED" in r]
    check(bad and bad[0]["CORRUPTED"] == "1" and "REASON" in bad[0] and
          bad[0]["LOSS"] == "nan", "NaN report: %s" % bad)
    check(versions(env["CKPT_RUN_DIR"]) == ["step-00000010", "step-00000020"],
          versions(env["CKPT_RUN_DIR"]))
    # :attempt=N only fires on that attempt.
    env["CKPT_ATTEMPT"] = "2"
    run(TINY + ["--max-steps", "30", "--inject", "nan@5:attempt=1"], env)
    lis.drain()
    # Hang: reports stop; SIGTERM ends it without a checkpoint.
    lis.reports.clear()
    env["CKPT_RUN_DIR"] = os.path.join(tmp, "h")
    full = dict(os.environ, **env)
    proc = subprocess.Popen([TRAIN] + TINY + ["--max-steps", "100", "--inject", "hang@5"],
                            env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            r = lis.poll(60)
            check(r is not None, "no reports before the hang")
            if r.get("STEP") == "5":
                break
        extra = lis.poll(1.5)
        check(extra is None, "reports continued after hang@5: %s" % extra)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check(proc.returncode == 128 + signal.SIGTERM, "hang: rc %d" % proc.returncode)
    check(versions(env["CKPT_RUN_DIR"]) == [], "hung trainer committed a checkpoint")
    lis.close()


def t_skip_batches(tmp):
    common = TINY + ["--max-steps", "40", "--checkpoint-every-steps", "20"]
    run(common + ["--run-dir", tmp])
    shutil.rmtree(os.path.join(tmp, "step-00000040"))
    run(common + ["--run-dir", tmp], {"CKPT_RESUME_FROM": os.path.join(tmp, "step-00000020"),
                                      "CKPT_SKIP_BATCHES": "7"})
    st = state(os.path.join(tmp, "step-00000040"))
    check(st["step"] == 40 and st["data_position"]["micro_batch"] == 47,
          "skip: %s" % st["data_position"])


def t_job(tmp):
    job = os.path.join(tmp, "job.yaml")
    with open(job, "w") as f:
        f.write("project_id: p-test\nname: t\nmodel: tiny\n"
                "hyperparams:\n  batch_size: 8\n  lr: 1e-3\n  epochs: 1\n"
                "  gradient_accumulation_steps: 2\n"
                "checkpoint: {every_epochs: 0, every_steps: 5}\n")
    run(["--job", job, "--max-steps", "10", "--run-dir", tmp])
    st = state(os.path.join(tmp, "step-00000010"))
    check(st["preset"] == "tiny" and st["data_position"]["batch_size"] == 8 and
          st["grad_accum"] == 2 and versions(tmp) == ["step-00000005", "step-00000010"],
          "job spec not applied: %s %s" % (st, versions(tmp)))
    # Flags override the job; CKPT_JOB works like --job.
    r2 = os.path.join(tmp, "r2")
    run(["--batch-size", "4", "--max-steps", "5", "--run-dir", r2], {"CKPT_JOB": job})
    st = state(os.path.join(r2, "step-00000005"))
    check(st["data_position"]["batch_size"] == 4, "flag did not override the job")
    with open(job, "a") as f:
        f.write("bogus_key: 1\n")
    p = run(["--job", job, "--run-dir", tmp], expect=78)
    check("bogus_key" in p.stderr, p.stderr)


def t_step_log(tmp):
    # CKPT_TRAIN_STEP_LOG (for bench/trainer/bench_overhead.py): one line per
    # step that tiles the run, and save/copied/commit lines per checkpoint.
    log = os.path.join(tmp, "steps.log")
    run(TINY + ["--max-steps", "20", "--checkpoint-every-steps", "10", "--run-dir", tmp],
        {"CKPT_TRAIN_STEP_LOG": log})
    steps, kinds = [], {}
    with open(log) as f:
        for line in f:
            w = line.split()
            kinds.setdefault(w[0], []).append(w[1:])
            if w[0] == "step":
                steps.append((int(w[1]), float(w[2]), float(w[3])))
    check([s[0] for s in steps] == list(range(1, 21)), "step numbers: %s" % steps[:3])
    check(all(t0 <= t1 for _, t0, t1 in steps), "a step ends before it starts")
    check(all(steps[i][2] <= steps[i + 1][1] + 1e-6 for i in range(len(steps) - 1)),
          "steps overlap")
    for k in ("save", "copied", "commit"):
        check(sorted(int(x[0]) for x in kinds.get(k, [])) == [10, 20],
              "%s lines: %s" % (k, kinds.get(k)))
    p = run(TINY + ["--max-steps", "2", "--run-dir", os.path.join(tmp, "x")],
            {"CKPT_TRAIN_STEP_LOG": os.path.join(tmp, "no/such/dir/log")}, expect=78)
    check("CKPT_TRAIN_STEP_LOG" in p.stderr, p.stderr)


def t_cuda_visible(tmp):
    """--device auto honors CUDA_VISIBLE_DEVICES: empty means no GPU was given
    (ckptd's resources.gpus: 0), so the CPU, without asking CUDA; --device
    cuda then refuses with exit 78 naming the variable. Each run says on
    stderr which device it trains on and why."""
    p = run(TINY + ["--max-steps", "3", "--run-dir", os.path.join(tmp, "a")],
            {"CUDA_VISIBLE_DEVICES": ""})
    check(" on cpu (CUDA_VISIBLE_DEVICES is empty: no GPU given);" in p.stderr, p.stderr)
    check(os.path.isdir(os.path.join(tmp, "a", "step-00000003")), versions(os.path.join(tmp, "a")))
    p = run(TINY + ["--max-steps", "3", "--device", "cuda", "--run-dir", os.path.join(tmp, "b")],
            {"CUDA_VISIBLE_DEVICES": ""}, expect=78)
    check("CUDA_VISIBLE_DEVICES is empty" in p.stderr and "resources.gpus" in p.stderr, p.stderr)
    check(not os.path.exists(os.path.join(tmp, "b")) or not versions(os.path.join(tmp, "b")),
          "trained after refusing")
    p = run(TINY + ["--max-steps", "2", "--device", "cpu", "--run-dir", os.path.join(tmp, "c")],
            {"CUDA_VISIBLE_DEVICES": ""})
    check(" on cpu; " in p.stderr, p.stderr)


TESTS = {name[2:]: fn for name, fn in globals().items() if name.startswith("t_")}


def main():
    name = sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="ckpt-train-test-")
    try:
        TESTS[name](tmp)
    except Fail as e:
        print("FAIL %s: %s" % (name, e))
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS %s" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
