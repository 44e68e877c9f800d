import Foundation
import MCPGJSON
import Synchronization
import TestProcesses

@testable import MCPClient

/// `Tests/Upstreams/everything.py`: how to run it over stdio, and as a child process serving Streamable HTTP or
/// HTTP+SSE on a port of its own. Each test starts its own server (tests run in parallel) and stops it when
/// done; `deinit` stops it too, so a failing test cannot leak the process.
enum Upstream {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let script = repoRoot.appendingPathComponent("Tests/Upstreams/everything.py").path

    /// `MCPG_PYTHON`, else the project's venv (which has the MCP SDK).
    static var python: String {
        if let p = ProcessInfo.processInfo.environment["MCPG_PYTHON"], !p.isEmpty { return p }
        return repoRoot.appendingPathComponent(".venv/bin/python").path
    }

    /// A stdio config running everything.py.
    static func stdio(
        _ arguments: [String] = [], configure: (inout MCPClient.Config) -> Void = { _ in }
    )
        -> MCPClient.Config
    {
        var config = MCPClient.Config(
            transport: .stdio, command: [python, script, "stdio"] + arguments,
            restart: .init(initialMs: 100, maxMs: 1000), timeoutMs: 30_000,
            // Generous: the first test starts everything.py (seconds of CPU to import the SDK) while every other suite
            // starts too; under that load one startup took over 30 s.
            connectTimeoutMs: 90_000)
        configure(&config)
        return config
    }
}

/// everything.py serving HTTP (`http` or `sse` mode) on 127.0.0.1.
final class UpstreamServer: @unchecked Sendable {  // `process` is only touched by start/stop on the test's task
    let mode: String
    let port: Int
    private var process: Process?
    private let stderrFile: URL

    var url: String { mode == "http" ? "http://127.0.0.1:\(port)/mcp" : "http://127.0.0.1:\(port)/sse" }

    /// Starts the server on `port` (0: a free one) and waits until it listens. The wait blocks a thread of its
    /// own, not the tests' tasks.
    static func start(_ mode: String, port: Int = 0, arguments: [String] = []) async throws -> UpstreamServer {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try UpstreamServer(mode: mode, port: port, arguments: arguments) })
            }.start()
        }
    }

    private init(mode: String, port: Int, arguments: [String]) throws {
        self.mode = mode
        stderrFile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mcp-upstream-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Upstream.python)
        process.arguments = [Upstream.script, mode, "--port", String(port)] + arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
        self.process = process
        // The server prints "PORT <n>" once it listens; EOF first means it failed to start.
        // read(2) directly: FileHandle.availableData traps on EINTR, which SIGCHLD from other tests' processes causes.
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        let fd = stdout.fileHandleForReading.fileDescriptor
        while !line.contains(UInt8(ascii: "\n")) {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            line += buffer[0..<n]
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("PORT "), let p = Int(text.dropFirst(5)) else {
            kill(process.processIdentifier, SIGKILL)
            awaitKilled(process.processIdentifier)
            let err = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
            throw UpstreamError("everything.py \(mode) did not start: \(text) \(err)")
        }
        self.port = p
    }

    deinit { stop() }

    /// Kills the server; safe to call twice.
    func stop() {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            awaitKilled(process.processIdentifier)
        }
        process = nil
        try? FileManager.default.removeItem(at: stderrFile)
    }

    /// The client config for this server.
    func config(configure: (inout MCPClient.Config) -> Void = { _ in }) -> MCPClient.Config {
        var config = MCPClient.Config(
            transport: mode == "http" ? .http : .sse, restart: .init(initialMs: 100, maxMs: 1000), url: url,
            timeoutMs: 30_000, connectTimeoutMs: 10_000)
        configure(&config)
        return config
    }
}

struct UpstreamError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Log lines the client wrote, for assertions.
final class LogRecorder: Sendable {
    struct Line: Sendable {
        var level: MCPClient.LogLevel
        var message: String
        var metadata: [String: String]
    }
    private let lines = Mutex<[Line]>([])

    var function: MCPClient.LogFunction {
        { level, message, metadata in
            self.lines.withLock { $0.append(Line(level: level, message: message, metadata: metadata)) }
        }
    }

    var all: [Line] { lines.withLock { $0 } }

    func contains(_ message: String, where match: (Line) -> Bool = { _ in true }) -> Bool {
        all.contains { $0.message == message && match($0) }
    }
}

/// Collects what a call's hooks receive.
final class Received: Sendable {
    private let messages = Mutex<[JSON]>([])
    func append(_ m: JSON) { messages.withLock { $0.append(m) } }
    var all: [JSON] { messages.withLock { $0 } }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass.
func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// Collects a client's `events()` in the background, for tests to poll.
final class EventLog: Sendable {
    private let events = MutexBox<[JSON]>([])
    private let task: Task<Void, Never>

    init(_ client: MCPClient) {
        let stream = client.events()
        let events = events
        task = Task {
            for await e in stream { events.withLock { $0.append(e) } }
        }
    }

    deinit { task.cancel() }

    var all: [JSON] { events.withLock { $0 } }

    /// The methods (and, for health, "health:<status>") received so far, in order.
    var names: [String] {
        all.map { e in
            let m = e["method"]?.stringValue ?? "?"
            if m == "notifications/mcpg/health" { return "health:" + (e["params"]?["status"]?.stringValue ?? "?") }
            return m
        }
    }

    /// Waits for an event with `method` (and, if given, `params[key] == value`); returns it, or nil after
    /// `seconds`.
    func wait(
        _ method: String, _ key: String? = nil, _ value: String? = nil, within seconds: Double = 10
    ) async -> JSON? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while true {
            for e in all where e["method"]?.stringValue == method {
                guard let key else { return e }
                if e["params"]?[key]?.stringValue == value { return e }
            }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Whether such an event arrives within `seconds`.
    func saw(_ method: String, _ key: String? = nil, _ value: String? = nil, within seconds: Double = 10) async -> Bool
    {
        await wait(method, key, value, within: seconds).map { _ in true } ?? false
    }

    /// Whether a health event with this status arrives.
    func saw(health status: String, within seconds: Double = 10) async -> Bool {
        await saw("notifications/mcpg/health", "status", status, within: seconds)
    }
}

extension JSON {
    /// The text of the first text content block of a tool result.
    var firstText: String? { self["content"]?[0]?["text"]?.stringValue }
}
