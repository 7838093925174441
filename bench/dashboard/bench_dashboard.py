#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_dashboard.py CKPTD_BIN [--steps N] [--runs R]

The dashboard's cost, with a real ckptd and headless Chromium (Debian's, via
chromedriver; tests/dashboard/webdriver.py):

 1. page weight: what GET / sends with Accept-Encoding: gzip (the whole page:
    HTML, CSS, JS, uPlot inlined), and uncompressed. Goal: <= 100 KB gzipped.
 2. time to first chart with N (default 100,000) reported steps: from the
    page's first script line to uPlot's first draw of all N points, which
    includes fetching and parsing /metrics?resolution=step. Goal: <= 1 s.
    Side by side, in the same browser and run: the direct path, a bare
    fetch() + JSON parse of the same answer, and the ratio between them.
 3. ckptd's side: the time and size of GET .../metrics?resolution=step for
    the N steps over its Unix socket.

Median / min / max over R page loads (default 5), each a fresh navigation.
"""
import argparse
import gzip
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "supervisor"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "dashboard"))
from harness import Ckptd  # noqa: E402
from webdriver import Chrome, Unavailable  # noqa: E402


def stats(xs):
    return "median %.0f ms, min %.0f, max %.0f" % (statistics.median(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckptd")
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    d = Ckptd(a.ckptd)
    b = None
    try:
        d.start()
        st, page, r = d.req("GET", "/", headers={"Accept-Encoding": "gzip"}, raw=True)
        raw = gzip.decompress(page) if r.getheader("Content-Encoding") == "gzip" else page
        print("page weight: %.1f KB gzipped (%d bytes), %.1f KB uncompressed; goal <= 100 KB" %
              (len(page) / 1000, len(page), len(raw) / 1000))
        if b"built without uPlot" in raw:
            print("warning: this ckptd has no uPlot (run tools/install-deps, reconfigure)")

        t0 = time.time()
        opid = d.submit({"name": "bench", "command": [
            sys.executable, os.path.join(HERE, "blast_trainer.py"), str(a.steps)]})
        d.wait_status(opid, ["COMPLETED", "FAILED"], timeout=600)
        print("ckptd took %d steps in %.1f s (%.0f steps/s)" %
              (a.steps, time.time() - t0, a.steps / (time.time() - t0)))
        path = "/api/v1/operations/%s/metrics?resolution=step" % opid
        api = []
        for _ in range(a.runs):
            t = time.time()
            st, body, _ = d.req("GET", path, raw=True)
            api.append((time.time() - t) * 1000)
        print("ckptd: GET metrics?resolution=step, %d points, %.1f MB: %s" %
              (a.steps, len(body) / 1e6, stats(api)))

        try:
            b = Chrome(tmp=d.tmp)
        except Unavailable as e:
            print("no browser: %s" % e)
            return 77
        st, info = d.req("POST", "/api/v1/dashboard")
        url = info["url"] + "#op=" + opid
        first, direct = [], []
        for _ in range(a.runs):
            b.get("about:blank")
            b.get(url)
            ms = b.wait("var s = window.ckptDash; return s && s.firstChartMs !== null && "
                        "s.drawnSteps() >= %d ? s.firstChartMs : 0" % a.steps, timeout=120,
                        what="the first chart")
            first.append(ms)
            # the direct path: the same request and parse, nothing drawn
            direct.append(b.js(
                "var x = new XMLHttpRequest(), t = performance.now();"
                "x.open('GET', %r, false);"
                "x.setRequestHeader('Authorization', 'Bearer %s'); x.send();"
                "JSON.parse(x.responseText); return performance.now() - t;" %
                (path, info["token"])))
        print("time to first chart, %d points: %s; goal <= 1000 ms" % (a.steps, stats(first)))
        print("direct path (fetch + JSON.parse of the same answer): %s" % stats(direct))
        print("ratio first chart / direct: %.2f" %
              (statistics.median(first) / statistics.median(direct)))
        print("load: %s" % open("/proc/loadavg").read().strip())
        return 0
    finally:
        if b:
            b.quit()
        d.cleanup()


if __name__ == "__main__":
    sys.exit(main())
