import MCPGJSON

/// W3C Trace Context (https://www.w3.org/TR/trace-context/) for one request the gateway serves.
///
/// The incoming context comes from the request's `params._meta` (`traceparent`, `tracestate`) or, when that has
/// none, from the HTTP request headers of the same names. Only version `00` with lowercase hex ids that are not
/// all zero is accepted; anything else is ignored (with its `tracestate`) and a new trace starts, as the
/// specification asks. The gateway's own span gets a new id; the audit record carries `trace` and the backend
/// receives a `traceparent` naming the gateway's span as parent, so a trace continues through the gateway.
public struct TraceContext: Sendable, Equatable {
    /// 32 lowercase hex digits.
    public var traceID: String
    /// The gateway's span: 16 lowercase hex digits.
    public var spanID: String
    /// The caller's span, when the request carried a valid `traceparent`.
    public var parentSpanID: String?
    /// Trace flags, 2 hex digits (`01`: sampled).
    public var flags: String
    /// The caller's `tracestate`, passed on unchanged.
    public var state: String?

    /// The `_meta` keys (and HTTP header names) read and written.
    public static let parentKey = "traceparent"
    public static let stateKey = "tracestate"

    /// The context for a request: continues a valid incoming `traceparent` (from `meta` first, else `headers`,
    /// whose names are lowercase), or starts a new trace.
    public static func incoming(meta: JSON?, headers: [String: String]) -> TraceContext {
        let spanID = newID(bytes: 8)
        let fromMeta = meta?[parentKey]?.stringValue
        let parent = fromMeta ?? headers[parentKey]
        let rawState = fromMeta != nil ? meta?[stateKey]?.stringValue : headers[stateKey]
        if let parent, let p = parse(parent) {
            return TraceContext(
                traceID: p.traceID, spanID: spanID, parentSpanID: p.spanID, flags: p.flags,
                state: rawState.flatMap(validState))
        }
        return TraceContext(traceID: newID(bytes: 16), spanID: spanID, parentSpanID: nil, flags: "01", state: nil)
    }

    /// The `traceparent` to send downstream: this trace, the gateway's span as parent.
    public var traceparent: String { "00-\(traceID)-\(spanID)-\(flags)" }

    /// `{"trace_id","span_id","parent_span_id"?}` for the audit record.
    public var auditJSON: JSON {
        var o: JSONObject = ["trace_id": .string(traceID), "span_id": .string(spanID)]
        if let parentSpanID { o["parent_span_id"] = .string(parentSpanID) }
        return .object(o)
    }

    /// `meta` (an object, or nil) with `traceparent` and `tracestate` set for the backend.
    public func forBackend(_ meta: JSON?) -> JSON {
        var o = meta?.objectValue ?? [:]
        o[Self.parentKey] = .string(traceparent)
        o[Self.stateKey] = state.map(JSON.string)
        return .object(o)
    }

    /// The parts of a version-00 `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`, lowercase, ids not all zero.
    public static func parse(_ s: String) -> (traceID: String, spanID: String, flags: String)? {
        let b = Array(s.utf8)
        guard b.count == 55, b[0] == 0x30, b[1] == 0x30, b[2] == 0x2D, b[35] == 0x2D, b[52] == 0x2D else { return nil }
        func hex(_ r: Range<Int>) -> String? {
            guard b[r].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else { return nil }
            return String(decoding: b[r], as: UTF8.self)
        }
        guard let trace = hex(3..<35), let span = hex(36..<52), let flags = hex(53..<55),
            trace.utf8.contains(where: { $0 != 0x30 }), span.utf8.contains(where: { $0 != 0x30 })
        else { return nil }
        return (trace, span, flags)
    }

    /// `tracestate` when it is plausibly valid (at most 512 visible ASCII characters, spaces, commas); else nil.
    static func validState(_ s: String) -> String? {
        guard !s.isEmpty, s.utf8.count <= 512, s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        return s
    }

    /// Random lowercase hex of `bytes` bytes, never all zero.
    static func newID(bytes: Int) -> String {
        while true {
            let id = RandomID.hex(bytes: bytes)
            if id.utf8.contains(where: { $0 != 0x30 }) { return id }
        }
    }
}
