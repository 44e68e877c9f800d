"""The `postgres` sink against a real PostgreSQL server that the test starts on 127.0.0.1 (Debian's postgresql:
initdb with scram-sha-256 password auth, pg_ctl), read back with psql: rows match the ledger, a database restart
mid-run loses nothing, injection-looking tool names stay data, and a database that is not there slows nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ADMIN_TOOL, RawSession, free_port, run_mcpg, start_gateway
from pgserver import PG
from sinkcheck import ledger_lines, make_calls, sink_config, start_dead_sink_and_compare, wait_until

PASSWORD = "pg-test-password-7f3a"
INJECTION = "x'); DROP TABLE audit_rows; --"


@pytest.fixture(scope="module")
def pg() -> Iterator[PG]:
    server = PG(PASSWORD, default_db="audit")
    server.psql("CREATE DATABASE audit", db="postgres")
    try:
        yield server
    finally:
        server.close()


def sink_yaml(port: int, table: str, pwfile: Path, extra: str = "") -> str:
    return f"""
  - plugin: postgres
    config: {{ host: 127.0.0.1, port: {port}, database: audit, user: mcpg, password_file: {pwfile},
              table: {table}, create_table: true, batch_size: 5, batch_interval_ms: 100{extra} }}
"""


def password_file(tmp_path: Path) -> Path:
    p = tmp_path / "pgpass"
    p.write_text(PASSWORD + "\n")
    return p


def check_rows(rows: dict[int, dict[str, Any]], lines: dict[int, bytes], seqs: set[int]) -> None:
    for seq in seqs:
        record, row = json.loads(lines[seq]), rows[seq]
        assert row["record"] == record
        assert row["ts"] is not None
        kind = next(k for k in record if k not in ("seq", "ts", "prev", "hash"))
        assert row["kind"] == kind
        ev = record.get("event") or {}
        assert row["correlation_id"] == ev.get("id")
        assert row["type"] == ev.get("type")
        assert row["tool"] == ev.get("tool")
        assert row["principal"] == (ev.get("principal") or {}).get("id")
        assert row["decision"] == (ev.get("decision") or {}).get("effect")
        assert row["status"] == (ev.get("outcome") or {}).get("status")


def test_rows_match_records_and_injection_stays_data(pg: PG, tmp_path: Path) -> None:
    gw = start_gateway(sink_config(tmp_path / "gw", sink_yaml(pg.port, "audit_rows", password_file(tmp_path))))
    try:
        make_calls(gw, 7)
        with RawSession(gw.url) as s:
            s.initialize()
            assert "error" in s.call(ADMIN_TOOL)
            odd = s.call(INJECTION, {"q": "'; DELETE FROM audit_rows; --"})
            assert "error" in odd or odd["result"].get("isError")
        wait_until("every record in the table", lambda: set(ledger_lines(gw)) <= set(pg.rows("audit_rows")))
        lines = ledger_lines(gw)
    finally:
        gw.stop()
    rows = pg.rows("audit_rows")
    check_rows(rows, lines, set(lines))
    assert any(r["tool"] == INJECTION for r in rows.values()), "the injection-looking tool name is not stored as is"
    assert any(r["decision"] == "deny" and r["tool"] == ADMIN_TOOL for r in rows.values())
    assert pg.psql("SELECT count(*) FROM audit_rows", db="audit") == str(len(rows))
    assert PASSWORD not in gw.stderr()


def test_database_restart_mid_run_loses_nothing(pg: PG, tmp_path: Path) -> None:
    gw = start_gateway(sink_config(tmp_path / "gw", sink_yaml(pg.port, "public.restart_rows", password_file(tmp_path))))
    try:
        make_calls(gw, 10)
        wait_until("the first rows", lambda: set(ledger_lines(gw)) <= set(pg.rows("restart_rows")))
        pg.stop()
        try:
            make_calls(gw, 15)
            time.sleep(0.5)
        finally:
            pg.start()
        make_calls(gw, 5)
        wait_until("every record after the restart", lambda: set(ledger_lines(gw)) <= set(pg.rows("restart_rows")),
                   timeout=30)
        lines = ledger_lines(gw)
    finally:
        gw.stop()
    rows = pg.rows("restart_rows")
    check_rows(rows, lines, set(lines))
    assert "postgres: database unreachable" in gw.stderr()


def test_dead_database_does_not_slow_calls_and_drops_are_logged(tmp_path: Path) -> None:
    gw = start_dead_sink_and_compare(tmp_path, sink_yaml(free_port(), "t", password_file(tmp_path), ", buffer: 5"))
    try:
        wait_until("a drop log line", lambda: "postgres: dropped records" in gw.stderr())
        assert "postgres: database unreachable" in gw.stderr()
    finally:
        gw.stop()


def test_bad_config_is_refused(tmp_path: Path) -> None:
    cfg = sink_config(tmp_path / "table", '  - plugin: postgres\n    config: { database: a, user: u, table: "t; DROP" }')
    r = run_mcpg("config", "validate", cfg.path, timeout=90)
    assert r.returncode != 0 and "table" in r.stdout + r.stderr, r.stdout + r.stderr
    cfg = sink_config(tmp_path / "env", "  - plugin: postgres\n    config: { database: a, user: u, password_env: NO_SUCH_PG_VAR }")
    r = run_mcpg("serve", "--config", cfg.path, timeout=90)
    assert r.returncode != 0 and "NO_SUCH_PG_VAR is not set" in r.stderr, r.stderr
