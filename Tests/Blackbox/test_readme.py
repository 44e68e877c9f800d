"""The README's five-minute walkthrough stays true: its Python snippet runs against the quickstart config."""

from __future__ import annotations

import re
import subprocess
import sys

from typing import Any

from conftest import REPO


def test_readme_walkthrough_snippet_runs(gateway_factory: Any) -> None:
    gateway = gateway_factory("readme")  # the quickstart as shipped (default page size), on a free port
    readme = (REPO / "README.md").read_text()
    match = re.search(r"/bin/python - <<'PY'\n(.*?)\nPY\n", readme, re.S)
    assert match, "README lost its Python walkthrough"
    snippet = match.group(1)
    assert "http://127.0.0.1:8080/mcp" in snippet
    # Same config as the quickstart, on this test's own port.
    snippet = snippet.replace("http://127.0.0.1:8080/mcp", gateway.url)
    r = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "['echo', 'get_weather', 'lookup_customer', 'count_slowly']", r.stdout
    assert lines[1] == "hello"
    assert "[REDACTED:card]" in lines[2] and "4111" not in lines[2]
    assert "admin_reset" in lines[3], "the demo key sees the admin tool"
