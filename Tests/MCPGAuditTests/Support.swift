import CSodium
import Foundation
import Logging
import Synchronization

@testable import MCPGAudit

/// A fresh directory under the system temp dir, removed when the value is released.
final class TempDir: Sendable {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mcpg-audit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// A real Ed25519 key pair from libsodium with a random minisign-style key id.
struct TestKey: Sendable {
    let keyID: [UInt8]
    let publicKey: [UInt8]
    let secretKey: [UInt8]

    init() {
        _ = sodium_init()
        var pk = [UInt8](repeating: 0, count: 32)
        var sk = [UInt8](repeating: 0, count: 64)
        _ = crypto_sign_keypair(&pk, &sk)
        var id = [UInt8](repeating: 0, count: 8)
        randombytes_buf(&id, 8)
        keyID = id
        publicKey = pk
        secretKey = sk
    }

    func signer() throws -> LedgerSigner { try LedgerSigner(keyID: keyID, secretKey: secretKey) }
}

/// Captures log records in memory, per logger (never touches the global logging system).
final class LogCapture: Sendable {
    let entries = Mutex<[(level: Logger.Level, message: String)]>([])

    var logger: Logger {
        Logger(label: "mcpg.audit.test") { _ in CaptureHandler(capture: self) }
    }

    func messages(at level: Logger.Level) -> [String] {
        entries.withLock { $0.filter { $0.level == level }.map(\.message) }
    }
}

struct CaptureHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    func log(event: LogEvent) {
        capture.entries.withLock { $0.append((event.level, event.message.description)) }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}

/// Reading and rewriting ledger files the way an attacker (or a crash) would.
enum LedgerFileText {
    static func lines(_ path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    static func write(_ lines: [String], to path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
    }

    static func append(_ text: String, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    static func size(_ path: String) throws -> Int64 {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? NSNumber)?.int64Value ?? -1
    }
}

/// Opens a ledger with test defaults: no time-based checkpoints within a test's lifetime unless asked for.
///
/// Reopening a file right after another `Ledger` on it closed can briefly find the lock still held: a process
/// that another test spawns at that moment copies the descriptor table and keeps the open file until it execs
/// (`O_CLOEXEC` closes it only then). That case is retried for up to two seconds; a real second writer still
/// gets `.inUse` (and the test for it takes two seconds longer).
func openLedger(
    _ path: String, key: TestKey, every: Int = 1000, interval: Duration = .seconds(3600),
    logger: Logger = LogCapture().logger
) throws -> Ledger {
    let deadline = ContinuousClock.now + .seconds(2)
    while true {
        do {
            return try Ledger(
                path: path, signer: key.signer(), checkpointEvery: every, checkpointInterval: interval, logger: logger)
        } catch let error as LedgerError where error.code == .inUse && ContinuousClock.now < deadline {
            usleep(20_000)
        }
    }
}

/// Appends `count` small events one after another and returns their receipts.
@discardableResult
func appendEvents(_ ledger: Ledger, count: Int, from first: Int = 1) async throws -> [LedgerReceipt] {
    var receipts: [LedgerReceipt] = []
    for n in first..<(first + count) {
        receipts.append(
            try await ledger.append(["who": "alice", "what": "tools/call", "n": .int(Int64(n)), "decision": "allow"]))
    }
    return receipts
}

func verify(_ path: String, key: TestKey, allowUnsealed: Bool = false) -> LedgerReport {
    LedgerVerifier.verify(path: path, publicKey: key.publicKey, keyID: key.keyID, allowUnsealedTail: allowUnsealed)
}
