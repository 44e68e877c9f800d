"""The audit ledger as an operator sees it: records written by a real gateway, checked offline with
`mcpg audit verify LEDGER --key PUB`, and every kind of tampering caught and named (DESIGN §6)."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    ADMIN_TOOL, CORRELATION_KEY, DEMO_KEY, KEYS, Gateway, RawSession, event_of, make_config, read_jsonl, run_mcpg,
    start_gateway,
)

AUDIT_PUB = KEYS / "audit.pub"
OUTCOMES = {"ok", "tool_error", "error", "cancelled"}


def make_calls(gw: Gateway) -> list[str]:
    """A mix of allowed, denied and admin calls; returns the correlation ids of all of them."""
    ids = []
    with RawSession(gw.url) as s:
        s.initialize()
        for i in range(3):
            ids.append(s.call("echo", {"message": f"m{i}"})["result"]["_meta"][CORRELATION_KEY])
        ids.append(s.call("get_weather", {"city": "Rome"})["result"]["_meta"][CORRELATION_KEY])
        ids.append(s.call("lookup_customer", {"id": "c-1"})["result"]["_meta"][CORRELATION_KEY])
        ids.append(s.call(ADMIN_TOOL)["error"]["data"]["correlationId"])
    with RawSession(gw.url, key=DEMO_KEY) as admin:
        admin.initialize()
        ids.append(admin.call(ADMIN_TOOL)["result"]["_meta"][CORRELATION_KEY])
    return ids


def verify(ledger: Path, key: Path = AUDIT_PUB) -> tuple[int, str]:
    r = run_mcpg("audit", "verify", ledger, "--key", key)
    return r.returncode, r.stdout + r.stderr


def tamper_copy(ledger: Path, directory: Path) -> Path:
    """A copy of the ledger and its head file (and anything else beside it named after it)."""
    directory.mkdir(parents=True)
    for f in ledger.parent.iterdir():
        if f.name.startswith(ledger.name):
            shutil.copy2(f, directory / f.name)
    return directory / ledger.name


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture(scope="module")
def sealed_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A ledger from a gateway that served a few calls and was stopped with SIGTERM."""
    config = make_config(tmp_path_factory.mktemp("audit"))
    gw = start_gateway(config)
    try:
        ids = make_calls(gw)
    finally:
        code = gw.stop()
    assert code == 0, f"SIGTERM should stop the gateway cleanly, got {code}:\n{gw.stderr()}"
    return config.ledger, ids


def test_verify_ok_after_sigterm(sealed_ledger: tuple[Path, list[str]]) -> None:
    """A clean shutdown seals the ledger: `audit verify` exits 0 with `ok: N records…`, N = lines in the file."""
    ledger, _ = sealed_ledger
    code, out = verify(ledger)
    assert code == 0, out
    m = re.search(r"ok: (\d+) records", out)
    assert m, out
    assert int(m.group(1)) == len(lines_of(ledger))


def test_every_call_has_one_complete_record(sealed_ledger: tuple[Path, list[str]]) -> None:
    """Each answered call (allowed or denied) has exactly one tools/call event with its correlation id, principal,
    decision (effect, reasons) and outcome; records are hash-chained in seq order."""
    ledger, ids = sealed_ledger
    records = read_jsonl(ledger)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    for prev, rec in zip(records, records[1:]):
        assert rec["prev"] == prev["hash"]
    events = [e for e in map(event_of, records) if e and e.get("type") == "tools/call"]
    by_id = {}
    for e in events:
        assert e["id"] not in by_id, f"two records for {e['id']}"
        by_id[e["id"]] = e
    for cid in ids:
        e = by_id.get(cid)
        assert e is not None, f"no ledger record for answered call {cid}"
        assert isinstance(e["principal"], dict) and e["principal"]["id"]
        assert e["decision"]["effect"] in {"allow", "deny"}
        assert isinstance(e["decision"]["reasons"], list)
        assert e["outcome"]["status"] in OUTCOMES
    denied = [e for e in events if e["tool"] == ADMIN_TOOL and e["principal"]["id"] == "anonymous"]
    assert denied and all(e["decision"]["effect"] == "deny" for e in denied)
    allowed_admin = [e for e in events if e["tool"] == ADMIN_TOOL and e["principal"]["id"] == "demo"]
    assert allowed_admin and allowed_admin[0]["outcome"]["status"] == "ok"
    assert DEMO_KEY not in ledger.read_text(), "the ledger must not contain credentials"


def test_verify_with_wrong_key_fails(sealed_ledger: tuple[Path, list[str]]) -> None:
    """Checkpoints are signed by the audit key; another key (the plugin dev key) must not verify them."""
    ledger, _ = sealed_ledger
    code, out = verify(ledger, KEYS / "dev-plugin.pub")
    assert code == 1, out


def _event_line(ledger: Path) -> tuple[int, dict[str, Any]]:
    """1-based line number and record of an event record in the middle of the ledger."""
    records = read_jsonl(ledger)
    candidates = [i for i, r in enumerate(records) if "event" in r and 0 < i < len(records) - 1]
    assert candidates, "need an event record that is neither first nor last"
    i = candidates[len(candidates) // 2]
    return i + 1, records[i]


def test_edited_byte_is_caught_and_named(sealed_ledger: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Change one byte inside a record (JSON stays valid) → exit 1 naming that record."""
    copy = tamper_copy(sealed_ledger[0], tmp_path / "edit")
    line_no, record = _event_line(copy)
    lines = lines_of(copy)
    original = lines[line_no - 1]
    tool = record["event"]["tool"].encode()
    assert tool in original
    edited_tool = bytes([tool[0] ^ 0x20]) + tool[1:]  # flip the case of one letter
    lines[line_no - 1] = original.replace(b'"tool":"' + tool + b'"', b'"tool":"' + edited_tool + b'"', 1)
    assert lines[line_no - 1] != original and len(lines[line_no - 1]) == len(original)
    copy.write_bytes(b"".join(lines))
    code, out = verify(copy)
    assert code == 1, out
    seq = record["seq"]
    assert re.search(rf"\brecord {seq}\b", out) or re.search(rf"\bline {line_no}\b", out), out


def test_deleted_line_is_caught(sealed_ledger: tuple[Path, list[str]], tmp_path: Path) -> None:
    copy = tamper_copy(sealed_ledger[0], tmp_path / "delete")
    line_no, record = _event_line(copy)
    lines = lines_of(copy)
    del lines[line_no - 1]
    copy.write_bytes(b"".join(lines))
    code, out = verify(copy)
    assert code == 1, out
    assert re.search(rf"\brecord {record['seq'] + 1}\b|\bline {line_no}\b|\brecord {record['seq']}\b", out), out


def test_reordered_lines_are_caught(sealed_ledger: tuple[Path, list[str]], tmp_path: Path) -> None:
    copy = tamper_copy(sealed_ledger[0], tmp_path / "reorder")
    line_no, _ = _event_line(copy)
    lines = lines_of(copy)
    lines[line_no - 1], lines[line_no] = lines[line_no], lines[line_no - 1]
    copy.write_bytes(b"".join(lines))
    code, out = verify(copy)
    assert code == 1, out
    assert re.search(rf"\bline {line_no}\b|\brecord {line_no}\b", out), out


def test_truncated_tail_is_caught(sealed_ledger: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Dropping the last whole record(s) or cutting the last line short → exit 1 (the head file pins the tail)."""
    for name, cut in [("drop-last", lambda ls: ls[:-1]), ("drop-two", lambda ls: ls[:-2])]:
        copy = tamper_copy(sealed_ledger[0], tmp_path / name)
        copy.write_bytes(b"".join(cut(lines_of(copy))))
        code, out = verify(copy)
        assert code == 1, (name, out)
    copy = tamper_copy(sealed_ledger[0], tmp_path / "torn")
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) - len(lines_of(copy)[-1]) // 2])
    code, out = verify(copy)
    assert code == 1, ("torn", out)


def test_ledger_continues_across_restart(tmp_path: Path) -> None:
    """A second gateway run appends to the same ledger; the whole chain still verifies."""
    config = make_config(tmp_path)
    ids = []
    for _ in range(2):
        gw = start_gateway(config)
        try:
            ids += make_calls(gw)
        finally:
            assert gw.stop() == 0, gw.stderr()
    code, out = verify(config.ledger)
    assert code == 0, out
    recorded = {e["id"] for e in map(event_of, read_jsonl(config.ledger)) if e and e.get("type") == "tools/call"}
    assert set(ids) <= recorded


def test_answered_calls_survive_sigkill(tmp_path: Path) -> None:
    """DESIGN §6: a crash loses at most calls not yet answered. After SIGKILL, a restarted gateway reopens the
    ledger, and after its clean stop the ledger verifies and holds every call that was answered before the kill."""
    config = make_config(tmp_path)
    gw = start_gateway(config)
    try:
        ids = make_calls(gw)
    finally:
        gw.process.send_signal(signal.SIGKILL)
        gw.process.wait(timeout=10)
    gw2 = start_gateway(config)
    assert gw2.stop() == 0, gw2.stderr()
    code, out = verify(config.ledger)
    assert code == 0, out
    recorded = {e["id"] for e in map(event_of, read_jsonl(config.ledger)) if e and e.get("type") == "tools/call"}
    assert set(ids) <= recorded
