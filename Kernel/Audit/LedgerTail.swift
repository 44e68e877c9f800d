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
    /// A torn last line, if there is one.
    var torn: Torn?
    /// The last line was a complete, valid record without its `\n`: the writer adds the newline.
    var missingNewline = false

    struct Torn: Sendable {
        var offset: Int64
        var length: Int64
        var terminated: Bool
        var reason: String
    }

    /// Reads the tail of the ledger open on `fd` and checks it against the head file.
    /// - Throws: `.damaged` if the tail is not what a crash leaves (an edited record, two bad lines), `.truncated`
    ///   if the ledger is shorter than the head file's checkpoint, `.badKey` if the ledger's checkpoints were
    ///   signed by another key.
    static func read(fd: Int32, path: String, head: HeadFile?, keyID: String) throws(LedgerError) -> LedgerTail {
        var tail = LedgerTail()
        let size = try POSIXFile.size(fd, path: path)
        var reader = BackwardLineReader(fd: fd, path: path, size: size)
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
        var last: ParsedRecord
        switch RecordLine.parse(lastLine.bytes[...]) {
        case .success(let record) where record.hashMatches:
            last = record
            tail.missingNewline = !lastLine.terminated
        case .success(let record):
            throw LedgerError(
                .damaged,
                "\(path): last record (seq \(record.seq), byte offset \(lastLine.offset)) does not match its hash: "
                    + "the ledger was edited; \(verifyHint)")
        case .failure(let problem):
            tail.torn = Torn(
                offset: lastLine.offset, length: Int64(lastLine.bytes.count), terminated: lastLine.terminated,
                reason: lastLine.terminated
                    ? "last line is not a record: \(problem.reason)" : "last line has no trailing newline")
            guard let previous = try reader.next() else { return tail }
            guard case .success(let record) = RecordLine.parse(previous.bytes[...]), record.hashMatches else {
                throw LedgerError(
                    .damaged,
                    "\(path): the line before the torn last line (byte offset \(previous.offset)) is not a valid "
                        + "record either; \(verifyHint)")
            }
            last = record
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
                guard c.keyID == keyID else {
                    throw LedgerError(
                        .badKey,
                        "\(path): ledger is signed with key \(c.keyID) but this signer's key is \(keyID); "
                            + "start a new ledger to change keys")
                }
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
}
