import Testing

@testable import MCPGTransport

/// The byte-level `Content-Type` / `Accept` checks of the HTTP front (HTTP-1: a POST's Accept lists
/// application/json and text/event-stream; its Content-Type is application/json).
@Suite struct MediaTypeTests {
    @Test func containsIgnoresASCIICase() {
        #expect(MediaType.contains("application/json, text/event-stream", "text/event-stream"))
        #expect(MediaType.contains("Application/JSON;q=0.9, TEXT/Event-Stream", "text/event-stream"))
        #expect(MediaType.contains("Application/JSON;q=0.9", "application/json"))
        #expect(MediaType.contains("*/*", "*/*"))
        #expect(!MediaType.contains("text/event-strea", "text/event-stream"))
        #expect(!MediaType.contains("application/jsonx", "text/event-stream"))
        #expect(!MediaType.contains("", "application/json"))
        // A match that starts late and one that fails on its last byte.
        #expect(MediaType.contains("xxapplication/jsonapplication/json", "application/json"))
        #expect(!MediaType.contains("application/jsoN_application/jso", "application/json!"))
        // Non-ASCII bytes never fold into ASCII letters.
        #expect(!MediaType.contains("applİcation/json", "application/json"))
    }

    @Test func hasPrefixIgnoresASCIICase() {
        #expect(MediaType.hasPrefix("application/json", "application/json"))
        #expect(MediaType.hasPrefix("Application/Json; charset=utf-8", "application/json"))
        #expect(!MediaType.hasPrefix("text/application/json", "application/json"))
        #expect(!MediaType.hasPrefix("application/js", "application/json"))
        #expect(!MediaType.hasPrefix("", "application/json"))
    }
}
