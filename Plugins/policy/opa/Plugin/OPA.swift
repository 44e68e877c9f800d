#if canImport(Glibc)
import Glibc
#endif
import MCPGJSON
import OPAClient
import PluginKit
import RegoEngine

/// Authorization by Rego policies, evaluated in-process (the `rego:` block) or by an OPA server through its
/// Data API (the `remote:` block); exactly one of the two.
///
/// Remote mode sends the same input without `context.time` and `context.session` (OPA has its own clock, and
/// answers are cached per input); the document's value `true` or `{"allow": true}` allows, `false` or
/// `{"allow": false}` denies, undefined answers `on_no_match`, and a failed request (timeout, refused, non-200)
/// denies: fail closed.
///
/// Each query is evaluated with input `{"principal": {id, groups, tenant, attributes}, "action", "resource":
/// {type, name, backend}, "context"}`. The decision query's value `true` allows, `false` denies, undefined
/// answers `on_no_match`, and an error or a non-boolean value denies with the problem as reason. Reasons come
/// from `reasons_query` when it yields strings. Policies and data are compiled once per version and hot-reload;
/// within one call, rules that read only `input.principal` / `input.context` are computed once for all queries.
struct OPA: PolicyPlugin {
    struct Config: Decodable, Sendable {
        struct Rego: Decodable, Sendable {
            var policies: [String]
            var data: String?
            var query: String?
            var reasons_query: String?
        }
        enum OnNoMatch: String, Decodable, Sendable { case deny, abstain }
        var rego: Rego?
        var remote: OPAClient.Config?
        var on_no_match: OnNoMatch?
        var reload_interval: Double?
    }

    static let name = "opa"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false,
            "properties": [
                "rego": [
                    "type": "object", "additionalProperties": false, "required": ["policies"],
                    "description": "Evaluate Rego policies in-process.",
                    "properties": [
                        "policies": [
                            "type": "array", "minItems": 1, "items": ["type": "string", "format": "path"],
                            "description": "Rego files (v1 syntax) to load; relative to the config's directory.",
                        ],
                        "data": [
                            "type": "string", "format": "path",
                            "description": "JSON file with base documents under `data` (an object). Optional.",
                        ],
                        "query": [
                            "type": "string",
                            "description":
                                "Decision query; true allows, false denies. Default \"data.mcpg.authz.allow\".",
                        ],
                        "reasons_query": [
                            "type": "string",
                            "description":
                                "Set or array of strings used as the decision's reasons when defined. Default \"data.mcpg.authz.reasons\".",
                        ],
                    ],
                ],
                "remote": OPAClient.configSchema,
                "on_no_match": [
                    "enum": ["deny", "abstain"],
                    "description": "Answer when the decision query is undefined. Default deny.",
                ],
                "reload_interval": [
                    "type": "number", "minimum": 0, "maximum": 86400,
                    "description": "Seconds between checks of the policy and data files for changes; 0 turns reloading off. Default 1.",
                ],
            ],
        ]
    }

    enum Mode: Sendable {
        case rego(Reloadable<RegoAuthorizer>)
        case remote(OPAClient)
    }
    let mode: Mode
    let noMatch: Decision.Effect

    init(config: Config, host: Host) throws {
        noMatch = config.on_no_match == .abstain ? .abstain : .deny
        switch (config.rego, config.remote) {
        case (let rego?, nil):
            mode = .rego(try Self.inProcess(rego, config: config, host: host))
        case (nil, let remote?):
            do {
                mode = .remote(try OPAClient(config: remote, log: { message, meta in host.log(.warning, message, meta) }))
            } catch {
                throw PluginError(code: -32602, "opa: remote: \(error)")
            }
        default:
            throw PluginError(code: -32602, "opa: give exactly one of `rego` (in-process) and `remote` (an OPA server)")
        }
    }

    static func inProcess(_ rego: Config.Rego, config: Config, host: Host) throws -> Reloadable<RegoAuthorizer> {
        let query = rego.query ?? "data.mcpg.authz.allow"
        let reasonsQuery = rego.reasons_query ?? "data.mcpg.authz.reasons"
        let files = rego.policies + (rego.data.map { [$0] } ?? [])
        let interval = min(max(0, config.reload_interval ?? 1), 86_400)
        return try Reloadable(
            files: files, interval: .milliseconds(Int64(interval * 1000)),
            onReload: { result in
                switch result {
                case .success(let version):
                    host.log(.notice, "policy reloaded", ["mcpg.policy.version": String(version)])
                case .failure(let error):
                    host.log(.error, "policy reload failed; keeping the previous policy", ["error": "\(error)"])
                }
            }
        ) {
            try Self.load(policies: rego.policies, data: rego.data, query: query, reasonsQuery: reasonsQuery)
        }
    }

    /// Reads and compiles everything; any problem is a `PluginError` naming the file and line:col.
    static func load(policies: [String], data: String?, query: String, reasonsQuery: String) throws
        -> RegoAuthorizer
    {
        do {
            return try RegoAuthorizer.load(policyFiles: policies, dataFile: data, query: query,
                                           reasonsQuery: reasonsQuery)
        } catch {
            throw PluginError(code: -32602, "\(error)")
        }
    }

    var policyVersion: String {
        switch mode {
        case .rego(let r): return String(r.current.version)
        // The server's policy can change at any time; answers are cached only for the client's TTL, and the
        // gateway's list cache keys on this, so it changes with every TTL window.
        case .remote(let c):
            let ttl = max(1, c.config.cacheTTLMs)
            return "remote-" + String(Self.epochMillis() / ttl)
        }
    }

    static func epochMillis() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }

    func authorize(_ request: AuthorizeRequest) async throws -> [Decision] {
        switch mode {
        case .rego(let r): return decideInProcess(r.current.value, request)
        case .remote(let c): return await decideRemote(c, request)
        }
    }

    func decideInProcess(_ authorizer: RegoAuthorizer, _ request: AuthorizeRequest) -> [Decision] {
        let p = request.principal
        let principal = RegoAuthorizer.principal(id: p.id, groups: p.groups, tenant: p.tenant,
                                                 attributes: p.attributes)
        let queries = request.queries.map {
            RegoAuthorizer.Query(action: $0.action, type: $0.resource.type, name: $0.resource.name,
                                 backend: $0.resource.backend)
        }
        return authorizer.decide(principal: principal, context: request.context, queries: queries).map { o in
            switch o.effect {
            case .allow: return Decision(.allow, reasons: o.reasons)
            case .deny: return Decision(.deny, reasons: o.reasons)
            case .noMatch: return Decision(noMatch, reasons: o.reasons)
            }
        }
    }

    func decideRemote(_ client: OPAClient, _ request: AuthorizeRequest) async -> [Decision] {
        var context = request.context
        context["time"] = nil
        context["session"] = nil
        let shared: JSONObject = ["principal": request.principal.json, "context": .object(context)]
        let queries: [JSON] = request.queries.map { q in
            ["action": .string(q.action),
             "resource": ["type": .string(q.resource.type), "name": .string(q.resource.name),
                          "backend": .string(q.resource.backend)]]
        }
        let document = client.endpoint
        return await client.decide(queries: queries, shared: shared).map { outcome in
            switch outcome {
            case .value(.bool(true)): return Decision(.allow, reasons: [document])
            case .value(.bool(false)): return Decision(.deny, reasons: ["denied by \(document)"])
            case .value(let v):
                // `{"allow": bool, "reasons": [string]}`, as a document that explains itself answers.
                let reasons = v["reasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
                switch v["allow"] {
                case .bool(true)?: return Decision(.allow, reasons: reasons.isEmpty ? [document] : reasons)
                case .bool(false)?: return Decision(.deny, reasons: reasons.isEmpty ? ["denied by \(document)"] : reasons)
                default: return Decision(.deny, reasons: ["\(document) answered \(v.typeName), not a boolean"])
                }
            case .undefined: return Decision(noMatch, reasons: ["\(document) undefined"])
            case .failure(let why): return Decision(.deny, reasons: ["opa unavailable: \(why)"])
            }
        }
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: OPA.self) }
