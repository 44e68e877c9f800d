import JWTVerifier
import MCPGJSON
import PluginKit

extension OIDC {
    /// The plugin's `config` block (snake_case keys as in `configSchema`).
    struct Config: Decodable, Sendable {
        struct TLS: Decodable, Sendable {
            var ca_file: String?
        }

        /// `audience` is one resource URI or a list of them.
        struct Audiences: Decodable, Sendable {
            var values: [String]
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let one = try? c.decode(String.self) {
                    values = [one]
                } else {
                    values = try c.decode([String].self)
                }
            }
        }

        var issuer: String
        var audience: Audiences
        var jwks_file: String?
        var jwks_uri: String?
        var algorithms: [String]?
        var clock_skew_s: Double?
        var required_scopes: [String]?
        var scopes_supported: [String]?
        var principal_claim: String?
        var groups_claim: String?
        var tenant_claim: String?
        var attribute_claims: [String]?
        var jwks_cache_s: Double?
        var jwks_min_refresh_s: Double?
        var http_timeout_ms: Int?
        var tls: TLS?
        var header: String?
    }

    static var configSchema: JSON {
        let claimPath: JSON = ["type": "string", "minLength": 1]
        let algorithms: JSON = .array(JWSAlgorithm.allCases.map { .string($0.rawValue) })
        return [
            "type": "object", "additionalProperties": false, "required": ["issuer", "audience"],
            "properties": [
                "issuer": [
                    "type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
                    "description":
                        "The OpenID Connect issuer: tokens' `iss` must equal it byte for byte. https (plain http only to a loopback host).",
                ],
                "audience": [
                    "description":
                        "The gateway's resource URI (RFC 8707), or a list of them: a token's `aud` must contain one.",
                    "oneOf": [
                        ["type": "string", "minLength": 1],
                        ["type": "array", "minItems": 1, "items": ["type": "string", "minLength": 1]],
                    ],
                ],
                "jwks_file": [
                    "type": "string", "minLength": 1, "format": "path",
                    "description": "A static JWKS file (reloaded when it changes) instead of fetching keys.",
                ],
                "jwks_uri": [
                    "type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
                    "description":
                        "Fetch keys from this JWKS URL instead of discovering it at <issuer>/.well-known/openid-configuration.",
                ],
                "algorithms": [
                    "type": "array", "minItems": 1, "items": ["enum": algorithms],
                    "description":
                        "JWS algorithms accepted (default all of RS256, PS256, ES256, ES384, EdDSA); `none` and HS* are never allowed.",
                ],
                "clock_skew_s": [
                    "type": "number", "minimum": 0, "maximum": 3600, "default": 60,
                    "description": "Seconds of tolerance for exp, nbf and iat.",
                ],
                "required_scopes": [
                    "type": "array", "items": ["type": "string", "minLength": 1, "pattern": "^[^ \"\\\\]+$"],
                    "description":
                        "Scopes every token must grant (from `scope` or `scp`); a token without them is refused with 403 insufficient_scope.",
                ],
                "scopes_supported": [
                    "type": "array", "items": ["type": "string", "minLength": 1, "pattern": "^[^ \"\\\\]+$"],
                    "description":
                        "Scopes advertised in the protected resource metadata (RFC 9728). Default: required_scopes.",
                ],
                "principal_claim": claimPath.with("description", "Claim holding the principal id. Default `sub`."),
                "groups_claim": claimPath.with(
                    "description",
                    "Claim holding the groups (array or string); dotted paths like `realm_access.roles` reach into objects. Default `groups`."),
                "tenant_claim": claimPath.with("description", "Claim holding the tenant (dotted path allowed)."),
                "attribute_claims": [
                    "type": "array", "items": claimPath,
                    "description":
                        "Claims copied into principal.attributes under their names (dotted paths allowed); `iss` and `scopes` are always there.",
                ],
                "jwks_cache_s": [
                    "type": "number", "minimum": 0, "maximum": 86400, "default": 300,
                    "description":
                        "Seconds fetched keys stay fresh (a shorter Cache-Control max-age from the JWKS response wins); stale keys serve while a refresh runs.",
                ],
                "jwks_min_refresh_s": [
                    "type": "number", "minimum": 0, "maximum": 86400, "default": 30,
                    "description":
                        "Least seconds between fetches caused by unknown key ids or failures, so made-up kids cannot flood the issuer.",
                ],
                "http_timeout_ms": [
                    "type": "integer", "minimum": 1, "maximum": 60000, "default": 5000,
                    "description": "Deadline for one request to the issuer, in milliseconds.",
                ],
                "tls": [
                    "type": "object", "additionalProperties": false,
                    "description": "TLS settings for fetching from the issuer.",
                    "properties": [
                        "ca_file": [
                            "type": "string", "minLength": 1, "format": "path",
                            "description": "PEM file of CA certificates to trust instead of the system roots.",
                        ]
                    ],
                ],
                "header": [
                    "type": "string", "minLength": 1,
                    "description":
                        "HTTP header carrying the token (case-insensitive). Default `authorization`, as `Bearer <token>`; another header may hold the bare token.",
                ],
            ],
        ]
    }
}

extension JSON {
    /// This object with one member set.
    func with(_ key: String, _ value: JSON) -> JSON {
        guard case .object(var o) = self else { return self }
        o[key] = value
        return .object(o)
    }
}
