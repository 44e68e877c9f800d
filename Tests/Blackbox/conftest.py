"""Fixtures for the black-box suite: the built `mcpg` binary, per-test configs, and gateways as subprocesses.

Everything here drives the real release build in `$MCPG_DIST` (default `<repo>/dist`, made by `make build`).
Configs are generated from examples/quickstart/mcpg.yaml into pytest's tmp dirs, with a free loopback port,
absolute paths to the dist plugins and keys, and a ledger and jsonl sink of their own, so tests never touch the
quickstart's port 8080 or its data under dist/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("MCPG_DIST") or REPO / "dist").resolve()
MCPG = DIST / "bin" / "mcpg"
PLUGIN_DIR = DIST / "lib" / "mcpg" / "plugins"
KEYS = DIST / "keys"
QUICKSTART = REPO / "examples" / "quickstart" / "mcpg.yaml"

DEMO_KEY = "quickstart-demo-key"
PROTOCOL_VERSION = "2025-11-25"
PLUGINS = ["apikey", "anonymous", "oidc", "mtls", "spiffe", "rules", "cedar", "casbin", "opa", "redact", "mock",
           "mcp", "http", "openapi", "graphql", "pipeline", "command", "sql", "jsonl", "prometheus", "otel", "syslog", "webhook", "postgres"]
# Tools the quickstart's rules give everyone; admin_reset is for the admins group only.
PUBLIC_TOOLS = {"echo", "get_weather", "lookup_customer", "count_slowly"}
ADMIN_TOOL = "admin_reset"
CORRELATION_KEY = "dev.mcpg/correlationId"
CARD = "4111 1111 1111 1111"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "swift_client: builds and runs the Swift SDK client (slow first build)")


@pytest.fixture(scope="session", autouse=True)
def require_dist() -> None:
    """Fail loudly (not skip) when the build under test is missing: a skipped black-box suite proves nothing."""
    missing = [p for p in [MCPG, KEYS / "dev-plugin.pub", KEYS / "audit.key", KEYS / "audit.pub"] if not p.exists()]
    missing += [PLUGIN_DIR / f"{n}.so{s}" for n in PLUGINS for s in ("", ".minisig") if not (PLUGIN_DIR / f"{n}.so{s}").exists()]
    if missing:
        pytest.fail(
            f"MCPG_DIST={DIST} is incomplete (run `make build`); missing: " + ", ".join(str(p) for p in missing),
            pytrace=False,
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_mcpg(*args: str | os.PathLike[str], timeout: float = 30.0, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Runs `mcpg ARGS…` to completion (bounded) and returns its exit code, stdout and stderr."""
    return subprocess.run(
        [str(MCPG), *map(str, args)], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------------------------------------------------------
# Configs


@dataclass
class GatewayConfig:
    """A generated config file and the paths it points at."""

    path: Path
    port: int
    ledger: Path
    jsonl: Path
    mcp_path: str = "/mcp"
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.mcp_path}"

    @property
    def text(self) -> str:
        return self.path.read_text()


def _replace_once(text: str, pattern: str, replacement: str, flags: int = 0) -> str:
    new, n = re.subn(pattern, lambda _m: replacement, text, count=1, flags=flags)
    assert n == 1, f"quickstart config changed shape: pattern {pattern!r} not found"
    return new


def make_config(directory: Path, *, anonymous: bool = True, page_size: int | None = None,
                max_body_bytes: int | None = None, plugin_dir: Path | None = None,
                trusted_key: Path | str | None = None, port: int | None = None,
                count_slowly_ms: int | None = None, policy: str | None = None, identity: str | None = None,
                http_extra: dict[str, Any] | None = None) -> GatewayConfig:
    """Writes `directory/mcpg.yaml`: the quickstart with its own port, ledger and sink, and absolute dist paths."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data"
    port = port or free_port()
    text = QUICKSTART.read_text()
    text = _replace_once(text, r'listen:\s*"[^"]*"', f'listen: "127.0.0.1:{port}"')
    # Data first (its prefix is longer), then every other dist-relative path.
    text = text.replace("../../dist/data/quickstart/", f"{data}/")
    text = text.replace("../../dist/", f"{DIST}/")
    if plugin_dir is not None:
        text = _replace_once(text, r"(\n  dir: )[^\n]*", f"\n  dir: {plugin_dir}")
    if trusted_key is not None:
        text = _replace_once(text, r"trusted_keys: \[[^\]]*\]", f"trusted_keys: [{trusted_key}]")
    if not anonymous:
        text = _replace_once(text, r"\n  - plugin: anonymous[^\n]*", "")
    if page_size is not None:
        text = _replace_once(text, r"\nserver:\n", f"\nserver:\n  page_size: {page_size}\n")
    if count_slowly_ms is not None:
        text, n = re.subn(r"(progress_steps: 3\n\s*delay_ms: )\d+", rf"\g<1>{count_slowly_ms}", text, count=1)
        assert n == 1, "quickstart config changed shape: count_slowly's delay_ms not found"
    if max_body_bytes is not None:
        text = _replace_once(text, r"(\n    path: /mcp)", f"\n    path: /mcp\n    max_body_bytes: {max_body_bytes}")
    for key, value in (http_extra or {}).items():
        text = _replace_once(text, r"(\n    path: /mcp)", f"\n    path: /mcp\n    {key}: {json.dumps(value)}")
    if policy is not None:
        # The whole `policy:` section (and anything else given, e.g. `chains:`), up to `transforms:`.
        text = _replace_once(text, r"\npolicy:\n.*?\ntransforms:", "\n" + policy.strip("\n") + "\ntransforms:",
                             flags=re.DOTALL)
    if identity is not None:
        # The whole `identity:` section, up to `policy:`.
        text = _replace_once(text, r"\nidentity:\n.*?\npolicy:", "\n" + identity.strip("\n") + "\npolicy:", flags=re.DOTALL)
    path = directory / "mcpg.yaml"
    path.write_text(text)
    scheme = "https" if "tls" in (http_extra or {}) else "http"
    return GatewayConfig(path=path, port=port, ledger=data / "audit.ledger", jsonl=data / "audit.jsonl",
                         scheme=scheme)


# ---------------------------------------------------------------------------------------------------------------
# Gateway processes


@dataclass
class Gateway:
    """A running `mcpg serve` subprocess. Logs go to files (a full pipe would stall the gateway)."""

    config: GatewayConfig
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    returncode: int | None = field(default=None)

    @property
    def url(self) -> str:
        return self.config.url

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, wait (bounded), SIGKILL if it did not stop. Returns the exit code (negative: killed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        self.returncode = self.process.returncode
        return self.returncode


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, stderr_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"mcpg exited with {process.returncode} before listening; stderr:\n{stderr_path.read_text(errors='replace')}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"mcpg did not listen on {port} within {timeout}s; stderr:\n{stderr_path.read_text(errors='replace')}")


@contextmanager
def example_with_upstream(example: Path, directory: Path, upstream: Path, upstream_args: list[str],
                          replacements: dict[str, str], *, env: dict[str, str] | None = None) -> Iterator[Gateway]:
    """An examples/<name>/mcpg.yaml served in front of its sample upstream (a script under Tests/Upstreams run by
    the venv's Python, which prints its port): the example's `listen` address, every `upstream port` placeholder
    (the keys of `replacements` mapping to "{port}"), its data folder and ../../dist/ are rewritten for the test."""
    api = subprocess.Popen([str(REPO / ".venv" / "bin" / "python"), str(upstream), *upstream_args],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = api.stdout.readline() if api.stdout else ""
        assert line.strip().isdigit(), f"{upstream.name} did not start: {line!r}"
        port = free_port()
        text = re.sub(r'listen: "127\.0\.0\.1:\d+"', f'listen: "127.0.0.1:{port}"', example.read_text(), count=1)
        for old, new in replacements.items():
            text = text.replace(old, new.format(port=int(line), repo=REPO))
        text = re.sub(r"\.\./\.\./dist/data/[^/]+/", f"{directory}/data/", text)
        text = text.replace("../../dist/", f"{DIST}/")
        path = directory / "mcpg.yaml"
        path.write_text(text)
        gw = start_gateway(GatewayConfig(path=path, port=port, ledger=directory / "data" / "audit.ledger",
                                         jsonl=directory / "data" / "audit.jsonl"), env=env)
        try:
            yield gw
        finally:
            gw.stop()
    finally:
        api.terminate()
        api.wait(timeout=10)


def start_gateway(config: GatewayConfig, *, env: dict[str, str] | None = None) -> Gateway:
    """Starts `mcpg serve --config F` and waits until its port accepts connections."""
    logs = config.path.parent
    stdout_path, stderr_path = logs / "serve.stdout", logs / "serve.stderr"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            [str(MCPG), "serve", "--config", str(config.path)], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
    gateway = Gateway(config, process, stdout_path, stderr_path)
    try:
        wait_for_port(config.port, process, START_TIMEOUT, stderr_path)
    except BaseException:
        gateway.stop()
        raise
    return gateway


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Any]:
    """Starts gateways for one test (`factory(**make_config kwargs)`) and always stops them afterwards."""
    started: list[Gateway] = []

    def factory(name: str = "gw", **kwargs: Any) -> Gateway:
        gw = start_gateway(make_config(tmp_path / name, **kwargs))
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        gw.stop()


def _module_gateway(tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: Any) -> Iterator[Gateway]:
    gw = start_gateway(make_config(tmp_path_factory.mktemp(name), **kwargs))
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The quickstart (apikey + anonymous on loopback), with 2 items per page and a 4 KiB body limit."""
    yield from _module_gateway(tmp_path_factory, "quickstart", page_size=2, max_body_bytes=4096)


@pytest.fixture(scope="module")
def keyonly_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The quickstart without the anonymous identity plugin: every caller needs the API key."""
    yield from _module_gateway(tmp_path_factory, "keyonly", anonymous=False)


# ---------------------------------------------------------------------------------------------------------------
# Raw HTTP


def sse_messages(body: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages in an SSE body (events with `data:` lines; priming events with empty data skipped)."""
    messages = []
    for block in re.split(r"\r?\n\r?\n", body):
        data = [line[5:].lstrip(" ") if line.startswith("data:") else None for line in block.splitlines()]
        payload = "\n".join(d for d in data if d is not None)
        if payload.strip():
            messages.append(json.loads(payload))
    return messages


class RawSession:
    """A hand-driven MCP session over httpx: every header is explicit, so tests can break them one at a time."""

    def __init__(self, url: str, *, key: str | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self.key = key
        self.client = httpx.Client(timeout=timeout)
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.init_result: dict[str, Any] | None = None
        self._next_id = 1

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "RawSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def headers(self, *, session: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if self.key is not None:
            h["Authorization"] = f"Bearer {self.key}"
        if session and self.session_id is not None:
            h["Mcp-Session-Id"] = self.session_id
        if session and self.protocol_version is not None:
            h["MCP-Protocol-Version"] = self.protocol_version
        h.update(extra or {})
        return h

    def post(self, message: Any, *, session: bool = True, headers: dict[str, str] | None = None,
             content: bytes | None = None) -> httpx.Response:
        body = content if content is not None else json.dumps(message).encode()
        return self.client.post(self.url, content=body, headers=self.headers(session=session, extra=headers))

    def initialize(self) -> httpx.Response:
        r = self.post(
            {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                        "clientInfo": {"name": "mcpg-blackbox-raw", "version": "1.0"}}},
            session=False,
        )
        assert r.status_code == 200, (r.status_code, r.text)
        self.session_id = r.headers.get("mcp-session-id")
        assert self.session_id, f"initialize answer has no Mcp-Session-Id header: {dict(r.headers)}"
        self.init_result = r.json()["result"]
        self.protocol_version = self.init_result["protocolVersion"]
        n = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert n.status_code == 202, (n.status_code, n.text)
        return r

    def request(self, method: str, params: dict[str, Any] | None = None, *,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Sends a request and returns the JSON-RPC answer (from a JSON body or the last SSE message)."""
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id(), "method": method}
        if params is not None:
            msg["params"] = params
        r = self.post(msg, headers=headers)
        assert r.status_code == 200, (method, r.status_code, r.text)
        return answer_of(r, msg["id"])

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("tools/call", {"name": name, "arguments": arguments or {}})


def answer_of(r: httpx.Response, request_id: Any) -> dict[str, Any]:
    ctype = r.headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        answers = [m for m in sse_messages(r.text) if m.get("id") == request_id and "method" not in m]
        assert len(answers) == 1, f"expected one answer for id {request_id} in SSE body: {r.text}"
        return answers[0]
    assert ctype.startswith("application/json"), f"unexpected content-type {ctype!r}: {r.text}"
    return r.json()


@pytest.fixture
def raw(gateway: Gateway) -> Iterator[RawSession]:
    """An initialized raw session (anonymous) on the module gateway."""
    with RawSession(gateway.url) as s:
        s.initialize()
        yield s


# ---------------------------------------------------------------------------------------------------------------
# Ledger and sink


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line still being written
    return out


def event_of(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The audit event in a ledger record (`{"event": …}`) or a sink line (the event itself, or wrapped)."""
    if isinstance(entry.get("event"), dict):
        return entry["event"]
    if "type" in entry and "id" in entry:
        return entry
    return None


def wait_for_event(path: Path, correlation_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Polls a ledger or jsonl file until the event with this correlation id appears."""
    deadline = time.monotonic() + timeout
    while True:
        for entry in read_jsonl(path):
            ev = event_of(entry)
            if ev is not None and ev.get("id") == correlation_id:
                return ev
        if time.monotonic() > deadline:
            raise AssertionError(f"no event with id {correlation_id} in {path} after {timeout}s:\n"
                                 + (path.read_text() if path.exists() else "(file missing)"))
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------------------
# Files


def flip_byte(path: Path, offset: int | None = None) -> int:
    """Inverts one byte of a file (the middle one by default) and returns its offset."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return i


def trusted_comment(minisig: Path) -> str:
    """The trusted comment of a minisign signature file (its third line)."""
    for line in minisig.read_text().splitlines():
        if line.startswith("trusted comment: "):
            return line[len("trusted comment: "):]
    raise AssertionError(f"{minisig} has no trusted comment")


def copy_plugins(dest: Path, names: list[str] | None = None) -> Path:
    """Copies the dist plugins (with signatures) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for n in names or PLUGINS:
        for suffix in (".so", ".so.minisig"):
            shutil.copy2(PLUGIN_DIR / f"{n}{suffix}", dest / f"{n}{suffix}")
    return dest
