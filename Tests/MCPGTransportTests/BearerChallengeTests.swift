import MCPGJSON
import MCPGRouter
import Testing

@testable import MCPGTransport

/// The `WWW-Authenticate` header the HTTP front builds (AUTH-3, AUTH-4, AUTH-5) and the protected resource's URLs.
@Suite struct BearerChallengeTests {
    @Test func quotedStringEscaping() {
        #expect(BearerChallenge.quoted(#"say "hi" \ bye"#) == #""say \"hi\" \\ bye""#)
        // Header injection is impossible: CR, LF and other controls are dropped, tabs become spaces.
        #expect(BearerChallenge.quoted("a\r\nSet-Cookie: x=1\tz\u{7f}é") == #""aSet-Cookie: x=1 z""#)
    }

    @Test func headerMembers() {
        let bare = BearerChallenge.header(resourceMetadata: nil, challenge: nil, defaultScope: nil)
        #expect(bare == #"Bearer realm="mcpg""#)
        let scoped = BearerChallenge.header(
            resourceMetadata: "https://gw.example/.well-known/oauth-protected-resource/mcp",
            challenge: AuthChallenge(error: "insufficient_scope", errorDescription: #"needs "admin""#),
            defaultScope: "mcp:read mcp:admin")
        #expect(scoped == #"Bearer realm="mcpg", resource_metadata="https://gw.example/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", scope="mcp:read mcp:admin", error_description="needs \"admin\"""#)
        // An invalid_token challenge names no scope unless the plugin gave one.
        let invalid = BearerChallenge.header(resourceMetadata: nil, challenge: AuthChallenge(error: "invalid_token"),
                                             defaultScope: "mcp:read")
        #expect(invalid == #"Bearer realm="mcpg", error="invalid_token""#)
        // No credentials: the scopes to ask for, no error code.
        let none = BearerChallenge.header(resourceMetadata: "https://m", challenge: nil, defaultScope: "a b")
        #expect(none == #"Bearer realm="mcpg", resource_metadata="https://m", scope="a b""#)
    }

    @Test func resourceURLs() {
        var c = HTTPFrontConfig(host: "127.0.0.1", port: 0, path: "/mcp", allowedOrigins: [], maxBodyBytes: 1024)
        c.resourceMetadata = ["authorization_servers": ["https://issuer"], "resource": "https://ignored"]
        let r = ProtectedResource(config: c, boundPort: 8443)
        #expect(r.url == "http://127.0.0.1:8443/mcp")
        #expect(r.metadataURL == "http://127.0.0.1:8443/.well-known/oauth-protected-resource/mcp")
        #expect(r.document?["resource"] == "http://127.0.0.1:8443/mcp")
        #expect(r.document?["authorization_servers"] == ["https://issuer"])
        #expect(r.scope == nil)
        c.publicURL = "https://mcp.example.com"
        c.host = "::1"
        let p = ProtectedResource(config: c, boundPort: 1)
        #expect(p.metadataURL == "https://mcp.example.com/.well-known/oauth-protected-resource")
        c.publicURL = nil
        #expect(ProtectedResource(config: c, boundPort: 9).url == "http://[::1]:9/mcp")
        c.resourceMetadata = nil
        #expect(ProtectedResource(config: c, boundPort: 9).document == nil)
    }
}
