import FoundationEssentials
import JWTVerifier
import MCPGJSON
import PluginKit

/// Authenticates callers by JWT bearer tokens from an OpenID Connect issuer (OAuth 2.1 resource server,
/// mcp-spec AUTH-1, AUTH-7): the signature against the issuer's JWKS, then `iss`, `aud` (the gateway's own
/// resource URI: tokens for other audiences are refused, AUTH-8/SEC-2), `exp`/`nbf`/`iat` and required
/// scopes. Every request is verified on its own (SEC-3); nothing is remembered per session.
///
/// Ops: `authenticate` (SPEC.md §2) and `resource_metadata` (what the kernel serves as RFC 9728 protected
/// resource metadata, AUTH-2). A missing bearer or one that is not a JWT abstains, so an `apikey` plugin later
/// in the chain can take it; a JWT that fails any check is refused with an RFC 6750 `challenge` (401
/// `invalid_token`, or 403 `insufficient_scope` for missing scopes, AUTH-5). Without signing keys (issuer down,
/// nothing cached) every token is refused: fail closed. The token itself is never logged or returned.
struct OIDC: IdentityPlugin {
    static let name = "oidc"
    static let version = "1.0.0"

    let verifier: TokenVerifier
    let issuer: String
    let header: String
    let principalClaim: String
    let groupsClaim: String
    let tenantClaim: String?
    let attributeClaims: [String]
    let scopesSupported: [String]
    let remote: RemoteJWKS?

    init(config: Config, host: Host) throws {
        func bad(_ message: String) -> PluginError { PluginError(code: -32602, "oidc: \(message)") }
        do {
            _ = try EndpointURL.check(config.issuer, what: "issuer")
        } catch {
            throw bad(error.message)
        }
        let audiences = config.audience.values
        guard !audiences.isEmpty, !audiences.contains(where: \.isEmpty) else {
            throw bad("audience must name at least one non-empty resource URI")
        }
        var algorithms = Set<JWSAlgorithm>()
        for name in config.algorithms ?? JWSAlgorithm.allCases.map(\.rawValue) {
            if JWSAlgorithm.isForbidden(name) {
                throw bad("algorithms: \"\(name)\" is never allowed (unsigned or symmetric tokens)")
            }
            guard let alg = JWSAlgorithm(rawValue: name) else {
                throw bad("algorithms: \"\(name)\" is not supported (RS256, PS256, ES256, ES384, EdDSA)")
            }
            algorithms.insert(alg)
        }
        guard !algorithms.isEmpty else { throw bad("algorithms must not be empty") }
        let skew = config.clock_skew_s ?? 60
        guard skew.isFinite, (0...3600).contains(skew) else { throw bad("clock_skew_s must be between 0 and 3600") }
        let cache = config.jwks_cache_s ?? 300
        guard cache.isFinite, (0...86400).contains(cache) else { throw bad("jwks_cache_s must be between 0 and 86400") }
        let minRefresh = config.jwks_min_refresh_s ?? 30
        guard minRefresh.isFinite, (0...86400).contains(minRefresh) else {
            throw bad("jwks_min_refresh_s must be between 0 and 86400")
        }
        let timeout = config.http_timeout_ms ?? 5000
        guard (1...60000).contains(timeout) else { throw bad("http_timeout_ms must be between 1 and 60000") }
        let required = config.required_scopes ?? []
        for scope in required + (config.scopes_supported ?? []) where !Self.isScopeToken(scope) {
            throw bad("scope \"\(scope)\" must be non-empty, without spaces, quotes or backslashes")
        }
        for (key, value) in [("principal_claim", config.principal_claim), ("groups_claim", config.groups_claim),
                             ("tenant_claim", config.tenant_claim), ("header", config.header)]
        where value?.isEmpty == true {
            throw bad("\(key) must not be empty")
        }
        if config.attribute_claims?.contains(where: \.isEmpty) == true {
            throw bad("attribute_claims must not hold an empty name")
        }

        let keys: any KeyProvider
        if let file = config.jwks_file {
            guard config.jwks_uri == nil else { throw bad("give jwks_file or jwks_uri, not both") }
            guard config.tls == nil else { throw bad("tls applies only when keys are fetched (not with jwks_file)") }
            keys = try FileJWKS(path: file, host: host)
            remote = nil
        } else {
            do {
                let r = try RemoteJWKS(
                    settings: .init(issuer: config.issuer, jwksURI: config.jwks_uri, cacheSeconds: cache,
                                    minRefreshSeconds: minRefresh, timeoutMilliseconds: timeout,
                                    caFile: config.tls?.ca_file),
                    log: { event, message, metadata in
                        switch event {
                        case .fetched, .keySkipped: host.log(.debug, message, metadata)
                        case .fetchFailed: host.log(.warning, message, metadata)
                        }
                    })
                r.prefetch()
                keys = r
                remote = r
            } catch {
                throw bad(error.message)
            }
        }
        verifier = TokenVerifier(
            rules: ValidationRules(issuer: config.issuer, audiences: audiences, algorithms: algorithms,
                                   clockSkew: skew, requiredScopes: required),
            keys: keys)
        issuer = config.issuer
        header = (config.header ?? "authorization").lowercased()
        principalClaim = config.principal_claim ?? "sub"
        groupsClaim = config.groups_claim ?? "groups"
        tenantClaim = config.tenant_claim
        attributeClaims = config.attribute_claims ?? []
        var supported: [String] = []
        for s in config.scopes_supported ?? required where !supported.contains(s) { supported.append(s) }
        scopesSupported = supported
    }

    /// RFC 6750 scope-token characters: printable ASCII except space, `"` and `\`.
    static func isScopeToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }
    }

    // MARK: - Ops

    func handle(op: String, request: JSON, context: CallContext) async throws -> JSON {
        switch op {
        case "authenticate": return await authenticatePayload(AuthenticateRequest(json: request))
        case "resource_metadata": return resourceMetadata
        default: throw PluginError(code: -32601, "oidc has no op \(op)")
        }
    }

    /// RFC 9728 protected resource metadata, without `resource` (the kernel knows its own URL).
    var resourceMetadata: JSON {
        [
            "authorization_servers": [.string(issuer)],
            "scopes_supported": .array(scopesSupported.map { .string($0) }),
            "bearer_methods_supported": ["header"],
        ]
    }

    /// The `authenticate` answer without the challenge members (PluginKit's `AuthenticateResult` has none).
    func authenticate(_ request: AuthenticateRequest) async throws -> AuthenticateResult {
        let payload = await authenticatePayload(request)
        let reason = payload["reason"]?.stringValue ?? ""
        switch payload["result"]?.stringValue {
        case "authenticated": return .authenticated(try Principal(json: payload["principal"] ?? .null), reason: reason)
        case "abstain": return .abstain(reason: reason)
        default: return .reject(reason: reason)
        }
    }

    /// The full `authenticate` payload: `result`, `reason`, and for refusals `challenge` (and `status` 403).
    func authenticatePayload(_ request: AuthenticateRequest) async -> JSON {
        guard let token = bearer(request.headers) else {
            return ["result": "abstain", "reason": "no bearer token"]
        }
        switch await verifier.verify(token) {
        case .notJWT(let why):
            return ["result": "abstain", "reason": .string(why)]
        case .invalid(let why):
            return Self.invalidToken(why)
        case .keysUnavailable(let why):
            return ["result": "reject", "reason": .string(why)]
        case .insufficientScope(let missing, _):
            let reason = "token lacks scope " + missing.joined(separator: " ")
            return [
                "result": "reject", "reason": .string(reason), "status": 403,
                "challenge": [
                    "error": "insufficient_scope",
                    "scope": .string(verifier.rules.requiredScopes.joined(separator: " ")),
                    "error_description": .string(Self.challengeText(reason)),
                ],
            ]
        case .valid(let token):
            guard let principal = principal(token) else {
                return Self.invalidToken("token has no usable \(principalClaim) claim")
            }
            return [
                "result": "authenticated", "principal": principal.json,
                "reason": .string("oidc token of \(principal.id) from \(token.issuer)"),
            ]
        }
    }

    static func invalidToken(_ why: String) -> JSON {
        [
            "result": "reject", "reason": .string(why),
            "challenge": ["error": "invalid_token", "error_description": .string(challengeText(why))],
        ]
    }

    /// `text` as an RFC 6750 error_description: printable ASCII without `"` and `\`.
    static func challengeText(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.compactMap { s -> Unicode.Scalar? in
            if s == "\"" { return "'" }
            return s.value >= 0x20 && s.value < 0x7F && s != "\\" ? s : nil
        }))
    }

    // MARK: - Claims

    /// The principal the token names, or nil when its id claim is missing or not a string or integer.
    func principal(_ token: VerifiedToken) -> Principal? {
        let claims = JSON.object(token.claims)
        guard let id = Self.scalarText(Self.claim(claims, principalClaim)), !id.isEmpty else { return nil }
        var groups: [String] = []
        switch Self.claim(claims, groupsClaim) {
        case .array(let items)?: groups = items.compactMap(Self.scalarText)
        case let v?: groups = Self.scalarText(v).map { [$0] } ?? []
        case nil: break
        }
        let tenant = tenantClaim.flatMap { Self.scalarText(Self.claim(claims, $0)) }
        var attributes: JSONObject = [
            "iss": .string(token.issuer), "scopes": .array(token.scopes.map { .string($0) }),
        ]
        for name in attributeClaims {
            if let v = Self.claim(claims, name) { attributes[name] = v }
        }
        return Principal(id: id, groups: groups, tenant: tenant, attributes: attributes)
    }

    /// The claim `path`: a top-level claim of that exact name (names like `https://example.com/roles` hold
    /// dots), else the dotted path through nested objects.
    static func claim(_ claims: JSON, _ path: String) -> JSON? {
        if let v = claims[path] { return v }
        var current: JSON? = claims
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            current = current?[String(part)]
            if current == nil { return nil }
        }
        return current
    }

    /// A string, or an integer as text.
    static func scalarText(_ v: JSON?) -> String? {
        switch v {
        case .string(let s)?: return s
        case .int(let i)?: return String(i)
        default: return nil
        }
    }

    /// The token from the configured header: `Bearer <token>` in `Authorization`; in another header, the
    /// bare token or `Bearer <token>`.
    func bearer(_ headers: [String: String]) -> String? {
        guard let raw = headers[header] else { return nil }
        let value = Self.trimmed(raw)
        let u = Array(value.utf8)
        if u.count > 7, String(decoding: u[0..<6], as: UTF8.self).lowercased() == "bearer", u[6] == 0x20 {
            let token = Self.trimmed(String(decoding: u[7...], as: UTF8.self))
            return token.isEmpty ? nil : token
        }
        guard header != "authorization", !value.isEmpty, !value.contains(" ") else { return nil }
        return value
    }

    static func trimmed(_ s: String) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = s.firstIndex(where: { !isSpace($0) }), let end = s.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(s[start...end])
    }
}

/// Keys from a static JWKS file, reloaded when the file changes (checked at most once a second, and at once
/// when a token names a key the current set lacks). A bad edit keeps the previous keys and is logged.
final class FileJWKS: KeyProvider {
    let file: Reloadable<JWKSet>

    init(path: String, host: Host) throws {
        do {
            file = try Reloadable(
                files: [path], interval: .seconds(1),
                onReload: { result in
                    switch result {
                    case .success(let version): host.log(.notice, "jwks file reloaded", ["oidc.jwks.version": "\(version)"])
                    case .failure(let error):
                        host.log(.error, "jwks file reload failed; keeping the previous keys", ["error": "\(error)"])
                    }
                }
            ) { try Self.load(path) }
        } catch let e as PluginError {
            throw e
        } catch {
            throw PluginError(code: -32602, "oidc: jwks_file \(path): \(error)")
        }
    }

    static func load(_ path: String) throws -> JWKSet {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PluginError(code: -32602, "oidc: jwks_file \(path): cannot read file")
        }
        do {
            let set = try JWKSet(json: try JSON.parse(Array(data)))
            guard !set.keys.isEmpty else {
                throw PluginError(code: -32602, "oidc: jwks_file \(path): no usable signing key")
            }
            return set
        } catch let e as PluginError {
            throw e
        } catch {
            throw PluginError(code: -32602, "oidc: jwks_file \(path): \(error)")
        }
    }

    func keys() async -> Result<JWKSet, KeysUnavailable> { .success(file.current.value) }
    func keysAfterMiss() async -> Result<JWKSet, KeysUnavailable> { .success(file.checkNow().value) }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: OIDC.self) }
