import ArgumentParser
import MCPGAudit
import MCPGJSON
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
        subcommands: [Verify.self, Prove.self, Export.self, VerifyProof.self])

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
                "The audit signing key's public half: a minisign .pub file, or the key itself (RWQ…). Repeat it to "
                    + "accept a key change the previous key did not endorse.",
                valueName: "PUB"))
        var key: [String]

        @Flag(help: "Accept records after the last checkpoint (with a warning) instead of failing.")
        var allowUnsealed = false

        func validate() throws {
            guard !key.isEmpty else { throw ValidationError("Missing expected argument '--key <PUB>'") }
        }

        func run() throws {
            let keys = try trustedKeys(key, subject: ledger)
            let report = LedgerVerifier.verify(path: ledger, keys: keys, allowUnsealedTail: allowUnsealed)
            for warning in report.warnings { printError("\(ledger): warning: \(warning)") }
            guard report.ok, report.problem == nil else {
                printError("\(ledger): error: \(report.problem ?? "verification failed")")
                throw ExitCode(1)
            }
            print("ok: \(report.records) records, \(report.checkpoints) checkpoints, head \(report.head), "
                  + "root \(report.root)")
        }
    }

    /// `mcpg audit prove LEDGER SEQ [--checkpoint CSEQ]`.
    struct Prove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an inclusion proof for one record, to show it to an auditor without the ledger.",
            discussion: """
                Writes a JSON proof bundle to stdout: the record's line, its Merkle audit path and the signed \
                checkpoint it leads to (the newest one, or --checkpoint). `mcpg audit verify-proof` checks it with \
                only the public key. Needs no key.

                Example:
                  mcpg audit prove data/audit.ledger 1042 > record-1042.proof.json
                """)

        @Argument(help: ArgumentHelp("The ledger file.", valueName: "LEDGER"))
        var ledger: String
        @Argument(help: ArgumentHelp("The record's seq.", valueName: "SEQ"))
        var seq: Int64
        @Option(help: ArgumentHelp("Seq of the checkpoint record to prove against (default: the newest).",
                                   valueName: "CSEQ"))
        var checkpoint: Int64?

        func run() throws {
            try printBundle(ledger: ledger, from: seq, to: seq, checkpoint: checkpoint)
        }
    }

    /// `mcpg audit export LEDGER --from A --to B [--checkpoint CSEQ]`.
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write records A…B with their inclusion proofs as one bundle that verifies offline.",
            discussion: """
                The bundle (JSON, to stdout) holds each record's line, its Merkle audit path and the signed \
                checkpoint they lead to; consecutive records also chain, so the range is shown complete. Check it \
                with `mcpg audit verify-proof BUNDLE --key PUB`.

                Example:
                  mcpg audit export data/audit.ledger --from 1000 --to 1100 > incident-42.bundle.json
                """)

        @Argument(help: ArgumentHelp("The ledger file.", valueName: "LEDGER"))
        var ledger: String
        @Option(help: ArgumentHelp("Seq of the first record.", valueName: "A"))
        var from: Int64
        @Option(help: ArgumentHelp("Seq of the last record.", valueName: "B"))
        var to: Int64
        @Option(help: ArgumentHelp("Seq of the checkpoint record to prove against (default: the newest).",
                                   valueName: "CSEQ"))
        var checkpoint: Int64?

        func run() throws {
            try printBundle(ledger: ledger, from: from, to: to, checkpoint: checkpoint)
        }
    }

    /// `mcpg audit verify-proof BUNDLE --key PUB`.
    struct VerifyProof: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-proof",
            abstract: "Check a proof or export bundle with only the public key.",
            discussion: """
                Checks each record's hash, its Merkle audit path up to the checkpoint's root, the checkpoint's \
                signature, and that consecutive records chain. Prints "ok: …" and exits 0, or prints the problem \
                and exits 1.

                Example:
                  mcpg audit verify-proof record-1042.proof.json --key keys/audit.pub
                """)

        @Argument(help: ArgumentHelp("The bundle file, or - for stdin.", valueName: "BUNDLE"))
        var bundle: String
        @Option(help: ArgumentHelp("A public key the checkpoint may be signed with (repeatable).", valueName: "PUB"))
        var key: [String]

        func validate() throws {
            guard !key.isEmpty else { throw ValidationError("Missing expected argument '--key <PUB>'") }
        }

        func run() throws {
            let keys = try trustedKeys(key, subject: bundle)
            let json: JSON
            do {
                json = try JSON.parse(try readFile(bundle, limit: 1 << 30))
            } catch {
                printError("\(bundle): error: not a JSON proof bundle: \(error)")
                throw ExitCode(1)
            }
            switch LedgerProof.verify(json, keys: keys) {
            case .success(let verified): print(verified.description)
            case .failure(let error):
                printError("\(bundle): error: \(error.message)")
                throw ExitCode(1)
            }
        }
    }
}

/// Reads `--key` values (files or RW… keys) as trusted ledger keys, or exits 1 naming the bad one.
private func trustedKeys(_ values: [String], subject: String) throws -> [LedgerTrustedKey] {
    var keys: [LedgerTrustedKey] = []
    for value in values {
        do {
            let key = try MinisignPublicKey(keyOrFile: value)
            keys.append(LedgerTrustedKey(publicKey: key.key, keyID: key.keyID))
        } catch {
            printError("\(subject): error: \(error)")
            throw ExitCode(1)
        }
    }
    return keys
}

private func printBundle(ledger: String, from: Int64, to: Int64, checkpoint: Int64?) throws {
    do throws(LedgerError) {
        let bundle = try LedgerProof.bundle(path: ledger, from: from, to: to, checkpointSeq: checkpoint)
        print(String(decoding: bundle.serialized(), as: UTF8.self))
    } catch {
        printError("\(ledger): error: \(error.message)")
        throw ExitCode(1)
    }
}
