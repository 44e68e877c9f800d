import FoundationEssentials
import MCPGJSON

/// What a token must satisfy besides its signature.
public struct ValidationRules: Sendable {
    /// The `iss` a token must carry, compared byte for byte.
    public var issuer: String
    /// A token's `aud` (string or array) must contain at least one of these (RFC 8707 resource URIs).
    public var audiences: [String]
    /// Algorithms accepted; `none` and `HS*` cannot be expressed.
    public var algorithms: Set<JWSAlgorithm>
    /// Seconds of tolerance for `exp`, `nbf` and `iat`.
    public var clockSkew: Double
    /// Scopes that must all be granted (`scope` string or `scp` array).
    public var requiredScopes: [String]
    /// False when `iss` is optional and not compared (SPIFFE JWT-SVIDs, whose issuer is the trust domain's
    /// keys); an `iss` that is present must still be a string.
    public var checksIssuer: Bool

    public init(issuer: String, audiences: [String], algorithms: Set<JWSAlgorithm> = Set(JWSAlgorithm.allCases),
                clockSkew: Double = 60, requiredScopes: [String] = [], checksIssuer: Bool = true) {
        self.checksIssuer = checksIssuer
        self.issuer = issuer
        self.audiences = audiences
        self.algorithms = algorithms
        self.clockSkew = clockSkew
        self.requiredScopes = requiredScopes
    }
}

/// A token whose signature and claims checked out.
public struct VerifiedToken: Sendable {
    public let header: JSONObject
    public let claims: JSONObject
    public let algorithm: JWSAlgorithm
    /// Scopes granted, from `scope` (space-separated) and `scp` (array or space-separated), in order, unique.
    public let scopes: [String]
    /// The `iss` claim (equal to the configured issuer).
    public var issuer: String { claims["iss"]?.stringValue ?? "" }
}

/// The verdict on one bearer token.
public enum Verification: Sendable {
    case valid(VerifiedToken)
    /// Not a JWT: leave it to another identity plugin.
    case notJWT(String)
    /// A JWT that fails a check; the reason names the check, never the token.
    case invalid(String)
    /// Valid, but lacking scopes the rules require (RFC 6750 `insufficient_scope`).
    case insufficientScope(missing: [String], token: VerifiedToken)
    /// No signing keys to check against (issuer unreachable and nothing cached): fail closed.
    case keysUnavailable(String)
}

/// Signing keys as a verifier sees them: the current set, and a second look after a token named a key the
/// set lacks. Implementations decide how often the second look may fetch (rate limiting).
public protocol KeyProvider: Sendable {
    /// The keys to verify with now, or why there are none.
    func keys() async -> Result<JWKSet, KeysUnavailable>
    /// The keys after a miss: may fetch a fresh set, subject to the provider's rate limit.
    func keysAfterMiss() async -> Result<JWKSet, KeysUnavailable>
}

/// Why no signing keys are available; the message names the cause (never a credential).
public struct KeysUnavailable: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Verifies JWT bearer tokens: compact JWS parsing, algorithm and key selection, the signature, then the
/// registered claims (`iss`, `aud`, `exp`, `nbf`, `iat`) and required scopes, in that order; nothing from
/// the claims is trusted before the signature checks out.
public struct TokenVerifier: Sendable {
    public let rules: ValidationRules
    public let keys: any KeyProvider
    let now: @Sendable () -> Double

    /// - Parameter now: seconds since the epoch (tests may pin it).
    public init(rules: ValidationRules, keys: any KeyProvider,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.rules = rules
        self.keys = keys
        self.now = now
    }

    public func verify(_ token: String) async -> Verification {
        let jws: CompactJWS
        do {
            jws = try CompactJWS.parse(token)
        } catch {
            switch error {
            case .notJWT(let why): return .notJWT(why)
            case .malformed(let why): return .invalid("malformed token: \(why)")
            }
        }
        if jws.header["crit"] != nil { return .invalid("malformed token: unsupported critical header parameters") }
        guard let algName = jws.header["alg"]?.stringValue else { return .invalid("malformed token: no alg") }
        guard !JWSAlgorithm.isForbidden(algName), let alg = JWSAlgorithm(rawValue: algName),
            rules.algorithms.contains(alg)
        else {
            return .invalid("algorithm \(JWKSet.quoted(algName)) is not allowed")
        }
        var kid: String?
        if let k = jws.header["kid"] {
            guard let s = k.stringValue else { return .invalid("malformed token: kid is not a string") }
            kid = s
        }

        var set: JWKSet
        switch await keys.keys() {
        case .success(let s): set = s
        case .failure(let e): return .keysUnavailable(e.message)
        }
        var selection = set.select(alg: alg, kid: kid)
        if case .missing = selection, case .success(let fresh) = await keys.keysAfterMiss() {
            set = fresh
            selection = set.select(alg: alg, kid: kid)
        }
        let key: JWK
        switch selection {
        case .key(let k): key = k
        case .missing(let why), .unusable(let why): return .invalid(why)
        }
        guard key.verify(alg, signature: jws.signature, signingInput: jws.signingInput) else {
            return .invalid("bad signature")
        }
        if let failed = checkClaims(jws.claims) { return .invalid(failed) }

        let verified = VerifiedToken(header: jws.header, claims: jws.claims, algorithm: alg,
                                     scopes: Self.scopes(jws.claims))
        let granted = Set(verified.scopes)
        let missing = rules.requiredScopes.filter { !granted.contains($0) }
        if !missing.isEmpty { return .insufficientScope(missing: missing, token: verified) }
        return .valid(verified)
    }

    /// The first failing registered-claim check, or nil.
    func checkClaims(_ claims: JSONObject) -> String? {
        if rules.checksIssuer {
            guard let iss = claims["iss"] else { return "token has no iss" }
            guard iss.stringValue == rules.issuer else { return "wrong issuer" }
        } else if let iss = claims["iss"], iss.stringValue == nil {
            return "iss is not a string"
        }

        guard let aud = claims["aud"] else { return "token has no aud" }
        let audiences: [String]
        switch aud {
        case .string(let s): audiences = [s]
        case .array(let items):
            audiences = items.compactMap(\.stringValue)
            guard audiences.count == items.count else { return "aud holds a non-string" }
        default: return "aud is not a string or array"
        }
        guard audiences.contains(where: rules.audiences.contains) else { return "wrong audience" }

        let t = now()
        guard let expClaim = claims["exp"] else { return "token has no exp" }
        guard let exp = expClaim.doubleValue, exp.isFinite else { return "exp is not a number" }
        if t > exp + rules.clockSkew { return "token expired" }
        if let nbfClaim = claims["nbf"] {
            guard let nbf = nbfClaim.doubleValue, nbf.isFinite else { return "nbf is not a number" }
            if t + rules.clockSkew < nbf { return "token not yet valid (nbf)" }
        }
        if let iatClaim = claims["iat"] {
            guard let iat = iatClaim.doubleValue, iat.isFinite else { return "iat is not a number" }
            if iat > t + rules.clockSkew { return "token issued in the future (iat)" }
        }
        return nil
    }

    /// Granted scopes: `scope` is space-separated (RFC 8693 §4.2); `scp` is an array (or, from some issuers,
    /// a space-separated string).
    static func scopes(_ claims: JSONObject) -> [String] {
        var out: [String] = []
        var seen = Set<String>()
        func add(_ s: some StringProtocol) {
            for word in s.split(separator: " ") where seen.insert(String(word)).inserted { out.append(String(word)) }
        }
        if let scope = claims["scope"]?.stringValue { add(scope) }
        switch claims["scp"] {
        case .string(let s)?: add(s)
        case .array(let items)?: for case .string(let s) in items { add(s) }
        default: break
        }
        return out
    }
}
