#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_dashboard.py - the dashboard in a real browser, on a real run.

A real ckptd (on a real ckptfs mount when FUSE is there) runs the real
ckpt-train with a NaN injected at step 250 and checkpoints every 100 steps;
`ckpt dashboard` gives the URL; headless Chromium (Debian's, through
chromedriver) opens it. With the trainer's process group stopped (SIGSTOP)
the page must hold exactly the points the API has and its detection and
restart marks must be at the steps of the detected event (250) and of the
version the recovery resumed from (200); after SIGCONT new points must show
up on the page while it watches. At the end the page holds every point of
the finished run, a screenshot goes to BUILD/dashboard.png, the token is
required over TCP, the Unix socket serves the page, `promtool check
metrics` accepts /metrics, and `ckpt ops metrics` prints every reported step
(and a sparkline in a tmux terminal).

  test_dashboard.py CKPTD CKPT CKPT_TRAIN [CKPTFS]
Exit 0 pass, 1 fail, 77 skip (no chromium/chromedriver)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "supervisor"))
sys.path.insert(0, HERE)
from harness import Ckptd, Fail, Skip, check  # noqa: E402
from webdriver import Chrome, Unavailable, WebDriverError  # noqa: E402

NAN_AT, EVERY, RESUME_AT, STEPS = 250, 100, 200, 2000
STATE = "return window.ckptDash ? JSON.parse(JSON.stringify(window.ckptDash)) : null"


def api_points(d, opid):
    st, m = d.req("GET", "/api/v1/operations/%s/metrics?resolution=step" % opid)
    check(st == 200, "metrics answered %s %s" % (st, m))
    return m


def effective(m):
    """What the chart draws: per step the newest attempt's values."""
    loss = {}
    for s, l in zip(m["step"], m["loss"]):
        if l is not None or s not in loss:
            loss[s] = l if l is not None else loss.get(s)
    return len(set(m["step"])), sum(1 for v in loss.values() if v is not None)


def step_of(path):
    m = re.search(r"(\d+)$", os.path.basename(path or ""))
    return int(m.group(1)) if m else None


def page_matches_api(b, d, opid, what):
    """Wait until the page has caught up with the API, then compare."""
    m = api_points(d, opid)
    steps, lossp = effective(m)
    try:
        s = b.wait("var s = window.ckptDash; return s && s.points >= %d ? "
                   "JSON.parse(JSON.stringify(s)) : null" % m["count"],
                   timeout=30, what="%s: the page reaching %d points" % (what, m["count"]))
    except WebDriverError as e:
        raise Fail("%s; page state %s" % (e, b.js(STATE)))
    m = api_points(d, opid)  # nothing new arrives while the trainer is stopped or done
    steps, lossp = effective(m)
    check(s["points"] == m["count"], "%s: the page has %d points, the API %d" %
          (what, s["points"], m["count"]))
    check(s["chartSteps"] == steps and s["lossPoints"] == lossp,
          "%s: the chart has %d steps / %d loss points, the API's data %d / %d" %
          (what, s["chartSteps"], s["lossPoints"], steps, lossp))
    drawn = b.js("return window.ckptDash.drawnSteps()")
    check(drawn == steps, "%s: uPlot holds %s x values, want %d" % (what, drawn, steps))
    return s, m


def check_marks(b, d, opid):
    evs = d.events(opid)
    ncom = sum(1 for e in evs if e["event"] == "checkpoint_committed")
    try:  # the page reads events in its next poll
        s = b.wait("var s = window.ckptDash; return s.marks.filter(function (m) { return "
                   "m.kind === 'ck'; }).length >= %d && s.marks.some(function (m) { return "
                   "m.kind === 'rs'; }) ? JSON.parse(JSON.stringify(s)) : null" % ncom,
                   timeout=30, what="the page's marks")
    except WebDriverError as e:
        raise Fail("%s; page marks %s" % (e, b.js(STATE)["marks"]))
    det = [e for e in evs if e["event"] == "detected"]
    sel = [e for e in evs if e["event"] == "checkpoint_selected"]
    cc = [e for e in evs if e["event"] == "client_created"]
    check(len(det) == 1 and det[0]["step"] == NAN_AT and "nan" in det[0]["reason"],
          "detected events %s" % det)
    check(len(sel) == 1 and step_of(sel[0]["checkpoint"]) == RESUME_AT,
          "checkpoint_selected %s (want the step-%d version)" % (sel, RESUME_AT))
    check(len(cc) == 1, "client_created events %s" % cc)
    marks = s["marks"]
    dm = [m["step"] for m in marks if m["kind"] == "det"]
    rm = [m["step"] for m in marks if m["kind"] == "rs"]
    cm = sorted(m["step"] for m in marks if m["kind"] == "ck")
    check(dm == [NAN_AT], "detection marks at %s, want [%d]" % (dm, NAN_AT))
    check(rm == [RESUME_AT], "restart marks at %s, want [%d]" % (rm, RESUME_AT))
    com = [e for e in evs if e["event"] == "checkpoint_committed"]
    for e in com:  # the version's own step, not the step when the async save ended
        check(step_of(e["checkpoint"]) in (None, e["step"]), "checkpoint_committed %s" % e)
    want = sorted(e["step"] for e in com if e["step"] is not None)
    check(cm == want and len(cm) >= 2, "checkpoint marks at %s, the committed versions at %s" %
          (cm, want))


def promtool(d):
    if not shutil.which("promtool"):
        raise Fail("promtool is not installed (Debian prometheus, tools/deps.txt)")
    st, text = d.req("GET", "/metrics")
    check(st == 200, "/metrics answered %s" % st)
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    check(p.returncode == 0, "promtool check metrics:\n%s%s" % (p.stdout, p.stderr))
    for fam in ("ckptd_trainer_val_loss", "ckptd_trainer_steps_per_second",
                "ckptd_checkpoint_age_seconds", "ckptd_checkpoint_commit_seconds",
                "ckptd_store_stored_bytes", "ckptd_store_logical_bytes"):
        check("# HELP %s " % fam in text and "# TYPE %s " % fam in text,
              "/metrics lacks HELP/TYPE of %s" % fam)
    return text


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cli_metrics(ckpt, d, opid, m):
    out = subprocess.run([ckpt, "--socket", d.sock, "ops", "metrics", opid], capture_output=True,
                         text=True)
    check(out.returncode == 0, "ckpt ops metrics exited %d: %s" % (out.returncode, out.stderr))
    rows = [l.split() for l in out.stdout.splitlines()[1:] if l.strip()]
    got = [(int(r[1]), int(r[0])) for r in rows]
    check(got == list(zip(m["attempt"], m["step"])),
          "ckpt ops metrics printed %d rows, the API has %d points" % (len(got), m["count"]))
    nan_rows = [r for r in rows if r[0] == str(NAN_AT) and r[1] == "1"]
    check(nan_rows and nan_rows[0][3] == "nan", "step %d of attempt 1: %s" % (NAN_AT, nan_rows))
    check("\u2581" not in out.stdout, "a sparkline although stdout is not a terminal")
    if not shutil.which("tmux"):
        raise Fail("tmux is not installed (tools/deps.txt)")
    sess = "ckptdash%d" % os.getpid()
    sock = os.path.join(d.tmp, "tmux.sock")
    cmd = ("%s --socket %s ops metrics %s | tail -1; %s --socket %s ops metrics %s > /dev/tty; "
           "%s --socket %s ops status %s" % (ckpt, d.sock, opid, ckpt, d.sock, opid, ckpt,
                                             d.sock, opid))
    tm = ["tmux", "-S", sock]
    subprocess.run(tm + ["new-session", "-d", "-s", sess, "-x", "160", "-y", "40",
                         "bash -c '%s; sleep 30'" % cmd], check=True)
    try:
        screen = ""
        for _ in range(100):
            screen = subprocess.run(tm + ["capture-pane", "-p", "-t", sess], capture_output=True,
                                    text=True).stdout
            if "Loss curve:" in screen:
                break
            time.sleep(0.1)
        line = [l for l in screen.splitlines() if l.startswith("loss ")]
        check(line and re.search("[\u2581-\u2588]{10,}", line[0]) and
              "(%d steps)" % len(set(m["step"])) in line[0],
              "no sparkline of %d steps on the terminal:\n%s" % (len(set(m["step"])), screen))
        print("tmux:", line[0])
        line = [l for l in screen.splitlines() if l.startswith("Loss curve:")]
        check(line and re.search("[\u2581-\u2588]{10,}", line[0]),
              "ckpt ops status shows no loss sparkline on the terminal:\n%s" % screen)
    finally:
        subprocess.run(tm + ["kill-server"], capture_output=True)


def run(d, ckpt, train, ckptfs):
    fuse = ckptfs and os.path.exists("/dev/fuse")
    if fuse:
        d.stop()
        store, mnt = os.path.join(d.tmp, "store"), os.path.join(d.tmp, "mnt")
        with open(d.cfg, "w") as f:
            f.write("store: %s\nmount: %s\nckptfs: %s\n" % (store, mnt, ckptfs))
        d.mnt = mnt
        d.start()
    print("store:", "a ckptfs mount" if fuse else "a plain directory (no FUSE here)")
    try:
        b = Chrome(tmp=d.tmp)
    except Unavailable as e:
        raise Skip(str(e))
    d.chrome = b
    out = subprocess.run([ckpt, "--socket", d.sock, "dashboard"], capture_output=True, text=True)
    check(out.returncode == 0, "ckpt dashboard exited %d: %s" % (out.returncode, out.stderr))
    url = out.stdout.strip().splitlines()[0]
    check(re.match(r"^http://127\.0\.0\.1:\d+/\?token=[0-9a-f]{48}$", url), "url %r" % url)
    print("dashboard:", url.split("?")[0])

    # no page, no API without the token over TCP; the Unix socket serves the page
    base = url.split("?")[0]
    for u in (base, base + "index.html", base + "api/v1/operations", base + "?token=wrong"):
        st, body = http_status(u)
        check(st == 401 and b"<html" not in body, "%s answered %s without the token" % (u, st))
    st, body, r = d.req("GET", "/", raw=True)
    check(st == 200 and b"ckptDash" in body and r.getheader("Content-Type").startswith(
        "text/html"), "the Unix socket's / answered %s %s" % (st, body[:200]))
    check(b"uPlot" in body and b"built without uPlot" not in body,
          "ckptd was built without uPlot (web/node_modules): run tools/install-deps and "
          "configure again")

    opid = d.submit({"name": "dash", "model": "tiny", "command": [
        train, "--model", "tiny", "--max-steps", str(STEPS), "--checkpoint-every-steps",
        str(EVERY), "--device", "cpu", "--threads", "1", "--inject",
        "nan@%d:attempt=1" % NAN_AT],
        "recovery": {"backoff_ms": 50, "max_backoff_ms": 1000, "grace_s": 5,
                     "poll_interval_ms": 200}})
    b.get(url + "#op=" + opid)
    d.wait_event(opid, "client_created", timeout=60)
    end = time.time() + 60
    while True:
        m = api_points(d, opid)
        if any(a == 2 and s > RESUME_AT + 5 for a, s in zip(m["attempt"], m["step"])):
            break
        check(time.time() < end, "attempt 2 reports no steps")
        time.sleep(0.05)
    o = d.op(opid)
    check(o["status"] == "RUNNING" and o["pid"], "the run is already %s; make STEPS larger" %
          o["status"])
    pgid = o["pid"]
    os.killpg(pgid, signal.SIGSTOP)
    try:
        time.sleep(1.5)  # what was reported before the stop reaches the db (1 s batches)
        s, m = page_matches_api(b, d, opid, "stopped trainer")
        check_marks(b, d, opid)
        promtool(d)
        before = s["points"]
        print("page holds %d points (%d steps) with the trainer stopped; marks %s" %
              (s["points"], s["chartSteps"],
               [(x["kind"], x["step"]) for x in s["marks"] if x["kind"] != "ck"]))
    finally:
        os.killpg(pgid, signal.SIGCONT)
    try:
        s = b.wait("var s = window.ckptDash; return s.points > %d ? s.points : 0" % before,
                   timeout=60, what="a new point on the page after SIGCONT")
    except WebDriverError as e:
        raise Fail(str(e))
    print("new points appeared while watching: %d -> %d" % (before, s))

    o = d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=120)
    check(o["status"] == "COMPLETED", "status %s %s" % (o["status"], o["reason"]))
    s, m = page_matches_api(b, d, opid, "finished run")
    check(m["step"][-1] == STEPS and s["chartSteps"] == STEPS,
          "the finished run's chart: %d steps, last %s" % (s["chartSteps"], m["step"][-1]))
    check_marks(b, d, opid)
    b.wait("return document.querySelectorAll('#ckpts tbody tr').length > 0 && "
           "document.querySelectorAll('#events tbody tr').length > 0 && "
           "/dedup/.test(document.getElementById('store').textContent)",
           what="the checkpoints, events and store panels")
    st, ck = d.req("GET", "/api/v1/checkpoints/" + opid)
    latest = ck["latest"]["version"]
    try:  # the page re-reads the checkpoints at most every 5 s
        b.wait("var r = Array.from(document.querySelectorAll('#ckpts tbody tr')).filter("
               "function (tr) { return /latest/.test(tr.textContent); }); "
               "return r.length === 1 && r[0].cells[0].textContent === '%s'" % latest,
               timeout=30, what="the 'latest' badge on %s" % latest)
    except WebDriverError as e:
        raise Fail(str(e))
    badges = b.js("return Array.from(document.querySelectorAll('#ckpts .badge'))"
                  ".map(function (e) { return e.textContent; })")
    if fuse:
        check("best" in badges, "no 'best' badge on a ckptfs mount: %s" % badges)
    shot = os.path.join(os.environ.get("CKPTFS_BUILD_ROOT", d.tmp), "dashboard.png")
    b.screenshot(shot)
    print("screenshot:", shot)
    promtool(d)
    cli_metrics(ckpt, d, opid, m)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    ckptd, ckpt, train = sys.argv[1:4]
    ckptfs = sys.argv[4] if len(sys.argv) > 4 else None
    d = Ckptd(ckptd)
    d.chrome = None
    try:
        d.start()
        run(d, ckpt, train, ckptfs)
        rc = d.stop()
        check(rc == 0, "ckptd exited with status %s on SIGTERM" % rc)
        bad = d.sanitizer_findings()
        check(not bad, "sanitizer findings in ckptd:\n%s" % bad)
        print("ok: dashboard")
        return 0
    except Skip as e:
        print("SKIP:", e)
        return 77
    except (Fail, WebDriverError) as e:
        print("FAIL:", e)
        try:
            with open(os.path.join(d.tmp, "ckptd.out")) as f:
                print(f.read()[-3000:])
        except OSError:
            pass
        return 1
    finally:
        if d.chrome:
            d.chrome.quit()
        d.cleanup()


if __name__ == "__main__":
    sys.exit(main())
