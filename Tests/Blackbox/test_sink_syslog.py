"""The `syslog` sink against real receivers on 127.0.0.1: UDP and TCP socket listeners that parse every message
with a strict RFC 5424 parser (PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID, STRUCTURED-DATA, MSG)
and RFC 6587 octet-counted framing; a receiver that goes away and comes back; one that is never there."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN_TOOL, RawSession, free_port, run_mcpg
from sinkcheck import ledger_lines, make_calls, sink_config, start_dead_sink_and_compare, start_with_sink, wait_until

FACILITY_LOCAL3 = 19
SD_ID = "mcpg@32473"

# ---------------------------------------------------------------------------------------------------------------
# A strict RFC 5424 parser


class ParseError(AssertionError):
    pass


PRINTUSASCII = re.compile(rb"[\x21-\x7e]+")
TIMESTAMP = re.compile(
    rb"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


def parse_rfc5424(data: bytes) -> dict[str, Any]:
    """Parses one SYSLOG-MSG (RFC 5424 §6) or raises ParseError naming what is wrong."""
    m = re.match(rb"<(\d{1,3})>([1-9]\d{0,2}) ", data)
    if not m:
        raise ParseError(f"bad PRI/VERSION: {data[:20]!r}")
    if m.group(1) != b"0" and m.group(1).startswith(b"0"):
        raise ParseError("PRIVAL with a leading zero")
    prival, version = int(m.group(1)), int(m.group(2))
    if prival > 191:
        raise ParseError(f"PRIVAL {prival} > 191")
    pos = m.end()

    def field(name: str, limit: int) -> bytes:
        nonlocal pos
        end = data.find(b" ", pos)
        if end < 0:
            raise ParseError(f"{name}: no SP after it")
        value = data[pos:end]
        if not PRINTUSASCII.fullmatch(value) or len(value) > limit:
            raise ParseError(f"{name} {value!r} is not 1*{limit}PRINTUSASCII")
        pos = end + 1
        return value

    ts = field("TIMESTAMP", 64)
    if ts != b"-" and not TIMESTAMP.fullmatch(ts):
        raise ParseError(f"TIMESTAMP {ts!r}")
    hostname, app, procid, msgid = field("HOSTNAME", 255), field("APP-NAME", 48), field("PROCID", 128), field(
        "MSGID", 32)
    elements: list[tuple[str, dict[str, str]]] = []
    if data[pos:pos + 1] == b"-":
        pos += 1
    else:
        while data[pos:pos + 1] == b"[":
            pos += 1
            m = re.compile(rb'[\x21\x23-\x3c\x3e-\x5c\x5e-\x7e]{1,32}').match(data, pos)
            if not m:
                raise ParseError("SD-ID")
            sd_id, pos = m.group().decode(), m.end()
            params: dict[str, str] = {}
            while data[pos:pos + 1] == b" ":
                m = re.compile(rb'([\x21\x23-\x3c\x3e-\x5c\x5e-\x7e]{1,32})="').match(data, pos + 1)
                if not m:
                    raise ParseError(f"SD-PARAM at {pos}: {data[pos:pos + 40]!r}")
                name, pos = m.group(1).decode(), m.end()
                value = bytearray()
                while True:
                    if pos >= len(data):
                        raise ParseError("unterminated PARAM-VALUE")
                    c = data[pos]
                    if c == 0x5C and pos + 1 < len(data) and data[pos + 1] in b'"\\]':
                        value.append(data[pos + 1])
                        pos += 2
                    elif c == 0x22:
                        pos += 1
                        break
                    elif c == 0x5D:
                        raise ParseError(f"unescaped ] in PARAM-VALUE of {name}")
                    else:
                        value.append(c)
                        pos += 1
                params[name] = value.decode("utf-8")  # PARAM-VALUE is UTF-8: raises if not
            if data[pos:pos + 1] != b"]":
                raise ParseError(f"SD-ELEMENT not closed at {pos}: {data[pos:pos + 20]!r}")
            pos += 1
            elements.append((sd_id, params))
        if not elements:
            raise ParseError("STRUCTURED-DATA is neither - nor an element")
    msg: bytes | None = None
    if pos < len(data):
        if data[pos:pos + 1] != b" ":
            raise ParseError(f"no SP before MSG at {pos}")
        msg = data[pos + 1:]
        if msg.startswith(b"\xef\xbb\xbf"):
            msg = msg[3:]
    return {"pri": prival, "facility": prival // 8, "severity": prival % 8, "version": version, "timestamp": ts.decode(), "hostname": hostname.decode(),
            "app": app.decode(), "procid": procid.decode(), "msgid": msgid.decode(), "sd": dict(elements), "msg": msg}


def test_parser_is_strict() -> None:
    """The parser itself refuses what RFC 5424 does not allow (so passing messages mean something)."""
    good = b'<165>1 2026-01-02T03:04:05.678Z h a 1 id [x@1 k="v\\]\\"\\\\"] {}'
    p = parse_rfc5424(good)
    assert (p["facility"], p["severity"], p["sd"]["x@1"]["k"], p["msg"]) == (20, 5, 'v]"\\', b"{}")
    for bad in [b'<192>1 - h a 1 id -', b'<01>1 - h a 1 id -', b'<1>0 - h a 1 id -', b'<1>1 2026-01-02 h a 1 id -',
                b'<1>1 - h a 1 id [x@1 k="a]b"]', b'<1>1 - h a 1 id [x@1 k="v"', b'<1>1 - h a 1 id -x']:
        with pytest.raises(ParseError):
            parse_rfc5424(bad)


# ---------------------------------------------------------------------------------------------------------------
# Receivers


class UDPReceiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                self.datagrams.append(self.sock.recv(70000))
            except socket.timeout:
                pass

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


class TCPReceiver:
    """Accepts connections and splits each stream into octet-counted frames (`LEN SP MSG`, RFC 6587 §3.4.1)."""

    def __init__(self, port: int = 0) -> None:
        self.frames: list[bytes] = []
        self.errors: list[str] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.port = port
        self.start()

    def start(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.port))
        self.port = self.server.getsockname()[1]
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.running = True
        self.clients: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.server.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            self.clients.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        conn.settimeout(0.2)
        while self.running:
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while True:
                m = re.match(rb"([1-9]\d*) ", buf)
                if not m:
                    if buf and not re.fullmatch(rb"[1-9]\d{0,8}", buf):
                        self.errors.append(f"bad frame start {buf[:20]!r}")
                        return
                    break
                n = int(m.group(1))
                if len(buf) < m.end() + n:
                    break
                with self.lock:
                    self.frames.append(buf[m.end():m.end() + n])
                buf = buf[m.end() + n:]
        conn.close()

    def stop(self) -> None:
        """Closes the listener and every connection (the receiver goes away)."""
        self.running = False
        self.thread.join(2)
        self.server.close()
        for c in self.clients:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


def by_seq(messages: list[bytes]) -> dict[int, dict[str, Any]]:
    out = {}
    for raw in messages:
        p = parse_rfc5424(raw)
        p["raw"] = raw
        seq = int(p["sd"][SD_ID]["seq"])
        assert seq not in out, f"seq {seq} received twice"
        out[seq] = p
    return out


def expected_severity(record: dict[str, Any]) -> int:
    if "recovery" in record:
        return 2
    ev = record.get("event")
    if not ev:
        return 6
    if ev.get("decision", {}).get("effect", "allow") != "allow":
        return 4
    return {"error": 3, "tool_error": 5, "cancelled": 5}.get(ev.get("outcome", {}).get("status"), 6)


def check_message(p: dict[str, Any], line: bytes, *, truncated_at: int | None = None) -> None:
    record = json.loads(line)
    assert p["version"] == 1
    assert p["facility"] == FACILITY_LOCAL3
    assert p["severity"] == expected_severity(record), (p["raw"], record)
    assert p["timestamp"] == record["ts"]
    assert p["hostname"] == "gw-test.example" and p["app"] == "mcpg-audit"
    sd = p["sd"][SD_ID]
    assert int(sd["seq"]) == record["seq"]
    ev = record.get("event")
    if ev is not None:
        assert sd["kind"] == "event" and p["msgid"] == ev["type"].replace(" ", "_")[:32]
        assert sd["id"] == ev["id"]
        assert sd.get("tool") == ev.get("tool")
        if "decision" in ev:
            assert sd["decision"] == ev["decision"]["effect"]
        if "outcome" in ev:
            assert sd["status"] == ev["outcome"]["status"]
    if "truncated" in sd:
        assert truncated_at is not None, "truncated without a size limit"
        assert int(sd["truncated"]) == len(line)
        assert len(p["raw"]) <= truncated_at
        assert p["msg"] is None or line.startswith(p["msg"])
        p["msg"].decode("utf-8")  # cut on a UTF-8 boundary
    else:
        assert json.loads(p["msg"]) == record


SINK = """
  - plugin: syslog
    config: {{ address: "127.0.0.1:{port}", transport: {transport}, facility: local3, app_name: mcpg-audit,
              hostname: gw-test.example{extra} }}
"""


def test_udp_messages_are_rfc5424_with_structured_data(tmp_path: Path) -> None:
    """Every ledger record arrives as one datagram; a second sink with 480-byte datagrams cuts and marks them."""
    full, small = UDPReceiver(), UDPReceiver()
    try:
        gw = start_with_sink(tmp_path / "gw", SINK.format(port=full.port, transport="udp", extra="")
                             + SINK.format(port=small.port, transport="udp", extra=", max_message_size: 480"))
        try:
            make_calls(gw, 5)
            with RawSession(gw.url) as s:
                s.initialize()
                denied = s.call(ADMIN_TOOL)
                assert "error" in denied
                # A tool name that needs escaping in PARAM-VALUE; unknown, so the call fails.
                odd = s.call('x"y]z\\w', {"note": "ünïcödé " * 40})
                assert "error" in odd or odd["result"].get("isError")
            wait_until("every record over UDP", lambda: len(full.datagrams) >= len(ledger_lines(gw))
                       and len(small.datagrams) >= len(ledger_lines(gw)))
            before_stop = set(ledger_lines(gw))
        finally:
            gw.stop()
        # Records written at shutdown (the final checkpoint) may or may not make it out before the process ends.
        lines = ledger_lines(gw)
        got, cut = by_seq(full.datagrams), by_seq(small.datagrams)
        assert before_stop <= set(got) <= set(lines) and before_stop <= set(cut) <= set(lines)
        for seq in before_stop:
            check_message(got[seq], lines[seq], truncated_at=None)
            check_message(cut[seq], lines[seq], truncated_at=480)
        assert any(p["severity"] == 4 and p["sd"][SD_ID]["tool"] == ADMIN_TOOL for p in got.values()), "no denied call"
        odd_msgs = [p for p in got.values() if p["sd"][SD_ID].get("tool") == 'x"y]z\\w']
        assert odd_msgs and b'tool="x\\"y\\]z\\\\w"' in odd_msgs[0]["raw"]
        assert any("truncated" in p["sd"][SD_ID] for p in cut.values())
        assert all(len(d) <= 480 for d in small.datagrams)
    finally:
        full.close()
        small.close()


def test_tcp_octet_counting_survives_a_receiver_restart(tmp_path: Path) -> None:
    """Over TCP: framed messages; while the receiver is gone records are buffered, and after it returns on the same
    port every record arrives exactly once."""
    rx = TCPReceiver()
    gw = start_with_sink(tmp_path / "gw", SINK.format(port=rx.port, transport="tcp", extra=""))
    try:
        make_calls(gw, 5)
        wait_until("first records over TCP", lambda: len(rx.frames) >= len(ledger_lines(gw)))
        rx.stop()
        time.sleep(0.3)
        make_calls(gw, 10)
        time.sleep(0.5)
        rx.start()
        make_calls(gw, 5)
        wait_until("every record after the restart", lambda: len(rx.frames) >= len(ledger_lines(gw)), timeout=20)
        lines = ledger_lines(gw)
        got = by_seq(rx.frames)
        assert set(got) == set(lines)
        for seq, line in lines.items():
            check_message(got[seq], line)
        assert rx.connections >= 2 and not rx.errors
        assert "syslog: connection lost" in gw.stderr() or "cannot reach the receiver" in gw.stderr()
    finally:
        gw.stop()
        rx.stop()


def test_dead_receiver_does_not_slow_calls_and_drops_are_logged(tmp_path: Path) -> None:
    """TCP to a port nobody listens on, with a 5-message buffer: calls take about as long as without the sink,
    and the dropped records are counted in a log line."""
    gw = start_dead_sink_and_compare(tmp_path, SINK.format(port=free_port(), transport="tcp", extra=", buffer: 5"))
    try:
        wait_until("a drop log line", lambda: "syslog: dropped records" in gw.stderr())
        m = re.search(r"dropped_total[^0-9]*(\d+)", gw.stderr())
        assert m and int(m.group(1)) > 0, gw.stderr()
    finally:
        gw.stop()


def test_bad_config_is_refused(tmp_path: Path) -> None:
    """Schema errors are caught by `mcpg config validate`; an address without a port refuses to boot."""
    for extra, needle in [('address: "127.0.0.1:514", transport: smoke', "transport"),
                          ('address: "127.0.0.1:514", facility: local9', "facility"),
                          ('address: "127.0.0.1:514", max_message_size: 100', "max_message_size"),
                          ('address: "127.0.0.1:514", colour: red', "colour")]:
        cfg = sink_config(tmp_path / needle, f"  - plugin: syslog\n    config: {{ {extra} }}")
        r = run_mcpg("config", "validate", cfg.path, timeout=90)
        assert r.returncode != 0, (extra, r.stdout, r.stderr)
        assert needle in (r.stdout + r.stderr), (extra, r.stdout, r.stderr)
    cfg = sink_config(tmp_path / "noport", '  - plugin: syslog\n    config: { address: "nohost" }')
    r = run_mcpg("serve", "--config", cfg.path, timeout=90)
    assert r.returncode != 0 and "has no :port" in r.stderr, r.stderr
