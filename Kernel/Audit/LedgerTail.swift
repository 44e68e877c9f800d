import MCPGJSON

/// What opening an existing ledger learns from its tail, read backwards so a long ledger opens quickly.
struct LedgerTail: Sendable {
    /// Seq of the last valid record (0 for an empty ledger).
    var lastSeq: Int64 = 0
    /// Hash of the last valid record (64 zeros for an empty ledger).
    var lastHash: String = RecordLine.zeroHash
    /// Records after the newest checkpoint.
    var sinceCheckpoint = 0
    /// The newest checkpoint in the ledger, as a head file would record it.
    var newestCheckpoint: HeadFile?
    /// The torn end of the file, if there is one: one or more lines after the last record that are not records.
    var torn: Torn?
    /// The last line was a complete, valid record without its `\n`: the writer adds the newline.
    var missingNewline = false
    /// Key id of the newest checkpoint (the key the ledger is signed with now), if it has one.
    var keyID: String?
    /// Whether the ledger file itself (not an older segment) holds a valid record.
    var activeHasRecord = false

    /// Unreadable bytes at the end of the ledger.
    struct Torn: Sendable {
        /// Offset of the first unreadable byte (just after the last record's `\n`).
        var offset: Int64
        /// Bytes from `offset` to the end of the file, less a final `\n` if the file has one.
        var length: Int64
        /// Whether the file ends with `\n` (else the writer adds one before the recovery record).
        var terminated: Bool
        var reason: String
    }

    /// More unreadable lines than this at the end is not a crash (a crash tears one line; a crash during the
    /// recovery that follows, one more): the writer refuses such a file rather than append to something that may
    /// not be a ledger at all.
    static let maxTornLines = 8

    /// Reads the tail of the ledger open on `fd` and checks it against the head file. `older` is the newest closed
    /// segment, if any: the walk back continues into it when the ledger file holds no checkpoint yet.
    /// - Throws: `.damaged` if the tail is not what a crash leaves (an edited record, many bad lines), `.truncated`
    ///   if the ledger is shorter than the head file's checkpoint.
    static func read(
        fd: Int32, path: String, older: (fd: Int32, path: String)?, head: HeadFile?
    ) throws(LedgerError) -> LedgerTail {
        var tail = LedgerTail()
        let size = try POSIXFile.size(fd, path: path)
        var readers = [BackwardLineReader(fd: fd, path: path, size: size)]
        if let older {
            readers.append(
                BackwardLineReader(fd: older.fd, path: older.path, size: try POSIXFile.size(older.fd, path: older.path)))
        }
        var reader = ChainedBackwardReader(readers)
        let verifyHint = "check it with `mcpg audit verify \(path) --key PUB`"

        guard let lastLine = try reader.next() else {
            if let head {
                throw LedgerError(
                    .truncated,
                    "\(path): ledger is empty but its head file's signed checkpoint covers \(head.size) records "
                        + "(truncated)")
            }
            return tail
        }
        // Walk back over unreadable lines (the torn end) to the last valid record.
        var line = lastLine
        var tornLines = 0
        var lastReason = ""
        var found: ParsedRecord?
        walk: while found == nil {
            switch RecordLine.parse(line.bytes[...]) {
            case .success(let record) where record.hashMatches:
                found = record
                tail.activeHasRecord = reader.fileIndex == 0
                if tornLines == 0 { tail.missingNewline = !line.terminated }
            case .success(let record):
                throw LedgerError(
                    .damaged,
                    "\(path): record \(record.seq) (byte offset \(line.offset)) near the end does not match its hash: "
                        + "the ledger was edited; \(verifyHint)")
            case .failure(let problem):
                guard reader.fileIndex == 0 else {
                    throw LedgerError(
                        .damaged, "\(reader.path): its last line is not a record (\(problem.reason)); \(verifyHint)")
                }
                if tornLines == 0 {
                    lastReason =
                        line.terminated
                        ? "last line is not a record: \(problem.reason)" : "last line has no trailing newline"
                }
                tornLines += 1
                guard tornLines <= maxTornLines else {
                    throw LedgerError(
                        .damaged,
                        "\(path): more than \(maxTornLines) lines at the end are not records (is this a ledger?); "
                            + verifyHint)
                }
                tail.torn = Torn(
                    offset: line.offset, length: size - line.offset - (lastLine.terminated ? 1 : 0),
                    terminated: lastLine.terminated,
                    reason: tornLines == 1 ? lastReason : "the last \(tornLines) lines are not records (\(lastReason))")
                guard let previous = try reader.next() else { break walk }
                line = previous
            }
        }
        guard let last = found else {
            if let head {
                throw LedgerError(
                    .truncated,
                    "\(path): ledger has no valid record but its head file's signed checkpoint covers \(head.size) "
                        + "records (truncated)")
            }
            // A crash before the first record can leave one line without `\n`; anything else is not a ledger.
            guard tornLines == 1, !lastLine.terminated else {
                throw LedgerError(
                    .damaged, "\(path): has no ledger record in it (is this a ledger?); refusing to append to it")
            }
            return tail
        }
        tail.lastSeq = last.seq
        tail.lastHash = last.hash

        if let head, last.seq < head.seqOfCheckpoint {
            throw LedgerError(
                .truncated,
                "\(path): ledger ends at record \(last.seq) but the head file's signed checkpoint is record "
                    + "\(head.seqOfCheckpoint), covering \(head.size) records (truncated); \(verifyHint)")
        }

        // Walk back to the newest checkpoint and to the head file's checkpoint.
        var record = last
        var headChecked = head == nil
        while true {
            if case .checkpoint(let c) = record.body, tail.newestCheckpoint == nil {
                tail.keyID = c.keyID
                tail.newestCheckpoint = HeadFile(checkpoint: c, ts: record.ts, seq: record.seq, hash: record.hash)
            }
            if tail.newestCheckpoint == nil { tail.sinceCheckpoint += 1 }
            if let head, record.seq == head.seqOfCheckpoint {
                guard record.hash == head.checkpointHash else {
                    throw LedgerError(
                        .damaged,
                        "\(path): record \(record.seq) is not the checkpoint the head file records (rewritten); "
                            + verifyHint)
                }
                headChecked = true
            }
            if let head, record.seq < head.seqOfCheckpoint, !headChecked {
                throw LedgerError(
                    .damaged,
                    "\(path): record \(head.seqOfCheckpoint) named by the head file is missing; \(verifyHint)")
            }
            if tail.newestCheckpoint != nil && headChecked { break }
            // Older lines: skip lines that are not records (earlier recovered torn lines).
            var found: ParsedRecord?
            while found == nil, let line = try reader.next() {
                if case .success(let r) = RecordLine.parse(line.bytes[...]) { found = r }
            }
            guard let found else { break }
            record = found
        }
        if !headChecked, let head {
            throw LedgerError(
                .damaged, "\(path): record \(head.seqOfCheckpoint) named by the head file is missing; \(verifyHint)")
        }
        if head == nil, let newest = tail.newestCheckpoint {
            throw LedgerError(
                .damaged,
                "\(path): ledger has signed checkpoints (the newest is record \(newest.seqOfCheckpoint)) but its "
                    + "head file \(HeadFile.path(forLedger: path)) is missing, so a cut-off tail cannot be ruled "
                    + "out; \(verifyHint), then restore the head file or move the ledger aside to start a new one")
        }
        return tail
    }

    /// Rebuilds the Merkle frontier over records 1…`tail.lastSeq` by reading forward from an anchor: the ledger
    /// file if it starts at record 1 or with a `segment` record, else `older` (which must). Only each line's seq and
    /// hash are read. Also returns the seq of the first record in the ledger file (nil if it has none).
    static func frontier(
        fd: Int32, path: String, older: (fd: Int32, path: String)?, tail: LedgerTail
    ) throws(LedgerError) -> (frontier: MerkleFrontier, activeFirstSeq: Int64?) {
        var files = [(fd, path)]
        let activeAnchor = try anchor(fd: fd, path: path)
        if activeAnchor == nil {
            guard let older else {
                if tail.lastSeq == 0 { return (MerkleFrontier(), nil) }
                throw LedgerError(.damaged, "\(path): its first record is neither record 1 nor a segment record")
            }
            files.insert(older, at: 0)
        }
        var frontier = MerkleFrontier()
        var expected: Int64 = 1
        var lastHash = RecordLine.zeroHash
        var activeFirstSeq: Int64?
        for (index, file) in files.enumerated() {
            var reader = ForwardLineReader(fd: file.0, path: file.1)
            var first = true
            while let line = try reader.next() {
                if first {
                    // The file's first valid record anchors the tree: record 1, or a segment record's frontier.
                    guard case .success(let r) = RecordLine.parse(line.bytes[...]), r.hashMatches else { continue }
                    first = false
                    if index == files.count - 1 { activeFirstSeq = r.seq }
                    if case .segment(let seg) = r.body, index == 0 {
                        frontier = seg.frontier
                        expected = r.seq
                    }
                }
                guard let (seq, hash) = RecordLine.seqAndHash(line.bytes[...]), seq == expected else { continue }
                frontier.append(recordHash: hash)
                lastHash = Hex.encode(hash)
                expected += 1
            }
        }
        guard frontier.size == tail.lastSeq, lastHash == tail.lastHash || tail.lastSeq == 0 else {
            throw LedgerError(
                .damaged,
                "\(path): reading forward found records up to \(frontier.size), not \(tail.lastSeq); "
                    + "check it with `mcpg audit verify \(path) --key PUB`")
        }
        return (frontier, activeFirstSeq)
    }

    /// Whether the file's first valid record is record 1 or a segment record.
    private static func anchor(fd: Int32, path: String) throws(LedgerError) -> ParsedRecord? {
        var reader = ForwardLineReader(fd: fd, path: path)
        while let line = try reader.next() {
            guard case .success(let r) = RecordLine.parse(line.bytes[...]), r.hashMatches else { continue }
            if r.seq == 1 { return r }
            if case .segment = r.body { return r }
            return nil
        }
        return nil
    }
}

/// Walks back through the ledger file and then the newest closed segment, as one sequence of lines.
struct ChainedBackwardReader {
    private var readers: [BackwardLineReader]
    /// Which file the last line came from: 0 for the ledger file, 1 for the older segment.
    private(set) var fileIndex = 0

    init(_ readers: [BackwardLineReader]) { self.readers = readers }

    var path: String { readers[fileIndex].path }

    mutating func next() throws(LedgerError) -> FileLine? {
        while fileIndex < readers.count {
            if let line = try readers[fileIndex].next() { return line }
            guard fileIndex + 1 < readers.count else { return nil }
            fileIndex += 1
        }
        return nil
    }
}
