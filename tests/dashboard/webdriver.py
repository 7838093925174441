# SPDX-License-Identifier: MIT
"""webdriver.py - headless Chromium (Debian's chromium) driven through
Debian's chromedriver over the W3C WebDriver protocol, with the Python
standard library only. Used by test_dashboard.py and bench/dashboard/.

chromedriver listens on a loopback port chosen at run time; Chromium gets a
new empty profile and the flags it needs to run as root in a container
without reaching any network of its own."""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = os.environ.get("CKPT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CKPT_CHROMEDRIVER", shutil.which("chromedriver") or
                              "/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]


class Unavailable(Exception):
    """Chromium or chromedriver is not installed: the caller skips."""


class WebDriverError(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Chrome:
    def __init__(self, tmp=None):
        for b in (CHROMIUM, CHROMEDRIVER):
            if not os.access(b, os.X_OK):
                raise Unavailable("%s is not installed (Debian chromium, chromium-driver)" % b)
        self.tmp = tmp or tempfile.mkdtemp(prefix="ckpt-chrome-")
        self.profile = tempfile.mkdtemp(prefix="profile-", dir=self.tmp)
        self.proc = None
        self.sid = None
        last = None
        for _ in range(3):  # the port can be taken between bind and listen
            self.port = free_port()
            self.log = open(os.path.join(self.tmp, "chromedriver.log"), "a")
            self.proc = subprocess.Popen([CHROMEDRIVER, "--port=%d" % self.port],
                                         stdout=self.log, stderr=subprocess.STDOUT)
            try:
                self._wait_ready()
                break
            except WebDriverError as e:
                last = e
                self._kill()
        else:
            raise WebDriverError("chromedriver did not start: %s" % last)
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": CHROMIUM, "args": FLAGS + ["--user-data-dir=" + self.profile]}}}}
        self.sid = self._call("POST", "/session", caps)["sessionId"]

    def _wait_ready(self):
        end = time.time() + 20
        while time.time() < end:
            if self.proc.poll() is not None:
                raise WebDriverError("chromedriver exited with %s" % self.proc.returncode)
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except (OSError, WebDriverError):
                pass
            time.sleep(0.1)
        raise WebDriverError("chromedriver did not answer /status within 20 s")

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                out = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise WebDriverError("%s %s: HTTP %d %s" % (method, path, e.code,
                                                        e.read()[:2000].decode(errors="replace")))
        return out.get("value", out) if isinstance(out, dict) else out

    def _s(self, path):
        return "/session/%s%s" % (self.sid, path)

    def get(self, url):
        self._call("POST", self._s("/url"), {"url": url})

    def js(self, script, *args):
        """Run `script` (a function body; `return` gives the value) in the page."""
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def wait(self, script, timeout=30, what="the page", every=0.1):
        """Poll `script` until it returns something truthy; return that."""
        end = time.time() + timeout
        v = None
        while time.time() < end:
            v = self.js(script)
            if v:
                return v
            time.sleep(every)
        raise WebDriverError("%s: still %r after %d s" % (what, v, timeout))

    def screenshot(self, path):
        png = base64.b64decode(self._call("GET", self._s("/screenshot")))
        with open(path, "wb") as f:
            f.write(png)
        return path

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def quit(self):
        try:
            if self.sid and self.proc:
                self._call("DELETE", self._s(""), timeout=20)
        except (OSError, WebDriverError):
            pass
        self.sid = None
        self._kill()
        shutil.rmtree(self.profile, ignore_errors=True)
