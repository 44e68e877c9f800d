import Foundation
import MCPGJSON
import TestProcesses

/// `Tests/Upstreams/http_api.py` as a child process on 127.0.0.1: each test starts its own and stops it
/// when done (`deinit` too).
final class HTTPTestServer: @unchecked Sendable {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var python: String {
        if let p = ProcessInfo.processInfo.environment["MCPG_PYTHON"], !p.isEmpty { return p }
        return repoRoot.appendingPathComponent(".venv/bin/python").path
    }

    let port: Int
    private let process: Process
    var base: String { "http://127.0.0.1:\(port)" }

    /// Starts the server (waiting for its port on a thread of its own).
    static func start(_ arguments: [String] = [], script: String = "Tests/Upstreams/http_api.py") async throws
        -> HTTPTestServer
    {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try HTTPTestServer(arguments, script: script) })
            }.start()
        }
    }

    private init(_ arguments: [String], script: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.repoRoot.appendingPathComponent(script).path] + arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        // Not the test's own stderr: a server outliving a crashed test process would hold that pipe open, and
        // `swift test` would wait for it forever instead of reporting the crash.
        let stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("http-test-server-\(UUID().uuidString).log").path
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: stderrPath) }
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
        self.process = process
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
            let err = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            throw NSError(
                domain: "HTTPTestServer", code: 1,
                userInfo: [NSLocalizedDescriptionKey: "\(script) did not start: \(text) \(err.suffix(2000))"])
        }
        self.port = port
    }

    deinit { stop() }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            awaitKilled(process.processIdentifier)
        }
    }
}
