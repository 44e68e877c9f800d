import Foundation
import MCPGJSON
import MCPGLoader
import Testing

/// The spiffe identity plugin: X.509-SVIDs and JWT-SVIDs against per-trust-domain bundles made by `openssl`
/// and `cryptography` (Tests/Support/pki.py).
@Suite struct SPIFFETests {
    static let audience = "https://mcp.example.test"

    func config(_ extra: JSONObject = [:]) throws -> JSON {
        var c: JSONObject = [
            "trust_domains": [
                "example.org": ["bundle_file": .string(try TestPKI.path("spiffe-ca.pem")),
                                "jwks_file": .string(try TestPKI.path("jwks.json"))],
                "other.org": ["bundle_file": .string(try TestPKI.path("other-ca.pem"))],
            ],
            "audiences": [.string(Self.audience)],
        ]
        for m in extra { c[m.key] = m.value }
        return .object(c)
    }

    func x509(_ cert: String, config: JSON? = nil) async throws -> JSON {
        let p = try instance("spiffe", config: try config ?? self.config())
        return try await p.ok("authenticate", try TestPKI.request(certificates: [cert]))
    }

    func jwt(_ token: String, config: JSON? = nil) async throws -> JSON {
        let p = try instance("spiffe", config: try config ?? self.config())
        return try await p.ok("authenticate", ["transport": "http", "peer": ["address": "10.1.1.1:9", "loopback": false],
                                               "headers": ["authorization": .string("Bearer \(token)")]])
    }

    @Test func x509SVIDAuthenticatesWithPatternGroups() async throws {
        let c = try config(["ids": [
            ["pattern": "spiffe://example.org/ns/prod/sa/web", "groups": ["web"], "tenant": "prod"],
            ["pattern": "spiffe://example.org/ns/prod/*", "groups": ["prod"]],
        ]])
        let web = try await x509("svid-web.pem", config: c)
        #expect(web["result"] == "authenticated", "\(web)")
        #expect(web["principal"]?["id"] == "spiffe://example.org/ns/prod/sa/web")
        #expect(web["principal"]?["groups"] == ["web"])
        #expect(web["principal"]?["tenant"] == "prod")
        #expect(web["principal"]?["attributes"]?["trust_domain"] == "example.org")
        #expect(web["principal"]?["attributes"]?["svid"] == "x509")
        let db = try await x509("svid-db.pem", config: c)
        #expect(db["principal"]?["groups"] == ["prod"])
        // An ID that matches no pattern is refused once patterns are configured.
        let narrow = try config(["ids": [["pattern": "spiffe://example.org/ns/prod/sa/web"]]])
        let refused = try await x509("svid-db.pem", config: narrow)
        #expect(refused["result"] == "reject")
        #expect(refused["reason"]?.stringValue?.contains("matches no ids pattern") == true)
    }

    @Test func x509SVIDRefusals() async throws {
        let two = try await x509("svid-two-uris.pem")
        #expect(two["result"] == "reject")
        #expect(two["reason"] == "X.509-SVID must have exactly one URI SAN, has 2")
        // Issued by example.org's CA but naming other.org: verified against other.org's bundle, so refused.
        let otherTD = try await x509("svid-other-td.pem")
        #expect(otherTD["result"] == "reject")
        #expect(otherTD["reason"]?.stringValue?.contains("not issued by a trusted CA") == true, "\(otherTD)")
        let expired = try await x509("svid-expired.pem")
        #expect(expired["reason"] == "client certificate expired")
        let unknownTD = try await x509("svid-web.pem", config: [
            "trust_domains": ["acme.com": ["bundle_file": .string(try TestPKI.path("spiffe-ca.pem"))]],
        ])
        #expect(unknownTD["reason"] == "no X.509 bundle for trust domain example.org")
    }

    /// A client certificate without a SPIFFE ID is not an SVID: abstain, so `mtls` can take it.
    @Test func plainCertificateAbstains() async throws {
        let r = try await x509("alice.pem")
        #expect(r["result"] == "abstain")
    }

    @Test func jwtSVID() async throws {
        let token = try TestPKI.mintSVID(sub: "spiffe://example.org/ns/prod/sa/web", aud: Self.audience)
        let ok = try await jwt(token)
        #expect(ok["result"] == "authenticated", "\(ok)")
        #expect(ok["principal"]?["id"] == "spiffe://example.org/ns/prod/sa/web")
        #expect(ok["principal"]?["attributes"]?["svid"] == "jwt")
        let cases: [(String, String)] = [
            (try TestPKI.mintSVID(sub: "spiffe://example.org/a", aud: "https://elsewhere"), "wrong audience"),
            (try TestPKI.mintSVID(sub: "spiffe://example.org/a", aud: Self.audience, exp: -3600), "token expired"),
            (try TestPKI.mintSVID(sub: "spiffe://example.org/a", aud: Self.audience, key: "other-jwt"), "bad signature"),
            (try TestPKI.mintSVID(sub: "spiffe://example.org/a", aud: Self.audience, kid: "nope"), "unknown key id \"nope\""),
            (try TestPKI.mintSVID(sub: "spiffe://example.org/a", aud: Self.audience, alg: "none"), "algorithm \"none\" is not allowed"),
            (try TestPKI.mintSVID(sub: "spiffe://other.org/a", aud: Self.audience), "no JWT bundle for trust domain other.org"),
            (try TestPKI.mintSVID(sub: "spiffe://example.org/../x", aud: Self.audience), "malformed SPIFFE ID in sub"),
        ]
        for (token, reason) in cases {
            let r = try await jwt(token)
            #expect(r["result"] == "reject", "\(reason)")
            #expect(r["reason"] == .string(reason), "\(r)")
            #expect(r["challenge"]?["error"] == "invalid_token")
            #expect(!(r.text.contains(token)), "the token must not be echoed")
        }
        // A bearer that is no JWT, or a JWT whose sub is no SPIFFE ID, is someone else's.
        #expect(try await jwt("an-api-key")["result"] == "abstain")
        let oidc = try TestPKI.mintSVID(sub: "alice", aud: Self.audience)
        #expect(try await jwt(oidc)["result"] == "abstain")
    }

    /// A rotated bundle file is picked up without a restart; a broken one keeps the previous bundle.
    @Test func bundleReload() async throws {
        let dir = NSTemporaryDirectory() + "mcpg-spiffe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let bundle = dir + "/bundle.pem"
        try TestPKI.pem("other-ca.pem").write(toFile: bundle, atomically: true, encoding: .utf8)
        let p = try instance("spiffe", config: ["trust_domains": ["example.org": ["bundle_file": .string(bundle)]],
                                                "reload_interval_s": 0.05])
        let request = try TestPKI.request(certificates: ["svid-web.pem"])
        #expect(try await p.ok("authenticate", request)["result"] == "reject")
        try TestPKI.pem("spiffe-ca.pem").write(toFile: bundle, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await p.ok("authenticate", request)["result"] == "authenticated")
        try "garbage".write(toFile: bundle, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await p.ok("authenticate", request)["result"] == "authenticated")
    }

    @Test func badConfigIsRefusedAtCreate() throws {
        let m1 = try creationError("spiffe", config: ["trust_domains": ["Example.ORG": ["bundle_file": .string(try TestPKI.path("spiffe-ca.pem"))]]])
        #expect(m1.contains("is not valid"), "\(m1)")
        let m2 = try creationError("spiffe", config: ["trust_domains": ["example.org": ["jwks_file": .string(try TestPKI.path("jwks.json"))]]])
        #expect(m2.contains("audiences"), "\(m2)")
        let m3 = try creationError("spiffe", config: ["trust_domains": ["example.org": [:]]])
        #expect(m3.contains("no bundle_file or jwks_file"), "\(m3)")
    }
}
