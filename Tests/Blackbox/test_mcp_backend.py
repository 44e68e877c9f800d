"""Upstream MCP servers behind mcpg through the `mcp` backend, end to end with the official Python SDK client.

Two instances of Tests/Upstreams/everything.py (the official Python SDK's server) serve the same tool names: one
over stdio (prefix `s`, named "one", resources `mem://…`), one over Streamable HTTP (prefix `h`, named "two",
resources `two://…`). Everything a client does reaches the right upstream and comes back: tools, structured
output, prompts, resources, completion, progress, logging, sampling, elicitation, roots, subscriptions,
list_changed, cancellation; a crashed upstream fails its call cleanly, the rest keeps working, and it comes back.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import REPO, Gateway, RawSession, make_config, start_gateway

PYTHON = REPO / ".venv" / "bin" / "python"
EVERYTHING = REPO / "Tests" / "Upstreams" / "everything.py"


def start_http_upstream(*extra: str) -> tuple[subprocess.Popen[str], int]:
    p = subprocess.Popen([str(PYTHON), str(EVERYTHING), "http", *extra], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline() if p.stdout else ""
    assert line.startswith("PORT "), f"upstream did not start: {line!r}"
    return p, int(line.split()[1])


BACKENDS = """
  up_stdio:
    plugin: mcp
    prefix: s
    grace_s: 60
    config:
      transport: stdio
      command: [{python}, {script}, stdio, --name, one]
      env_allow: [PATH]
      env: {{ MCPG_UPSTREAM_SECRET: "given-to-the-upstream" }}
      restart: {{ initial_ms: 200, max_ms: 1000 }}
  up_http:
    plugin: mcp
    prefix: h
    config:
      transport: http
      url: http://127.0.0.1:{port}/mcp
      headers: {{ X-Upstream-Tag: from-mcpg }}
"""


@pytest.fixture(scope="module")
def federated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    upstream, port = start_http_upstream("--name", "two", "--scheme", "two")
    config = make_config(tmp_path_factory.mktemp("federated"))
    text = config.path.read_text()
    text = text.replace("\naudit:\n", BACKENDS.format(python=PYTHON, script=EVERYTHING, port=port).rstrip("\n")
                        + "\naudit:\n", 1)
    # Everyone may use the upstreams' tools (and, by the quickstart's everyone-read rule, their prompts and resources).
    text = text.replace("tools: [echo, get_weather, lookup_customer, count_slowly]",
                        'tools: [echo, get_weather, lookup_customer, count_slowly, "s__*", "h__*"]', 1)
    config.path.write_text(text)
    gw = start_gateway(config)
    try:
        yield gw
    finally:
        gw.stop()
        upstream.terminate()
        upstream.wait(timeout=10)


@asynccontextmanager
async def session(url: str, **callbacks: Any) -> AsyncIterator[ClientSession]:
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30.0)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, **callbacks) as s:
                await s.initialize()
                yield s


async def all_names(s: ClientSession) -> list[str]:
    names: list[str] = []
    cursor = None
    while True:
        page = await s.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        names += [t.name for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            return names


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_two_upstreams_under_prefixes(federated: Gateway) -> None:
    """GW-3, TOOL-2/5/7/8/9, PAGE-1: both upstreams' tools (several upstream pages each) in one paginated list."""

    async def body() -> None:
        async with session(federated.url) as s:
            names = await all_names(s)
            assert len(names) == len(set(names))
            for prefix in ("s", "h"):
                assert {f"{prefix}__echo", f"{prefix}__add", f"{prefix}__filler_11"} <= set(names)
            assert text_of(await s.call_tool("s__echo", {"message": "x"})) == "one: x"
            assert text_of(await s.call_tool("h__echo", {"message": "x"})) == "two: x"
            added = await s.call_tool("h__add", {"a": 2, "b": 3})
            assert added.structured_content == {"sum": 5}
            listing = await s.list_tools()
            while "s__decorated" not in {t.name for t in listing.tools} and listing.next_cursor:
                listing = await s.list_tools(params=types.PaginatedRequestParams(cursor=listing.next_cursor))
            decorated = next(t for t in listing.tools if t.name == "s__decorated")
            assert decorated.annotations is not None and decorated.icons, decorated
            # The upstream's own configured environment and static headers arrived; the gateway's did not leak.
            env = (await s.call_tool("s__env", {})).structured_content["env"]
            assert env.get("MCPG_UPSTREAM_SECRET") == "given-to-the-upstream"
            assert "MCPG_DIST" not in env and "HOME" not in env
            headers = (await s.call_tool("h__headers", {})).structured_content["headers"]
            assert headers.get("x-upstream-tag") == "from-mcpg"
            assert "authorization" not in headers  # the client's credentials never go upstream (AUTH-8)

    anyio.run(body)


def test_prompts_resources_completion(federated: Gateway) -> None:
    """PROMPT-2/3, RES-2/3/4, COMP-1 through the gateway, each to its own upstream."""

    async def body() -> None:
        async with session(federated.url) as s:
            prompts = {p.name for p in (await s.list_prompts()).prompts}
            assert {"s__greet", "h__greet", "s__plain"} <= prompts
            got = await s.get_prompt("h__greet", {"name": "Ada", "style": "formal"})
            assert "Ada" in json.dumps(got.model_dump(mode="json"))
            uris = set()
            page = await s.list_resources()
            uris |= {str(r.uri) for r in page.resources}
            while page.next_cursor:
                page = await s.list_resources(params=types.PaginatedRequestParams(cursor=page.next_cursor))
                uris |= {str(r.uri) for r in page.resources}
            assert {"mem://hello", "two://hello"} <= uris
            two = await s.read_resource("two://hello")
            assert two.contents[0].text == "Hello, world"
            item = await s.read_resource("two://items/7")
            assert item.contents[0].text == "item 7"
            done = await s.complete(types.PromptReference(type="ref/prompt", name="s__greet"),
                                    {"name": "style", "value": "f"})
            assert done.completion.values == ["formal", "friendly", "funny"]

    anyio.run(body)


def test_requests_from_upstreams_reach_the_calling_client(federated: Gateway) -> None:
    """SAMP-1, ELIC-1/2, ROOTS-1, GW-5/6: the upstream's request goes to the client whose call caused it; the
    client's answer goes back to that upstream."""

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        prompt = params.messages[0].content.text
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text=f"echo of {prompt}"),
                                         model="test-model")

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Grace"})

    async def roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///work", name="work")])

    async def body() -> None:
        async with session(federated.url, sampling_callback=sampling, elicitation_callback=elicitation,
                           list_roots_callback=roots) as s:
            assert text_of(await s.call_tool("s__sample", {"prompt": "ping"})) == "sampled: echo of ping"
            elicited = await s.call_tool("h__elicit", {"message": "Name?"})
            assert elicited.structured_content == {"action": "accept", "content": {"name": "Grace"}}
            listed = await s.call_tool("h__roots", {})
            assert listed.structured_content["roots"] == [{"uri": "file:///work", "name": "work"}]
        # A client that declared no sampling: the upstream is told so and the call fails as a tool error or error.
        async with session(federated.url) as plain:
            try:
                result = await plain.call_tool("s__sample", {"prompt": "ping"})
                assert result.is_error
            except Exception as e:  # an error response is as good: the request never reached a client
                assert "sampling" in str(e).lower() or "-32601" in str(e) or "method" in str(e).lower()

    anyio.run(body)


def test_progress_logging_and_list_changed(federated: Gateway) -> None:
    """PROG-1/2 with the client's own token, LOG-1 (setLevel filters), TOOL-1 (an upstream's new tool appears and
    the client is told)."""
    logs: list[Any] = []
    notifications: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ServerNotification) or hasattr(message, "root"):
            method = getattr(getattr(message, "root", message), "method", None)
            if method:
                notifications.append(method)

    async def body() -> None:
        async with session(federated.url, logging_callback=on_log, message_handler=on_message) as s:
            progress: list[float] = []

            async def on_progress(p: float, total: float | None, message: str | None) -> None:
                progress.append(p)

            done = await s.call_tool("h__slow", {"steps": 3, "delay_ms": 50}, progress_callback=on_progress)
            assert text_of(done) == "done after 3 steps" and progress == [1, 2, 3]
            await s.set_logging_level("warning")
            # Over HTTP the upstream's log message rides the call's stream, so it is the call's (on stdio it is
            # not tied to a call and goes to the gateway's log).
            await s.call_tool("h__log", {"level": "info", "message": "quiet"})
            await s.call_tool("h__log", {"level": "error", "message": "loud"})
            await anyio.sleep(0.3)
            assert [str(l.data) for l in logs] == ["loud"]

            await s.call_tool("h__add_tool", {"name": "fresh"})
            for _ in range(50):
                if "h__fresh" in await all_names(s):
                    break
                await anyio.sleep(0.1)
            assert "h__fresh" in await all_names(s)
            assert "notifications/tools/list_changed" in notifications

    anyio.run(body)


def test_resource_subscription_through_the_gateway(federated: Gateway) -> None:
    """RES-6: subscribe through the gateway; the upstream's updated notification reaches the subscriber."""
    updated: list[str] = []

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/resources/updated":
            updated.append(str(root.params.uri))

    async def body() -> None:
        async with session(federated.url, message_handler=on_message) as s:
            await s.subscribe_resource("two://counter")
            await s.call_tool("h__touch", {"uri": "two://counter"})
            for _ in range(50):
                if updated:
                    break
                await anyio.sleep(0.1)
            assert updated == ["two://counter"]

    anyio.run(body)


def test_cancellation_reaches_the_upstream(federated: Gateway) -> None:
    """CANC-1 across both legs: the client's notifications/cancelled stops the upstream's work."""
    with RawSession(federated.url) as s:
        s.initialize()
        result: dict[str, Any] = {}

        def call() -> None:
            r = s.post({"jsonrpc": "2.0", "id": 77, "method": "tools/call",
                        "params": {"name": "h__wait_for_cancel", "arguments": {}}})
            result["status"] = r.status_code

        t = threading.Thread(target=call)
        t.start()
        time.sleep(1.0)
        assert s.post({"jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": {"requestId": 77, "reason": "test"}}).status_code == 202
        t.join(timeout=15)
        assert not t.is_alive()
        for _ in range(50):
            cancelled = s.call("h__cancellations")["result"]["structuredContent"]["cancelled"]
            if cancelled:
                break
            time.sleep(0.1)
        assert cancelled, "the upstream never saw the cancellation"


def test_a_crashed_upstream_fails_cleanly_and_comes_back(federated: Gateway) -> None:
    """One dead upstream never breaks the session or the rest of the catalog; it is restarted."""
    with RawSession(federated.url) as s:
        s.initialize()
        crashed = s.call("s__crash")
        assert "error" in crashed and crashed["error"]["code"] == -32004, crashed
        # The other upstream and the session are fine.
        assert s.call("h__echo", {"message": "still"})["result"]["content"][0]["text"] == "two: still"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = s.call("s__echo", {"message": "back"})
            if "result" in r:
                assert r["result"]["content"][0]["text"] == "one: back"
                break
            time.sleep(0.3)
        else:
            pytest.fail("the stdio upstream did not come back")


def test_a_2026_client_answers_an_upstream_request_by_retrying(federated: Gateway) -> None:
    """NEXT-6 end to end: a 2026-07-28 client cannot be sent requests; the upstream's sampling request comes back
    as input_required, the SDK fulfils it and retries, and the same upstream call completes."""

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text="from a 2026 client"),
                                         model="m")

    async def body() -> None:
        async with Client(federated.url, mode="2026-07-28", sampling_callback=sampling) as client:
            result = await client.call_tool("s__sample", {"prompt": "hi"})
            assert text_of(result) == "sampled: from a 2026 client"

    anyio.run(body)
