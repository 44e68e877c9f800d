import Foundation
import MCPGJSON
import MCPGLoader
import Testing

/// The mtls identity plugin, loaded through the real loader, against certificates made by `openssl`.
@Suite struct MTLSTests {
    func config(_ extra: JSONObject = [:]) throws -> JSON {
        var c: JSONObject = ["ca_file": .string(try TestPKI.path("ca.pem"))]
        for m in extra { c[m.key] = m.value }
        return .object(c)
    }

    func authenticate(_ certs: [String], config: JSON, verified: Bool = false) async throws -> JSON {
        let p = try instance("mtls", config: config)
        return try await p.ok("authenticate", try TestPKI.request(certificates: certs, verified: verified))
    }

    @Test func verifiedClientCertificateAuthenticatesWithOUGroupsAndAttributes() async throws {
        let r = try await authenticate(["alice.pem"], config: try config(["tenant_from_o": true]))
        #expect(r["result"] == "authenticated", "\(r)")
        #expect(r["principal"]?["id"] == "alice")
        #expect(r["principal"]?["groups"] == ["eng", "ops"])
        #expect(r["principal"]?["tenant"] == "acme")
        #expect(r["principal"]?["attributes"]?["san_email"] == ["alice@example.com"])
        #expect(r["principal"]?["attributes"]?["fingerprint_sha256"]?.stringValue?.count == 64)
    }

    @Test func principalFromSANsAndGroupMap() async throws {
        let email = try await authenticate(["alice.pem"], config: try config([
            "principal_from": ["san_email", "cn"], "groups_from_ou": false,
            "group_map": ["alice@example.com": ["admins"], "ops": ["oncall"]],
        ]))
        #expect(email["principal"]?["id"] == "alice@example.com")
        #expect(email["principal"]?["groups"] == ["admins", "oncall"])
        let dns = try await authenticate(["alice.pem"], config: try config(["principal_from": ["san_uri", "san_dns"]]))
        #expect(dns["principal"]?["id"] == "alice.example.com")
    }

    /// A chain through an intermediate the client sends verifies; the leaf alone does not.
    @Test func intermediateChain() async throws {
        let r = try await authenticate(["bob-chain.pem"], config: try config())
        #expect(r["result"] == "authenticated", "\(r)")
        #expect(r["principal"]?["id"] == "bob")
        let alone = try await authenticate(["bob.pem"], config: try config())
        #expect(alone["result"] == "reject")
        #expect(alone["reason"]?.stringValue?.contains("not issued by a trusted CA") == true, "\(alone)")
    }

    @Test func expiredFutureUnknownCAAreRejected() async throws {
        let c = try config()
        let expired = try await authenticate(["expired.pem"], config: c)
        #expect(expired["result"] == "reject")
        #expect(expired["reason"] == "client certificate expired")
        let future = try await authenticate(["future.pem"], config: c)
        #expect(future["reason"] == "client certificate not yet valid")
        let stranger = try await authenticate(["stranger.pem"], config: c)
        #expect(stranger["result"] == "reject")
        #expect(stranger["reason"]?.stringValue?.hasPrefix("client certificate not issued by a trusted CA") == true)
        // Even when the TLS layer says it verified the chain, the plugin's own CA decides.
        let claimed = try await authenticate(["stranger.pem"], config: c, verified: true)
        #expect(claimed["result"] == "reject")
    }

    @Test func revokedByCRLOrSerial() async throws {
        let byCRL = try await authenticate(["revoked.pem"], config: try config(["crl_files": [.string(try TestPKI.path("crl.pem"))]]))
        #expect(byCRL["result"] == "reject")
        #expect(byCRL["reason"]?.stringValue?.hasPrefix("client certificate revoked") == true, "\(byCRL)")
        // The same CRL does not touch other certificates.
        let alice = try await authenticate(["alice.pem"], config: try config(["crl_files": [.string(try TestPKI.path("crl.pem"))]]))
        #expect(alice["result"] == "authenticated")
        let text = try String(contentsOfFile: try TestPKI.path("ca.index"), encoding: .utf8)
        let revokedSerial = try #require(text.split(separator: "\n").first { $0.hasPrefix("R") }?.split(separator: "\t")[3])
        let bySerial = try await authenticate(["revoked.pem"], config: try config(["revoked_serials": [.string(String(revokedSerial))]]))
        #expect(bySerial["result"] == "reject")
        #expect(bySerial["reason"]?.stringValue?.contains(String(revokedSerial).lowercased()) == true, "\(bySerial)")
    }

    /// Without its own CA the plugin accepts only chains the TLS layer verified.
    @Test func withoutCAFileOnlyVerifiedChains() async throws {
        let unverified = try await authenticate(["alice.pem"], config: [:])
        #expect(unverified["result"] == "reject")
        let verified = try await authenticate(["alice.pem"], config: [:], verified: true)
        #expect(verified["result"] == "authenticated")
        let expired = try await authenticate(["expired.pem"], config: [:], verified: true)
        #expect(expired["reason"] == "client certificate expired")
    }

    @Test func noCertificateAbstains() async throws {
        let p = try instance("mtls", config: try config())
        let plain = try await p.ok("authenticate", ["transport": "http", "peer": ["address": "1.2.3.4:1", "loopback": false], "headers": [:]])
        #expect(plain["result"] == "abstain")
        let empty = try await p.ok("authenticate", try TestPKI.request(certificates: []))
        #expect(empty["result"] == "abstain")
        let garbage = try await p.ok("authenticate", ["transport": "http", "peer": ["address": "1.2.3.4:1", "loopback": false],
                                                      "headers": [:], "tls": ["client_certificates": ["not a pem"], "verified": false]])
        #expect(garbage["result"] == "reject")
    }

    @Test func badConfigIsRefusedAtCreate() throws {
        let m1 = try creationError("mtls", config: ["ca_file": "/nonexistent/ca.pem"])
        #expect(m1.contains("cannot read"), "\(m1)")
        let m2 = try creationError("mtls", config: ["crl_files": [.string(try TestPKI.path("crl.pem"))]])
        #expect(m2.contains("crl_files need ca_file"), "\(m2)")
        let m3 = try creationError("mtls", config: ["ca_file": .string(try TestPKI.path("other-ca.pem")),
                                                    "crl_files": [.string(try TestPKI.path("crl.pem"))]])
        #expect(m3.contains("not among the trusted certificates"), "\(m3)")
        let m4 = try creationError("mtls", config: ["principal_from": ["cn", "uid"]])
        #expect(m4.contains("unknown source \"uid\""), "\(m4)")
    }
}
