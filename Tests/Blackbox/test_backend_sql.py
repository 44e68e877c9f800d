"""The `sql` backend end to end through the official Python SDK client, against a SQLite file the test makes (and,
in test_backend_sql_postgres.py, a real PostgreSQL server).

Parameterized statements only: injection attempts in arguments stay data; read-only mode refuses writes and
changes nothing; max_rows truncates; timeouts stop a runaway statement; column types come back; the generated
list_tables/describe_table tools check names against the catalog. Results are structuredContent validated by the
SDK against the tool's outputSchema (TOOL-7/TOOL-8); failures are tool errors (TOOL-10); bad arguments -32602.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest
from mcp.shared.exceptions import MCPError

from conftest import REPO, Gateway, make_config, run_mcpg, start_gateway
from sdkclient import run, session, text_of

TOOLS_YAML = """
      tools:
        - name: customer_by_id
          description: One customer.
          statement: "SELECT id, name, balance FROM customers WHERE id = :id"
          parameters: {{ id: {{ type: integer, minimum: 1 }} }}
        - name: customers_named
          description: Customers with exactly this name.
          statement: "SELECT id, name FROM customers WHERE name = :name -- a comment with :not_a_param"
          parameters: {{ name: {{ type: string }} }}
        - name: customer_by_text_id
          statement: "SELECT id FROM customers WHERE CAST(id AS TEXT) = :id OR note = ':id'"
          parameters: {{ id: {{ type: string }} }}
        - name: customer_row
          description: Every column of one customer.
          statement: "SELECT id, name, balance, photo, note, balance * 2 AS doubled FROM customers WHERE id = :id"
          parameters: {{ id: {{ type: integer }} }}
        - name: numbers
          statement: "SELECT n FROM numbers WHERE n >= :from ORDER BY n"
          parameters: {{ from: {{ type: integer, default: 0 }} }}
        - name: delete_customer
          statement: "DELETE FROM customers WHERE id = :id"
          parameters: {{ id: {{ type: integer }} }}
        - name: add_customer{suffix}
          statement: "INSERT INTO customers (name, note) VALUES (:name, :note)"
          parameters: {{ name: {{ type: string }}, note: {{ type: string }} }}
        - name: spin
          statement: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c WHERE x < :n"
          parameters: {{ n: {{ type: integer }} }}
"""

BACKENDS = """
  db:
    plugin: sql
    config:
      driver: sqlite
      path: {path}
      max_rows: 100
      timeout_ms: 1000
      generated_tools: true
""" + TOOLS_YAML.replace("{suffix}", "") + """
  dbrw:
    plugin: sql
    prefix: rw
    config:
      path: {path}
      read_only: false
      timeout_ms: 1000
""" + TOOLS_YAML.replace("{suffix}", "")


def add_backend(directory: Path, backend: str) -> Any:
    config = make_config(directory)
    text = config.path.read_text()
    text = text.replace("\naudit:\n", backend.rstrip("\n") + "\naudit:\n", 1)
    text = text.replace("tools: [echo, get_weather, lookup_customer, count_slowly]", 'tools: ["*"]', 1)
    config.path.write_text(text)
    return config


def make_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance REAL, photo BLOB, note TEXT);
        CREATE TABLE numbers (n INTEGER);
        CREATE TABLE x (y TEXT);
        CREATE VIEW rich AS SELECT * FROM customers WHERE balance > 100;
    """)
    db.execute("INSERT INTO customers VALUES (1, 'Ada', 120.5, x'00ff10', 'first')")
    db.execute("INSERT INTO customers VALUES (2, 'Grace', 99.0, NULL, NULL)")
    db.execute("INSERT INTO customers VALUES (3, 'O''Brien', 0, NULL, ':id')")
    db.executemany("INSERT INTO numbers VALUES (?)", [(i,) for i in range(5000)])
    db.commit()
    db.close()


def count(path: Path, sql: str) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


@pytest.fixture(scope="module")
def dbfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "shop.db"
    make_db(path)
    return path


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, dbfile: Path) -> Iterator[Gateway]:
    config = add_backend(tmp_path_factory.mktemp("sqlgw"), BACKENDS.format(path=dbfile))
    gateway = start_gateway(config)
    try:
        yield gateway
    finally:
        gateway.stop()


def test_query_with_bound_parameter(gw: Gateway) -> None:
    """TOOL-2/5/7: the tool is listed with an inputSchema from `parameters`; the result is structured + a table."""

    async def body() -> None:
        async with session(gw.url) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert tools["customer_by_id"].input_schema["properties"]["id"]["type"] == "integer"
            assert tools["customer_by_id"].input_schema["required"] == ["id"]
            assert tools["numbers"].input_schema["required"] == []
            assert "rw__add_customer" in tools and "list_tables" in tools
            result = await s.call_tool("customer_by_id", {"id": 1})
            assert not result.is_error
            assert result.structured_content == {
                "columns": [{"name": "id", "type": "INTEGER"}, {"name": "name", "type": "TEXT"},
                            {"name": "balance", "type": "REAL"}],
                "rows": [[1, "Ada", 120.5]],
                "truncated": False,
            }
            assert "| id | name | balance |" in text_of(result)
            assert "| 1 | Ada | 120.5 |" in text_of(result)
            # A name with a quote in it is just data.
            obrien = await s.call_tool("customers_named", {"name": "O'Brien"})
            assert obrien.structured_content["rows"] == [[3, "O'Brien"]]

    run(body)


def test_injection_attempts_stay_data(gw: Gateway, dbfile: Path) -> None:
    """`1 OR 1=1`, `'; DROP TABLE x; --` and friends match nothing and change nothing."""

    async def body() -> None:
        async with session(gw.url) as s:
            for attempt in ["1 OR 1=1", "' OR '1'='1", "'; DROP TABLE x; --", "Ada' --", "Ada\"; DELETE FROM customers; --"]:
                named = await s.call_tool("customers_named", {"name": attempt})
                assert not named.is_error, text_of(named)
                assert named.structured_content["rows"] == [], attempt
                by_text = await s.call_tool("customer_by_text_id", {"id": attempt})
                assert by_text.structured_content["rows"] == [[3]], attempt
            # Only the string ":id" inside the SQL literal matched, not a placeholder.
            literal = await s.call_tool("customer_by_text_id", {"id": "2"})
            assert literal.structured_content["rows"] == [[2], [3]]
            # The typed parameter refuses the attempt before any SQL runs.
            with pytest.raises(MCPError) as e:
                await s.call_tool("customer_by_id", {"id": "1 OR 1=1"})
            assert e.value.error.code == -32602
            # Even in read-write mode the values are stored literally.
            added = await s.call_tool("rw__add_customer", {"name": "Bobby'); DROP TABLE customers; --", "note": "x"})
            assert not added.is_error, text_of(added)
            assert added.structured_content["rows_affected"] == 1
        assert count(dbfile, "SELECT count(*) FROM sqlite_schema WHERE name IN ('x', 'customers')") == 2
        assert count(dbfile, "SELECT count(*) FROM customers WHERE name = 'Bobby''); DROP TABLE customers; --'") == 1

    run(body)


def test_read_only_refuses_writes(gw: Gateway, dbfile: Path) -> None:
    """read_only (the default): a write statement is a tool error that says so, and the data is unchanged."""
    before = count(dbfile, "SELECT count(*) FROM customers")

    async def body() -> None:
        async with session(gw.url) as s:
            for name, args in [("delete_customer", {"id": 1}), ("add_customer", {"name": "Eve", "note": "n"})]:
                result = await s.call_tool(name, args)
                assert result.is_error, name
                assert "read-only" in text_of(result), text_of(result)

    run(body)
    assert count(dbfile, "SELECT count(*) FROM customers") == before
    assert count(dbfile, "SELECT count(*) FROM customers WHERE id = 1") == 1


def test_row_limit_and_defaults(gw: Gateway) -> None:
    """max_rows: 100 of 5000 rows, truncated; a parameter's default applies when the argument is absent."""

    async def body() -> None:
        async with session(gw.url) as s:
            result = await s.call_tool("numbers", {})
            assert result.structured_content["truncated"] is True
            assert result.structured_content["rows"] == [[i] for i in range(100)]
            assert "truncated" in text_of(result)
            tail = await s.call_tool("numbers", {"from": 4950})
            assert tail.structured_content["truncated"] is False
            assert len(tail.structured_content["rows"]) == 50
            full = await s.call_tool("rw__numbers", {})
            assert len(full.structured_content["rows"]) == 1000 and full.structured_content["truncated"] is True

    run(body)


def test_timeout_stops_the_statement(gw: Gateway) -> None:
    """timeout_ms: a runaway recursive query is interrupted and reported; the backend keeps working."""

    async def body() -> None:
        async with session(gw.url) as s:
            result = await s.call_tool("spin", {"n": 2_000_000_000})
            assert result.is_error
            assert text_of(result) == "timed out after 1000 ms"
            again = await s.call_tool("customer_by_id", {"id": 2})
            assert again.structured_content["rows"] == [[2, "Grace", 99.0]]

    run(body)


def test_column_types(gw: Gateway) -> None:
    """Declared types where the column has one, stored types for expressions; BLOBs as base64; NULL as null."""

    async def body() -> None:
        async with session(gw.url) as s:
            row = await s.call_tool("customer_row", {"id": 1})
            assert row.structured_content["columns"] == [
                {"name": "id", "type": "INTEGER"}, {"name": "name", "type": "TEXT"},
                {"name": "balance", "type": "REAL"}, {"name": "photo", "type": "BLOB"},
                {"name": "note", "type": "TEXT"}, {"name": "doubled", "type": "REAL"},
            ]
            assert row.structured_content["rows"] == [[1, "Ada", 120.5, "AP8Q", "first", 241.0]]
            nulls = await s.call_tool("customer_row", {"id": 2})
            assert nulls.structured_content["rows"] == [[2, "Grace", 99.0, None, None, 198.0]]

    run(body)


def test_generated_tools(gw: Gateway) -> None:
    """list_tables and describe_table; a name not in the catalog is refused, never spliced into SQL."""

    async def body() -> None:
        async with session(gw.url) as s:
            tables = await s.call_tool("list_tables", {})
            assert tables.structured_content["rows"] == [
                ["customers", "table"], ["numbers", "table"], ["rich", "view"], ["x", "table"]]
            described = await s.call_tool("describe_table", {"table": "customers"})
            cols = described.structured_content
            assert [c["name"] for c in cols["columns"]] == ["name", "type", "nullable", "default", "primary_key"]
            assert cols["rows"][0] == ["id", "INTEGER", 1, None, 1]
            assert cols["rows"][1] == ["name", "TEXT", 0, None, 0]
            missing = await s.call_tool("describe_table", {"table": "x; DROP TABLE customers"})
            assert missing.is_error and "no table or view named" in text_of(missing)
            with pytest.raises(MCPError) as e:
                await s.call_tool("describe_table", {"table": 5})
            assert e.value.error.code == -32602

    run(body)


@pytest.mark.parametrize(
    "tool, message",
    [
        ('{ name: t, statement: "SELECT :a", parameters: {} }', "placeholder :a has no entry under parameters"),
        ('{ name: t, statement: "SELECT 1", parameters: { a: { type: string } } }', "not used by the statement"),
        ('{ name: t, statement: "SELEC nonsense" }', "syntax error"),
        ('{ name: t, statement: "SELECT 1; DELETE FROM customers" }', "one statement per tool"),
        ('{ name: t, statement: "SELECT * FROM no_such_table" }', "no such table"),
        ('{ name: t, statement: "SELECT ?" }', "use :name placeholders"),
    ],
)
def test_config_errors(tmp_path: Path, dbfile: Path, tool: str, message: str) -> None:
    """Statements are checked at config load; the error names the tool's place in the config."""
    backend = f"""
  db:
    plugin: sql
    config:
      path: {dbfile}
      tools: [{tool}]
"""
    config = add_backend(tmp_path, backend)
    r = run_mcpg("config", "validate", config.path, "--catalog")
    assert r.returncode != 0
    assert message in r.stdout + r.stderr, r.stdout + r.stderr


def test_missing_database_file(tmp_path: Path) -> None:
    backend = f"""
  db:
    plugin: sql
    config: {{ path: {tmp_path}/nope.db, generated_tools: true }}
"""
    r = run_mcpg("config", "validate", add_backend(tmp_path, backend).path, "--catalog")
    assert r.returncode != 0
    assert "cannot open the SQLite database" in r.stdout + r.stderr


def test_example_config_is_valid(tmp_path: Path) -> None:
    """examples/sql loads against its schema (the database path is relative to the working directory)."""
    db = tmp_path / "examples" / "sql" / "shop.db"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.executescript((REPO / "examples" / "sql" / "schema.sql").read_text())
    conn.commit()
    conn.close()
    r = run_mcpg("config", "validate", REPO / "examples" / "sql" / "mcpg.yaml", "--catalog", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
