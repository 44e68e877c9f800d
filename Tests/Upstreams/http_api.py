"""A small HTTP API for the `http` backend's tests (stdlib only).

Prints its port on stdout once it listens on 127.0.0.1. Routes:
  /echo/...            the request as JSON: method, path, query, args, headers, body, json
  /users/<id>          {"id": ..., "name": ...}
  /text                text/plain
  /status/<code>       that status with a short body
  /flaky/<key>?fail=N&status=S   S for the first N requests of <key>, then 200 {"attempts": n}
  /slow?ms=N           answers after N ms
  /big?bytes=N[&chunked=1]       N bytes, with a Content-Length or chunked
  /auth/header         needs X-Api-Key: <--api-key>
  /auth/bearer         needs Authorization: Bearer <--bearer>
  /auth/basic          needs Basic <--basic user:pass>
  /auth/oauth          needs a Bearer token issued by /oauth/token (still valid)
  /oauth/token         client credentials grant for <--client id:secret>, tokens live <--oauth-ttl> s
  /oauth/revoke        POST: every issued token becomes invalid
  /stats               {"counts": {route key: requests}, "tokens_issued": n, "last_token_form": {...}}
"""
import argparse
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
COUNTS = {}
TOKENS = set()
STATE = {"issued": 0, "last_form": None}


def count(key):
    with LOCK:
        COUNTS[key] = COUNTS.get(key, 0) + 1
        return COUNTS[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    opts = None

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json", extra=None):
        data = body if isinstance(body, bytes) else (json.dumps(body) if content_type == "application/json" else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        url = urlsplit(self.path)
        path, args = url.path, parse_qs(url.query, keep_blank_values=True)
        raw = self.body()
        o = self.opts
        if path.startswith("/echo"):
            count("echo")
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            return self.send(200, {
                "method": self.command, "path": path, "query": url.query, "args": args,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": raw.decode("utf-8", "replace"), "json": parsed})
        if path.startswith("/users/"):
            uid = path[len("/users/"):]
            return self.send(200, {"id": uid, "name": "user-" + uid, "tags": ["a", "b"]})
        if path == "/text":
            return self.send(200, "plain hello", "text/plain")
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return self.send(code, {"error": "status %d body" % code, "echo": self.headers.get("Authorization", "")})
        if path.startswith("/flaky/"):
            key = "flaky:" + path[len("/flaky/"):]
            n = count(key)
            fail = int(args.get("fail", ["0"])[0])
            if n <= fail:
                status = int(args.get("status", ["503"])[0])
                if status == 0:
                    # Drop the connection without an answer.
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                return self.send(status, {"error": "try again"})
            return self.send(200, {"attempts": n})
        if path == "/slow":
            time.sleep(int(args.get("ms", ["1000"])[0]) / 1000)
            return self.send(200, {"slept": True})
        if path == "/big":
            n = int(args.get("bytes", ["0"])[0])
            if args.get("chunked"):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 65536
                sent = 0
                try:
                    while sent < n:
                        part = chunk[: min(len(chunk), n - sent)]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                        sent += len(part)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    count("big:aborted")
                return
            return self.send(200, b"x" * n, "text/plain")
        if path.startswith("/auth/"):
            kind = path[len("/auth/"):]
            count("auth:" + kind)
            auth = self.headers.get("Authorization", "")
            ok = False
            if kind == "header":
                ok = self.headers.get("X-Api-Key") == o.api_key
            elif kind == "bearer":
                ok = auth == "Bearer " + o.bearer
            elif kind == "basic":
                ok = auth == "Basic " + base64.b64encode(o.basic.encode()).decode()
            elif kind == "oauth":
                with LOCK:
                    ok = auth.startswith("Bearer ") and auth[7:] in TOKENS
            if not ok:
                return self.send(401, {"error": "unauthorized"}, extra={"WWW-Authenticate": "Bearer"})
            return self.send(200, {"ok": True, "kind": kind})
        if path == "/oauth/token":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            cid, secret = o.client.split(":", 1)
            auth = self.headers.get("Authorization", "")
            given = None
            if auth.startswith("Basic "):
                given = base64.b64decode(auth[6:]).decode()
            elif "client_id" in form:
                given = form.get("client_id") + ":" + form.get("client_secret", "")
            with LOCK:
                STATE["last_form"] = {k: v for k, v in form.items() if k != "client_secret"}
            if form.get("grant_type") != "client_credentials" or given != cid + ":" + secret:
                return self.send(401, {"error": "invalid_client"})
            with LOCK:
                STATE["issued"] += 1
                token = "tok-%d-%s" % (STATE["issued"], "z" * 8)
                TOKENS.add(token)
            return self.send(200, {"access_token": token, "token_type": "Bearer", "expires_in": o.oauth_ttl})
        if path == "/oauth/revoke":
            with LOCK:
                TOKENS.clear()
            return self.send(200, {"revoked": True})
        if path == "/stats":
            with LOCK:
                return self.send(200, {"counts": dict(COUNTS), "tokens_issued": STATE["issued"],
                                       "last_token_form": STATE["last_form"]})
        return self.send(404, {"error": "no route " + path})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--api-key", default="key-123456")
    p.add_argument("--bearer", default="bearer-secret-token")
    p.add_argument("--basic", default="alice:wonder-pass")
    p.add_argument("--client", default="client-1:client-secret-xyz")
    p.add_argument("--oauth-ttl", type=int, default=3600)
    Handler.opts = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", Handler.opts.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
