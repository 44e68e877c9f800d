import AsyncHTTPClient
import Foundation
import MCPGJSON
import NIOHTTP1
import NIOSSL
import Synchronization
import TestProcesses

/// `Tests/Differential/opa_server.py` running as a child process: an OPA-compatible Data API server whose
/// decisions come from regopy. Each test starts its own (they run in parallel) and stops it when done;
/// `deinit` stops it too, so a failing test cannot leak the process.
final class OPATestServer: @unchecked Sendable {  // `process` is only touched by start/stop on the test's task
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// `MCPG_PYTHON`, else the project's venv (which has regopy).
    static var python: String {
        if let p = ProcessInfo.processInfo.environment["MCPG_PYTHON"], !p.isEmpty { return p }
        return repoRoot.appendingPathComponent(".venv/bin/python").path
    }

    let directory: URL
    let port: Int
    let scheme: String
    private let process: Process

    var baseURL: String { "\(scheme)://127.0.0.1:\(port)" }
    /// The certificate a client should trust when started with `tls: true`.
    var caFile: String { directory.appendingPathComponent("tls/cert.pem").path }

    /// Writes `policy` (and `data`) to a temporary directory and starts the server on a free port.
    ///
    /// Waiting for the server blocks a thread for a second or so: that happens on a thread of its own, so
    /// the tests' tasks (and the client's deadline timers) keep running meanwhile.
    static func start(policy: String, data: JSON? = nil, arguments: [String] = [], tls: Bool = false) async throws
        -> OPATestServer
    {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result { try OPATestServer(policy: policy, data: data, arguments: arguments, tls: tls) })
            }.start()
        }
    }

    private init(policy: String, data: JSON? = nil, arguments: [String] = [], tls: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("opa-client-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let policyFile = directory.appendingPathComponent("policy.rego")
        try policy.write(to: policyFile, atomically: true, encoding: .utf8)
        var args = [Self.repoRoot.appendingPathComponent("Tests/Differential/opa_server.py").path]
        if let data {
            let dataFile = directory.appendingPathComponent("data.json")
            try Data(data.serialized()).write(to: dataFile)
            args += ["--data", dataFile.path]
        }
        if tls { args += ["--tls-self-signed", directory.appendingPathComponent("tls").path] }
        args += arguments + [policyFile.path]

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
        scheme = tls ? "https" : "http"

        // The server prints its port once it listens; EOF first means it failed to start. A server that
        // neither prints nor exits is killed, which ends the read.
        let started = StartFlag()
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { [process] in
            if !started.value.withLock({ $0 }), process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        defer { started.value.withLock { $0 = true } }
        var line: [UInt8] = []
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let port = Int(text) else {
            kill(process.processIdentifier, SIGKILL)
            awaitKilled(process.processIdentifier)
            let err = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
            throw ServerError("opa_server.py did not start: \(text) \(err)")
        }
        self.port = port
    }

    deinit { stop() }

    /// Kills the server and removes its directory; safe to call twice.
    func stop() {
        if process.isRunning {
            // SIGKILL: the test process may hand its children a blocked SIGTERM.
            kill(process.processIdentifier, SIGKILL)
            awaitKilled(process.processIdentifier)
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// `GET /stats`: requests received, inputs evaluated, most requests at once, last request's headers.
    func stats() async throws -> JSON {
        try await call(.GET, "/stats", body: nil)
    }

    /// Data API requests received so far.
    func requests() async throws -> Int64 {
        try await stats()["requests"]?.intValue ?? -1
    }

    /// `POST /control`: changes `latency_ms` or `fail_status` while the server runs.
    func control(_ settings: JSON) async throws {
        _ = try await call(.POST, "/control", body: settings)
    }

    private func call(_ method: HTTPMethod, _ path: String, body: JSON?) async throws -> JSON {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if let body { request.body = .bytes(body.serialized()) }
        let client = scheme == "https" ? Self.insecureClient : HTTPClient.shared
        if scheme == "https" { request.url = "https://127.0.0.1:\(port)\(path)" }
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return try JSON.parse(Array(bytes.readableBytesView))
    }

    /// For the test's own calls to a TLS server; never shut down (lives as long as the test process).
    private static let insecureClient: HTTPClient = {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        return HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: .init(tlsConfiguration: tls))
    }()
}

struct ServerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

private final class StartFlag: Sendable {
    let value = Mutex(false)
}
