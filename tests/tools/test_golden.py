#!/usr/bin/env python3
"""test_golden.py CKPT - the ckpt CLI's human output, pinned down exactly.

A fake ckptd (fake_ckptd.py) serves canned API answers (routes.json, in the
shapes of docs/api.md) on a Unix socket; each case runs ckpt against it with
"now" fixed by CKPT_NOW and compares stdout with golden/NAME.txt. Then the
--json forms are parsed and checked to carry the same facts as the tables,
and the requests ckpt sent (submit body, Idempotency-Key, methods) are
checked in the fake's request log.

Regenerate the goldens after an intended change with UPDATE_GOLDEN=1 and read
the diff before committing it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OP1 = "op_training_20241213_143022_abc123"
OP2 = "op_training_20241210_091500_def456"
OP3 = "op_training_20241215_143000_0a1b2c"
OP4 = "op_training_20241214_080000_ffee01"
NOW = "2024-12-15T15:00:00Z"

# (golden name, args, expected exit code)
CASES = [
    ("ops_list_cancelled", ["ops", "list", "--status", "cancelled"], 0),
    ("ops_list_resumable", ["ops", "list", "--resumable"], 0),
    ("ops_list_all", ["ops", "list"], 0),
    ("ops_list_empty", ["ops", "list", "--status", "FAILED"], 0),
    ("ops_status_running", ["ops", "status", OP3], 0),
    ("ops_status_cancelled", ["ops", "status", OP1], 0),
    ("ops_events", ["ops", "events", OP3], 0),
    ("ops_logs", ["ops", "logs", OP3], 0),
    ("ops_resume", ["ops", "resume", OP1], 0),
    ("ops_cancel", ["ops", "cancel", OP3], 0),
    ("checkpoints_show", ["checkpoints", "show", OP1], 0),
    ("checkpoints_stats", ["checkpoints", "stats"], 0),
    ("checkpoints_cleanup", ["checkpoints", "cleanup", "--max-age-days", "7"], 0),
    ("checkpoints_delete", ["checkpoints", "delete", OP2, "--force"], 0),
    ("daemon_status", ["daemon", "status"], 0),
]

failures = []


def run_pty(argv, env, answer):
    """Run argv on a pseudo-terminal, type `answer` once it asks; return
    (output, exit code)."""
    import pty
    import select
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    out, sent = b"", False
    while True:
        r, _, _ = select.select([fd], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not sent and b"[y/N]" in out:
            os.write(fd, answer.encode())
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def main():
    ckpt = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="ckpt-golden-")
    srv = None
    try:
        sock = os.path.join(tmp, "ckptd.sock")
        log = os.path.join(tmp, "requests.jsonl")
        # The checkpoint's own trainer_state.json, read by `checkpoints show`.
        vdir = os.path.join(tmp, "mnt", OP1, "step-001450")
        os.makedirs(vdir)
        with open(os.path.join(vdir, "trainer_state.json"), "w") as f:
            json.dump({"format_version": 1, "step": 1450, "epoch": 29, "best_val_loss": 0.29,
                       "last_val_loss": 0.31, "lr": 0.001, "loss": 0.28,
                       "reason": "cancel"}, f)
        srv = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_ckptd.py"), sock,
                                os.path.join(HERE, "routes.json"), log, "TMP=" + tmp],
                               stdout=subprocess.PIPE, text=True)
        if srv.stdout.readline().strip() != "ready":
            print("fake ckptd did not start")
            return 1
        env = dict(os.environ, CKPT_SOCKET=sock, CKPT_NOW=NOW, CKPT_STATE_DIR=tmp + "/state")

        def run(args, stdin=None):
            return subprocess.run([ckpt] + args, env=env, capture_output=True, text=True,
                                  stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  timeout=60)

        update = os.environ.get("UPDATE_GOLDEN") == "1"
        for name, args, want_rc in CASES:
            r = run(args)
            got = r.stdout.replace(tmp, "@TMP@")
            path = os.path.join(HERE, "golden", name + ".txt")
            if r.returncode != want_rc:
                fail("%s: exit %d, want %d; stderr: %s" % (name, r.returncode, want_rc, r.stderr))
            if update:
                with open(path, "w") as f:
                    f.write(got)
                continue
            with open(path) as f:
                want = f.read()
            if got != want:
                fail("%s: output differs from golden/%s.txt:\n--- want\n%s--- got\n%s" %
                     (name, name, want, got))

        # --json carries the same facts as the tables.
        r = run(["ops", "list", "--resumable", "--json"])
        j = json.loads(r.stdout)
        table = run(["ops", "list", "--resumable"]).stdout
        ids = [o["id"] for o in j["operations"]]
        if ids != [OP1, OP2]:
            fail("ops list --json ids %s" % ids)
        for o in j["operations"]:
            row = [l for l in table.splitlines() if l.startswith(o["id"])]
            if len(row) != 1 or o["status"] not in row[0] or \
                    ("epoch %d" % o["checkpoint"]["epoch"]) not in row[0] or \
                    ("%d%%" % o["progress"]["percent"]) not in row[0]:
                fail("table row for %s does not match its JSON: %s" % (o["id"], row))
        if "Total: %d operations (%d resumable)" % (j["total"], j["resumable"]) not in table:
            fail("total line does not match the JSON")

        j = json.loads(run(["checkpoints", "show", OP1, "--json"]).stdout)
        text = run(["checkpoints", "show", OP1]).stdout
        latest = j["latest"]
        for fact in [j["operation"], j["checkpoint_type"], latest["version"], latest["path"],
                     "Epoch:         %d / 100" % latest["epoch"], "Val Loss:      0.31"]:
            if fact not in text:
                fail("checkpoints show lacks %r from its JSON" % fact)

        j = json.loads(run(["checkpoints", "stats", "--json"]).stdout)
        text = run(["checkpoints", "stats"]).stdout
        if str(j["total_checkpoints"]) not in text or str(j["total_size_bytes"]) not in text:
            fail("checkpoints stats text and JSON disagree")

        j = json.loads(run(["ops", "status", OP3, "--json"]).stdout)
        if j["status"] != "RUNNING" or j["attempt"] != 2:
            fail("ops status --json: %s" % j)
        j = json.loads(run(["ops", "events", OP3, "--json"]).stdout)
        if [e["event"] for e in j["events"]][:2] != ["submitted", "started"]:
            fail("ops events --json: %s" % j)
        j = json.loads(run(["ops", "logs", OP3, "--json"]).stdout)
        if j["next_offset"] != 97 or "attempt 2" not in j["text"]:
            fail("ops logs --json: %s" % j)
        j = json.loads(run(["daemon", "status", "--json"]).stdout)
        if j["running"] is not True or j["pid"] != 1234:
            fail("daemon status --json: %s" % j)

        # submit: flags and --set become the JSON body; the key goes in a header.
        open(log, "w").close()
        r = run(["submit", "--project", "p-demo", "--model", "tiny", "--dataset", "/data/c.txt",
                 "--gpus", "1", "--batch-size", "32", "--epochs", "5", "--lr", "3e-5",
                 "--set", "recovery.max_attempts=5", "--set", "name=demo run",
                 "--idempotency-key", "k-123"])
        if r.returncode != 0 or r.stdout.strip() != "op_training_20241215_150000_c0ffee":
            fail("submit printed %r (exit %d): %s" % (r.stdout, r.returncode, r.stderr))
        reqs = [json.loads(l) for l in open(log)]
        post = [q for q in reqs if q["method"] == "POST" and q["path"] == "/api/v1/operations"]
        if len(post) != 1:
            fail("submit sent %d POSTs" % len(post))
        else:
            body = json.loads(post[0]["body"])
            want = {"project_id": "p-demo", "model": "tiny", "dataset": "/data/c.txt",
                    "resources": {"gpus": 1},
                    "hyperparams": {"batch_size": 32, "epochs": 5, "lr": 3e-5},
                    "recovery": {"max_attempts": 5}, "name": "demo run"}
            if body != want:
                fail("submit body %s, want %s" % (body, want))
            if post[0]["headers"].get("idempotency-key") != "k-123":
                fail("no Idempotency-Key header: %s" % post[0]["headers"])

        # submit from a YAML file with --set overriding it.
        job = os.path.join(tmp, "job.yaml")
        with open(job, "w") as f:
            f.write("project_id: p-demo\nname: demo\ncommand: [ckpt-train, --max-steps, '40']\n"
                    "model: tiny\nhyperparams:\n  lr: 3e-5\n  early_stopping: {patience: 5}\n"
                    "recovery:\n  enabled: true\n  on_failure: [echo, failed]\n")
        open(log, "w").close()
        r = run(["submit", job, "--set", "hyperparams.lr=1e-4", "--json"])
        body = json.loads([json.loads(l) for l in open(log)][-1]["body"])
        if r.returncode != 0 or json.loads(r.stdout)["id"] != "op_training_20241215_150000_c0ffee":
            fail("submit JOB --json: %r %s" % (r.stdout, r.stderr))
        if body != {"project_id": "p-demo", "name": "demo",
                    "command": ["ckpt-train", "--max-steps", "40"], "model": "tiny",
                    "hyperparams": {"lr": 1e-4, "early_stopping": {"patience": 5}},
                    "recovery": {"enabled": True, "on_failure": ["echo", "failed"]}}:
            fail("submit JOB body: %s" % body)

        # API errors: message from ckptd, exit 1.
        r = run(["ops", "resume", OP4])
        if r.returncode != 1 or "only CANCELLED or FAILED" not in r.stderr or "409" not in r.stderr:
            fail("resume of a COMPLETED op: exit %d, %s" % (r.returncode, r.stderr))
        r = run(["ops", "status", "op_training_20241201_000000_000000"])
        if r.returncode != 1 or "no operation" not in r.stderr or "ckpt ops list" not in r.stderr:
            fail("status of an unknown op: exit %d, %s" % (r.returncode, r.stderr))
        r = run(["checkpoints", "delete", OP3, "--force"])
        if r.returncode != 1 or "cancel it first" not in r.stderr:
            fail("delete of a running op's checkpoints: exit %d, %s" % (r.returncode, r.stderr))
        r = run(["checkpoints", "show", OP3])
        if r.returncode != 1 or "No checkpoint found" not in r.stdout:
            fail("show without checkpoints: exit %d, %s %s" % (r.returncode, r.stdout, r.stderr))
        # delete without --force and without a terminal: refuses, sends nothing.
        open(log, "w").close()
        r = run(["checkpoints", "delete", OP2])
        if r.returncode != 2 or "--force" not in r.stderr or os.path.getsize(log):
            fail("delete without --force on a pipe: exit %d, %s" % (r.returncode, r.stderr))

        # delete on a terminal asks first: "n" keeps, "y" deletes.
        for answer, want_rc, want_deletes in (("n", 1, 0), ("y", 0, 1)):
            open(log, "w").close()
            out, rc = run_pty([ckpt, "checkpoints", "delete", OP2], env, answer + "\n")
            deletes = [l for l in open(log) if '"DELETE"' in l]
            if rc != want_rc or len(deletes) != want_deletes or "[y/N]" not in out:
                fail("delete on a TTY answered %r: exit %d, %d DELETEs, output %r" %
                     (answer, rc, len(deletes), out))

        # daemon stop: asks the API; the fake then exits like ckptd.
        r = run(["daemon", "stop"])
        if r.returncode != 0 or "stopped" not in r.stdout:
            fail("daemon stop: exit %d, %s %s" % (r.returncode, r.stdout, r.stderr))
        srv.wait(timeout=10)
        r = run(["ops", "list"])
        if r.returncode != 1 or "no ckptd answers" not in r.stderr:
            fail("ops list with ckptd down: exit %d, %s" % (r.returncode, r.stderr))
    finally:
        if srv and srv.poll() is None:
            srv.kill()
            srv.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("golden: %d cases and the JSON/request checks passed" % len(CASES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
