"""The `openapi` backend end to end: examples/openapi/mcpg.yaml (the Petstore and Airflow's REST API, real documents
from Tests/Fixtures/openapi) in front of Tests/Upstreams/openapi_api.py, used through the official Python MCP SDK.

Covers TOOL-2/TOOL-3 (operations as tools, parameters and request bodies as input schemas), TOOL-5, TOOL-7/8
(response schemas as outputSchema, answers as structuredContent), TOOL-11 (arguments checked before the request:
-32602), policy on generated tools, and every call in the ledger.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from mcp.shared.exceptions import MCPError

from conftest import REPO, Gateway, event_of, example_with_upstream, read_jsonl
from sdkclient import run, session, text_of, tools_by_name

API = REPO / "Tests" / "Upstreams" / "openapi_api.py"
EXAMPLE = REPO / "examples" / "openapi" / "mcpg.yaml"


@pytest.fixture(scope="module")
def openapi_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with example_with_upstream(EXAMPLE, tmp_path_factory.mktemp("openapi-backend"), API, [],
                               {"127.0.0.1:8093": "127.0.0.1:{port}", "spec_file: Tests/": "spec_file: {repo}/Tests/"}) as gw:
        yield gw


def test_operations_are_tools_with_schemas(openapi_gateway: Gateway) -> None:
    """TOOL-2, TOOL-3: one tool per operation (filtered by tag and name), parameters and bodies as inputSchema."""

    async def body() -> None:
        async with session(openapi_gateway.url) as s:
            tools = await tools_by_name(s)
            assert set(tools) == {"pets__listPets", "pets__showPetById", "airflow__get_pool", "airflow__get_pools"}, \
                sorted(tools)
            show = tools["pets__showPetById"]
            assert show.input_schema["required"] == ["petId"]
            assert show.annotations.read_only_hint is True
            assert tools["pets__listPets"].input_schema["properties"]["limit"]["type"] == "integer"
            pool = tools["airflow__get_pool"]
            assert pool.output_schema["type"] == "object"
            assert pool.output_schema["properties"]["slots"]["type"] == "integer"

    run(body)


def test_calls_reach_the_api_and_are_audited(openapi_gateway: Gateway) -> None:
    """TOOL-5, TOOL-7, TOOL-11: answers as text and structuredContent, API errors as isError, bad arguments -32602,
    a generated tool no rule allows is denied, and each call is a ledger record."""

    async def body() -> None:
        async with session(openapi_gateway.url) as s:
            listed = await s.call_tool("pets__listPets", {"limit": 2})
            assert not listed.is_error, text_of(listed)
            assert [p["name"] for p in json.loads(text_of(listed))] == ["Rex", "Tom"]
            missing = await s.call_tool("pets__showPetById", {"petId": "../admin"})
            assert missing.is_error
            assert "no pet ../admin" in text_of(missing)
            pool = await s.call_tool("airflow__get_pool", {"pool_name": "default pool"})
            assert not pool.is_error, text_of(pool)
            assert pool.structured_content["name"] == "default pool"
            assert pool.structured_content["slots"] == 4
            with pytest.raises(MCPError) as bad:
                await s.call_tool("pets__listPets", {"limit": "two"})
            assert bad.value.error.code == -32602
            with pytest.raises(MCPError) as denied:
                await s.call_tool("pets__createPets", {})
            assert denied.value.error.code != -32602

    run(body)
    events = [e for e in map(event_of, read_jsonl(openapi_gateway.config.ledger)) if e and e.get("tool")]
    assert any(e["tool"] == "pets__showPetById" and e["decision"]["effect"] == "allow" for e in events), events[-3:]
    assert any(e["tool"] == "pets__createPets" and e["decision"]["effect"] == "deny" for e in events), events[-3:]
