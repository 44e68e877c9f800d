"""The official Python MCP SDK client as the backend tests use it: one initialized session over Streamable HTTP,
a bounded run of an async test body, and the text of a tool result."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio
import httpx2
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
