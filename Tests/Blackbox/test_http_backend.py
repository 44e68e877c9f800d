"""The `http` backend end to end: an HTTP API (Tests/Upstreams/http_api.py) behind mcpg, used through the official
Python MCP SDK client.

Covers TOOL-2/TOOL-3 (listed tools with generated input schemas), TOOL-5 (calls), TOOL-7/TOOL-8 (structured output
from a JSON answer, validated by the SDK against the outputSchema), TOOL-11 (arguments checked before the request;
path arguments stay in their segment) and execution errors (non-2xx answers as isError results, no secret in them).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from conftest import DIST, REPO, Gateway, GatewayConfig, free_port, make_config, start_gateway
from sdkclient import session, text_of, tools_by_name

PYTHON = REPO / ".venv" / "bin" / "python"
API = REPO / "Tests" / "Upstreams" / "http_api.py"
EXAMPLE = REPO / "examples" / "http" / "mcpg.yaml"

BACKEND = """
  api:
    plugin: http
    prefix: a
    config:
      base_url: http://127.0.0.1:{port}
      timeout_ms: 2000
      retries: 2
      retry_backoff_ms: 20
      auth: {{ type: bearer, token_env: MCPG_TEST_API_TOKEN }}
      tools:
        - name: user
          description: One user by id.
          url: /users/{{id}}
          params: {{ id: {{ type: string, minLength: 1 }} }}
          outputSchema:
            type: object
            properties: {{ id: {{ type: string }}, name: {{ type: string }} }}
            required: [id, name]
        - name: echo
          method: POST
          url: /echo/{{kind}}
          query: {{ q: "{{term}}" }}
          params: {{ count: {{ type: integer }} }}
          required: [term]
        - name: secured
          url: /auth/bearer
        - name: leaky
          url: /status/{{code}}
        - name: flaky
          url: /flaky/{{key}}
          query: {{ fail: "2" }}
"""


def run(body: Any) -> None:
    async def bounded() -> None:
        with anyio.fail_after(30):
            await body()

    anyio.run(bounded)


def start_api() -> tuple[subprocess.Popen[str], int]:
    api = subprocess.Popen([str(PYTHON), str(API)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = api.stdout.readline() if api.stdout else ""
    assert line.strip().isdigit(), f"http_api.py did not start: {line!r}"
    return api, int(line)


@pytest.fixture(scope="module")
def api_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    api, api_port = start_api()
    config = make_config(tmp_path_factory.mktemp("http-backend"))
    text = config.path.read_text()
    text = text.replace("\naudit:\n", BACKEND.format(port=api_port).rstrip("\n") + "\naudit:\n", 1)
    text = text.replace("tools: [echo, get_weather, lookup_customer, count_slowly]",
                        'tools: [echo, get_weather, lookup_customer, count_slowly, "a__*"]', 1)
    config.path.write_text(text)
    gw = start_gateway(config, env={"MCPG_TEST_API_TOKEN": "bearer-secret-token"})
    try:
        yield gw
    finally:
        gw.stop()
        api.terminate()
        api.wait(timeout=10)
        log = gw.stderr_path.read_text() if gw.stderr_path.exists() else ""
        assert "bearer-secret-token" not in log


def test_tools_are_listed_with_generated_schemas(api_gateway: Gateway) -> None:
    """TOOL-2, TOOL-3: the configured tools, with input schemas from the URL placeholders and params."""

    async def body() -> None:
        async with session(api_gateway.url) as s:
            tools = await tools_by_name(s)
            user = tools["a__user"]
            assert user.description == "One user by id."
            assert user.input_schema["required"] == ["id"]
            assert user.input_schema["properties"]["id"] == {"type": "string", "minLength": 1}
            assert user.output_schema["required"] == ["id", "name"]
            echo = tools["a__echo"]
            assert set(echo.input_schema["properties"]) == {"kind", "term", "count"}
            assert echo.input_schema["required"] == ["kind", "term"]
            assert echo.input_schema["additionalProperties"] is False

    run(body)


def test_calls_map_arguments_and_answers(api_gateway: Gateway) -> None:
    """TOOL-5, TOOL-7, TOOL-8, TOOL-11: structured output, argument mapping, path arguments kept in their segment."""

    async def body() -> None:
        async with session(api_gateway.url) as s:
            user = await s.call_tool("a__user", {"id": "42"})
            assert not user.is_error
            assert user.structured_content == {"id": "42", "name": "user-42", "tags": ["a", "b"]}
            echoed = await s.call_tool("a__echo", {"kind": "../admin", "term": "a b", "count": 3})
            assert not echoed.is_error, text_of(echoed)
            answer = json.loads(text_of(echoed))
            assert answer["method"] == "POST"
            assert answer["path"] == "/echo/..%2Fadmin"
            assert answer["args"] == {"q": ["a b"]}
            assert answer["json"] == {"count": 3}
            assert answer["headers"]["authorization"] == "Bearer bearer-secret-token"
            secured = await s.call_tool("a__secured", {})
            assert json.loads(text_of(secured)) == {"ok": True, "kind": "bearer"}
            flaky = await s.call_tool("a__flaky", {"key": "sdk"})
            assert json.loads(text_of(flaky)) == {"attempts": 3}

    run(body)


def test_trace_context_reaches_the_api_as_headers(api_gateway: Gateway) -> None:
    """W3C trace context: the API sees the caller's trace with the gateway's span as parent, and the tracestate."""
    trace, client_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    seen: dict[str, Any] = {}

    async def body() -> None:
        async with session(api_gateway.url) as s:
            r = await s.call_tool("a__echo", {"kind": "t", "term": "x"},
                                  meta={"traceparent": f"00-{trace}-{client_span}-01", "tracestate": "v=1"})
            assert not r.is_error, text_of(r)
            seen.update(json.loads(text_of(r))["headers"])

    run(body)
    version, trace_id, parent, flags = seen["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", trace, "01")
    assert len(parent) == 16 and parent != client_span, "the API's parent is the gateway's span"
    assert seen["tracestate"] == "v=1"


def test_failures_are_tool_errors_or_invalid_params(api_gateway: Gateway) -> None:
    """Execution errors are isError results without secrets; arguments that break the schema are -32602."""

    async def body() -> None:
        async with session(api_gateway.url) as s:
            leaky = await s.call_tool("a__leaky", {"code": "500"})
            assert leaky.is_error
            assert text_of(leaky).startswith("HTTP 500")
            assert "bearer-secret-token" not in text_of(leaky)
            with pytest.raises(MCPError) as bad:
                await s.call_tool("a__echo", {"kind": "x"})
            assert bad.value.error.code == -32602
            assert "term" in bad.value.error.message
            with pytest.raises(MCPError) as wrong:
                await s.call_tool("a__echo", {"kind": "x", "term": "t", "count": "three"})
            assert wrong.value.error.code == -32602

    run(body)


def test_example_config_serves_the_sample_api(tmp_path: Path) -> None:
    """examples/http/mcpg.yaml works as written (ports and dist paths moved into the test's own)."""
    api, api_port = start_api()
    port = free_port()
    text = EXAMPLE.read_text()
    text = text.replace('listen: "127.0.0.1:8082"', f'listen: "127.0.0.1:{port}"')
    text = text.replace("127.0.0.1:8091", f"127.0.0.1:{api_port}")
    text = text.replace("../../dist/data/http-example/", f"{tmp_path}/data/")
    text = text.replace("../../dist/", f"{DIST}/")
    path = tmp_path / "mcpg.yaml"
    path.write_text(text)
    config = GatewayConfig(path=path, port=port, ledger=tmp_path / "data" / "audit.ledger",
                           jsonl=tmp_path / "data" / "audit.jsonl")
    gw = start_gateway(config, env={"MCPG_EXAMPLE_API_TOKEN": "bearer-secret-token"})

    async def body() -> None:
        async with session(gw.url) as s:
            tools = await tools_by_name(s)
            assert set(tools) == {"api__get_user", "api__user_name", "api__search", "api__whoami"}
            user = await s.call_tool("api__get_user", {"id": "7"})
            assert user.structured_content == {"id": "7", "name": "user-7", "tags": ["a", "b"]}
            assert text_of(await s.call_tool("api__user_name", {"id": "7"})) == "user-7"
            search = json.loads(text_of(await s.call_tool("api__search", {"term": "x", "tags": ["p", "q"], "limit": 5})))
            assert search["args"] == {"q": ["x"], "tag": ["p", "q"]}
            assert search["json"] == {"limit": 5}
            assert search["headers"]["x-request-source"] == "mcpg-example"
            assert json.loads(text_of(await s.call_tool("api__whoami", {}))) == {"ok": True, "kind": "bearer"}

    try:
        run(body)
    finally:
        gw.stop()
        api.terminate()
        api.wait(timeout=10)
