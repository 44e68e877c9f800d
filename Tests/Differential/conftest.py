"""Differential tests: mcpg's policy engines against the reference engines from PyPI.

Each engine has a `<name>-eval` tool (Tests/Support/<name>-eval, built by `swift build --build-tests`) that
reads one JSON case per line on stdin and writes one JSON answer per line. A test generates its cases, asks
the reference engine, runs the tool once over all cases, and compares case by case.
"""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EVAL_DIR = pathlib.Path(os.environ.get("MCPG_EVAL_DIR", ROOT / ".build" / "debug"))


def run_eval(tool: str, cases: list, timeout: float = 120) -> list:
    """Runs `tool` over `cases` (JSON-able objects); returns its answers, one per case, in order."""
    path = EVAL_DIR / tool
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `swift build --build-tests` (or set MCPG_EVAL_DIR)")
    stdin = "".join(json.dumps(c, separators=(",", ":")) + "\n" for c in cases)
    proc = subprocess.run([str(path)], input=stdin, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{tool} exited {proc.returncode}: {proc.stderr[-2000:]}"
    answers = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(answers) == len(cases), f"{tool} answered {len(answers)} of {len(cases)} cases"
    return answers


@pytest.fixture
def eval_tool():
    return run_eval
