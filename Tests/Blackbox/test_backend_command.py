"""The `command` backend end to end through the official Python SDK client: programs run from argv templates,
never a shell.

Injection attempts stay single literal arguments or are refused (-32602) before anything runs; the environment is
only the allowlist; timeouts kill the program and its grandchild; huge output is capped while the gateway stays
small; exit codes become tool errors; stdout JSON becomes structuredContent (TOOL-7/TOOL-8); cancellation kills
the program (CANCEL-1).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from mcp.shared.exceptions import MCPError

from conftest import REPO, Gateway, RawSession, make_config, run_mcpg, start_gateway
from sdkclient import run, session, text_of

PYTHON = sys.executable

# One helper program with a mode per tool: it reports what it was given, or misbehaves on purpose.
HELPER = r'''
import json, os, subprocess, sys, time
mode = sys.argv[1]
if mode == "argv":
    print(json.dumps({"argv": sys.argv[2:]}))
elif mode == "env":
    print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "stdin": sys.stdin.read()}))
elif mode == "sleep":
    child = subprocess.Popen(["sleep", "60"])
    with open(sys.argv[2], "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    time.sleep(60)
elif mode == "exit":
    sys.stderr.write("something went wrong: " + sys.argv[3] + "\n")
    sys.exit(int(sys.argv[2]))
elif mode == "flood":
    out = sys.stdout.buffer
    for _ in range(int(sys.argv[2])):
        out.write(b"x" * 1_000_000)
    out.flush()
elif mode == "touch":
    open(sys.argv[2], "w").close()
    print("touched")
'''

BACKEND = """
  cmd:
    plugin: command
    config:
      tools:
        - name: show_argv
          description: Reports its argv as JSON.
          argv: [{python}, {helper}, argv, "{{text}}", "--label={{label}}"]
          inputSchema:
            type: object
            properties: {{ text: {{ type: string }}, label: {{ type: string }} }}
            required: [text]
          outputSchema:
            type: object
            properties: {{ argv: {{ type: array, items: {{ type: string }} }} }}
            required: [argv]
        - name: show_flagged
          description: Reports its argv; the first position may be an option.
          argv: [{python}, {helper}, argv, "{{opt:flag}}", "--", "{{rest}}"]
          inputSchema:
            type: object
            properties: {{ opt: {{ type: string }}, rest: {{ type: array, items: {{ type: string }} }} }}
          outputSchema: {{ type: object, properties: {{ argv: {{ type: array }} }} }}
        - name: touch_file
          description: Creates a file; the name is checked by the schema first.
          argv: [{python}, {helper}, touch, "{{dir}}/{{name}}"]
          inputSchema:
            type: object
            properties:
              dir: {{ type: string, enum: ["{tmp}"] }}
              name: {{ type: string, pattern: "^[a-z]+$", maxLength: 8 }}
              count: {{ type: integer, minimum: 1, maximum: 5 }}
            required: [dir, name]
            additionalProperties: false
        - name: show_env
          description: Reports its environment, working directory and stdin.
          argv: [{python}, {helper}, env]
          inputSchema: {{ type: object, properties: {{ who: {{ type: string }} }} }}
          env_allow: [MCPG_CMD_ALLOWED, PATH]
          env: {{ FIXED: "set-by-config" }}
          cwd: {tmp}
          stdin: "hello {{who}}; $(id)"
          outputSchema: {{ type: object }}
        - name: sleeper
          description: Starts a grandchild and sleeps.
          argv: [{python}, {helper}, sleep, "{{pidfile}}"]
          inputSchema: {{ type: object, properties: {{ pidfile: {{ type: string }} }}, required: [pidfile] }}
          env_allow: [PATH]
          timeout_ms: 1000
        - name: fail
          description: Exits with the given code.
          argv: [{python}, {helper}, exit, "{{code}}", "{{why}}"]
          inputSchema:
            type: object
            properties: {{ code: {{ type: integer, minimum: 0, maximum: 255 }}, why: {{ type: string }} }}
            required: [code, why]
          success_exit_codes: [0, 7]
        - name: flood
          description: Writes N megabytes to stdout.
          argv: [{python}, {helper}, flood, "{{mb}}"]
          inputSchema: {{ type: object, properties: {{ mb: {{ type: integer, minimum: 1 }} }}, required: [mb] }}
          max_output_bytes: 4096
        - name: endless
          description: Writes forever.
          argv: ["yes", "{{word}}"]
          inputSchema: {{ type: object, properties: {{ word: {{ type: string }} }}, required: [word] }}
          max_output_bytes: 1000
          timeout_ms: 1500
"""

TOOLS = ["show_argv", "show_flagged", "touch_file", "show_env", "sleeper", "fail", "flood", "endless"]
INJECTIONS = ["; rm -rf {tmp}/victim", "$(touch {tmp}/pwned)", "`touch {tmp}/pwned`", "a\nb; touch {tmp}/pwned",
              "' \" * ? ~ | & > {tmp}/pwned", "${{HOME}}", "x --output=/etc/x", ""]


def add_backend(directory: Path, backend: str, tools: list[str]) -> Any:
    config = make_config(directory)
    text = config.path.read_text()
    text = text.replace("\naudit:\n", backend.rstrip("\n") + "\naudit:\n", 1)
    text = text.replace("tools: [echo, get_weather, lookup_customer, count_slowly]",
                        "tools: [echo, get_weather, lookup_customer, count_slowly, " + ", ".join(tools) + "]", 1)
    config.path.write_text(text)
    return config


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cmdwork")
    (d / "victim").write_text("still here")
    return d


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, tmp: Path) -> Iterator[Gateway]:
    helper = tmp / "helper.py"
    helper.write_text(HELPER)
    backend = BACKEND.format(python=PYTHON, helper=helper, tmp=tmp)
    config = add_backend(tmp_path_factory.mktemp("cmdgw"), backend, TOOLS)
    gateway = start_gateway(config, env={"MCPG_CMD_ALLOWED": "allowed-value", "MCPG_CMD_SECRET": "must-not-leak"})
    try:
        yield gateway
    finally:
        gateway.stop()


def meta_of(result: Any) -> dict[str, Any]:
    return (result.meta or {}).get("dev.mcpg/command", {})


def test_tools_listed_with_schemas(gw: Gateway) -> None:
    """TOOL-2: every configured tool, with its inputSchema and outputSchema."""

    async def body() -> None:
        async with session(gw.url) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(TOOLS) <= set(tools)
            assert tools["show_argv"].input_schema["required"] == ["text"]
            assert tools["show_argv"].output_schema["required"] == ["argv"]

    run(body)


def test_injection_attempts_stay_one_literal_argument(gw: Gateway, tmp: Path) -> None:
    """No shell: `;`, `$(…)`, backticks, newlines, globs and redirections arrive as one argv element each (TOOL-7)."""

    async def body() -> None:
        async with session(gw.url) as s:
            for raw in INJECTIONS:
                value = raw.format(tmp=tmp)
                result = await s.call_tool("show_argv", {"text": value, "label": value})
                assert not result.is_error, text_of(result)
                assert result.structured_content == {"argv": [value, f"--label={value}"]}
            # An absent optional argument leaves its element out.
            result = await s.call_tool("show_argv", {"text": "only"})
            assert result.structured_content == {"argv": ["only"]}
        assert not (tmp / "pwned").exists()
        assert (tmp / "victim").read_text() == "still here"

    run(body)


def test_option_looking_values_are_refused_unless_allowed(gw: Gateway) -> None:
    """A value starting with `-` where an operand is expected is -32602; `{x:flag}` and after `--` take it."""

    async def body() -> None:
        async with session(gw.url) as s:
            for value in ["-rf", "--output=/etc/x", "-"]:
                with pytest.raises(MCPError) as e:
                    await s.call_tool("show_argv", {"text": value})
                assert e.value.error.code == -32602
                assert "would be read as an option" in e.value.error.message
            # Inside an element after a literal prefix it is only data.
            ok = await s.call_tool("show_argv", {"text": "x", "label": "-rf"})
            assert ok.structured_content == {"argv": ["x", "--label=-rf"]}
            flagged = await s.call_tool("show_flagged", {"opt": "--verbose", "rest": ["-rf", "--output=/etc/x"]})
            assert flagged.structured_content == {"argv": ["--verbose", "--", "-rf", "--output=/etc/x"]}

    run(body)


def test_arguments_checked_before_anything_runs(gw: Gateway, tmp: Path) -> None:
    """Schema violations (pattern, enum, maximum, unknown names, wrong type, missing) are -32602 and nothing runs."""
    bad = [
        {"dir": str(tmp), "name": "../../etc"},
        {"dir": "/etc", "name": "abc"},
        {"dir": str(tmp), "name": "abc", "count": 9},
        {"dir": str(tmp), "name": "abc", "extra": 1},
        {"dir": str(tmp), "name": 5},
        {"dir": str(tmp)},
    ]

    async def body() -> None:
        async with session(gw.url) as s:
            for args in bad:
                with pytest.raises(MCPError) as e:
                    await s.call_tool("touch_file", args)
                assert e.value.error.code == -32602, args
                assert "invalid arguments" in e.value.error.message
            assert sorted(p.name for p in tmp.iterdir() if p.name not in ("helper.py", "victim")) == []
            ok = await s.call_tool("touch_file", {"dir": str(tmp), "name": "made", "count": 2})
            assert text_of(ok).strip() == "touched"
        assert (tmp / "made").exists()

    run(body)


def test_environment_is_the_allowlist(gw: Gateway, tmp: Path) -> None:
    """Only env_allow names and env reach the program; cwd and the stdin template apply (stdin is data)."""

    async def body() -> None:
        async with session(gw.url) as s:
            result = await s.call_tool("show_env", {"who": "$(whoami)"})
            seen = result.structured_content
            env = seen["env"]
            assert env.get("MCPG_CMD_ALLOWED") == "allowed-value"
            assert env.get("FIXED") == "set-by-config"
            assert "MCPG_CMD_SECRET" not in env and "HOME" not in env and "MCPG_DIST" not in env
            assert set(env) - {"LC_CTYPE"} == {"MCPG_CMD_ALLOWED", "FIXED", "PATH"}
            assert Path(seen["cwd"]).resolve() == tmp.resolve()
            assert seen["stdin"] == "hello $(whoami); $(id)"

    run(body)


def dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_timeout_kills_the_program_and_its_grandchild(gw: Gateway, tmp: Path) -> None:
    """timeout_ms: SIGTERM then SIGKILL to the group; the result is a tool error (TOOL-10)."""
    pidfile = tmp / "sleeper.pids"

    async def body() -> None:
        async with session(gw.url) as s:
            started = time.monotonic()
            result = await s.call_tool("sleeper", {"pidfile": str(pidfile)})
            elapsed = time.monotonic() - started
            assert result.is_error
            assert text_of(result).startswith("timed out after 1000 ms")
            assert elapsed < 10

    run(body)
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while not all(dead(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(dead(p) for p in pids), pids


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_huge_output_is_capped(gw: Gateway) -> None:
    """max_output_bytes: 200 MB of stdout keeps 4096 bytes, marked truncated; `yes` is stopped by its timeout;
    the gateway's memory stays bounded."""

    async def body() -> None:
        async with session(gw.url) as s:
            before = rss_kb(gw.process.pid)
            result = await s.call_tool("flood", {"mb": 200})
            assert not result.is_error, text_of(result)
            assert result.content[0].text == "x" * 4096
            assert "stdout truncated at 4096 bytes" in text_of(result)
            assert meta_of(result) == {"truncated": True, "exit_code": 0}
            endless = await s.call_tool("endless", {"word": "y"})
            assert endless.is_error and text_of(endless).startswith("timed out after 1500 ms")
            assert meta_of(endless)["truncated"] is True
            grown = rss_kb(gw.process.pid) - before
            assert grown < 64 * 1024, f"gateway grew by {grown} KiB"

    run(body)


def test_exit_codes(gw: Gateway) -> None:
    """An exit code outside success_exit_codes is a tool error with the code and stderr; 7 is declared success."""

    async def body() -> None:
        async with session(gw.url) as s:
            failed = await s.call_tool("fail", {"code": 3, "why": "disk full"})
            assert failed.is_error
            assert text_of(failed) == "exit code 3: something went wrong: disk full"
            assert meta_of(failed)["exit_code"] == 3
            fine = await s.call_tool("fail", {"code": 7, "why": "declared fine"})
            assert not fine.is_error
            assert meta_of(fine)["exit_code"] == 7

    run(body)


def test_cancellation_kills_the_program(gw: Gateway, tmp: Path) -> None:
    """CANCEL-1: notifications/cancelled for a running call kills the program's group."""
    pidfile = tmp / "cancelled.pids"
    with RawSession(gw.url, timeout=20) as raw:
        raw.initialize()
        call_id = raw.next_id()
        answer: dict[str, Any] = {}

        def call() -> None:
            r = raw.post({"jsonrpc": "2.0", "id": call_id, "method": "tools/call",
                          "params": {"name": "sleeper", "arguments": {"pidfile": str(pidfile)}}})
            answer["status"] = r.status_code

        t = threading.Thread(target=call)
        t.start()
        deadline = time.monotonic() + 5
        while not pidfile.exists() or len(pidfile.read_text().split()) < 2:
            assert time.monotonic() < deadline, "the program did not start"
            time.sleep(0.05)
        pids = [int(p) for p in pidfile.read_text().split()]
        raw.post({"jsonrpc": "2.0", "method": "notifications/cancelled",
                  "params": {"requestId": call_id, "reason": "test"}})
        deadline = time.monotonic() + 3
        while not all(dead(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Killed well before the 1000 ms timeout would have fired plus its grace second.
        assert all(dead(p) for p in pids), pids
        t.join(timeout=10)


def test_config_errors(tmp_path: Path) -> None:
    """A missing program, a placeholder without a property, and a program given as a placeholder are config
    errors that name the place."""
    cases = [
        ('argv: [no-such-program-mcpg, "{x}"]', "not found on PATH"),
        ('argv: [/bin/echo, "{y}"]', "placeholder {y} is not a property"),
        ('argv: ["{x}"]', "the program must be literal"),
        ('argv: [/bin/echo, "{x"]', "unclosed"),
    ]
    for i, (argv, message) in enumerate(cases):
        backend = f"""
  cmd:
    plugin: command
    config:
      tools:
        - name: t
          {argv}
          inputSchema: {{ type: object, properties: {{ x: {{ type: string }} }} }}
"""
        config = add_backend(tmp_path / f"c{i}", backend, ["t"])
        r = run_mcpg("config", "validate", config.path, "--catalog")
        assert r.returncode != 0, argv
        assert message in r.stdout + r.stderr, (argv, r.stdout, r.stderr)


def test_example_config_is_valid() -> None:
    """examples/command loads: its programs are found and its templates parse."""
    r = run_mcpg("config", "validate", REPO / "examples" / "command" / "mcpg.yaml", "--catalog")
    assert r.returncode == 0, r.stdout + r.stderr
