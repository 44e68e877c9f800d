"""The `graphql` backend end to end: examples/graphql/mcpg.yaml in front of Tests/Upstreams/graphql_api.py (a
graphql-core server), used through the official Python MCP SDK client.

Covers TOOL-2/TOOL-3 (operations and introspected fields as tools with input schemas), TOOL-5, TOOL-7 (`data` as
structuredContent), TOOL-11 (variables validated before the request: -32602) and GraphQL `errors` as isError results.
"""

from __future__ import annotations

from typing import Iterator

import pytest
from mcp.shared.exceptions import MCPError

from conftest import REPO, Gateway, example_with_upstream
from sdkclient import run, session, text_of, tools_by_name

API = REPO / "Tests" / "Upstreams" / "graphql_api.py"
EXAMPLE = REPO / "examples" / "graphql" / "mcpg.yaml"
TOKEN = "gql-example-token"


@pytest.fixture(scope="module")
def graphql_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with example_with_upstream(EXAMPLE, tmp_path_factory.mktemp("graphql-backend"), API, ["--token", TOKEN],
                               {"127.0.0.1:8092": "127.0.0.1:{port}"},
                               env={"MCPG_EXAMPLE_GRAPHQL_TOKEN": TOKEN}) as gw:
        yield gw


def test_operations_and_introspected_fields_are_tools(graphql_gateway: Gateway) -> None:
    """TOOL-2, TOOL-3: configured operations and one tool per Query/Mutation field, with input schemas."""

    async def body() -> None:
        async with session(graphql_gateway.url) as s:
            tools = await tools_by_name(s)
            assert {"lib__book", "lib__add_book", "gen__book", "gen__books", "gen__addBook"} <= set(tools)
            assert "gen__hello" not in tools
            assert tools["lib__book"].input_schema["required"] == ["id"]
            assert tools["gen__books"].input_schema["properties"]["genre"]["enum"] == ["FICTION", "SCIENCE"]
            assert tools["gen__book"].annotations.read_only_hint is True

    run(body)


def test_calls_return_data_and_errors(graphql_gateway: Gateway) -> None:
    """TOOL-5, TOOL-7: `data` is structuredContent; GraphQL `errors` are isError; bad variables are -32602."""

    async def body() -> None:
        async with session(graphql_gateway.url) as s:
            book = await s.call_tool("lib__book", {"id": "2"})
            assert not book.is_error, text_of(book)
            assert book.structured_content["book"]["title"] == "Cosmos"
            assert book.structured_content["book"]["author"] == {"name": "Ada"}
            added = await s.call_tool("gen__addBook", {"input": {"title": "Ubik", "genre": "FICTION"}})
            assert added.structured_content["addBook"]["title"] == "Ubik"
            listed = await s.call_tool("gen__books", {"genre": "FICTION"})
            assert "Ubik" in [b["title"] for b in listed.structured_content["books"]]
            missing = await s.call_tool("lib__book", {"id": "404"})
            assert missing.is_error
            assert text_of(missing) == "GraphQL errors: no book with id 404 (at book)"
            with pytest.raises(MCPError) as bad:
                await s.call_tool("lib__add_book", {"input": {"title": "X", "genre": "POETRY"}})
            assert bad.value.error.code == -32602

    run(body)
