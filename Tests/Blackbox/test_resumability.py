"""SSE resumability (HTTP-6, HTTP-11): streams start with a priming event that has an id; every event has an id
`<stream>-<seq>`; a client that loses a stream resumes it with GET + Last-Event-ID and gets exactly what it missed
of that stream, then the rest (a request's stream ends with its answer)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx

from conftest import RawSession, Gateway, sse_messages


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(id, data) of every SSE event in `text` (comments and empty blocks skipped)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event_id, data = None, []
        for line in block.split("\n"):
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if event_id is not None or data:
            events.append((event_id, "\n".join(data)))
    return events


def raw_post_then_drop(s: RawSession, body: dict[str, Any], *, events_wanted: int) -> list[tuple[str | None, str]]:
    """POSTs over a plain socket, reads until `events_wanted` SSE events arrived, then closes the connection."""
    host, port = s.url.split("//")[1].split("/")[0].split(":")
    payload = json.dumps(body).encode()
    headers = s.headers()
    request = (f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(payload)}\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode() + payload
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        buf = b""
        while True:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed early: {buf!r}"
            buf += chunk
            head, _, body_bytes = buf.partition(b"\r\n\r\n")
            # Chunked transfer: the events are in the chunk payloads; good enough to split on SSE blank lines.
            text = body_bytes.decode(errors="replace")
            events = [e for e in sse_events(text) if e[0] is not None]
            if len(events) >= events_wanted:
                assert b"text/event-stream" in head
                return events


def test_a_lost_request_stream_is_resumed_with_last_event_id(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(count_slowly_ms=1500)
    with RawSession(gw.url) as s:
        s.initialize()
        call = {"jsonrpc": "2.0", "id": 41, "method": "tools/call",
                "params": {"name": "count_slowly", "arguments": {}, "_meta": {"progressToken": "tok"}}}
        # The priming event (no data) and the first progress event, then the connection drops.
        seen = raw_post_then_drop(s, call, events_wanted=2)
        priming_id, priming_data = seen[0]
        assert priming_data == ""
        stream, seq = priming_id.split("-")
        assert seq == "0"
        first_id, first_data = seen[1]
        assert json.loads(first_data)["method"] == "notifications/progress"
        assert first_id == f"{stream}-1"

        # Resume: everything after the first progress event of that stream, ending with the answer.
        r = s.client.get(gw.url, headers={**s.headers(), "Accept": "text/event-stream", "Last-Event-ID": first_id},
                         timeout=15)
        assert r.status_code == 200
        resumed = [(i, json.loads(d)) for i, d in sse_events(r.text) if d]
        ids = [i for i, _ in resumed]
        assert all(i.startswith(f"{stream}-") for i in ids) and ids == sorted(ids, key=lambda x: int(x.split("-")[1]))
        assert int(ids[0].split("-")[1]) == 2, ids  # nothing already seen is sent again
        messages = [m for _, m in resumed]
        assert [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"] == [2, 3]
        assert messages[-1]["id"] == 41 and messages[-1]["result"]["content"][0]["text"]


def test_messages_for_a_closed_get_stream_are_kept_for_its_return(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory()
    with RawSession(gw.url) as s:
        s.initialize()
        headers = {**s.headers(), "Accept": "text/event-stream"}
        with s.client.stream("GET", gw.url, headers=headers, timeout=10) as r:
            assert r.status_code == 200
            buf = ""
            for chunk in r.iter_text():
                buf += chunk
                if "\n\n" in buf:
                    break
        priming = sse_events(buf)[0][0]
        assert priming and priming.endswith("-0")
        # While no GET stream is open, a task finishes: its status notification waits in the stream's log.
        created = s.request("tools/call", {"name": "echo", "arguments": {"message": "t"}, "task": {}})
        task_id = created["result"]["task"]["taskId"]
        assert s.request("tasks/result", {"taskId": task_id})["result"]["content"][0]["text"] == "t"
        time.sleep(0.2)
        got: list[dict[str, Any]] = []
        with s.client.stream("GET", gw.url, headers={**headers, "Last-Event-ID": priming}, timeout=10) as r:
            assert r.status_code == 200
            buf = ""
            for chunk in r.iter_text():
                buf += chunk
                got = [json.loads(d) for _, d in sse_events(buf) if d]
                if got:
                    break
        assert got[0]["method"] == "notifications/tasks/status"
        assert got[0]["params"]["taskId"] == task_id and got[0]["params"]["status"] == "completed"
