import JWTVerifier
import Testing

@Suite struct EndpointURLTests {
    @Test func httpsAnywherePlainHTTPOnlyToLoopback() throws {
        for ok in ["https://idp.example.test", "https://idp.example.test/realms/mcp/", "http://127.0.0.1:8080",
                   "http://localhost:9000/x", "http://[::1]:80/", "HTTPS://IDP.EXAMPLE.TEST"] {
            #expect(try EndpointURL.check(ok, what: "issuer") == ok)
        }
        for bad in ["http://idp.example.test", "http://127.0.0.1.evil.test/", "http://127.0.0.1@evil.test/",
                    "ftp://idp.example.test", "idp.example.test", "https://", "https://idp.example.test/#x",
                    "https://user:pw@idp.example.test", "https://idp.example.test/a b"] {
            #expect(throws: KeysUnavailable.self, "\(bad)") { try EndpointURL.check(bad, what: "issuer") }
        }
    }
}
