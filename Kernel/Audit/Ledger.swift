// # The mcpg audit ledger format (version 2)
//
// A ledger is an append-only file of JSON lines: UTF-8, each line terminated by `\n`, no blank lines. Every line
// is one record; five kinds of record share one sequence, one hash chain and one Merkle tree:
//
//     {"seq":1,"ts":"2026-11-25T22:40:01.123Z","prev":"<64 zeros>","event":{…},"hash":"<64 hex>"}
//     {"seq":2,"ts":"…","prev":"<hash of record 1>","checkpoint":{"size":1,"head":"<hash of record 1>",
//         "root":"<64 hex>","key_id":"<16 hex>","sig":"<base64>"},"hash":"<64 hex>"}    (one line in the file)
//     {"seq":3,"ts":"…","prev":"<hash of record 2>","recovery":{"torn_bytes":37,"reason":"…"},"hash":"<64 hex>"}
//     {"seq":4,…,"key":{"key_id":"…","public_key":"<base64>","previous_key_id":"…","endorsement":"<base64>"|null},…}
//     {"seq":5,…,"segment":{"previous":"audit.ledger.000000000001","tree_size":4,"frontier":["<hex>",…]},…}
//
// Members appear in exactly this order: `seq`, `ts`, `prev`, one kind member, `hash`.
//
// - `seq`: 1 for the first record, then +1 per record, whatever its kind.
// - `ts`: UTC time the record was written, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
// - `prev`: the `hash` of record seq-1, or 64 `0` digits for seq 1.
// - `hash`: lowercase hex SHA-256 of the exact bytes of the line from its first byte up to, not including,
//   `,"hash":"`. A verifier never re-serializes JSON: it checks that the line ends with
//   `,"hash":"<64 lowercase hex>"}` and hashes the bytes before that.
// - The Merkle tree (`Merkle`, RFC 6962 §2.1): leaf i (0-based) is record i+1, `leaf = SHA-256(0x00 ‖ raw hash)`.
// - `event`: any JSON value (the kernel writes an object: who, what, decision, reasons, outcome, latency,
//   correlation id). The writer serializes it compactly, so it never contains a raw newline.
// - `checkpoint`: a signature over the chain head and the tree. `size` is the number of records before the
//   checkpoint (= its seq - 1); `head` is the hash of record `size` (64 zeros if `size` is 0; it always equals
//   `prev`); `root` is the Merkle root of records 1…size; `key_id` is the signer's minisign key id as `minisign`
//   prints it (16 uppercase hex digits: the 8 key id bytes of the key file read as a little-endian number); `sig` is
//   the base64 (standard alphabet, padded) Ed25519 signature, raw (no prehash), over the bytes
//   `mcpg-ledger-checkpoint-v2\n<size>\n<head>\n<root>\n<ts>\n` where `<size>` is decimal and `<ts>` is the
//   checkpoint record's own `ts`. A checkpoint is written after every `checkpointEvery` records, after
//   `checkpointInterval` if any record was appended since the last one, and at a clean `close()`.
// - `key`: from this record on, checkpoints are signed by `key_id` (public key `public_key`), no longer by
//   `previous_key_id`. `endorsement` is the previous key's signature over
//   `mcpg-ledger-key-v1\n<key_id>\n<public_key>\n<previous_key_id>\n<ts>\n`, or null when the writer did not
//   have the previous secret key (a verifier then needs the new public key given). A checkpoint follows at once.
// - `segment`: the first record of a segment file after the first. The ledger file is renamed to
//   `<ledger>.<seq of its first record, 12 digits>` right after a checkpoint, and a new `<ledger>` continues with
//   this record: `previous` names the closed file, `frontier` holds the roots of the perfect subtrees of the
//   `tree_size` (= seq - 1) records before it, largest first. A verifier whose oldest file starts with a segment
//   record (older segments removed) starts from there: `prev` and `frontier` stand for what was removed.
// - `recovery`: written when a ledger is reopened after a crash left a torn end: a last line without its `\n`, or
//   last lines that are not records (a crash during an earlier recovery can leave two). The writer first appends a
//   `\n` if the file lacks one, so the torn bytes stay in the file, untouched, as line(s) of their own; then the
//   recovery record, whose `torn_bytes` counts the bytes from the first torn byte up to, not including, the `\n`
//   just before the recovery record, and whose `prev` is the hash of the last valid record before them. Torn
//   bytes are never part of the chain. A verifier reports torn lines as a warning (naming their byte offset) when
//   a recovery record with a matching `torn_bytes` follows them, and as an error otherwise. Torn lines at the very
//   end of the file (the writer has not reopened it yet) are a warning if they look like a crash: at most 8 lines
//   after at least one record, or a single first line without `\n`; anything else there is an error, and the
//   writer refuses to append to it. A last line that is a complete, valid record missing only its `\n` is kept as
//   a record: the writer adds the `\n`.
//
// Head file: after each checkpoint is durable in the ledger, `<ledger>.head` is replaced atomically (write
// `<ledger>.head.tmp`, fsync, rename, fsync the directory) with one JSON object and `\n`:
// `{"size":N,"head":"<hex>","root":"<hex>","ts":"…","key_id":"…","sig":"…","seq_of_checkpoint":N+1,"checkpoint_hash":"<hex>"}`,
// the newest checkpoint's fields plus that record's seq and hash. A ledger that ends before `seq_of_checkpoint`, or
// whose record `seq_of_checkpoint` has another hash, was truncated or rewritten. A ledger that has checkpoints but
// no head file cannot be shown to be complete; the writer refuses to open it and the verifier reports it.
//
// What a verifier with only the public key can show: every record is unchanged since it was written, none was
// removed, inserted or reordered up to the newest checkpoint, and the tail was not cut off before the head file's
// checkpoint. Records after the newest checkpoint are not covered by any signature: anyone who can write the file
// could have appended them, so `LedgerVerifier` reports them as a failure unless told to allow an unsealed tail.

import Logging
import MCPGJSON
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The audit ledger's writer: appends events as hash-chained JSON lines, group-commits them with fsync, and
/// seals the chain with Ed25519-signed checkpoints. See the format description at the top of this file.
///
/// Lifecycle: `init` opens (or creates) the file, takes an exclusive `flock` on it, checks its tail against the
/// head file, and recovers a torn last line; `append` is called concurrently from any task; `close()` writes a
/// final checkpoint and the head file. After an I/O failure the ledger refuses further appends (fail closed): the
/// process should stop taking audited requests and be restarted.
///
/// Group commit: records appended while a write+fsync is in progress are written together by the next single
/// write+fsync, so concurrent appends share fsyncs. The blocking calls run on a private dispatch queue, never on the
/// actor or the Swift concurrency pool.
public actor Ledger {
    /// The ledger file's path.
    public nonisolated let path: String
    /// The torn last line this `init` found and recovered, if any (also logged as an error).
    public nonisolated let recovery: LedgerRecovery?

    private var fd: Int32
    private let signer: LedgerSigner
    private let keyIDText: String
    private let options: LedgerOptions
    private let logger: Logger
    private let io: LedgerIO
    private let timer = Mutex<Task<Void, Never>?>(nil)

    private var chain: ChainState
    private var frontier: MerkleFrontier
    private var segment: SegmentState
    private var batch = Batch()
    private var waiters: [(seq: Int64, continuation: CheckedContinuation<Result<Void, LedgerError>, Never>)] = []
    private var flushing = false
    /// A batch waiting for more appends (`batch(D)`): how many it waits for, and what resumes it.
    private var gathering: (expected: Int, token: UInt64, continuation: CheckedContinuation<Void, Never>)?
    private var gatherToken: UInt64 = 0
    private var failure: LedgerError?
    private var closed = false
    private var subscribers: [Int: AsyncStream<[UInt8]>.Continuation] = [:]
    private var nextSubscriber = 0
    private var counters = Counters()

    /// Sequence state of the chain: what the next record links to.
    private struct ChainState {
        var lastSeq: Int64
        var lastHash: String
        var sinceCheckpoint: Int
        /// Every record up to this seq is on disk.
        var durableSeq: Int64
    }

    /// The ledger file being appended to.
    private struct SegmentState {
        /// Seq of its first record (the next record's seq while it is empty).
        var firstSeq: Int64
        /// Its size in bytes, counting encoded records not yet written.
        var bytes: Int64
        var opened: ContinuousClock.Instant
    }

    /// Encoded lines not yet handed to the I/O queue.
    private struct Batch {
        var bytes: [UInt8] = []
        var lineEnds: [Int] = []
        var lastSeq: Int64 = 0
        var head: HeadFile?
        /// A rotation after the checkpoint that ends at this byte: (split, closed segment name).
        var rotation: LedgerIO.Rotation?
        /// Appends (events) in the batch, for the commit delay's decision.
        var appends = 0
        var isEmpty: Bool { lineEnds.isEmpty }
    }

    private struct Counters {
        var fsyncs = 0
        var headWrites = 0
        var rotations = 0
        /// Appends in the last batch written.
        var lastBatchAppends = 0
    }

    /// Opens the ledger at `path` with only the checkpoint settings (no rotation, sync durability).
    public init(
        path: String, signer: LedgerSigner, checkpointEvery: Int, checkpointInterval: Duration, logger: Logger
    ) throws(LedgerError) {
        try self.init(
            path: path, signer: signer,
            options: LedgerOptions(checkpointEvery: checkpointEvery, checkpointInterval: checkpointInterval),
            logger: logger)
    }

    /// Opens the ledger at `path`, creating it if it does not exist.
    ///
    /// - Parameters:
    ///   - path: the ledger file. Its head file is `path + ".head"`; closed segments are `path + ".<12 digits>"`.
    ///   - signer: the checkpoint signing key. If the ledger's newest checkpoint was signed by another key, a `key`
    ///     record names the new one (endorsed by `options.previousSigner` when given) and a checkpoint follows.
    ///   - options: checkpoints, durability, rotation and retention.
    ///   - logger: lifecycle and recovery messages (never record contents or keys).
    /// - Throws: `LedgerError`: `.io` (cannot open/read/write), `.inUse` (another process writes it), `.damaged` or
    ///   `.truncated` (the existing ledger fails the tail checks: run `mcpg audit verify`), `.badKey` (the previous
    ///   signer given is not the key the ledger is signed with), `.invalidArgument`.
    public init(path: String, signer: LedgerSigner, options: LedgerOptions, logger: Logger) throws(LedgerError) {
        try options.check()
        let fd = try POSIXFile.openForAppend(path)
        var olderFD: Int32?
        var tail: LedgerTail
        var recovery: LedgerRecovery?
        var frontier: MerkleFrontier
        var segment: SegmentState
        do throws(LedgerError) {
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                throw LedgerError(.inUse, "\(path): another process is writing this ledger")
            }
            try POSIXFile.syncDirectory(of: path)
            let headPath = HeadFile.path(forLedger: path)
            var head: HeadFile?
            if let bytes = try POSIXFile.readSmallFile(headPath) {
                switch HeadFile.parse(bytes) {
                case .success(let h): head = h
                case .failure(let e):
                    throw LedgerError(.damaged, "\(headPath): not a ledger head file: \(e.reason)")
                }
            }
            var older: (fd: Int32, path: String)?
            if let newest = LedgerSegments.closed(of: path).last {
                switch POSIXFile.openForReading(newest.path) {
                case .success(let ofd):
                    olderFD = ofd
                    older = (ofd, newest.path)
                case .failure(let e): throw e
                }
            }
            tail = try LedgerTail.read(fd: fd, path: path, older: older, head: head)
            let rebuilt = try LedgerTail.frontier(fd: fd, path: path, older: older, tail: tail)
            frontier = rebuilt.frontier
            let size = try POSIXFile.size(fd, path: path)
            segment = SegmentState(
                firstSeq: rebuilt.activeFirstSeq ?? tail.lastSeq + 1, bytes: size, opened: .now)
            if let newest = tail.newestCheckpoint, newest.seqOfCheckpoint > head?.seqOfCheckpoint ?? 0 {
                // A crash between the checkpoint's fsync and the head file's rename: finish that step now.
                try POSIXFile.replaceAtomically(headPath, with: newest.serialized())
            }
            if tail.missingNewline {
                try POSIXFile.writeAll(fd, [0x0A], path: path)
                try POSIXFile.sync(fd, path: path)
                logger.warning(
                    "audit ledger's last record lacked its newline; added", metadata: ["mcpg.audit.path": "\(path)"])
            }
            /// Writes one record now (before any append), durably. `nil` writes a checkpoint of what is there.
            func writeNow(_ given: RecordBody?, ts: String = UTCTimestamp.now(), prefix: [UInt8] = [])
                throws(LedgerError) -> LedgerReceipt
            {
                let seq = tail.lastSeq + 1
                let body = given ?? .checkpoint(
                    Ledger.checkpoint(signer, size: tail.lastSeq, head: tail.lastHash, root: frontier.root, ts: ts))
                let (line, hash) = RecordLine.encode(seq: seq, ts: ts, prev: tail.lastHash, body: body)
                try POSIXFile.writeAll(fd, prefix + line, path: path)
                try POSIXFile.sync(fd, path: path)
                if !tail.activeHasRecord {
                    tail.activeHasRecord = true
                    segment.firstSeq = seq
                }
                segment.bytes += Int64(prefix.count + line.count)
                frontier.append(recordHash: Hex.decode(hash)!)
                tail.lastSeq = seq
                tail.lastHash = hash
                if case .checkpoint(let c) = body {
                    tail.sinceCheckpoint = 0
                    try POSIXFile.replaceAtomically(
                        headPath, with: HeadFile(checkpoint: c, ts: ts, seq: seq, hash: hash).serialized())
                } else {
                    tail.sinceCheckpoint += 1
                }
                return LedgerReceipt(seq: seq, hash: hash)
            }
            let activeWasEmpty = !tail.activeHasRecord
            if let torn = tail.torn {
                let receipt = try writeNow(
                    .recovery(tornBytes: torn.length, reason: torn.reason), prefix: torn.terminated ? [] : [0x0A])
                recovery = LedgerRecovery(
                    byteOffset: torn.offset, tornBytes: torn.length, reason: torn.reason, recordSeq: receipt.seq)
                logger.error(
                    "audit ledger had a torn last line; recovery record appended",
                    metadata: [
                        "mcpg.audit.path": "\(path)", "mcpg.audit.torn_offset": "\(torn.offset)",
                        "mcpg.audit.torn_bytes": "\(torn.length)", "mcpg.audit.reason": "\(torn.reason)",
                        "mcpg.audit.seq": "\(receipt.seq)",
                    ])
            }
            if let older, activeWasEmpty {
                // The ledger file holds no record of its own yet (a crash right after a rotation): start the segment.
                _ = try writeNow(
                    .segment(SegmentBody(previous: LedgerSegments.baseName(older.path), frontier: frontier)))
            }
            if let oldKey = tail.keyID, oldKey != signer.keyIDHex {
                let pk = Sodium.base64(signer.publicKey)
                var endorsement: String?
                let ts = UTCTimestamp.now()
                if let previous = options.previousSigner {
                    guard previous.keyIDHex == oldKey else {
                        throw LedgerError(
                            .badKey,
                            "\(path): the previous signing key given is \(previous.keyIDHex) but the ledger is signed "
                                + "with \(oldKey)")
                    }
                    endorsement = Sodium.base64(previous.sign(
                        KeyBody.endorsedMessage(keyID: signer.keyIDHex, publicKey: pk, previousKeyID: oldKey, ts: ts)))
                }
                // The endorsement signs the key record's own `ts`.
                _ = try writeNow(
                    .key(KeyBody(keyID: signer.keyIDHex, publicKey: pk, previousKeyID: oldKey, endorsement: endorsement)),
                    ts: ts)
                _ = try writeNow(nil)
                logger.notice(
                    "audit ledger signing key changed; key record appended",
                    metadata: [
                        "mcpg.audit.path": "\(path)", "mcpg.audit.key_id": "\(signer.keyIDHex)",
                        "mcpg.audit.previous_key_id": "\(oldKey)",
                        "mcpg.audit.endorsed": "\(endorsement != nil)",
                    ])
            }
        } catch {
            POSIXFile.closeDescriptor(fd)
            if let olderFD { POSIXFile.closeDescriptor(olderFD) }
            throw error
        }
        if let olderFD { POSIXFile.closeDescriptor(olderFD) }
        self.path = path
        self.recovery = recovery
        self.fd = fd
        self.signer = signer
        self.keyIDText = signer.keyIDHex
        self.options = options
        self.logger = logger
        self.io = LedgerIO(path: path)
        self.frontier = frontier
        self.segment = segment
        self.chain = ChainState(
            lastSeq: tail.lastSeq, lastHash: tail.lastHash, sinceCheckpoint: tail.sinceCheckpoint,
            durableSeq: tail.lastSeq)
        logger.info(
            "audit ledger open",
            metadata: ["mcpg.audit.path": "\(path)", "mcpg.audit.seq": "\(tail.lastSeq)"])

        let interval = options.checkpointInterval
        let task = Task { [weak self] in
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                guard let self else { return }
                await self.intervalTick()
            }
        }
        timer.withLock { $0 = task }
    }

    /// A signed checkpoint body over a tree of `size` records whose last hash is `head` and whose root is `root`.
    static func checkpoint(_ signer: LedgerSigner, size: Int64, head: String, root: [UInt8], ts: String)
        -> CheckpointBody
    {
        let rootHex = Hex.encode(root)
        let sig = signer.sign(CheckpointBody.signedMessage(size: size, head: head, root: rootHex, ts: ts))
        return CheckpointBody(size: size, head: head, root: rootHex, keyID: signer.keyIDHex, sig: Sodium.base64(sig))
    }

    deinit {
        timer.withLock { $0?.cancel() }
        if !closed { POSIXFile.closeDescriptor(fd) }
    }

    /// Appends one event and returns once its record (and every record before it) is durable on disk.
    ///
    /// Safe to call from many tasks at once; records get seqs in the order the calls reach the actor.
    /// - Throws: `.closed` after `close()`; `.invalidArgument` for an event nested more than 1024 levels deep
    ///   (nothing is written); `.io` if the write or fsync of its group failed, in which case the record may or may
    ///   not be on disk and the ledger accepts nothing more; `.failed` for every append after that.
    public func append(_ event: JSON) async throws(LedgerError) -> LedgerReceipt {
        if closed { throw LedgerError(.closed, "\(path): ledger is closed") }
        if let failure {
            throw LedgerError(
                .failed, "\(path): an earlier write failed (\(failure.message)); reopen the ledger to continue")
        }
        guard RecordLine.depth(of: event, isAtMost: RecordLine.maxEventDepth) else {
            throw LedgerError(
                .invalidArgument, "audit event nests deeper than \(RecordLine.maxEventDepth) levels; not recorded")
        }
        let receipt = encode(.event(event), ts: UTCTimestamp.now())
        batch.appends += 1
        if let g = gathering, batch.appends >= g.expected { endGathering(g.token) }
        chain.sinceCheckpoint += 1
        if chain.sinceCheckpoint >= options.checkpointEvery { encodeCheckpoint() }
        try await waitUntilDurable()
        return receipt
    }

    /// Writes a final checkpoint if records were appended since the last one, waits until everything is durable,
    /// updates the head file and closes the file. Calling it again does nothing.
    /// - Throws: the I/O error if the last group could not be written; the file is closed all the same.
    public func close() async throws(LedgerError) {
        guard !closed else { return }
        closed = true
        timer.withLock { $0?.cancel() }
        if let g = gathering { endGathering(g.token) }
        var result: Result<Void, LedgerError> = .success(())
        if failure == nil {
            if chain.sinceCheckpoint > 0 { encodeCheckpoint(rotate: false) }
            do { try await waitUntilDurable() } catch { result = .failure(error) }
        } else if let failure {
            result = .failure(failure)
        }
        POSIXFile.closeDescriptor(fd)
        for (_, continuation) in subscribers { continuation.finish() }
        subscribers = [:]
        logger.info(
            "audit ledger closed", metadata: ["mcpg.audit.path": "\(path)", "mcpg.audit.seq": "\(chain.lastSeq)"])
        try result.get()
    }

    /// A stream of every record line (event, checkpoint and recovery records, without the trailing `\n`) committed
    /// from now on, in seq order, each yielded once it is durable. This is how sinks follow the ledger.
    ///
    /// Each call returns a new, independent stream. The stream finishes when the ledger closes. With `limit`, a
    /// subscriber that falls more than `limit` records behind loses the oldest unread ones (they remain in the
    /// ledger file); without it the stream buffers without bound.
    public func committedRecords(limit: Int? = nil) -> AsyncStream<[UInt8]> {
        let policy: AsyncStream<[UInt8]>.Continuation.BufferingPolicy =
            limit.map { .bufferingNewest(max(1, $0)) } ?? .unbounded
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: policy)
        if closed {
            continuation.finish()
            return stream
        }
        let id = nextSubscriber
        nextSubscriber += 1
        subscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(id) }
        }
        return stream
    }

    /// Number of fsyncs of the ledger file by `append`/`close` (head file fsyncs not included). With concurrent
    /// appends this stays below the number of records: that is group commit at work.
    public var fsyncCount: Int { counters.fsyncs }

    /// Number of head file replacements since `init`.
    public var headFileWrites: Int { counters.headWrites }

    /// Seq of the last record accepted (durable or not yet).
    public var lastSeq: Int64 { chain.lastSeq }

    /// Number of segment rotations since `init`.
    public var rotations: Int { counters.rotations }

    // MARK: - Internals

    private func unsubscribe(_ id: Int) {
        subscribers[id] = nil
    }

    /// Encodes a record after the current chain head into the pending batch.
    private func encode(_ body: RecordBody, ts: String) -> LedgerReceipt {
        let seq = chain.lastSeq + 1
        let (line, hash) = RecordLine.encode(seq: seq, ts: ts, prev: chain.lastHash, body: body)
        batch.bytes.append(contentsOf: line)
        batch.lineEnds.append(batch.bytes.count)
        batch.lastSeq = seq
        chain.lastSeq = seq
        chain.lastHash = hash
        segment.bytes += Int64(line.count)
        frontier.append(recordHash: Hex.decode(hash)!)
        return LedgerReceipt(seq: seq, hash: hash)
    }

    /// Signs the current chain head and encodes a checkpoint record into the pending batch.
    /// Rotates the segment right after the checkpoint when it is due, unless closing.
    private func encodeCheckpoint(rotate: Bool = true) {
        let ts = UTCTimestamp.now()
        let body = Ledger.checkpoint(signer, size: chain.lastSeq, head: chain.lastHash, root: frontier.root, ts: ts)
        let receipt = encode(.checkpoint(body), ts: ts)
        batch.head = HeadFile(checkpoint: body, ts: ts, seq: receipt.seq, hash: receipt.hash)
        chain.sinceCheckpoint = 0
        guard rotate, batch.rotation == nil, rotationDue else { return }
        // The checkpoint ends this segment; the next one starts with a segment record carrying the tree's frontier.
        let closedName = LedgerSegments.fileName(ledger: path, firstSeq: segment.firstSeq)
        batch.rotation = LedgerIO.Rotation(split: batch.bytes.count, closedName: closedName)
        segment = SegmentState(firstSeq: chain.lastSeq + 1, bytes: 0, opened: .now)
        _ = encode(.segment(SegmentBody(previous: closedName, frontier: frontier)), ts: UTCTimestamp.now())
        chain.sinceCheckpoint += 1
    }

    private var rotationDue: Bool {
        if let limit = options.rotateBytes, segment.bytes >= limit { return true }
        if let every = options.rotateInterval, ContinuousClock.now - segment.opened >= every { return true }
        return false
    }

    private func intervalTick() {
        guard !closed, failure == nil, chain.sinceCheckpoint > 0 else { return }
        encodeCheckpoint()
        startFlushing()
    }

    /// Suspends until everything encoded so far is durable (or failed).
    private func waitUntilDurable() async throws(LedgerError) {
        let target = chain.lastSeq
        if chain.durableSeq >= target { return }
        if let failure { throw failure }
        if !flushing {
            // Lead: write the batch from this task, saving a task hop when appends come one at a time.
            flushing = true
            await flushLoop(until: target)
            if chain.durableSeq >= target { return }
            throw failure ?? LedgerError(.failed, "\(path): record \(target) was not written")
        }
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<Void, LedgerError>, Never>) in
            waiters.append((target, c))
            startFlushing()
        }
        try result.get()
    }

    /// Suspends until the pending batch holds `expected` appends, at most `delay`.
    private func gather(upTo expected: Int, for delay: Duration) async {
        gatherToken &+= 1
        let token = gatherToken
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            gathering = (expected, token, c)
            Task {
                try? await Task.sleep(for: delay)
                self.endGathering(token)
            }
        }
    }

    private func endGathering(_ token: UInt64) {
        guard let g = gathering, g.token == token else { return }
        gathering = nil
        g.continuation.resume()
    }

    private func startFlushing() {
        guard !flushing else { return }
        flushing = true
        Task { await self.flushLoop(until: nil) }
    }

    /// Writes pending batches one after another until none is left (or, for a leading `append`, until its own
    /// record is durable; a background task then takes over the rest). Appends that arrive while a batch is being
    /// written accumulate in the next batch: that is the group commit.
    ///
    /// With a commit delay (`batch(D)`), each batch first waits for more appends, but only when there are other
    /// appenders: more than one append already in the batch, or in the last batch written (callers that each wait
    /// for their record before sending the next come back together). A lone append, such as one agent's sequential
    /// calls, is written at once rather than paying D for a batch of one; PostgreSQL's commit_delay likewise
    /// applies only with commit_siblings active. The wait ends after D, or as soon as the batch holds as many
    /// appends as the last one did: its callers are back, and waiting longer would only add latency. (A decaying
    /// maximum of recent batches instead gathered more per write but made callers through the gateway wait the
    /// window far more often: 0.56 of ledger-off against 0.94 in bench/ledger.)
    private func flushLoop(until target: Int64?) async {
        while !batch.isEmpty, failure == nil {
            if let target, chain.durableSeq >= target { break }
            if let delay = options.commitDelay, !closed, batch.appends > 1 || counters.lastBatchAppends > 1 {
                let expected = max(2, counters.lastBatchAppends)
                if batch.appends < expected { await gather(upTo: expected, for: delay) }
            }
            let current = batch
            batch = Batch()
            let outcome = await io.commit(
                fd: fd, bytes: current.bytes, head: current.head, rotation: current.rotation,
                retain: options.retainSegments)
            switch outcome {
            case .success(let done):
                counters.fsyncs += 1
                if done.headWritten { counters.headWrites += 1 }
                if let newFD = done.newFD {
                    fd = newFD
                    counters.rotations += 1
                    logger.info(
                        "audit ledger segment closed",
                        metadata: [
                            "mcpg.audit.path": "\(path)", "mcpg.audit.segment": "\(current.rotation?.closedName ?? "")",
                            "mcpg.audit.removed": "\(done.removed.count)",
                        ])
                }
                chain.durableSeq = current.lastSeq
                counters.lastBatchAppends = current.appends
                publish(current)
                let done = waiters.prefix { $0.seq <= current.lastSeq }
                waiters.removeFirst(done.count)
                for waiter in done { waiter.continuation.resume(returning: .success(())) }
            case .failure(let error):
                failure = error
                logger.critical(
                    "audit ledger write failed; refusing further appends",
                    metadata: ["mcpg.audit.path": "\(path)", "mcpg.error": "\(error.message)"])
            }
        }
        if let failure {
            for waiter in waiters { waiter.continuation.resume(returning: .failure(failure)) }
            waiters = []
            batch = Batch()
        }
        flushing = false
        if !batch.isEmpty { startFlushing() }
    }

    private func publish(_ batch: Batch) {
        guard !subscribers.isEmpty else { return }
        var start = 0
        for end in batch.lineEnds {
            let line = Array(batch.bytes[start..<(end - 1)])
            for (_, continuation) in subscribers { continuation.yield(line) }
            start = end
        }
    }
}
