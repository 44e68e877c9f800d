#!/usr/bin/env python3
"""An OPA-compatible Data API server for tests, whose decisions come from regopy (rego-cpp).

    opa_server.py [--data data.json] [--port 0] [--latency-ms N] [--fail-status 500]
                  [--require-token T] [--require-header NAME=VALUE] [--tls-self-signed DIR] policy.rego...

Speaks the part of OPA's REST API that mcpg's remote client uses:

- `POST /v1/data/<path>` with body `{"input": ...}` answers `{"result": <value>}`, or `{}` when the document
  is undefined (as OPA does). `<path>` is `/` separated (`mcpg/authz/allow`); `POST /v1/data` asks for the
  whole `data` document.
- `GET /health` answers `{}`.

and adds endpoints for tests:

- `GET /stats` answers `{"requests": N, "inputs": N, "max_in_flight": N, "last_headers": {...}}`: Data API
  requests received (also the failed ones), inputs evaluated, the most Data API requests handled at once, and
  the headers of the last Data API request (names lowercased).
- `POST /control` with `{"latency_ms": N, "fail_status": S|null}` changes those flags while it runs.

Once listening it prints the bound port on stdout (one line) and flushes. Requests are served concurrently
(a thread each, HTTP/1.1 keep-alive); `--latency-ms` delays every Data API answer; `--fail-status` answers
every Data API request with that status and an OPA-style error body; `--require-token` answers 401 unless
`Authorization: Bearer <token>`; `--require-header` answers 403 unless the header has that value.
`--tls-self-signed DIR` serves HTTPS with a fresh self-signed certificate for 127.0.0.1, written as
`DIR/cert.pem` (the CA file a client should trust) and `DIR/key.pem`.

Notes on the reference engine (rego-cpp 1.5.2): each path is compiled once into a
bundle whose query is `r := data.<path>`, because a bare query reports `false` as undefined; an evaluation
that rego-cpp leaves undefined (including some errors) answers `{}`.
"""
import argparse
import json
import os
import queue
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import regopy

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Engine:
    """Compiled policy plus a pool of interpreters (one per concurrent evaluation: they are not shared)."""

    def __init__(self, modules: list, data):
        self.modules = modules
        self.data = data
        self.bundles = {}
        self.lock = threading.Lock()
        self.pool = queue.SimpleQueue()
        self.builder = self._interpreter(with_modules=True)

    def _interpreter(self, with_modules: bool):
        rego = regopy.Interpreter()
        if with_modules:
            if self.data is not None:
                rego.add_data(self.data)
            for name, source in self.modules:
                rego.add_module(name, source)
        return rego

    @staticmethod
    def query_for(segments: list) -> str:
        ref = "data"
        for s in segments:
            ref += "." + s if IDENT.match(s) else "[" + json.dumps(s) + "]"
        return "r := " + ref

    def bundle(self, segments: list):
        key = "/".join(segments)
        with self.lock:
            b = self.bundles.get(key)
            if b is None:
                b = self.builder.build(self.query_for(segments), [])
                self.bundles[key] = b
            return b

    def evaluate(self, segments: list, input_value):
        """Returns (defined, value)."""
        bundle = self.bundle(segments)
        try:
            rego = self.pool.get_nowait()
        except queue.Empty:
            rego = self._interpreter(with_modules=False)
        try:
            rego.set_input(input_value)
            text = str(rego.query_bundle(bundle))
        finally:
            self.pool.put(rego)
        if text.strip() == "undefined":
            return False, None
        out = json.loads(text)
        bindings = out.get("bindings") or {}
        if "r" not in bindings:
            return False, None
        return True, bindings["r"]


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.requests = 0
        self.inputs = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.last_headers = {}
        self.latency_ms = args.latency_ms
        self.fail_status = args.fail_status
        self.require_token = args.require_token
        self.require_headers = {}
        for item in args.require_header:
            name, _, value = item.partition("=")
            self.require_headers[name.lower()] = value


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "opa-test-server"
    # One write per response, sent at once: separate header and body writes meet delayed ACKs on keep-alive
    # connections and cost ~40 ms per request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # keep stdout for the port line and stderr quiet
        pass

    def _send(self, status: int, body) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"code": code, "message": message})

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self):
        state: State = self.server.state
        if self.path == "/health":
            self._send(200, {})
        elif self.path == "/stats":
            with state.lock:
                self._send(200, {"requests": state.requests, "inputs": state.inputs,
                                 "max_in_flight": state.max_in_flight, "last_headers": state.last_headers})
        else:
            self._error(404, "resource_not_found", f"no such endpoint: GET {self.path}")

    def do_POST(self):
        state: State = self.server.state
        raw = self._body()
        if self.path == "/control":
            ctl = json.loads(raw or b"{}")
            with state.lock:
                if "latency_ms" in ctl:
                    state.latency_ms = int(ctl["latency_ms"])
                if "fail_status" in ctl:
                    state.fail_status = ctl["fail_status"]
            self._send(200, {})
            return
        if not (self.path == "/v1/data" or self.path.startswith("/v1/data/")):
            self._error(404, "resource_not_found", f"no such endpoint: POST {self.path}")
            return
        with state.lock:
            state.requests += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            state.last_headers = {k.lower(): v for k, v in self.headers.items()}
            latency, fail = state.latency_ms, state.fail_status
        try:
            self._data(state, raw, latency, fail)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _data(self, state, raw: bytes, latency: int, fail) -> None:
        if latency > 0:
            time.sleep(latency / 1000)
        if state.require_token is not None:
            if self.headers.get("Authorization") != "Bearer " + state.require_token:
                self._error(401, "unauthorized", "missing or invalid bearer token")
                return
        for name, value in state.require_headers.items():
            if self.headers.get(name) != value:
                self._error(403, "forbidden", f"header {name} missing or wrong")
                return
        if fail:
            self._error(int(fail), "internal_error", "failure requested with --fail-status")
            return
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            self._error(400, "invalid_parameter", f"body is not JSON: {e}")
            return
        if not isinstance(body, dict):
            self._error(400, "invalid_parameter", "body must be an object")
            return
        path = self.path[len("/v1/data"):].split("?", 1)[0]
        segments = [unquote(s) for s in path.split("/") if s]
        try:
            defined, value = self.server.engine.evaluate(segments, body.get("input"))
        except Exception as e:  # a compile error for this path, or an engine failure
            self._error(500, "internal_error", f"evaluation failed: {e}")
            return
        with state.lock:
            state.inputs += 1
        self._send(200, {"result": value} if defined else {})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hangs up or rejects our certificate
        pass


def self_signed(directory: str) -> tuple:
    """Writes cert.pem/key.pem for 127.0.0.1 and localhost into `directory`; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    except ImportError:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key_path, "-out", cert_path, "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True)
    return cert_path, key_path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policies", nargs="+", help=".rego module files")
    p.add_argument("--data", help="JSON file loaded as the data document")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--latency-ms", type=int, default=0, help="delay before each Data API answer")
    p.add_argument("--fail-status", type=int, default=None, help="answer every Data API request with this status")
    p.add_argument("--require-token", default=None, help="require Authorization: Bearer <token>")
    p.add_argument("--require-header", action="append", default=[], metavar="NAME=VALUE",
                   help="require this request header (repeatable)")
    p.add_argument("--tls-self-signed", metavar="DIR", help="serve HTTPS with a new self-signed cert in DIR")
    args = p.parse_args()
    # A parent may spawn us with signals blocked (the mask is inherited); SIGTERM must still stop the server.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])

    modules = []
    for path in args.policies:
        with open(path, encoding="utf-8") as f:
            modules.append((os.path.basename(path), f.read()))
    data = None
    if args.data:
        with open(args.data, encoding="utf-8") as f:
            data = json.load(f)
    try:
        engine = Engine(modules, data)
    except Exception as e:
        print(f"opa_server: cannot load policy: {e}", file=sys.stderr)
        return 2

    server = Server((args.host, args.port), Handler)
    server.engine = engine
    server.state = State(args)
    if args.tls_self_signed:
        cert, key = self_signed(args.tls_self_signed)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        # The handshake then runs in each connection's thread, not in the accepting one.
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
