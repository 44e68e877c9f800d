import CSodium
import MCPGJSON
import PluginKit

/// Authenticates callers by API key. Config holds only SHA-256 hashes of the keys; a presented key is hashed
/// and compared against every stored hash in constant time, so neither timing nor config reveals a key.
///
/// The key is read from `Authorization: Bearer <key>` or `X-API-Key: <key>` (or from the one header named by
/// `header`). No key → abstain, so a later identity plugin may answer; an unknown key → reject.
struct APIKey: SyncIdentityPlugin {
    struct Config: Decodable, Sendable {
        struct Key: Decodable, Sendable {
            var id: String
            var sha256: String
            var groups: [String]?
            var tenant: String?
        }
        var keys: [Key]
        var header: String?
    }
    static let name = "apikey"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["keys"],
            "properties": [
                "keys": [
                    "type": "array", "description": "The accepted API keys, stored only as SHA-256 hashes.",
                    "items": [
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
                        ],
                    ],
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

    /// One accepted key: its principal and the 32-byte digest of the key.
    struct Entry: Sendable {
        var principal: Principal
        var digest: [UInt8]
    }

    let entries: [Entry]
    /// The lowercased header name to read, or nil for the default pair.
    let header: String?

    init(config: Config, host: Host) throws {
        guard sodium_init() >= 0 else { throw PluginError("apikey: libsodium failed to initialize") }
        var seenIDs: Set<String> = []
        var seenDigests: [[UInt8]: String] = [:]
        var entries: [Entry] = []
        for (i, key) in config.keys.enumerated() {
            guard !key.id.isEmpty else { throw PluginError(code: -32602, "apikey: keys[\(i)].id must not be empty") }
            guard seenIDs.insert(key.id).inserted else {
                throw PluginError(code: -32602, "apikey: duplicate key id \"\(key.id)\" (keys[\(i)])")
            }
            guard let digest = Self.decodeHex(key.sha256) else {
                throw PluginError(
                    code: -32602, "apikey: keys[\(i)] (\"\(key.id)\"): sha256 must be 64 lowercase hex digits")
            }
            if let other = seenDigests[digest] {
                throw PluginError(code: -32602, "apikey: keys \"\(other)\" and \"\(key.id)\" have the same sha256")
            }
            seenDigests[digest] = key.id
            entries.append(
                Entry(principal: Principal(id: key.id, groups: key.groups ?? [], tenant: key.tenant), digest: digest))
        }
        self.entries = entries
        if let h = config.header {
            guard !h.isEmpty else { throw PluginError(code: -32602, "apikey: header must not be empty") }
            header = h.lowercased()
        } else {
            header = nil
        }
    }

    func authenticate(_ request: AuthenticateRequest) throws -> AuthenticateResult {
        guard let key = presentedKey(request.headers) else { return .abstain(reason: "no API key presented") }
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
        guard match >= 0 else { return .reject(reason: "unknown API key") }
        let principal = entries[match].principal
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

    /// 32 bytes from exactly 64 lowercase hex digits, else nil.
    private static func decodeHex(_ hex: String) -> [UInt8]? {
        let u = Array(hex.utf8)
        guard u.count == 64 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for i in stride(from: 0, to: 64, by: 2) {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: APIKey.self) }
