import MCPGJSON

/// Inclusion proofs: a few records of a ledger, shown to belong to it without handing over the ledger.
///
/// A proof bundle is one JSON object:
///
///     {"format":"mcpg-ledger-proof-v1",
///      "checkpoint":{"seq":S,"ts":"…","size":N,"head":"<hex>","root":"<hex>","key_id":"<16 hex>","sig":"<base64>"},
///      "records":[{"seq":K,"line":"<the record's line, exactly as in the ledger>","path":["<hex>",…]},…]}
///
/// `path` is the RFC 6962 audit path of leaf `K - 1` in the tree of the checkpoint's `N` records. Checking it needs
/// only the public key of the checkpoint's signer: each line's hash is recomputed from its bytes, each leaf is
/// hashed up its path to the root, and the root is the one the checkpoint signs. Records with consecutive seqs must
/// also chain (`prev` = the previous record's hash), so an exported range is shown complete.
public enum LedgerProof {
    public static let format = "mcpg-ledger-proof-v1"

    /// Builds the bundle for records `from…to` of the ledger at `path` (with its closed segments), against the
    /// checkpoint at record `checkpointSeq`, or by default the newest checkpoint, which must cover `to`.
    /// - Throws: `LedgerError` (`.invalidArgument` for a range the ledger does not hold or no checkpoint covers,
    ///   `.damaged` for a ledger that does not read back as records).
    public static func bundle(path: String, from: Int64, to: Int64, checkpointSeq: Int64? = nil) throws(LedgerError)
        -> JSON
    {
        guard from >= 1, to >= from else {
            throw LedgerError(.invalidArgument, "the range must be 1 ≤ FROM ≤ TO, got \(from)-\(to)")
        }
        var hashes: [[UInt8]] = []
        var anchor = MerkleFrontier()
        var wanted: [Int64: String] = [:]
        var checkpoints: [(seq: Int64, ts: String, body: CheckpointBody)] = []
        var expected: Int64 = 0
        for file in LedgerSegments.all(of: path) {
            let fd: Int32
            switch POSIXFile.openForReading(file) {
            case .success(let opened): fd = opened
            case .failure(let e): throw e
            }
            defer { POSIXFile.closeDescriptor(fd) }
            var reader = ForwardLineReader(fd: fd, path: file)
            while let line = try reader.next() {
                guard case .success(let r) = RecordLine.parse(line.bytes[...]) else { continue }  // torn lines
                guard r.hashMatches else {
                    throw LedgerError(.damaged, "\(file): record \(r.seq) does not match its hash; run `mcpg audit verify`")
                }
                if expected == 0 {
                    // The first record: record 1, or a segment record whose frontier stands for removed segments.
                    if case .segment(let seg) = r.body, r.seq > 1 { anchor = seg.frontier }
                    expected = r.seq
                }
                guard r.seq == expected else {
                    throw LedgerError(
                        .damaged, "\(file): record \(r.seq) follows \(expected - 1); run `mcpg audit verify`")
                }
                hashes.append(Hex.decode(r.hash) ?? [])
                if r.seq >= from, r.seq <= to { wanted[r.seq] = String(decoding: line.bytes, as: UTF8.self) }
                if case .checkpoint(let c) = r.body { checkpoints.append((r.seq, r.ts, c)) }
                expected += 1
            }
        }
        let firstSeq = anchor.size + 1
        guard from >= firstSeq else {
            throw LedgerError(
                .invalidArgument, "records before \(firstSeq) are in segments that were removed; cannot prove \(from)")
        }
        guard to < expected else {
            throw LedgerError(.invalidArgument, "the ledger ends at record \(expected - 1); cannot prove \(to)")
        }
        let checkpoint: (seq: Int64, ts: String, body: CheckpointBody)
        if let checkpointSeq {
            guard let c = checkpoints.first(where: { $0.seq == checkpointSeq }) else {
                throw LedgerError(.invalidArgument, "record \(checkpointSeq) is not a checkpoint")
            }
            checkpoint = c
        } else {
            guard let c = checkpoints.last else { throw LedgerError(.invalidArgument, "the ledger has no checkpoint") }
            checkpoint = c
        }
        guard checkpoint.body.size >= to else {
            throw LedgerError(
                .invalidArgument,
                "the checkpoint at record \(checkpoint.seq) covers records up to \(checkpoint.body.size), not \(to)")
        }
        var tree = ProofTree(anchor: anchor, recordHashes: hashes, size: checkpoint.body.size)
        var records: [JSON] = []
        for seq in from...to {
            let path = tree.auditPath(index: seq - 1)
            records.append([
                "seq": .int(seq), "line": .string(wanted[seq] ?? ""),
                "path": .array(path.map { .string(Hex.encode($0)) }),
            ])
        }
        let c = checkpoint.body
        return [
            "format": .string(format),
            "checkpoint": [
                "seq": .int(checkpoint.seq), "ts": .string(checkpoint.ts), "size": .int(c.size), "head": .string(c.head),
                "root": .string(c.root), "key_id": .string(c.keyID), "sig": .string(c.sig),
            ],
            "records": .array(records),
        ]
    }

    /// What a verified bundle shows.
    public struct Verified: Sendable, Equatable, CustomStringConvertible {
        public var seqs: [Int64]
        public var checkpointSeq: Int64
        public var size: Int64
        public var root: String
        public var keyID: String
        public var ts: String

        public var description: String {
            let which = seqs.count == 1 ? "record \(seqs[0])" : "records \(seqs.first ?? 0)-\(seqs.last ?? 0)"
            return "ok: \(which) proven against the checkpoint at record \(checkpointSeq) (\(size) records, root "
                + "\(root), key \(keyID), \(ts))"
        }
    }

    /// Checks a bundle with only public keys. Returns what it shows, or the first problem.
    public static func verify(_ bundle: JSON, keys: [LedgerTrustedKey]) -> Result<Verified, LedgerError> {
        func bad(_ text: String) -> Result<Verified, LedgerError> { .failure(LedgerError(.damaged, text)) }
        guard bundle["format"]?.stringValue == format else { return bad("not a \(format) bundle") }
        guard let c = bundle["checkpoint"], case .int(let cpSeq)? = c["seq"], let ts = c["ts"]?.stringValue,
            case .int(let size)? = c["size"], size >= 0, cpSeq == size + 1,
            let head = c["head"]?.stringValue, let root = c["root"]?.stringValue,
            let keyID = c["key_id"]?.stringValue, let sigText = c["sig"]?.stringValue
        else { return bad("checkpoint is not {seq = size + 1, ts, size, head, root, key_id, sig}") }
        guard let key = keys.first(where: { LedgerKeyID.text($0.keyID) == keyID }) else {
            return bad("the checkpoint is signed by key \(keyID), which is not a given key")
        }
        guard let sig = Sodium.unbase64(sigText),
            Sodium.verify(
                signature: sig, message: CheckpointBody.signedMessage(size: size, head: head, root: root, ts: ts),
                publicKey: key.publicKey)
        else { return bad("the checkpoint's signature does not verify with key \(keyID)") }
        guard let rootBytes = Hex.decode(root), rootBytes.count == 32 else { return bad("the root is not 64 hex") }
        guard case .array(let items)? = bundle["records"], !items.isEmpty else { return bad("no records") }
        var seqs: [Int64] = []
        var previous: ParsedRecord?
        for item in items {
            guard case .int(let seq)? = item["seq"], let line = item["line"]?.stringValue,
                case .array(let pathItems)? = item["path"]
            else { return bad("a record is not {seq, line, path}") }
            let record: ParsedRecord
            switch RecordLine.parse(ArraySlice(line.utf8)) {
            case .success(let r): record = r
            case .failure(let e): return bad("record \(seq): not a record line (\(e.reason))")
            }
            guard record.seq == seq else { return bad("record \(seq): its line is record \(record.seq)") }
            guard record.hashMatches else { return bad("record \(seq): the line does not match its hash (edited)") }
            guard seq <= size else { return bad("record \(seq) is after the checkpoint's \(size) records") }
            let path = pathItems.compactMap { $0.stringValue.flatMap(Hex.decode) }
            guard path.count == pathItems.count, path.allSatisfy({ $0.count == 32 }) else {
                return bad("record \(seq): the path is not a list of 64-hex hashes")
            }
            guard let computed = Merkle.rootFromPath(
                leaf: Merkle.leaf(Hex.decode(record.hash) ?? []), index: seq - 1, size: size, path: path),
                computed == rootBytes
            else { return bad("record \(seq): its path does not lead to the checkpoint's root (not in the ledger)") }
            if let previous, previous.seq + 1 == seq, record.prev != previous.hash {
                return bad("record \(seq): prev does not match record \(previous.seq)")
            }
            if seq == size, record.hash != head { return bad("record \(seq): is not the checkpoint's head") }
            seqs.append(seq)
            previous = record
        }
        return .success(Verified(seqs: seqs, checkpointSeq: cpSeq, size: size, root: root, keyID: keyID, ts: ts))
    }
}

/// The Merkle tree of a checkpoint, over the record hashes read from the ledger, with the subtrees left of a
/// retention anchor taken from the anchor's frontier. Subtree roots are memoized: proofs for many records of one
/// tree share most of them.
struct ProofTree {
    /// Leaves before this index are only known through `anchorNodes`.
    let anchorSize: Int64
    /// (start, size) → root of each anchor frontier node.
    let anchorNodes: [Pair: [UInt8]]
    /// Hashes of records `anchorSize + 1 …`.
    let recordHashes: [[UInt8]]
    let size: Int64
    var memo: [Pair: [UInt8]] = [:]

    struct Pair: Hashable {
        var lo: Int64
        var hi: Int64
    }

    init(anchor: MerkleFrontier, recordHashes: [[UInt8]], size: Int64) {
        var nodes: [Pair: [UInt8]] = [:]
        var start: Int64 = 0
        var bit: Int64 = 1 << 62
        var index = 0
        while bit > 0 {
            if anchor.size & bit != 0 {
                nodes[Pair(lo: start, hi: start + bit)] = anchor.nodes[index]
                index += 1
                start += bit
            }
            bit >>= 1
        }
        self.anchorSize = anchor.size
        self.anchorNodes = nodes
        self.recordHashes = recordHashes
        self.size = size
    }

    /// RFC 6962 audit path of leaf `index` in the tree of `size` leaves.
    mutating func auditPath(index: Int64) -> [[UInt8]] {
        var path: [[UInt8]] = []
        collect(index: index, lo: 0, hi: size, into: &path)
        return path
    }

    private mutating func collect(index: Int64, lo: Int64, hi: Int64, into path: inout [[UInt8]]) {
        guard hi - lo > 1 else { return }
        let k = Int64(Merkle.largestPowerOfTwo(below: Int(hi - lo)))
        if index < lo + k {
            collect(index: index, lo: lo, hi: lo + k, into: &path)
            path.append(root(lo + k, hi))
        } else {
            collect(index: index, lo: lo + k, hi: hi, into: &path)
            path.append(root(lo, lo + k))
        }
    }

    private mutating func root(_ lo: Int64, _ hi: Int64) -> [UInt8] {
        let key = Pair(lo: lo, hi: hi)
        if let known = anchorNodes[key] ?? memo[key] { return known }
        let value: [UInt8]
        if hi - lo == 1 {
            value = lo >= anchorSize ? Merkle.leaf(recordHashes[Int(lo - anchorSize)]) : []
        } else {
            let k = Int64(Merkle.largestPowerOfTwo(below: Int(hi - lo)))
            value = Merkle.node(root(lo, lo + k), root(lo + k, hi))
        }
        memo[key] = value
        return value
    }
}
