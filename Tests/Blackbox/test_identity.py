"""Identity through the real binary: TLS on the HTTP front (server certificates reloaded, client certificates),
the `mtls`, `spiffe`, `oidc` and `apikey` plugins, identity chains (`first` with fallback and short-circuit,
`all`), 401/403 challenges (AUTH-3, AUTH-4, AUTH-5) and RFC 9728 protected resource metadata (AUTH-2).

Certificates are made with `openssl` by Tests/Support/pki.py; the OIDC issuer is Tests/Issuer/issuer.py.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import anyio
import httpx
import httpx2
import pytest

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import (
    ADMIN_TOOL, DEMO_KEY, PROTOCOL_VERSION, PUBLIC_TOOLS, REPO, RawSession, event_of, make_config, read_jsonl,
    run_mcpg, start_gateway,
)

DEMO_HASH = "cfb8ea227b8d4dce57e376587d1eb012967b9d1bb99f0811a7bd8164ca2fb63a"
APIKEY = f"""
  - plugin: apikey
    config:
      keys:
        - {{ id: demo, sha256: "{DEMO_HASH}", groups: [admins] }}
"""
AUDIENCE = "https://mcp.example.test"
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                   "clientInfo": {"name": "mcpg-identity-test", "version": "1"}}}
JSON_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


# ---------------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    subprocess.run([sys.executable, str(REPO / "Tests/Support/pki.py"), "make", str(d)], check=True, timeout=120)
    return d


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Tests/Issuer/issuer.py on a free port; yields its base URL."""
    logs = tmp_path_factory.mktemp("issuer")
    with open(logs / "stderr", "wb") as err:
        p = subprocess.Popen([sys.executable, str(REPO / "Tests/Issuer/issuer.py"), "--port", "0"],
                             stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    assert p.stdout is not None
    line = p.stdout.readline().decode().strip()
    assert line.isdigit(), f"issuer did not start: {(logs / 'stderr').read_text()}"
    try:
        yield f"http://127.0.0.1:{line}"
    finally:
        p.terminate()
        p.wait(timeout=10)


def tls_block(pki: Path, *, client_auth: str = "optional", client_ca: bool = True, cert: Path | None = None,
              key: Path | None = None, reload: int | None = None) -> dict[str, Any]:
    """`server.http` keys for make_config's http_extra: TLS with the test PKI's server certificate."""
    tls: dict[str, Any] = {"cert_file": str(cert or pki / "server.pem"), "key_file": str(key or pki / "server.key"),
                           "client_auth": client_auth}
    if client_ca:
        tls["client_ca_file"] = str(pki / "ca.pem")
    if reload is not None:
        tls["reload_interval_s"] = reload
    return {"tls": tls}


def ssl_context(pki: Path, client: str | None = None, ca: str = "ca.pem") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / ca))
    if client:
        ctx.load_cert_chain(str(pki / f"{client}.pem"), str(pki / f"{client}.key"))
    return ctx


def post(url: str, *, ctx: ssl.SSLContext | bool = True, headers: dict[str, str] | None = None,
         body: Any = INIT) -> httpx.Response:
    with httpx.Client(verify=ctx, timeout=10) as c:
        return c.post(url, content=json.dumps(body).encode(), headers={**JSON_HEADERS, **(headers or {})})


def events(path: Path, type_: str | None = None) -> list[dict[str, Any]]:
    out = [ev for ev in (event_of(e) for e in read_jsonl(path)) if ev is not None]
    return [ev for ev in out if type_ is None or ev.get("type") == type_]


def last_event(path: Path, type_: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        evs = events(path, type_)
        if evs:
            return evs[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {type_} event in {path}")
        time.sleep(0.05)


def challenge(r: httpx.Response) -> dict[str, str]:
    """The auth-params of a `WWW-Authenticate: Bearer …` header (quoted-strings unescaped)."""
    h = r.headers.get("www-authenticate", "")
    assert h.startswith("Bearer "), h
    params = {}
    for m in re.finditer(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', h[len("Bearer "):]):
        params[m.group(1)] = re.sub(r"\\(.)", r"\1", m.group(2))
    return params


# ---------------------------------------------------------------------------------------------------------------
# TLS, mtls, chains


def test_sdk_client_over_tls_with_client_certificate_then_api_key_fallback(tmp_path: Path, pki: Path) -> None:
    """mtls → apikey (`first`): the official SDK over https with alice's certificate; without one, the API key."""
    config = make_config(tmp_path, identity=f"""
identity:
  - plugin: mtls
    config: {{ ca_file: {pki / 'ca.pem'} }}
{APIKEY}""", http_extra=tls_block(pki))
    gw = start_gateway(config)
    try:
        async def sdk() -> set[str]:
            async with httpx2.AsyncClient(verify=ssl_context(pki, "alice"), timeout=httpx2.Timeout(20.0)) as http:
                async with streamable_http_client(config.url, http_client=http) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        tools = await session.list_tools()
                        result = await session.call_tool("echo", {"message": "hi over mTLS"})
                        assert result.content[0].text == "hi over mTLS"
                        return {t.name for t in tools.tools}

        async def bounded() -> set[str]:
            with anyio.fail_after(30):
                return await sdk()

        names = anyio.run(bounded)
        assert PUBLIC_TOOLS <= names and ADMIN_TOOL not in names
        call = last_event(config.ledger, "tools/call")
        assert call["principal"]["id"] == "alice"
        assert call["principal"]["groups"] == ["eng", "ops"]
        assert call["identity"]["plugin"] == "identity[0]"
        assert call["identity"]["mode"] == "first"

        # No certificate: mtls abstains, the API key authenticates; the audit record says both.
        r = post(config.url, ctx=ssl_context(pki), headers={"Authorization": f"Bearer {DEMO_KEY}"})
        assert r.status_code == 200, r.text
        init = last_event(config.ledger, "initialize")
        assert init["identity"]["plugin"] == "identity[1]"
        assert init["identity"]["abstained"] == [{"plugin": "identity[0]", "reason": "no client certificate"}]

        # Neither: 401 (no anonymous plugin here).
        assert post(config.url, ctx=ssl_context(pki)).status_code == 401

        # A certificate from another CA, or an expired one, fails the handshake (client_ca_file verifies).
        for bad in ("stranger", "expired"):
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                post(config.url, ctx=ssl_context(pki, bad))
        # Plain HTTP to the TLS port gets nowhere.
        with pytest.raises(httpx.HTTPError):
            post(config.url.replace("https://", "http://"))
    finally:
        gw.stop()


def test_unverified_client_certificates_are_left_to_plugins(tmp_path: Path, pki: Path) -> None:
    """No client CA at the TLS layer, `client_auth: required`: any certificate passes TLS, mtls verifies."""
    config = make_config(tmp_path, identity=f"""
identity:
  - plugin: mtls
    config: {{ ca_file: {pki / 'ca.pem'}, crl_files: [{pki / 'crl.pem'}] }}
""", http_extra=tls_block(pki, client_auth="required", client_ca=False))
    gw = start_gateway(config)
    try:
        assert post(config.url, ctx=ssl_context(pki, "alice")).status_code == 200
        for bad, reason in [("stranger", "not issued by a trusted CA"), ("revoked", "revoked"), ("expired", "expired")]:
            r = post(config.url, ctx=ssl_context(pki, bad))
            assert r.status_code == 401, (bad, r.text)
            ev = last_event(config.ledger, "authentication")
            assert reason in ev["identity"]["reason"], ev
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            post(config.url, ctx=ssl_context(pki))  # required: no certificate, no handshake
    finally:
        gw.stop()


def test_all_mode_needs_every_plugin_and_merges(tmp_path: Path, pki: Path) -> None:
    config = make_config(tmp_path, identity=f"""
chains:
  identity: all
identity:
  - plugin: mtls
    config: {{ ca_file: {pki / 'ca.pem'} }}
{APIKEY}""", http_extra=tls_block(pki))
    gw = start_gateway(config)
    try:
        key = {"Authorization": f"Bearer {DEMO_KEY}"}
        with RawSession(config.url, key=DEMO_KEY) as s:
            s.client.close()
            s.client = httpx.Client(verify=ssl_context(pki, "alice"), timeout=10)
            s.initialize()
            # admins comes from the API key, eng/ops from the certificate: admin_reset is allowed.
            assert s.call(ADMIN_TOOL)["result"]["content"][0]["text"] == "reset"
        call = last_event(config.ledger, "tools/call")
        assert call["principal"]["id"] == "alice"
        assert call["principal"]["groups"] == ["eng", "ops", "admins"]
        assert call["identity"]["plugins"] == ["identity[0]", "identity[1]"]
        assert call["identity"]["mode"] == "all"
        # Either credential alone is not enough.
        assert post(config.url, ctx=ssl_context(pki, "alice")).status_code == 401
        ev = last_event(config.ledger, "authentication")
        assert ev["identity"]["reason"] == "identity[1] abstained: no API key presented"
        assert post(config.url, ctx=ssl_context(pki), headers=key).status_code == 401
        ev = last_event(config.ledger, "authentication")
        assert ev["identity"]["plugin"] == "identity[0]"
    finally:
        gw.stop()


def test_reject_short_circuits_the_chain(tmp_path: Path, pki: Path) -> None:
    """apikey → mtls (`first`): a wrong key is refused even though the certificate would pass."""
    config = make_config(tmp_path, identity=f"""
identity:
{APIKEY}
  - plugin: mtls
    config: {{ ca_file: {pki / 'ca.pem'} }}
""", http_extra=tls_block(pki))
    gw = start_gateway(config)
    try:
        r = post(config.url, ctx=ssl_context(pki, "alice"), headers={"Authorization": "Bearer not-the-key"})
        assert r.status_code == 401
        ev = last_event(config.ledger, "authentication")
        assert [a["plugin"] for a in ev["identity"]["answers"]] == ["identity[0]"]
        assert ev["identity"]["answers"][0]["result"] == "reject"
        assert post(config.url, ctx=ssl_context(pki, "alice")).status_code == 200
    finally:
        gw.stop()


def test_spiffe_x509_and_jwt_svids(tmp_path: Path, pki: Path) -> None:
    # Bundle paths relative to the config file resolve against its directory.
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(pki / "spiffe-ca.pem", tmp_path / "example.org.pem")
    shutil.copy(pki / "jwks.json", tmp_path / "example.org.jwks")
    config = make_config(tmp_path, identity=f"""
identity:
  - plugin: spiffe
    config:
      trust_domains:
        example.org: {{ bundle_file: example.org.pem, jwks_file: example.org.jwks }}
      audiences: ["{AUDIENCE}"]
      ids:
        - {{ pattern: "spiffe://example.org/ns/prod/sa/*", groups: [admins] }}
""", http_extra=tls_block(pki, client_ca=False))
    gw = start_gateway(config)
    try:
        assert post(config.url, ctx=ssl_context(pki, "svid-web")).status_code == 200
        init = last_event(config.ledger, "initialize")
        assert init["principal"]["id"] == "spiffe://example.org/ns/prod/sa/web"
        assert init["principal"]["groups"] == ["admins"]
        assert post(config.url, ctx=ssl_context(pki, "svid-two-uris")).status_code == 401
        assert post(config.url, ctx=ssl_context(pki, "alice")).status_code == 401  # not an SVID: abstain
        token = subprocess.run([sys.executable, str(REPO / "Tests/Support/pki.py"), "mint-svid", str(pki), "--sub",
                                "spiffe://example.org/ns/prod/sa/db", "--aud", AUDIENCE],
                               capture_output=True, text=True, check=True).stdout.strip()
        r = post(config.url, ctx=ssl_context(pki), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert last_event(config.ledger, "initialize")["principal"]["attributes"]["svid"] == "jwt"
        bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        r = post(config.url, ctx=ssl_context(pki), headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401
        assert challenge(r)["error"] == "invalid_token"
        assert bad not in r.headers["www-authenticate"] and bad not in r.text
    finally:
        gw.stop()


def test_tls_certificate_reload(tmp_path: Path, pki: Path) -> None:
    """A new certificate in cert_file/key_file reaches new connections; a broken file keeps the last good one."""
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(pki / "server.pem", cert)
    shutil.copy(pki / "server.key", key)
    config = make_config(tmp_path / "gw", identity=f"identity:\n{APIKEY}",
                         http_extra=tls_block(pki, cert=cert, key=key, reload=1, client_auth="none", client_ca=False))
    gw = start_gateway(config)

    def served() -> bytes:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", config.port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                return s.getpeercert(binary_form=True)

    try:
        first = served()
        # A fresh self-signed certificate for 127.0.0.1, swapped in place (key first, then certificate).
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(tmp_path / "new.key"), "-out", str(tmp_path / "new.pem"), "-days", "2",
                        "-subj", "/CN=reloaded", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        shutil.copy(tmp_path / "new.key", key)
        shutil.copy(tmp_path / "new.pem", cert)
        deadline = time.monotonic() + 15
        while served() == first and time.monotonic() < deadline:
            time.sleep(0.2)
        second = served()
        assert second != first, "the new certificate was not picked up"
        r = post(config.url, ctx=ssl.create_default_context(cafile=str(tmp_path / "new.pem")),
                 headers={"Authorization": f"Bearer {DEMO_KEY}"})
        assert r.status_code == 200
        cert.write_text("not a certificate\n")
        time.sleep(2.5)
        assert served() == second
        assert gw.stderr().count("tls reload failed") == 1, gw.stderr()
    finally:
        gw.stop()


def test_bad_tls_files_are_config_errors_with_position(tmp_path: Path, pki: Path) -> None:
    config = make_config(tmp_path, identity=f"identity:\n{APIKEY}",
                         http_extra=tls_block(pki, cert=pki / "jwks.json", client_ca=False))
    r = run_mcpg("serve", "--config", config.path, timeout=60)
    assert r.returncode == 1
    line = next(i for i, t in enumerate(config.text.splitlines(), 1) if '"cert_file"' in t)
    assert re.search(rf"{re.escape(str(config.path))}:{line}:\d+: error: cert_file ", r.stderr), r.stderr
    v = run_mcpg("config", "validate", config.path, timeout=60)
    assert v.returncode == 1
    assert re.search(rf"{re.escape(str(config.path))}:{line}:\d+: error: cert_file ", v.stderr), v.stderr
    mismatched = make_config(tmp_path / "k", identity=f"identity:\n{APIKEY}",
                             http_extra=tls_block(pki, key=pki / "alice.key", client_ca=False))
    r = run_mcpg("serve", "--config", mismatched.path, timeout=60)
    assert r.returncode == 1
    assert "error: key_file" in r.stderr, r.stderr


# ---------------------------------------------------------------------------------------------------------------
# OIDC, challenges, RFC 9728


def mint(issuer: str, **body: Any) -> str:
    r = httpx.post(issuer + "/mint", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["token"]


@pytest.fixture(scope="module")
def oidc_gateway(tmp_path_factory: pytest.TempPathFactory, issuer: str) -> Iterator[Any]:
    config = make_config(tmp_path_factory.mktemp("oidc"), identity=f"""
identity:
  - plugin: oidc
    config:
      issuer: {issuer}
      audience: {AUDIENCE}
      required_scopes: [mcp:tools]
      jwks_min_refresh_s: 0
{APIKEY}""", http_extra={"public_url": f"{AUDIENCE}/mcp"})
    gw = start_gateway(config)
    try:
        yield gw
    finally:
        gw.stop()


def test_oidc_tokens_and_challenges(oidc_gateway: Any, issuer: str) -> None:
    url = oidc_gateway.url
    metadata_url = f"{AUDIENCE}/.well-known/oauth-protected-resource/mcp"
    good = mint(issuer, claims={"scope": "mcp:tools"})
    assert post(url, headers={"Authorization": f"Bearer {good}"}).status_code == 200

    # Nothing presented: 401 naming the metadata and the scope, without an error code (RFC 6750 §3.1).
    r = post(url)
    assert r.status_code == 401
    assert challenge(r) == {"realm": "mcpg", "resource_metadata": metadata_url, "scope": "mcp:tools"}

    # Missing scope: 403 insufficient_scope (AUTH-5).
    r = post(url, headers={"Authorization": f"Bearer {mint(issuer)}"})
    assert r.status_code == 403, r.text
    c = challenge(r)
    assert c["error"] == "insufficient_scope" and c["scope"] == "mcp:tools" and c["resource_metadata"] == metadata_url

    now = int(time.time())
    refused = {
        "expired": mint(issuer, claims={"scope": "mcp:tools", "exp": now - 3600, "iat": now - 7200}),
        "wrong audience": mint(issuer, claims={"scope": "mcp:tools", "aud": "https://other.example"}),
        "wrong issuer": mint(issuer, claims={"scope": "mcp:tools", "iss": "https://evil.example"}),
        "bad signature": good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"),
        "alg none": mint(issuer, alg="none", claims={"scope": "mcp:tools"}),
        "unknown kid": mint(issuer, kid="no-such-key", claims={"scope": "mcp:tools"}),
        "hmac confusion": mint(issuer, alg="HS256", hmac_secret="rsa-public-pem", claims={"scope": "mcp:tools"}),
    }
    for what, token in refused.items():
        r = post(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (what, r.text)
        c = challenge(r)
        assert c["error"] == "invalid_token", (what, c)
        assert c["resource_metadata"] == metadata_url
        assert token not in r.headers["www-authenticate"] and token not in r.text, what
    assert token not in oidc_gateway.stderr()

    # The API key still works after oidc: it is not a JWT, so oidc abstains.
    assert post(url, headers={"Authorization": f"Bearer {DEMO_KEY}"}).status_code == 200


def test_oidc_key_rotation_mid_run(oidc_gateway: Any, issuer: str) -> None:
    url = oidc_gateway.url
    before = mint(issuer, claims={"scope": "mcp:tools"})
    assert post(url, headers={"Authorization": f"Bearer {before}"}).status_code == 200
    assert httpx.post(issuer + "/rotate", timeout=10).status_code == 200
    after = mint(issuer, claims={"scope": "mcp:tools"})
    assert post(url, headers={"Authorization": f"Bearer {after}"}).status_code == 200  # unknown kid → refetch
    r = post(url, headers={"Authorization": f"Bearer {before}"})
    assert r.status_code == 401 and challenge(r)["error"] == "invalid_token"


def test_protected_resource_metadata_document(oidc_gateway: Any, issuer: str) -> None:
    """RFC 9728 at the root and the path form (AUTH-2, AUTH-3), no authentication needed."""
    base = f"http://127.0.0.1:{oidc_gateway.config.port}"
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].startswith("application/json")
        doc = r.json()
        assert doc["resource"] == f"{AUDIENCE}/mcp"
        assert doc["authorization_servers"] == [issuer]
        assert doc["scopes_supported"] == ["mcp:tools"]
        assert doc["bearer_methods_supported"] == ["header"]
        assert set(doc) == {"resource", "authorization_servers", "scopes_supported", "bearer_methods_supported"}
    assert httpx.get(base + "/.well-known/oauth-protected-resource/other", timeout=10).status_code == 404
    assert httpx.post(base + "/.well-known/oauth-protected-resource", timeout=10).status_code == 405


def test_no_metadata_without_a_publishing_plugin(tmp_path: Path) -> None:
    """apikey publishes no metadata: no well-known document, and a bare `Bearer realm` challenge."""
    config = make_config(tmp_path, identity=f"identity:\n{APIKEY}")
    gw = start_gateway(config)
    try:
        base = f"http://127.0.0.1:{config.port}"
        assert httpx.get(base + "/.well-known/oauth-protected-resource", timeout=10).status_code == 404
        r = post(config.url, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="mcpg"'
    finally:
        gw.stop()


def test_resource_url_defaults_to_the_listen_address(tmp_path: Path, pki: Path, issuer: str) -> None:
    config = make_config(tmp_path, identity=f"""
identity:
  - plugin: oidc
    config: {{ issuer: "{issuer}", audience: "{AUDIENCE}" }}
""", http_extra=tls_block(pki, client_auth="none", client_ca=False))
    gw = start_gateway(config)
    try:
        origin = f"https://127.0.0.1:{config.port}"
        r = httpx.get(origin + "/.well-known/oauth-protected-resource/mcp", verify=ssl_context(pki), timeout=10)
        assert r.json()["resource"] == origin + "/mcp"
        r = post(config.url, ctx=ssl_context(pki))
        assert challenge(r)["resource_metadata"] == origin + "/.well-known/oauth-protected-resource/mcp"
        assert "scope" not in challenge(r)  # the plugin names no scopes
    finally:
        gw.stop()
