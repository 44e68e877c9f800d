"""Streamable HTTP edge cases, driven by hand with httpx so every header and body is explicit.

IDs refer to shared/mcp-spec.md (the MCP checklist beside this repository) (HTTP-*, BASE-*, ERR-*, PAGE-*, GW-*, CANC-*, PROG-*, AUTH-*).
The module gateway is the quickstart with `server.page_size: 2` and `server.http.max_body_bytes: 4096`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import httpx
import pytest

from conftest import (
    ADMIN_TOOL, CARD, CORRELATION_KEY, DEMO_KEY, PROTOCOL_VERSION, PUBLIC_TOOLS, Gateway, RawSession, answer_of,
    read_jsonl, sse_messages, wait_for_event, event_of,
)

JSON_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def error_of(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert "error" in body, body
    assert isinstance(body["error"]["code"], int) and isinstance(body["error"]["message"], str)
    return body["error"]


# --- lifecycle and sessions --------------------------------------------------------------------------------------


def test_initialize_answers_json_with_session(gateway: Gateway) -> None:
    """LIFE-2, LIFE-3, HTTP-5, HTTP-12: initialize → 200 application/json, InitializeResult with the requested
    version, and a visible-ASCII MCP-Session-Id; each initialize gets a distinct session."""
    with RawSession(gateway.url) as a, RawSession(gateway.url) as b:
        r = a.initialize()
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["jsonrpc"] == "2.0" and body["id"] == 1
        result = body["result"]
        assert result["protocolVersion"] == PROTOCOL_VERSION
        assert "tools" in result["capabilities"]
        assert result["serverInfo"]["name"] and result["serverInfo"]["version"]
        assert re.fullmatch(r"[\x21-\x7e]+", a.session_id or "")
        b.initialize()
        assert a.session_id != b.session_id


def test_initialized_notification_gets_202(raw: RawSession) -> None:
    """HTTP-4, BASE-4: a notification is accepted with 202 and no body."""
    r = raw.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert r.status_code == 202
    assert r.content == b""


def test_client_response_gets_202(raw: RawSession) -> None:
    """HTTP-4: a JSON-RPC response POSTed by the client is accepted with 202 and no body."""
    r = raw.post({"jsonrpc": "2.0", "id": "server-req-1", "result": {}})
    assert r.status_code == 202
    assert r.content == b""


def test_ping(raw: RawSession) -> None:
    """PING-1: ping answers an empty result."""
    answer = raw.request("ping")
    assert answer["result"] == {}


def test_missing_session_header_is_400(gateway: Gateway, raw: RawSession) -> None:
    """HTTP-13: a non-initialize request without MCP-Session-Id → 400."""
    r = raw.client.post(
        gateway.url, headers={**JSON_ACCEPT, "MCP-Protocol-Version": PROTOCOL_VERSION},
        json={"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
    )
    assert r.status_code == 400


def test_unknown_session_is_404(raw: RawSession) -> None:
    """HTTP-13: a session id the server never issued → 404."""
    r = raw.post({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}, headers={"Mcp-Session-Id": "no-such-session"})
    assert r.status_code == 404


def test_delete_ends_session(gateway: Gateway) -> None:
    """HTTP-14, HTTP-13: DELETE with the session id → 200; afterwards the same id → 404 (POST and DELETE)."""
    with RawSession(gateway.url) as s:
        s.initialize()
        assert s.request("tools/list")["result"]["tools"]
        d = s.client.delete(gateway.url, headers=s.headers())
        assert d.status_code == 200
        r = s.post({"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
        assert r.status_code == 404
        again = s.client.delete(gateway.url, headers=s.headers())
        assert again.status_code == 404


def test_session_is_bound_to_principal(gateway: Gateway) -> None:
    """SEC-3: a session created by the admin key cannot be used by an anonymous caller who learns its id."""
    with RawSession(gateway.url, key=DEMO_KEY) as admin, RawSession(gateway.url) as anon:
        admin.initialize()
        anon.session_id, anon.protocol_version = admin.session_id, admin.protocol_version
        r = anon.post({"jsonrpc": "2.0", "id": 10, "method": "tools/list"})
        assert r.status_code == 404


def test_get_stream_or_405(raw: RawSession) -> None:
    """HTTP-9: GET on the endpoint is either an SSE stream or 405 Method Not Allowed."""
    headers = {k: v for k, v in raw.headers().items() if k != "Content-Type"}
    headers["Accept"] = "text/event-stream"
    with raw.client.stream("GET", raw.url, headers=headers, timeout=5.0) as r:
        if r.status_code == 200:
            assert r.headers["content-type"].startswith("text/event-stream")
        else:
            assert r.status_code == 405


# --- header validation -------------------------------------------------------------------------------------------


def test_bad_protocol_version_is_400(raw: RawSession) -> None:
    """HTTP-15: an invalid or unsupported MCP-Protocol-Version → 400."""
    for bad in ("1999-01-01", "not-a-version"):
        r = raw.post({"jsonrpc": "2.0", "id": 11, "method": "tools/list"}, headers={"MCP-Protocol-Version": bad})
        assert r.status_code == 400, (bad, r.status_code, r.text)


def test_evil_origin_is_403(raw: RawSession) -> None:
    """HTTP-2: a foreign Origin (DNS rebinding) → 403, for initialize and for in-session requests."""
    r = raw.post({"jsonrpc": "2.0", "id": 12, "method": "tools/list"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = raw.client.post(
        raw.url, headers={**JSON_ACCEPT, "Origin": "http://evil.example"},
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                         "clientInfo": {"name": "evil", "version": "1"}}},
    )
    assert r.status_code == 403
    assert "mcp-session-id" not in r.headers


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://127.0.0.1:5173", "http://[::1]:8080",
                                    "http://localhost"])
def test_loopback_origin_is_allowed(raw: RawSession, origin: str) -> None:
    """HTTP-2: loopback origins are allowed when the gateway listens on loopback."""
    r = raw.post({"jsonrpc": "2.0", "id": 13, "method": "ping"}, headers={"Origin": origin})
    assert r.status_code == 200, (origin, r.status_code, r.text)
    assert answer_of(r, 13)["result"] == {}


def test_body_over_limit_is_413(raw: RawSession) -> None:
    """max_body_bytes (4096 here): a larger body → 413; one just under the limit is served."""
    big = {"jsonrpc": "2.0", "id": 14, "method": "tools/call",
           "params": {"name": "echo", "arguments": {"message": "x" * 8192}}}
    r = raw.post(big)
    assert r.status_code == 413
    ok = raw.call("echo", {"message": "y" * 3000})
    assert ok["result"]["content"][0]["text"] == "y" * 3000


def test_wrong_content_type_is_415(raw: RawSession) -> None:
    """HTTP-3: the body must be application/json; text/plain → 415."""
    r = raw.post({"jsonrpc": "2.0", "id": 15, "method": "ping"}, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


# --- JSON-RPC framing --------------------------------------------------------------------------------------------


def test_batch_is_rejected(raw: RawSession) -> None:
    """BASE-5: a JSON array (batch) is not MCP → 400 with -32600."""
    batch = [{"jsonrpc": "2.0", "id": 16, "method": "ping"}, {"jsonrpc": "2.0", "id": 17, "method": "ping"}]
    r = raw.post(batch)
    assert r.status_code == 400
    assert error_of(r)["code"] == -32600


def test_invalid_json_is_parse_error(raw: RawSession) -> None:
    """ERR-1: a body that is not JSON → 400 with -32700."""
    r = raw.post(None, content=b'{"jsonrpc": "2.0", "id": 18, "method": ')
    assert r.status_code == 400
    assert error_of(r)["code"] == -32700


def test_unknown_method(raw: RawSession) -> None:
    """ERR-1: an unknown method → JSON-RPC -32601 with the request's id (BASE-3)."""
    answer = raw.request("no/such/method", {})
    assert answer["id"] is not None
    assert answer["error"]["code"] == -32601


# --- tools: pagination, policy, results --------------------------------------------------------------------------


def test_tools_list_paginates_with_gateway_cursors(raw: RawSession) -> None:
    """PAGE-1, GW-4: with page_size 2 the 4 public tools come in pages of at most 2, each cursor leads on, the
    last page has no nextCursor, and no tool repeats."""
    names: list[str] = []
    pages = 0
    cursor = None
    while True:
        result = raw.request("tools/list", {"cursor": cursor} if cursor else {})["result"]
        pages += 1
        assert 1 <= len(result["tools"]) <= 2
        names += [t["name"] for t in result["tools"]]
        cursor = result.get("nextCursor")
        if not cursor:
            break
        assert isinstance(cursor, str)
        assert pages < 10
    assert pages == 2
    assert sorted(names) == sorted(PUBLIC_TOOLS)


def test_garbage_cursor_is_invalid_params(raw: RawSession) -> None:
    """PAGE-2, GW-4: a cursor the gateway did not issue → -32602."""
    for cursor in ("garbage", "eyJvZmZzZXQiOjB9", ""):
        answer = raw.request("tools/list", {"cursor": cursor})
        assert "error" in answer, (cursor, answer)
        assert answer["error"]["code"] == -32602


def test_cursor_from_other_principal_does_not_leak(gateway: Gateway) -> None:
    """GW-4: paging with the admin's cursor as anonymous never reveals the admin-only tool."""
    with RawSession(gateway.url, key=DEMO_KEY) as admin, RawSession(gateway.url) as anon:
        admin.initialize()
        anon.initialize()
        first = admin.request("tools/list", {})["result"]
        cursor = first.get("nextCursor")
        assert cursor
        answer = anon.request("tools/list", {"cursor": cursor})
        if "result" in answer:
            assert ADMIN_TOOL not in [t["name"] for t in answer["result"]["tools"]]
        else:
            assert answer["error"]["code"] == -32602


def test_denied_tool_is_hidden_and_refused_without_detail(gateway: Gateway, raw: RawSession) -> None:
    """Policy: admin_reset is absent from an anonymous tools/list; calling it → -32003 "Not permitted" whose
    message and data name no rule or backend (data carries only the correlation id, which is in the ledger)."""
    listed = []
    cursor = None
    for _ in range(10):
        result = raw.request("tools/list", {"cursor": cursor} if cursor else {})["result"]
        listed += [t["name"] for t in result["tools"]]
        cursor = result.get("nextCursor")
        if not cursor:
            break
    assert ADMIN_TOOL not in listed

    answer = raw.call(ADMIN_TOOL)
    error = answer["error"]
    assert error["code"] == -32003
    assert error["message"] == "Not permitted"
    assert set(error["data"].keys()) == {"correlationId"}
    leaked = json.dumps(error)
    for secret in ("admins-all", "everyone-basic", "demo", "mock", "rules", "admins"):
        assert secret not in leaked, (secret, error)
    ev = wait_for_event(gateway.config.ledger, error["data"]["correlationId"])
    assert ev["type"] == "tools/call" and ev["tool"] == ADMIN_TOOL
    assert ev["decision"]["effect"] == "deny"
    assert ev["outcome"]["status"] == "error"


def test_unknown_tool_is_refused_like_a_denied_one(raw: RawSession) -> None:
    """A caller cannot probe which tools exist: an unknown tool is refused with the same -32003 as a denied one
    (policy runs before the catalog lookup; the quickstart's rules do not allow unknown names)."""
    answer = raw.call("no_such_tool")
    assert answer["error"]["code"] == -32003
    assert answer["error"]["message"] == "Not permitted"


def test_demo_key_sees_and_calls_admin_tool(gateway: Gateway) -> None:
    """The demo key authenticates as `demo` in group admins: admin_reset is listed and callable."""
    with RawSession(gateway.url, key=DEMO_KEY) as s:
        s.initialize()
        listed = []
        cursor = None
        for _ in range(10):
            result = s.request("tools/list", {"cursor": cursor} if cursor else {})["result"]
            listed += [t["name"] for t in result["tools"]]
            cursor = result.get("nextCursor")
            if not cursor:
                break
        assert sorted(listed) == sorted(PUBLIC_TOOLS | {ADMIN_TOOL})
        answer = s.call(ADMIN_TOOL)
        assert answer["result"]["content"][0]["text"] == "reset"
        ev = wait_for_event(gateway.config.ledger, answer["result"]["_meta"][CORRELATION_KEY])
        assert ev["principal"]["id"] == "demo"


def test_correlation_id_matches_ledger_and_sink(gateway: Gateway, raw: RawSession) -> None:
    """Every result carries _meta["dev.mcpg/correlationId"]; it is the `id` of the tools/call event in the ledger
    and in the jsonl sink, with principal, decision and outcome."""
    answer = raw.call("echo", {"message": "audited"})
    result = answer["result"]
    assert result["content"] == [{"type": "text", "text": "audited"}]
    cid = result["_meta"][CORRELATION_KEY]
    ev = wait_for_event(gateway.config.ledger, cid)
    assert ev["type"] == "tools/call"
    assert ev["tool"] == "echo"
    assert ev["principal"]["id"] == "anonymous"
    assert ev["decision"]["effect"] == "allow"
    assert isinstance(ev["decision"]["reasons"], list) and ev["decision"]["reasons"]
    assert ev["outcome"]["status"] == "ok"
    sink_ev = wait_for_event(gateway.config.jsonl, cid)
    assert sink_ev["type"] == "tools/call" and sink_ev["outcome"] == ev["outcome"]
    # Each answered call has exactly one record.
    assert sum(1 for e in read_jsonl(gateway.config.ledger) if (event_of(e) or {}).get("id") == cid) == 1


def test_redaction_in_result(raw: RawSession) -> None:
    """The redact transform replaces lookup_customer's card number before the client sees it."""
    text = raw.call("lookup_customer", {"id": "c-7"})["result"]["content"][0]["text"]
    assert text.startswith("Customer c-7: Ada Lovelace")
    assert CARD not in text and CARD.replace(" ", "") not in text
    assert "[REDACTED:card]" in text


def test_structured_content(raw: RawSession) -> None:
    """TOOL-7: get_weather answers structuredContent (and, per the spec's SHOULD, a text block)."""
    result = raw.call("get_weather", {"city": "Kyoto"})["result"]
    assert result["structuredContent"] == {"city": "Kyoto", "temperature_c": 21, "conditions": "sunny"}
    text_blocks = [c for c in result["content"] if c["type"] == "text"]
    assert text_blocks and json.loads(text_blocks[0]["text"]) == result["structuredContent"]


def test_progress_switches_to_sse(raw: RawSession) -> None:
    """HTTP-5, HTTP-6, PROG-1, PROG-2: a call that emits progress is answered as text/event-stream carrying the
    three progress notifications (increasing, with our token) and then the response."""
    rid = raw.next_id()
    r = raw.post({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                  "params": {"name": "count_slowly", "arguments": {}, "_meta": {"progressToken": "tok-1"}}})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    messages = sse_messages(r.text)
    progress = [m for m in messages if m.get("method") == "notifications/progress"]
    assert len(progress) == 3, messages
    assert all(p["params"]["progressToken"] == "tok-1" for p in progress)
    values = [p["params"]["progress"] for p in progress]
    assert values == sorted(values) and len(set(values)) == 3
    assert messages[-1].get("id") == rid and messages[-1]["result"]["content"][0]["text"] == "done"
    assert all("method" in m for m in messages[:-1]), "the response must come last"


def test_json_answer_without_sse_accept(raw: RawSession) -> None:
    """HTTP-5: a client that accepts only application/json still gets a JSON answer for a plain call."""
    r = raw.post({"jsonrpc": "2.0", "id": 19, "method": "tools/call",
                  "params": {"name": "echo", "arguments": {"message": "json only"}}},
                 headers={"Accept": "application/json"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["result"]["content"][0]["text"] == "json only"


def test_cancel_in_flight_call(gateway_factory: Any) -> None:
    """CANC-1: notifications/cancelled for an in-flight count_slowly (slowed to 3 s here) stops it: no result is
    sent, the stream ends long before the call would have, and the ledger records outcome "cancelled"."""
    gateway = gateway_factory(count_slowly_ms=3000)
    raw = RawSession(gateway.url)
    raw.initialize()
    rid = raw.next_id()
    events: list[dict[str, Any]] = []
    done = threading.Event()
    status: dict[str, Any] = {}

    def call() -> None:
        try:
            with raw.client.stream(
                "POST", raw.url, headers=raw.headers(), timeout=10.0,
                content=json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                                    "params": {"name": "count_slowly", "arguments": {},
                                               "_meta": {"progressToken": "cancel-me"}}}),
            ) as r:
                status["code"] = r.status_code
                status["type"] = r.headers.get("content-type", "")
                buffer = ""
                for chunk in r.iter_text():
                    buffer += chunk
                    *complete, buffer = re.split(r"\r?\n\r?\n", buffer)
                    for block in complete:
                        events.extend(sse_messages(block + "\n\n"))
                events.extend(sse_messages(buffer))
        except Exception as e:  # noqa: BLE001 - recorded and asserted below
            status["error"] = repr(e)
        finally:
            done.set()

    started = time.monotonic()
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline and not done.is_set():
        time.sleep(0.01)
    assert events and events[0].get("method") == "notifications/progress", (events, status)
    c = raw.post({"jsonrpc": "2.0", "method": "notifications/cancelled",
                  "params": {"requestId": rid, "reason": "test cancels"}})
    assert c.status_code == 202
    assert done.wait(5), "the cancelled call's stream did not end"
    elapsed = time.monotonic() - started
    assert "error" not in status, status
    assert not any(m.get("id") == rid for m in events), f"a cancelled request must not be answered: {events}"
    assert len([m for m in events if m.get("method") == "notifications/progress"]) == 1, events
    assert elapsed < 2.0, f"the cancelled call ran on for {elapsed:.2f}s"
    # The ledger has a tools/call record for count_slowly with outcome cancelled.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        cancelled = [e for e in map(event_of, read_jsonl(gateway.config.ledger))
                     if e and e.get("tool") == "count_slowly" and e.get("outcome", {}).get("status") == "cancelled"]
        if cancelled:
            break
        time.sleep(0.05)
    assert cancelled, "no cancelled outcome in the ledger"
    # The session still works afterwards.
    assert raw.call("echo", {"message": "still here"})["result"]["content"][0]["text"] == "still here"
    raw.close()


# --- authentication ----------------------------------------------------------------------------------------------


def test_wrong_key_is_401(gateway: Gateway) -> None:
    """An unknown API key is rejected with 401 even where anonymous loopback access is allowed: a bad credential
    must never be downgraded to anonymous."""
    r = httpx.post(
        gateway.url, headers={**JSON_ACCEPT, "Authorization": "Bearer not-the-key"}, timeout=10,
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                         "clientInfo": {"name": "t", "version": "1"}}},
    )
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "not-the-key" not in r.text


def test_key_required_without_anonymous(keyonly_gateway: Gateway) -> None:
    """With apikey as the only identity plugin: no key → 401 + WWW-Authenticate: Bearer; wrong key → 401;
    the demo key (as Bearer or X-API-Key) → 200. Every in-session request is authenticated again (SEC-3)."""
    url = keyonly_gateway.url
    with RawSession(url) as nokey:
        r = nokey.post({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                        "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                   "clientInfo": {"name": "t", "version": "1"}}}, session=False)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert error_of(r)["code"] == -32001
    with RawSession(url, key="wrong-key") as wrong:
        r = wrong.post({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                        "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                   "clientInfo": {"name": "t", "version": "1"}}}, session=False)
        assert r.status_code == 401
    with RawSession(url, key=DEMO_KEY) as s:
        s.initialize()
        assert s.call("echo", {"message": "keyed"})["result"]["content"][0]["text"] == "keyed"
        # Same session, credentials dropped → 401, not served on the strength of the session id.
        r = s.client.post(url, json={"jsonrpc": "2.0", "id": 50, "method": "tools/list"},
                          headers={**JSON_ACCEPT, "Mcp-Session-Id": s.session_id or "",
                                   "MCP-Protocol-Version": PROTOCOL_VERSION})
        assert r.status_code == 401
    with RawSession(url) as x:
        x.key = None
        r = x.post({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                               "clientInfo": {"name": "t", "version": "1"}}},
                   session=False, headers={"X-API-Key": DEMO_KEY})
        assert r.status_code == 200


# --- operator logs (kept last: it reads what the tests above made the gateway log) ------------------------------


def test_logs_announce_listening_and_hold_no_secrets(gateway: Gateway) -> None:
    """`serve` logs a `listening` line naming its address; after every call above (several with the demo key,
    one with a wrong key) stderr holds neither key nor any request body."""
    log = gateway.stderr()
    assert re.search(rf"listening.*127\.0\.0\.1:{gateway.config.port}", log), log
    for secret in (DEMO_KEY, "not-the-key", "wrong-key", "Ada Lovelace", CARD):
        assert secret not in log, secret
