import CSodium
import MCPGJSON

/// What a session id carries: who opened the session and what was negotiated. Enough for any gateway instance
/// that holds the same key to serve the session's next request, after a restart or on another replica, without a
/// sticky load balancer.
public struct SealedSession: Sendable, Equatable {
    public var owner: String
    public var protocolVersion: String
    public var clientCapabilities: JSON
    public var clientInfo: JSON
    /// Unix seconds when `initialize` created it.
    public var issuedAt: Int64

    public init(owner: String, protocolVersion: String, clientCapabilities: JSON, clientInfo: JSON, issuedAt: Int64) {
        self.owner = owner
        self.protocolVersion = protocolVersion
        self.clientCapabilities = clientCapabilities
        self.clientInfo = clientInfo
        self.issuedAt = issuedAt
    }
}

/// Session ids that are the session's state, encrypted and authenticated (XChaCha20-Poly1305, libsodium):
/// `s1.` + base64url(nonce ‖ ciphertext). A client can neither read nor forge one; a gateway with the key can
/// rebuild the session from it (HTTP-12: visible ASCII, unpredictable).
public struct SessionSealer: Sendable {
    let key: [UInt8]
    static let prefix = "s1."

    /// A sealer with a fresh random key: sessions do not outlive the process.
    public static func ephemeral() -> SessionSealer {
        var k = [UInt8](repeating: 0, count: Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES))
        randombytes_buf(&k, k.count)
        return SessionSealer(key: k)
    }

    init(key: [UInt8]) { self.key = key }

    /// A sealer whose key is derived from a secret file's bytes (at least 32), shared by the instances that
    /// should serve each other's sessions.
    public init(secret: [UInt8]) throws(SessionKeyError) {
        guard secret.count >= 32 else { throw SessionKeyError(message: "the session key file must hold at least 32 bytes") }
        var k = [UInt8](repeating: 0, count: Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES))
        let context = Array("mcpg session id v1".utf8)
        _ = crypto_generichash(&k, k.count, secret, UInt64(secret.count), context, context.count)
        key = k
    }

    public func seal(_ s: SealedSession) -> String {
        let plain = JSON.object([
            "o": .string(s.owner), "v": .string(s.protocolVersion), "c": s.clientCapabilities, "i": s.clientInfo,
            "t": .int(s.issuedAt),
        ]).serialized()
        var nonce = [UInt8](repeating: 0, count: Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES))
        randombytes_buf(&nonce, nonce.count)
        var cipher = [UInt8](repeating: 0, count: plain.count + Int(crypto_aead_xchacha20poly1305_ietf_ABYTES))
        var cipherLength: UInt64 = 0
        _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
            &cipher, &cipherLength, plain, UInt64(plain.count), nil, 0, nil, nonce, key)
        return Self.prefix + Self.base64url(nonce + cipher.prefix(Int(cipherLength)))
    }

    /// The session an id carries, or nil when it is not one of ours (forged, altered, another key, garbage).
    public func open(_ id: String) -> SealedSession? {
        guard id.hasPrefix(Self.prefix), id.utf8.count < 8192,
            let raw = Self.unbase64url(String(id.dropFirst(Self.prefix.count)))
        else { return nil }
        let n = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
        let a = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
        guard raw.count > n + a else { return nil }
        let nonce = Array(raw.prefix(n))
        let cipher = Array(raw.dropFirst(n))
        var plain = [UInt8](repeating: 0, count: cipher.count - a)
        var plainLength: UInt64 = 0
        guard crypto_aead_xchacha20poly1305_ietf_decrypt(
            &plain, &plainLength, nil, cipher, UInt64(cipher.count), nil, 0, nonce, key) == 0,
            let json = try? JSON.parse(plain.prefix(Int(plainLength))),
            let owner = json["o"]?.stringValue, let version = json["v"]?.stringValue, let t = json["t"]?.intValue
        else { return nil }
        return SealedSession(owner: owner, protocolVersion: version, clientCapabilities: json["c"] ?? [:],
                             clientInfo: json["i"] ?? .null, issuedAt: t)
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        let variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING
        var out = [CChar](repeating: 0, count: sodium_base64_encoded_len(bytes.count, variant))
        _ = sodium_bin2base64(&out, out.count, bytes, bytes.count, variant)
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func unbase64url(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8).map { CChar(bitPattern: $0) }
        var out = [UInt8](repeating: 0, count: chars.count)
        var length = 0
        guard sodium_base642bin(&out, out.count, chars, chars.count, nil, &length, nil,
                                sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 else { return nil }
        return Array(out.prefix(length))
    }
}

public struct SessionKeyError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
