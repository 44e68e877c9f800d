import MCPGJSON

/// One span, made from one request record of the audit ledger.
struct Span: Sendable {
    var traceID: [UInt8]
    var spanID: [UInt8]
    var parentSpanID: [UInt8]
    var traceState: String
    var name: String
    var startNanos: UInt64
    var endNanos: UInt64
    var attributes: [(String, Attribute)]
    var isError: Bool
    var statusMessage: String

    enum Attribute: Sendable {
        case string(String)
        case int(Int64)
    }

    /// OTLP `Span.SpanKind.SPAN_KIND_SERVER`.
    static let kindServer: UInt64 = 2
    /// OTLP `Status.StatusCode.STATUS_CODE_ERROR`.
    static let statusError: UInt64 = 2

    /// The span for a ledger record, or nil when the record is not a request event (checkpoints, recovery
    /// records and kinds this version does not know). Records without `trace` (requests other than tools/call)
    /// get a new trace id and span id.
    init?(record: JSON) {
        guard let event = record["event"], let type = event["type"]?.stringValue else { return nil }
        let trace = event["trace"]
        traceID = trace?["trace_id"]?.stringValue.flatMap(hexBytes).flatMap { $0.count == 16 ? $0 : nil }
            ?? randomBytes(16)
        spanID = trace?["span_id"]?.stringValue.flatMap(hexBytes).flatMap { $0.count == 8 ? $0 : nil }
            ?? randomBytes(8)
        parentSpanID = trace?["parent_span_id"]?.stringValue.flatMap(hexBytes).flatMap { $0.count == 8 ? $0 : nil } ?? []
        traceState = ""
        let tool = event["tool"]?.stringValue ?? event["name"]?.stringValue
        name = tool.map { "\(type) \($0)" } ?? type
        endNanos = record["ts"]?.stringValue.flatMap(unixNanos) ?? 0
        let latency = UInt64(max(0, event["latency_us"]?.intValue ?? 0)) * 1000
        startNanos = endNanos > latency ? endNanos - latency : 0
        var a: [(String, Attribute)] = [("mcp.method.name", .string(type))]
        if let tool { a.append(("gen_ai.tool.name", .string(tool))) }
        if let backend = event["backend"]?.stringValue, !backend.isEmpty { a.append(("mcpg.backend", .string(backend))) }
        if let principal = event["principal"]?["id"]?.stringValue { a.append(("mcpg.principal", .string(principal))) }
        if let d = event["decision"] {
            if let e = d["effect"]?.stringValue {
                a.append(("mcpg.decision", .string(e)))
            } else if let allow = d["allow"]?.boolValue {
                a.append(("mcpg.decision", .string(allow ? "allow" : "deny")))
            }
        }
        if let id = event["id"]?.stringValue { a.append(("mcpg.correlation_id", .string(id))) }
        if let seq = record["seq"]?.intValue { a.append(("mcpg.ledger.seq", .int(seq))) }
        let status = event["outcome"]?["status"]?.stringValue ?? "ok"
        a.append(("mcpg.outcome", .string(status)))
        if let session = event["session"]?.stringValue { a.append(("mcp.session.id", .string(session))) }
        attributes = a
        isError = status != "ok"
        statusMessage = isError ? (event["outcome"]?["message"]?.stringValue ?? status) : ""
    }

    /// Writes this span as an OTLP `Span` message's fields.
    func write(into w: inout ProtoWriter) {
        w.bytes(1, traceID)
        w.bytes(2, spanID)
        w.string(3, traceState)
        w.bytes(4, parentSpanID)
        w.string(5, name)
        w.uint(6, Self.kindServer)
        w.fixed64(7, startNanos)
        w.fixed64(8, endNanos)
        for (key, value) in attributes { w.message(9) { keyValue(&$0, key, value) } }
        if isError {
            w.message(15) { s in
                s.string(2, statusMessage)
                s.uint(3, Self.statusError)
            }
        }
    }
}

/// An OTLP `KeyValue` message's fields.
func keyValue(_ w: inout ProtoWriter, _ key: String, _ value: Span.Attribute) {
    w.string(1, key)
    w.message(2) { v in
        switch value {
        case .string(let s):
            // Written even when empty, so the value's type stays visible.
            v.tag(1, .lengthDelimited)
            v.varint(UInt64(s.utf8.count))
            v.raw(Array(s.utf8))
        case .int(let i):
            v.tag(3, .varint)
            v.varint(UInt64(bitPattern: i))
        }
    }
}

/// An `ExportTraceServiceRequest`: one `ResourceSpans` (resource attribute `service.name`) with one `ScopeSpans`.
func exportRequest(_ spans: [Span], serviceName: String, scopeVersion: String) -> [UInt8] {
    var w = ProtoWriter()
    w.message(1) { rs in
        rs.message(1) { resource in
            resource.message(1) { keyValue(&$0, "service.name", .string(serviceName)) }
        }
        rs.message(2) { ss in
            ss.message(1) { scope in
                scope.string(1, "mcpg")
                scope.string(2, scopeVersion)
            }
            for span in spans { ss.message(2) { span.write(into: &$0) } }
        }
    }
    return w.bytes
}

/// Nanoseconds since the epoch of an RFC 3339 timestamp with an optional fraction (`2026-11-25T22:40:01.123Z`).
func unixNanos(_ ts: String) -> UInt64? {
    guard let seconds = UTCTimestamp.parse(ts), seconds >= 0 else { return nil }
    var fraction: UInt64 = 0
    if let dot = ts.firstIndex(of: ".") {
        var digits = 0
        for c in ts[ts.index(after: dot)...].utf8 {
            guard c >= 0x30 && c <= 0x39 else { break }
            if digits < 9 {
                fraction = fraction * 10 + UInt64(c - 0x30)
                digits += 1
            }
        }
        while digits < 9 {
            fraction *= 10
            digits += 1
        }
    }
    return UInt64(seconds) * 1_000_000_000 + fraction
}

/// `n` random bytes, not all zero.
func randomBytes(_ n: Int) -> [UInt8] {
    var g = SystemRandomNumberGenerator()
    while true {
        let b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
        if b.contains(where: { $0 != 0 }) { return b }
    }
}
