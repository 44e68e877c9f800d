"""Helpers shared by the syslog, webhook and postgres sink tests: a gateway config with one more sink, bursts of
timed tools/calls, the ledger's records, and the "a dead receiver does not slow calls" comparison."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from conftest import CORRELATION_KEY, Gateway, GatewayConfig, RawSession, make_config, read_jsonl, start_gateway


def sink_config(directory: Path, sinks_yaml: str, **kwargs: Any) -> GatewayConfig:
    """The quickstart config (its own port and ledger) with `sinks_yaml` (list items under `sinks:`) appended."""
    cfg = make_config(directory, **kwargs)
    text = cfg.path.read_text()
    assert text.rstrip().splitlines()[-1].startswith("    config: { path:"), "quickstart sinks section changed shape"
    cfg.path.write_text(text.rstrip("\n") + "\n" + sinks_yaml.strip("\n") + "\n")
    return cfg


def start_with_sink(directory: Path, sinks_yaml: str, **kwargs: Any) -> Gateway:
    return start_gateway(sink_config(directory, sinks_yaml, **kwargs))


def ledger_records(gw: Gateway) -> list[dict[str, Any]]:
    return read_jsonl(gw.config.ledger)


def ledger_lines(gw: Gateway) -> dict[int, bytes]:
    """seq → the record's line as the ledger holds it (without the newline)."""
    out = {}
    for line in gw.config.ledger.read_bytes().splitlines():
        try:
            out[json.loads(line)["seq"]] = line
        except (ValueError, KeyError):
            pass
    return out


def make_calls(gw: Gateway, n: int, *, tool: str = "echo", key: str | None = None) -> tuple[float, list[str]]:
    """`n` tools/calls on one session; returns the seconds they took and their correlation ids (all must succeed)."""
    ids = []
    with RawSession(gw.url, key=key) as s:
        s.initialize()
        start = time.perf_counter()
        for i in range(n):
            answer = s.call(tool, {"message": f"m{i}"})
            assert "result" in answer, answer
            ids.append(answer["result"]["_meta"][CORRELATION_KEY])
        return time.perf_counter() - start, ids


def wait_until(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def assert_not_slowed(baseline_s: float, with_dead_sink_s: float) -> None:
    """A dead receiver may cost a little, never a wait per call: < 2x the baseline + 50 ms for the burst."""
    assert with_dead_sink_s < 2 * baseline_s + 0.05, (
        f"50 calls took {with_dead_sink_s:.3f}s with the receiver down vs {baseline_s:.3f}s without the sink")


def start_dead_sink_and_compare(tmp_path: Path, sinks_yaml: str) -> Gateway:
    """Starts a gateway without the sink and one whose sink's receiver is down, times 50-call bursts on each in
    turn (5 rounds, best of each, so load from elsewhere hits both alike) and asserts the sink did not slow calls.
    Returns the gateway with the dead sink, still running (the caller stops it)."""
    base = start_gateway(make_config(tmp_path / "base"))
    try:
        gw = start_with_sink(tmp_path / "dead", sinks_yaml)
        try:
            make_calls(base, 10)
            make_calls(gw, 10)
            baseline, dead = [], []
            for _ in range(5):
                baseline.append(make_calls(base, 50)[0])
                dead.append(make_calls(gw, 50)[0])
            assert_not_slowed(min(baseline), min(dead))
        except BaseException:
            gw.stop()
            raise
    finally:
        base.stop()
    return gw
