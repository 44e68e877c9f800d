import MCPGJSON
import PluginKit

/// Accepts any caller as one fixed principal, but only from loopback peers (and stdio). Anywhere else it
/// rejects, even when configured, so a gateway exposed on a network never runs anonymous by accident.
struct Anonymous: SyncIdentityPlugin {
    struct Config: Decodable, Sendable {
        var principal: String?
        var groups: [String]?
    }
    static let name = "anonymous"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false,
            "properties": [
                "principal": ["type": "string", "description": "Principal id given to loopback callers.", "default": "anonymous"],
                "groups": ["type": "array", "items": ["type": "string"], "description": "Groups of that principal."],
            ],
        ]
    }

    let principal: Principal

    init(config: Config, host: Host) throws {
        principal = Principal(id: config.principal ?? "anonymous", groups: config.groups ?? [])
    }

    func authenticate(_ request: AuthenticateRequest) throws -> AuthenticateResult {
        guard request.peerIsLoopback else {
            return .reject(reason: "anonymous access is only allowed from loopback")
        }
        return .authenticated(principal, reason: "loopback peer")
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Anonymous.self) }
