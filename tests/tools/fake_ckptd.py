#!/usr/bin/env python3
"""fake_ckptd.py - a stand-in for ckptd's HTTP API (docs/api.md) on a Unix
socket, serving canned answers so that the ckpt CLI's output can be tested
exactly without a running supervisor. stdlib only.

usage: fake_ckptd.py SOCKET ROUTES.json REQUEST_LOG [SUBST_KEY=VALUE ...]

ROUTES.json maps "METHOD PATH?QUERY" (or "METHOD PATH" to match any query) to
{"status": N, "body": JSON or "text": STR, "headers": {...}}. Every request
is appended to REQUEST_LOG as one JSON line (method, path, headers, body) so
tests can check what the CLI sent. "@KEY@" in answers is replaced by VALUE.
POST /api/v1/daemon/stop answers 202 and then exits, like ckptd does.
"""
import http.server
import json
import os
import socketserver
import sys
import threading


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    sock, routes_file, log_file = sys.argv[1:4]
    subst = dict(a.split("=", 1) for a in sys.argv[4:])
    with open(routes_file) as f:
        text = f.read()
    for k, v in subst.items():
        text = text.replace("@%s@" % k, v)
    routes = json.loads(text)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet; the request log is the record
            pass

        def address_string(self):
            return "unix"

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode() if n else ""
            with lock, open(log_file, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": body}) + "\n")
            key = "%s %s" % (self.command, self.path)
            r = routes.get(key) or routes.get(key.split("?")[0])
            if r is None:
                r = {"status": 404, "body": {"error": {"code": "not_found",
                                                        "message": "no such path: " + self.path}}}
            if "text" in r:
                data = r["text"].encode()
                ctype = "text/plain"
            else:
                data = json.dumps(r.get("body", {})).encode()
                ctype = "application/json; charset=utf-8"
            self.send_response(r.get("status", 200))
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in r.get("headers", {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            if key == "POST /api/v1/daemon/stop":
                threading.Thread(target=srv.shutdown).start()

        do_GET = do_POST = do_DELETE = do_PUT = handle_any

    if os.path.exists(sock):
        os.unlink(sock)
    srv = Server(sock, Handler)
    # Tell the parent we are listening (it waits for this line).
    print("ready", flush=True)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
        try:
            os.unlink(sock)
        except OSError:
            pass


if __name__ == "__main__":
    main()
