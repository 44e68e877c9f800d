import Crypto
import FoundationEssentials
import MCPGJSON
import _CryptoExtras

/// The JWS algorithms a token may be signed with (RFC 7518 §3, RFC 8037 §3.1). Symmetric (`HS*`) and
/// unsigned (`none`) tokens are not in this list and can never be accepted.
public enum JWSAlgorithm: String, Sendable, CaseIterable, Hashable {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    case rs256 = "RS256"
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt.
    case ps256 = "PS256"
    /// ECDSA on P-256 with SHA-256; the signature is r‖s, 32 bytes each.
    case es256 = "ES256"
    /// ECDSA on P-384 with SHA-384; the signature is r‖s, 48 bytes each.
    case es384 = "ES384"
    /// Ed25519.
    case edDSA = "EdDSA"

    /// True for names that must never be allowed: `none` and every HMAC algorithm, in any letter case.
    /// With a public-key JWKS, an `HS*` token would be "verified" with public key bytes as the secret.
    public static func isForbidden(_ name: String) -> Bool {
        let upper = name.uppercased()
        return upper == "NONE" || upper.hasPrefix("HS")
    }
}

/// A JWKS entry that cannot be used, and why (it stays out of `JWKSet.keys`).
public struct JWKError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One public signing key from a JWKS (RFC 7517), checked and ready to verify signatures.
public struct JWK: Sendable {
    /// The key material, already validated by swift-crypto (curve points on the curve, RSA ≥ 2048 bits).
    public enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    /// Smallest RSA modulus accepted.
    public static let minimumRSABits = 2048

    public let kid: String?
    /// The `alg` the JWKS pins this key to, if any.
    public let alg: JWSAlgorithm?
    public let material: Material

    /// Parses one JWKS entry.
    /// - Throws: `JWKError` when the entry is not a usable signature key: symmetric (`oct`), for encryption,
    ///   an unsupported type, curve or `alg`, bad base64url, wrong coordinate lengths, a point not on the
    ///   curve, or an RSA modulus under 2048 bits.
    public init(json: JSON) throws(JWKError) {
        guard case .object(let o) = json else { throw JWKError("key must be a JSON object, not \(json.typeName)") }
        kid = o["kid"]?.stringValue
        if let use = o["use"] {
            guard use.stringValue == "sig" else { throw JWKError("key use is \(use), not \"sig\"") }
        }
        if let ops = o["key_ops"] {
            guard ops.arrayValue?.contains(.string("verify")) == true else {
                throw JWKError("key_ops does not include \"verify\"")
            }
        }
        if let a = o["alg"] {
            guard let name = a.stringValue, let parsed = JWSAlgorithm(rawValue: name) else {
                throw JWKError("key alg \(a) is not a supported signature algorithm")
            }
            alg = parsed
        } else {
            alg = nil
        }
        guard let kty = o["kty"]?.stringValue else { throw JWKError("key has no kty") }
        switch kty {
        case "RSA":
            let n = try Self.bytes(o, "n")
            let e = try Self.bytes(o, "e")
            let significant = n.drop { $0 == 0 }
            let bits = significant.first.map { significant.count * 8 - $0.leadingZeroBitCount } ?? 0
            guard bits >= Self.minimumRSABits else {
                throw JWKError("RSA key of \(bits) bits is below the minimum of \(Self.minimumRSABits)")
            }
            guard !e.isEmpty, e.count <= 8 else { throw JWKError("RSA exponent e has \(e.count) bytes") }
            do {
                material = .rsa(try _RSA.Signing.PublicKey(n: Array(significant), e: e))
            } catch {
                throw JWKError("RSA key rejected by the crypto library (\(error))")
            }
        case "EC":
            let crv = o["crv"]?.stringValue ?? ""
            let size: Int
            switch crv {
            case "P-256": size = 32
            case "P-384": size = 48
            default: throw JWKError("EC curve \"\(crv)\" is not supported (P-256, P-384)")
            }
            let x = try Self.bytes(o, "x")
            let y = try Self.bytes(o, "y")
            guard x.count == size, y.count == size else {
                throw JWKError("\(crv) coordinates must be \(size) bytes each (x \(x.count), y \(y.count))")
            }
            do {
                material = size == 32
                    ? .p256(try P256.Signing.PublicKey(rawRepresentation: x + y))
                    : .p384(try P384.Signing.PublicKey(rawRepresentation: x + y))
            } catch {
                throw JWKError("\(crv) point is not on the curve")
            }
        case "OKP":
            let crv = o["crv"]?.stringValue ?? ""
            guard crv == "Ed25519" else { throw JWKError("OKP curve \"\(crv)\" is not supported (Ed25519)") }
            let x = try Self.bytes(o, "x")
            guard x.count == 32 else { throw JWKError("Ed25519 key x must be 32 bytes, not \(x.count)") }
            do {
                material = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x))
            } catch {
                throw JWKError("Ed25519 key rejected by the crypto library")
            }
        case "oct":
            throw JWKError("symmetric (oct) keys are never used")
        default:
            throw JWKError("key type \"\(kty)\" is not supported")
        }
        if let alg, let why = Self.typeMismatch(material, alg) {
            throw JWKError("key alg \(alg.rawValue) does not fit its type: \(why)")
        }
    }

    /// Why this key cannot verify a token signed with `alg`, or nil when it can: the key's type and curve must
    /// be the algorithm's, and a key pinned to an `alg` only verifies that one.
    public func mismatch(_ alg: JWSAlgorithm) -> String? {
        if let own = self.alg, own != alg { return "key is for \(own.rawValue), token says \(alg.rawValue)" }
        return Self.typeMismatch(material, alg)
    }

    private static func typeMismatch(_ material: Material, _ alg: JWSAlgorithm) -> String? {
        switch (material, alg) {
        case (.rsa, .rs256), (.rsa, .ps256), (.p256, .es256), (.p384, .es384), (.ed25519, .edDSA): return nil
        default: return "\(material.name) key cannot verify \(alg.rawValue)"
        }
    }

    /// True when `signature` is `alg`'s valid signature of `signingInput` under this key. A wrong-length or
    /// otherwise malformed signature is simply invalid. Call only after `mismatch(alg)` returned nil.
    public func verify(_ alg: JWSAlgorithm, signature: [UInt8], signingInput: [UInt8]) -> Bool {
        guard mismatch(alg) == nil else { return false }
        switch material {
        case .rsa(let key):
            // BoringSSL checks the signature length against the modulus.
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            let digest = SHA256.hash(data: signingInput)
            return key.isValidSignature(sig, for: digest, padding: alg == .ps256 ? .PSS : .insecurePKCS1v1_5)
        case .p256(let key):
            guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: SHA256.hash(data: signingInput))
        case .p384(let key):
            guard signature.count == 96, let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: SHA384.hash(data: signingInput))
        case .ed25519(let key):
            guard signature.count == 64 else { return false }
            return key.isValidSignature(signature, for: signingInput)
        }
    }

    /// A member holding base64url bytes.
    private static func bytes(_ o: JSONObject, _ name: String) throws(JWKError) -> [UInt8] {
        guard let text = o[name]?.stringValue else { throw JWKError("key has no \(name)") }
        guard let b = Base64URL.decode(text), !b.isEmpty else { throw JWKError("key \(name) is not base64url") }
        return b
    }
}

extension JWK.Material {
    /// "RSA", "P-256", "P-384" or "Ed25519", for messages.
    public var name: String {
        switch self {
        case .rsa: return "RSA"
        case .p256: return "P-256"
        case .p384: return "P-384"
        case .ed25519: return "Ed25519"
        }
    }
}

/// A JWK Set (RFC 7517 §5): the usable signing keys, and the entries that were left out with the reason.
public struct JWKSet: Sendable {
    /// An entry that is not used (encryption key, unsupported type, weak RSA key, …).
    public struct Skipped: Sendable, Equatable {
        public var kid: String?
        public var reason: String
    }

    public let keys: [JWK]
    public let skipped: [Skipped]

    /// Parses a JWKS document: an object whose `keys` is an array. Unusable entries are skipped, not fatal,
    /// because issuers publish encryption keys and newer key types next to the ones a verifier needs.
    /// - Throws: `JWKError` when the document itself has the wrong shape.
    public init(json: JSON) throws(JWKError) {
        guard case .object(let o) = json else { throw JWKError("JWKS must be a JSON object, not \(json.typeName)") }
        guard let entries = o["keys"]?.arrayValue else { throw JWKError("JWKS has no \"keys\" array") }
        var keys: [JWK] = []
        var skipped: [Skipped] = []
        for entry in entries {
            do {
                keys.append(try JWK(json: entry))
            } catch {
                skipped.append(Skipped(kid: entry["kid"]?.stringValue, reason: error.message))
            }
        }
        self.keys = keys
        self.skipped = skipped
    }

    /// The outcome of looking for the key that verifies a token.
    public enum Selection: Sendable {
        case key(JWK)
        /// No key can verify the token as things stand; a fresh copy of the set might have it
        /// (`reason` says what was looked for).
        case missing(String)
        /// The set has the key but it cannot verify this token (wrong type or `alg`, skipped as unusable,
        /// or several candidates without a `kid` to choose).
        case unusable(String)
    }

    /// The key for a token signed with `alg` naming key `kid`. With a `kid`, only keys with that `kid` are
    /// considered; without one, exactly one key of the right type may fit.
    public func select(alg: JWSAlgorithm, kid: String?) -> Selection {
        if let kid {
            let named = keys.filter { $0.kid == kid }
            if named.isEmpty {
                if let s = skipped.first(where: { $0.kid == kid }) {
                    return .unusable("key \(Self.quoted(kid)) is not usable: \(s.reason)")
                }
                return .missing("unknown key id \(Self.quoted(kid))")
            }
            if let k = named.first(where: { $0.mismatch(alg) == nil }) { return .key(k) }
            return .unusable("key \(Self.quoted(kid)) does not match the algorithm: \(named[0].mismatch(alg) ?? "")")
        }
        let fitting = keys.filter { $0.mismatch(alg) == nil }
        switch fitting.count {
        case 1: return .key(fitting[0])
        case 0: return .missing("no key for \(alg.rawValue)")
        default: return .unusable("token has no kid and \(fitting.count) keys fit \(alg.rawValue)")
        }
    }

    /// A key id for messages: quoted, printable ASCII only, at most 64 characters.
    static func quoted(_ kid: String) -> String {
        var s = String(kid.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" }.prefix(64)
            .map(Character.init))
        if kid.unicodeScalars.count > 64 { s += "…" }
        return "\"" + s + "\""
    }
}
