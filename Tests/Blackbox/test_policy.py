"""`mcpg policy explain` and the policy chain through the real binary and the shipped policy plugins."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_config, run_mcpg


def explain(config: Path, *args: str):
    return run_mcpg("policy", "explain", "--config", str(config), *args)


def test_explain_allow_names_the_rule(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    r = explain(config.path, "--principal", "demo", "--group", "admins", "--resource", "admin.reset",
                "--backend", "demo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "decision: allow (chains.policy: all)" in r.stdout
    assert "policy[0]: allow: admins-all" in r.stdout


def test_explain_deny_exits_1_with_the_reason(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    r = explain(config.path, "--principal", "anonymous", "--resource", "admin.reset", "--backend", "demo")
    assert r.returncode == 1
    assert "decision: deny" in r.stdout
    assert "policy[0]: deny: default deny" in r.stdout


def test_explain_json_is_the_audit_decision(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    r = explain(config.path, "--principal", "someone", "--action", "prompts/get", "--type", "prompt",
                "--resource", "summarize", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["effect"] == "allow" and d["mode"] == "all"
    assert d["plugins"] == [{"plugin": "policy[0]", "effect": "allow", "reasons": ["everyone-read"]}]


def test_explain_bad_config_and_usage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(make_config(tmp_path / "ok").path.read_text().replace("  - plugin: rules\n", "  - plugin: rules\n    bogus: 1\n", 1))
    r = explain(bad, "--principal", "a", "--resource", "echo")
    assert r.returncode == 1
    assert f"{bad}:" in r.stderr and "error:" in r.stderr and "bogus" in r.stderr
    r = explain(make_config(tmp_path / "ok2").path, "--principal", "a", "--resource", "echo", "--type", "table")
    assert r.returncode == 2
    assert "--type" in r.stderr
