import MCPGJSON

/// A JWT in JWS compact serialization (RFC 7515 §7.1), split and decoded but not yet verified.
public struct CompactJWS: Sendable {
    /// The protected header.
    public let header: JSONObject
    /// The claims set.
    public let claims: JSONObject
    /// `BASE64URL(header) '.' BASE64URL(payload)`: the bytes the signature covers.
    public let signingInput: [UInt8]
    public let signature: [UInt8]

    /// Why a string is not a verifiable JWT.
    public enum ParseError: Error, Sendable, Equatable {
        /// Not JWT-shaped at all (not three base64url segments whose first is a JSON object): some other kind
        /// of credential, which another identity plugin may understand.
        case notJWT(String)
        /// JWT-shaped but broken: the token is ours to refuse.
        case malformed(String)
    }

    /// Largest token accepted: far above real access tokens, small enough to bound the work per request.
    public static let maxBytes = 16 * 1024

    /// Splits and decodes `token`.
    public static func parse(_ token: String) throws(ParseError) -> CompactJWS {
        let bytes = Array(token.utf8)
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, parts.allSatisfy(Base64URL.isAlphabet) else {
            throw .notJWT("not a JWT")
        }
        guard let headerBytes = Base64URL.decode(parts[0]), case .object(let header)? = try? JSON.parse(headerBytes)
        else {
            throw .notJWT("not a JWT")
        }
        guard bytes.count <= maxBytes else { throw .malformed("token is larger than \(maxBytes) bytes") }
        guard let payloadBytes = Base64URL.decode(parts[1]) else { throw .malformed("payload is not base64url") }
        guard case .object(let claims)? = try? JSON.parse(payloadBytes, maxDepth: 32) else {
            throw .malformed("payload is not a JSON object")
        }
        guard let signature = Base64URL.decode(parts[2]) else { throw .malformed("signature is not base64url") }
        // RFC 7515 §4: a header with a repeated name must be rejected; claims likewise (RFC 7519 §4).
        if let name = duplicate(header) { throw .malformed("header repeats \(JWKSet.quoted(name))") }
        if let name = duplicate(claims) { throw .malformed("claims repeat \(JWKSet.quoted(name))") }
        return CompactJWS(
            header: header, claims: claims, signingInput: Array(bytes[..<parts[1].endIndex]), signature: signature)
    }

    private static func duplicate(_ o: JSONObject) -> String? {
        var seen = Set<String>()
        for m in o where !seen.insert(m.key).inserted { return m.key }
        return nil
    }
}
