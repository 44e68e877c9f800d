import Foundation
import MCPGJSON
import Testing

@testable import MCPGAudit

/// Tampering with a closed ledger, the way someone with write access to the file would, and checking that the
/// verifier names the first bad record exactly.
@Suite struct LedgerVerifierTests {
    /// A closed ledger of `events` events with one checkpoint at the end (line = seq for every event).
    private func closedLedger(events: Int, every: Int = 1000) async throws -> (TempDir, String, TestKey) {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: every)
        try await appendEvents(ledger, count: events)
        try await ledger.close()
        return (dir, path, key)
    }

    @Test func intactChainVerifies() async throws {
        let (dir, path, key) = try await closedLedger(events: 50, every: 10)
        _ = dir
        let report = verify(path, key: key)
        #expect(report.ok)
        #expect(report.problem == nil)
        #expect(report.events == 50)
        #expect(report.checkpoints == 5)
        #expect(report.records == 55)
        #expect(report.unsealed == 0)
        #expect(report.warnings.isEmpty)
        let lastLine = try #require(try LedgerFileText.lines(path).last)
        #expect(lastLine.hasSuffix(#","hash":"\#(report.head)"}"#))
        #expect(report.description == "ok: 55 records, 5 checkpoints, head \(report.head)")
    }

    @Test func editedByteIsNamed() async throws {
        let (dir, path, key) = try await closedLedger(events: 20)
        _ = dir
        var lines = try LedgerFileText.lines(path)
        #expect(lines[6].contains(#""who":"alice""#))
        lines[6] = lines[6].replacingOccurrences(of: #""who":"alice""#, with: #""who":"alicf""#)
        try LedgerFileText.write(lines, to: path)
        let report = verify(path, key: key)
        #expect(!report.ok)
        #expect(report.problem == "record 7 (line 7): hash mismatch (edited)")
        #expect(report.records == 6)
    }

    @Test func deletedRecordIsNamed() async throws {
        let (dir, path, key) = try await closedLedger(events: 20)
        _ = dir
        var lines = try LedgerFileText.lines(path)
        lines.remove(at: 9)
        try LedgerFileText.write(lines, to: path)
        #expect(verify(path, key: key).problem == "line 10: seq 11 follows 9 (records deleted)")
    }

    @Test func swappedRecordsAreNamed() async throws {
        let (dir, path, key) = try await closedLedger(events: 20)
        _ = dir
        var lines = try LedgerFileText.lines(path)
        lines.swapAt(4, 5)
        try LedgerFileText.write(lines, to: path)
        #expect(verify(path, key: key).problem == "line 5: seq 6 follows 4 (records reordered)")
    }

    @Test func renumberedDeletionIsCaughtByTheChain() async throws {
        let (dir, path, key) = try await closedLedger(events: 20)
        _ = dir
        var lines = try LedgerFileText.lines(path)
        lines.remove(at: 9)
        // Re-encode every later record with the right seq but keep its old prev: each hash is valid again.
        for i in 9..<lines.count {
            let parsed = try RecordLine.parse(ArraySlice(lines[i].utf8)).get()
            let (line, _) = RecordLine.encode(seq: Int64(i + 1), ts: parsed.ts, prev: parsed.prev, body: parsed.body)
            lines[i] = String(decoding: line.dropLast(), as: UTF8.self)
        }
        try LedgerFileText.write(lines, to: path)
        #expect(
            verify(path, key: key).problem
                == "record 10 (line 10): prev does not match record 9 (deleted or reordered)")
    }

    @Test func rechainedForgeryFailsTheCheckpointSignature() async throws {
        let (dir, path, key) = try await closedLedger(events: 12, every: 5)
        _ = dir
        var lines = try LedgerFileText.lines(path)
        // Rewrite event 2 and recompute the whole chain, checkpoint heads and Merkle roots included, keeping the old
        // signatures.
        var prev = RecordLine.zeroHash
        var tree = MerkleFrontier()
        for i in lines.indices {
            var parsed = try RecordLine.parse(ArraySlice(lines[i].utf8)).get()
            if i == 1, case .event(var event) = parsed.body, case .object(var object) = event {
                object["decision"] = "deny"
                event = .object(object)
                parsed.body = .event(event)
            }
            if case .checkpoint(var c) = parsed.body {
                c.head = prev
                c.root = Hex.encode(tree.root)
                parsed.body = .checkpoint(c)
            }
            let (line, hash) = RecordLine.encode(seq: parsed.seq, ts: parsed.ts, prev: prev, body: parsed.body)
            lines[i] = String(decoding: line.dropLast(), as: UTF8.self)
            prev = hash
            tree.append(recordHash: Hex.decode(hash)!)
        }
        try LedgerFileText.write(lines, to: path)
        #expect(verify(path, key: key).problem == "checkpoint at record 6: bad signature")
    }

    @Test func truncatedTailIsDetectedThroughTheHeadFile() async throws {
        // 30 events, checkpoint every 10: checkpoints are records 11, 22 and 33 (the last line).
        let (dir, path, key) = try await closedLedger(events: 30, every: 10)
        _ = dir
        var lines = try LedgerFileText.lines(path)
        #expect(lines.count == 33)
        lines.removeLast(5)
        try LedgerFileText.write(lines, to: path)
        let report = verify(path, key: key)
        #expect(
            report.problem
                == "ledger ends at record 28 but the head file's signed checkpoint covers 32 records (truncated)")

        // Cutting exactly the final checkpoint is named too.
        let (dir2, path2, key2) = try await closedLedger(events: 30, every: 10)
        _ = dir2
        var lines2 = try LedgerFileText.lines(path2)
        lines2.removeLast()
        try LedgerFileText.write(lines2, to: path2)
        #expect(
            verify(path2, key: key2).problem
                == "ledger ends at record 32 but the head file's signed checkpoint covers 32 records and is record 33 "
                + "(truncated)")
    }

    @Test func missingHeadFileFails() async throws {
        let (dir, path, key) = try await closedLedger(events: 5)
        _ = dir
        try FileManager.default.removeItem(atPath: path + ".head")
        let report = verify(path, key: key)
        #expect(!report.ok)
        #expect(report.problem?.contains("no head file") == true)
    }

    @Test func wrongKeyFails() async throws {
        let (dir, path, key) = try await closedLedger(events: 5)
        _ = dir
        let other = TestKey()
        let report = verify(path, key: other)
        #expect(!report.ok)
        let otherID = String(other.keyID.reversed().map { String(format: "%02X", $0) }.joined())
        let ownID = String(key.keyID.reversed().map { String(format: "%02X", $0) }.joined())
        #expect(report.problem == "checkpoint at record 6: key id \(ownID) is not a given key (\(otherID))")

        // Right key id, wrong public key: the signature fails.
        let impostor = LedgerVerifier.verify(path: path, publicKey: other.publicKey, keyID: key.keyID)
        #expect(impostor.problem == "checkpoint at record 6: bad signature")
    }

    @Test func unsealedTailFailsUnlessAllowed() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: 4)
        try await appendEvents(ledger, count: 9)  // checkpoints are records 5 and 10; record 11 is event 9
        try await appendEvents(ledger, count: 2, from: 10)  // records 12..13 unsealed (3 after record 10)
        let strict = verify(path, key: key)
        #expect(strict.problem == "3 records after the last checkpoint are not covered by a signature")
        let lenient = verify(path, key: key, allowUnsealed: true)
        #expect(lenient.ok)
        #expect(lenient.records == 13)
        #expect(lenient.unsealed == 3)
        #expect(lenient.warnings == ["3 records after the last checkpoint are not covered by a signature (allowed)"])
        try await ledger.close()
        #expect(verify(path, key: key).ok)
    }

    @Test func tornLineWithoutRecoveryInTheMiddleFails() async throws {
        let (dir, path, key) = try await closedLedger(events: 5)
        _ = dir
        var lines = try LedgerFileText.lines(path)
        lines.insert(#"{"seq":3,"ts":"2026"#, at: 2)
        try LedgerFileText.write(lines, to: path)
        let report = verify(path, key: key)
        let offset = lines[0].utf8.count + lines[1].utf8.count + 2
        #expect(
            report.problem
                == "line 3 (byte offset \(offset)): not a record (too short to be a record), and no recovery record "
                + "for it follows")
    }

    @Test func badInputIsAReportNotACrash() throws {
        let dir = try TempDir()
        let key = TestKey()
        let missing = verify(dir.file("nope.ledger"), key: key)
        #expect(!missing.ok)
        #expect(missing.problem?.contains("No such file") == true)

        let garbage = dir.file("garbage.ledger")
        try LedgerFileText.write(["hello", "world"], to: garbage)
        let garbageReport = verify(garbage, key: key)
        #expect(garbageReport.problem == "lines 1-2 (byte offset 0): not records (too short to be a record)")

        let empty = dir.file("empty.ledger")
        try LedgerFileText.write([], to: empty)
        try Data().write(to: URL(fileURLWithPath: empty))
        let emptyReport = verify(empty, key: key)
        #expect(emptyReport.ok)
        #expect(emptyReport.records == 0)

        let shortKey = LedgerVerifier.verify(path: empty, publicKey: [1, 2, 3], keyID: key.keyID)
        #expect(shortKey.problem == "the public key must be 32 bytes, got 3")
    }
}
