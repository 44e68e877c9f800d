"""`mcpg policy explain` and the policy chain through the real binary and the shipped policy plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import (
    CORRELATION_KEY, DIST, PUBLIC_TOOLS, REPO, Gateway, make_config, run_mcpg, start_gateway, wait_for_event,
)

EXAMPLE = REPO / "examples" / "policy" / "mcpg.yaml"


def explain(config: Path, *args: str):
    return run_mcpg("policy", "explain", "--config", str(config), *args)


def test_explain_allow_names_the_rule(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    r = explain(config.path, "--principal", "demo", "--group", "admins", "--resource", "admin_reset",
                "--backend", "demo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "decision: allow (chains.policy: all)" in r.stdout
    assert "policy[0]: allow: admins-all" in r.stdout


def test_explain_deny_exits_1_with_the_reason(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    r = explain(config.path, "--principal", "anonymous", "--resource", "admin_reset", "--backend", "demo")
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


def test_policy_example_is_valid_and_explains(tmp_path: Path) -> None:
    """examples/policy: Cedar then Casbin, both must allow; its relative policy paths resolve from the config."""
    if DIST != REPO / "dist":
        pytest.skip("the example's paths point at <repo>/dist, not at MCPG_DIST")
    r = run_mcpg("config", "validate", EXAMPLE, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = explain(EXAMPLE, "--principal", "anonymous", "--resource", "lookup_customer", "--backend", "demo")
    assert r.returncode == 1
    assert "policy[0]: allow: everyone-basic" in r.stdout
    assert "policy[1]: deny: p, anonymous, lookup_customer, tools/call, deny" in r.stdout
    r = explain(EXAMPLE, "--principal", "demo", "--group", "admins", "--resource", "admin_reset", "--peer", "10.0.0.9")
    assert r.returncode == 1
    assert "admin-from-loopback-only" in r.stdout
    r = explain(EXAMPLE, "--principal", "demo", "--group", "admins", "--resource", "admin_reset")
    assert r.returncode == 0, r.stdout


def test_explain_bad_config_and_usage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(make_config(tmp_path / "ok").path.read_text().replace("  - plugin: rules\n", "  - plugin: rules\n    bogus: 1\n", 1))
    r = explain(bad, "--principal", "a", "--resource", "echo")
    assert r.returncode == 1
    assert f"{bad}:" in r.stderr and "error:" in r.stderr and "bogus" in r.stderr
    r = explain(make_config(tmp_path / "ok2").path, "--principal", "a", "--resource", "echo", "--type", "table")
    assert r.returncode == 2
    assert "--type" in r.stderr


# --- the Swift policy engines as plugins, through the gateway -----------------------------------------------------

CEDAR = """
@id("basic-tools")
permit (principal, action in [Action::"tools/call", Action::"tools/list"], resource is Tool)
when { ["echo", "get_weather", "lookup_customer", "count_slowly"].contains(resource.name) };

@id("read-all")
permit (principal, action, resource is Prompt);
"""

CEDAR_FORBID_WEATHER = CEDAR + """
@id("no-weather")
forbid (principal, action, resource == Tool::"get_weather");
"""

CASBIN_MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (p.sub == "*" || r.sub == p.sub) && keyMatch(r.obj, p.obj) && (p.act == "*" || r.act == p.act)
"""

CASBIN_POLICY = """
p, *, *, *, allow
p, anonymous, echo, tools/call, deny
"""

REGO = """
package mcpg.authz

import rego.v1

default allow := false

allow if input.resource.name in {"echo", "get_weather", "lookup_customer", "count_slowly"}

reasons contains "public-tool" if allow
"""


def cedar_policy(directory: Path, text: str = CEDAR, interval: int = 1) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "policy.cedar").write_text(text)
    return f"""
policy:
  - plugin: cedar
    config:
      policies: [{directory / "policy.cedar"}]
      reload_interval: {interval}
"""


def casbin_entry(directory: Path) -> str:
    (directory / "model.conf").write_text(CASBIN_MODEL)
    (directory / "policy.csv").write_text(CASBIN_POLICY)
    return f"""
  - plugin: casbin
    config:
      model: {directory / "model.conf"}
      policy: {directory / "policy.csv"}
"""


def rpc(gw: Gateway, method: str, params: dict | None = None, session: str | None = None, rid: int = 1) -> httpx.Response:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2025-11-25"}
    if session:
        headers["Mcp-Session-Id"] = session
    body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
    return httpx.post(gw.url, json=body, headers=headers, timeout=10)


def open_session(gw: Gateway) -> str:
    r = rpc(gw, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                               "clientInfo": {"name": "policy-test", "version": "1"}})
    assert r.status_code == 200, r.text
    sid = r.headers["mcp-session-id"]
    headers = {"Content-Type": "application/json", "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25",
               "Accept": "application/json, text/event-stream"}
    httpx.post(gw.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers, timeout=10)
    return sid


def listed(gw: Gateway, sid: str) -> set[str]:
    names: set[str] = set()
    cursor = None
    for i in range(50):
        r = rpc(gw, "tools/list", {"cursor": cursor} if cursor else {}, sid, rid=100 + i)
        result = r.json()["result"]
        names |= {t["name"] for t in result["tools"]}
        cursor = result.get("nextCursor")
        if not cursor:
            return names
    raise AssertionError("tools/list never ended")


@pytest.fixture
def started(tmp_path: Path):
    gateways: list[Gateway] = []

    def start(policy: str) -> Gateway:
        gw = start_gateway(make_config(tmp_path / f"gw{len(gateways)}", policy=policy))
        gateways.append(gw)
        return gw

    yield start
    for gw in gateways:
        gw.stop()


def test_cedar_forbid_hides_and_blocks(tmp_path: Path, started) -> None:
    gw = started(cedar_policy(tmp_path / "p", CEDAR_FORBID_WEATHER))
    sid = open_session(gw)
    assert listed(gw, sid) == PUBLIC_TOOLS - {"get_weather"}
    r = rpc(gw, "tools/call", {"name": "get_weather", "arguments": {"city": "Oslo"}}, sid, rid=2)
    err = r.json()["error"]
    assert err["code"] == -32003
    ev = wait_for_event(gw.config.ledger, err["data"]["correlationId"])
    assert ev["decision"]["effect"] == "deny"
    assert ev["decision"]["plugins"][0]["effect"] == "deny"
    assert "no-weather" in ev["decision"]["plugins"][0]["reasons"]
    ok = rpc(gw, "tools/call", {"name": "echo", "arguments": {"message": "hi"}}, sid, rid=3).json()
    assert ok["result"]["content"][0]["text"] == "hi"
    ev = wait_for_event(gw.config.ledger, ok["result"]["_meta"][CORRELATION_KEY])
    assert ev["decision"]["plugins"][0]["reasons"] == ["basic-tools"]


def test_cedar_allows_casbin_denies_and_the_ledger_has_both(tmp_path: Path, started) -> None:
    d = tmp_path / "p"
    gw = started(cedar_policy(d) + casbin_entry(d) + "chains:\n  policy: all\n")
    sid = open_session(gw)
    r = rpc(gw, "tools/call", {"name": "echo", "arguments": {"message": "hi"}}, sid, rid=2).json()
    assert r["error"]["code"] == -32003
    ev = wait_for_event(gw.config.ledger, r["error"]["data"]["correlationId"])
    answers = {a["plugin"]: a["effect"] for a in ev["decision"]["plugins"]}
    assert answers == {"policy[0]": "allow", "policy[1]": "deny"}
    assert ev["decision"]["effect"] == "deny" and ev["decision"]["mode"] == "all"
    # get_weather: both allow.
    r = rpc(gw, "tools/call", {"name": "get_weather", "arguments": {"city": "Oslo"}}, sid, rid=3).json()
    assert "result" in r, r


def test_opa_rego_in_process(tmp_path: Path, started) -> None:
    (tmp_path / "authz.rego").write_text(REGO)
    gw = started(f"""
policy:
  - plugin: opa
    config:
      rego:
        policies: [{tmp_path / "authz.rego"}]
""")
    sid = open_session(gw)
    assert listed(gw, sid) == PUBLIC_TOOLS
    ok = rpc(gw, "tools/call", {"name": "echo", "arguments": {"message": "rego"}}, sid, rid=2).json()
    ev = wait_for_event(gw.config.ledger, ok["result"]["_meta"][CORRELATION_KEY])
    assert ev["decision"]["plugins"][0]["reasons"] == ["public-tool"]
    denied = rpc(gw, "tools/call", {"name": "admin_reset", "arguments": {}}, sid, rid=3).json()
    assert denied["error"]["code"] == -32003


def test_policy_hot_reload_and_bad_edit_keeps_the_old_policy(tmp_path: Path, started) -> None:
    d = tmp_path / "p"
    gw = started(cedar_policy(d, CEDAR, interval=1))
    sid = open_session(gw)
    assert "get_weather" in listed(gw, sid)
    (d / "policy.cedar").write_text(CEDAR_FORBID_WEATHER)
    deadline = time.monotonic() + 10
    while "get_weather" in listed(gw, sid):
        assert time.monotonic() < deadline, "the edited policy never took effect"
        time.sleep(0.2)
    assert "policy reloaded" in gw.stderr()
    (d / "policy.cedar").write_text(CEDAR + "\npermit (principal, action, resource) when { ;")
    deadline = time.monotonic() + 10
    while "policy reload failed" not in gw.stderr():
        assert time.monotonic() < deadline, "the broken edit was not reported:\n" + gw.stderr()
        time.sleep(0.2)
        listed(gw, sid)
    assert listed(gw, sid) == PUBLIC_TOOLS - {"get_weather"}
    assert "policy.cedar:" in gw.stderr()


OPA_SERVER = Path(__file__).resolve().parents[1] / "Differential" / "opa_server.py"


@pytest.fixture
def opa_server(tmp_path: Path):
    """An OPA-compatible Data API on 127.0.0.1 deciding with the reference Rego engine (regopy)."""
    (tmp_path / "remote.rego").write_text(REGO)
    proc = subprocess.Popen([sys.executable, str(OPA_SERVER), str(tmp_path / "remote.rego")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().strip())
    yield f"http://127.0.0.1:{port}", proc
    proc.kill()
    proc.wait(timeout=10)


def test_opa_remote_decides_and_fails_closed(tmp_path: Path, started, opa_server) -> None:
    url, proc = opa_server
    gw = started(f"""
policy:
  - plugin: opa
    config:
      remote:
        url: {url}
        path: mcpg/authz/allow
        timeout_ms: 2000
        batch: false
""")
    sid = open_session(gw)
    assert listed(gw, sid) == PUBLIC_TOOLS
    ok = rpc(gw, "tools/call", {"name": "echo", "arguments": {"message": "remote"}}, sid, rid=2).json()
    assert ok["result"]["content"][0]["text"] == "remote"
    denied = rpc(gw, "tools/call", {"name": "admin_reset", "arguments": {}}, sid, rid=3).json()
    assert denied["error"]["code"] == -32003
    ev = wait_for_event(gw.config.ledger, denied["error"]["data"]["correlationId"])
    assert ev["decision"]["plugins"][0]["effect"] == "deny"
    # The server goes away: calls are denied (fail closed), with the reason in the ledger.
    proc.kill()
    proc.wait(timeout=10)
    time.sleep(1.2)  # past the client's decision cache (1 s by default)
    gone = rpc(gw, "tools/call", {"name": "get_weather", "arguments": {"city": "Oslo"}}, sid, rid=4).json()
    assert gone["error"]["code"] == -32003
    ev = wait_for_event(gw.config.ledger, gone["error"]["data"]["correlationId"])
    assert "opa unavailable" in ev["decision"]["plugins"][0]["reasons"][0]
