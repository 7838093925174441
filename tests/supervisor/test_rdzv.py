#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_rdzv.py CKPTD_BIN CASE - a gang across hosts (SPEC §9, docs/ranks.md
"Many hosts"): two "hosts" on one machine, each its own real ckptd (own
state dir, config host hostA / hostB) running 2 fake ranks (fake_rank.py),
coordinating through a real etcd (Debian etcd-server) that the test starts
on free 127.0.0.1 ports in its temp dir and stops by pid. Both ckptds use
ONE ckptfs mount (a directory store) as their tree, so both hosts see the
one run dir; without a built ckptfs or /dev/fuse, one plain directory.
Exit 0 pass, 1 fail, 77 skip (no etcd).

  rdzv_fault      rank 2 (on hostB) exits 1: all 4 ranks restart, from one
                  version (CKPT_RESUME_FROM equal everywhere); the torchrun
                  variables across hosts (RANK, WORLD_SIZE, GROUP_RANK, one
                  MASTER_ADDR:MASTER_PORT chosen by node 0)
  rdzv_host_kill  kill -9 of hostB's ckptd, shims and ranks: hostA notices
                  within the lease TTL and waits; hostB's ckptd started
                  again: the gang restarts together and completes
  rdzv_timeout    hostB away past gang_timeout_s: FAILED on both with a
                  reason; ckpt ops resume on both: the gang completes
  rdzv_cancel     a cancel on hostA: CANCELLED there, FAILED on hostB
  rdzv_ddp        the PyTorch DDP example across the 2 hosts: kill -9 of
                  rank 2, one resume version everywhere, final model and
                  optimizer shards bitwise equal to an uninterrupted run
  rdzv_etcd       etcd down at submit: a clear error (HTTP 503); node_rank
                  taken; etcd stopped mid-run: the ranks keep training, a
                  fault's restart waits for etcd, then the gang completes
"""
import glob
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
sys.path.insert(0, HERE)
from harness import Ckptd, Fail, Skip, check, trace  # noqa: E402
from test_ckptd import build_bin, mounted  # noqa: E402

FAKE_RANK = os.path.join(HERE, "fake_rank.py")
TTL = 2


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Etcd:
    """A real etcd on free 127.0.0.1 ports, its data in tmp; stop() by pid."""

    def __init__(self, tmp):
        if not shutil.which("etcd"):
            raise Skip("etcd is not installed (Debian etcd-server)")
        self.dir = os.path.join(tmp, "etcd")
        self.port, self.peer = free_port(), free_port()
        self.proc = None
        self.started = False

    def url(self, job):
        return "etcd://127.0.0.1:%d/%s" % (self.port, job)

    def start(self, tries=3):
        """tries: a first start may lose its free ports to a test running
        beside it (bound and released); it then takes two others. A restart
        (the same data dir) keeps its ports: the hosts know them."""
        c, p = "http://127.0.0.1:%d" % self.port, "http://127.0.0.1:%d" % self.peer
        self.log = open(self.dir + ".log", "a")
        self.proc = subprocess.Popen(
            ["etcd", "--name", "t", "--data-dir", self.dir, "--listen-client-urls", c,
             "--advertise-client-urls", c, "--listen-peer-urls", p,
             "--initial-advertise-peer-urls", p, "--initial-cluster", "t=" + p],
            stdout=self.log, stderr=subprocess.STDOUT)
        end = time.time() + 20
        while time.time() < end:
            if self.proc.poll() is not None:
                check(tries > 1 and not self.started, "etcd exited; see %s.log" % self.dir)
                shutil.rmtree(self.dir, ignore_errors=True)
                self.port, self.peer = free_port(), free_port()
                return self.start(tries - 1)
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                self.started = True
                return self
            except OSError:
                time.sleep(0.05)
        raise Fail("etcd did not listen within 20 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    """A real one-node Ceph cluster (tests/ceph/cluster.sh) in tmp/ceph."""

    def __init__(self, tmp):
        self.script = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "ceph",
                                   "cluster.sh")
        self.dir = os.path.join(tmp, "ceph")
        r = subprocess.run(["bash", self.script, "start", self.dir, "ckpt"],
                           capture_output=True, text=True)
        if r.returncode == 77:
            raise Skip("the Ceph packages are missing: %s" % r.stderr.strip())
        check(r.returncode == 0, "the test cluster did not start: %s" % r.stderr[-2000:])
        self.url = "rados://ckpt?conf=%s" % r.stdout.strip()

    def stop(self):
        subprocess.run(["bash", self.script, "stop", self.dir])


class Gang:
    """Two hosts (ckptds) over one tree, one etcd. rados: each host's ckptd
    mounts its own ckptfs of one RADOS pool (a real one-node cluster), as
    hosts do (SPEC §9): two mounts, one shared store."""

    def __init__(self, ckptd_bin, rados=False):
        self.tmp = tempfile.mkdtemp(prefix="ckptd-rdzv-")
        self.etcd = Etcd(self.tmp)
        self.mnt = os.path.join(self.tmp, "mnt")
        os.makedirs(self.mnt)
        self.fs = None
        self.cluster = None
        fs = build_bin("fs/fuse/ckptfs")
        if rados:
            if not fs or not os.path.exists("/dev/fuse"):
                raise Skip("a RADOS gang needs the built ckptfs and /dev/fuse")
            self.cluster = Cluster(self.tmp)
            self.mnt_b = os.path.join(self.tmp, "mnt-b")
            self.hosts = []
            for name, mnt in (("hostA", self.mnt), ("hostB", self.mnt_b)):
                t = os.path.join(self.tmp, name)
                os.makedirs(t)
                self.hosts.append(Ckptd(ckptd_bin, tmp=t, config=(
                    "store: %s\nmount: %s\nckptfs: %s\ngpus: 0\nhost: %s\nrdzv_ttl_s: %d\n" %
                    (self.cluster.url, mnt, fs, name, TTL))))
            self.trace = os.path.join(self.tmp, "trace")
            return
        if fs and os.path.exists("/dev/fuse"):
            store = os.path.join(self.tmp, "store")
            os.makedirs(store)
            self.fs = subprocess.Popen([fs, store, self.mnt], stdout=subprocess.DEVNULL,
                                       stderr=open(os.path.join(self.tmp, "ckptfs.log"), "w"))
            for _ in range(200):
                if mounted(self.mnt):
                    break
                time.sleep(0.05)
            check(mounted(self.mnt), "ckptfs did not mount %s" % self.mnt)
        self.hosts = []
        # hostB sees the tree at another path (a symlink), as a second host
        # has its own mount of the shared store: paths differ, names agree
        self.mnt_b = os.path.join(self.tmp, "mnt-b")
        os.symlink(self.mnt, self.mnt_b)
        for name, mnt in (("hostA", self.mnt), ("hostB", self.mnt_b)):
            t = os.path.join(self.tmp, name)
            os.makedirs(t)
            self.hosts.append(Ckptd(ckptd_bin, tmp=t, config=(
                "mount: %s\nmount_ckptfs: never\ngpus: 0\nhost: %s\nrdzv_ttl_s: %d\n" %
                (mnt, name, TTL))))
        self.trace = os.path.join(self.tmp, "trace")

    def spec(self, node, job, *args, recovery=None):
        rec = {"backoff_ms": 0, "max_backoff_ms": 1000, "grace_s": 2, "poll_interval_ms": 200,
               "gang_timeout_s": 60}
        rec.update(recovery or {})
        return {"name": "gang", "command": [sys.executable, FAKE_RANK, "--trace", self.trace] +
                list(args),
                "resources": {"nodes": 2, "procs_per_node": 2, "node_rank": node,
                              "rdzv": self.etcd.url(job), "gpus": 0},
                "recovery": rec}

    def submit(self, job, *args, **kw):
        return [h.submit(self.spec(i, job, *args, **kw)) for i, h in enumerate(self.hosts)]

    def wait_all(self, ids, statuses, timeout=60):
        return [h.wait_status(i, statuses, timeout) for h, i in zip(self.hosts, ids)]

    def starts(self):
        return [t for t in trace(self.trace) if t["event"] == "start"]

    def close(self):
        if getattr(self, "closed", False):
            return
        self.closed = True
        for h in self.hosts:
            rc = h.stop()
            bad = h.sanitizer_findings()
            h.rc = rc
            h.bad = bad
        self.etcd.stop()
        # trainers outlive ckptd by design: end the ones we made
        for t in trace(self.trace):
            try:
                os.killpg(t["pgid"], signal.SIGKILL)
            except (OSError, KeyError):
                pass
        if self.fs:
            time.sleep(0.2)
            if subprocess.run(["fusermount3", "-u", self.mnt]).returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.mnt])
            self.fs.wait()
        if self.cluster:
            # each ckptd unmounted its ckptfs; let them close the store
            # while the cluster is up, then stop it
            mnts = (self.mnt.encode(), self.mnt_b.encode())
            for _ in range(150):
                if not any(m in cmdline(p) for p in os.listdir("/proc") if p.isdigit()
                           for m in mnts):
                    break
                time.sleep(0.1)
            for m in (self.mnt, self.mnt_b):
                if mounted(m):
                    subprocess.run(["fusermount3", "-uz", m])
            self.cluster.stop()


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def check_together(g, ids, nattempts):
    """Every attempt started all 4 ranks with one CKPT_RESUME_FROM, the one
    both hosts' checkpoint_selected named."""
    att = {}
    for t in g.starts():
        att.setdefault(t["attempt"], []).append(t)
    check(sorted(att) == list(range(1, nattempts + 1)), "attempts %s" % sorted(att))
    sels = [[e for e in h.events(i) if e["event"] == "checkpoint_selected"]
            for h, i in zip(g.hosts, ids)]
    for a, ts in sorted(att.items()):
        check(sorted(t["rank"] for t in ts) == [0, 1, 2, 3],
              "attempt %d started ranks %s" % (a, sorted(t["rank"] for t in ts)))
        # one version, each rank's path to it in its own host's run dir
        resumes = {t["resume"] and os.path.basename(t["resume"]) for t in ts}
        check(len(resumes) == 1, "attempt %d: the ranks resumed from %s" % (a, resumes))
        check(all(not t["resume"] or os.path.dirname(t["resume"]) == t["env"]["CKPT_RUN_DIR"]
                  for t in ts), "attempt %d: a rank's CKPT_RESUME_FROM is not in its own "
              "CKPT_RUN_DIR: %s" % (a, [(t["resume"], t["env"]["CKPT_RUN_DIR"]) for t in ts]))
        if a > 1:
            chosen = {s[a - 2]["checkpoint"] for s in sels}
            check({os.path.basename(c) for c in chosen} == resumes,
                  "attempt %d resumed from %s; the hosts selected %s" % (a, resumes, chosen))
            check(None not in resumes, "attempt %d started from scratch" % a)
    return att


def envs_dir(att, rank):
    return [t["env"]["CKPT_RUN_DIR"] for t in att if t["rank"] == rank][0]


def host_env(att, mounts=1):
    envs = {t["rank"]: t["env"] for t in att}
    check(all(envs[k]["RANK"] == str(k) and envs[k]["WORLD_SIZE"] == "4" and
              envs[k]["LOCAL_WORLD_SIZE"] == "2" and envs[k]["LOCAL_RANK"] == str(k % 2) and
              envs[k]["GROUP_RANK"] == str(k // 2) for k in envs), "torchrun variables %s" % envs)
    check(len({(e["MASTER_ADDR"], e["MASTER_PORT"]) for e in envs.values()}) == 1 and
          envs[0]["MASTER_ADDR"] == "127.0.0.1" and int(envs[0]["MASTER_PORT"]) > 0,
          "MASTER_ADDR:MASTER_PORT differ: %s" % envs)
    # one tree (a symlink for hostB), or one store through each host's mount
    # (RADOS): one run, each host's ranks in one run dir
    check(len({os.path.realpath(e["CKPT_RUN_DIR"]) for e in envs.values()}) == mounts and
          len({os.path.basename(e["CKPT_RUN_DIR"]) for e in envs.values()}) == 1 and
          all(len({e["CKPT_RUN_DIR"] for e in envs.values() if e["GROUP_RANK"] == g}) == 1
              for g in ("0", "1")), "run dirs differ: %s" % envs)


def fault_run(g, steps, timeout):
    """Rank 2 (hostB) exits 1 at step 15; both hosts complete after one
    restart of all 4 ranks from one version."""
    for h in g.hosts:
        h.start()
    if g.cluster:
        check_rados(g)
    g.etcd.start()
    ids = g.submit("fault", "--steps", str(steps), "--step-ms", "30", "--ckpt-every", "10",
                   "--fault", "exit1@15:rank=2")
    os_ = g.wait_all(ids, ["COMPLETED", "FAILED"], timeout)
    check([o["status"] for o in os_] == ["COMPLETED"] * 2,
          "status %s" % [(o["status"], o["reason"]) for o in os_])
    att = check_together(g, ids, 2)
    host_env(att[1], 2 if g.cluster else 1)
    host_env(att[2], 2 if g.cluster else 1)
    return ids, att


def t_rdzv_fault(g):
    ids, att = fault_run(g, 80, 90)
    a, b = g.hosts
    det_b = [e for e in b.events(ids[1]) if e["event"] == "detected"]
    det_a = [e for e in a.events(ids[0]) if e["event"] == "detected"]
    check(len(det_b) == 1 and det_b[0]["rank"] == 2 and det_b[0]["host"] == "hostB" and
          det_b[0]["reason"] == "rank 2 on hostB: exit status 1", "hostB detected %s" % det_b)
    check(len(det_a) == 1 and det_a[0]["rank"] is None and det_a[0]["host"] == "hostA" and
          det_a[0]["reason"] == "the gang restarts: rank 2 on hostB: exit status 1",
          "hostA detected %s" % det_a)
    sel = [e for e in a.events(ids[0]) if e["event"] == "checkpoint_selected"]
    check(sel[0]["checkpoint"].endswith("/step-000010.a1"), "selected %s" % sel)
    # hostA's ranks were stopped by its ckptd (SIGTERM), not left to run on
    check(envs_dir(att[2], 2) == os.path.join(g.mnt_b, "fault"), "hostB's run dir %s" %
          envs_dir(att[2], 2))
    ends = [t for t in trace(g.trace) if t["event"] == "end" and t["attempt"] == 1]
    check(sorted(t["rank"] for t in ends) == [0, 1, 3] and all(t["stopped"] for t in ends),
          "attempt 1's other ranks: %s" % ends)
    o = a.op(ids[0])
    check(o["world_size"] == 4 and [r["rank"] for r in o["ranks"]] == [0, 1] and
          o["node_rank"] == 0 and [r["rank"] for r in b.op(ids[1])["ranks"]] == [2, 3],
          "ranks %s" % o["ranks"])


def shim_pids(h):
    pids = []
    for f in glob.glob(os.path.join(h.state, "ops", "*", "attempt-*", "rank-*", "shim")):
        with open(f) as fh:
            pids.append(int(fh.read().split()[0]))
    return pids


def t_rdzv_host_kill(g):
    for h in g.hosts:
        h.start()
    if g.cluster:
        check_rados(g)
    g.etcd.start()
    a, b = g.hosts
    # hostA's fake ranks do not wait for hostB's as DDP's would: enough steps
    # that they still run when hostB's lease expires
    ids = g.submit("kill", "--steps", "120", "--step-ms", "40", "--ckpt-every", "10")
    end = time.time() + 60
    while time.time() < end:
        o = b.op(ids[1])
        if o["status"] == "RUNNING" and all((r["step"] or 0) >= 12 for r in o["ranks"]):
            break
        time.sleep(0.05)
    else:
        raise Fail("hostB's ranks did not reach step 12: %s" % b.op(ids[1]))
    # hostB dies with its ranks: ckptd, shims, trainers, all kill -9
    pgids = [t["pgid"] for t in g.starts() if t["rank"] in (2, 3)]
    b.kill9()
    for p in shim_pids(b):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    for p in pgids:
        try:
            os.killpg(p, signal.SIGKILL)
        except OSError:
            pass
    killed = time.time()
    det = a.wait_event(ids[0], "detected", timeout=TTL * 5)
    noticed = time.time() - killed
    # on RADOS mounts a rank of hostB may be reported dead (exit status)
    # before hostB's lease runs out: either way the detection names hostB
    check("node 1 (hostB) is gone" in det["reason"] or
          (g.cluster and "on hostB" in det["reason"]), "hostA detected %s" % det)
    # hostA waits for hostB: nothing restarts without it
    o = a.wait_status(ids[0], ["RECOVERING"], 10)
    time.sleep(1.0)
    o = a.op(ids[0])
    check(o["status"] == "RECOVERING" and
          len([t for t in g.starts() if t["attempt"] == 2]) == 0,
          "hostA did not wait for hostB: %s %s" % (o["status"], o["reason"]))
    b.start()
    os_ = g.wait_all(ids, ["COMPLETED", "FAILED"], 90)
    check([o["status"] for o in os_] == ["COMPLETED"] * 2,
          "status %s" % [(o["status"], o["reason"]) for o in os_])
    check_together(g, ids, 2)
    print("hostA noticed hostB's death after %.1f s (lease TTL %d s)" % (noticed, TTL))


def kill_host(g, h):
    """kill -9 of a host: its ckptd, its shims, its ranks."""
    pgids = [t["pgid"] for t in g.starts() if t["rank"] in (2, 3)]
    h.kill9()
    for p in shim_pids(h):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    for p in pgids:
        try:
            os.killpg(p, signal.SIGKILL)
        except OSError:
            pass


def t_rdzv_timeout(g):
    """hostB stays away longer than gang_timeout_s: every host FAILS with a
    reason naming it; once it is back, ckpt ops resume on each host starts
    the gang again, together, from the newest complete version."""
    for h in g.hosts:
        h.start()
    g.etcd.start()
    a, b = g.hosts
    ids = g.submit("timeout", "--steps", "120", "--step-ms", "40", "--ckpt-every", "10",
                   recovery={"gang_timeout_s": 3})
    end = time.time() + 60
    while time.time() < end:
        o = b.op(ids[1])
        if o["status"] == "RUNNING" and all((r["step"] or 0) >= 12 for r in o["ranks"]):
            break
        time.sleep(0.05)
    kill_host(g, b)
    o = a.wait_status(ids[0], ["FAILED", "COMPLETED"], 30)
    check(o["status"] == "FAILED" and "node 1 (hostB) did not come back within "
          "recovery.gang_timeout_s (3 s)" in o["reason"], "hostA: %s %s" % (o["status"],
                                                                          o["reason"]))
    b.start()
    o = b.wait_status(ids[1], ["FAILED", "COMPLETED"], 30)
    check(o["status"] == "FAILED" and "did not come back" in o["reason"],
          "hostB after its restart: %s %s" % (o["status"], o["reason"]))
    check(not [t for t in g.starts() if t["attempt"] > 1], "an attempt started without hostB")
    for h, i in zip(g.hosts, ids):
        st, body = h.req("POST", "/api/v1/operations/%s/resume" % i)
        check(st in (200, 202), "resume on %s: %s %s" % (h.tmp, st, body))
    os_ = g.wait_all(ids, ["COMPLETED", "FAILED"], 90)
    check([o["status"] for o in os_] == ["COMPLETED"] * 2,
          "after resume: %s" % [(o["status"], o["reason"]) for o in os_])
    res = [t for t in g.starts() if t["attempt"] > 1]
    check(sorted(t["rank"] for t in res) == [0, 1, 2, 3] and len({t["attempt"] for t in res}) == 1
          and len({os.path.basename(t["resume"] or "") for t in res}) == 1 and res[0]["resume"] and
          res[0]["resume"].endswith(".a1"), "the resumed ranks: %s" %
          [(t["rank"], t["attempt"], t["resume"]) for t in res])


def t_rdzv_cancel(g):
    """A cancel on one host ends the gang on every host: hostA CANCELLED,
    hostB FAILED naming hostA, no attempt restarted."""
    for h in g.hosts:
        h.start()
    g.etcd.start()
    a, b = g.hosts
    ids = g.submit("cancel", "--steps", "400", "--step-ms", "30", "--ckpt-every", "10")
    end = time.time() + 60
    while time.time() < end:
        o = b.op(ids[1])
        if o["status"] == "RUNNING" and all((r["step"] or 0) >= 5 for r in o["ranks"]):
            break
        time.sleep(0.05)
    st, body = a.req("POST", "/api/v1/operations/%s/cancel" % ids[0])
    check(st == 200, "cancel: %s %s" % (st, body))
    oa = a.wait_status(ids[0], ["CANCELLED", "FAILED", "COMPLETED"], 30)
    ob = b.wait_status(ids[1], ["CANCELLED", "FAILED", "COMPLETED"], 30)
    check(oa["status"] == "CANCELLED", "hostA: %s %s" % (oa["status"], oa["reason"]))
    check(ob["status"] == "FAILED" and "node 0 (hostA) ended the gang: cancelled" in ob["reason"],
          "hostB: %s %s" % (ob["status"], ob["reason"]))
    check(not [t for t in g.starts() if t["attempt"] > 1], "an attempt restarted")


def ddp_run(g, py, job, kill_rank=None):
    """examples/pytorch_ddp_train.py as a gang of 2 hosts x 2 ranks: gloo's
    rendezvous on node 0's MASTER_ADDR:MASTER_PORT, as under torchrun."""
    ddp = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples",
                       "pytorch_ddp_train.py")
    specs = [g.spec(i, job, recovery={"heartbeat_timeout_s": 0, "max_attempts": 3})
             for i in range(2)]
    for sp in specs:
        sp["command"] = [py, ddp, "--steps", "40", "--save-every", "10", "--step-sleep", "0.02",
                         "--timeout", "20"]
    ids = [h.submit(sp) for h, sp in zip(g.hosts, specs)]
    if kill_rank is not None:
        h = g.hosts[kill_rank // 2]
        end = time.time() + 240
        while time.time() < end:
            o = h.op(ids[kill_rank // 2])
            r = [r for r in o.get("ranks", []) if r["rank"] == kill_rank]
            if o["status"] == "RUNNING" and r and (r[0]["step"] or 0) >= 25:
                os.kill(r[0]["pid"], signal.SIGKILL)
                break
            time.sleep(0.05)
        else:
            raise Fail("rank %d did not reach step 25" % kill_rank)
    os_ = g.wait_all(ids, ["COMPLETED", "FAILED"], 300)
    check([o["status"] for o in os_] == ["COMPLETED"] * 2,
          "%s: %s" % (job, [(o["status"], o["reason"]) for o in os_]))
    out = {}
    for n in ["model.pt", "trainer_state.json"] + ["optim-rank-%d.pt" % k for k in range(4)]:
        got = []
        for m in (g.mnt, g.mnt_b):  # every host's view of the version
            with open(os.path.join(m, job, "step-000040", n), "rb") as f:
                got.append(f.read())
        check(got[0] == got[1], "%s/step-000040/%s differs between the hosts' mounts" % (job, n))
        out[n] = got[0]
    return ids, out


def t_rdzv_ddp(g, rados=False):
    """The PyTorch DDP example across 2 hosts x 2 ranks (gloo, CPU): kill -9
    of rank 2 (hostB) after step 25; every rank of both hosts resumes from
    one version (their logs), the gang completes, and its model and every
    optimizer shard are bitwise those of an uninterrupted run (about 30 s on
    the shared machine: 3 launches of 4 Pythons importing torch)."""
    py = None
    for cand in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([cand, "-c", "import torch.distributed"],
                          capture_output=True).returncode == 0:
            py = cand
            break
    if not py:
        raise Skip("no Python with torch (python3-torch)")
    for h in g.hosts:
        h.start()
    if rados:
        check_rados(g)
    g.etcd.start()
    want = ddp_run(g, py, "ddp-ref")[1]
    ids, got = ddp_run(g, py, "ddp-kill", kill_rank=2)
    det = [e for e in g.hosts[1].events(ids[1]) if e["event"] == "detected"]
    check(det and det[0]["rank"] == 2 and "signal 9" in det[0]["reason"], "detected %s" % det)
    sels = [[e for e in h.events(i) if e["event"] == "checkpoint_selected"][0]["checkpoint"]
            for h, i in zip(g.hosts, ids)]
    names = {os.path.basename(c) for c in sels}
    check(len(names) == 1, "the hosts selected %s" % sels)
    for h, i, c in zip(g.hosts, ids, sels):
        for k in (0, 1) if h is g.hosts[0] else (2, 3):
            st, log = h.req("GET", "/api/v1/operations/%s/logs?rank=%d" % (i, k))
            check(st == 200 and "rank %d: resumed from %s at step" % (k, c) in log,
                  "rank %d's log: %s" % (k, log[-800:] if isinstance(log, str) else log))
    check(got == want, "after kill -9 of rank 2: %s differ" %
          [n for n in want if got[n] != want[n]])


def check_rados(g):
    """Both hosts are on their own ckptfs mounts of one pool."""
    for m in (g.mnt, g.mnt_b):
        check(mounted(m), "%s is not mounted (see the ckptds' logs)" % m)
    check(os.stat(g.mnt).st_dev != os.stat(g.mnt_b).st_dev, "the hosts share one mount")


def committed_versions(mnt, job):
    run = os.path.join(mnt, job)
    out = {}
    for v in sorted(os.listdir(run)):
        p = os.path.join(run, v)
        if v in ("latest", "best") or not os.path.isdir(p):
            continue
        out[v] = os.getxattr(p, "user.ckpt.state").decode()
    return out


def t_rdzv_rados_fault(g):
    """rdzv_fault with each host on its own ckptfs of one RADOS pool: the
    ranks of both hosts write one open version (user.ckpt.writers=4, each
    rank's part set on its own host's mount); rank 2 (hostB) exits 1 at step
    15: all 4 ranks restart from one version, every committed version holds
    every rank's files and reads the same on both mounts, the version being
    written at the fault never commits."""
    ids, att = fault_run(g, 60, 120)
    sel = [e for e in g.hosts[0].events(ids[0]) if e["event"] == "checkpoint_selected"]
    check(sel[0]["checkpoint"].endswith("/step-000010.a1"), "selected %s" % sel)
    check(envs_dir(att[2], 2) == os.path.join(g.mnt_b, "fault"), "hostB's run dir %s" %
          envs_dir(att[2], 2))
    time.sleep(1.0)  # the last commit's notification reaches the other mount
    va, vb = committed_versions(g.mnt, "fault"), committed_versions(g.mnt_b, "fault")
    check(va == vb, "the mounts disagree: %s / %s" % (va, vb))
    done = [v for v, st in va.items() if st == "committed"]
    # the run keeps its newest versions: step-000010.a1 may be gone by now
    check("step-000060.a2" in done, "committed %s" % va)
    for v in done:
        for m in (g.mnt, g.mnt_b):
            names = sorted(os.listdir(os.path.join(m, "fault", v)))
            want = sorted(["shard-%d.bin" % k for k in range(4)] +
                          ["state-%d.json" % k for k in range(4)])
            check([n for n in names if n != ".manifest"] == want,
                  "%s on %s holds %s" % (v, m, names))
        for k in range(4):
            a = open(os.path.join(g.mnt, "fault", v, "shard-%d.bin" % k), "rb").read()
            b = open(os.path.join(g.mnt_b, "fault", v, "shard-%d.bin" % k), "rb").read()
            check(a == b and len(a) > 0, "%s/shard-%d.bin differs between the mounts" % (v, k))
    # saves of attempt 1 after the fault (rank 2 dead) never committed
    check(all(st != "committed" for v, st in va.items()
              if v.endswith(".a1") and int(v[5:11]) > 10), "versions %s" % va)


def t_rdzv_rados_host_kill(g):
    """rdzv_host_kill with each host on its own ckptfs of one RADOS pool:
    kill -9 of hostB's ckptd and ranks (its mount stays, as a host's
    filesystem daemon outlives a supervisor crash); hostA notices within the
    lease, waits, and the gang completes once hostB's ckptd is back."""
    t_rdzv_host_kill(g)
    check_rados(g)


def t_rdzv_rados_ddp(g):
    """rdzv_ddp with each host on its own ckptfs of one RADOS pool: the
    PyTorch DDP example, 2 hosts x 2 ranks writing each version through two
    mounts; kill -9 of rank 2 (hostB) after step 25: one resume version on
    both hosts, final model and optimizer shards bitwise those of an
    uninterrupted run, and the same bytes through both mounts."""
    t_rdzv_ddp(g, rados=True)


def t_rdzv_etcd(g):
    for h in g.hosts:
        h.start()
    a, b = g.hosts
    # etcd is not running: a clear error at submit, nothing stored
    st, body = a.req("POST", "/api/v1/operations", g.spec(0, "etcd", "--steps", "5"))
    msg = body["error"]["message"] if isinstance(body, dict) else str(body)
    check(st == 503 and "cannot reach etcd at http://127.0.0.1:%d" % g.etcd.port in msg and
          "--rdzv etcd://HOST:PORT/JOB" in msg, "submit without etcd: %s %s" % (st, msg))
    ckpt = build_bin("tools/ckpt/ckpt")
    if ckpt:  # the same through the CLI's flags
        out = subprocess.run([ckpt, "run", "--nproc-per-node", "2", "--nnodes", "2",
                              "--node-rank", "0", "--rdzv", g.etcd.url("etcd"), "--", "true"],
                             env=dict(os.environ, CKPT_SOCKET=a.sock), capture_output=True,
                             text=True, timeout=60)
        check(out.returncode != 0 and "cannot reach etcd at http://127.0.0.1:%d" % g.etcd.port
              in out.stderr and "stopping or starting" not in out.stderr,
              "ckpt run without etcd: %s %s" % (out.returncode, out.stderr))
    st, body = a.req("GET", "/api/v1/operations")
    check(st == 200 and not body["operations"], "an operation was stored: %s" % body)
    g.etcd.start()
    ids = g.submit("etcd", "--steps", "150", "--step-ms", "30", "--ckpt-every", "10",
                   "--fault", "exit1@60:rank=3")
    # one node_rank per host
    st, body = a.req("POST", "/api/v1/operations", g.spec(1, "etcd", "--steps", "5"))
    check(st == 400 and "node 1 of the gang" in body["error"]["message"],
          "node_rank taken: %s %s" % (st, body))
    end = time.time() + 60
    while time.time() < end:
        o = a.op(ids[0])
        if o["status"] == "RUNNING" and all((r["step"] or 0) >= 20 for r in o["ranks"]):
            break
        time.sleep(0.05)
    # etcd lost mid-run: the ranks keep training; rank 3's fault at step 60
    # stops hostB's ranks, but the restart waits for etcd
    g.etcd.stop()
    b.wait_status(ids[1], ["RECOVERING"], 30)
    s0 = a.op(ids[0])["ranks"][0]["step"]
    time.sleep(1.5)
    o = a.op(ids[0])
    check(o["status"] == "RUNNING" and o["ranks"][0]["step"] > s0,
          "hostA's ranks did not keep training without etcd: %s" % o)
    check(b.op(ids[1])["status"] == "RECOVERING" and
          not [t for t in g.starts() if t["attempt"] == 2], "a restart without etcd")
    g.etcd.start()
    os_ = g.wait_all(ids, ["COMPLETED", "FAILED"], 90)
    check([o["status"] for o in os_] == ["COMPLETED"] * 2,
          "status %s" % [(o["status"], o["reason"]) for o in os_])
    att = check_together(g, ids, 2)
    # the newest version attempt 1 committed before rank 3's fault at step
    # 60: step-000050 unless its commit was still under way when rank 3 died
    # (seen on a loaded machine: step-000040, the right choice then), or
    # older still when the ranks of hostA lag behind rank 3 (they are not in
    # lockstep: in the sanitizer build at load 20 step-000020 was the newest
    # whole one). Either way no version newer than the one chosen may have
    # been known committed to a host's ckptd before that host selected.
    res = os.path.basename(att[2][0]["resume"])

    def step_of(name):
        return int(name.split("-")[1].split(".")[0])

    check(res.endswith(".a1") and 10 <= step_of(res) < 60, "resumed from %s" % att[2][0])
    for h, i in zip(g.hosts, ids):
        ev = h.events(i)
        first = min(k for k, e in enumerate(ev) if e["event"] == "checkpoint_selected")
        known = [os.path.basename(e["checkpoint"]) for e in ev[:first]
                 if e["event"] == "checkpoint_committed"]
        newer = [n for n in known if n.endswith(".a1") and step_of(n) > step_of(res)]
        check(not newer, "resumed from %s although %s was known committed before the "
              "selection" % (res, newer))


CASES = {"rdzv_fault": t_rdzv_fault, "rdzv_host_kill": t_rdzv_host_kill,
         "rdzv_timeout": t_rdzv_timeout, "rdzv_cancel": t_rdzv_cancel, "rdzv_ddp": t_rdzv_ddp,
         "rdzv_etcd": t_rdzv_etcd, "rdzv_rados_fault": t_rdzv_rados_fault,
         "rdzv_rados_host_kill": t_rdzv_rados_host_kill,
         "rdzv_rados_ddp": t_rdzv_rados_ddp}


def main(argv):
    if len(argv) != 3 or argv[2] not in CASES:
        print("usage: %s CKPTD_BIN CASE (%s)" % (os.path.basename(argv[0]), ", ".join(CASES)))
        return 2
    g = None
    try:
        g = Gang(argv[1], rados=argv[2].startswith("rdzv_rados_"))
        CASES[argv[2]](g)
        g.close()
        for h in g.hosts:
            check(not h.bad, "sanitizer findings in %s's ckptd:\n%s" % (h.tmp, h.bad))
            check(h.rc == 0, "%s's ckptd exited with status %s on SIGTERM" % (h.tmp, h.rc))
        print("ok:", argv[2])
        return 0
    except Skip as e:
        print("SKIP:", argv[2], e)
        return 77
    except Fail as e:
        print("FAIL:", argv[2], e)
        if g:
            for h in g.hosts:
                try:
                    with open(os.path.join(h.tmp, "ckptd.out")) as f:
                        print("---", h.tmp, "\n", f.read()[-4000:])
                except OSError:
                    pass
        return 1
    finally:
        if g:
            g.close()
            if os.environ.get("CKPTD_TEST_KEEP"):
                print("kept", g.tmp)
            else:
                shutil.rmtree(g.tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
