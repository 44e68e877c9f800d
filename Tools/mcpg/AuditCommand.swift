import ArgumentParser
import MCPGAudit
import MCPGLoader

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `mcpg audit …`: work with the audit ledger offline.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Work with the audit ledger: the tamper-evident record of every call the gateway decided.",
        subcommands: [Verify.self])

    /// `mcpg audit verify LEDGER --key PUB [--allow-unsealed]`.
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that an audit ledger is complete and unchanged, using only the public key.",
            discussion: """
                Reads the whole ledger and its head file (LEDGER.head) and checks that no record was edited, \
                deleted, inserted or reordered, that every signed checkpoint verifies with the given key, and that \
                the ledger was not cut short (the head file holds a copy of the newest checkpoint). Needs no secret \
                and does not need the gateway: run it anywhere, on a copy of both files.

                On success prints "ok: N records, M checkpoints, head HASH" and exits 0. Otherwise prints \
                "LEDGER: error: PROBLEM" to stderr, naming the first bad record, and exits 1. Warnings (for example \
                a torn line the gateway recovered from after a crash) go to stderr as "LEDGER: warning: …".

                Records written after the last checkpoint are not covered by any signature, so anyone able to \
                write the file could have added them; they fail the check unless --allow-unsealed is given. A \
                gateway that shuts down cleanly always ends its ledger with a checkpoint; one still running seals \
                its tail at every checkpoint interval, so a ledger copied while the gateway runs may need \
                --allow-unsealed.

                Examples:
                  mcpg audit verify data/audit.ledger --key keys/audit.pub
                  mcpg audit verify audit.ledger --key "$(tail -n 1 keys/audit.pub)"
                """)

        @Argument(help: ArgumentHelp("The ledger file (its head file is LEDGER.head).", valueName: "LEDGER"))
        var ledger: String

        @Option(
            help: ArgumentHelp(
                "The audit signing key's public half: a minisign .pub file, or the key itself (RWQ…).",
                valueName: "PUB"))
        var key: String

        @Flag(help: "Accept records after the last checkpoint (with a warning) instead of failing.")
        var allowUnsealed = false

        func run() throws {
            let publicKey: MinisignPublicKey
            do {
                publicKey = try MinisignPublicKey(keyOrFile: key)
            } catch {
                writeStderr("\(ledger): error: \(error)")
                throw ExitCode(1)
            }
            let report = LedgerVerifier.verify(
                path: ledger, publicKey: publicKey.key, keyID: publicKey.keyID, allowUnsealedTail: allowUnsealed)
            for warning in report.warnings { writeStderr("\(ledger): warning: \(warning)") }
            guard report.ok, report.problem == nil else {
                writeStderr("\(ledger): error: \(report.problem ?? "verification failed")")
                throw ExitCode(1)
            }
            print("ok: \(report.records) records, \(report.checkpoints) checkpoints, head \(report.head)")
        }
    }
}

/// Writes one line to standard error (fd 2 directly: the C `stderr` global is not concurrency-safe in Swift 6).
private func writeStderr(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(2, $0.baseAddress! + done, $0.count - done) }
        if n <= 0 { return }
        done += n
    }
}
