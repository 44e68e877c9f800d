// ledger-bench: records per second the audit ledger sustains on its own, at each durability setting, with
// concurrent appenders (as concurrent tools/calls append), plus what verifying and proving cost. Run by
// bench/ledger; prints one JSON object.
//
// Usage: ledger-bench DIR [RECORDS] [APPENDERS]

import Logging
import MCPGAudit
import MCPGJSON
import CSodium

#if canImport(Glibc)
    import Glibc
#endif

@main
struct LedgerBench {
    static func main() async throws {
        let args = CommandLine.arguments
        guard args.count >= 2 else {
            FileHandleStderr.write("usage: ledger-bench DIR [RECORDS] [APPENDERS]\n")
            exit(2)
        }
        let dir = args[1]
        let records = args.count > 2 ? Int(args[2]) ?? 50_000 : 50_000
        let appenders = args.count > 3 ? Int(args[3]) ?? 64 : 64
        _ = sodium_init()
        var pk = [UInt8](repeating: 0, count: 32)
        var sk = [UInt8](repeating: 0, count: 64)
        _ = crypto_sign_keypair(&pk, &sk)
        let keyID: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let signer = try LedgerSigner(keyID: keyID, secretKey: sk)
        let logger = Logger(label: "ledger-bench") { _ in SwiftLogNoOpLogHandler() }
        // A record shaped like a tools/call event.
        let event: JSON = [
            "id": "c-0123456789abcdef", "type": "tools/call", "session": "s-0123456789abcdef0123456789abcdef",
            "transport": "http", "peer": "127.0.0.1:50000",
            "principal": ["id": "alice", "groups": ["eng"]], "identity": ["plugin": "apikey"],
            "tool": "echo", "backend": "demo",
            "arguments_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "decision": ["allow": true, "reasons": ["rule allow-eng"]],
            "result_sha256": "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
            "outcome": ["status": "ok"], "latency_us": 412,
        ]
        var rows: [JSON] = []
        for (name, file, delay) in [("sync", "sync", nil), ("batch(1ms)", "batch-1ms", Duration.milliseconds(1)),
                                    ("batch(5ms)", "batch-5ms", Duration.milliseconds(5))] as [(String, String, Duration?)] {
            let path = "\(dir)/\(file).ledger"
            let ledger = try Ledger(
                path: path, signer: signer,
                options: LedgerOptions(checkpointEvery: 1000, checkpointInterval: .seconds(1), commitDelay: delay),
                logger: logger)
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for a in 0..<appenders {
                    group.addTask {
                        var n = a
                        while n < records {
                            _ = try await ledger.append(event)
                            n += appenders
                        }
                    }
                }
                try await group.waitForAll()
            }
            let elapsed = ContinuousClock.now - start
            let fsyncs = await ledger.fsyncCount
            try await ledger.close()
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let verifyStart = ContinuousClock.now
            let report = LedgerVerifier.verify(path: path, publicKey: pk, keyID: keyID)
            let verifySeconds = (ContinuousClock.now - verifyStart) / .seconds(1)
            let proveStart = ContinuousClock.now
            let bundle = try LedgerProof.bundle(path: path, from: Int64(records / 2), to: Int64(records / 2))
            let proveSeconds = (ContinuousClock.now - proveStart) / .seconds(1)
            guard report.ok, case .success = LedgerProof.verify(bundle, keys: [LedgerTrustedKey(publicKey: pk, keyID: keyID)])
            else {
                FileHandleStderr.write("ledger-bench: \(name): the ledger did not verify: \(report)\n")
                exit(1)
            }
            rows.append([
                "durability": .string(name), "records": .int(Int64(records)), "appenders": .int(Int64(appenders)),
                "seconds": .double(seconds), "records_per_s": .double(Double(records) / seconds),
                "fsyncs": .int(Int64(fsyncs)), "records_per_fsync": .double(Double(records) / Double(max(fsyncs, 1))),
                "verify_s": .double(verifySeconds), "prove_one_s": .double(proveSeconds),
            ])
        }
        print(String(decoding: JSON.array(rows).serialized(), as: UTF8.self))
    }
}

enum FileHandleStderr {
    static func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
