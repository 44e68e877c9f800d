import CedarEngine
import MCPGJSON
import PluginKit

/// Authorizes with Cedar policies (`.cedar` files), an optional entity file and an optional JSON schema.
///
/// The principal is `User::"<id>"` (type configurable) with attributes `id`, `groups`, `tenant` and the
/// identity's attributes, and parents `Group::"<g>"`; the action is `Action::"<method>"`; the resource is
/// `Tool::"<name>"` (or `Prompt`, `Resource`, `ResourceTemplate`) with attributes `name`, `backend` and
/// parent `Backend::"<backend>"`; the context is the request context as a record. A satisfied forbid denies
/// (reasons: its ids); else a satisfied permit allows (reasons: its ids); else `on_no_match` with
/// "no permit matched". A policy that fails to evaluate is skipped, as Cedar does; when nothing else decided,
/// the failures deny with reasons `"<id>: error: <message>"`. Files reload when they change.
struct Cedar: SyncPolicyPlugin {
    struct Config: Decodable, Sendable {
        enum OnNoMatch: String, Decodable, Sendable { case deny, abstain }
        var policies: [String]
        var entities: String?
        var schema: String?
        var principal_type: String?
        var group_type: String?
        var on_no_match: OnNoMatch?
        var reload_interval: Double?
    }

    static let name = "cedar"
    static let version = "1.0.0"
    static var configSchema: JSON {
        func str(_ description: String) -> JSON {
            ["type": "string", "minLength": 1, "description": .string(description)]
        }
        func file(_ description: String) -> JSON {
            ["type": "string", "minLength": 1, "format": "path", "description": .string(description)]
        }
        return [
            "type": "object", "additionalProperties": false, "required": ["policies"],
            "properties": [
                "policies": [
                    "type": "array", "minItems": 1, "items": ["type": "string", "minLength": 1, "format": "path"],
                    "description":
                        "Cedar policy files (.cedar), loaded as one policy set. A policy's id in decisions is its @id annotation, else <file name>#<index in file>.",
                ],
                "entities": file(
                    "Cedar entity JSON file (e.g. groups with their parent groups, actions in action groups, tools with attributes)."
                ),
                "schema": file(
                    "Cedar JSON schema file; when set, every entity type and action a policy names must be declared in it."
                ),
                "principal_type": str("Entity type of the principal. Default: User."),
                "group_type": str("Entity type of the principal's groups (its parents). Default: Group."),
                "on_no_match": [
                    "enum": ["deny", "abstain"],
                    "description": "What to answer when no policy permits or forbids. Default: deny.",
                ],
                "reload_interval": [
                    "type": "number", "minimum": 0, "maximum": 86400,
                    "description": "Seconds between checks of the files for changes; 0 turns reloading off. Default: 1.",
                ],
            ],
        ]
    }

    let reloadable: Reloadable<CedarGatewayPolicy>
    let onNoMatch: Config.OnNoMatch

    init(config: Config, host: Host) throws {
        guard !config.policies.isEmpty else { throw PluginError(code: -32602, "cedar: policies must not be empty") }
        let policies = config.policies
        let entities = config.entities
        let schema = config.schema
        let principalType = config.principal_type ?? "User"
        let groupType = config.group_type ?? "Group"
        for (key, value) in [("principal_type", principalType), ("group_type", groupType)] {
            guard (try? CedarParser.parseTypeName(value)) == value else {
                throw PluginError(code: -32602, "cedar: \(key) \"\(value)\" is not a Cedar entity type name")
            }
        }
        let load: @Sendable () throws -> CedarGatewayPolicy = {
            try CedarGatewayPolicy.load(
                policyFiles: policies, entitiesFile: entities, schemaFile: schema, principalType: principalType,
                groupType: groupType)
        }
        let files = policies + [entities, schema].compactMap { $0 }
        let seconds = config.reload_interval ?? 1
        guard seconds.isFinite, seconds >= 0, seconds <= 86_400 else {
            throw PluginError(code: -32602, "cedar: reload_interval must be between 0 and 86400 seconds")
        }
        do {
            reloadable = try Reloadable(
                files: files, interval: .milliseconds(Int64(seconds * 1000)),
                onReload: { result in
                    switch result {
                    case .success(let version):
                        host.log(.notice, "policy reloaded", ["cedar.version": String(version)])
                    case .failure(let error):
                        host.log(.error, "policy reload failed; keeping the previous policy", ["error": "\(error)"])
                    }
                }, load: load)
        } catch let e as CedarLoadError {
            throw PluginError(code: -32602, e.description)
        }
        onNoMatch = config.on_no_match ?? .deny
    }

    var policyVersion: String { String(reloadable.current.version) }

    func authorize(_ request: AuthorizeRequest) throws -> [Decision] {
        let policy = reloadable.current.value
        let p = request.principal
        let outcomes = policy.decide(
            principal: .init(id: p.id, groups: p.groups, tenant: p.tenant, attributes: p.attributes),
            queries: request.queries.map {
                .init(action: $0.action, resourceType: $0.resource.type, name: $0.resource.name,
                      backend: $0.resource.backend)
            },
            context: request.context)
        return outcomes.map { outcome in
            switch outcome {
            case .allow(let ids): return Decision(.allow, reasons: ids)
            case .deny(let reasons): return Decision(.deny, reasons: reasons)
            case .noMatch: return Decision(onNoMatch == .deny ? .deny : .abstain, reasons: ["no permit matched"])
            }
        }
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Cedar.self) }
