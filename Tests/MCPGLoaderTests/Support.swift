import Foundation
import Logging
import MCPGLoader
import Synchronization
import TestProcesses
import Testing

/// The build products directory (where SwiftPM puts `lib<product>.so`), found from the running test binary.
func productsDirectory() -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // The test binary sits in `<products>/mcpgPackageTests.xctest` (a file on Linux) or inside a bundle.
    for _ in 0..<4 {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("libfixture_misbehave.so").path) { break }
        dir = dir.deletingLastPathComponent()
    }
    return dir.path
}

/// The built `.so` of a product, e.g. `builtPlugin("anonymous")`.
func builtPlugin(_ product: String) throws -> String {
    let path = "\(productsDirectory())/lib\(product).so"
    try #require(FileManager.default.fileExists(atPath: path), "missing \(path): build the package's products first")
    return path
}

/// A fresh temporary directory, removed when the returned object is released.
final class TempDir: Sendable {
    let path: String
    init() throws {
        var template = Array("\(NSTemporaryDirectory())/mcpg-loader-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let p else { throw CocoaError(.fileWriteUnknown) }
        path = String(cString: p)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Copies a built plugin product into this directory as `<as>.so` and returns its path.
    func install(product: String, as name: String) throws -> String {
        let dst = file("\(name).so")
        try? FileManager.default.removeItem(atPath: dst)
        try FileManager.default.copyItem(atPath: try builtPlugin(product), toPath: dst)
        return dst
    }

    func write(_ name: String, _ text: String) throws -> String {
        let p = file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }
}

/// Result of running a real tool.
struct ToolRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs an executable with arguments on a thread of its own (so a slow tool never blocks Swift's cooperative
/// pool, which the timeout tests running alongside depend on) and returns its exit status and output.
func run(_ tool: String, _ arguments: [String], stdin: String? = nil) async throws -> ToolRun {
    let result: Result<ToolRun, any Error> = await withCheckedContinuation { c in
        Thread { c.resume(returning: Result { try runBlocking(tool, arguments, stdin: stdin) }) }.start()
    }
    return try result.get()
}

private func runBlocking(_ tool: String, _ arguments: [String], stdin: String?) throws -> ToolRun {
    let r = try runTool(tool, arguments, stdin: stdin)
    return ToolRun(status: r.status, stdout: r.stdout, stderr: r.stderr)
}

/// The real minisign binary (Debian's package `minisign`).
let minisignPath: String = {
    for p in ["/usr/bin/minisign", "/usr/local/bin/minisign"] where FileManager.default.isExecutableFile(atPath: p) {
        return p
    }
    return "/usr/bin/minisign"
}()

/// Log records captured by `MemoryLogHandler`.
final class LogStore: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    func append(_ r: Record) { records.withLock { $0.append(r) } }
    var all: [Record] { records.withLock { $0 } }

    /// A logger writing into this store (never the global logging system).
    func logger(_ label: String = "test") -> Logger {
        var l = Logger(label: label) { _ in MemoryLogHandler(store: self) }
        l.logLevel = .trace
        return l
    }
}

/// An in-memory swift-log handler for assertions.
struct MemoryLogHandler: LogHandler {
    let store: LogStore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged: [String: String] = [:]
        for (k, v) in metadata { merged[k] = "\(v)" }
        for (k, v) in event.metadata ?? [:] { merged[k] = "\(v)" }
        store.append(LogStore.Record(level: event.level, message: "\(event.message)", metadata: merged))
    }
}

/// A key pair plus its trusted-key list, for tests that sign plugins.
struct TestSigner {
    let key = MinisignSecretKey.generate()
    var trusted: [MinisignPublicKey] { [key.publicKey] }

    /// Signs `file`, pinning `pin` (or the plugin's own descriptor when nil).
    @discardableResult
    func sign(_ file: String, pin: PluginPin? = nil) throws -> PluginPin {
        try PluginSigner.sign(file: file, key: key, pin: pin).pin
    }
}
