import Foundation
import MCPGJSON
import TestProcesses

/// Certificates made with `openssl` by `Tests/Support/pki.py` once per test run (see that file for the list),
/// and JWT-SVIDs it mints on demand.
enum TestPKI {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// `MCPG_PYTHON`, else the project's venv (which has `cryptography`).
    static var python: String {
        if let p = ProcessInfo.processInfo.environment["MCPG_PYTHON"], !p.isEmpty { return p }
        return repoRoot.appendingPathComponent(".venv/bin/python").path
    }

    static let directory: Result<String, any Error> = Result {
        let dir = NSTemporaryDirectory() + "mcpg-pki-\(getpid())-\(UUID().uuidString)"
        _ = try run(["make", dir])
        return dir
    }

    static func run(_ args: [String]) throws -> String {
        let r = try runTool(python, [repoRoot.appendingPathComponent("Tests/Support/pki.py").path] + args)
        guard r.status == 0 else { throw TestFailure("pki.py \(args.first ?? "") failed: \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func path(_ name: String) throws -> String { try directory.get() + "/" + name }

    /// The PEM text of `name` (e.g. "alice.pem").
    static func pem(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }

    static func mintSVID(sub: String, aud: String, exp: Int = 300, kid: String = "svid-1", key: String = "jwt",
                         alg: String = "ES256") throws -> String {
        try run(["mint-svid", try directory.get(), "--sub", sub, "--aud", aud, "--exp", String(exp), "--kid", kid,
                 "--key", key, "--alg", alg])
    }

    /// An `authenticate` request from an HTTPS client presenting `certificates` (PEM files, leaf first).
    static func request(certificates: [String], verified: Bool = false, headers: JSONObject = [:]) throws -> JSON {
        var r: JSONObject = [
            "transport": "http", "peer": ["address": "10.0.0.7:5000", "loopback": false], "headers": .object(headers),
        ]
        r["tls"] = ["client_certificates": .array(try certificates.map { .string(try pem($0)) }), "verified": .bool(verified)]
        return .object(r)
    }
}
