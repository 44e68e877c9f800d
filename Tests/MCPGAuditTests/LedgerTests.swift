import Foundation
import Logging
import MCPGJSON
import Testing

@testable import MCPGAudit

/// The writer: chain, checkpoints, group commit, reopen, torn-line recovery, subscribers. Real files, real fsync.
@Suite struct LedgerTests {
    @Test func recordsChainAndReceiptsMatchTheFile() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key)
        let receipts = try await appendEvents(ledger, count: 3)
        #expect(receipts.map(\.seq) == [1, 2, 3])
        let lines = try LedgerFileText.lines(path)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix(#"{"seq":1,"ts":""#))
        #expect(lines[0].contains(#""prev":"\#(RecordLine.zeroHash)","event":{"who":"alice""#))
        #expect(lines[1].contains(#""prev":"\#(receipts[0].hash)""#))
        #expect(lines[2].hasSuffix(#","hash":"\#(receipts[2].hash)"}"#))
        try await ledger.close()
        let after = try LedgerFileText.lines(path)
        #expect(after.count == 4)
        #expect(after[3].contains(#""checkpoint":{"size":3,"head":"\#(receipts[2].hash)","root":""#))
        let head = try String(contentsOfFile: path + ".head", encoding: .utf8)
        #expect(head.contains(#""size":3"#))
        #expect(head.contains(#""seq_of_checkpoint":4"#))
    }

    @Test func checkpointAfterEveryRecord() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: 1)
        try await appendEvents(ledger, count: 10)
        #expect(await ledger.headFileWrites == 10)
        try await ledger.close()
        let lines = try LedgerFileText.lines(path)
        #expect(lines.count == 20)
        for (i, line) in lines.enumerated() {
            #expect(line.contains(i % 2 == 0 ? #""event":"# : #""checkpoint":"#))
        }
        let report = verify(path, key: key)
        #expect(report.ok)
        #expect(report.checkpoints == 10)
        #expect(report.events == 10)
    }

    @Test func timedCheckpointSealsTheTailWithoutClose() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: 1000, interval: .milliseconds(50))
        try await appendEvents(ledger, count: 3)
        var sealed = false
        for _ in 0..<100 where !sealed {
            try await Task.sleep(for: .milliseconds(20))
            sealed = verify(path, key: key).ok
        }
        #expect(sealed)
        #expect(try LedgerFileText.lines(path).count == 4)
        try await ledger.close()
    }

    @Test func reopenContinuesTheChain() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        var ledger = try openLedger(path, key: key, every: 4)
        try await appendEvents(ledger, count: 6)
        try await ledger.close()
        ledger = try openLedger(path, key: key, every: 4)
        #expect(await ledger.lastSeq == 8)
        let receipt = try await ledger.append(["n": 7])
        #expect(receipt.seq == 9)
        try await ledger.close()
        let report = verify(path, key: key)
        #expect(report.ok)
        #expect(report.records == 10)
    }

    @Test func tornLastLineIsRecoveredAndReported() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        var ledger = try openLedger(path, key: key)
        try await appendEvents(ledger, count: 5)
        try await ledger.close()  // records 1-5 and checkpoint 6
        let sizeBefore = try LedgerFileText.size(path)
        let half = #"{"seq":7,"ts":"2026-11-25T22:40:01.123Z","prev":"0123"#
        try LedgerFileText.append(half, to: path)

        // Before the writer reopens, the verifier already names the torn bytes.
        let early = verify(path, key: key)
        #expect(early.ok)
        #expect(early.warnings.first?.hasPrefix("line 7 (byte offset \(sizeBefore)): torn last line of") == true)

        let logs = LogCapture()
        ledger = try openLedger(path, key: key, logger: logs.logger)
        let recovery = try #require(ledger.recovery)
        #expect(recovery.byteOffset == sizeBefore)
        #expect(recovery.tornBytes == Int64(half.utf8.count))
        #expect(recovery.reason == "last line has no trailing newline")
        #expect(recovery.recordSeq == 7)
        #expect(logs.messages(at: .error) == ["audit ledger had a torn last line; recovery record appended"])
        try await appendEvents(ledger, count: 3, from: 6)
        try await ledger.close()

        let lines = try LedgerFileText.lines(path)
        #expect(lines[6] == half)  // never rewritten, never dropped
        #expect(lines[7].contains(#""recovery":{"torn_bytes":\#(half.utf8.count),"#))
        let report = verify(path, key: key)
        #expect(report.ok)
        #expect(report.records == 11)  // 5 events, checkpoint, recovery, 3 events, checkpoint
        #expect(
            report.warnings == [
                "line 7 (byte offset \(sizeBefore)): torn line of \(half.utf8.count) bytes (last line has no "
                    + "trailing newline), recovered by record 7"
            ])
    }

    @Test func unparsableTerminatedLastLineIsRecovered() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        var ledger = try openLedger(path, key: key)
        try await appendEvents(ledger, count: 2)
        try await ledger.close()
        try LedgerFileText.append("\0\0\0\0garbage\n", to: path)
        ledger = try openLedger(path, key: key)
        #expect(ledger.recovery?.tornBytes == 11)
        #expect(ledger.recovery?.reason.hasPrefix("last line is not a record") == true)
        try await ledger.close()
        #expect(verify(path, key: key).ok)
    }

    @Test func crashDuringRecoveryIsRecoveredToo() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        var ledger = try openLedger(path, key: key)
        try await appendEvents(ledger, count: 2)
        try await ledger.close()  // records 1-2 and checkpoint 3
        let sizeBefore = try LedgerFileText.size(path)
        // A torn record, then the newline and part of a recovery record, as a second crash would leave them.
        let torn = #"{"seq":4,"ts":"2026-11-25T22:40:01.123Z","prev""#
        let partial = #"{"seq":4,"ts":"2026-11-25T22:41:00.000Z","prev":"abc"#
        try LedgerFileText.append(torn + "\n" + partial, to: path)
        ledger = try openLedger(path, key: key)
        let tornBytes = Int64(torn.utf8.count + 1 + partial.utf8.count)
        #expect(ledger.recovery?.byteOffset == sizeBefore)
        #expect(ledger.recovery?.tornBytes == tornBytes)
        #expect(ledger.recovery?.reason.hasPrefix("the last 2 lines are not records") == true)
        try await appendEvents(ledger, count: 1, from: 3)
        try await ledger.close()
        let report = verify(path, key: key)
        #expect(report.ok)
        let expected = "lines 4-5 (byte offset \(sizeBefore)): torn lines of \(tornBytes) bytes"
        #expect(report.warnings.first?.hasPrefix(expected) == true)
        #expect(report.records == 6)  // 2 events, checkpoint, recovery, event, checkpoint
    }

    @Test func aFileThatIsNotALedgerIsRefused() async throws {
        let dir = try TempDir()
        let path = dir.file("notes.txt")
        try LedgerFileText.write((1...20).map { "line \($0) of someone's notes" }, to: path)
        let sizeBefore = try LedgerFileText.size(path)
        #expect(throws: LedgerError(.damaged, "")) { try openLedger(path, key: TestKey()) }
        #expect(try LedgerFileText.size(path) == sizeBefore)

        let short = dir.file("short.txt")
        try LedgerFileText.write(["a", "b"], to: short)
        #expect(throws: LedgerError(.damaged, "")) { try openLedger(short, key: TestKey()) }

        // One line cut short before the first record ever completed is a crash, and is recovered.
        let first = dir.file("first.ledger")
        try LedgerFileText.append(#"{"seq":1,"ts":"2026-11"#, to: first)
        let key = TestKey()
        let ledger = try openLedger(first, key: key)
        #expect(ledger.recovery?.recordSeq == 1)
        try await ledger.close()
        #expect(verify(first, key: key).ok)
    }

    @Test func editedLastRecordRefusesToOpen() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key)
        try await appendEvents(ledger, count: 2)
        try await ledger.close()
        var lines = try LedgerFileText.lines(path)
        lines[2] = lines[2].replacingOccurrences(of: #""size":2"#, with: #""size":3"#)
        try LedgerFileText.write(lines, to: path)
        #expect(throws: LedgerError(.damaged, "")) { try openLedger(path, key: key) }
    }

    @Test func truncatedLedgerRefusesToOpen() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: 3)
        try await appendEvents(ledger, count: 6)
        try await ledger.close()
        var lines = try LedgerFileText.lines(path)
        lines.removeLast(2)
        try LedgerFileText.write(lines, to: path)
        let error = #expect(throws: LedgerError.self) { try openLedger(path, key: key) }
        #expect(error?.code == .truncated)
        let expected = "ledger ends at record 6 but the head file's signed checkpoint is record 8"
        #expect(error?.message.contains(expected) == true)
    }

    @Test func secondWriterIsRefused() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key)
        #expect(throws: LedgerError(.inUse, "")) { try openLedger(path, key: key) }
        try await ledger.close()
        let again = try openLedger(path, key: key)
        try await again.close()
    }

    @Test func misuseGivesClearErrors() async throws {
        let dir = try TempDir()
        let key = TestKey()
        #expect(throws: LedgerError(.badKey, "")) { try LedgerSigner(keyID: [1, 2], secretKey: key.secretKey) }
        #expect(throws: LedgerError(.badKey, "")) { try LedgerSigner(keyID: key.keyID, secretKey: [0]) }
        #expect(throws: LedgerError(.invalidArgument, "")) {
            try openLedger(dir.file("a.ledger"), key: key, every: 0)
        }
        let ledger = try openLedger(dir.file("b.ledger"), key: key)
        _ = try await ledger.append(["first": true])
        try await ledger.close()
        try await ledger.close()
        await #expect(throws: LedgerError(.closed, "")) { try await ledger.append(["late": true]) }
        let signer = try key.signer()
        #expect(!"\(signer)".contains(key.secretKey.map { String($0) }.joined()))
        #expect(signer.publicKey == key.publicKey)
    }

    @Test func deepEventsStayVerifiableAndTooDeepOnesAreRefused() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key)
        func nested(_ depth: Int) -> JSON {
            var value: JSON = "leaf"
            for _ in 0..<depth { value = ["inner": value] }
            return value
        }
        _ = try await ledger.append(nested(300))
        await #expect(throws: LedgerError(.invalidArgument, "")) { try await ledger.append(nested(1100)) }
        try await ledger.close()
        let report = verify(path, key: key)
        #expect(report.ok)
        #expect(report.events == 1)
    }

    @Test func aFailedWriteFailsClosed() async throws {
        // /dev/full accepts the open and refuses every write with ENOSPC: a disk that filled up.
        try #require(FileManager.default.isWritableFile(atPath: "/dev/full"))
        let ledger = try openLedger("/dev/full", key: TestKey())
        let first = await #expect(throws: LedgerError.self) { try await ledger.append(["n": 1]) }
        #expect(first?.code == .io)
        #expect(first?.message.contains("write failed") == true)
        let second = await #expect(throws: LedgerError.self) { try await ledger.append(["n": 2]) }
        #expect(second?.code == .failed)
        await #expect(throws: LedgerError.self) { try await ledger.close() }
    }

    @Test func subscribersSeeCommittedLinesInOrder() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key)
        let stream = await ledger.committedRecords()
        try await appendEvents(ledger, count: 4)
        try await ledger.close()
        var seen: [String] = []
        for await line in stream { seen.append(String(decoding: line, as: UTF8.self)) }
        #expect(seen == (try LedgerFileText.lines(path)))
        #expect(seen.count == 5)
    }

    @Test func concurrentAppendsShareFsyncsAndFormOneChain() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key)
        let receipts = try await withThrowingTaskGroup(of: LedgerReceipt.self) { group in
            for n in 0..<64 {
                group.addTask { try await ledger.append(["n": .int(Int64(n)), "what": "concurrent"]) }
            }
            var all: [LedgerReceipt] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(receipts.map(\.seq).sorted() == Array(1...64))
        let fsyncs = await ledger.fsyncCount
        #expect(fsyncs < 64)
        try await ledger.close()
        let report = verify(path, key: key)
        #expect(report.ok)
        #expect(report.events == 64)
        print("64 concurrent appends: \(fsyncs) fsyncs")
    }

    @Test func closeDuringConcurrentAppendsLosesNothingAcknowledged() async throws {
        let dir = try TempDir()
        let path = dir.file("audit.ledger")
        let key = TestKey()
        let ledger = try openLedger(path, key: key, every: 7)
        let outcomes = await withTaskGroup(of: Result<LedgerReceipt, LedgerError>?.self) { group in
            for n in 0..<64 {
                group.addTask {
                    do throws(LedgerError) {
                        return .success(try await ledger.append(["n": .int(Int64(n))]))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            group.addTask {
                try? await ledger.close()
                return nil
            }
            var all: [Result<LedgerReceipt, LedgerError>] = []
            for await outcome in group { if let outcome { all.append(outcome) } }
            return all
        }
        var acknowledged = 0
        for outcome in outcomes {
            switch outcome {
            case .success: acknowledged += 1
            case .failure(let error): #expect(error.code == .closed)
            }
        }
        let report = verify(path, key: key)
        #expect(report.ok)
        #expect(report.events == acknowledged)
    }
}
