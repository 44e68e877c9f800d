import Foundation
import Logging
import MCPGJSON
import MCPGLoader
import Synchronization
import Testing

/// The shipped plugins under test, all signed into one temporary plugin directory once per test run.
let shippedPlugins = ["apikey", "rules", "redact", "mock", "jsonl", "mtls", "spiffe"]

/// One plugin directory holding the built `lib<name>.so` files copied as `<name>.so`, each with a `.minisig` made
/// by a throwaway key whose trusted comment pins name, version 1.0.0 and this ABI; and a loader trusting that key.
struct SignedPlugins: Sendable {
    let directory: String
    let loader: PluginLoader

    static let shared: Result<SignedPlugins, any Error> = Result { try SignedPlugins() }

    private init() throws {
        var template = Array("\(NSTemporaryDirectory())/mcpg-plugins-XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CocoaError(.fileWriteUnknown)
        }
        directory = String(cString: p)
        let key = MinisignSecretKey.generate()
        let products = productsDirectory()
        for name in shippedPlugins {
            let built = "\(products)/lib\(name).so"
            guard FileManager.default.fileExists(atPath: built) else {
                throw TestFailure("missing \(built): build the package's products first")
            }
            let file = "\(directory)/\(name).so"
            try FileManager.default.copyItem(atPath: built, toPath: file)
            let text = try key.sign(
                try Data(contentsOf: URL(fileURLWithPath: file)),
                trustedComment: "mcpg-plugin name=\(name) version=1.0.0 abi=1",
                untrustedComment: "throwaway key of MCPGPluginTests")
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(file).minisig"))
        }
        loader = PluginLoader(directory: directory, trustedKeys: [key.publicKey], logger: quietLogger)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A logger that drops everything (tests never bootstrap the global logging system).
let quietLogger = Logger(label: "mcpg.plugin-tests") { _ in SwiftLogNoOpLogHandler() }

/// The build products directory (where SwiftPM puts `lib<product>.so`), found from the running test binary.
func productsDirectory() -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // The test binary is `<products>/mcpgPackageTests.xctest` (a file on Linux), or sits inside a bundle.
    for _ in 0..<4 {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("libapikey.so").path) { break }
        dir = dir.deletingLastPathComponent()
    }
    return dir.path
}

/// A new instance of the shipped plugin `name` created with `config` through the real loader.
func instance(_ name: String, config: JSON, label: String? = nil) throws -> PluginInstance {
    let plugins = try SignedPlugins.shared.get()
    let plugin = try plugins.loader.load(name: name)
    return try PluginInstance.create(plugin, config: config, label: label ?? "test:\(name)", logger: quietLogger)
}

/// The `createFailed` message for a config the plugin must refuse (fails the test when creation succeeds).
func creationError(_ name: String, config: JSON) throws -> String {
    do {
        _ = try instance(name, config: config)
    } catch let e as LoaderError {
        #expect(e.code == .createFailed)
        return e.message
    }
    Issue.record("plugin \(name) accepted a config it must refuse: \(config)")
    return ""
}

extension PluginInstance {
    /// How long a test waits for a plugin's answer: a liveness bound, not a speed claim. Other suites block the
    /// 2-thread cooperative pool with process runs, so a 30 ms call has been seen to take over 10 s.
    static let testDeadline = Duration.seconds(60)

    /// Runs `op` and returns the successful reply's JSON (fails the test on an error reply).
    func ok(_ op: String, _ request: JSON, emit: (@Sendable ([UInt8]) -> Bool)? = nil) async throws -> JSON {
        let reply = await call(op: op, request: request.serialized(), timeout: Self.testDeadline, emit: emit)
        try #require(reply.ok, "\(op) failed: \(String(decoding: reply.body, as: UTF8.self))")
        return try #require(reply.json)
    }

    /// Runs `op` expecting an error reply; returns its code and message.
    func failure(_ op: String, _ request: JSON) async throws -> (code: Int, message: String) {
        let reply = await call(op: op, request: request.serialized(), timeout: Self.testDeadline)
        try #require(!reply.ok, "\(op) unexpectedly succeeded: \(String(decoding: reply.body, as: UTF8.self))")
        return (try #require(reply.errorCode), try #require(reply.errorMessage))
    }
}

/// Collects what a plugin emits during a call.
final class EmitRecorder: Sendable {
    private let messages = Mutex<[JSON]>([])
    var all: [JSON] { messages.withLock { $0 } }

    var emit: @Sendable ([UInt8]) -> Bool {
        { bytes in
            guard let message = try? JSON.parse(bytes) else { return false }
            self.messages.withLock { $0.append(message) }
            return true
        }
    }
}
