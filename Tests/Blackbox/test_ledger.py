"""The ledger you can hand to a security review: crash safety under load (kill -9 many times), segments,
inclusion proofs and export bundles checked with only the public key, signing-key changes, and what a record keeps
of arguments and results."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    CORRELATION_KEY, DIST, KEYS, GatewayConfig, RawSession, event_of, make_config, run_mcpg, start_gateway,
)

AUDIT_PUB = KEYS / "audit.pub"
SEGMENT = re.compile(r"\.\d{12}$")


def with_audit(config: GatewayConfig, extra: str) -> GatewayConfig:
    """Adds YAML lines (indented two spaces) under the config's `audit:` section."""
    text = config.path.read_text()
    new, n = re.subn(r"(\n  signing_key: [^\n]*)", lambda m: m.group(1) + "\n" + extra.strip("\n"), text, count=1)
    assert n == 1
    config.path.write_text(new)
    return config


def ledger_files(ledger: Path) -> list[Path]:
    """Closed segments (oldest first), then the ledger file."""
    closed = sorted(p for p in ledger.parent.iterdir() if p.name.startswith(ledger.name + ".") and SEGMENT.search(p.name))
    return closed + ([ledger] if ledger.exists() else [])


def records(ledger: Path) -> list[dict[str, Any]]:
    out = []
    for f in ledger_files(ledger):
        for line in f.read_bytes().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a torn line a crash left (followed by a recovery record)
    return out


def verify(ledger: Path, *keys: Path) -> subprocess.CompletedProcess[str]:
    args: list[Any] = ["audit", "verify", ledger]
    for k in keys or (AUDIT_PUB,):
        args += ["--key", k]
    return run_mcpg(*args)


class Caller(threading.Thread):
    """Calls `echo` in a loop until the gateway goes away; keeps the correlation id of every answered call."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answered: list[str] = []
        self.stop = False

    def run(self) -> None:
        try:
            with RawSession(self.url, timeout=5.0) as s:
                s.initialize()
                n = 0
                while not self.stop:
                    n += 1
                    answer = s.call("echo", {"message": f"m{n}"})
                    # Only an answered success counts: its record must be in the ledger.
                    self.answered.append(answer["result"]["_meta"][CORRELATION_KEY])
        except Exception:
            return  # the gateway was killed mid-call: that call was never answered


def test_kill9_under_load_never_loses_an_answered_call(tmp_path: Path) -> None:
    """Issue 7 crash test: a load of tools/calls, SIGKILL at random moments, restart, and at the end every call a
    client saw answered has its record and the ledger (across segments) verifies."""
    config = make_config(tmp_path)
    with_audit(config, "  checkpoint_every: 50\n  rotate: { max_bytes: 65536 }")
    rng = random.Random(7)
    answered: list[str] = []
    for round_ in range(8):
        if round_ == 4:
            # Half the rounds with batched durability: answered still means durable.
            with_audit(config, '  durability: "batch(5ms)"')
        gw = start_gateway(config)
        callers = [Caller(config.url) for _ in range(4)]
        for c in callers:
            c.start()
        time.sleep(rng.uniform(0.3, 1.2))
        gw.process.send_signal(signal.SIGKILL)
        gw.process.wait(timeout=10)
        for c in callers:
            c.stop = True
            c.join(timeout=10)
            answered += c.answered
    gw = start_gateway(config)
    assert gw.stop() == 0, gw.stderr()

    assert len(answered) > 200, "the load should have produced many answered calls"
    r = verify(config.ledger)
    assert r.returncode == 0, r.stdout + r.stderr
    recorded = {e["id"] for e in map(event_of, records(config.ledger)) if e and e.get("type") == "tools/call"}
    missing = set(answered) - recorded
    assert not missing, f"{len(missing)} answered calls have no record"
    assert len(ledger_files(config.ledger)) > 1, "the load should have rotated at least one segment"


@pytest.fixture(scope="module")
def busy_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[GatewayConfig, list[str]]:
    """A segmented ledger from a gateway that served 120 calls and stopped cleanly."""
    config = make_config(tmp_path_factory.mktemp("ledger"))
    with_audit(config, "  checkpoint_every: 25\n  rotate: { max_bytes: 16384 }")
    gw = start_gateway(config)
    ids = []
    try:
        with RawSession(config.url) as s:
            s.initialize()
            for i in range(120):
                ids.append(s.call("echo", {"message": f"m{i}"})["result"]["_meta"][CORRELATION_KEY])
    finally:
        assert gw.stop() == 0, gw.stderr()
    return config, ids


def seq_of(ledger: Path, correlation_id: str) -> int:
    return next(r["seq"] for r in records(ledger) if (r.get("event") or {}).get("id") == correlation_id)


def test_prove_one_record_and_verify_it_with_only_the_public_key(
        busy_ledger: tuple[GatewayConfig, list[str]], tmp_path: Path) -> None:
    config, ids = busy_ledger
    assert len(ledger_files(config.ledger)) > 2
    assert verify(config.ledger).returncode == 0
    for cid in (ids[3], ids[60], ids[-1]):
        seq = seq_of(config.ledger, cid)
        proof = run_mcpg("audit", "prove", config.ledger, str(seq))
        assert proof.returncode == 0, proof.stderr
        bundle = json.loads(proof.stdout)
        assert bundle["format"] == "mcpg-ledger-proof-v1"
        assert json.loads(bundle["records"][0]["line"])["event"]["id"] == cid
        # The auditor has only the proof file and the public key.
        path = tmp_path / f"{seq}.proof.json"
        path.write_text(proof.stdout)
        ok = run_mcpg("audit", "verify-proof", path, "--key", AUDIT_PUB)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith(f"ok: record {seq} proven against the checkpoint at record ")

        # An altered record fails, and so does a checkpoint claimed for another key.
        altered = json.loads(proof.stdout)
        altered["records"][0]["line"] = altered["records"][0]["line"].replace('"echo"', '"admin_reset"')
        path.write_text(json.dumps(altered))
        bad = run_mcpg("audit", "verify-proof", path, "--key", AUDIT_PUB)
        assert bad.returncode == 1
        assert f"record {seq}: the line does not match its hash (edited)" in bad.stderr
    other = tmp_path / "other"
    keygen = run_mcpg("plugin", "keygen", "--out", other)
    assert keygen.returncode == 0, keygen.stderr
    path.write_text(proof.stdout)
    wrong = run_mcpg("audit", "verify-proof", path, "--key", f"{other}.pub")
    assert wrong.returncode == 1 and "not a given key" in wrong.stderr


def test_export_bundle_of_a_range_verifies_offline(busy_ledger: tuple[GatewayConfig, list[str]], tmp_path: Path) -> None:
    config, ids = busy_ledger
    first, last = seq_of(config.ledger, ids[10]), seq_of(config.ledger, ids[90])
    out = run_mcpg("audit", "export", config.ledger, "--from", str(first), "--to", str(last))
    assert out.returncode == 0, out.stderr
    bundle = tmp_path / "incident.bundle.json"
    bundle.write_text(out.stdout)
    data = json.loads(out.stdout)
    assert [r["seq"] for r in data["records"]] == list(range(first, last + 1))
    ok = run_mcpg("audit", "verify-proof", bundle, "--key", AUDIT_PUB)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"ok: records {first}-{last} proven")
    # Dropping a record from the middle of a range is caught by the chain between its neighbours only if they
    # are consecutive; swapping two records' lines is caught by their paths.
    data["records"][5]["line"], data["records"][6]["line"] = data["records"][6]["line"], data["records"][5]["line"]
    bundle.write_text(json.dumps(data))
    bad = run_mcpg("audit", "verify-proof", bundle, "--key", AUDIT_PUB)
    assert bad.returncode == 1, bad.stdout
    # A range past the ledger's end is refused with a clear message.
    past = run_mcpg("audit", "export", config.ledger, "--from", "1", "--to", "999999")
    assert past.returncode == 1 and "cannot prove 999999" in past.stderr


def test_swapped_and_removed_segments_are_named(busy_ledger: tuple[GatewayConfig, list[str]], tmp_path: Path) -> None:
    config, _ = busy_ledger
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in config.ledger.parent.iterdir():
        if f.name.startswith(config.ledger.name):
            (copy / f.name).write_bytes(f.read_bytes())
    ledger = copy / config.ledger.name
    closed = ledger_files(ledger)[:-1]
    a, b = closed[1].read_bytes(), closed[2].read_bytes()
    closed[1].write_bytes(b)
    closed[2].write_bytes(a)
    r = verify(ledger)
    assert r.returncode == 1 and "segments swapped or renamed" in r.stderr, r.stderr
    closed[1].write_bytes(a)
    closed[2].write_bytes(b)
    assert verify(ledger).returncode == 0
    closed[1].unlink()
    r = verify(ledger)
    assert r.returncode == 1, r.stdout


def test_signing_key_change_is_recorded_and_endorsed(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    gw = start_gateway(config)
    with RawSession(config.url) as s:
        s.initialize()
        s.call("echo", {"message": "before"})
    assert gw.stop() == 0
    new_key = tmp_path / "audit2"
    assert run_mcpg("plugin", "keygen", "--out", new_key).returncode == 0
    text = config.path.read_text()
    text = re.sub(r"\n  signing_key: [^\n]*",
                  f"\n  signing_key: {new_key}.key\n  previous_signing_key: {KEYS / 'audit.key'}", text)
    config.path.write_text(text)
    gw = start_gateway(config)
    with RawSession(config.url) as s:
        s.initialize()
        s.call("echo", {"message": "after"})
    assert gw.stop() == 0, gw.stderr()
    kinds = [next(k for k in ("event", "checkpoint", "key", "recovery", "segment") if k in r) for r in records(config.ledger)]
    assert "key" in kinds
    # The old public key alone verifies the whole ledger: the old key endorsed the new one.
    r = verify(config.ledger)
    assert r.returncode == 0, r.stderr
    # The new key alone does not: the ledger began under the old one.
    r = verify(config.ledger, Path(f"{new_key}.pub"))
    assert r.returncode == 1 and "not a given key" in r.stderr


def test_record_modes_keep_hash_or_omit_arguments_and_results(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with_audit(config, """  record:
    arguments: hash
    result: omit
    tools:
      echo: { arguments: full, result: hash }
      get_*: { arguments: omit }""")
    gw = start_gateway(config)
    with RawSession(config.url) as s:
        s.initialize()
        echo_id = s.call("echo", {"message": "visible"})["result"]["_meta"][CORRELATION_KEY]
        weather_id = s.call("get_weather", {"city": "Rome"})["result"]["_meta"][CORRELATION_KEY]
        customer_id = s.call("lookup_customer", {"id": "secret-123"})["result"]["_meta"][CORRELATION_KEY]
    assert gw.stop() == 0
    events = {e["id"]: e for e in map(event_of, records(config.ledger)) if e and e.get("type") == "tools/call"}
    echo, weather, customer = events[echo_id], events[weather_id], events[customer_id]
    assert echo["arguments"] == {"message": "visible"}
    assert re.fullmatch(r"[0-9a-f]{64}", echo["result_sha256"]) and "result" not in echo
    assert "arguments" not in weather and "arguments_sha256" not in weather
    assert re.fullmatch(r"[0-9a-f]{64}", customer["arguments_sha256"])
    assert "secret-123" not in json.dumps(customer)
    assert "result" not in customer and "result_sha256" not in customer


def test_bad_durability_is_a_config_error_with_its_place(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with_audit(config, '  durability: "batch(5s)"')
    r = run_mcpg("config", "validate", config.path)
    assert r.returncode == 1
    assert re.search(r"mcpg\.yaml:\d+:\d+: error: invalid durability \"batch\(5s\)\"", r.stderr), r.stderr


def test_a_flood_of_refusals_is_recorded_as_its_allowance_and_a_summary(tmp_path: Path) -> None:
    """`audit.refusals`: past `per_source` refusals in a window, a source's refusals get no record of their own; the
    summary record the gateway writes once the window ends (while it runs, not only at shutdown) counts them, so
    every refusal is still accounted for and the ledger verifies."""
    config = make_config(tmp_path, anonymous=False)
    with_audit(config, "  refusals: { per_source: 5, window_s: 2 }")
    gw = start_gateway(config)
    flood = 40
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        with httpx.Client(timeout=10) as client:
            for i in range(flood):
                r = client.post(config.url, json=body, headers={
                    "Authorization": f"Bearer wrong-{i}", "Accept": "application/json, text/event-stream"})
                assert r.status_code == 401, r.text
        deadline = time.monotonic() + 30
        while not any((e or {}).get("refusals") for e in map(event_of, records(config.ledger))):
            assert time.monotonic() < deadline, "no summary record while the gateway runs"
            time.sleep(0.1)
    finally:
        assert gw.stop() == 0, gw.stderr()

    refusals = [e for e in map(event_of, records(config.ledger)) if e and e.get("type") == "authentication"]
    single = [e for e in refusals if "refusals" not in e]
    summaries = [e["refusals"] for e in refusals if "refusals" in e]
    assert 5 <= len(single) < flood
    assert len(single) + sum(s["count"] for s in summaries) == flood
    assert all(e["peer"].startswith("127.0.0.1:") for e in single)
    assert all(e["peer"] == "127.0.0.1" for e in refusals if "refusals" in e)
    assert all(s["first"] <= s["last"] and sum(s["reasons"].values()) == s["count"] for s in summaries)
    assert verify(config.ledger).returncode == 0
