import CasbinEngine
import Foundation
import MCPGJSON
import PluginKit

/// Casbin policies: a model (`model.conf`) and a policy CSV decide each query, with explain rows as reasons.
///
/// Per call, the principal's values and role grant (its groups as roles in `g`) are built once; each query
/// then fills `r`'s tokens from the query and runs the matcher over the policy rows. Allow → the deciding
/// row (`p, alice, data1, read`); a matched deny rule → deny with that row; nothing decided →
/// `on_no_match` ("no policy matched"). The model and policy files reload when they change.
struct Casbin: SyncPolicyPlugin {
    struct Config: Decodable, Sendable {
        enum OnNoMatch: String, Decodable, Sendable { case deny, abstain }
        var model: String?
        var model_text: String?
        var policy: String?
        var policy_lines: [String]?
        var request: [String]?
        var groups_as_roles: Bool?
        var on_no_match: OnNoMatch?
        var reload_interval: Double?
    }
    static let name = "casbin"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false,
            "oneOf": [["required": ["model"]], ["required": ["model_text"]]],
            "properties": [
                "model": [
                    "type": "string", "minLength": 1, "format": "path", "description": "Path of the model file (model.conf).",
                ],
                "model_text": ["type": "string", "minLength": 1, "description": "The model, inline."],
                "policy": [
                    "type": "string", "minLength": 1, "format": "path",
                    "description": "Path of the policy CSV (`p, alice, data1, read` / `g, alice, admin` lines).",
                ],
                "policy_lines": [
                    "type": "array", "items": ["type": "string"],
                    "description": "The policy CSV inline, one line per item.",
                ],
                "request": [
                    "type": "array", "minItems": 1,
                    "items": ["enum": .array(CasbinAuthorizer.Field.allCases.map { .string($0.rawValue) })],
                    "description": .string(
                        "What fills each of r's tokens, in order. Default: 3 tokens → principal.id, resource.name, "
                            + "action; 4 → principal.id, principal.tenant, resource.name, action."),
                ],
                "groups_as_roles": [
                    "type": "boolean",
                    "description":
                        "Make the principal a member of each of its groups in `g` (per tenant domain when g has domains). Default true.",
                ],
                "on_no_match": [
                    "enum": ["deny", "abstain"],
                    "description": "What to answer when no policy row decided. Default deny.",
                ],
                "reload_interval": [
                    "type": "number", "minimum": 0, "maximum": 86400,
                    "description": "Seconds between checks of the model/policy files for changes; 0 turns reloading off. Default 1.",
                ],
            ],
        ]
    }

    let reloadable: Reloadable<CasbinAuthorizer>
    let onNoMatch: Decision.Effect

    init(config: Config, host: PluginKit.Host) throws {
        guard (config.model == nil) != (config.model_text == nil) else {
            throw PluginError(code: -32602, "casbin: set exactly one of `model` and `model_text`")
        }
        guard config.policy == nil || config.policy_lines == nil else {
            throw PluginError(code: -32602, "casbin: set at most one of `policy` and `policy_lines`")
        }
        onNoMatch = config.on_no_match == .abstain ? .abstain : .deny
        let files = [config.model, config.policy].compactMap { $0 }
        let seconds = config.reload_interval ?? 1
        guard seconds.isFinite, seconds >= 0, seconds <= 86_400 else {
            throw PluginError(code: -32602, "casbin: reload_interval must be between 0 and 86400 seconds")
        }
        let interval = Duration.milliseconds(Int64(seconds * 1000))
        reloadable = try Reloadable(files: files, interval: interval, onReload: { result in
            switch result {
            case .success(let version): host.log(.notice, "policy reloaded", ["casbin.version": String(version)])
            case .failure(let error):
                host.log(.error, "policy reload failed; keeping the previous policy", ["error": "\(error)"])
            }
        }) { try Self.load(config) }
    }

    /// Reads and builds everything; any problem is a `PluginError` naming file:line:col.
    static func load(_ config: Config) throws -> CasbinAuthorizer {
        func read(_ path: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw PluginError(code: -32602, "\(path): cannot read the file")
            }
            return String(decoding: data, as: UTF8.self)
        }
        let modelText = try config.model.map(read) ?? config.model_text ?? ""
        let policyText = try config.policy.map(read) ?? (config.policy_lines ?? []).joined(separator: "\n")
        do {
            let enforcer = try CasbinEnforcer(modelText: modelText, policyText: policyText,
                                              modelFile: config.model ?? "model_text",
                                              policyFile: config.policy ?? "policy_lines")
            do {
                return try CasbinAuthorizer(enforcer: enforcer, fields: config.request,
                                            groupsAsRoles: config.groups_as_roles ?? true)
            } catch {
                throw PluginError(code: -32602, "casbin: \(error.message)")
            }
        } catch let error as CasbinLoadError {
            throw PluginError(code: -32602, error.description)
        }
    }

    var policyVersion: String { String(reloadable.current.version) }

    func authorize(_ request: AuthorizeRequest) throws -> [Decision] {
        let authorizer = reloadable.current.value
        let p = request.principal
        let call = authorizer.prepare(principalID: p.id, groups: p.groups, tenant: p.tenant, attributes: p.attributes,
                                      context: request.context)
        var decisions: [Decision] = []
        decisions.reserveCapacity(request.queries.count)
        for q in request.queries {
            switch authorizer.decide(call, action: q.action, resourceType: q.resource.type,
                                     resourceName: q.resource.name, resourceBackend: q.resource.backend) {
            case .allow(let reason): decisions.append(Decision(.allow, reasons: [reason]))
            case .deny(let reason): decisions.append(Decision(.deny, reasons: [reason]))
            case .noMatch: decisions.append(Decision(onNoMatch, reasons: ["no policy matched"]))
            }
        }
        return decisions
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Casbin.self) }
