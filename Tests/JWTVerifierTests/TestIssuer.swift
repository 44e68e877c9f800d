import AsyncHTTPClient
import Foundation
import MCPGJSON
import NIOHTTP1
import NIOSSL
import Synchronization
import TestProcesses

/// `Tests/Issuer/issuer.py` running as a child process: a real OpenID Connect issuer with discovery, a JWKS
/// of real keys and a control API to mint tokens. Each test starts its own (tests run in parallel) and stops
/// it when done; `deinit` stops it too, so a failing test cannot leak the process.
final class TestIssuer: @unchecked Sendable {  // `process` is only touched by start/stop on the test's task
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// `MCPG_PYTHON`, else the project's venv (which has cryptography and PyJWT).
    static var python: String {
        if let p = ProcessInfo.processInfo.environment["MCPG_PYTHON"], !p.isEmpty { return p }
        return repoRoot.appendingPathComponent(".venv/bin/python").path
    }

    /// The audience the issuer puts in tokens by default.
    static let audience = "https://mcp.example.test"

    let port: Int
    let directory: URL
    private let process: Process
    let scheme: String

    var url: String { "\(scheme)://127.0.0.1:\(port)" }
    /// The certificate to trust when started with `tls: true`.
    var caFile: String { directory.appendingPathComponent("tls/cert.pem").path }

    /// Starts the issuer on `port` (0: a free one). Waiting for it blocks a thread for a moment: that happens
    /// on a thread of its own, so the tests' tasks keep running meanwhile.
    static func start(port: Int = 0, tls: Bool = false) async throws -> TestIssuer {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try TestIssuer(port: port, tls: tls) }) }.start()
        }
    }

    private init(port: Int, tls: Bool) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("oidc-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var args = [Self.repoRoot.appendingPathComponent("Tests/Issuer/issuer.py").path, "--port", String(port)]
        if tls { args += ["--tls-self-signed", directory.appendingPathComponent("tls").path] }
        scheme = tls ? "https" : "http"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = args
        let stdout = Pipe()
        let stderrFile = directory.appendingPathComponent("stderr.txt")
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
        self.process = process

        // The issuer prints its port once it listens; EOF first means it failed to start. One that neither
        // prints nor exits is killed, which ends the read.
        let started = Mutex(false)
        let watchdog = Thread { [process] in
            Thread.sleep(forTimeInterval: 30)
            if !started.withLock({ $0 }), process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        watchdog.start()
        defer { started.withLock { $0 = true } }
        var line: [UInt8] = []
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bound = Int(text) else {
            kill(process.processIdentifier, SIGKILL)
            awaitKilled(process.processIdentifier)
            let err = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
            throw IssuerError("issuer.py did not start: \(text) \(err)")
        }
        self.port = bound
    }

    deinit { stop() }

    /// Kills the issuer and removes its directory; safe to call twice.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            awaitKilled(process.processIdentifier)
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// A signed token (see issuer.py `POST /mint` for the fields).
    func mint(_ request: JSON = [:]) async throws -> String {
        let answer = try await call(.POST, "/mint", body: request)
        guard let token = answer["token"]?.stringValue else { throw IssuerError("mint failed: \(answer)") }
        return token
    }

    /// New keys; the old ones leave the JWKS.
    func rotate() async throws { _ = try await call(.POST, "/rotate", body: [:]) }

    func control(_ settings: JSON) async throws { _ = try await call(.POST, "/control", body: settings) }

    /// JWKS fetches served so far.
    func jwksFetches() async throws -> Int64 { try await call(.GET, "/stats", body: nil)["jwks"]?.intValue ?? -1 }

    /// Discovery documents served so far.
    func discoveryFetches() async throws -> Int64 {
        try await call(.GET, "/stats", body: nil)["discovery"]?.intValue ?? -1
    }

    /// The current JWKS document.
    func jwks() async throws -> JSON { try await call(.GET, "/jwks", body: nil) }

    private func call(_ method: HTTPMethod, _ path: String, body: JSON?) async throws -> JSON {
        var request = HTTPClientRequest(url: url + path)
        request.method = method
        if let body { request.body = .bytes(body.serialized()) }
        let client = scheme == "https" ? Self.insecureClient : HTTPClient.shared
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return try JSON.parse(Array(bytes.readableBytesView))
    }

    /// For the test's own calls to a TLS issuer; lives as long as the test process.
    private static let insecureClient: HTTPClient = {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(tlsConfiguration: tls))
    }()
}

struct IssuerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
