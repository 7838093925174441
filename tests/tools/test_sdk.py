#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_sdk.py - the trainer SDK as a user gets it: `meson install --destdir`,
then a C trainer (sdk_trainer.c) compiled with only `pkg-config --cflags
--libs ckptnotify` against the installed header and libckptnotify.so, and a
Python trainer (sdk_trainer.py) that imports ckpt_notify with PYTHONPATH set
to its install dir only. Both run under the installed ckptd, which must show
every step they reported (GET .../metrics?resolution=step).
Exit 0 pass, 1 fail, 77 skip."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "supervisor"))
from harness import Ckptd, Fail, check  # noqa: E402

STEPS = 40


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise Fail("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


def installed(build, dest):
    """{basename: path in dest} of what meson installs."""
    got = json.loads(run(["meson", "introspect", build, "--installed"]))
    return {os.path.basename(v): dest + v for v in got.values()}


def check_steps(d, opid, what):
    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=60)
    check(o["status"] == "COMPLETED", "%s: %s (%s)" % (what, o["status"], o["reason"]))
    st, m = d.req("GET", "/api/v1/operations/%s/metrics?resolution=step" % opid)
    check(st == 200, "%s: metrics answered %s" % (what, st))
    check(m["step"] == list(range(1, STEPS + 1)),
          "%s: steps %s, want 1..%d" % (what, m["step"], STEPS))
    for s, loss, val in zip(m["step"], m["loss"], m["val_loss"]):
        want = 2.0 / (1.0 + s / 10.0)
        check(abs(loss - want) < 1e-6, "%s: step %d loss %s, want %s" % (what, s, loss, want))
        check((val is None) == (s % 5 != 0), "%s: step %d val_loss %s" % (what, s, val))


def main():
    build = os.environ.get("CKPTFS_BUILD_ROOT")
    if not build:
        print("run me from meson test (CKPTFS_BUILD_ROOT)")
        return 2
    # meson test points LD_LIBRARY_PATH at the build tree's libckptnotify;
    # the installed trainer must find the installed one on its own
    os.environ.pop("LD_LIBRARY_PATH", None)
    for tool in ("cc", "pkg-config"):
        if not shutil.which(tool):
            print("SKIP: no %s" % tool)
            return 77
    tmp = tempfile.mkdtemp(prefix="ckpt-sdk-")
    dest = os.path.join(tmp, "dest")
    d = None
    try:
        run(["meson", "install", "-C", build, "--destdir", dest, "--no-rebuild", "--quiet"])
        files = installed(build, dest)
        for f in ("libckptnotify.so", "ckptnotify.pc", "notify.h", "ckpt_notify.py", "ckptd"):
            check(f in files and os.path.exists(files[f]), "%s is not installed: %s" %
                  (f, sorted(files)))
        libdir = os.path.dirname(files["libckptnotify.so"])

        # the library exports the protocol and nothing else of libckptcommon
        syms = [s.split("@")[0] for s in
                run(["nm", "-D", "--defined-only", files["libckptnotify.so"]]).split()]
        funcs = sorted(s for s in syms if s.startswith("ckpt_"))
        check(funcs == ["ckpt_notify_addr", "ckpt_notify_listen", "ckpt_notify_parse",
                        "ckpt_notify_recv", "ckpt_notify_send", "ckpt_notifyf"],
              "exported: %s" % funcs)
        check(not [s for s in syms if s.startswith("ckpt_") and s not in funcs],
              "extra exports")

        # C: nothing but pkg-config's answer, pointing into the destdir
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(files["ckptnotify.pc"]),
                   PKG_CONFIG_SYSROOT_DIR=dest, PKG_CONFIG_LIBDIR="")
        flags = run(["pkg-config", "--cflags", "--libs", "ckptnotify"], env=env).split()
        print("pkg-config --cflags --libs ckptnotify:", " ".join(flags))
        check("-lckptnotify" in flags and any(f.startswith("-I" + dest) for f in flags),
              "pkg-config flags %s" % flags)
        exe = os.path.join(tmp, "sdk_trainer")
        # a sanitizer build's library needs its runtime first in the program
        san = ["-fsanitize=address,undefined"] if "libasan" in run(
            ["readelf", "-d", files["libckptnotify.so"]]) else []
        run(["cc", "-Wall", "-Werror", "-o", exe, os.path.join(HERE, "sdk_trainer.c")] + flags +
            ["-Wl,-rpath," + libdir] + san)
        ldd = run(["ldd", exe])
        check(os.path.join(libdir, "libckptnotify.so.0") in ldd,
              "the trainer does not load the installed library:\n%s" % ldd)
        run([exe, "3"])  # without CKPT_NOTIFY_SOCKET: a no-op, exit 0

        # Python: the installed module, and only it
        pydir = os.path.dirname(files["ckpt_notify.py"])
        penv = dict(os.environ, PYTHONPATH=pydir)
        where = run([sys.executable, "-c", "import ckpt_notify; print(ckpt_notify.__file__)"],
                    env=penv, cwd=tmp).strip()
        check(os.path.realpath(where) == os.path.realpath(files["ckpt_notify.py"]),
              "import ckpt_notify found %s, not the installed %s" %
              (where, files["ckpt_notify.py"]))
        bad = subprocess.run([sys.executable, "-c", "import ckpt_notify"], cwd=tmp,
                             env=dict(os.environ, PYTHONPATH=""), capture_output=True)
        if bad.returncode == 0:
            print("note: ckpt_notify is importable without PYTHONPATH here too (installed "
                  "system-wide?)")

        # both trainers under the installed ckptd
        os.makedirs(os.path.join(tmp, "d"))
        d = Ckptd(files["ckptd"], tmp=os.path.join(tmp, "d"), env_extra={"PYTHONPATH": pydir})
        d.start()
        c_op = d.submit({"name": "sdk-c", "command": [exe, str(STEPS)]})
        py_op = d.submit({"name": "sdk-py", "command": [
            sys.executable, os.path.join(HERE, "sdk_trainer.py"), str(STEPS)]})
        check_steps(d, c_op, "C trainer")
        check_steps(d, py_op, "Python trainer")
        st, logs = d.req("GET", "/api/v1/operations/%s/logs" % py_op)
        check(files["ckpt_notify.py"] in logs or os.path.realpath(files["ckpt_notify.py"])
              in logs, "the Python trainer used another ckpt_notify: %s" % logs)
        print("sdk: ok (C and Python trainers against the installed copies)")
        return 0
    except Fail as e:
        print("FAIL:", e)
        return 1
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
