"""The `sql` backend against a real PostgreSQL server the test starts on 127.0.0.1 (Debian's postgresql: initdb with
scram-sha-256 password auth, pg_ctl, as the `postgres` user when run as root), end to end through the official
Python SDK client.

Arguments are bound as $n parameters (injection attempts stay data); read_only runs each call in a READ ONLY
transaction (a write fails clearly and changes nothing); max_rows truncates; statement_timeout stops a slow
statement; column types come from the row description; list_tables/describe_table bind the table name.
"""

from __future__ import annotations

from typing import Iterator

import pytest
from mcp.shared.exceptions import MCPError

from conftest import Gateway, make_config, start_gateway
from sdkclient import run, session, text_of
from pgserver import PG

PASSWORD = "pg-sql-backend-password-41c9"


@pytest.fixture(scope="module")
def pg() -> Iterator[PG]:
    server = PG(PASSWORD, prefix="mcpg-sql-pg-", default_db="shop")
    try:
        server.psql("CREATE DATABASE shop", db="postgres")
        server.psql("""
            CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, balance numeric(10,2), joined timestamptz,
                                    active boolean, data jsonb, photo bytea, score double precision);
            CREATE TABLE x (y text);
            CREATE TABLE numbers AS SELECT n::int AS n FROM generate_series(0, 4999) n;
            INSERT INTO customers (name, balance, joined, active, data, photo, score) VALUES
              ('Ada', 120.50, '2024-01-02T03:04:05Z', true, '{"tier": "gold"}', '\\x00ff10', 1.5),
              ('Grace', 99.00, NULL, false, NULL, NULL, NULL),
              ('O''Brien', 0, NULL, NULL, NULL, NULL, NULL);
        """)
        yield server
    finally:
        server.close()


TOOLS = """
      tools:
        - name: {p}customer_by_id
          statement: "SELECT id, name, balance FROM customers WHERE id = :id"
          parameters: {{ id: {{ type: integer }} }}
        - name: {p}customers_named
          statement: "SELECT id, name FROM customers WHERE name = :name AND ':name' <> '' -- :nope"
          parameters: {{ name: {{ type: string }} }}
        - name: {p}customer_row
          statement: "SELECT id, name, balance, joined, active, data, photo, score, id::int8 * 2 AS doubled FROM customers WHERE id = :id"
          parameters: {{ id: {{ type: integer }} }}
        - name: {p}numbers
          statement: "SELECT n FROM numbers WHERE n >= :from ORDER BY n"
          parameters: {{ from: {{ type: integer, default: 0 }} }}
        - name: {p}delete_customer
          statement: "DELETE FROM customers WHERE id = :id"
          parameters: {{ id: {{ type: integer }} }}
        - name: {p}add_customer
          statement: "INSERT INTO customers (name) VALUES (:name) RETURNING id"
          parameters: {{ name: {{ type: string }} }}
        - name: {p}nap
          statement: "SELECT pg_sleep(:seconds)"
          parameters: {{ seconds: {{ type: number }} }}
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, pg: PG) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("sqlpg")
    pwfile = directory / "pg.password"
    pwfile.write_text(PASSWORD + "\n")
    backends = f"""
  pgro:
    plugin: sql
    config:
      driver: postgres
      host: 127.0.0.1
      port: {pg.port}
      database: shop
      user: mcpg
      password_file: {pwfile}
      max_rows: 100
      timeout_ms: 1000
      generated_tools: true
{TOOLS.format(p="")}
  pgrw:
    plugin: sql
    config:
      driver: postgres
      port: {pg.port}
      database: shop
      user: mcpg
      password_env: MCPG_TEST_PG_PASSWORD
      read_only: false
      timeout_ms: 1000
{TOOLS.format(p="rw_")}
"""
    config = make_config(directory)
    text = config.path.read_text()
    text = text.replace("\naudit:\n", backends.rstrip("\n") + "\naudit:\n", 1)
    text = text.replace("tools: [echo, get_weather, lookup_customer, count_slowly]", 'tools: ["*"]', 1)
    config.path.write_text(text)
    gateway = start_gateway(config, env={"MCPG_TEST_PG_PASSWORD": PASSWORD})
    try:
        yield gateway
    finally:
        gateway.stop()
        assert PASSWORD not in gateway.stderr()


def test_query_and_column_types(gw: Gateway) -> None:
    """TOOL-7/8: typed columns from PostgreSQL's row description; values as JSON numbers, booleans, ISO 8601."""

    async def body() -> None:
        async with session(gw.url) as s:
            one = await s.call_tool("customer_by_id", {"id": 1})
            assert not one.is_error, text_of(one)
            assert one.structured_content == {
                "columns": [{"name": "id", "type": "INTEGER"}, {"name": "name", "type": "TEXT"},
                            {"name": "balance", "type": "NUMERIC"}],
                "rows": [[1, "Ada", 120.5]], "truncated": False,
            }
            assert "| 1 | Ada | 120.5 |" in text_of(one)
            row = await s.call_tool("customer_row", {"id": 1})
            cols = row.structured_content["columns"]
            assert [c["name"] for c in cols] == ["id", "name", "balance", "joined", "active", "data", "photo", "score",
                                                "doubled"]
            assert [c["type"] for c in cols][4] == "BOOLEAN" and cols[8]["type"] == "BIGINT"
            values = row.structured_content["rows"][0]
            assert values[:3] == [1, "Ada", 120.5]
            assert values[3].startswith("2024-01-02T03:04:05")
            assert values[4:] == [True, {"tier": "gold"}, "AP8Q", 1.5, 2]
            nulls = await s.call_tool("customer_row", {"id": 2})
            assert nulls.structured_content["rows"][0][3:8] == [None, False, None, None, None]

    run(body)


def test_injection_attempts_stay_data(gw: Gateway, pg: PG) -> None:
    """`1 OR 1=1`, `'; DROP TABLE x; --`: bound as $1, they match nothing and change nothing."""

    async def body() -> None:
        async with session(gw.url) as s:
            for attempt in ["1 OR 1=1", "' OR '1'='1", "'; DROP TABLE x; --", "Ada' --", "x'); DELETE FROM customers; --"]:
                r = await s.call_tool("customers_named", {"name": attempt})
                assert not r.is_error, text_of(r)
                assert r.structured_content["rows"] == [], attempt
            quoted = await s.call_tool("customers_named", {"name": "O'Brien"})
            assert quoted.structured_content["rows"] == [[3, "O'Brien"]]
            with pytest.raises(MCPError) as e:
                await s.call_tool("customer_by_id", {"id": "1 OR 1=1"})
            assert e.value.error.code == -32602
            added = await s.call_tool("rw_add_customer", {"name": "Bobby'); DROP TABLE x; --"})
            assert not added.is_error, text_of(added)
            new_id = added.structured_content["rows"][0][0]
        assert pg.psql("SELECT count(*) FROM x") == "0"
        assert pg.psql(f"SELECT name FROM customers WHERE id = {int(new_id)}") == "Bobby'); DROP TABLE x; --"

    run(body)


def test_read_only_refuses_writes(gw: Gateway, pg: PG) -> None:
    """read_only (default): READ ONLY transaction; the write is a tool error that says so; nothing changed."""
    before = pg.psql("SELECT count(*) FROM customers")

    async def body() -> None:
        async with session(gw.url) as s:
            for name, args in [("delete_customer", {"id": 1}), ("add_customer", {"name": "Eve"})]:
                r = await s.call_tool(name, args)
                assert r.is_error, name
                assert "read-only" in text_of(r), text_of(r)
            # The connection is still usable afterwards (the failed transaction was rolled back).
            ok = await s.call_tool("customer_by_id", {"id": 2})
            assert ok.structured_content["rows"] == [[2, "Grace", 99.0]]

    run(body)
    assert pg.psql("SELECT count(*) FROM customers") == before
    assert pg.psql("SELECT count(*) FROM customers WHERE id = 1") == "1"


def test_row_limit_and_timeout(gw: Gateway) -> None:
    """max_rows truncates (100 of 5000); statement_timeout stops pg_sleep(5) after 1000 ms."""

    async def body() -> None:
        async with session(gw.url) as s:
            r = await s.call_tool("numbers", {})
            assert r.structured_content["truncated"] is True
            assert r.structured_content["rows"] == [[i] for i in range(100)]
            tail = await s.call_tool("numbers", {"from": 4990})
            assert tail.structured_content == {"columns": [{"name": "n", "type": "INTEGER"}],
                                               "rows": [[i] for i in range(4990, 5000)], "truncated": False}
            slow = await s.call_tool("nap", {"seconds": 5})
            assert slow.is_error and text_of(slow) == "timed out after 1000 ms"
            again = await s.call_tool("customer_by_id", {"id": 1})
            assert again.structured_content["rows"][0][1] == "Ada"

    run(body)


def test_generated_tools(gw: Gateway) -> None:
    """list_tables and describe_table against the catalog; unknown names are refused."""

    async def body() -> None:
        async with session(gw.url) as s:
            tables = await s.call_tool("list_tables", {})
            assert tables.structured_content["rows"] == [
                ["public.customers", "base table"], ["public.numbers", "base table"], ["public.x", "base table"]]
            d = await s.call_tool("describe_table", {"table": "customers"})
            rows = d.structured_content["rows"]
            assert rows[0][:3] == ["id", "integer", False] and rows[0][4] is True
            assert rows[1] == ["name", "text", False, None, False]
            missing = await s.call_tool("describe_table", {"table": "x; DROP TABLE customers"})
            assert missing.is_error and "no table or view named" in text_of(missing)

    run(body)
