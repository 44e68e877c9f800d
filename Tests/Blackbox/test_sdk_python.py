"""The official Python MCP SDK (`mcp` on PyPI) against the real gateway, over Streamable HTTP and over stdio.

Covers LIFE-1..4 (handshake through the SDK), TOOL-2/TOOL-5 (list and call), TOOL-7/TOOL-8 (structured output,
validated by the SDK against the tool's outputSchema), PROG-1/PROG-2 (progress through the SDK's callback), the
gateway's policy (-32003, admin_reset only with the demo key) and redaction, STDIO-1..3, and NEXT-12 (the SDK's
default "auto" mode probes the 2026 protocol first and must fall back to the handshake).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import anyio
import httpx2
import pytest
from contextlib import asynccontextmanager

from mcp import Client, types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from conftest import (
    ADMIN_TOOL, CARD, CORRELATION_KEY, DEMO_KEY, MCPG, PROTOCOL_VERSION, PUBLIC_TOOLS, Gateway, make_config,
    wait_for_event,
)

TIMEOUT = 30


def run(body: Callable[[], Awaitable[None]]) -> None:
    """Runs an async test body with a hard deadline."""

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
                yield session


async def all_tools(session: ClientSession) -> list[Any]:
    """Every tool, following the gateway's cursors (the module gateway serves 2 per page)."""
    tools: list[Any] = []
    cursor = None
    for _ in range(50):
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools
    raise AssertionError("tools/list never ended")


def texts(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def test_http_initialize_list_and_call(gateway: Gateway) -> None:
    """LIFE-2/3, TOOL-2, TOOL-5: handshake, full (paginated) tools/list, echo round trip with a correlation id."""

    async def body() -> None:
        async with http_session(gateway.url) as s:
            init = await s.initialize()
            assert init.protocol_version == PROTOCOL_VERSION
            assert init.capabilities.tools is not None
            assert init.server_info.name
            tools = await all_tools(s)
            names = [t.name for t in tools]
            assert len(names) == len(set(names)), f"duplicate tools across pages: {names}"
            assert set(names) == PUBLIC_TOOLS, names
            for t in tools:
                assert t.input_schema["type"] == "object"  # TOOL-3
            result = await s.call_tool("echo", {"message": "hello from python"})
            assert not result.is_error
            assert texts(result) == "hello from python"
            cid = (result.meta or {}).get(CORRELATION_KEY)
            assert isinstance(cid, str) and cid
            ev = wait_for_event(gateway.config.ledger, cid)
            assert ev["type"] == "tools/call" and ev["outcome"]["status"] == "ok"

    run(body)


def test_http_structured_output(gateway: Gateway) -> None:
    """TOOL-7/TOOL-8: get_weather returns structuredContent matching its outputSchema (the SDK validates it)."""

    async def body() -> None:
        async with http_session(gateway.url) as s:
            await s.initialize()
            weather = next(t for t in await all_tools(s) if t.name == "get_weather")
            assert weather.output_schema is not None
            assert set(weather.output_schema["required"]) == {"city", "temperature_c", "conditions"}
            result = await s.call_tool("get_weather", {"city": "Lisbon"})
            assert not result.is_error
            assert result.structured_content == {"city": "Lisbon", "temperature_c": 21, "conditions": "sunny"}

    run(body)


def test_http_admin_tool_needs_demo_key(gateway: Gateway) -> None:
    """Policy: anonymous callers neither see nor may call admin_reset; the demo key (group admins) can."""

    async def body() -> None:
        async with http_session(gateway.url) as anon:
            await anon.initialize()
            assert ADMIN_TOOL not in {t.name for t in await all_tools(anon)}
            with pytest.raises(MCPError) as denied:
                await anon.call_tool(ADMIN_TOOL, {})
            assert denied.value.code == -32003
            assert denied.value.message == "Not permitted"
            assert set((denied.value.data or {}).keys()) == {"correlationId"}
        async with http_session(gateway.url, key=DEMO_KEY) as admin:
            await admin.initialize()
            names = {t.name for t in await all_tools(admin)}
            assert names == PUBLIC_TOOLS | {ADMIN_TOOL}
            result = await admin.call_tool(ADMIN_TOOL, {})
            assert not result.is_error and texts(result) == "reset"
            ev = wait_for_event(gateway.config.ledger, result.meta[CORRELATION_KEY])
            assert ev["principal"]["id"] == "demo"
            assert ev["decision"]["effect"] == "allow"

    run(body)


def test_http_progress_callback(gateway: Gateway) -> None:
    """PROG-1/PROG-2: count_slowly's three progress notifications reach the SDK's callback, increasing."""

    async def body() -> None:
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        async with http_session(gateway.url) as s:
            await s.initialize()
            result = await s.call_tool("count_slowly", {}, progress_callback=on_progress)
            assert texts(result) == "done"
        assert len(seen) == 3, seen
        progress = [p for p, _, _ in seen]
        assert progress == sorted(progress) and len(set(progress)) == 3, seen

    run(body)


def test_http_redaction(gateway: Gateway) -> None:
    """The redact transform removes the card number from lookup_customer's result; the rest survives."""

    async def body() -> None:
        async with http_session(gateway.url) as s:
            await s.initialize()
            result = await s.call_tool("lookup_customer", {"id": "c-42"})
            text = texts(result)
            assert "Customer c-42: Ada Lovelace" in text and "plan gold" in text
            assert CARD not in text and CARD.replace(" ", "") not in text
            assert "[REDACTED:card]" in text  # the quickstart names the pattern `card`; default replacement

    run(body)


def test_http_sdk_auto_mode_picks_2026(gateway: Gateway) -> None:
    """NEXT-2, NEXT-12: the SDK's default client probes with server/discover; mcpg speaks 2026-07-28, so the client
    adopts it (no initialize) and calls work without a session."""

    async def body() -> None:
        async with Client(gateway.url) as client:
            assert client.session.protocol_version == "2026-07-28"
            assert client.session.discover_result is not None
            result = await client.call_tool("echo", {"message": "auto mode"})
            assert texts(result) == "auto mode"

    run(body)


def stdio_params(config: Path, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(command=str(MCPG), args=["serve", "--config", str(config), "--stdio"], env=env)


def test_stdio_list_and_call(tmp_path: Path) -> None:
    """STDIO-1/2: the SDK spawns `mcpg serve --stdio`, lists tools and calls echo; stdout carries only MCP."""
    config = make_config(tmp_path)

    async def body() -> None:
        with open(tmp_path / "stdio.stderr", "w") as errlog:
            async with stdio_client(stdio_params(config.path), errlog=errlog) as (read, write):
                async with ClientSession(read, write) as s:
                    init = await s.initialize()
                    assert init.protocol_version == PROTOCOL_VERSION
                    names = {t.name for t in (await s.list_tools()).tools}
                    assert names == PUBLIC_TOOLS
                    result = await s.call_tool("echo", {"message": "over stdio"})
                    assert texts(result) == "over stdio"
                    cid = result.meta[CORRELATION_KEY]
                    ev = wait_for_event(config.ledger, cid)
                    assert ev["type"] == "tools/call"
                    weather = await s.call_tool("get_weather", {"city": "Oslo"})
                    assert weather.structured_content == {"city": "Oslo", "temperature_c": 21, "conditions": "sunny"}

    run(body)


def test_stdio_api_key_from_environment(tmp_path: Path) -> None:
    """STDIO-4: over stdio the credential comes from MCPG_API_KEY; with the demo key admin_reset is visible."""
    config = make_config(tmp_path)

    async def body() -> None:
        with open(tmp_path / "stdio.stderr", "w") as errlog:
            async with stdio_client(stdio_params(config.path, {"MCPG_API_KEY": DEMO_KEY}), errlog=errlog) as (r, w):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    names = {t.name for t in (await s.list_tools()).tools}
                    assert ADMIN_TOOL in names
                    result = await s.call_tool(ADMIN_TOOL, {})
                    assert texts(result) == "reset"

    run(body)


def test_stdio_sdk_auto_mode(tmp_path: Path) -> None:
    """NEXT-2, NEXT-12 over stdio: the default client's server/discover probe is answered, so it adopts 2026-07-28."""
    config = make_config(tmp_path)

    async def body() -> None:
        async with Client(stdio_params(config.path)) as client:
            assert client.session.protocol_version == "2026-07-28"
            result = await client.call_tool("echo", {"message": "auto over stdio"})
            assert texts(result) == "auto over stdio"

    run(body)


def test_http_prompts_and_resources(gateway: Gateway) -> None:
    """PROMPT-1…4, RES-1…4, RES-8: prompts and resources of the mock backend, listed, fetched and audited."""

    async def body() -> None:
        async with http_session(gateway.url) as s:
            init = await s.initialize()
            assert init.capabilities.prompts is not None and init.capabilities.resources is not None
            prompts = (await s.list_prompts()).prompts
            assert [p.name for p in prompts] == ["summarize"]
            assert prompts[0].arguments[0].name == "text" and prompts[0].arguments[0].required
            got = await s.get_prompt("summarize", {"text": "MCP gateways"})
            assert got.messages[0].content.text == "Summarize in one sentence: MCP gateways"
            ev = wait_for_event(gateway.config.ledger, got.meta[CORRELATION_KEY])
            assert ev["type"] == "prompts/get" and ev["decision"]["effect"] == "allow"
            assert ev["decision"]["plugins"][0]["reasons"] == ["everyone-read"]
            with pytest.raises(MCPError) as missing:
                await s.get_prompt("summarize", {})
            assert missing.value.code == -32602

            resources = (await s.list_resources()).resources
            assert [str(r.uri) for r in resources] == ["mcpg://demo/readme"]
            templates = (await s.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["mcpg://demo/notes/{id}"]
            read = await s.read_resource("mcpg://demo/readme")
            assert read.contents[0].text == "The mcpg quickstart gateway."
            note = await s.read_resource("mcpg://demo/notes/42")
            assert note.contents[0].text == "A note at mcpg://demo/notes/42."
            with pytest.raises(MCPError) as unknown:
                await s.read_resource("mcpg://elsewhere/x")
            assert unknown.value.code == -32002

    run(body)
