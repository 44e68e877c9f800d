"""The `webhook` sink against a real HTTP receiver on 127.0.0.1 (Python's http.server) that checks the HMAC
signature of every request, counts batches, answers 500/429 on demand, and can be absent altogether."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from conftest import free_port, start_gateway
from sinkcheck import ledger_lines, make_calls, sink_config, start_dead_sink_and_compare, wait_until

SECRET = b"webhook-test-secret-\x01\xff"  # not UTF-8 clean on purpose: the HMAC key is bytes


class Receiver:
    """Records every request; answers from `script` (status, headers) in order, then 200."""

    def __init__(self, script: list[tuple[int, dict[str, str]]] | None = None, secret: bytes | None = SECRET) -> None:
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[list[dict[str, Any]]] = []
        self.script = list(script or [])
        self.secret = secret
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    status, headers = outer.script.pop(0) if outer.script else (200, {})
                    outer.requests.append({"t": time.monotonic(), "headers": dict(self.headers), "body": body,
                                           "status": status})
                    if status == 200:
                        outer.accepted.append(outer.parse(self.headers.get("Content-Type", ""), body))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @staticmethod
    def parse(ctype: str, body: bytes) -> list[dict[str, Any]]:
        if ctype == "application/x-ndjson":
            assert body.endswith(b"\n")
            return [json.loads(line) for line in body.split(b"\n") if line]
        assert ctype == "application/json", ctype
        batch = json.loads(body)
        assert isinstance(batch, list)
        return batch

    def seqs(self) -> list[int]:
        with self.lock:
            return [r["seq"] for batch in self.accepted for r in batch]

    def check_signatures(self) -> None:
        for r in self.requests:
            h = {k.lower(): v for k, v in r["headers"].items()}
            ts, sig = h["x-mcpg-timestamp"], h["x-mcpg-signature"]
            assert abs(int(ts) - time.time()) < 600
            want = hmac.new(self.secret, ts.encode() + b"." + r["body"], hashlib.sha256).hexdigest()
            assert sig == "v1=" + want, (sig, want)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def assert_each_once(rx: Receiver, expected: set[int]) -> None:
    seqs = rx.seqs()
    assert len(seqs) == len(set(seqs)), "a record was delivered twice"
    assert expected <= set(seqs), f"missing: {sorted(expected - set(seqs))}"


def test_signed_json_batches(tmp_path: Path) -> None:
    """JSON-array batches of at most batch_size, each signed over `<timestamp>.<body>`, static headers sent, and
    every ledger record delivered once, byte-for-byte the same JSON."""
    rx = Receiver()
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET + b"\n")
    try:
        cfg = sink_config(tmp_path / "gw", f"""
  - plugin: webhook
    config:
      url: {rx.url}
      batch_size: 4
      batch_interval_ms: 100
      secret_file: {secret_file}
      headers: {{ X-Tenant: blue, Authorization: "Bearer static-token" }}
""")
        gw = start_gateway(cfg)
        try:
            make_calls(gw, 12)
            wait_until("every record delivered", lambda: set(ledger_lines(gw)) <= set(rx.seqs()))
            lines = ledger_lines(gw)
        finally:
            gw.stop()
        assert_each_once(rx, set(lines))
        rx.check_signatures()
        assert all(1 <= len(b) <= 4 for b in rx.accepted)
        assert any(len(b) == 4 for b in rx.accepted), [len(b) for b in rx.accepted]
        for batch in rx.accepted:
            for record in batch:
                if record["seq"] in lines:
                    assert record == json.loads(lines[record["seq"]])
        for r in rx.requests:
            h = {k.lower(): v for k, v in r["headers"].items()}
            assert h["x-tenant"] == "blue" and h["authorization"] == "Bearer static-token"
            assert h["content-type"] == "application/json"
        assert "webhook-test-secret" not in gw.stderr() and "static-token" not in gw.stderr()
    finally:
        rx.close()


def test_retries_on_500_and_429_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """500, 500, 429 (Retry-After: 1), then 200: the batch is retried with backoff, Retry-After is honoured, and
    every record arrives exactly once (NDJSON, secret from an environment variable)."""
    rx = Receiver([(500, {}), (503, {}), (429, {"Retry-After": "1"})])
    try:
        cfg = sink_config(tmp_path / "gw", f"""
  - plugin: webhook
    config: {{ url: "{rx.url}", format: ndjson, batch_size: 50, batch_interval_ms: 100, secret_env: HOOK_SECRET,
              retry_initial_ms: 50, retry_max_ms: 2000 }}
""")
        gw = start_gateway(cfg, env={"HOOK_SECRET": SECRET.decode("latin-1")})
        rx.secret = SECRET.decode("latin-1").encode()  # the environment carries it as UTF-8 text
        try:
            make_calls(gw, 10)
            wait_until("delivery after the retries", lambda: set(ledger_lines(gw)) <= set(rx.seqs()), timeout=20)
            lines = ledger_lines(gw)
        finally:
            gw.stop()
        assert [r["status"] for r in rx.requests[:4]] == [500, 503, 429, 200]
        assert rx.requests[3]["t"] - rx.requests[2]["t"] >= 0.9, "Retry-After: 1 not honoured"
        # The retried request carries the same records as the first attempt.
        first = Receiver.parse("application/x-ndjson", rx.requests[0]["body"])
        assert [r["seq"] for r in first] == [r["seq"] for r in Receiver.parse("application/x-ndjson", rx.requests[3]["body"])][:len(first)]
        assert_each_once(rx, set(lines))
        rx.check_signatures()
        assert "delivery failed; retrying" in gw.stderr()
    finally:
        rx.close()


def test_other_4xx_is_dropped_not_retried(tmp_path: Path) -> None:
    rx = Receiver([(400, {})] * 1, secret=None)
    try:
        gw = start_gateway(sink_config(tmp_path / "gw", f"""
  - plugin: webhook
    config: {{ url: "{rx.url}", batch_size: 1000, batch_interval_ms: 300 }}
"""))
        try:
            make_calls(gw, 3)
            wait_until("a refusal log line", lambda: "refused by the endpoint" in gw.stderr())
            make_calls(gw, 2)
            wait_until("the later records", lambda: len(rx.accepted) >= 1)
        finally:
            gw.stop()
        assert rx.requests[0]["status"] == 400
        refused = {r["seq"] for r in Receiver.parse("application/json", rx.requests[0]["body"])}
        assert not refused & set(rx.seqs()), "a refused batch was sent again"
        assert "x-mcpg-signature" not in {k.lower() for k in rx.requests[0]["headers"]}
        assert "HTTP 400" in gw.stderr()
    finally:
        rx.close()


def test_dead_endpoint_does_not_slow_calls_and_drops_are_logged(tmp_path: Path) -> None:
    gw = start_dead_sink_and_compare(tmp_path, f"""
  - plugin: webhook
    config: {{ url: "http://127.0.0.1:{free_port()}/hook", buffer: 5, batch_size: 5, batch_interval_ms: 50 }}
""")
    try:
        wait_until("a drop log line", lambda: "webhook: dropped records" in gw.stderr())
        assert "delivery failed; retrying" in gw.stderr()
    finally:
        gw.stop()


def test_bad_config_is_refused(tmp_path: Path) -> None:
    from conftest import run_mcpg
    for name, extra, needle in [("env", 'secret_env: NO_SUCH_VARIABLE_X', "NO_SUCH_VARIABLE_X is not set"),
                                ("both", 'secret_env: HOME, secret_file: /etc/hostname', "only one of"),
                                ("hdr", 'headers: { X-MCPG-Signature: forged }', "set by the plugin"),
                                ("tls", 'tls: { ca_file: /etc/hostname }', "not https")]:
        cfg = sink_config(tmp_path / name, f'  - plugin: webhook\n    config: {{ url: "http://127.0.0.1:9/h", {extra} }}')
        r = run_mcpg("serve", "--config", cfg.path, timeout=90)
        assert r.returncode != 0 and needle in r.stderr, (extra, r.stderr)
