"""The official Python MCP SDK client as the backend tests use it: one initialized session over Streamable HTTP,
a bounded run of an async test body, the text of a tool result, and every listed tool by name."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio
import httpx2
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


@asynccontextmanager
async def session(url: str, key: str | None = None, timeout: float = 30.0) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(timeout)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


def run(body: Any, seconds: float = 60) -> None:
    """Runs the async `body`, failing it after `seconds`."""
    async def bounded() -> None:
        with anyio.fail_after(seconds):
            await body()

    anyio.run(bounded)


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def tools_by_name(s: ClientSession) -> dict[str, Any]:
    """Every tool of the catalog, following `nextCursor` through all pages."""
    out: dict[str, Any] = {}
    cursor = None
    while True:
        page = await s.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        out.update({t.name: t for t in page.tools})
        cursor = page.next_cursor
        if not cursor:
            return out
