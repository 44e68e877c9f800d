"""Federation of several backends into one catalog (GW-3, TOOL-4): prefixes, collisions reported by
`config validate --catalog` and at boot, never a silent overwrite."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import GatewayConfig, RawSession, make_config, run_mcpg, start_gateway

SECOND_BACKEND = """
  other:
    plugin: mock{prefix}
    config:
      tools:
        - name: echo
          description: The other echo.
          inputSchema: {{ type: object }}
          result: {{ text: "other" }}
        - name: dotted.name
          inputSchema: {{ type: object }}
          result: {{ text: "dotted" }}
"""


def with_second_backend(directory: Path, prefix: str | None) -> GatewayConfig:
    """The quickstart plus a second mock backend that also serves `echo`."""
    config = make_config(directory)
    text = config.path.read_text()
    block = SECOND_BACKEND.format(prefix=f"\n    prefix: {prefix}" if prefix else "")
    text = text.replace("\naudit:\n", block.rstrip("\n") + "\naudit:\n", 1)
    if prefix:
        # Let everyone call the prefixed tools too.
        text = text.replace("tools: [echo, get_weather, lookup_customer, count_slowly]",
                            f"tools: [echo, get_weather, lookup_customer, count_slowly, \"{prefix}__*\"]", 1)
    config.path.write_text(text)
    return config


def test_a_collision_is_reported_at_the_later_backend(tmp_path: Path) -> None:
    path = with_second_backend(tmp_path / "clash", prefix=None).path
    plain = run_mcpg("config", "validate", path)
    assert plain.returncode == 0, plain.stderr  # without --catalog nothing is started
    r = run_mcpg("config", "validate", "--catalog", path)
    assert r.returncode == 1
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if l.strip() == "other:")
    assert re.search(rf"{re.escape(str(path))}:{line}:\d+: error: tool echo is served by both backend demo and "
                     rf"backend other", r.stderr), r.stderr
    # Boot refuses the same catalog with the same message.
    boot = run_mcpg("serve", "--config", path, timeout=30)
    assert boot.returncode == 1 and "tool echo is served by both backend demo and backend other" in boot.stderr


def test_prefixed_backends_serve_the_same_name(tmp_path: Path) -> None:
    config = with_second_backend(tmp_path / "prefixed", prefix="alt")
    r = run_mcpg("config", "validate", "--catalog", config.path)
    assert r.returncode == 0, r.stderr
    gw = start_gateway(config)
    try:
        with RawSession(gw.url) as s:
            s.initialize()
            names: set[str] = set()
            cursor = None
            while True:
                page = s.request("tools/list", {"cursor": cursor} if cursor else {})["result"]
                names |= {t["name"] for t in page["tools"]}
                cursor = page.get("nextCursor")
                if not cursor:
                    break
            assert {"echo", "alt__echo", "alt__dotted_name"} <= names
            assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", n) for n in names)
            assert s.call("alt__echo")["result"]["content"][0]["text"] == "other"
            assert s.call("alt__dotted_name")["result"]["content"][0]["text"] == "dotted"
            assert s.call("echo", {"message": "mine"})["result"]["content"][0]["text"] == "mine"
            assert s.init_result["capabilities"]["tools"]["listChanged"] is True
    finally:
        gw.stop()
