# SPDX-License-Identifier: MIT
"""harness.py - start a real ckptd in a temp state dir and talk to its API
over the Unix socket (http.client on AF_UNIX). Used by test_ckptd.py and the
benchmarks. Python 3 stdlib only."""
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_trainer.py")


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Ckptd:
    def __init__(self, ckptd_bin, config_extra="", env_extra=None, tmp=None, config=None,
                 gpus="0"):
        """gpus: the config's GPU inventory ("0": none, "[0, 1]": those); by
        default none, so that what a test sees does not depend on the host's
        GPUs; None leaves the key out (ckptd detects them)."""
        self.bin = ckptd_bin
        self.tmp = tmp or tempfile.mkdtemp(prefix="ckptd-test-")
        self.state = os.path.join(self.tmp, "st")
        self.runs = os.path.join(self.tmp, "runs")
        self.cfg = os.path.join(self.tmp, "cfg.yaml")
        with open(self.cfg, "w") as f:
            f.write(config if config is not None else
                    "mount: %s\nmount_ckptfs: never\n" % self.runs +
                    ("gpus: %s\n" % gpus if gpus is not None else "") + config_extra)
        self.sock = os.path.join(self.state, "ckptd.sock")
        self.env = dict(os.environ)
        self.env.update(env_extra or {})
        self.proc = None
        self.extra_pids = []

    def start(self):
        self.out = open(os.path.join(self.tmp, "ckptd.out"), "a")
        self.proc = subprocess.Popen([self.bin, "--state-dir", self.state, "--config", self.cfg],
                                     stdout=self.out, stderr=subprocess.STDOUT, env=self.env)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise Fail("ckptd exited with %s at start; see %s/ckptd.out" %
                           (self.proc.returncode, self.tmp))
            try:
                if self.req("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise Fail("ckptd did not answer /healthz within 10 s")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def req(self, method, path, body=None, headers=None, raw=False):
        c = UnixHTTP(self.sock)
        try:
            if body is not None and not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            if raw:
                return r.status, data, r
            try:
                return r.status, json.loads(data) if data else None
            except ValueError:
                return r.status, data.decode(errors="replace")
        finally:
            c.close()

    def submit(self, spec, **kw):
        st, body = self.req("POST", "/api/v1/operations", spec, **kw)
        check(st in (200, 201), "submit answered %s %s" % (st, body))
        return body["id"]

    def op(self, opid):
        st, body = self.req("GET", "/api/v1/operations/" + opid)
        check(st == 200, "GET op answered %s %s" % (st, body))
        return body

    def events(self, opid):
        st, body = self.req("GET", "/api/v1/operations/%s/events" % opid)
        check(st == 200, "events answered %s" % st)
        return body["events"]

    def wait_status(self, opid, statuses, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            o = self.op(opid)
            if o["status"] in statuses:
                return o
            time.sleep(0.05)
        raise Fail("operation %s still %s after %d s (wanted %s); events: %s" %
                   (opid, o["status"], timeout, statuses,
                    [(e["event"], e["reason"]) for e in self.events(opid)]))

    def wait_event(self, opid, name, timeout=30, count=1):
        end = time.time() + timeout
        while time.time() < end:
            evs = [e for e in self.events(opid) if e["event"] == name]
            if len(evs) >= count:
                return evs[count - 1]
            time.sleep(0.05)
        raise Fail("no %s event for %s within %d s" % (name, opid, timeout))

    def sanitizer_findings(self):
        try:
            with open(os.path.join(self.tmp, "ckptd.out"), errors="replace") as f:
                out = f.read()
        except OSError:
            return None
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            i = out.find(marker)
            if i >= 0:
                return out[max(0, i - 200):i + 3000]
        return None

    def cleanup(self):
        self.last_rc = self.stop()
        # trainers under shims outlive ckptd by design: end the ones we made
        for line in read_trace_files(self.tmp):
            pid = line.get("pid") if isinstance(line, dict) else None
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
        # every attempt's process group, from the shims' own records
        for f in (glob.glob(os.path.join(self.state, "ops", "*", "attempt-*", "trainer")) +
                  glob.glob(os.path.join(self.state, "ops", "*", "attempt-*", "rank-*",
                                         "trainer"))):
            try:
                with open(f) as fh:
                    os.killpg(int(fh.read().split()[0]), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
        for pid in self.extra_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        mnt = getattr(self, "mnt", None)
        if mnt:
            time.sleep(0.2)
            if subprocess.run(["fusermount3", "-u", mnt]).returncode != 0:
                subprocess.run(["fusermount3", "-uz", mnt])
        time.sleep(0.1)  # let killed trainers go before the tree is removed
        if os.environ.get("CKPTD_TEST_KEEP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def read_trace_files(tmp):
    out = []
    for name in os.listdir(tmp):
        if name.startswith("trace"):
            with open(os.path.join(tmp, name)) as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    return out


def trace(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def fake_cmd(tmp, *args, name="trace"):
    return [sys.executable, FAKE, "--trace", os.path.join(tmp, name)] + list(args)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def run_case(cases, argv, tmp=None):
    """main() of a test file: argv is [prog, CKPTD_BIN, CASE]; runs the case
    on a fresh ckptd, checks it stops cleanly without sanitizer findings.
    Returns the exit status (0 pass, 1 fail, 2 usage, 77 skip)."""
    if len(argv) != 3 or argv[2] not in cases:
        print("usage: %s CKPTD_BIN CASE (%s)" % (os.path.basename(argv[0]), ", ".join(cases)))
        return 2
    d = Ckptd(argv[1], tmp=tmp)
    try:
        d.start()
        cases[argv[2]](d)
        rc = d.stop()
        bad = d.sanitizer_findings()
        check(not bad, "sanitizer findings in ckptd or a shim:\n%s" % bad)
        check(rc == 0, "ckptd exited with status %s on SIGTERM" % rc)
        print("ok:", argv[2])
        return 0
    except Skip as e:
        print("SKIP:", argv[2], e)
        return 77
    except Fail as e:
        print("FAIL:", argv[2], e)
        print("state dir", d.tmp)
        try:
            with open(os.path.join(d.tmp, "ckptd.out")) as f:
                print(f.read()[-3000:])
        except OSError:
            pass
        return 1
    finally:
        d.cleanup()
