import MCPGJSON

/// The `<ledger>.head` file: a copy of the newest checkpoint, replaced atomically after each checkpoint is
/// durable in the ledger. It is what reveals a ledger whose tail was cut off, checkpoint and all.
///
/// `{"size":N,"head":"<hex>","root":"<hex>","ts":"…","key_id":"<16 hex>","sig":"<base64>","seq_of_checkpoint":S,
/// "checkpoint_hash":"<hex>"}` followed by `\n`.
struct HeadFile: Sendable, Equatable {
    var size: Int64
    var head: String
    var root: String
    var ts: String
    var keyID: String
    var sig: String
    /// Seq of the checkpoint record this file copies (= size + 1).
    var seqOfCheckpoint: Int64
    /// Hash of that checkpoint record.
    var checkpointHash: String

    static func path(forLedger ledger: String) -> String { ledger + ".head" }

    init(
        size: Int64, head: String, root: String, ts: String, keyID: String, sig: String, seqOfCheckpoint: Int64,
        checkpointHash: String
    ) {
        self.size = size
        self.head = head
        self.root = root
        self.ts = ts
        self.keyID = keyID
        self.sig = sig
        self.seqOfCheckpoint = seqOfCheckpoint
        self.checkpointHash = checkpointHash
    }

    /// The head file for checkpoint record `seq` with hash `hash` and body `checkpoint`, written at `ts`.
    init(checkpoint: CheckpointBody, ts: String, seq: Int64, hash: String) {
        self.init(
            size: checkpoint.size, head: checkpoint.head, root: checkpoint.root, ts: ts, keyID: checkpoint.keyID, sig: checkpoint.sig,
            seqOfCheckpoint: seq, checkpointHash: hash)
    }

    func serialized() -> [UInt8] {
        let json: JSON = [
            "size": .int(size), "head": .string(head), "root": .string(root), "ts": .string(ts), "key_id": .string(keyID),
            "sig": .string(sig), "seq_of_checkpoint": .int(seqOfCheckpoint), "checkpoint_hash": .string(checkpointHash),
        ]
        return json.serialized() + [0x0A]
    }

    /// Parses a head file, or says what is wrong with it.
    static func parse(_ bytes: [UInt8]) -> Result<HeadFile, LineError> {
        let json: JSON
        do {
            json = try JSON.parse(bytes)
        } catch {
            return .failure(LineError("not valid JSON (\(error.reason) at byte \(error.offset))"))
        }
        guard case .int(let size)? = json["size"], size >= 0,
            let head = json["head"]?.stringValue, Hex.isLowercaseHex(head.utf8, count: 64),
            let root = json["root"]?.stringValue, Hex.isLowercaseHex(root.utf8, count: 64),
            let ts = json["ts"]?.stringValue,
            let keyID = json["key_id"]?.stringValue,
            let sig = json["sig"]?.stringValue,
            case .int(let seq)? = json["seq_of_checkpoint"], seq == size + 1,
            let hash = json["checkpoint_hash"]?.stringValue, Hex.isLowercaseHex(hash.utf8, count: 64)
        else {
            return .failure(
                LineError("not {size, head, root, ts, key_id, sig, seq_of_checkpoint = size + 1, checkpoint_hash}"))
        }
        return .success(
            HeadFile(
                size: size, head: head, root: root, ts: ts, keyID: keyID, sig: sig, seqOfCheckpoint: seq, checkpointHash: hash))
    }
}
