"""The official Swift MCP SDK (modelcontextprotocol/swift-sdk 0.12.x) against the gateway over Streamable HTTP.

Tests/Blackbox/SwiftClient is a separate SwiftPM package with one executable, `mcpg-swift-client URL [KEY]`,
that lists tools, calls echo and admin_reset, and prints a JSON summary. It is built here in release mode into
its own `.build` (cached between runs; the first build takes a few minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN_TOOL, DEMO_KEY, PROTOCOL_VERSION, PUBLIC_TOOLS, Gateway, wait_for_event

PACKAGE = Path(__file__).resolve().parent / "SwiftClient"
BUILD_TIMEOUT = 1200
# The first test builds the client inside its setup, which counts against pytest-timeout's per-test limit.
pytestmark = [pytest.mark.swift_client, pytest.mark.timeout(BUILD_TIMEOUT + 120)]


@pytest.fixture(scope="module")
def swift_client() -> Path:
    swift = shutil.which("swift")
    if swift is None:
        pytest.skip("no swift toolchain on PATH")
    started = time.monotonic()
    r = subprocess.run(
        [swift, "build", "-c", "release", "--package-path", str(PACKAGE)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, f"building the Swift client failed:\n{r.stdout}\n{r.stderr}"
    print(f"swift client build: {time.monotonic() - started:.1f}s")
    path = subprocess.run(
        [swift, "build", "-c", "release", "--package-path", str(PACKAGE), "--show-bin-path"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    ).stdout.strip()
    binary = Path(path) / "mcpg-swift-client"
    assert binary.exists(), binary
    return binary


def run_client(binary: Path, url: str, key: str | None = None) -> dict[str, Any]:
    args = [str(binary), url] + ([key] if key else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                       env={**os.environ})
    assert r.returncode == 0, f"mcpg-swift-client failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def test_swift_sdk_client_anonymous(swift_client: Path, gateway: Gateway) -> None:
    """LIFE-2/3 and TOOL-2/5 through the Swift SDK: handshake at 2025-11-25, all public tools over 2 pages
    (page_size 2), echo answered with a correlation id found in the ledger, admin_reset refused with -32003."""
    summary = run_client(swift_client, gateway.url)
    assert summary["protocolVersion"] == PROTOCOL_VERSION
    assert summary["serverName"]
    assert sorted(summary["tools"]) == sorted(PUBLIC_TOOLS)
    assert summary["pages"] == 2
    echo = summary["echo"]
    assert echo["ok"] is True and echo["text"] == "hi from swift" and not echo.get("isError")
    ev = wait_for_event(gateway.config.ledger, echo["correlationId"])
    assert ev["type"] == "tools/call" and ev["tool"] == "echo" and ev["outcome"]["status"] == "ok"
    reset = summary["adminReset"]
    assert reset["ok"] is False and reset["errorCode"] == -32003, reset


def test_swift_sdk_client_with_key(swift_client: Path, gateway: Gateway) -> None:
    """With the demo key (sent by the SDK transport's request modifier) admin_reset is listed and callable."""
    summary = run_client(swift_client, gateway.url, DEMO_KEY)
    assert sorted(summary["tools"]) == sorted(PUBLIC_TOOLS | {ADMIN_TOOL})
    assert summary["echo"]["text"] == "hi from swift"
    reset = summary["adminReset"]
    assert reset["ok"] is True and reset["text"] == "reset", reset
    ev = wait_for_event(gateway.config.ledger, reset["correlationId"])
    assert ev["principal"]["id"] == "demo"


# ---------------------------------------------------------------------------------------------------------------
# The Swift SDK's conformance server (`mcp-everything-server`) as an upstream of the `mcp` backend


@pytest.fixture(scope="module")
def swift_everything_server() -> Path:
    swift = shutil.which("swift")
    if swift is None:
        pytest.skip("no swift toolchain on PATH")
    r = subprocess.run(
        [swift, "build", "-c", "release", "--package-path", str(PACKAGE), "--product", "mcp-everything-server"],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, f"building mcp-everything-server failed:\n{r.stdout}\n{r.stderr}"
    path = subprocess.run(
        [swift, "build", "-c", "release", "--package-path", str(PACKAGE), "--show-bin-path"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    ).stdout.strip()
    binary = Path(path) / "mcp-everything-server"
    assert binary.exists(), binary
    return binary


def test_swift_sdk_server_as_an_upstream(swift_everything_server: Path, tmp_path: Path) -> None:
    """GW-1 with another SDK: the Swift SDK's conformance server behind the `mcp` backend (prefix `swift`),
    used through mcpg by the official Python SDK client: tools, content types, an upstream tool error, resources,
    prompts, and a sampling request relayed to the client."""
    import anyio
    import httpx2
    from mcp import types
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from conftest import free_port, make_config, start_gateway

    port = free_port()
    upstream = subprocess.Popen([str(swift_everything_server), "--port", str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        import socket
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        config = make_config(tmp_path / "gw")
        text = config.path.read_text()
        text = text.replace("\naudit:\n", f"""
  swift:
    plugin: mcp
    prefix: swift
    config: {{ transport: http, url: "http://127.0.0.1:{port}/mcp" }}
audit:
""", 1)
        text = text.replace("tools: [echo, get_weather, lookup_customer, count_slowly]",
                            'tools: [echo, get_weather, lookup_customer, count_slowly, "swift__*"]', 1)
        config.path.write_text(text)
        gw = start_gateway(config)

        async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
            return types.CreateMessageResult(role="assistant", content=types.TextContent(text="sampled by python"),
                                             model="m")

        async def body() -> None:
            async with httpx2.AsyncClient(timeout=httpx2.Timeout(30.0)) as http:
                async with streamable_http_client(gw.url, http_client=http) as (read, write):
                    async with ClientSession(read, write, sampling_callback=sampling) as s:
                        await s.initialize()
                        names: list[str] = []
                        cursor = None
                        while True:
                            page = await s.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
                            names += [t.name for t in page.tools]
                            cursor = page.next_cursor
                            if not cursor:
                                break
                        assert {"swift__add_numbers", "swift__test_simple_text", "swift__test_sampling"} <= set(names)
                        added = await s.call_tool("swift__add_numbers", {"a": 2, "b": 40})
                        assert added.content[0].text == "42"
                        mixed = await s.call_tool("swift__test_multiple_content_types", {})
                        assert [c.type for c in mixed.content] == ["text", "image", "resource"]
                        failed = await s.call_tool("swift__test_error_handling", {})
                        assert failed.is_error  # a tool error stays a result (ERR-7)
                        read = await s.read_resource("test://static-text")
                        assert read.contents[0].text
                        prompt = await s.get_prompt("swift__test_simple_prompt")
                        assert prompt.messages
                        sampled = await s.call_tool("swift__test_sampling", {"prompt": "hello"})
                        assert sampled.content[0].text == "sampled by python"

        try:
            anyio.run(body)
        finally:
            gw.stop()
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
