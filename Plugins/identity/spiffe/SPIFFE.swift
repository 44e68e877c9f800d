import ClientCertificates
import FoundationEssentials
import JWTVerifier
import MCPGJSON
import PluginKit
import X509

/// Authenticates SPIFFE workloads: X.509-SVIDs (the TLS client certificate) and JWT-SVIDs (`Authorization:
/// Bearer`).
///
/// An X.509-SVID's leaf has exactly one URI SAN, a SPIFFE ID `spiffe://<trust-domain>/<path>`; its chain is
/// verified against the X.509 bundle of that trust domain only. A JWT-SVID's `sub` is the SPIFFE ID; its
/// signature is checked against the JWKS bundle of that trust domain, then `aud` (one of `audiences`) and `exp`.
/// The SPIFFE ID is the principal id; the first `ids` pattern it matches adds groups (and may set a tenant);
/// with `ids` configured, an ID no pattern matches is refused. Bundles are re-read when their files change.
/// No certificate with a SPIFFE ID and no JWT bearer → abstain.
struct SPIFFE: IdentityPlugin {
    struct Config: Decodable, Sendable {
        struct Domain: Decodable, Sendable {
            var bundle_file: String?
            var jwks_file: String?
        }
        struct IDRule: Decodable, Sendable {
            var pattern: String
            var groups: [String]?
            var tenant: String?
        }
        var trust_domains: [String: Domain]
        var audiences: [String]?
        var ids: [IDRule]?
        var header: String?
        var clock_skew_s: Double?
        var reload_interval_s: Double?
    }
    static let name = "spiffe"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["trust_domains"],
            "properties": [
                "trust_domains": [
                    "type": "object", "minProperties": 1,
                    "description": .string(
                        "Trust bundles by trust domain name (`example.org`): `bundle_file`, the CA certificates "
                            + "(PEM) X.509-SVIDs of the domain chain to; `jwks_file`, the JWKS that signs its "
                            + "JWT-SVIDs. A domain with neither is refused."),
                    "additionalProperties": [
                        "type": "object", "additionalProperties": false,
                        "properties": [
                            "bundle_file": ["type": "string", "format": "path"],
                            "jwks_file": ["type": "string", "format": "path"],
                        ],
                    ],
                ],
                "audiences": [
                    "type": "array", "items": ["type": "string", "minLength": 1],
                    "description": "A JWT-SVID's `aud` must hold one of these. Required with any `jwks_file`.",
                ],
                "ids": [
                    "type": "array",
                    "description": .string(
                        "SPIFFE ID patterns (`*` any run of characters, `?` one) in order; the first match adds "
                            + "its groups and tenant. When set, an ID no pattern matches is refused."),
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["pattern"],
                        "properties": [
                            "pattern": ["type": "string", "minLength": 1],
                            "groups": ["type": "array", "items": ["type": "string"]],
                            "tenant": ["type": "string"],
                        ],
                    ],
                ],
                "header": [
                    "type": "string", "minLength": 1,
                    "description": "Header carrying `Bearer <JWT-SVID>`. Default `authorization`.",
                ],
                "clock_skew_s": [
                    "type": "number", "minimum": 0, "maximum": 3600,
                    "description": "Seconds of tolerance for a JWT-SVID's `exp`, `nbf`, `iat`. Default 30.",
                ],
                "reload_interval_s": [
                    "type": "number", "minimum": 0, "maximum": 86400,
                    "description": "Seconds between looks at the bundle files (0: never). Default 5.",
                ],
            ],
        ]
    }

    /// The trust bundles of every domain, loaded together.
    struct Bundles: Sendable {
        var x509: [String: ChainVerifier] = [:]
        var jwt: [String: JWKSet] = [:]
    }

    let bundles: Reloadable<Bundles>
    let rules: [(glob: Glob, groups: [String], tenant: String?)]
    let restricted: Bool
    let audiences: [String]
    let header: String
    let clockSkew: Double

    init(config: Config, host: Host) throws {
        func bad(_ m: String) -> PluginError { PluginError(code: -32602, "spiffe: \(m)") }
        guard !config.trust_domains.isEmpty else { throw bad("trust_domains must name at least one trust domain") }
        var files: [String] = []
        for (td, d) in config.trust_domains.sorted(by: { $0.key < $1.key }) {
            guard SPIFFEID.isTrustDomain(td) else {
                throw bad("trust domain \"\(td)\" is not valid (lowercase letters, digits, \".\", \"-\", \"_\")")
            }
            guard d.bundle_file != nil || d.jwks_file != nil else { throw bad("trust domain \(td) has no bundle_file or jwks_file") }
            files += [d.bundle_file, d.jwks_file].compactMap { $0 }
        }
        audiences = config.audiences ?? []
        if config.trust_domains.values.contains(where: { $0.jwks_file != nil }) && audiences.isEmpty {
            throw bad("audiences must name at least one audience when a trust domain has a jwks_file")
        }
        let skew = config.clock_skew_s ?? 30
        guard skew.isFinite, (0...3600).contains(skew) else { throw bad("clock_skew_s must be between 0 and 3600") }
        clockSkew = skew
        let interval = config.reload_interval_s ?? 5
        guard interval.isFinite, (0...86400).contains(interval) else { throw bad("reload_interval_s must be between 0 and 86400") }
        rules = (config.ids ?? []).map { (Glob($0.pattern), $0.groups ?? [], $0.tenant) }
        restricted = config.ids != nil
        header = (config.header ?? "authorization").lowercased()
        let domains = config.trust_domains
        do {
            bundles = try Reloadable(
                files: files, interval: .milliseconds(Int64(interval * 1000)),
                onReload: { result in
                    switch result {
                    case .success(let v): host.log(.notice, "spiffe bundles reloaded", ["spiffe.version": "\(v)"])
                    case .failure(let e): host.log(.error, "spiffe bundle reload failed; keeping the previous bundles", ["error": "\(e)"])
                    }
                },
                load: { try Self.load(domains) })
        } catch {
            throw bad("\(error)")
        }
    }

    static func load(_ domains: [String: Config.Domain]) throws -> Bundles {
        var b = Bundles()
        for (td, d) in domains {
            if let f = d.bundle_file { b.x509[td] = ChainVerifier(roots: try PEMBundle.certificates(file: f)) }
            if let f = d.jwks_file {
                guard let bytes = FileBytes.read(f) else { throw CertificateError("\(f): cannot read the file") }
                let set: JWKSet
                do { set = try JWKSet(json: try JSON.parse(bytes)) } catch {
                    throw CertificateError("\(f): not a JWKS (\(error))")
                }
                guard !set.keys.isEmpty else { throw CertificateError("\(f): no usable signing key") }
                b.jwt[td] = set
            }
        }
        return b
    }

    // MARK: - Ops

    func handle(op: String, request: JSON, context: CallContext) async throws -> JSON {
        guard op == "authenticate" else { throw PluginError(code: -32601, "spiffe has no op \(op)") }
        return await authenticatePayload(AuthenticateRequest(json: request))
    }

    func authenticate(_ request: AuthenticateRequest) async throws -> AuthenticateResult {
        let payload = await authenticatePayload(request)
        let reason = payload["reason"]?.stringValue ?? ""
        switch payload["result"]?.stringValue {
        case "authenticated": return .authenticated(try Principal(json: payload["principal"] ?? .null), reason: reason)
        case "abstain": return .abstain(reason: reason)
        default: return .reject(reason: reason)
        }
    }

    /// The full answer; a refused JWT-SVID carries an RFC 6750 `invalid_token` challenge.
    func authenticatePayload(_ request: AuthenticateRequest) async -> JSON {
        let current = bundles.current.value
        if let tls = request.tls, !tls.certificates.isEmpty {
            switch await x509SVID(tls.certificates, current) {
            case .success(let id): return principal(id, svid: "x509")
            case .failure(.notSVID(let why)): if bearer(request.headers) == nil { return abstain(why) }
            case .failure(.refused(let why)): return reject(why)
            }
        }
        guard let token = bearer(request.headers) else { return abstain("no X.509-SVID and no bearer token") }
        switch await jwtSVID(token, current) {
        case .success(let id): return principal(id, svid: "jwt")
        case .failure(.notSVID(let why)): return abstain(why)
        case .failure(.refused(let why)):
            return [
                "result": "reject", "reason": .string(why),
                "challenge": ["error": "invalid_token", "error_description": .string(why)],
            ]
        }
    }

    enum SVIDFailure: Error {
        /// Not ours: another identity plugin may understand the credential.
        case notSVID(String)
        case refused(String)
    }

    func x509SVID(_ pems: [String], _ b: Bundles) async -> Result<SPIFFEID, SVIDFailure> {
        var chain: [Certificate] = []
        for pem in pems {
            do { chain += try PEMBundle.certificates(pem: pem, what: "client certificate") } catch {
                return .failure(.refused("client certificate unusable: \(error.message)"))
            }
        }
        let names: CertificateNames
        do { names = try CertificateNames(chain[0]) } catch { return .failure(.refused(error.message)) }
        let spiffe = names.uris.filter { $0.lowercased().hasPrefix("spiffe:") }
        guard !spiffe.isEmpty else { return .failure(.notSVID("client certificate has no SPIFFE ID")) }
        guard names.uris.count == 1 else {
            return .failure(.refused("X.509-SVID must have exactly one URI SAN, has \(names.uris.count)"))
        }
        guard let id = SPIFFEID(spiffe[0]) else { return .failure(.refused("malformed SPIFFE ID in the certificate")) }
        guard let verifier = b.x509[id.trustDomain] else {
            return .failure(.refused("no X.509 bundle for trust domain \(id.trustDomain)"))
        }
        if case .failure(let why) = await verifier.verify(chain) { return .failure(.refused(why.description)) }
        return .success(id)
    }

    func jwtSVID(_ token: String, _ b: Bundles) async -> Result<SPIFFEID, SVIDFailure> {
        let jws: CompactJWS
        do { jws = try CompactJWS.parse(token) } catch {
            switch error {
            case .notJWT(let why): return .failure(.notSVID(why))
            case .malformed(let why): return .failure(.refused("malformed token: \(why)"))
            }
        }
        // The trust domain picks the keys; nothing else in the claims counts before the signature checks out.
        guard let sub = jws.claims["sub"]?.stringValue, sub.hasPrefix("spiffe://") else {
            return .failure(.notSVID("bearer token is not a JWT-SVID (sub is not a SPIFFE ID)"))
        }
        guard let id = SPIFFEID(sub) else { return .failure(.refused("malformed SPIFFE ID in sub")) }
        guard let keys = b.jwt[id.trustDomain] else {
            return .failure(.refused("no JWT bundle for trust domain \(id.trustDomain)"))
        }
        let verifier = TokenVerifier(
            rules: ValidationRules(issuer: "", audiences: audiences, clockSkew: clockSkew, checksIssuer: false),
            keys: StaticKeys(set: keys))
        switch await verifier.verify(token) {
        case .valid: return .success(id)
        case .insufficientScope: return .success(id)
        case .notJWT(let why): return .failure(.notSVID(why))
        case .invalid(let why), .keysUnavailable(let why): return .failure(.refused(why))
        }
    }

    func principal(_ id: SPIFFEID, svid: String) -> JSON {
        var groups: [String] = []
        var tenant: String?
        var matched = !restricted
        var text = id.text
        let rule = text.withUTF8 { u in rules.first { $0.glob.matches(u) } }
        if let rule {
            groups = rule.groups
            tenant = rule.tenant
            matched = true
        }
        guard matched else { return reject("SPIFFE ID \(id.text) matches no ids pattern") }
        let p = Principal(id: id.text, groups: groups, tenant: tenant, attributes: [
            "spiffe_id": .string(id.text), "trust_domain": .string(id.trustDomain), "svid": .string(svid),
        ])
        return ["result": "authenticated", "principal": p.json, "reason": .string("\(svid)-svid \(id.text)")]
    }

    func abstain(_ why: String) -> JSON { ["result": "abstain", "reason": .string(why)] }
    func reject(_ why: String) -> JSON { ["result": "reject", "reason": .string(why)] }

    func bearer(_ headers: [String: String]) -> String? {
        guard let raw = headers[header] else { return nil }
        let u = Array(raw.utf8)
        guard u.count > 7, String(decoding: u[0..<6], as: UTF8.self).lowercased() == "bearer", u[6] == 0x20 else {
            return nil
        }
        let token = String(decoding: u[7...], as: UTF8.self).filter { $0 != " " && $0 != "\t" }
        return token.isEmpty ? nil : token
    }
}

/// A JWKS that is already loaded.
struct StaticKeys: KeyProvider {
    let set: JWKSet
    func keys() async -> Result<JWKSet, KeysUnavailable> { .success(set) }
    func keysAfterMiss() async -> Result<JWKSet, KeysUnavailable> { .success(set) }
}

/// A SPIFFE ID (SPIFFE-ID spec §2): `spiffe://<trust-domain>/<path>`, trust domain of lowercase letters,
/// digits, `.`, `-`, `_`; path segments of letters, digits, `.`, `-`, `_`, none empty, `.` or `..`; no query,
/// fragment, port or user info.
struct SPIFFEID: Sendable, Equatable {
    let text: String
    let trustDomain: String

    init?(_ s: String) {
        guard s.hasPrefix("spiffe://"), s.utf8.count <= 2048 else { return nil }
        let rest = s.dropFirst("spiffe://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let td = String(rest[..<slash])
        guard Self.isTrustDomain(td) else { return nil }
        let path = rest[slash...]
        if !path.isEmpty {
            for segment in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
                guard !segment.isEmpty, segment != ".", segment != "..",
                    segment.utf8.allSatisfy({
                        (0x61...0x7A).contains($0) || (0x41...0x5A).contains($0) || (0x30...0x39).contains($0)
                            || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F
                    })
                else { return nil }
            }
        }
        text = s
        trustDomain = td
    }

    static func isTrustDomain(_ td: String) -> Bool {
        !td.isEmpty && td.utf8.count <= 255
            && td.utf8.allSatisfy {
                (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F
            }
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: SPIFFE.self) }
