"""The `prometheus` sink: /metrics in the text exposition format, parsed by prometheus_client's own parser after
real calls through the MCP Python SDK."""

from __future__ import annotations

import subprocess
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import anyio
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families

from conftest import DEMO_KEY, MCPG, Gateway, GatewayConfig, free_port, make_config, start_gateway

TIMEOUT = 60


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(TIMEOUT):
            await body()

    anyio.run(bounded)


@asynccontextmanager
async def http_session(url: str, key: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(20.0)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def with_sink(directory: Path, sink_yaml: str, **kwargs: Any) -> GatewayConfig:
    """The quickstart config plus one more sink (the quickstart's `sinks:` section is last in the file)."""
    config = make_config(directory, **kwargs)
    text = config.path.read_text()
    assert text.rstrip().endswith("}"), "quickstart config changed shape: sinks is no longer last"
    config.path.write_text(text.rstrip("\n") + "\n" + sink_yaml.strip("\n") + "\n")
    return config


def prometheus_sink(port: int, extra: str = "") -> str:
    return f'  - plugin: prometheus\n    config: {{ listen: "127.0.0.1:{port}"{extra} }}'


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, keyed by (sample name, sorted labels)."""
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_for(port: int, check: Callable[[dict], bool], timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError("metrics never matched; last scrape:\n"
                                 + "\n".join(f"{k} {v}" for k, v in sorted(samples.items())))
        time.sleep(0.2)


@pytest.fixture(scope="module")
def metrics_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, int]]:
    port = free_port()
    gw = start_gateway(with_sink(tmp_path_factory.mktemp("prom"), prometheus_sink(port)))
    try:
        yield gw, port
    finally:
        gw.stop()


ECHO_OK = dict(type="tools/call", tool="echo", backend="demo", status="ok")


def test_calls_decisions_groups_and_latency_after_sdk_calls(metrics_gateway: tuple[Gateway, int]) -> None:
    gw, port = metrics_gateway

    async def body() -> None:
        async with http_session(gw.url) as anonymous:
            for i in range(3):
                r = await anonymous.call_tool("echo", {"message": f"hi {i}"})
                assert not r.is_error
            # Denied by policy: anonymous callers may not use admin_reset.
            with pytest.raises(Exception):
                await anonymous.call_tool("admin_reset", {})
        async with http_session(gw.url, DEMO_KEY) as admin:
            for _ in range(2):
                r = await admin.call_tool("admin_reset", {})
                assert not r.is_error

    run(body)
    samples = wait_for(port, lambda s: value(s, "mcpg_calls_total", **ECHO_OK) == 3
                       and value(s, "mcpg_calls_by_group_total", group="admins") == 2
                       and value(s, "mcpg_calls_total", type="tools/call", tool="admin_reset", backend="demo",
                                 status="error") == 1)
    assert value(samples, "mcpg_calls_total", type="tools/call", tool="admin_reset", backend="demo", status="ok") == 2
    assert value(samples, "mcpg_decisions_total", type="tools/call", decision="deny") == 1
    assert value(samples, "mcpg_decisions_total", type="tools/call", decision="allow") == 5
    # Histogram: cumulative buckets, +Inf equals the count, the sum is a plausible latency.
    labels = dict(tool="echo", backend="demo")
    assert value(samples, "mcpg_call_latency_seconds_count", **labels) == 3
    assert value(samples, "mcpg_call_latency_seconds_bucket", le="+Inf", **labels) == 3
    bounds = sorted(float(dict(k[1])["le"]) for k in samples
                    if k[0] == "mcpg_call_latency_seconds_bucket" and dict(k[1]).get("tool") == "echo")
    counts = [value(samples, "mcpg_call_latency_seconds_bucket", le=_le(b), **labels) for b in bounds]
    assert counts == sorted(counts) and counts[-1] == 3, counts
    assert len(bounds) >= 10
    assert 0 < value(samples, "mcpg_call_latency_seconds_sum", **labels) < 3
    # Every record was counted by kind; the newest seq is at least the number of events.
    events = value(samples, "mcpg_ledger_records_total", kind="event")
    assert events is not None and events >= 6
    assert value(samples, "mcpg_ledger_seq") >= events


def test_kernel_counters_arrive_through_op_metrics(metrics_gateway: tuple[Gateway, int]) -> None:
    """The kernel sends its counters every few seconds: each sink's queue depth and drops, plugin errors."""
    _, port = metrics_gateway
    samples = wait_for(port, lambda s: any(k[0] == "mcpg_sink_queue_depth" for k in s), timeout=15)
    sinks = {dict(k[1]).get("sink") for k in samples if k[0] == "mcpg_sink_queue_depth"}
    # The sinks' labels as the kernel names them: the quickstart's jsonl first, then this prometheus sink.
    assert sinks == {"sinks[0]", "sinks[1]"}, sinks
    dropped = {dict(k[1]).get("sink"): v for k, v in samples.items() if k[0] == "mcpg_sink_dropped_total"}
    assert len(dropped) >= 2 and all(v == 0 for v in dropped.values()), dropped


def test_label_values_are_escaped(metrics_gateway: tuple[Gateway, int]) -> None:
    """A tool name with a quote, a backslash and a line feed round-trips through the real parser."""
    gw, port = metrics_gateway
    weird = 'we"ird\\na\nme'

    async def body() -> None:
        async with http_session(gw.url) as s:
            with pytest.raises(Exception):
                await s.call_tool(weird, {})

    run(body)
    wait_for(port, lambda s: value(s, "mcpg_calls_total", type="tools/call", tool=weird, backend="",
                                   status="error") == 1)


def test_other_paths_are_404_and_other_methods_405(metrics_gateway: tuple[Gateway, int]) -> None:
    _, port = metrics_gateway
    for path in ["/", "/metric", "/metrics/", "/metrics/x", "/mcp"]:
        r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
        assert r.status_code == 404, (path, r.status_code)
    assert httpx.get(f"http://127.0.0.1:{port}/metrics?x=1", timeout=5).status_code == 200
    r = httpx.post(f"http://127.0.0.1:{port}/metrics", content=b"x", timeout=5)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


def test_second_gateway_on_the_same_port_fails_boot_clearly(tmp_path: Path,
                                                            metrics_gateway: tuple[Gateway, int]) -> None:
    _, port = metrics_gateway
    config = with_sink(tmp_path / "second", prometheus_sink(port))
    p = subprocess.run([str(MCPG), "serve", "--config", str(config.path)], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in p.stderr, p.stderr
    assert "prometheus" in p.stderr


def test_max_series_bounds_labels_into_overflow(tmp_path: Path) -> None:
    port = free_port()
    gw = start_gateway(with_sink(tmp_path / "gw", prometheus_sink(port, ", max_series: 4")))
    try:
        async def body() -> None:
            async with http_session(gw.url) as s:
                for i in range(8):
                    with pytest.raises(Exception):
                        await s.call_tool(f"no_such_tool_{i}", {})

        run(body)
        samples = wait_for(port, lambda s: (value(s, "mcpg_calls_total", type="_overflow", tool="_overflow",
                                                  backend="_overflow", status="_overflow") or 0) >= 1)
        calls = [k for k in samples if k[0] == "mcpg_calls_total"]
        distinct_tools = {dict(k[1])["tool"] for k in calls}
        assert len(distinct_tools) < 8, distinct_tools
        assert value(samples, "mcpg_series_overflow") == 1
        time.sleep(0.5)
        assert gw.stderr().count("max_series reached") == 1, gw.stderr()
    finally:
        gw.stop()


def _le(bound: float) -> str:
    """The `le` label as the plugin writes it (prometheus_client keeps label text as is)."""
    if bound == float("inf"):
        return "+Inf"
    return str(int(bound)) if bound == int(bound) else repr(bound)


def test_a_summary_of_refusals_counts_as_every_refusal_it_stands_for(tmp_path: Path) -> None:
    """`audit.refusals`: 12 refusals, 2 recorded one by one and 10 in a summary record, are 12 rejects."""
    port = free_port()
    config = with_sink(tmp_path / "gw", prometheus_sink(port), anonymous=False)
    text = config.path.read_text()
    config.path.write_text(text.replace("\n  signing_key:", "\n  refusals: { per_source: 2, window_s: 1 }\n  signing_key:", 1))
    gw = start_gateway(config)
    try:
        for i in range(12):
            r = httpx.post(gw.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=10,
                           headers={"Authorization": f"Bearer nope-{i}", "Accept": "application/json, text/event-stream"})
            assert r.status_code == 401
        samples = wait_for(port, lambda s: value(s, "mcpg_decisions_total", type="authentication",
                                                 decision="reject") == 12)
        # Two refusals and a summary, unless a loaded machine took over a second (a new window) for the twelve.
        assert (value(samples, "mcpg_ledger_records_total", kind="event") or 0) < 12
    finally:
        gw.stop()
