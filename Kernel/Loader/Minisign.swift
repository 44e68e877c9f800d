import CSodium
import MCPGJSON

// minisign's formats (src/minisign.h in jedisct1/minisign):
//   public key  = base64("Ed" ‖ key id[8] ‖ pk[32])
//   secret key  = base64("Ed" ‖ kdf[2] ‖ "B2" ‖ salt[32] ‖ opslimit[8] ‖ memlimit[8] ‖ key id[8] ‖ sk[64] ‖ chk[32])
//   signature   = base64(alg[2] ‖ key id[8] ‖ sig[64]), alg "ED" (BLAKE2b-512 prehash) or "Ed" (legacy, raw file)
//   global sig  = Ed25519 over sig[64] ‖ trusted comment bytes

private let algEd: [UInt8] = Array("Ed".utf8)
private let algHashed: [UInt8] = Array("ED".utf8)
private let untrustedPrefix = "untrusted comment: "
private let trustedPrefix = "trusted comment: "
private let keyIDBytes = 8
private let publicKeyBytes = Int(crypto_sign_PUBLICKEYBYTES)
private let ed25519SecretBytes = Int(crypto_sign_SECRETKEYBYTES)
private let signatureBytes = Int(crypto_sign_BYTES)
/// minisign refuses longer trusted comments (TRUSTEDCOMMENTMAXBYTES minus the prefix).
private let trustedCommentMax = 8192 - trustedPrefix.utf8.count - 2

/// Splits file text into lines the way minisign's `fgets` + `trim` sees them (`\n`, optional `\r` before it).
private func lines(_ text: String) -> [Substring] {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
}

/// A minisign public key: an 8-byte key id and a 32-byte Ed25519 key.
public struct MinisignPublicKey: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The key id as stored in the key (minisign prints it reversed, see `keyIDHex`).
    public let keyID: [UInt8]
    /// The Ed25519 public key.
    public let key: [UInt8]

    init(keyID: [UInt8], key: [UInt8]) {
        self.keyID = keyID
        self.key = key
    }

    /// Parses the base64 line of a public key (`RWQ…`, as in `plugins.trusted_keys` or `minisign -P`).
    /// - Throws: `LoaderError.malformedKey`.
    public init(base64 text: String, source: String = "public key") throws(LoaderError) {
        let trimmed = text.trimmingASCIIWhitespace()
        guard let raw = base64Decode(trimmed, length: 2 + keyIDBytes + publicKeyBytes) else {
            throw LoaderError(.malformedKey, "\(source): not a minisign public key (expected base64 like RWQ…)")
        }
        guard Array(raw[0..<2]) == algEd else {
            throw LoaderError(.malformedKey, "\(source): unsupported public key algorithm (not Ed25519)")
        }
        keyID = Array(raw[2..<10])
        key = Array(raw[10...])
    }

    /// Reads a minisign `.pub` file: `untrusted comment: …` then the base64 key line.
    /// - Throws: `LoaderError.notFound`, `.ioError` or `.malformedKey`.
    public init(contentsOfFile path: String) throws(LoaderError) {
        let ls = lines(try FileIO.readText(path))
        guard ls.count >= 2, ls[0].hasPrefix(untrustedPrefix) else {
            throw LoaderError(
                .malformedKey, "\(path): not a minisign public key file (expected \"untrusted comment:\" and a key line)")
        }
        try self.init(base64: String(ls[1]), source: path)
    }

    /// A key given on a command line or in config: the base64 key itself, or the path of a `.pub` file.
    /// - Throws: `LoaderError` naming `text` when it is neither.
    public init(keyOrFile text: String) throws(LoaderError) {
        if let key = try? MinisignPublicKey(base64: text, source: text) {
            self = key
        } else if FileIO.exists(text) {
            try self.init(contentsOfFile: text)
        } else {
            throw LoaderError(.malformedKey, "\(text): neither a minisign public key (RWQ…) nor a readable key file")
        }
    }

    /// The base64 line (`RWQ…`).
    public var base64: String { base64Encode(algEd + keyID + key) }

    /// The key id as minisign prints it: 16 uppercase hex digits of the 8 id bytes read as a little-endian number.
    public var keyIDHex: String { Hex.encode(keyID.reversed(), uppercase: true) }

    /// The text of a minisign `.pub` file for this key.
    public func publicKeyFileText() -> String {
        "\(untrustedPrefix)minisign public key \(keyIDHex)\n\(base64)\n"
    }

    /// `keyIDHex`.
    public var description: String { keyIDHex }
}

/// An unencrypted minisign secret key (what `minisign -G -W` and `mcpg plugin keygen` write).
public struct MinisignSecretKey: Sendable, CustomStringConvertible {
    /// The key id shared with the public key.
    public let keyID: [UInt8]
    /// libsodium's 64-byte Ed25519 secret key (seed ‖ public key).
    let secret: [UInt8]

    init(keyID: [UInt8], secret: [UInt8]) {
        self.keyID = keyID
        self.secret = secret
    }

    /// A fresh key pair with a random key id.
    public static func generate() -> MinisignSecretKey {
        precondition(sodiumReady, "libsodium failed to initialize")
        var pk = [UInt8](repeating: 0, count: publicKeyBytes)
        var sk = [UInt8](repeating: 0, count: ed25519SecretBytes)
        var id = [UInt8](repeating: 0, count: keyIDBytes)
        crypto_sign_keypair(&pk, &sk)
        randombytes_buf(&id, keyIDBytes)
        return MinisignSecretKey(keyID: id, secret: sk)
    }

    /// Reads a minisign secret key file. Verifies the key's checksum (BLAKE2b-256 of alg ‖ key id ‖ key) and that
    /// the secret and public halves belong together. minisign itself leaves the checksum all zero in keys it writes
    /// unencrypted (`-W`); such a checksum is accepted, the halves are still checked.
    /// - Throws: `.encryptedKey` for password-protected keys, `.malformedKey`, `.notFound`, `.ioError`.
    public init(contentsOfFile path: String) throws(LoaderError) {
        try self.init(fileText: FileIO.readText(path), source: path)
    }

    /// Parses the text of a minisign secret key file; `source` names it in errors.
    public init(fileText: String, source: String) throws(LoaderError) {
        let ls = lines(fileText)
        let size = 2 + 2 + 2 + 32 + 8 + 8 + keyIDBytes + ed25519SecretBytes + 32
        guard ls.count >= 2, ls[0].hasPrefix(untrustedPrefix), let raw = base64Decode(ls[1], length: size) else {
            throw LoaderError(.malformedKey, "\(source): not a minisign secret key file")
        }
        guard Array(raw[0..<2]) == algEd else {
            throw LoaderError(.malformedKey, "\(source): unsupported secret key algorithm (not Ed25519)")
        }
        guard Array(raw[4..<6]) == Array("B2".utf8) else {
            throw LoaderError(.malformedKey, "\(source): unsupported secret key checksum algorithm")
        }
        switch (raw[2], raw[3]) {
        case (0, 0): break
        case (UInt8(ascii: "S"), UInt8(ascii: "c")):
            throw LoaderError(
                .encryptedKey,
                "\(source): encrypted minisign keys are not supported; create one with `minisign -G -W` or `mcpg plugin keygen`")
        default:
            throw LoaderError(.malformedKey, "\(source): unsupported key derivation function")
        }
        let idStart = 2 + 2 + 2 + 32 + 8 + 8
        let id = Array(raw[idStart..<(idStart + keyIDBytes)])
        let sk = Array(raw[(idStart + keyIDBytes)..<(idStart + keyIDBytes + ed25519SecretBytes)])
        let chk = Array(raw[(idStart + keyIDBytes + ed25519SecretBytes)...])
        if chk.contains(where: { $0 != 0 }) && blake2b(algEd + id + sk, length: 32) != chk {
            throw LoaderError(.malformedKey, "\(source): secret key checksum does not match (corrupt key file)")
        }
        var pk = [UInt8](repeating: 0, count: publicKeyBytes)
        var rebuilt = [UInt8](repeating: 0, count: ed25519SecretBytes)
        crypto_sign_seed_keypair(&pk, &rebuilt, sk)
        guard sodium_memcmp(rebuilt, sk, ed25519SecretBytes) == 0 else {
            throw LoaderError(.malformedKey, "\(source): secret key is corrupt (its public half does not match)")
        }
        self.init(keyID: id, secret: sk)
    }

    /// libsodium's 64-byte Ed25519 secret key (seed ‖ public key), for signers outside minisign's framing (the
    /// audit ledger). Never log it.
    public var secretKeyBytes: [UInt8] { secret }

    /// The matching public key.
    public var publicKey: MinisignPublicKey {
        MinisignPublicKey(keyID: keyID, key: Array(secret[(ed25519SecretBytes - publicKeyBytes)...]))
    }

    /// The text of an unencrypted minisign secret key file (with its checksum filled in). Keep it 0600.
    public func secretKeyFileText() -> String {
        var raw = algEd + [0, 0] + Array("B2".utf8)
        raw += [UInt8](repeating: 0, count: 32 + 8 + 8)
        raw += keyID + secret
        raw += blake2b(algEd + keyID + secret, length: 32)
        return "\(untrustedPrefix)minisign secret key \(publicKey.keyIDHex) (unencrypted, from mcpg)\n\(base64Encode(raw))\n"
    }

    /// The text of the matching minisign `.pub` file.
    public func publicKeyFileText() -> String { publicKey.publicKeyFileText() }

    /// Signs `data` and returns the text of a `.minisig` file, verifiable with `minisign -V`.
    /// - Parameters:
    ///   - prehashed: true (default) writes minisign 0.11's `ED` signature over BLAKE2b-512 of the data; false
    ///     writes a legacy `Ed` signature over the data itself.
    /// - Throws: `.malformedSignature` when a comment has a line break or control character, or is too long.
    public func sign(
        _ data: some Collection<UInt8>, trustedComment: String, untrustedComment: String = "signature from mcpg",
        prehashed: Bool = true
    ) throws(LoaderError) -> String {
        for c in [trustedComment, untrustedComment] where c.utf8.contains(where: { $0 < 0x20 && $0 != 9 || $0 == 0x7F }) {
            throw LoaderError(.malformedSignature, "comment \"\(c)\": has a line break or control character")
        }
        guard trustedComment.utf8.count <= trustedCommentMax else {
            throw LoaderError(.malformedSignature, "trusted comment: longer than \(trustedCommentMax) bytes")
        }
        let sig = prehashed ? signRaw(blake2b(data, length: 64)) : withBytes(data) { signRaw(Array($0)) }
        let global = signRaw(sig + Array(trustedComment.utf8))
        let header = (prehashed ? algHashed : algEd) + keyID + sig
        return "\(untrustedPrefix)\(untrustedComment)\n\(base64Encode(header))\n"
            + "\(trustedPrefix)\(trustedComment)\n\(base64Encode(global))\n"
    }

    /// A plain detached Ed25519 signature (64 bytes) over `message`, e.g. for audit ledger checkpoints.
    public func signRaw(_ message: [UInt8]) -> [UInt8] {
        precondition(sodiumReady, "libsodium failed to initialize")
        var sig = [UInt8](repeating: 0, count: signatureBytes)
        crypto_sign_detached(&sig, nil, message, UInt64(message.count), secret)
        return sig
    }

    /// Never prints the secret.
    public var description: String { "MinisignSecretKey(\(publicKey.keyIDHex))" }
}

/// A parsed `.minisig` file.
public struct MinisignSignature: Sendable, Equatable {
    /// True for `ED` (signature over BLAKE2b-512 of the file), false for legacy `Ed`.
    public let prehashed: Bool
    /// Key id of the signing key, as stored.
    public let keyID: [UInt8]
    /// Ed25519 signature over the file (or its hash).
    public let signature: [UInt8]
    /// The trusted comment (authenticated by `globalSignature`).
    public let trustedComment: String
    /// Ed25519 signature over `signature` ‖ trusted comment.
    public let globalSignature: [UInt8]

    /// Parses minisign's four-line format; `source` names the file in errors.
    /// - Throws: `.malformedSignature`.
    public init(text: String, source: String) throws(LoaderError) {
        let ls = lines(text)
        func bad(_ why: String) -> LoaderError { LoaderError(.malformedSignature, "\(source): \(why)") }
        guard ls.count >= 4 else { throw bad("not a minisign signature (expected 4 lines)") }
        guard ls[0].hasPrefix(untrustedPrefix) else { throw bad("first line must start with \"\(untrustedPrefix)\"") }
        guard let sig = base64Decode(ls[1], length: 2 + keyIDBytes + signatureBytes) else {
            throw bad("second line is not a minisign signature")
        }
        switch Array(sig[0..<2]) {
        case algHashed: prehashed = true
        case algEd: prehashed = false
        default: throw bad("unsupported signature algorithm")
        }
        guard ls[2].hasPrefix(trustedPrefix) else { throw bad("third line must start with \"\(trustedPrefix)\"") }
        let comment = ls[2].dropFirst(trustedPrefix.utf8.count)
        guard !comment.utf8.contains(where: { $0 < 0x20 && $0 != 9 || $0 == 0x7F }) else {
            throw bad("trusted comment contains unprintable characters")
        }
        guard let global = base64Decode(ls[3], length: signatureBytes) else {
            throw bad("fourth line is not a minisign comment signature")
        }
        keyID = Array(sig[2..<10])
        signature = Array(sig[10...])
        trustedComment = String(comment)
        globalSignature = global
    }

    /// The signing key's id as minisign prints it.
    public var keyIDHex: String { Hex.encode(keyID.reversed(), uppercase: true) }
}

/// The outcome of a successful `Minisign.verify`.
public struct VerifiedSignature: Sendable, Equatable {
    /// The trusted key that made the signature.
    public let signer: MinisignPublicKey
    /// The authenticated trusted comment.
    public let trustedComment: String
    /// True for an `ED` (prehashed) signature, false for legacy `Ed`.
    public let prehashed: Bool

    /// The signer's key id as minisign prints it.
    public var keyID: String { signer.keyIDHex }
}

/// minisign verification, compatible with the `minisign` tool.
public enum Minisign {
    /// Verifies `data` against the text of a `.minisig` file and a set of trusted keys, in minisign's order: the
    /// signature parses, its key id is trusted, the signature covers the data, the comment signature covers the
    /// trusted comment. `source` names the file in errors.
    /// - Throws: `.malformedSignature`, `.untrustedKey`, `.badSignature`.
    public static func verify(
        _ data: UnsafeRawBufferPointer, signature text: String, trustedKeys: [MinisignPublicKey],
        source: String = "data"
    ) throws(LoaderError) -> VerifiedSignature {
        let sig = try MinisignSignature(text: text, source: "\(source).minisig")
        guard let key = trustedKeys.first(where: { $0.keyID == sig.keyID }) else {
            throw LoaderError(.untrustedKey, "\(source): signed by untrusted key \(sig.keyIDHex)")
        }
        let bytes = UnsafeBufferPointer(start: data.baseAddress?.assumingMemoryBound(to: UInt8.self), count: data.count)
        let message = sig.prehashed ? blake2b(bytes, length: 64) : Array(bytes)
        guard verifyRaw(message: message, signature: sig.signature, publicKey: key) else {
            throw LoaderError(.badSignature, "\(source): signature does not match the file (tampered or wrong signature)")
        }
        guard verifyRaw(message: sig.signature + Array(sig.trustedComment.utf8), signature: sig.globalSignature, publicKey: key)
        else {
            throw LoaderError(.badSignature, "\(source): trusted comment signature does not verify (comment was edited)")
        }
        return VerifiedSignature(signer: key, trustedComment: sig.trustedComment, prehashed: sig.prehashed)
    }

    /// `verify` over an array.
    public static func verify(
        _ data: [UInt8], signature text: String, trustedKeys: [MinisignPublicKey], source: String = "data"
    ) throws(LoaderError) -> VerifiedSignature {
        try withRawBytes(data) { (b) throws(LoaderError) -> VerifiedSignature in
            try verify(b, signature: text, trustedKeys: trustedKeys, source: source)
        }
    }

    /// A plain detached Ed25519 check (no minisign framing), e.g. for audit ledger checkpoints.
    public static func verifyRaw(message: [UInt8], signature: [UInt8], publicKey: MinisignPublicKey) -> Bool {
        guard sodiumReady, signature.count == signatureBytes, publicKey.key.count == publicKeyBytes else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey.key) == 0
    }
}

extension String {
    func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = lastIndex(where: { !isSpace($0) })!
        return self[start...end]
    }
}
