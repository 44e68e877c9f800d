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
