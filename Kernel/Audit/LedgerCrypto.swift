import CSodium
import MCPGJSON

/// The key a `Ledger` signs its checkpoints with: a minisign-style Ed25519 secret key.
///
/// The secret key never appears in `description`, logs or errors.
public struct LedgerSigner: Sendable, CustomStringConvertible {
    /// The 8-byte key id, in the byte order of a minisign key file (little-endian).
    public let keyID: [UInt8]
    /// The 32-byte Ed25519 public key that verifies this signer's checkpoints.
    public let publicKey: [UInt8]
    let secretKey: [UInt8]

    /// Makes a signer from raw key material.
    /// - Parameters:
    ///   - keyID: the 8-byte minisign key id, as stored in the key files.
    ///   - secretKey: the 64-byte libsodium Ed25519 secret key (seed followed by public key), as held in a
    ///     minisign secret key file.
    /// - Throws: `LedgerError` with code `.badKey` if a length is wrong.
    public init(keyID: [UInt8], secretKey: [UInt8]) throws(LedgerError) {
        guard keyID.count == 8 else {
            throw LedgerError(.badKey, "checkpoint key id must be 8 bytes, got \(keyID.count)")
        }
        guard secretKey.count == Int(crypto_sign_secretkeybytes()) else {
            throw LedgerError(.badKey, "checkpoint secret key must be 64 bytes, got \(secretKey.count)")
        }
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: Int(crypto_sign_publickeybytes()))
        _ = crypto_sign_ed25519_sk_to_pk(&pk, secretKey)
        self.keyID = keyID
        self.secretKey = secretKey
        self.publicKey = pk
    }

    /// The key id as the ledger and `minisign` print it.
    public var keyIDHex: String { LedgerKeyID.text(keyID) }

    public var description: String { "LedgerSigner(key id \(keyIDHex))" }

    func sign(_ message: [UInt8]) -> [UInt8] {
        var sig = [UInt8](repeating: 0, count: Int(crypto_sign_bytes()))
        _ = crypto_sign_detached(&sig, nil, message, UInt64(message.count), secretKey)
        return sig
    }
}

/// How key ids are written: 16 uppercase hex digits of the 8 bytes read as a little-endian number, which is
/// exactly how `minisign` displays a key id.
enum LedgerKeyID {
    static func text(_ keyID: [UInt8]) -> String {
        Hex.encode(keyID.reversed(), uppercase: true)
    }
}

/// libsodium bootstrap: `sodium_init()` is thread-safe and idempotent; calling it once per process is enough.
enum Sodium {
    private static let initialized: Bool = { sodium_init() >= 0 }()

    static func ensureInitialized() {
        _ = initialized
    }

    static func sha256(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_bytes()))
        _ = crypto_hash_sha256(&out, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
        return out
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { sha256($0) }
    }

    static func sha256(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        bytes.withUnsafeBytes { sha256($0) }
    }

    static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        ensureInitialized()
        guard signature.count == Int(crypto_sign_bytes()), publicKey.count == Int(crypto_sign_publickeybytes())
        else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let variant = Int32(sodium_base64_VARIANT_ORIGINAL)
        let length = sodium_base64_encoded_len(bytes.count, variant)
        var out = [CChar](repeating: 0, count: length)
        _ = sodium_bin2base64(&out, length, bytes, bytes.count, variant)
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func unbase64(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        var out = [UInt8](repeating: 0, count: input.count * 3 / 4 + 3)
        var length = 0
        let rc = input.withUnsafeBufferPointer { inBuf in
            inBuf.withMemoryRebound(to: CChar.self) { chars in
                sodium_base642bin(
                    &out, out.count, chars.baseAddress, chars.count, nil, &length, nil,
                    Int32(sodium_base64_VARIANT_ORIGINAL))
            }
        }
        guard rc == 0 else { return nil }
        return Array(out.prefix(length))
    }
}
