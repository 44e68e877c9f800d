"""The test OPA server (opa_server.py) answers as OPA's Data API does, with decisions from regopy.

The Swift client's own tests (Tests/OPAClientTests) start this server; these check the server itself:
result/undefined shapes, false vs undefined, batch documents, and the test flags.
"""
import http.client
import json
import pathlib
import signal
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent

POLICY = """
package mcpg.authz
import rego.v1

default allow := false

allow if input.user == "alice"

allow if input.user in data.admins

batch := [d | some q in input.queries; d := q.user == "alice"]

reason := "admin" if input.user in data.admins
"""


class Server:
    def __init__(self, tmp: pathlib.Path, *flags: str):
        (tmp / "p.rego").write_text(POLICY)
        (tmp / "d.json").write_text(json.dumps({"admins": ["root"]}))
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "opa_server.py"), "--data", str(tmp / "d.json"), *flags, str(tmp / "p.rego")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip().isdigit(), f"server did not start: {line!r} {self.proc.stderr.read()}"
        self.port = int(line)

    def call(self, method: str, path: str, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, json.loads(data)

    def decide(self, path: str, input_value, headers=None):
        return self.call("POST", "/v1/data/" + path, {"input": input_value}, headers)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()


def test_result_false_and_undefined(server):
    assert server.decide("mcpg/authz/allow", {"user": "alice"}) == (200, {"result": True})
    assert server.decide("mcpg/authz/allow", {"user": "bob"}) == (200, {"result": False})
    assert server.decide("mcpg/authz/allow", {"user": "root"}) == (200, {"result": True})
    assert server.decide("mcpg/authz/reason", {"user": "bob"}) == (200, {})
    assert server.decide("mcpg/authz/reason", {"user": "root"}) == (200, {"result": "admin"})
    assert server.decide("no/such/document", {}) == (200, {})


def test_batch_document(server):
    status, body = server.decide("mcpg/authz/batch", {"queries": [{"user": "alice"}, {"user": "x"}]})
    assert (status, body) == (200, {"result": [True, False]})


def test_bad_body_and_stats(server):
    assert server.call("POST", "/v1/data/mcpg/authz/allow", "not an object")[0] == 400
    status, stats = server.call("GET", "/stats")
    assert status == 200 and stats["requests"] == 1 and stats["inputs"] == 0


def test_fail_status_and_control(server):
    server.call("POST", "/control", {"fail_status": 503})
    status, body = server.decide("mcpg/authz/allow", {"user": "alice"})
    assert status == 503 and body["code"] == "internal_error"
    server.call("POST", "/control", {"fail_status": None})
    assert server.decide("mcpg/authz/allow", {"user": "alice"}) == (200, {"result": True})


def test_required_token_and_header(tmp_path):
    s = Server(tmp_path, "--require-token", "tok", "--require-header", "X-Tenant=acme")
    try:
        assert s.decide("mcpg/authz/allow", {"user": "alice"})[0] == 401
        auth = {"Authorization": "Bearer tok"}
        assert s.decide("mcpg/authz/allow", {"user": "alice"}, auth)[0] == 403
        ok = s.decide("mcpg/authz/allow", {"user": "alice"}, {**auth, "X-Tenant": "acme"})
        assert ok == (200, {"result": True})
        assert s.call("GET", "/stats")[1]["last_headers"]["x-tenant"] == "acme"
    finally:
        s.stop()
