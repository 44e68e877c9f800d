import MCPGJSON

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The body of one ledger record (the member between `prev` and `hash`).
enum RecordBody: Sendable, Equatable {
    case event(JSON)
    case checkpoint(CheckpointBody)
    case recovery(tornBytes: Int64, reason: String)
    case key(KeyBody)
    case segment(SegmentBody)

    var key: String {
        switch self {
        case .event: return "event"
        case .checkpoint: return "checkpoint"
        case .recovery: return "recovery"
        case .key: return "key"
        case .segment: return "segment"
        }
    }
}

/// The `key` member of a key record: from this record on, checkpoints are signed by `keyID`.
struct KeyBody: Sendable, Equatable {
    /// The new signer's key id (`LedgerKeyID.text`).
    var keyID: String
    /// The new signer's Ed25519 public key, base64.
    var publicKey: String
    /// The key that signed the checkpoints before this record.
    var previousKeyID: String
    /// The previous key's base64 signature over `endorsedMessage`, or nil when the previous secret key was not
    /// available (a verifier must then be given the new public key too).
    var endorsement: String?

    /// The bytes the previous key signs to endorse the new one:
    /// `mcpg-ledger-key-v1\n<key id>\n<public key base64>\n<previous key id>\n<ts>\n`.
    static func endorsedMessage(keyID: String, publicKey: String, previousKeyID: String, ts: String) -> [UInt8] {
        Array("mcpg-ledger-key-v1\n\(keyID)\n\(publicKey)\n\(previousKeyID)\n\(ts)\n".utf8)
    }
}

/// The `segment` member of the first record of every segment file after the first.
struct SegmentBody: Sendable, Equatable {
    /// File name (no directory) of the segment before this one.
    var previous: String
    /// The Merkle frontier of every record before this one (`frontier.size == seq - 1`), so the ledger can be
    /// checked from this segment on when older segments were removed.
    var frontier: MerkleFrontier
}

/// The `checkpoint` member of a checkpoint record.
struct CheckpointBody: Sendable, Equatable {
    /// Number of records before the checkpoint (its seq - 1).
    var size: Int64
    /// Lowercase hex hash of record `size` (64 zeros when `size` is 0).
    var head: String
    /// Lowercase hex Merkle root of records 1…`size` (see `Merkle`).
    var root: String
    /// Signer key id as `LedgerKeyID.text` writes it.
    var keyID: String
    /// Base64 Ed25519 signature over `signedMessage`.
    var sig: String

    /// The exact bytes a checkpoint signs:
    /// `mcpg-ledger-checkpoint-v2\n<size>\n<head hex>\n<root hex>\n<ts>\n`.
    static func signedMessage(size: Int64, head: String, root: String, ts: String) -> [UInt8] {
        Array("mcpg-ledger-checkpoint-v2\n\(size)\n\(head)\n\(root)\n\(ts)\n".utf8)
    }
}

/// One parsed, structurally valid record line.
struct ParsedRecord: Sendable {
    var seq: Int64
    var ts: String
    var prev: String
    var body: RecordBody
    /// The `hash` the line claims.
    var hash: String
    /// Whether SHA-256 of the line's prefix equals `hash`.
    var hashMatches: Bool
}

/// Encoding and decoding of record lines. See the format description at the top of `Ledger.swift`.
enum RecordLine {
    /// 64 zeros: the `prev` of record 1.
    static let zeroHash = String(repeating: "0", count: 64)
    /// `,"hash":"` — the bytes that end a record's hashed prefix.
    static let hashMarker: [UInt8] = Array(#","hash":""#.utf8)
    /// Length of `,"hash":"<64 hex>"}`.
    static let suffixLength = hashMarker.count + 64 + 2
    /// Deepest nesting of arrays and objects an event may have, so that every record the writer produces stays
    /// within what the verifier parses (the record object adds one level).
    static let maxEventDepth = 1024

    /// Whether `value` nests arrays and objects at most `limit` deep (stops looking once past the limit).
    static func depth(of value: JSON, isAtMost limit: Int) -> Bool {
        switch value {
        case .array(let items):
            guard limit > 0 else { return false }
            return items.allSatisfy { depth(of: $0, isAtMost: limit - 1) }
        case .object(let object):
            guard limit > 0 else { return false }
            return object.members.allSatisfy { depth(of: $0.value, isAtMost: limit - 1) }
        default:
            return true
        }
    }

    /// Encodes one record and returns its line (with the trailing `\n`) and its hash (lowercase hex).
    static func encode(seq: Int64, ts: String, prev: String, body: RecordBody) -> (line: [UInt8], hash: String) {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(contentsOf: #"{"seq":"#.utf8)
        out.append(contentsOf: String(seq).utf8)
        out.append(contentsOf: #","ts":""#.utf8)
        out.append(contentsOf: ts.utf8)
        out.append(contentsOf: #"","prev":""#.utf8)
        out.append(contentsOf: prev.utf8)
        out.append(contentsOf: #"",""#.utf8)
        out.append(contentsOf: body.key.utf8)
        out.append(contentsOf: #"":"#.utf8)
        switch body {
        case .event(let event):
            event.write(into: &out)
        case .checkpoint(let c):
            out.append(contentsOf: #"{"size":"#.utf8)
            out.append(contentsOf: String(c.size).utf8)
            out.append(contentsOf: #","head":""#.utf8)
            out.append(contentsOf: c.head.utf8)
            out.append(contentsOf: #"","root":""#.utf8)
            out.append(contentsOf: c.root.utf8)
            out.append(contentsOf: #"","key_id":""#.utf8)
            out.append(contentsOf: c.keyID.utf8)
            out.append(contentsOf: #"","sig":""#.utf8)
            out.append(contentsOf: c.sig.utf8)
            out.append(contentsOf: #""}"#.utf8)
        case .recovery(let tornBytes, let reason):
            out.append(contentsOf: #"{"torn_bytes":"#.utf8)
            out.append(contentsOf: String(tornBytes).utf8)
            out.append(contentsOf: #","reason":"#.utf8)
            JSON.writeString(reason, into: &out)
            out.append(UInt8(ascii: "}"))
        case .key(let k):
            let json: JSON = [
                "key_id": .string(k.keyID), "public_key": .string(k.publicKey),
                "previous_key_id": .string(k.previousKeyID),
                "endorsement": k.endorsement.map { .string($0) } ?? .null,
            ]
            json.write(into: &out)
        case .segment(let seg):
            let json: JSON = [
                "previous": .string(seg.previous), "tree_size": .int(seg.frontier.size),
                "frontier": .array(seg.frontier.nodes.map { .string(Hex.encode($0)) }),
            ]
            json.write(into: &out)
        }
        let hash = Hex.encodeBytes(Sodium.sha256(out))
        out.append(contentsOf: hashMarker)
        out.append(contentsOf: hash)
        out.append(contentsOf: #""}"#.utf8)
        out.append(0x0A)
        return (out, String(decoding: hash, as: UTF8.self))
    }

    /// The seq and raw hash of a line that looks like a record (`{"seq":N,` … `,"hash":"<64 hex>"}`), without
    /// parsing its JSON or checking its hash: what rebuilding the Merkle frontier needs from lines already checked.
    static func seqAndHash(_ line: ArraySlice<UInt8>) -> (Int64, [UInt8])? {
        let prefix = #"{"seq":"#.utf8
        guard line.count > suffixLength + prefix.count, line.starts(with: prefix) else { return nil }
        var seq: Int64 = 0
        var i = line.startIndex + prefix.count
        while i < line.endIndex, line[i] >= 0x30, line[i] <= 0x39, seq < Int64.max / 10 {
            seq = seq * 10 + Int64(line[i] - 0x30)
            i += 1
        }
        guard i < line.endIndex, line[i] == UInt8(ascii: ","), seq >= 1 else { return nil }
        let suffixStart = line.endIndex - suffixLength
        let hexStart = suffixStart + hashMarker.count
        guard line[suffixStart..<hexStart].elementsEqual(hashMarker), line[line.endIndex - 1] == UInt8(ascii: "}"),
            let hash = Hex.decode(String(decoding: line[hexStart..<(hexStart + 64)], as: UTF8.self))
        else { return nil }
        return (seq, hash)
    }

    /// Parses one line (without its `\n`). Returns the record, or why the line is not a record at all.
    /// A record whose hash does not match is still returned, with `hashMatches == false`.
    static func parse(_ line: ArraySlice<UInt8>) -> Result<ParsedRecord, LineError> {
        guard line.count > suffixLength else { return .failure(LineError("too short to be a record")) }
        let suffixStart = line.endIndex - suffixLength
        let hexStart = suffixStart + hashMarker.count
        guard line[suffixStart..<hexStart].elementsEqual(hashMarker),
            line[line.endIndex - 2] == UInt8(ascii: "\""), line[line.endIndex - 1] == UInt8(ascii: "}"),
            Hex.isLowercaseHex(line[hexStart..<(hexStart + 64)], count: 64)
        else { return .failure(LineError("does not end with ,\"hash\":\"<64 hex>\"}")) }

        let json: JSON
        do {
            json = try JSON.parse(line, maxDepth: maxEventDepth + 1)
        } catch {
            return .failure(LineError("not valid JSON (\(error.reason) at byte \(error.offset))"))
        }
        guard case .object(let object) = json else { return .failure(LineError("not a JSON object")) }
        let keys = object.keys
        guard keys.count == 5, keys[0] == "seq", keys[1] == "ts", keys[2] == "prev", keys[4] == "hash" else {
            return .failure(LineError("members are not seq, ts, prev, <kind>, hash"))
        }
        guard case .int(let seq)? = object["seq"], seq >= 1 else {
            return .failure(LineError("seq is not a positive integer"))
        }
        guard case .string(let ts)? = object["ts"] else { return .failure(LineError("ts is not a string")) }
        guard case .string(let prev)? = object["prev"], Hex.isLowercaseHex(prev.utf8, count: 64) else {
            return .failure(LineError("prev is not 64 lowercase hex digits"))
        }
        let hash = String(decoding: line[hexStart..<(hexStart + 64)], as: UTF8.self)
        guard object["hash"]?.stringValue == hash else { return .failure(LineError("hash member is malformed")) }

        let body: RecordBody
        let value = object.members[3].value
        switch keys[3] {
        case "event":
            body = .event(value)
        case "checkpoint":
            guard let c = value.objectValue, c.keys == ["size", "head", "root", "key_id", "sig"],
                case .int(let size)? = c["size"], size >= 0,
                let head = c["head"]?.stringValue, Hex.isLowercaseHex(head.utf8, count: 64),
                let root = c["root"]?.stringValue, Hex.isLowercaseHex(root.utf8, count: 64),
                let keyID = c["key_id"]?.stringValue, let sig = c["sig"]?.stringValue
            else { return .failure(LineError("checkpoint is not {size, head, root, key_id, sig}")) }
            body = .checkpoint(CheckpointBody(size: size, head: head, root: root, keyID: keyID, sig: sig))
        case "recovery":
            guard let r = value.objectValue, r.keys == ["torn_bytes", "reason"],
                case .int(let torn)? = r["torn_bytes"], torn >= 0, let reason = r["reason"]?.stringValue
            else { return .failure(LineError("recovery is not {torn_bytes, reason}")) }
            body = .recovery(tornBytes: torn, reason: reason)
        case "key":
            guard let k = value.objectValue, k.keys == ["key_id", "public_key", "previous_key_id", "endorsement"],
                let keyID = k["key_id"]?.stringValue, let pk = k["public_key"]?.stringValue,
                let previous = k["previous_key_id"]?.stringValue
            else { return .failure(LineError("key is not {key_id, public_key, previous_key_id, endorsement}")) }
            let endorsement: String?
            switch k["endorsement"] {
            case .string(let e)?: endorsement = e
            case .null?: endorsement = nil
            default: return .failure(LineError("key endorsement is neither a string nor null"))
            }
            body = .key(KeyBody(keyID: keyID, publicKey: pk, previousKeyID: previous, endorsement: endorsement))
        case "segment":
            guard let g = value.objectValue, g.keys == ["previous", "tree_size", "frontier"],
                let previous = g["previous"]?.stringValue, case .int(let size)? = g["tree_size"],
                case .array(let items)? = g["frontier"]
            else { return .failure(LineError("segment is not {previous, tree_size, frontier}")) }
            let nodes = items.compactMap { $0.stringValue.flatMap(Hex.decode) }
            guard nodes.count == items.count, let frontier = MerkleFrontier(size: size, nodes: nodes),
                size == seq - 1
            else { return .failure(LineError("segment frontier does not describe the \(seq - 1) records before it")) }
            body = .segment(SegmentBody(previous: previous, frontier: frontier))
        default:
            return .failure(LineError("unknown record kind \"\(keys[3])\""))
        }
        let computed = Hex.encodeBytes(Sodium.sha256(line[line.startIndex..<suffixStart]))
        let matches = computed.elementsEqual(line[hexStart..<(hexStart + 64)])
        return .success(ParsedRecord(seq: seq, ts: ts, prev: prev, body: body, hash: hash, hashMatches: matches))
    }
}

/// Why a line is not a record.
struct LineError: Error, Sendable {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

