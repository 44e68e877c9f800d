"""The `mcpg` command line (DESIGN.md §4), with the real `minisign` binary for signature interop.

Exit codes: 0 ok, 1 check failed / bad input, 2 usage.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import (
    DIST, KEYS, PLUGIN_DIR, PLUGINS, PROTOCOL_VERSION, QUICKSTART, REPO, START_TIMEOUT, GatewayConfig, RawSession,
    copy_plugins, flip_byte, free_port, make_config, run_mcpg, start_gateway, trusted_comment,
)

MINISIGN = shutil.which("minisign")
needs_minisign = pytest.mark.skipif(MINISIGN is None, reason="the minisign binary is not installed")
TRUSTED = KEYS / "dev-plugin.pub"


def minisign(*args: str | Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    assert MINISIGN is not None
    return subprocess.run([MINISIGN, *map(str, args)], capture_output=True, text=True, timeout=30, input=input)


def minisign_keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """A fresh unencrypted minisign key pair (`minisign -G -W`)."""
    pub, sec = directory / f"{name}.pub", directory / f"{name}.key"
    r = minisign("-G", "-W", "-p", pub, "-s", sec)
    assert r.returncode == 0, r.stderr
    return pub, sec


def output(r: subprocess.CompletedProcess[str]) -> str:
    return r.stdout + r.stderr


# --- version and config ------------------------------------------------------------------------------------------


def test_version() -> None:
    r = run_mcpg("version")
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+\.\d+\.\d+", r.stdout), r.stdout
    assert re.search(r"(?i)abi", r.stdout), r.stdout


def test_usage_error_exits_2() -> None:
    r = run_mcpg("no-such-command")
    assert r.returncode == 2
    assert r.stderr.strip()


def test_config_validate_accepts_generated_config(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    r = run_mcpg("config", "validate", config.path)
    assert r.returncode == 0, output(r)


def test_config_validate_accepts_quickstart() -> None:
    """The shipped example is valid as written (its paths resolve against the dist made by `make build`)."""
    if DIST != REPO / "dist":
        pytest.skip("the quickstart's paths point at <repo>/dist, not at MCPG_DIST")
    r = run_mcpg("config", "validate", QUICKSTART)
    assert r.returncode == 0, output(r)


def test_config_validate_unknown_key(tmp_path: Path) -> None:
    """`FILE:LINE:COL: error: unknown key …` on stderr, exit 1, with the line and column of the bad key."""
    config = make_config(tmp_path)
    lines = config.text.splitlines()
    policy_line = next(i for i, line in enumerate(lines) if line.startswith("policy:"))
    lines.insert(policy_line, "polcy: []")  # a typo'd top-level key, at column 1
    config.path.write_text("\n".join(lines) + "\n")
    r = run_mcpg("config", "validate", config.path)
    assert r.returncode == 1, output(r)
    pattern = rf"^{re.escape(str(config.path))}:{policy_line + 1}:1: error: unknown key\b.*polcy"
    assert re.search(pattern, r.stderr, re.M), r.stderr


def test_config_validate_reports_every_problem(tmp_path: Path) -> None:
    """STYLE §4: all problems are printed, not just the first; a nested unknown key gets its own column."""
    config = make_config(tmp_path)
    text = config.text.replace("\nserver:\n", "\nserver:\n  pagesize: 3\n", 1)
    text = text.replace("\naudit:\n", "\naudit:\n  ledgr: x\n", 1)
    config.path.write_text(text)
    lines = text.splitlines()
    l1 = lines.index("  pagesize: 3") + 1
    l2 = lines.index("  ledgr: x") + 1
    r = run_mcpg("config", "validate", config.path)
    assert r.returncode == 1
    assert re.search(rf"^{re.escape(str(config.path))}:{l1}:3: error: unknown key\b.*pagesize", r.stderr, re.M), r.stderr
    assert re.search(rf"^{re.escape(str(config.path))}:{l2}:3: error: unknown key\b.*ledgr", r.stderr, re.M), r.stderr


def test_config_validate_missing_file(tmp_path: Path) -> None:
    r = run_mcpg("config", "validate", tmp_path / "nope.yaml")
    assert r.returncode == 1
    assert "nope.yaml" in r.stderr


def test_config_schema_is_json_schema() -> None:
    r = run_mcpg("config", "schema")
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    assert schema["type"] == "object"
    for key in ("mcpg", "server", "plugins", "identity", "policy", "backends", "audit"):
        assert key in schema["properties"], key
    assert set(schema.get("required", [])) >= {"mcpg", "plugins", "audit"}


def test_config_reference_is_markdown() -> None:
    r = run_mcpg("config", "reference")
    assert r.returncode == 0, r.stderr
    assert r.stdout.lstrip().startswith("#")
    for key in ("max_body_bytes", "page_size", "trusted_keys", "signing_key"):
        assert key in r.stdout, key


# --- plugin signatures -------------------------------------------------------------------------------------------


def test_plugin_verify_dist_dir() -> None:
    """Every plugin `make build` signed verifies against the dev key."""
    r = run_mcpg("plugin", "verify", PLUGIN_DIR, "--trusted-key", TRUSTED)
    assert r.returncode == 0, output(r)


def test_plugin_list(tmp_path: Path) -> None:
    """`plugin list` names each plugin with its kind, version, ABI, signer key id and sha256."""
    r = run_mcpg("plugin", "list", PLUGIN_DIR, "--trusted-key", TRUSTED)
    assert r.returncode == 0, output(r)
    for name, kind in [("apikey", "identity"), ("anonymous", "identity"), ("rules", "policy"),
                       ("redact", "transform"), ("mock", "backend"), ("jsonl", "sink")]:
        line = next((ln for ln in r.stdout.splitlines() if re.search(rf"\b{name}\b", ln)), None)
        assert line is not None, (name, r.stdout)
        assert kind in line, (name, line)
    digest = hashlib.sha256((PLUGIN_DIR / "mock.so").read_bytes()).hexdigest()
    assert digest in r.stdout


def test_plugin_verify_and_list_take_dir_and_keys_from_config(tmp_path: Path) -> None:
    """`--config` supplies plugins.dir and plugins.trusted_keys; a tampered plugin in that dir is named."""
    d = copy_plugins(tmp_path / "p", ["apikey", "anonymous", "rules", "redact", "mock", "jsonl"])
    cfg = make_config(tmp_path / "gw", plugin_dir=d)
    r = run_mcpg("plugin", "verify", "--config", cfg.path)
    assert r.returncode == 0, output(r)
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("OK ")]) == 6, r.stdout
    r = run_mcpg("plugin", "list", "--config", cfg.path)
    assert r.returncode == 0, output(r)
    assert "mock" in r.stdout and "backend" in r.stdout
    flip_byte(d / "rules.so")
    r = run_mcpg("plugin", "verify", "--config", cfg.path)
    assert r.returncode == 1
    assert "rules.so" in output(r)
    r = run_mcpg("plugin", "verify")
    assert r.returncode == 2, output(r)


def test_plugin_verify_refuses_tampered_copy(tmp_path: Path) -> None:
    """A plugin with one byte flipped (signature copied alongside) is refused, by name."""
    d = copy_plugins(tmp_path / "p", ["mock"])
    flip_byte(d / "mock.so")
    r = run_mcpg("plugin", "verify", d / "mock.so", "--trusted-key", TRUSTED)
    assert r.returncode == 1
    assert "mock.so" in output(r)


def test_plugin_verify_refuses_unsigned(tmp_path: Path) -> None:
    d = tmp_path / "p"
    d.mkdir()
    shutil.copy2(PLUGIN_DIR / "mock.so", d / "mock.so")
    r = run_mcpg("plugin", "verify", d / "mock.so", "--trusted-key", TRUSTED)
    assert r.returncode == 1
    assert "mock.so" in output(r)


@needs_minisign
def test_plugin_verify_refuses_untrusted_signer(tmp_path: Path) -> None:
    """Signed by a key made with `minisign -G -W` that is not the trusted one → refused."""
    _, other_key = minisign_keypair(tmp_path, "other")
    d = tmp_path / "p"
    d.mkdir()
    shutil.copy2(PLUGIN_DIR / "mock.so", d / "mock.so")
    comment = trusted_comment(PLUGIN_DIR / "mock.so.minisig")
    s = minisign("-S", "-s", other_key, "-m", d / "mock.so", "-t", comment)
    assert s.returncode == 0, s.stderr
    r = run_mcpg("plugin", "verify", d / "mock.so", "--trusted-key", TRUSTED)
    assert r.returncode == 1
    assert "mock.so" in output(r)


@needs_minisign
def test_plugin_verify_refuses_non_elf_signed_by_trusted_key(tmp_path: Path) -> None:
    """A correctly signed file that is not a shared object is still refused (verify checks what it would load)."""
    pub, key = minisign_keypair(tmp_path, "trusted")
    fake = tmp_path / "fake.so"
    fake.write_text("#!/bin/sh\necho not a plugin\n")
    s = minisign("-S", "-s", key, "-m", fake, "-t", "mcpg-plugin name=fake version=1.0.0 abi=1")
    assert s.returncode == 0, s.stderr
    assert minisign("-Vm", fake, "-p", pub).returncode == 0  # the signature itself is fine
    r = run_mcpg("plugin", "verify", fake, "--trusted-key", pub)
    assert r.returncode == 1
    assert "fake.so" in output(r)


@needs_minisign
def test_plugin_verify_dir_names_each_failure(tmp_path: Path) -> None:
    """Verifying a directory reports every bad plugin, not just the first, and exits 1."""
    d = copy_plugins(tmp_path / "p")
    flip_byte(d / "rules.so")
    (d / "redact.so.minisig").unlink()
    r = run_mcpg("plugin", "verify", d, "--trusted-key", TRUSTED)
    assert r.returncode == 1
    out = output(r)
    assert "rules.so" in out and "redact.so" in out


@needs_minisign
def test_minisign_signed_plugin_verifies(tmp_path: Path) -> None:
    """Ops can sign with the minisign tool: `minisign -S -s KEY -m FILE -t "mcpg-plugin name=… version=… abi=…"`
    produces a signature mcpg accepts (prehashed, minisign's default, and legacy `-l`)."""
    pub, key = minisign_keypair(tmp_path, "ops")
    comment = trusted_comment(PLUGIN_DIR / "mock.so.minisig")
    assert re.fullmatch(r"mcpg-plugin name=mock version=\S+ abi=\d+", comment), comment
    for flags in ([], ["-l"]):
        d = tmp_path / ("legacy" if flags else "prehashed")
        d.mkdir()
        shutil.copy2(PLUGIN_DIR / "mock.so", d / "mock.so")
        s = minisign("-S", *flags, "-s", key, "-m", d / "mock.so", "-t", comment)
        assert s.returncode == 0, s.stderr
        r = run_mcpg("plugin", "verify", d / "mock.so", "--trusted-key", pub)
        assert r.returncode == 0, (flags, output(r))


@needs_minisign
def test_minisign_signature_with_wrong_pin_is_refused(tmp_path: Path) -> None:
    """DESIGN §3: the trusted comment pins name and version, checked against the plugin's descriptor. A valid
    signature by a trusted key whose comment names another plugin is refused by `plugin verify` (the file is not
    named after the pinned plugin), `plugin list` (which reads the descriptor) and `serve` (which loads it)."""
    pub, key = minisign_keypair(tmp_path, "ops")
    d = copy_plugins(tmp_path / "p")
    for n in PLUGINS:  # re-sign everything with the ops key, mock with a lying pin
        comment = trusted_comment(d / f"{n}.so.minisig")
        if n == "mock":
            comment = comment.replace("name=mock", "name=rules")
        (d / f"{n}.so.minisig").unlink()
        assert minisign("-S", "-s", key, "-m", d / f"{n}.so", "-t", comment).returncode == 0
    v = run_mcpg("plugin", "verify", d / "mock.so", "--trusted-key", pub)
    assert v.returncode == 1
    assert "mock.so" in output(v)
    r = run_mcpg("plugin", "list", d, "--trusted-key", pub)
    assert r.returncode == 1
    assert "mock.so" in output(r)
    config = make_config(tmp_path / "gw", plugin_dir=d, trusted_key=pub)
    try:
        s = run_mcpg("serve", "--config", config.path, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("mcpg serve started (or hung) with a plugin whose signature pins another name")
    assert s.returncode != 0
    assert "mock.so" in s.stderr, s.stderr


@needs_minisign
def test_mcpg_signature_verifies_with_minisign(tmp_path: Path) -> None:
    """`mcpg plugin keygen` + `mcpg plugin sign` output verifies with `minisign -Vm FILE -p PUB`, and the
    trusted comment minisign prints is mcpg's pin."""
    prefix = tmp_path / "k"
    r = run_mcpg("plugin", "keygen", "--out", prefix)
    assert r.returncode == 0, output(r)
    pub, key = Path(f"{prefix}.pub"), Path(f"{prefix}.key")
    assert pub.exists() and key.exists()
    target = tmp_path / "mock.so"
    shutil.copy2(PLUGIN_DIR / "mock.so", target)
    r = run_mcpg("plugin", "sign", target, "--key", key)
    assert r.returncode == 0, output(r)
    assert Path(f"{target}.minisig").exists()
    v = minisign("-Vm", target, "-p", pub)
    assert v.returncode == 0, v.stderr
    assert re.search(r"Trusted comment: mcpg-plugin name=mock version=\S+ abi=\d+", v.stdout), v.stdout
    assert run_mcpg("plugin", "verify", target, "--trusted-key", pub).returncode == 0
    flip_byte(target)
    assert minisign("-Vm", target, "-p", pub).returncode != 0


@needs_minisign
def test_mcpg_signs_with_minisign_key(tmp_path: Path) -> None:
    """`mcpg plugin sign` accepts an unencrypted secret key made by `minisign -G -W`."""
    pub, key = minisign_keypair(tmp_path, "ops")
    target = tmp_path / "echo.so"
    shutil.copy2(PLUGIN_DIR / "mock.so", target)
    r = run_mcpg("plugin", "sign", target, "--key", key)
    assert r.returncode == 0, output(r)
    assert minisign("-Vm", target, "-p", pub).returncode == 0


def test_serve_refuses_tampered_plugin(tmp_path: Path) -> None:
    """DESIGN §3: a tampered plugin in the plugin dir → `serve` does not start, exits non-zero, names the file."""
    d = copy_plugins(tmp_path / "plugins")
    flip_byte(d / "mock.so")
    config = make_config(tmp_path / "gw", plugin_dir=d)
    try:
        r = run_mcpg("serve", "--config", config.path, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("mcpg serve started (or hung) with a tampered plugin")
    assert r.returncode != 0
    assert "mock.so" in r.stderr, r.stderr
    with pytest.raises(httpx.HTTPError):
        httpx.post(config.url, json={}, timeout=1)


def test_serve_refuses_unsigned_plugin(tmp_path: Path) -> None:
    d = copy_plugins(tmp_path / "plugins")
    (d / "rules.so.minisig").unlink()
    config = make_config(tmp_path / "gw", plugin_dir=d)
    r = run_mcpg("serve", "--config", config.path, timeout=START_TIMEOUT)
    assert r.returncode != 0
    assert "rules.so" in r.stderr, r.stderr


# --- init ----------------------------------------------------------------------------------------------------------


def test_init_then_serve(tmp_path: Path) -> None:
    """`mcpg init DIR` writes a config and keys and prints the API key once; `serve` with that config works and
    the printed key authenticates as an admin (anonymous loopback callers see less; a wrong key gets 401)."""
    d = tmp_path / "gw"
    port = free_port()
    r = run_mcpg("init", d, "--listen", f"127.0.0.1:{port}")
    assert r.returncode == 0, output(r)
    keys = re.findall(r"^api key: (\S+)$", r.stdout, re.M)
    assert len(keys) == 1, r.stdout
    key = keys[0]
    config_path = d / "mcpg.yaml"
    assert config_path.exists()
    assert key not in config_path.read_text(), "the config must hold a hash of the key, not the key"
    assert key not in r.stderr
    v = run_mcpg("config", "validate", config_path)
    assert v.returncode == 0, output(v)

    gw = start_gateway(GatewayConfig(path=config_path, port=port, ledger=d / "data" / "audit.ledger",
                                     jsonl=d / "data" / "audit.jsonl"))
    try:
        with RawSession(gw.url, key=key) as admin, RawSession(gw.url) as anon:
            admin.initialize()
            anon.initialize()
            admin_tools = {t["name"] for t in admin.request("tools/list")["result"]["tools"]}
            anon_tools = {t["name"] for t in anon.request("tools/list")["result"]["tools"]}
            assert anon_tools < admin_tools, (anon_tools, admin_tools)
            assert admin.call("echo", {"message": "init works"})["result"]["content"][0]["text"] == "init works"
        wrong = httpx.post(gw.url, timeout=10, headers={
            "Accept": "application/json, text/event-stream", "Content-Type": "application/json",
            "Authorization": "Bearer " + key[::-1]},
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                             "clientInfo": {"name": "t", "version": "1"}}})
        assert wrong.status_code == 401
    finally:
        assert gw.stop() == 0, gw.stderr()
    verified = run_mcpg("audit", "verify", d / "data" / "audit.ledger", "--key", d / "keys" / "audit.pub")
    assert verified.returncode == 0, output(verified)
