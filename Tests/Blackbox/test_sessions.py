"""Sessions that survive a restart and move between replicas: the session id carries the session, sealed with a
key the gateways share (`server.http.session_key_file`), so no sticky load balancer is needed (HTTP-12, HTTP-13,
SEC-3)."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import DEMO_KEY, RawSession, make_config, start_gateway


def key_file(directory: Path, name: str = "session.key") -> Path:
    path = directory / name
    path.write_bytes(os.urandom(32))
    path.chmod(0o600)  # a secret other users can read is a config error
    return path


def test_a_session_survives_a_restart(tmp_path: Path) -> None:
    key = key_file(tmp_path)
    config = make_config(tmp_path / "gw", http_extra={"session_key_file": str(key)})
    gw = start_gateway(config)
    with RawSession(gw.url) as s:
        s.initialize()
        assert s.call("echo", {"message": "before"})["result"]["content"][0]["text"] == "before"
        gw.stop()
        gw = start_gateway(config)
        try:
            # Same id, new process: served without a new initialize.
            assert s.call("echo", {"message": "after"})["result"]["content"][0]["text"] == "after"
            # Still bound to its principal: the demo key (another principal) cannot use it (SEC-3).
            r = s.post({"jsonrpc": "2.0", "id": 99, "method": "tools/list"},
                       headers={"Authorization": f"Bearer {DEMO_KEY}"})
            assert r.status_code == 404
            # DELETE ends it for good here.
            assert s.client.delete(gw.url, headers=s.headers()).status_code == 200
            r = s.post({"jsonrpc": "2.0", "id": 100, "method": "tools/list"})
            assert r.status_code == 404
        finally:
            gw.stop()


def test_replicas_with_the_same_key_serve_each_others_sessions(tmp_path: Path) -> None:
    key = key_file(tmp_path)
    a = start_gateway(make_config(tmp_path / "a", http_extra={"session_key_file": str(key)}))
    b = start_gateway(make_config(tmp_path / "b", http_extra={"session_key_file": str(key)}))
    c = start_gateway(make_config(tmp_path / "c", http_extra={"session_key_file": str(key_file(tmp_path, "other.key"))}))
    try:
        with RawSession(a.url) as s:
            s.initialize()
            s.url = b.url
            assert s.call("echo", {"message": "on b"})["result"]["content"][0]["text"] == "on b"
            # A gateway with another key does not know it: 404, the client re-initializes (HTTP-13).
            s.url = c.url
            r = s.post({"jsonrpc": "2.0", "id": 7, "method": "tools/list"})
            assert r.status_code == 404
            # A forged id is refused too.
            s.url = b.url
            s.session_id = s.session_id[:-4] + ("AAAA" if not s.session_id.endswith("AAAA") else "BBBB")
            assert s.post({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}).status_code == 404
    finally:
        for g in (a, b, c):
            g.stop()
