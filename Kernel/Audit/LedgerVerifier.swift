import MCPGJSON

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
    /// Seq of the first record checked: 1, or later when older segments were removed by retention.
    public var firstSeq: Int64 = 1
    /// Merkle root (hex) over every record checked, as the next checkpoint would sign it.
    public var root: String = Hex.encode(Merkle.emptyRoot)
    /// Things an operator should know that do not make the ledger invalid (a recovered torn line, an allowed
    /// unsealed tail).
    public var warnings: [String]

    /// `ok: N records, M checkpoints, head <hex>` or `error: <problem>`.
    public var description: String {
        if let problem { return "error: \(problem)" }
        return "ok: \(records) records, \(checkpoints) checkpoints, head \(head)"
    }
}

/// A public key the verifier trusts: the Ed25519 key and its 8-byte minisign key id (key file byte order).
public struct LedgerTrustedKey: Sendable {
    public var publicKey: [UInt8]
    public var keyID: [UInt8]
    public init(publicKey: [UInt8], keyID: [UInt8]) {
        self.publicKey = publicKey
        self.keyID = keyID
    }
}

/// Offline verification of a ledger with only the signer's public key. See the format at the top of `Ledger.swift`.
public enum LedgerVerifier {
    /// Verifies with one trusted key (see `verify(path:keys:allowUnsealedTail:)`).
    public static func verify(
        path: String, publicKey: [UInt8], keyID: [UInt8], allowUnsealedTail: Bool = false
    ) -> LedgerReport {
        verify(path: path, keys: [LedgerTrustedKey(publicKey: publicKey, keyID: keyID)],
               allowUnsealedTail: allowUnsealedTail)
    }

    /// Reads the ledger at `path` (its closed segments `path.<12 digits>` first, then the file itself, and
    /// `path + ".head"`) front to back and checks every record, the chain across segments, the Merkle root and
    /// signature of every checkpoint, every signing-key change, and the tail against the head file. Stops at the
    /// first problem.
    ///
    /// Never throws and never crashes on bad input: an unreadable file, a bad key or a damaged ledger all come back
    /// as a report with `ok == false` and `problem` set.
    /// - Parameters:
    ///   - path: the ledger file.
    ///   - keys: keys the checkpoints may be signed with. The first checkpoint's key must be one of them; a later
    ///     key change is accepted when the previous key endorsed it, or when the new key is one of them.
    ///   - allowUnsealedTail: accept records after the last checkpoint (with a warning) instead of failing. Use it
    ///     for a ledger whose writer is still running or crashed; anyone able to write the file could have appended
    ///     those records.
    public static func verify(path: String, keys: [LedgerTrustedKey], allowUnsealedTail: Bool = false) -> LedgerReport {
        var state = VerifyState()
        for key in keys {
            guard key.publicKey.count == 32 else {
                return state.fail("the public key must be 32 bytes, got \(key.publicKey.count)")
            }
            guard key.keyID.count == 8 else { return state.fail("the key id must be 8 bytes, got \(key.keyID.count)") }
            state.keys[LedgerKeyID.text(key.keyID)] = key.publicKey
        }
        state.givenKeys = Set(state.keys.keys)
        if let bytes = try? POSIXFile.readSmallFile(HeadFile.path(forLedger: path)),
            case .success(let head) = HeadFile.parse(bytes)
        {
            state.headSeq = head.seqOfCheckpoint
        }
        let files = LedgerSegments.closed(of: path)
        for (index, file) in files.enumerated() {
            state.file = (LedgerSegments.baseName(file.path), file.firstSeq, index == 0)
            if let problem = scanFile(file.path, into: &state, last: false) { return state.fail(problem) }
            if state.report.problem != nil { return state.report }
        }
        state.file = (nil, nil, files.isEmpty)
        if !files.isEmpty, access(path, F_OK) != 0, errno == ENOENT {
            // A crash between closing a segment and starting the next leaves no ledger file; the writer starts it
            // when it reopens.
            state.report.warnings.append("\(path) does not exist; checked the closed segments")
        } else if let problem = scanFile(path, into: &state, last: true) {
            return state.fail(problem)
        }
        if state.report.problem != nil { return state.report }
        state.report.records = state.lastSeq
        state.report.root = Hex.encode(state.frontier.root)
        state.checkHeadFile(HeadFile.path(forLedger: path))
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

    private static func scanFile(_ path: String, into state: inout VerifyState, last: Bool) -> String? {
        let fd: Int32
        switch POSIXFile.openForReading(path) {
        case .success(let opened): fd = opened
        case .failure(let error): return error.message
        }
        defer { POSIXFile.closeDescriptor(fd) }
        do throws(LedgerError) {
            var reader = ForwardLineReader(fd: fd, path: path)
            try state.scan(&reader, lastFile: last)
        } catch {
            return error.message
        }
        return nil
    }
}

/// The verifier's running state while it walks the ledger.
private struct VerifyState {
    var report = LedgerReport(
        ok: false, records: 0, events: 0, checkpoints: 0, head: RecordLine.zeroHash, unsealed: 0, problem: nil,
        warnings: [])
    /// Known keys by key id: the given ones and those endorsed along the way.
    var keys: [String: [UInt8]] = [:]
    var givenKeys: Set<String> = []
    /// The key the next checkpoint must be signed with (nil until the first checkpoint or key record).
    var currentKey: String?
    /// Seq and hash of the last checked record.
    var lastSeq: Int64 = 0
    var frontier = MerkleFrontier()
    /// Whether the chain has its start: record 1, or a segment record when older segments were removed.
    var anchored = false
    /// The file being scanned: closed segment name (nil for the ledger file), the seq its name says it starts at,
    /// and whether it is the first file.
    var file: (name: String?, firstSeq: Int64?, isFirst: Bool) = (nil, nil, true)
    /// Name of the previous file scanned (what a segment record must name).
    var previousFile: String?
    /// The newest checkpoint seen: (seq, hash, body, ts).
    var lastCheckpoint: (seq: Int64, hash: String, body: CheckpointBody, ts: String)?
    /// Seq of the checkpoint the head file names, read before the scan so the scan can keep that one record.
    var headSeq: Int64?
    /// The ledger's record `headSeq`, if it is a checkpoint.
    var headRecord: (hash: String, body: CheckpointBody, ts: String)?

    mutating func fail(_ problem: String) -> LedgerReport {
        report.ok = false
        report.problem = problem
        report.records = lastSeq
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

    /// "line N" in the ledger file, "FILE line N" in a closed segment.
    func at(_ line: Int) -> String {
        if let name = file.name { return "\(name) line \(line)" }
        return "line \(line)"
    }

    mutating func scan(_ reader: inout ForwardLineReader, lastFile: Bool) throws(LedgerError) {
        var lineNumber = 0
        var pendingTorn: PendingTorn?
        var firstInFile = true
        var next = try reader.next()
        defer { if let name = file.name { previousFile = name } }
        while let line = next {
            lineNumber += 1
            next = try reader.next()
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
                        lastFile && torn.lastLine - torn.firstLine < LedgerTail.maxTornLines
                        && (lastSeq > 0 || (torn.isOneLine && !line.terminated))
                    guard crashLike else {
                        _ = fail("\(prefix)\(torn.place): not \(torn.isOneLine ? "a record" : "records") (\(torn.reason))")
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
            if firstInFile {
                firstInFile = false
                if let problem = startOfFile(record, line: lineNumber) {
                    _ = fail(problem)
                    return
                }
            }
            let expected = lastSeq + 1
            if let torn = pendingTorn {
                guard case .recovery(let tornBytes, _) = record.body, tornBytes == Int64(torn.length) else {
                    _ = fail(
                        "\(prefix)\(torn.place): not \(torn.isOneLine ? "a record" : "records") (\(torn.reason)), and no "
                            + "recovery record for \(torn.isOneLine ? "it" : "them") follows")
                    return
                }
            }
            guard record.hashMatches else {
                _ = fail("record \(expected) (\(at(lineNumber))): hash mismatch (edited)")
                return
            }
            guard record.seq == expected else {
                _ = fail(seqProblem(line: lineNumber, seq: record.seq, expected: expected, next: next))
                return
            }
            guard record.prev == report.head else {
                let what = expected == 1 ? "is not 64 zeros" : "does not match record \(expected - 1)"
                _ = fail("record \(expected) (\(at(lineNumber))): prev \(what) (deleted or reordered)")
                return
            }
            if let torn = pendingTorn, case .recovery(_, let why) = record.body {
                report.warnings.append(
                    "\(prefix)\(torn.place): torn \(torn.isOneLine ? "line" : "lines") of \(torn.length) bytes (\(why)), "
                        + "recovered by record \(expected)")
                pendingTorn = nil
            } else if case .recovery = record.body {
                _ = fail("record \(expected) (\(at(lineNumber))): recovery record without a torn line before it")
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
            case .key(let k):
                if let problem = keyProblem(k, seq: expected, ts: record.ts) {
                    _ = fail(problem)
                    return
                }
            case .segment(let seg):
                guard seg.frontier == frontier else {
                    _ = fail("record \(expected) (\(at(lineNumber))): segment record's Merkle frontier does not match "
                             + "the records before it")
                    return
                }
                if let previousFile, seg.previous != previousFile {
                    _ = fail("record \(expected) (\(at(lineNumber))): segment record names \(seg.previous) as the "
                             + "previous segment, but it follows \(previousFile) (segments swapped or renamed)")
                    return
                }
            }
            if !line.terminated {
                report.warnings.append("\(at(lineNumber)): last record has no trailing newline")
            }
            frontier.append(recordHash: Hex.decode(record.hash) ?? [])
            lastSeq = expected
            report.head = record.hash
        }
        if firstInFile, !lastFile {
            _ = fail("segment \(file.name ?? "?") holds no record")
            return
        }
        report.unsealed = lastSeq - (lastCheckpoint?.seq ?? (report.firstSeq - 1))
    }

    private var prefix: String { file.name.map { "\($0) " } ?? "" }

    /// Checks where a file starts: a closed segment at the seq its name says; the first file at record 1, or
    /// (older segments removed) at a segment record, which anchors the chain and the tree.
    private mutating func startOfFile(_ record: ParsedRecord, line: Int) -> String? {
        if let name = file.name, let named = file.firstSeq, record.seq != named {
            return "segment \(name) starts at record \(record.seq), not \(named) (segments swapped or renamed)"
        }
        guard file.isFirst, !anchored else { return nil }
        anchored = true
        if record.seq == 1 || !record.hashMatches { return nil }
        guard case .segment(let seg) = record.body else {
            return "\(at(line)): the ledger starts at record \(record.seq), which is not a segment record (records "
                + "before it are missing)"
        }
        frontier = seg.frontier
        lastSeq = record.seq - 1
        report.head = record.prev
        report.firstSeq = record.seq
        report.warnings.append(
            "records 1-\(record.seq - 1) are not here (older segments removed); checked from record \(record.seq), "
                + "whose segment record carries the Merkle frontier of the records before it")
        return nil
    }

    private func seqProblem(line: Int, seq: Int64, expected: Int64, next: FileLine?) -> String {
        let after = expected == 1 ? "the start" : "\(expected - 1)"
        if seq > expected {
            var why = "records deleted"
            if let next, case .success(let r) = RecordLine.parse(next.bytes[...]), r.seq == expected {
                why = "records reordered"
            }
            return "\(at(line)): seq \(seq) follows \(after) (\(why))"
        }
        return "\(at(line)): seq \(seq) follows \(after) (records duplicated or reordered)"
    }

    private mutating func checkpointProblem(_ c: CheckpointBody, seq: Int64, ts: String) -> String? {
        let name = "checkpoint at record \(seq)"
        guard c.size == seq - 1 else { return "\(name): size \(c.size) does not match its position" }
        guard c.head == report.head else { return "\(name): head does not match record \(seq - 1)" }
        guard c.root == Hex.encode(frontier.root) else {
            return "\(name): Merkle root does not match records 1-\(seq - 1)"
        }
        if let currentKey {
            guard c.keyID == currentKey else {
                return "\(name): signed by key \(c.keyID), but the ledger's key is \(currentKey) and no key record "
                    + "changed it"
            }
        } else {
            guard givenKeys.contains(c.keyID) else {
                return "\(name): key id \(c.keyID) is not a given key (\(givenKeys.sorted().joined(separator: ", ")))"
            }
            currentKey = c.keyID
        }
        guard let publicKey = keys[c.keyID], let sig = Sodium.unbase64(c.sig),
            Sodium.verify(
                signature: sig, message: CheckpointBody.signedMessage(size: c.size, head: c.head, root: c.root, ts: ts),
                publicKey: publicKey)
        else { return "\(name): bad signature" }
        return nil
    }

    /// A key record: the new key is trusted if the previous key endorsed it or if it was given.
    private mutating func keyProblem(_ k: KeyBody, seq: Int64, ts: String) -> String? {
        let name = "key record \(seq)"
        if let currentKey, k.previousKeyID != currentKey {
            return "\(name): names \(k.previousKeyID) as the previous key, but the ledger's key is \(currentKey)"
        }
        guard let publicKey = Sodium.unbase64(k.publicKey), publicKey.count == 32 else {
            return "\(name): public key is not 32 bytes of base64"
        }
        if let known = keys[k.keyID], known != publicKey {
            return "\(name): key \(k.keyID) has another public key than the one given"
        }
        let endorsed: Bool
        if let e = k.endorsement, let sig = Sodium.unbase64(e), let previous = keys[k.previousKeyID] {
            endorsed = Sodium.verify(
                signature: sig,
                message: KeyBody.endorsedMessage(
                    keyID: k.keyID, publicKey: k.publicKey, previousKeyID: k.previousKeyID, ts: ts),
                publicKey: previous)
            if !endorsed, k.endorsement != nil, !givenKeys.contains(k.keyID) {
                return "\(name): the endorsement by \(k.previousKeyID) of key \(k.keyID) does not verify"
            }
        } else {
            endorsed = false
        }
        if !endorsed {
            guard givenKeys.contains(k.keyID) else {
                return "\(name): the change to key \(k.keyID) is not endorsed by \(k.previousKeyID); give its public "
                    + "key too to accept it"
            }
            report.warnings.append(
                "\(name): the change from key \(k.previousKeyID) to \(k.keyID) is not endorsed; accepted because "
                    + "\(k.keyID) is a given key")
        }
        keys[k.keyID] = publicKey
        currentKey = k.keyID
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
        guard let publicKey = keys[head.keyID] else {
            _ = fail("head file \(headPath): key id \(head.keyID) is not a given or endorsed key")
            return
        }
        guard let sig = Sodium.unbase64(head.sig),
            Sodium.verify(
                signature: sig,
                message: CheckpointBody.signedMessage(size: head.size, head: head.head, root: head.root, ts: head.ts),
                publicKey: publicKey)
        else {
            _ = fail("head file \(headPath): bad signature")
            return
        }
        guard lastSeq >= head.seqOfCheckpoint else {
            let covers = "the head file's signed checkpoint covers \(head.size) records"
            if lastSeq < head.size {
                _ = fail("ledger ends at record \(lastSeq) but \(covers) (truncated)")
            } else {
                _ = fail(
                    "ledger ends at record \(lastSeq) but \(covers) and is record \(head.seqOfCheckpoint) "
                        + "(truncated)")
            }
            return
        }
        guard let match = headRecord, head.seqOfCheckpoint == headSeq, match.hash == head.checkpointHash,
            match.body.size == head.size, match.body.head == head.head, match.body.root == head.root,
            match.body.sig == head.sig, match.ts == head.ts
        else {
            _ = fail(
                "record \(head.seqOfCheckpoint) is not the checkpoint the head file \(headPath) records "
                    + "(ledger rewritten)")
            return
        }
    }
}
