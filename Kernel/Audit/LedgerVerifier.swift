/// The outcome of `LedgerVerifier.verify`.
public struct LedgerReport: Sendable, Equatable, CustomStringConvertible {
    /// True if the whole ledger checked out (warnings allowed).
    public var ok: Bool
    /// Records read and checked before the first problem (all of them when `ok`), of every kind.
    public var records: Int64
    /// Event records among them.
    public var events: Int
    /// Checkpoints whose signature verified.
    public var checkpoints: Int
    /// Hash of the last checked record (64 zeros for an empty ledger).
    public var head: String
    /// Records after the last checkpoint, not covered by any signature.
    public var unsealed: Int64
    /// The first problem, naming the record, line or checkpoint; nil when `ok`.
    public var problem: String?
    /// Things an operator should know that do not make the ledger invalid (a recovered torn line, an allowed
    /// unsealed tail).
    public var warnings: [String]

    /// `ok: N records, M checkpoints, head <hex>` or `error: <problem>`.
    public var description: String {
        if let problem { return "error: \(problem)" }
        return "ok: \(records) records, \(checkpoints) checkpoints, head \(head)"
    }
}

/// Offline verification of a ledger with only the signer's public key. See the format at the top of `Ledger.swift`.
public enum LedgerVerifier {
    /// Reads the ledger at `path` (and `path + ".head"`) front to back and checks every record, the chain, every
    /// checkpoint signature, and the tail against the head file. Stops at the first problem.
    ///
    /// Never throws and never crashes on bad input: an unreadable file, a bad key or a damaged ledger all come back
    /// as a report with `ok == false` and `problem` set.
    /// - Parameters:
    ///   - path: the ledger file.
    ///   - publicKey: the 32-byte Ed25519 public key of the signer.
    ///   - keyID: the signer's 8-byte minisign key id (key file byte order).
    ///   - allowUnsealedTail: accept records after the last checkpoint (with a warning) instead of failing. Use it
    ///     for a ledger whose writer is still running or crashed; anyone able to write the file could have appended
    ///     those records.
    public static func verify(
        path: String, publicKey: [UInt8], keyID: [UInt8], allowUnsealedTail: Bool = false
    ) -> LedgerReport {
        var state = VerifyState(publicKey: publicKey, keyIDText: LedgerKeyID.text(keyID))
        guard publicKey.count == 32 else {
            return state.fail("the public key must be 32 bytes, got \(publicKey.count)")
        }
        guard keyID.count == 8 else { return state.fail("the key id must be 8 bytes, got \(keyID.count)") }
        let fd: Int32
        switch POSIXFile.openForReading(path) {
        case .success(let opened): fd = opened
        case .failure(let error): return state.fail(error.message)
        }
        defer { POSIXFile.closeDescriptor(fd) }
        let headPath = HeadFile.path(forLedger: path)
        if let bytes = try? POSIXFile.readSmallFile(headPath), case .success(let head) = HeadFile.parse(bytes) {
            state.headSeq = head.seqOfCheckpoint
        }
        do throws(LedgerError) {
            var reader = ForwardLineReader(fd: fd, path: path)
            try state.scan(&reader)
        } catch {
            return state.fail(error.message)
        }
        if state.report.problem != nil { return state.report }
        state.checkHeadFile(headPath)
        if state.report.problem != nil { return state.report }

        let unsealed = state.report.unsealed
        if unsealed > 0 {
            let text = "\(unsealed) record\(unsealed == 1 ? "" : "s") after the last checkpoint "
                + "\(unsealed == 1 ? "is" : "are") not covered by a signature"
            if allowUnsealedTail {
                state.report.warnings.append(text + " (allowed)")
            } else {
                return state.fail(text)
            }
        }
        state.report.ok = true
        return state.report
    }
}

/// The verifier's running state while it walks the ledger.
private struct VerifyState {
    let publicKey: [UInt8]
    let keyIDText: String
    var report = LedgerReport(
        ok: false, records: 0, events: 0, checkpoints: 0, head: RecordLine.zeroHash, unsealed: 0, problem: nil,
        warnings: [])
    /// The newest checkpoint seen: (seq, hash, body, ts).
    var lastCheckpoint: (seq: Int64, hash: String, body: CheckpointBody, ts: String)?
    /// Seq of the checkpoint the head file names, read before the scan so the scan can keep that one record.
    var headSeq: Int64?
    /// The ledger's record `headSeq`, if it is a checkpoint.
    var headRecord: (hash: String, body: CheckpointBody, ts: String)?

    init(publicKey: [UInt8], keyIDText: String) {
        self.publicKey = publicKey
        self.keyIDText = keyIDText
    }

    mutating func fail(_ problem: String) -> LedgerReport {
        report.ok = false
        report.problem = problem
        return report
    }

    /// Unreadable lines waiting for the recovery record that must follow them.
    struct PendingTorn {
        var firstLine: Int
        var lastLine: Int
        var offset: Int64
        /// Bytes from `offset` to the end of the last unreadable line (inner `\n`s included).
        var length: Int
        /// Why the first of them is not a record.
        var reason: String

        var place: String {
            firstLine == lastLine
                ? "line \(firstLine) (byte offset \(offset))" : "lines \(firstLine)-\(lastLine) (byte offset \(offset))"
        }
        var isOneLine: Bool { firstLine == lastLine }
    }

    mutating func scan(_ reader: inout ForwardLineReader) throws(LedgerError) {
        var lineNumber = 0
        var pendingTorn: PendingTorn?
        var next = try reader.next()
        while let line = next {
            lineNumber += 1
            next = try reader.next()
            let expected = report.records + 1
            let record: ParsedRecord
            switch RecordLine.parse(line.bytes[...]) {
            case .failure(let error):
                let reason = line.terminated ? error.reason : "no trailing newline"
                if var torn = pendingTorn {
                    torn.lastLine = lineNumber
                    torn.length += 1 + line.bytes.count
                    pendingTorn = torn
                } else {
                    pendingTorn = PendingTorn(
                        firstLine: lineNumber, lastLine: lineNumber, offset: line.offset, length: line.bytes.count,
                        reason: reason)
                }
                if next == nil, let torn = pendingTorn {
                    // What a crash can leave: a line or two after the last record, or a first line cut short.
                    let crashLike =
                        torn.lastLine - torn.firstLine < LedgerTail.maxTornLines
                        && (report.records > 0 || (torn.isOneLine && !line.terminated))
                    guard crashLike else {
                        _ = fail("\(torn.place): not \(torn.isOneLine ? "a record" : "records") (\(torn.reason))")
                        return
                    }
                    let what =
                        torn.isOneLine
                        ? "torn last line of \(torn.length) bytes" : "\(torn.length) bytes at the end are not records"
                    report.warnings.append(
                        "\(torn.place): \(what) (\(torn.reason)); the writer appends a recovery record when it "
                            + "reopens the ledger")
                    pendingTorn = nil
                }
                continue
            case .success(let parsed):
                record = parsed
            }
            if let torn = pendingTorn {
                guard case .recovery(let tornBytes, _) = record.body, tornBytes == Int64(torn.length) else {
                    _ = fail(
                        "\(torn.place): not \(torn.isOneLine ? "a record" : "records") (\(torn.reason)), and no "
                            + "recovery record for \(torn.isOneLine ? "it" : "them") follows")
                    return
                }
            }
            guard record.hashMatches else {
                _ = fail("record \(expected) (line \(lineNumber)): hash mismatch (edited)")
                return
            }
            guard record.seq == expected else {
                _ = fail(seqProblem(line: lineNumber, seq: record.seq, expected: expected, next: next))
                return
            }
            guard record.prev == report.head else {
                let what = expected == 1 ? "is not 64 zeros" : "does not match record \(expected - 1)"
                _ = fail("record \(expected) (line \(lineNumber)): prev \(what) (deleted or reordered)")
                return
            }
            if let torn = pendingTorn, case .recovery(_, let why) = record.body {
                report.warnings.append(
                    "\(torn.place): torn \(torn.isOneLine ? "line" : "lines") of \(torn.length) bytes (\(why)), "
                        + "recovered by record \(expected)")
                pendingTorn = nil
            } else if case .recovery = record.body {
                _ = fail("record \(expected) (line \(lineNumber)): recovery record without a torn line before it")
                return
            }
            switch record.body {
            case .event:
                report.events += 1
            case .checkpoint(let c):
                if let problem = checkpointProblem(c, seq: expected, ts: record.ts) {
                    _ = fail(problem)
                    return
                }
                report.checkpoints += 1
                lastCheckpoint = (expected, record.hash, c, record.ts)
                if expected == headSeq { headRecord = (record.hash, c, record.ts) }
            case .recovery:
                break
            }
            if !line.terminated {
                report.warnings.append("line \(lineNumber): last record has no trailing newline")
            }
            report.records = expected
            report.head = record.hash
        }
        report.unsealed = report.records - (lastCheckpoint?.seq ?? 0)
    }

    private func seqProblem(line: Int, seq: Int64, expected: Int64, next: FileLine?) -> String {
        let after = expected == 1 ? "the start" : "\(expected - 1)"
        if seq > expected {
            var why = "records deleted"
            if let next, case .success(let r) = RecordLine.parse(next.bytes[...]), r.seq == expected {
                why = "records reordered"
            }
            return "line \(line): seq \(seq) follows \(after) (\(why))"
        }
        return "line \(line): seq \(seq) follows \(after) (records duplicated or reordered)"
    }

    private func checkpointProblem(_ c: CheckpointBody, seq: Int64, ts: String) -> String? {
        let name = "checkpoint at record \(seq)"
        guard c.size == seq - 1 else { return "\(name): size \(c.size) does not match its position" }
        guard c.head == report.head else { return "\(name): head does not match record \(seq - 1)" }
        guard c.keyID == keyIDText else { return "\(name): key id \(c.keyID) is not the given key \(keyIDText)" }
        guard let sig = Sodium.unbase64(c.sig),
            Sodium.verify(
                signature: sig, message: CheckpointBody.signedMessage(size: c.size, head: c.head, ts: ts),
                publicKey: publicKey)
        else { return "\(name): bad signature" }
        return nil
    }

    /// Checks the head file: its signature, and that the ledger holds the checkpoint it records.
    mutating func checkHeadFile(_ headPath: String) {
        let bytes: [UInt8]?
        do throws(LedgerError) {
            bytes = try POSIXFile.readSmallFile(headPath)
        } catch {
            _ = fail(error.message)
            return
        }
        guard let bytes else {
            if let last = lastCheckpoint {
                _ = fail(
                    "the ledger has signed checkpoints (the last is record \(last.seq)) but no head file "
                        + "\(headPath), so a cut-off tail cannot be ruled out")
            }
            return
        }
        let head: HeadFile
        switch HeadFile.parse(bytes) {
        case .success(let parsed): head = parsed
        case .failure(let error):
            _ = fail("head file \(headPath): \(error.reason)")
            return
        }
        guard head.keyID == keyIDText else {
            _ = fail("head file \(headPath): key id \(head.keyID) is not the given key \(keyIDText)")
            return
        }
        guard let sig = Sodium.unbase64(head.sig),
            Sodium.verify(
                signature: sig, message: CheckpointBody.signedMessage(size: head.size, head: head.head, ts: head.ts),
                publicKey: publicKey)
        else {
            _ = fail("head file \(headPath): bad signature")
            return
        }
        guard report.records >= head.seqOfCheckpoint else {
            let covers = "the head file's signed checkpoint covers \(head.size) records"
            if report.records < head.size {
                _ = fail("ledger ends at record \(report.records) but \(covers) (truncated)")
            } else {
                _ = fail(
                    "ledger ends at record \(report.records) but \(covers) and is record \(head.seqOfCheckpoint) "
                        + "(truncated)")
            }
            return
        }
        guard let match = headRecord, head.seqOfCheckpoint == headSeq, match.hash == head.checkpointHash,
            match.body.size == head.size, match.body.head == head.head, match.body.sig == head.sig, match.ts == head.ts
        else {
            _ = fail(
                "record \(head.seqOfCheckpoint) is not the checkpoint the head file \(headPath) records "
                    + "(ledger rewritten)")
            return
        }
    }
}
