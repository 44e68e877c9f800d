import CSodium
import MCPGJSON
import PluginKit

/// Authenticates callers by API key. Config holds only SHA-256 hashes of the keys; a presented key is hashed
/// and compared against every stored hash in constant time, so neither timing nor config reveals a key.
///
/// Keys come from the config (`keys`), a file (`keys_file`, re-read when it changes: keys rotate without a
/// restart) and an environment variable (`keys_env`); each may carry `groups`, a `tenant` and an RFC 3339
/// `expires` after which it is refused.
///
/// The key is read from `Authorization: Bearer <key>` or `X-API-Key: <key>` (or from the one header named by
/// `header`). No key → abstain, so a later identity plugin may answer; an unknown key → reject, except an
/// unknown bearer that looks like a JWT (three base64url segments), which abstains so that a JWT plugin later
/// in the chain (`oidc`, `spiffe`) can take it.
struct APIKey: SyncIdentityPlugin {
    struct Config: Decodable, Sendable {
        var keys: [JSON]?
        var keys_file: String?
        var keys_env: String?
        var reload_interval_s: Double?
        var header: String?
    }
    static let name = "apikey"
    static let version = "1.0.0"
    static var keySchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["id", "sha256"],
            "properties": [
                "id": [
                    "type": "string", "minLength": 1,
                    "description": "Principal id of the key's holder; unique among keys.",
                ],
                "sha256": [
                    "type": "string", "pattern": "^[0-9a-f]{64}$",
                    "description":
                        "SHA-256 of the key as 64 lowercase hex digits (e.g. `printf %s KEY | sha256sum`).",
                ],
                "groups": [
                    "type": "array", "items": ["type": "string"],
                    "description": "Groups of the principal, for policies.",
                ],
                "tenant": ["type": "string", "description": "Tenant of the principal."],
                "expires": [
                    "type": "string",
                    "description": "RFC 3339 date-time (`2026-12-31T23:59:59Z`) after which the key is refused.",
                ],
            ],
        ]
    }
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false,
            "properties": [
                "keys": [
                    "type": "array", "description": "Accepted API keys, stored only as SHA-256 hashes.",
                    "items": keySchema,
                ],
                "keys_file": [
                    "type": "string", "format": "path",
                    "description": .string(
                        "A file of more keys: a YAML or JSON list of entries like those of `keys` (or a mapping "
                            + "with a `keys` list), or one `id:sha256` per line. Re-read when it changes; a file "
                            + "that fails to load keeps the previous keys and is logged."),
                ],
                "keys_env": [
                    "type": "string", "minLength": 1,
                    "description": "Name of an environment variable holding more keys, in the `keys_file` formats.",
                ],
                "reload_interval_s": [
                    "type": "number", "minimum": 0, "maximum": 86400,
                    "description": "Seconds between looks at `keys_file` for changes (0: never). Default 1.",
                ],
                "header": [
                    "type": "string", "minLength": 1,
                    "description": .string(
                        "Read the key only from this HTTP header (case-insensitive; `authorization` expects "
                            + "`Bearer <key>`). Default: `Authorization: Bearer <key>`, else `X-API-Key: <key>`."),
                ],
            ],
        ]
    }

    let keys: Reloadable<[KeyEntry]>
    /// The lowercased header name to read, or nil for the default pair.
    let header: String?

    init(config: Config, host: Host) throws {
        guard sodium_init() >= 0 else { throw PluginError("apikey: libsodium failed to initialize") }
        let inline = config.keys ?? []
        guard !inline.isEmpty || config.keys_file != nil || config.keys_env != nil else {
            throw PluginError(code: -32602, "apikey: give keys, keys_file or keys_env")
        }
        let interval = config.reload_interval_s ?? 1
        guard interval.isFinite, (0...86400).contains(interval) else {
            throw PluginError(code: -32602, "apikey: reload_interval_s must be between 0 and 86400")
        }
        let file = config.keys_file
        let env = config.keys_env
        do {
            keys = try Reloadable(
                files: file.map { [$0] } ?? [], interval: .milliseconds(Int64(interval * 1000)),
                onReload: { result in
                    switch result {
                    case .success(let version):
                        host.log(.notice, "api keys reloaded", ["apikey.version": "\(version)"])
                    case .failure(let error):
                        host.log(.error, "api key reload failed; keeping the previous keys", ["error": "\(error)"])
                    }
                },
                load: { try KeyList.build(inline: inline, file: file, env: env) })
        } catch {
            throw PluginError(code: -32602, "apikey: \(error)")
        }
        if let h = config.header {
            guard !h.isEmpty else { throw PluginError(code: -32602, "apikey: header must not be empty") }
            header = h.lowercased()
        } else {
            header = nil
        }
    }

    func authenticate(_ request: AuthenticateRequest) throws -> AuthenticateResult {
        guard let key = presentedKey(request.headers) else { return .abstain(reason: "no API key presented") }
        let entries = keys.current.value
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        var k = key
        k.withUTF8 { b in _ = crypto_hash_sha256(&digest, b.baseAddress, UInt64(b.count)) }
        // Every stored digest is compared, match or not, so timing does not depend on which key (if any) matched.
        var match = -1
        for (i, entry) in entries.enumerated() {
            let equal = entry.digest.withUnsafeBytes { s in
                digest.withUnsafeBytes { d in sodium_memcmp(s.baseAddress, d.baseAddress, d.count) == 0 }
            }
            if equal && match < 0 { match = i }
        }
        guard match >= 0 else {
            if Self.looksLikeJWT(key) { return .abstain(reason: "bearer token is a JWT, not an API key") }
            return .reject(reason: "unknown API key")
        }
        let principal = entries[match].principal
        if let expires = entries[match].expires, UTCTimestamp.nowSeconds() >= expires {
            return .reject(reason: "api key \(principal.id) expired")
        }
        return .authenticated(principal, reason: "api key \(principal.id)")
    }

    /// The key from the configured header, or nil when none is presented.
    private func presentedKey(_ headers: [String: String]) -> String? {
        if let header {
            guard let value = headers[header] else { return nil }
            return header == "authorization" ? Self.bearerToken(value) : Self.trimmed(value)
        }
        if let auth = headers["authorization"], let token = Self.bearerToken(auth) { return token }
        return headers["x-api-key"].flatMap(Self.trimmed)
    }

    /// The token of `Bearer <token>` (scheme case-insensitive), or nil for other schemes or an empty token.
    private static func bearerToken(_ value: String) -> String? {
        guard let v = trimmed(value), v.utf8.count > 7, v.prefix(6).lowercased() == "bearer",
            v.dropFirst(6).first == " "
        else { return nil }
        return trimmed(String(v.dropFirst(7)))
    }

    /// `value` without leading and trailing spaces and tabs, or nil when nothing is left.
    private static func trimmed(_ value: String) -> String? {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = value.firstIndex(where: { !isSpace($0) }),
            let end = value.lastIndex(where: { !isSpace($0) })
        else { return nil }
        return String(value[start...end])
    }

    /// Three non-empty base64url segments separated by dots (a JWS compact serialization).
    static func looksLikeJWT(_ token: String) -> Bool {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.allSatisfy {
                (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || (0x30...0x39).contains($0)
                    || $0 == 0x2D || $0 == 0x5F
            }
        }
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: APIKey.self) }
