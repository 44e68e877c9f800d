"""The 2026-07-28 protocol (mcp-spec.md NEXT-*) on the same endpoint as 2025-11-25, over raw HTTP and the official
Python SDK client in its 2026-07-28 mode, next to a handshake-era session on the same gateway."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
from mcp import Client

from conftest import (
    DEMO_KEY,
    PROTOCOL_VERSION,
    PUBLIC_TOOLS,
    Gateway,
    RawSession,
    sse_messages,
)

MODERN = "2026-07-28"
CLIENT_INFO = {"name": "mcpg-blackbox-modern", "version": "1.0"}


def envelope(extra: dict[str, Any] | None = None, *, version: str = MODERN) -> dict[str, Any]:
    meta = {"io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": CLIENT_INFO}
    meta.update(extra or {})
    return meta


def modern_post(url: str, method: str, params: dict[str, Any] | None = None, *, id: Any = 1,
                headers: dict[str, str] | None = None, meta: dict[str, Any] | None = None,
                key: str | None = None) -> httpx.Response:
    """One self-contained 2026-07-28 request: envelope in `_meta`, routing headers that match it."""
    p = dict(params or {})
    p["_meta"] = meta if meta is not None else envelope()
    h = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
         "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if method in ("tools/call", "prompts/get"):
        h["Mcp-Name"] = p.get("name", "")
    if method == "resources/read":
        h["Mcp-Name"] = p.get("uri", "")
    if key:
        h["Authorization"] = f"Bearer {key}"
    h.update(headers or {})
    return httpx.post(url, content=json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": p}),
                      headers=h, timeout=10)


def tool_names(url: str, key: str | None = None) -> set[str]:
    """Every tool name, following the gateway's cursors (PAGE-1)."""
    names: set[str] = set()
    cursor = None
    while True:
        result = modern_post(url, "tools/list", {"cursor": cursor} if cursor else {}, key=key).json()["result"]
        assert result["resultType"] == "complete" and result["cacheScope"] == "private"
        names |= {t["name"] for t in result["tools"]}
        cursor = result.get("nextCursor")
        if not cursor:
            return names


def body_of(r: httpx.Response) -> dict[str, Any]:
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        return [m for m in sse_messages(r.text) if "method" not in m][-1]
    return r.json()


def test_discover_and_results_carry_the_2026_fields(gateway: Gateway) -> None:
    """NEXT-2, NEXT-7, NEXT-10: server/discover answers without a session; results say resultType, who answered,
    and (lists, reads, discover) how long they may be cached."""
    r = modern_post(gateway.url, "server/discover")
    assert r.status_code == 200, r.text
    assert "mcp-session-id" not in r.headers
    result = r.json()["result"]
    assert MODERN in result["supportedVersions"] and PROTOCOL_VERSION in result["supportedVersions"]
    assert "tools" in result["capabilities"] and "logging" not in result["capabilities"]
    assert result["resultType"] == "complete"
    assert result["ttlMs"] == 0 and result["cacheScope"] == "private"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcpg"

    assert tool_names(gateway.url) == PUBLIC_TOOLS
    call = body_of(modern_post(gateway.url, "tools/call", {"name": "echo", "arguments": {"message": "m"}}))
    assert call["result"]["content"][0]["text"] == "m"
    assert call["result"]["resultType"] == "complete"
    assert "ttlMs" not in call["result"]


def test_the_header_rungs(gateway: Gateway) -> None:
    """NEXT-9, NEXT-11: routing headers must match the body (400, -32020); unsupported versions are -32022 with the
    supported list; unknown methods are 404 -32601; a missing envelope is -32602."""
    mismatch = modern_post(gateway.url, "tools/call", {"name": "echo", "arguments": {"message": "x"}},
                           headers={"Mcp-Name": "get_weather"})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == -32020
    wrong_method = modern_post(gateway.url, "tools/list", headers={"Mcp-Method": "prompts/list"})
    assert wrong_method.status_code == 400 and wrong_method.json()["error"]["code"] == -32020
    wrong_version = modern_post(gateway.url, "tools/list", headers={"MCP-Protocol-Version": "2099-01-01"},
                                meta=envelope(version="2099-01-01"))
    assert wrong_version.status_code == 400
    err = wrong_version.json()["error"]
    assert err["code"] == -32022 and err["data"]["supported"] == [MODERN] and err["data"]["requested"] == "2099-01-01"
    unknown = modern_post(gateway.url, "tools/frobnicate")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == -32601
    # Handshake-era methods are gone in this protocol (NEXT-5).
    assert modern_post(gateway.url, "ping").status_code == 404
    no_envelope = modern_post(gateway.url, "tools/list", meta={"io.modelcontextprotocol/protocolVersion": MODERN})
    assert no_envelope.status_code == 400 and no_envelope.json()["error"]["code"] == -32602
    # Resource not found is -32602 in this protocol (NEXT-11).
    missing = modern_post(gateway.url, "resources/read", {"uri": "mcpg://demo/missing"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == -32602
    # Non-ASCII names travel base64-encoded in Mcp-Name (NEXT-9).
    encoded = modern_post(gateway.url, "tools/call", {"name": "échø", "arguments": {}},
                          headers={"Mcp-Name": "=?base64?w6ljaMO4?="})
    # Not a header mismatch: the call reaches policy, which denies a tool it does not allow (-32003).
    assert encoded.json()["error"]["code"] == -32003
    garbled = modern_post(gateway.url, "tools/call", {"name": "échø", "arguments": {}},
                          headers={"Mcp-Name": "=?base64?w6ljaMO5?="})
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == -32020
    # A notification is acknowledged and dropped.
    n = httpx.post(gateway.url, content=json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                                     "params": {"requestId": 1}}),
                   headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                            "MCP-Protocol-Version": MODERN})
    assert n.status_code == 202


def test_identity_and_policy_apply_per_request(gateway: Gateway) -> None:
    """SEC-3 without sessions: every request is authenticated on its own; the demo key sees the admin tool."""
    anon = tool_names(gateway.url)
    admin = tool_names(gateway.url, key=DEMO_KEY)
    assert "admin_reset" in admin and "admin_reset" not in anon
    denied = modern_post(gateway.url, "tools/call", {"name": "admin_reset", "arguments": {}})
    assert denied.json()["error"]["code"] == -32003


def test_progress_streams_on_the_request(gateway: Gateway) -> None:
    """PROG-1 in the 2026-07-28 protocol: progress arrives on the request's own SSE stream, then the result."""
    r = modern_post(gateway.url, "tools/call", {"name": "count_slowly", "arguments": {"to": 3}},
                    meta=envelope({"progressToken": "p1"}))
    assert r.status_code == 200, r.text
    messages = sse_messages(r.text) if r.headers["content-type"].startswith("text/event-stream") else [r.json()]
    progress = [m for m in messages if m.get("method") == "notifications/progress"]
    assert progress and all(m["params"]["progressToken"] == "p1" for m in progress)
    assert messages[-1]["result"]["resultType"] == "complete"


def test_subscriptions_listen_acknowledges_and_ends_with_the_client(gateway: Gateway) -> None:
    """NEXT-4: subscriptions/listen opens a stream whose first message acknowledges what will be sent, tagged with
    the request id; closing it ends the subscription."""
    body = {"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
            "params": {"notifications": {"toolsListChanged": True, "resourceSubscriptions": ["mcpg://demo/readme"]},
                       "_meta": envelope()}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": MODERN, "Mcp-Method": "subscriptions/listen"}
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", gateway.url, content=json.dumps(body), headers=headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            buf = ""
            for chunk in r.iter_text():
                buf += chunk
                if "\n\n" in buf:
                    break
            first = sse_messages(buf)[0]
            assert first["method"] == "notifications/subscriptions/acknowledged"
            assert first["params"]["notifications"] == {"toolsListChanged": True,
                                                        "resourceSubscriptions": ["mcpg://demo/readme"]}
            assert first["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"
    # The gateway still serves after the listener went away.
    assert modern_post(gateway.url, "tools/list").status_code == 200


def test_sdk_client_in_2026_mode_next_to_a_handshake_session(gateway: Gateway) -> None:
    """NEXT-12: a 2026-07-28 client and a 2025-11-25 session use the same gateway at the same time."""
    with RawSession(gateway.url) as legacy:
        legacy.initialize()
        assert legacy.protocol_version == PROTOCOL_VERSION

        async def body() -> None:
            async with Client(gateway.url, mode=MODERN) as client:
                assert client.session.protocol_version == MODERN
                names: set[str] = set()
                page = await client.list_tools()
                names |= {t.name for t in page.tools}
                while page.next_cursor:
                    page = await client.list_tools(cursor=page.next_cursor)
                    names |= {t.name for t in page.tools}
                assert names == PUBLIC_TOOLS
                result = await client.call_tool("get_weather", {"city": "Oslo"})
                assert result.structured_content["city"] == "Oslo"
                prompts = await client.list_prompts()
                assert [p.name for p in prompts.prompts] == ["summarize"]
                read = await client.read_resource("mcpg://demo/readme")
                assert str(read.contents[0].uri) == "mcpg://demo/readme"

        anyio.run(body)
        # The handshake session is unaffected.
        assert legacy.call("echo", {"message": "still here"})["result"]["content"][0]["text"] == "still here"
