import ClientCertificates
import Foundation
import TestProcesses
import Testing

/// The certificate library shared by the mtls and spiffe plugins, against certificates made by `openssl`
/// (Tests/Support/pki.py).
@Suite struct ChainVerifierTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let pki: Result<String, any Error> = Result {
        let dir = NSTemporaryDirectory() + "mcpg-certs-\(getpid())-\(UUID().uuidString)"
        let python = ProcessInfo.processInfo.environment["MCPG_PYTHON"]
            ?? repoRoot.appendingPathComponent(".venv/bin/python").path
        let r = try runTool(python, [repoRoot.appendingPathComponent("Tests/Support/pki.py").path, "make", dir])
        guard r.status == 0 else { throw CertificateError("pki.py failed: \(r.stderr)") }
        return dir
    }

    func certs(_ name: String) throws -> [X509Certificate] {
        try PEMBundle.certificates(file: try Self.pki.get() + "/" + name)
    }

    func verifier(_ ca: String = "ca.pem", revocations: Revocations = Revocations()) throws -> ChainVerifier {
        ChainVerifier(roots: try certs(ca), revocations: revocations)
    }

    @Test func validChainsLeafFirst() async throws {
        let v = try verifier()
        let alice = try await v.verify(try certs("alice.pem")).get()
        #expect(alice.count == 2)
        let bob = try await v.verify(try certs("bob-chain.pem")).get()
        #expect(bob.count == 3)
        #expect(try CertificateNames(bob[0]).commonName == "bob")
        #expect(try CertificateNames(bob[2]).commonName == "mcpg test CA")
    }

    @Test func failures() async throws {
        let v = try verifier()
        #expect(await v.verify(try certs("expired.pem")) == .failure(.expired))
        #expect(await v.verify(try certs("future.pem")) == .failure(.notYetValid))
        guard case .failure(.unknownCA) = await v.verify(try certs("stranger.pem")) else {
            Issue.record("a certificate from another CA verified")
            return
        }
        // Validity is judged at the time given: alice's certificate (30 days) has expired in a year, and was not
        // valid yet a day ago.
        #expect(await v.verify(try certs("alice.pem"), now: Date().addingTimeInterval(365 * 86_400)) == .failure(.expired))
        #expect(await v.verify(try certs("alice.pem"), now: Date().addingTimeInterval(-86_400)) == .failure(.notYetValid))
    }

    @Test func crlAndSerials() async throws {
        var r = Revocations()
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: try Self.pki.get() + "/crl.pem")))
        try r.addCRL(bytes, issuers: try certs("ca.pem"), what: "crl.pem")
        let v = try verifier(revocations: r)
        guard case .failure(.revoked(let serial)) = await v.verify(try certs("revoked.pem")) else {
            Issue.record("a revoked certificate verified")
            return
        }
        #expect(serial.count == 16)
        #expect((try? await v.verify(try certs("alice.pem")).get()) != nil)
        // A CRL signed by another CA is refused, not silently used.
        var other = Revocations()
        #expect(throws: CertificateError.self) {
            try other.addCRL(bytes, issuers: try certs("other-ca.pem"), what: "crl.pem")
        }
        let bySerial = try Revocations(serials: ["0x" + serial.uppercased(), "de:ad:be:ef"])
        #expect(bySerial.isRevoked(try certs("revoked.pem")[0]))
        #expect(!bySerial.isRevoked(try certs("alice.pem")[0]))
        #expect(throws: CertificateError.self) { try Revocations(serials: ["xyz"]) }
    }

    @Test func namesAndBadPEM() throws {
        let n = try CertificateNames(try certs("alice.pem")[0])
        #expect(n.commonName == "alice")
        #expect(n.organizationalUnits == ["eng", "ops"])
        #expect(n.organizations == ["acme"])
        #expect(n.emails == ["alice@example.com"])
        #expect(n.dnsNames == ["alice.example.com"])
        let svid = try CertificateNames(try certs("svid-web.pem")[0])
        #expect(svid.uris == ["spiffe://example.org/ns/prod/sa/web"])
        #expect(throws: CertificateError.self) { try PEMBundle.certificates(pem: "hello") }
        #expect(throws: CertificateError.self) {
            try PEMBundle.certificates(pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        }
    }
}
