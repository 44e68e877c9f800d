import MCPGJSON
import MCPGRouter
import Testing

/// W3C Trace Context: strict parsing, continuation from `_meta` or headers, a new trace otherwise.
@Suite struct TraceContextTests {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    let parent = "00f067aa0ba902b7"
    var traceparent: String { "00-\(trace)-\(parent)-01" }

    @Test func parsesOnlyValidVersion00() {
        #expect(TraceContext.parse(traceparent)?.traceID == trace)
        #expect(TraceContext.parse(traceparent)?.spanID == parent)
        #expect(TraceContext.parse("00-\(trace)-\(parent)-00")?.flags == "00")
        for bad in [
            traceparent.uppercased(), "01-\(trace)-\(parent)-01", "ff-\(trace)-\(parent)-01",
            "00-\(String(repeating: "0", count: 32))-\(parent)-01", "00-\(trace)-0000000000000000-01",
            "00-\(trace)-\(parent)", "00-\(trace)-\(parent)-01-extra", "00_\(trace)-\(parent)-01",
            "00-\(trace.dropLast())g-\(parent)-01", "", "garbage",
        ] {
            #expect(TraceContext.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func continuesFromMetaBeforeHeaders() {
        let meta: JSON = ["traceparent": .string(traceparent), "tracestate": "vendor=abc"]
        let headers = ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "h=1"]
        let t = TraceContext.incoming(meta: meta, headers: headers)
        #expect(t.traceID == trace)
        #expect(t.parentSpanID == parent)
        #expect(t.spanID != parent && t.spanID.utf8.count == 16)
        #expect(t.state == "vendor=abc")
        #expect(t.traceparent == "00-\(trace)-\(t.spanID)-01")
        let fromHeaders = TraceContext.incoming(meta: nil, headers: headers)
        #expect(fromHeaders.traceID == "0af7651916cd43dd8448eb211c80319c")
        #expect(fromHeaders.parentSpanID == "b7ad6b7169203331")
        #expect(fromHeaders.state == "h=1")
    }

    @Test func invalidOrAbsentContextStartsANewTrace() {
        let invalid = TraceContext.incoming(meta: ["traceparent": .string(traceparent.uppercased()), "tracestate": "a=b"],
                                            headers: [:])
        #expect(invalid.traceID != trace.uppercased() && invalid.traceID.utf8.count == 32)
        #expect(invalid.parentSpanID == nil)
        #expect(invalid.state == nil)
        let none = TraceContext.incoming(meta: nil, headers: [:])
        #expect(TraceContext.parse(none.traceparent) != nil)
        #expect(none.auditJSON["parent_span_id"] == nil)
        #expect(none.traceID != TraceContext.incoming(meta: nil, headers: [:]).traceID)
    }

    @Test func backendMetaKeepsOtherKeysAndReplacesTheParent() {
        let t = TraceContext.incoming(meta: ["traceparent": .string(traceparent), "tracestate": "v=1"], headers: [:])
        let out = t.forBackend(["progressToken": 7, "traceparent": .string(traceparent)])
        #expect(out["progressToken"] == 7)
        #expect(out["traceparent"]?.stringValue == t.traceparent)
        #expect(out["tracestate"] == "v=1")
        #expect(t.auditJSON == ["trace_id": .string(trace), "span_id": .string(t.spanID), "parent_span_id": .string(parent)])
    }
}
