import Foundation
import Logging
import MCPGJSON
import Testing

@testable import MCPGAudit

/// The Merkle tree, inclusion proofs, segments and retention, signing-key changes and batched durability.
@Suite struct LedgerProofTests {
    private func trusted(_ keys: TestKey...) -> [LedgerTrustedKey] {
        keys.map { LedgerTrustedKey(publicKey: $0.publicKey, keyID: $0.keyID) }
    }

    private func hashes(_ n: Int) -> [[UInt8]] {
        (0..<n).map { i in Sodium.sha256(Array("record \(i)".utf8)) }
    }

    @Test func frontierRootEqualsTheRFC6962DefinitionForEverySize() {
        var frontier = MerkleFrontier()
        #expect(frontier.root == Merkle.emptyRoot)
        let records = hashes(70)
        let leaves = records.map(Merkle.leaf)
        for n in 1...70 {
            frontier.append(recordHash: records[n - 1])
            #expect(frontier.root == Merkle.root(of: leaves[..<n]), "size \(n)")
            #expect(frontier.nodes.count == n.nonzeroBitCount)
        }
        // RFC 6962 domain separation: a leaf is not a node over the same bytes.
        #expect(Merkle.leaf(records[0]) != Sodium.sha256(records[0]))
    }

    @Test func everyAuditPathLeadsToTheRootAndNoOtherLeafDoes() {
        for size in [1, 2, 3, 5, 8, 13, 33] {
            let leaves = hashes(size).map(Merkle.leaf)
            let root = Merkle.root(of: leaves[...])
            for i in 0..<size {
                let path = Merkle.auditPath(index: i, leaves: leaves[...])
                #expect(Merkle.rootFromPath(leaf: leaves[i], index: Int64(i), size: Int64(size), path: path) == root)
                let wrongLeaf = Merkle.leaf(Sodium.sha256(Array("forged".utf8)))
                #expect(Merkle.rootFromPath(leaf: wrongLeaf, index: Int64(i), size: Int64(size), path: path) != root)
                if size > 1 {
                    // The same path at another index does not verify.
                    let other = Int64((i + 1) % size)
                    #expect(Merkle.rootFromPath(leaf: leaves[i], index: other, size: Int64(size), path: path) != root)
                }
            }
        }
        #expect(Merkle.rootFromPath(leaf: [], index: 3, size: 3, path: []) == nil)
    }

    @Test func checkpointsSignTheMerkleRootAndTheVerifierRecomputesIt() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: 7)
        try await appendEvents(ledger, count: 30)
        try await ledger.close()
        let report = verify(path, key: key)
        #expect(report.ok, "\(report)")
        // A checkpoint whose root was recomputed over a forged record and re-signed by another key is named.
        var lines = try LedgerFileText.lines(path)
        let parsed = try RecordLine.parse(ArraySlice(lines[7].utf8)).get()
        guard case .checkpoint(let c) = parsed.body else { Issue.record("line 8 is not a checkpoint"); return }
        var forged = c
        forged.root = String(repeating: "a", count: 64)
        let (line, _) = RecordLine.encode(seq: parsed.seq, ts: parsed.ts, prev: parsed.prev, body: .checkpoint(forged))
        lines[7] = String(decoding: line.dropLast(), as: UTF8.self)
        try LedgerFileText.write(lines, to: path)
        #expect(verify(path, key: key).problem == "checkpoint at record 8: Merkle root does not match records 1-7")
    }

    @Test func aCheckpointForgedWithAnotherKeyIsNamedEvenWhenThatKeyIsGiven() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: 5)
        try await appendEvents(ledger, count: 10)
        try await ledger.close()
        // Someone with write access and their own key re-signs the second checkpoint (record 12), correctly.
        let mallory = TestKey()
        var lines = try LedgerFileText.lines(path)
        let parsed = try RecordLine.parse(ArraySlice(lines[11].utf8)).get()
        guard case .checkpoint(let c) = parsed.body else { Issue.record("line 12 is not a checkpoint"); return }
        let forged = Ledger.checkpoint(
            try mallory.signer(), size: c.size, head: c.head, root: Hex.decode(c.root)!, ts: parsed.ts)
        let (line, _) = RecordLine.encode(seq: parsed.seq, ts: parsed.ts, prev: parsed.prev, body: .checkpoint(forged))
        lines[11] = String(decoding: line.dropLast(), as: UTF8.self)
        try LedgerFileText.write(lines, to: path)
        let report = LedgerVerifier.verify(path: path, keys: trusted(key, mallory))
        #expect(!report.ok)
        #expect(
            report.problem == "checkpoint at record 12: signed by key \(LedgerKeyID.text(mallory.keyID)), but the "
                + "ledger's key is \(LedgerKeyID.text(key.keyID)) and no key record changed it")
    }

    @Test func proofsVerifyWithOnlyThePublicKeyAndAlteredRecordsFail() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: 10)
        try await appendEvents(ledger, count: 57)
        try await ledger.close()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<12 {
            let seq = Int64.random(in: 1...62, using: &rng)
            let bundle = try LedgerProof.bundle(path: path, from: seq, to: seq)
            let verified = try LedgerProof.verify(bundle, keys: trusted(key)).get()
            #expect(verified.seqs == [seq])
            #expect(verified.size == 62)
        }
        // A range: consecutive records, every one proven.
        let range = try LedgerProof.bundle(path: path, from: 20, to: 35)
        #expect(try LedgerProof.verify(range, keys: trusted(key)).get().seqs == Array(20...35))
        // Against an older checkpoint (record 11 covers 1-10).
        let old = try LedgerProof.bundle(path: path, from: 4, to: 4, checkpointSeq: 11)
        #expect(try LedgerProof.verify(old, keys: trusted(key)).get().size == 10)
        #expect(throws: LedgerError.self) { try LedgerProof.bundle(path: path, from: 12, to: 12, checkpointSeq: 11) }

        // Altered record: its line no longer matches its hash; re-hashed, it no longer leads to the root.
        let one = try LedgerProof.bundle(path: path, from: 5, to: 5)
        let line = try #require(one["records"]?[0]?["line"]?.stringValue)
        let edited = line.replacingOccurrences(of: #""who":"alice""#, with: #""who":"mallory""#)
        #expect(edited != line)
        func withLine(_ text: String) -> JSON {
            var b = one.objectValue!
            var r = b["records"]![0]!.objectValue!
            r["line"] = .string(text)
            b["records"] = [.object(r)]
            return .object(b)
        }
        #expect(failure(withLine(edited), key)?.contains("does not match its hash (edited)") == true)
        let parsed = try RecordLine.parse(ArraySlice(edited.utf8)).get()
        let (rehashed, _) = RecordLine.encode(seq: parsed.seq, ts: parsed.ts, prev: parsed.prev, body: parsed.body)
        #expect(
            failure(withLine(String(decoding: rehashed.dropLast(), as: UTF8.self)), key)?
                .contains("does not lead to the checkpoint's root") == true)

        // Another key, or a checkpoint re-signed by another key, is refused.
        let other = TestKey()
        #expect(failure(one, other)?.contains("not a given key") == true)
        var forged = one.objectValue!
        var cp = forged["checkpoint"]!.objectValue!
        cp["key_id"] = .string(LedgerKeyID.text(other.keyID))
        forged["checkpoint"] = .object(cp)
        #expect(failure(.object(forged), other)?.contains("signature does not verify") == true)
    }

    private func failure(_ bundle: JSON, _ key: TestKey) -> String? {
        if case .failure(let e) = LedgerProof.verify(bundle, keys: trusted(key)) { return e.message }
        return nil
    }

    private func openRotating(
        _ path: String, key: TestKey, rotateBytes: Int64, retain: Int? = nil, previous: TestKey? = nil
    ) throws -> Ledger {
        try Ledger(
            path: path, signer: key.signer(),
            options: LedgerOptions(
                checkpointEvery: 5, checkpointInterval: .seconds(3600), rotateBytes: rotateBytes,
                retainSegments: retain, previousSigner: try previous?.signer()),
            logger: LogCapture().logger)
    }

    @Test func segmentsRotateAndTheChainAndTreeContinueAcrossThem() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openRotating(path, key: key, rotateBytes: 2000)
        try await appendEvents(ledger, count: 60)
        let rotations = await ledger.rotations
        try await ledger.close()
        #expect(rotations >= 3)
        let segments = LedgerSegments.closed(of: path)
        #expect(segments.count == rotations)
        #expect(segments.first?.firstSeq == 1)
        #expect(segments.first?.path.hasSuffix("audit.ledger.000000000001") == true)
        // Every closed segment ends with a checkpoint; every later one starts with a segment record.
        for segment in segments.dropFirst() {
            let first = try #require(try LedgerFileText.lines(segment.path).first)
            #expect(first.contains(#""segment":{"previous":"audit.ledger."#))
        }
        let report = verify(path, key: key)
        #expect(report.ok, "\(report)")
        #expect(report.events == 60)

        // Reopening continues the active segment; a proof reaches across segments.
        let again = try openRotating(path, key: key, rotateBytes: 2000)
        try await appendEvents(again, count: 10, from: 61)
        try await again.close()
        #expect(verify(path, key: key).ok)
        let bundle = try LedgerProof.bundle(path: path, from: 2, to: 2)
        #expect(try LedgerProof.verify(bundle, keys: trusted(key)).get().seqs == [2])

        // Swapping two closed segments' contents is named.
        let all = LedgerSegments.closed(of: path)
        let a = try Data(contentsOf: URL(fileURLWithPath: all[1].path))
        let b = try Data(contentsOf: URL(fileURLWithPath: all[2].path))
        try b.write(to: URL(fileURLWithPath: all[1].path))
        try a.write(to: URL(fileURLWithPath: all[2].path))
        let swapped = verify(path, key: key)
        #expect(!swapped.ok)
        #expect(swapped.problem?.contains("segments swapped or renamed") == true, "\(swapped)")
    }

    @Test func retentionKeepsTheNewestSegmentsAndTheRestStillVerifies() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openRotating(path, key: key, rotateBytes: 1500, retain: 2)
        try await appendEvents(ledger, count: 80)
        try await ledger.close()
        let segments = LedgerSegments.closed(of: path)
        #expect(segments.count == 2)
        #expect(segments[0].firstSeq > 1)
        let report = verify(path, key: key)
        #expect(report.ok, "\(report)")
        #expect(report.firstSeq == segments[0].firstSeq)
        #expect(report.warnings.contains { $0.contains("older segments removed") })
        // Proofs still work for kept records (the removed part of the tree comes from the segment record).
        let seq = segments[0].firstSeq + 3
        let bundle = try LedgerProof.bundle(path: path, from: seq, to: seq)
        #expect(try LedgerProof.verify(bundle, keys: trusted(key)).get().seqs == [seq])
        #expect(throws: LedgerError.self) { try LedgerProof.bundle(path: path, from: 1, to: 1) }
        // Deleting a kept segment in the middle breaks the chain.
        try FileManager.default.removeItem(atPath: segments[1].path)
        #expect(!verify(path, key: key).ok)
    }

    @Test func aCrashRightAfterARotationContinuesInTheNewSegment() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: 5)
        try await appendEvents(ledger, count: 10)
        try await ledger.close()
        // What a crash between the rename and the new file leaves: a closed segment ending with the head file's
        // checkpoint, and no ledger file.
        try FileManager.default.moveItem(atPath: path, toPath: path + ".000000000001")
        let meanwhile = verify(path, key: key)
        #expect(meanwhile.ok, "\(meanwhile)")
        #expect(meanwhile.warnings.contains { $0.contains("does not exist; checked the closed segments") })
        let reopened = try openRotating(path, key: key, rotateBytes: 1 << 20)
        try await appendEvents(reopened, count: 3, from: 11)
        try await reopened.close()
        let first = try #require(try LedgerFileText.lines(path).first)
        #expect(first.contains(#""segment":{"previous":"audit.ledger.000000000001""#))
        let report = verify(path, key: key)
        #expect(report.ok, "\(report)")
        #expect(report.events == 13)
    }

    @Test func aKeyChangeIsRecordedAndEndorsedByThePreviousKey() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let old = TestKey()
        let new = TestKey()
        let first = try openLedger(path, key: old)
        try await appendEvents(first, count: 5)
        try await first.close()

        let second = try Ledger(
            path: path, signer: new.signer(),
            options: LedgerOptions(checkpointEvery: 1000, checkpointInterval: .seconds(3600),
                                   previousSigner: try old.signer()),
            logger: LogCapture().logger)
        try await appendEvents(second, count: 5, from: 6)
        try await second.close()
        let lines = try LedgerFileText.lines(path)
        #expect(lines.contains { $0.contains(#""key":{"key_id":"\#(LedgerKeyID.text(new.keyID))""#) })
        // The old public key alone is enough: the old key endorsed the new one.
        let report = LedgerVerifier.verify(path: path, keys: trusted(old))
        #expect(report.ok, "\(report)")
        #expect(report.checkpoints == 3)
        // The new key alone is not: the ledger started with the old one.
        #expect(LedgerVerifier.verify(path: path, keys: trusted(new)).problem?.contains("not a given key") == true)
    }

    @Test func anUnendorsedKeyChangeNeedsBothKeysAndAWrongPreviousKeyIsRefused() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let old = TestKey()
        let new = TestKey()
        let first = try openLedger(path, key: old)
        try await appendEvents(first, count: 3)
        try await first.close()
        // A previous key that is not the ledger's: refused, nothing written.
        let before = try LedgerFileText.lines(path)
        #expect(throws: LedgerError(.badKey, "")) {
            try Ledger(
                path: path, signer: new.signer(),
                options: LedgerOptions(checkpointEvery: 1000, checkpointInterval: .seconds(3600),
                                       previousSigner: try TestKey().signer()),
                logger: LogCapture().logger)
        }
        #expect(try LedgerFileText.lines(path) == before)

        let second = try openLedger(path, key: new)
        try await appendEvents(second, count: 3, from: 4)
        try await second.close()
        let oldOnly = LedgerVerifier.verify(path: path, keys: trusted(old))
        #expect(oldOnly.problem?.contains("is not endorsed by \(LedgerKeyID.text(old.keyID))") == true, "\(oldOnly)")
        let both = LedgerVerifier.verify(path: path, keys: trusted(old, new))
        #expect(both.ok, "\(both)")
        #expect(both.warnings.contains { $0.contains("not endorsed; accepted") })
    }

    /// A ledger at `path` with a commit delay that checkpoints only when closed.
    func batchLedger(_ path: String, _ key: TestKey, commitDelay: Duration) throws -> Ledger {
        try Ledger(
            path: path, signer: key.signer(),
            options: LedgerOptions(checkpointEvery: 10_000, checkpointInterval: .seconds(3600), commitDelay: commitDelay),
            logger: LogCapture().logger)
    }

    @Test func batchDurabilitySharesFsyncsAndStillAnswersOnlyWhenDurable() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try batchLedger(path, key, commitDelay: .milliseconds(20))
        let receipts = try await withThrowingTaskGroup(of: LedgerReceipt.self) { group in
            for n in 0..<200 { group.addTask { try await ledger.append(["n": .int(Int64(n))]) } }
            var out: [LedgerReceipt] = []
            for try await r in group { out.append(r) }
            return out
        }
        // Every append returned only once durable: the file already holds all 200 records.
        #expect(try LedgerFileText.lines(path).count == 200)
        #expect(Set(receipts.map(\.seq)) == Set(1...200))
        let fsyncs = await ledger.fsyncCount
        #expect(fsyncs < 20, "fsyncs: \(fsyncs)")
        try await ledger.close()
        #expect(verify(path, key: key).ok)
    }

    /// Under a steady load (appenders that each wait for their record before the next, as callers do), writes keep
    /// gathering records, and a write stops waiting once the last write's callers are back rather than waiting out
    /// the whole delay every round.
    @Test func batchDurabilityGathersUnderASteadyLoadWithoutWaitingOutTheDelay() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try batchLedger(path, key, commitDelay: .seconds(5))
        let appenders = 16, rounds = 20
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for a in 0..<appenders {
                group.addTask {
                    for n in 0..<rounds { _ = try await ledger.append(["a": .int(Int64(a)), "n": .int(Int64(n))]) }
                }
            }
            try await group.waitForAll()
        }
        // Waiting out the delay every round would take 100 s; stragglers may wait it out once or twice.
        #expect(ContinuousClock.now - start < .seconds(60))
        let fsyncs = await ledger.fsyncCount
        // One fsync per record would be 320; about one per round is the aim.
        #expect(fsyncs < appenders * rounds / 4, "fsyncs: \(fsyncs)")
        try await ledger.close()
        #expect(verify(path, key: key).events == appenders * rounds)
    }

    /// The commit delay is for batches: a record appended while none other waits is written at once, so one
    /// agent's sequential calls do not each pay it.
    @Test func batchDurabilityDoesNotDelayALoneRecord() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try batchLedger(path, key, commitDelay: .seconds(300))
        let start = ContinuousClock.now
        for n in 0..<3 { _ = try await ledger.append(["n": .int(Int64(n))]) }
        // Three sequential appends, each durable before the next: far less than one 300 s delay. (The bound is loose:
        // a loaded test run has held up unrelated 50 ms timers for over 30 s.)
        #expect(ContinuousClock.now - start < .seconds(150))
        #expect(try LedgerFileText.lines(path).count == 3)
        #expect(await ledger.fsyncCount == 3)
        try await ledger.close()
        #expect(verify(path, key: key).ok)
    }
}
