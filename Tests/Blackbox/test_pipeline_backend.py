"""The `pipeline` backend end to end, through the official Python SDK client: pipeline tools over the quickstart's
mock tools, every inner call made as the caller (policy, ledger records naming the outer call as `parent`), a
policy denial inside a pipeline, bad arguments, a backend without `calls_tools`, and config errors placed at the
step's file:line:col at boot.

TOOL-2/TOOL-3 (listed with input schemas), TOOL-5 (call), TOOL-7/TOOL-8 (structuredContent matching the
outputSchema, which the SDK validates), TOOL-10 (execution errors are results with isError).
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import anyio
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from conftest import (
    CORRELATION_KEY, DEMO_KEY, DIST, PLUGIN_DIR, REPO, Gateway, GatewayConfig, RawSession, event_of, free_port, make_config,
    read_jsonl, run_mcpg, start_gateway, wait_for_event,
)

TIMEOUT = 30

PIPE_BACKEND = """
  pipe:
    plugin: pipeline
    calls_tools: {calls_tools}
    config:
      tools:
        - name: weather_report
          description: The weather for a city, echoed back as one line.
          inputSchema:
            type: object
            properties: {{ city: {{ type: string, minLength: 1 }} }}
            required: [city]
          outputSchema:
            type: object
            properties: {{ line: {{ type: string }}, temperature_c: {{ type: number }} }}
            required: [line, temperature_c]
          steps:
            - call: get_weather
              id: w
              arguments: {{ city: "{{{{ args.city }}}}" }}
            - call: echo
              id: e
              arguments: {{ message: "{{{{ steps.w.result.city }}}}: {{{{ steps.w.result.conditions }}}}" }}
            - return:
                text: "{{{{ steps.e.result }}}}"
                structured: {{ line: "{{{{ steps.e.result }}}}", temperature_c: "{{{{ steps.w.result.temperature_c }}}}" }}
        - name: many_cities
          description: Weather for several cities at once, warm ones only.
          inputSchema:
            type: object
            properties: {{ cities: {{ type: array, items: {{ type: string }}, maxItems: 10 }} }}
            required: [cities]
          steps:
            - map: "{{{{ args.cities }}}}"
              concurrency: 2
              into: all
              do: {{ call: get_weather, arguments: {{ city: "{{{{ item }}}}" }} }}
            - filter: "{{{{ vars.all }}}}"
              where: {{ left: "{{{{ item.temperature_c }}}}", op: ">=", right: 20 }}
              into: warm
            - return: {{ structured: {{ warm: "{{{{ vars.warm }}}}" }} }}
        - name: reset_demo
          description: Resets the demo through the admin tool (admins only, decided per caller).
          inputSchema: {{ type: object }}
          steps:
            - call: admin_reset
              id: reset
            - return: {{ text: "reset said {{{{ steps.reset.result }}}}" }}
        - name: reset_or_explain
          description: Like reset_demo, but a denial is explained instead of failing.
          inputSchema: {{ type: object }}
          steps:
            - fallback: {{ call: admin_reset }}
              catch: {{ return: {{ text: "not reset ({{{{ error.kind }}}})" }} }}
        - name: too_slow
          description: count_slowly (300 ms) under a 100 ms timeout, explained.
          inputSchema: {{ type: object }}
          steps:
            - fallback: {{ timeout: 100, do: {{ call: count_slowly }} }}
              catch: {{ return: {{ text: "gave up ({{{{ error.kind }}}})" }} }}
        - name: wait_then_echo
          description: Waits 3 s, then echoes; a cancelled call never gets to the echo.
          inputSchema: {{ type: object }}
          steps:
            - delay: 3000
            - call: echo
              arguments: {{ message: after the wait }}
        - name: call_by_name
          description: Calls the tool named in its arguments (policy still decides, per caller).
          inputSchema: {{ type: object, properties: {{ tool: {{ type: string }} }}, required: [tool] }}
          steps:
            - call: "{{{{ args.tool }}}}"
              id: named
              arguments: {{ message: by name }}
"""

PIPE_TOOLS = {"weather_report", "many_cities", "reset_demo", "reset_or_explain", "too_slow", "wait_then_echo",
              "call_by_name"}


def pipeline_config(directory: Path, *, calls_tools: bool = True, backend: str | None = None) -> GatewayConfig:
    """The quickstart plus the `pipe` backend; everyone may call the pipeline tools (not admin_reset)."""
    config = make_config(directory)
    text = config.path.read_text()
    block = backend if backend is not None else PIPE_BACKEND.format(calls_tools=str(calls_tools).lower())
    text = text.replace("\naudit:\n", block.rstrip("\n") + "\naudit:\n", 1)
    text = text.replace("tools: [echo, get_weather, lookup_customer, count_slowly]",
                        "tools: [echo, get_weather, lookup_customer, count_slowly, " + ", ".join(sorted(PIPE_TOOLS)) + "]",
                        1)
    config.path.write_text(text)
    return config


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if not (PLUGIN_DIR / "pipeline.so").exists():
        pytest.fail(f"{PLUGIN_DIR}/pipeline.so is missing: build and sign the pipeline plugin")
    gw = start_gateway(pipeline_config(tmp_path_factory.mktemp("pipeline")))
    try:
        yield gw
    finally:
        gw.stop()


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(TIMEOUT):
            await body()

    anyio.run(bounded)


@asynccontextmanager
async def session(url: str, key: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(20.0)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


def texts(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def children_of(ledger: Path, parent: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The ledger's records of inner calls made while serving the call `parent`."""
    end = time.monotonic() + timeout
    while True:
        found = [ev for ev in (event_of(e) for e in read_jsonl(ledger)) if ev and ev.get("parent") == parent]
        if len(found) >= count or time.monotonic() > end:
            return found
        time.sleep(0.05)


async def all_tool_names(s: ClientSession) -> dict[str, Any]:
    tools: dict[str, Any] = {}
    cursor = None
    for _ in range(50):
        page = await s.list_tools(cursor=cursor) if cursor else await s.list_tools()
        tools.update({t.name: t for t in page.tools})
        cursor = page.next_cursor
        if not cursor:
            return tools
    raise AssertionError("tools/list never ended")


def test_pipeline_tools_are_listed_with_schemas(gateway: Gateway) -> None:
    """TOOL-2/TOOL-3: the pipeline's tools appear next to the mock's, with their input and output schemas."""

    async def body() -> None:
        async with session(gateway.url) as s:
            tools = await all_tool_names(s)
            assert PIPE_TOOLS <= set(tools), sorted(tools)
            report = tools["weather_report"]
            assert report.input_schema["required"] == ["city"]
            assert report.output_schema["required"] == ["line", "temperature_c"]
            assert report.description.startswith("The weather for a city")

    run(body)


def test_pipeline_calls_tools_as_the_caller_and_the_ledger_links_them(gateway: Gateway) -> None:
    """TOOL-5/TOOL-7/TOOL-8: two inner calls, the result built from both; the ledger has the outer record and one
    record per inner call naming it as `parent`, made `via` the pipe backend as the same principal."""

    async def body() -> None:
        async with session(gateway.url) as s:
            result = await s.call_tool("weather_report", {"city": "Lisbon"})
            assert not result.is_error, texts(result)
            assert texts(result) == "Lisbon: sunny"
            assert result.structured_content == {"line": "Lisbon: sunny", "temperature_c": 21}
            cid = result.meta[CORRELATION_KEY]
            outer = wait_for_event(gateway.config.ledger, cid)
            assert outer["type"] == "tools/call" and outer["outcome"]["status"] == "ok"
            inner = children_of(gateway.config.ledger, cid, 2)
            assert len(inner) == 2, inner
            assert outer["tool"] == "weather_report" and outer["backend"] == "pipe"
            assert sorted(ev["tool"] for ev in inner) == ["echo", "get_weather"]
            for ev in inner:
                assert ev["via"] == "pipe"
                assert ev["principal"]["id"] == outer["principal"]["id"]
                assert ev["decision"]["effect"] == "allow"
                assert ev["outcome"]["status"] == "ok"

    run(body)


def test_map_and_filter_over_inner_calls(gateway: Gateway) -> None:
    async def body() -> None:
        async with session(gateway.url) as s:
            result = await s.call_tool("many_cities", {"cities": ["Rome", "Oslo", "Lima"]})
            assert not result.is_error, texts(result)
            warm = result.structured_content["warm"]
            assert [w["city"] for w in warm] == ["Rome", "Oslo", "Lima"]  # the mock is always 21 °C
            assert len(children_of(gateway.config.ledger, result.meta[CORRELATION_KEY], 3)) == 3

    run(body)


def test_a_denied_inner_call_fails_the_pipeline_and_both_records_are_kept(gateway: Gateway) -> None:
    """The anonymous caller may call reset_demo but not admin_reset: the inner call is denied (and recorded as
    denied, with `parent`), the pipeline's result is an error that says so. With the demo key it works."""

    async def body() -> None:
        async with session(gateway.url) as anon:
            result = await anon.call_tool("reset_demo", {})
            assert result.is_error
            assert "denied" in texts(result) and "admin_reset" in texts(result), texts(result)
            assert '"reset"' in texts(result)  # the step's id
            cid = result.meta[CORRELATION_KEY]
            outer = wait_for_event(gateway.config.ledger, cid)
            assert outer["decision"]["effect"] == "allow"
            inner = children_of(gateway.config.ledger, cid, 1)
            assert len(inner) == 1, inner
            assert inner[0]["tool"] == "admin_reset"
            assert inner[0]["decision"]["effect"] == "deny"
            assert inner[0]["via"] == "pipe"

            explained = await anon.call_tool("reset_or_explain", {})
            assert not explained.is_error
            assert texts(explained) == "not reset (denied)"

        async with session(gateway.url, key=DEMO_KEY) as admin:
            result = await admin.call_tool("reset_demo", {})
            assert not result.is_error, texts(result)
            assert texts(result) == "reset said reset"
            inner = children_of(gateway.config.ledger, result.meta[CORRELATION_KEY], 1)
            assert inner and inner[0]["principal"]["id"] == "demo" and inner[0]["decision"]["effect"] == "allow"

    run(body)


def test_bad_arguments_are_refused_before_any_step(gateway: Gateway) -> None:
    async def body() -> None:
        async with session(gateway.url) as s:
            with pytest.raises(MCPError) as bad:
                await s.call_tool("weather_report", {"city": ""})
            assert bad.value.code == -32602
            assert "/city" in bad.value.message
            with pytest.raises(MCPError) as missing:
                await s.call_tool("many_cities", {})
            assert missing.value.code == -32602

    run(body)


def test_without_calls_tools_the_pipeline_says_what_to_set(tmp_path: Path) -> None:
    gw = start_gateway(pipeline_config(tmp_path, calls_tools=False))
    try:
        async def body() -> None:
            async with session(gw.url) as s:
                result = await s.call_tool("weather_report", {"city": "Lisbon"})
                assert result.is_error
                assert "calls_tools: true" in texts(result), texts(result)

        run(body)
    finally:
        gw.stop()


BAD_BACKEND = """
  pipe:
    plugin: pipeline
    calls_tools: true
    config:
      tools:
        - name: broken
          inputSchema: { type: object }
          steps:
            - call: echo
              id: first
            - call: echo
              arguments: { message: "{{ steps.frist.result }}" }
"""


def test_boot_reports_a_bad_reference_at_its_line_and_column(tmp_path: Path) -> None:
    """`mcpg config validate` checks the config's shape against the plugin's schema; the steps themselves are
    checked when the plugin starts, and the kernel places the plugin's JSON pointer at the YAML value."""
    config = pipeline_config(tmp_path, backend=BAD_BACKEND)
    lines = config.path.read_text().splitlines()
    line = next(i for i, l in enumerate(lines) if "steps.frist" in l) + 1
    column = lines[line - 1].index("message:") + len("message: ") + 1
    r = run_mcpg("serve", "--config", config.path, timeout=30)
    assert r.returncode != 0, r.stdout + r.stderr
    pattern = rf"^{re.escape(str(config.path))}:{line}:{column}: error: .*steps\.frist.*no earlier step"
    assert re.search(pattern, r.stderr, re.M), r.stderr


def test_boot_refuses_an_unknown_step_kind_at_its_line(tmp_path: Path) -> None:
    backend = BAD_BACKEND.replace("            - call: echo\n              id: first\n",
                                  "            - cal: echo\n              id: first\n")
    config = pipeline_config(tmp_path, backend=backend)
    lines = config.path.read_text().splitlines()
    line = next(i for i, l in enumerate(lines) if "- cal: echo" in l) + 1
    r = run_mcpg("serve", "--config", config.path, timeout=30)
    assert r.returncode != 0
    assert re.search(rf"{re.escape(str(config.path))}:{line}:\d+: error: .*unknown step kind \"cal\"", r.stderr), r.stderr


def test_the_example_config_serves_its_pipelines(tmp_path: Path) -> None:
    """examples/pipeline/mcpg.yaml as shipped (paths moved to this dist and a free port): its three tools work,
    the weather report's second call comes from the cache, and the anonymous reset is explained."""
    example = (REPO / "examples" / "pipeline" / "mcpg.yaml").read_text()
    port = free_port()
    text = example.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    text = text.replace("../../dist/data/pipeline/", f"{tmp_path}/data/").replace("../../dist/", f"{DIST}/")
    path = tmp_path / "mcpg.yaml"
    path.write_text(text)
    config = GatewayConfig(path=path, port=port, ledger=tmp_path / "data" / "audit.ledger",
                           jsonl=tmp_path / "data" / "audit.jsonl")
    gw = start_gateway(config)
    try:
        async def body() -> None:
            async with session(gw.url) as s:
                first = await s.call_tool("weather_report", {"city": "Rome"})
                assert not first.is_error, texts(first)
                assert first.structured_content == {"line": "Rome: sunny", "temperature_c": 21}
                again = await s.call_tool("weather_report", {"city": "Rome"})
                assert again.structured_content == first.structured_content
                # First call: get_weather and echo; second: echo only (get_weather came from the cache).
                assert len(children_of(config.ledger, first.meta[CORRELATION_KEY], 2)) == 2
                # The outer record is written after its inner calls' records.
                wait_for_event(config.ledger, again.meta[CORRELATION_KEY])
                second = children_of(config.ledger, again.meta[CORRELATION_KEY], 99, timeout=0)
                assert len(second) == 1, second
                warm = await s.call_tool("warm_cities", {"cities": ["A", "B"]})
                assert [w["city"] for w in warm.structured_content["warm"]] == ["A", "B"]
                reset = await s.call_tool("reset_or_explain", {})
                assert texts(reset) == "not reset: denied"

        run(body)
    finally:
        gw.stop()


def test_a_timeout_step_gives_up_on_a_slow_inner_call(gateway: Gateway) -> None:
    async def body() -> None:
        async with session(gateway.url) as s:
            started = time.monotonic()
            result = await s.call_tool("too_slow", {})
            assert not result.is_error, texts(result)
            assert texts(result) == "gave up (timeout)"
            assert time.monotonic() - started < 0.3 + 1.0

    run(body)


def test_cancelling_the_call_stops_the_program(gateway: Gateway) -> None:
    """CANC-1: the client's notifications/cancelled ends the pipeline during its delay: the echo after it is never
    called (no ledger record names the cancelled call as parent)."""
    with RawSession(gateway.url) as s:
        s.initialize()
        done: dict[str, Any] = {}

        def call() -> None:
            r = s.post({"jsonrpc": "2.0", "id": 91, "method": "tools/call",
                        "params": {"name": "wait_then_echo", "arguments": {}}})
            done["status"] = r.status_code

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.5)
        assert s.post({"jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": {"requestId": 91, "reason": "test"}}).status_code == 202
        t.join(timeout=15)
        assert not t.is_alive()
        time.sleep(3.5)  # past the delay: an uncancelled program would have called echo by now
        events = [ev for ev in (event_of(e) for e in read_jsonl(gateway.config.ledger)) if ev]
        outer = [ev for ev in events if ev.get("tool") == "wait_then_echo"]
        assert len(outer) == 1, outer
        assert outer[0]["outcome"]["status"] != "ok", outer[0]
        assert not [ev for ev in events if ev.get("parent") == outer[0]["id"]]


def test_an_unknown_tool_at_run_time_is_a_tool_error_naming_the_step(gateway: Gateway) -> None:
    """Tools named by `call` are resolved when the step runs (the catalog is the kernel's, and may change)."""

    async def body() -> None:
        async with session(gateway.url) as s:
            ok = await s.call_tool("call_by_name", {"tool": "echo"})
            assert not ok.is_error and texts(ok) == "by name"
            # For a caller whose policy allows nothing by that name, the gateway answers as for any denied tool.
            hidden = await s.call_tool("call_by_name", {"tool": "no_such_tool"})
            assert hidden.is_error and "(denied)" in texts(hidden), texts(hidden)
        async with session(gateway.url, key=DEMO_KEY) as admin:  # admins may call any tool: "*"
            missing = await admin.call_tool("call_by_name", {"tool": "no_such_tool"})
            assert missing.is_error
            text = texts(missing)
            assert text.startswith('step "named" (/tools/6/steps/0) failed (call_error): calling "no_such_tool" failed'), text

    run(body)
