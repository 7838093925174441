#!/usr/bin/env python3
"""test_examples.py - examples/ckpt_notify.py speaks the trainer protocol
(SPEC §4) to a real AF_UNIX datagram socket, on a path and in the abstract
namespace; and examples/pytorch_train.py's parts that need no PyTorch (its
argument parsing, version naming and resume lookup) behave. PyTorch itself is
not needed: the example imports it lazily.
"""
import importlib.util
import os
import socket
import sys
import tempfile

ROOT = os.environ.get("CKPTFS_SOURCE_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def recv_all(s):
    s.settimeout(5)
    return s.recv(8192).decode()


def main():
    n = load("ckpt_notify")
    tmp = tempfile.mkdtemp(prefix="ckpt-notify-")
    try:
        # Unset: a trainer run by hand sends nothing and does not fail.
        os.environ.pop("CKPT_NOTIFY_SOCKET", None)
        check(n.notify(STEP=1) is False, "notify without CKPT_NOTIFY_SOCKET should return False")

        path = os.path.join(tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        os.environ["CKPT_NOTIFY_SOCKET"] = path
        check(n.notify(READY=1) is True, "notify READY")
        check(recv_all(s) == "READY=1", "READY datagram")
        n.report(step=30, epoch=1, loss=2.5, val_loss=float("nan"))
        got = recv_all(s).split("\n")
        check(got == ["STEP=30", "EPOCH=1", "LOSS=2.5", "VAL_LOSS=nan"], "report datagram %s" % got)
        n.report(loss=float("inf"))
        check(recv_all(s) == "LOSS=inf", "inf loss")
        with n.saving():
            check(recv_all(s) == "SAVING=1", "saving() sends SAVING=1 first")
        check(recv_all(s) == "SAVING=0", "saving() ends with SAVING=0")
        n.checkpoint("/mnt/run/step-000010")
        check(recv_all(s) == "CHECKPOINT=/mnt/run/step-000010", "CHECKPOINT")
        n.corrupted("bad\nreason")
        got = recv_all(s)
        check(got == "CORRUPTED=1\nREASON=bad reason", "CORRUPTED with a newline in the reason: %r" % got)
        for bad in [dict(STEP=-1), dict(step="x"), dict(CHECKPOINT="relative/path")]:
            try:
                n.notify(**bad) if "step" not in bad else n.report(**bad)
                check(False, "notify(%s) should raise ValueError" % bad)
            except ValueError:
                pass
        s.close()

        # Abstract namespace: '@name'.
        name = "@ckpt-test-%d" % os.getpid()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind("\0" + name[1:])
        os.environ["CKPT_NOTIFY_SOCKET"] = name
        n.notify(WATCHDOG=1)
        check(recv_all(s) == "WATCHDOG=1", "abstract namespace")
        s.close()

        # A socket nobody listens on: an error the trainer can ignore, not a crash.
        os.environ["CKPT_NOTIFY_SOCKET"] = os.path.join(tmp, "nobody.sock")
        try:
            n.notify(STEP=1)
            check(False, "notify to a missing socket should raise OSError")
        except OSError:
            pass

        # The PyTorch example: importable without torch, and its helpers work.
        os.environ.pop("CKPT_NOTIFY_SOCKET", None)
        t = load("pytorch_train")
        check(t.version_name(42) == "step-000042", "version_name")
        args = t.parse_args(["--steps", "7", "--save-every", "3", "--run-dir", tmp])
        check(args.steps == 7 and args.save_every == 3, "parse_args")
        os.makedirs(os.path.join(tmp, "step-000003"))
        os.makedirs(os.path.join(tmp, "step-000006.tmp"))
        check(t.resume_dir(tmp, None) == os.path.join(tmp, "step-000003"),
              "resume_dir picks the newest committed (not .tmp) version: %s" % t.resume_dir(tmp, None))
        check(t.resume_dir(tmp, "/x/step-1") == "/x/step-1", "CKPT_RESUME_FROM wins")
        check(t.parse_args(["--epochs", "3", "--steps-per-epoch", "10"]).steps == 30,
              "--epochs sets the steps (examples/job-any-command.yaml uses it)")
        # Bad arguments are a configuration error: 78, so ckptd does not retry.
        for bad in (["--steps", "0"], ["--no-such-flag"], ["--steps", "x"]):
            try:
                t.parse_args(bad)
                check(False, "parse_args(%s) accepted" % bad)
            except SystemExit as e:
                check(e.code == 78, "parse_args(%s) exited %s, want 78" % (bad, e.code))
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("examples: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
