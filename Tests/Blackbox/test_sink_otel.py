"""The `otel` sink and W3C trace context: spans over OTLP/HTTP (protobuf) decoded by opentelemetry-proto's own
classes in a receiver this test runs on 127.0.0.1; trace context from `_meta` and from HTTP headers, continued to
an `mcp` backend (Tests/Upstreams/everything.py's `meta` tool shows what it received)."""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import anyio
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import REPO, Gateway, free_port, make_config, read_jsonl, start_gateway

PYTHON = REPO / ".venv" / "bin" / "python"
EVERYTHING = REPO / "Tests" / "Upstreams" / "everything.py"
TIMEOUT = 90
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
SPAN_KIND_SERVER = 2
STATUS_ERROR = 2


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(TIMEOUT):
            await body()

    anyio.run(bounded)


@asynccontextmanager
async def http_session(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    async with httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(20.0)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


class Receiver:
    """An OTLP/HTTP trace receiver: decodes every POST /v1/traces; answers 503 to the first `fail_first`."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.attempts = 0
        self.content_types: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.attempts += 1
                    fail = receiver.attempts <= receiver.fail_first
                    if not fail and self.path == "/v1/traces":
                        receiver.requests.append(ExportTraceServiceRequest.FromString(body))
                        receiver.content_types.append(self.headers.get("content-type", ""))
                        receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                status = 503 if fail else (200 if self.path == "/v1/traces" else 404)
                self.send_response(status)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> list[tuple[Any, Any]]:
        """(resource, span) for every span received so far."""
        with self.lock:
            return [(rs.resource, span) for req in self.requests for rs in req.resource_spans
                    for ss in rs.scope_spans for span in ss.spans]

    def wait_for_span(self, predicate: Callable[[Any], bool], timeout: float = 15.0) -> tuple[Any, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for resource, span in self.spans():
                if predicate(span):
                    return resource, span
            if time.monotonic() > deadline:
                raise AssertionError("no matching span; got: " + ", ".join(s.name for _, s in self.spans()))
            time.sleep(0.05)


def attributes(kvs: Any) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def otel_sink(endpoint: str, extra: str = "") -> str:
    return (f"  - plugin: otel\n    config: {{ endpoint: \"{endpoint}\", service_name: mcpg-test, "
            f"flush_interval_ms: 100{extra} }}")


def gateway_config(directory: Path, sink: str | None, with_backend: bool = True) -> Any:
    config = make_config(directory)
    text = config.path.read_text()
    if with_backend:
        backend = (f"  up:\n    plugin: mcp\n    prefix: u\n    config:\n      transport: stdio\n"
                   f"      command: [{PYTHON}, {EVERYTHING}, stdio]\n      env_allow: [PATH]\n")
        text = text.replace("\naudit:\n", "\n" + backend.rstrip("\n") + "\naudit:\n", 1)
        text = text.replace("tools: [echo, get_weather, lookup_customer, count_slowly]",
                            'tools: [echo, get_weather, lookup_customer, count_slowly, "u__*"]', 1)
    if sink:
        text = text.rstrip("\n") + "\n" + sink + "\n"
    config.path.write_text(text)
    return config


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Receiver]]:
    receiver = Receiver()
    gw = start_gateway(gateway_config(tmp_path_factory.mktemp("otel"),
                                      otel_sink(f"http://127.0.0.1:{receiver.port}",
                                                ', headers: [{ name: X-Test-Tenant, value: t1 }]')))
    try:
        yield gw, receiver
    finally:
        gw.stop()
        receiver.close()


def test_span_continues_the_clients_trace_from_meta(traced: tuple[Gateway, Receiver]) -> None:
    gw, receiver = traced
    seen: dict[str, Any] = {}

    async def body() -> None:
        async with http_session(gw.url) as s:
            r = await s.call_tool("u__meta", {}, meta={"traceparent": TRACEPARENT, "tracestate": "vendor=abc"})
            assert not r.is_error
            seen.update(r.structured_content["meta"])

    run(body)
    # The backend got the same trace, with the gateway's span as parent, and the tracestate unchanged.
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", seen.get("traceparent", ""))
    assert m, seen
    assert m.group(1) == TRACE_ID
    gateway_span = m.group(2)
    assert gateway_span != CLIENT_SPAN
    assert seen.get("tracestate") == "vendor=abc"

    resource, span = receiver.wait_for_span(lambda s: s.name == "tools/call u__meta")
    assert attributes(resource.attributes)["service.name"] == "mcpg-test"
    assert span.trace_id.hex() == TRACE_ID
    assert span.span_id.hex() == gateway_span
    assert span.parent_span_id.hex() == CLIENT_SPAN
    assert span.kind == SPAN_KIND_SERVER
    assert span.status.code != STATUS_ERROR
    assert 0 < span.start_time_unix_nano <= span.end_time_unix_nano
    assert abs(span.end_time_unix_nano / 1e9 - time.time()) < 60
    attrs = attributes(span.attributes)
    assert attrs["mcp.method.name"] == "tools/call"
    assert attrs["gen_ai.tool.name"] == "u__meta"
    assert attrs["mcpg.backend"] == "up"
    assert attrs["mcpg.principal"] == "anonymous"
    assert attrs["mcpg.decision"] == "allow"
    assert attrs["mcpg.ledger.seq"] > 0
    correlation = attrs["mcpg.correlation_id"]
    # The audit record names the same ids.
    events = [r["event"] for r in read_jsonl(gw.config.ledger) if r.get("event", {}).get("id") == correlation]
    assert events and events[0]["trace"] == {"trace_id": TRACE_ID, "span_id": gateway_span,
                                              "parent_span_id": CLIENT_SPAN}
    assert receiver.content_types[0] == "application/x-protobuf"
    assert receiver.headers[0].get("x-test-tenant") == "t1"


def test_trace_context_from_http_headers_and_invalid_ones_restart(traced: tuple[Gateway, Receiver]) -> None:
    gw, receiver = traced
    header_trace = "0af7651916cd43dd8448eb211c80319c"
    header_parent = "b7ad6b7169203331"
    got: dict[str, Any] = {}

    async def body() -> None:
        async with http_session(gw.url, {"traceparent": f"00-{header_trace}-{header_parent}-01"}) as s:
            got["header"] = (await s.call_tool("u__meta", {})).structured_content["meta"]["traceparent"]
        async with http_session(gw.url) as s:
            for label, bad in [("upper", TRACEPARENT.upper()), ("zero", f"00-{'0' * 32}-{CLIENT_SPAN}-01"),
                               ("version", f"ff-{TRACE_ID}-{CLIENT_SPAN}-01"), ("short", f"00-{TRACE_ID}-{CLIENT_SPAN}")]:
                r = await s.call_tool("u__meta", {}, meta={"traceparent": bad, "tracestate": "x=1"})
                got[label] = r.structured_content["meta"]

    run(body)
    assert got["header"].split("-")[1] == header_trace
    _, span = receiver.wait_for_span(lambda s: s.trace_id.hex() == header_trace)
    assert span.parent_span_id.hex() == header_parent
    for label in ["upper", "zero", "version", "short"]:
        meta = got[label]
        trace = meta["traceparent"].split("-")[1]
        assert trace not in (TRACE_ID, TRACE_ID.upper(), "0" * 32), (label, meta)
        assert "tracestate" not in meta, (label, meta)  # dropped with the invalid traceparent
        _, span = receiver.wait_for_span(lambda s, t=trace: s.trace_id.hex() == t)
        assert span.parent_span_id == b"", label


def test_failed_and_denied_calls_are_error_spans(traced: tuple[Gateway, Receiver]) -> None:
    gw, receiver = traced

    async def body() -> None:
        async with http_session(gw.url) as s:
            with pytest.raises(Exception):
                await s.call_tool("admin_reset", {})  # denied for anonymous callers

    run(body)
    _, span = receiver.wait_for_span(lambda s: s.name == "tools/call admin_reset")
    assert span.status.code == STATUS_ERROR
    assert "denied" in span.status.message
    attrs = attributes(span.attributes)
    assert attrs["mcpg.decision"] == "deny"
    assert len(span.trace_id) == 16 and len(span.span_id) == 8


def test_retries_after_503(tmp_path: Path) -> None:
    receiver = Receiver(fail_first=2)
    gw = start_gateway(gateway_config(tmp_path / "gw", otel_sink(f"http://127.0.0.1:{receiver.port}"),
                                      with_backend=False))
    try:
        async def body() -> None:
            async with http_session(gw.url) as s:
                assert not (await s.call_tool("echo", {"message": "retry me"})).is_error

        run(body)
        receiver.wait_for_span(lambda s: s.name == "tools/call echo", timeout=20)
        assert receiver.attempts >= 3
    finally:
        gw.stop()
        receiver.close()


def time_calls(gw: Gateway, n: int = 50) -> float:
    elapsed: dict[str, float] = {}

    async def body() -> None:
        async with http_session(gw.url) as s:
            await s.call_tool("echo", {"message": "warm-up"})
            start = time.perf_counter()
            for i in range(n):
                r = await s.call_tool("echo", {"message": f"m{i}"})
                assert not r.is_error
            elapsed["t"] = time.perf_counter() - start

    run(body)
    return elapsed["t"]


def test_dead_receiver_does_not_slow_calls_and_drops_are_logged(tmp_path: Path) -> None:
    baseline_gw = start_gateway(gateway_config(tmp_path / "base", None, with_backend=False))
    try:
        baseline = time_calls(baseline_gw)
    finally:
        baseline_gw.stop()
    dead = free_port()  # nothing listens here
    gw = start_gateway(gateway_config(
        tmp_path / "dead", otel_sink(f"http://127.0.0.1:{dead}", ", max_buffer: 10, max_retries: 1, batch_size: 5"),
        with_backend=False))
    try:
        slow = time_calls(gw)
        # Not a tight bound: the point is that nothing waits on the receiver (a connect timeout would show).
        assert slow < 2 * baseline + 0.25, (slow, baseline)
        deadline = time.monotonic() + 15
        while "otel: dropped spans" not in gw.stderr():
            assert time.monotonic() < deadline, gw.stderr()
            time.sleep(0.1)
        assert re.search(r"mcpg\.sink\.dropped=\d+", gw.stderr()) or "dropped" in gw.stderr()
    finally:
        gw.stop()
