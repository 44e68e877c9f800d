import Logging
import MCPGJSON

/// How the answers of several identity plugins combine (`chains.identity` in config).
public enum IdentityMode: String, Sendable, CaseIterable {
    /// Plugins are asked in order: the first that authenticates wins, a reject stops the chain, a plugin that
    /// abstains passes the caller on.
    case first
    /// Every plugin must authenticate (e.g. a client certificate and an API key); their principals are merged.
    /// An abstain or a reject anywhere refuses the caller; the chain stops at the first refusal.
    case all
}

/// One identity plugin's answer to one caller, as the audit record shows it.
public struct IdentityAnswer: Sendable, Equatable {
    /// The plugin's label (`identity[0]`).
    public var plugin: String
    /// "authenticated", "abstain", "reject", or "error" when the plugin failed or answered nonsense.
    public var result: String
    public var reason: String

    public init(plugin: String, result: String, reason: String) {
        self.plugin = plugin
        self.result = result
        self.reason = reason
    }

    var json: JSON { ["plugin": .string(plugin), "result": .string(result), "reason": .string(reason)] }
}

/// The RFC 6750 challenge of a refusal (`WWW-Authenticate: Bearer error="…"`), as an identity plugin gave it.
public struct AuthChallenge: Sendable, Equatable {
    /// `invalid_request`, `invalid_token` or `insufficient_scope`.
    public var error: String
    /// Space-separated scopes the request needs (AUTH-4, AUTH-5).
    public var scope: String?
    public var errorDescription: String?

    public init(error: String, scope: String? = nil, errorDescription: String? = nil) {
        self.error = error
        self.scope = scope
        self.errorDescription = errorDescription
    }

    /// The challenge in a reject answer, or nil when it has none or an unusable one (an error code that is
    /// not an RFC 6750 token is dropped, not passed on).
    init?(json: JSON?) {
        guard let error = json?["error"]?.stringValue, !error.isEmpty,
            error.utf8.allSatisfy({ $0 == 0x5F || (0x61...0x7A).contains($0) })
        else { return nil }
        self.error = error
        scope = json?["scope"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        errorDescription = json?["error_description"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// The identity chain: asks its plugins about one caller and combines their answers (see `IdentityMode`).
/// Fail closed: a plugin that fails, times out or answers something malformed refuses the caller.
public struct IdentityChain: Sendable {
    public let stages: [Stage]
    public let mode: IdentityMode
    let timeout: Duration
    let logger: Logger

    public init(stages: [Stage], mode: IdentityMode, timeout: Duration, logger: Logger) {
        self.stages = stages
        self.mode = mode
        self.timeout = timeout
        self.logger = logger
    }

    /// What the chain concluded, before it is audited.
    enum Outcome {
        case authenticated(Principal, plugins: [String], reason: String, answers: [IdentityAnswer])
        case refused(plugin: String?, reason: String, answers: [IdentityAnswer], challenge: AuthChallenge?,
                     status: Int)
    }

    func run(_ request: JSON) async -> Outcome {
        var answers: [IdentityAnswer] = []
        var principals: [(label: String, principal: Principal, reason: String)] = []
        for stage in stages {
            let answer = await ask(stage, request)
            answers.append(answer.answer)
            switch answer {
            case .authenticated(let p, let a):
                principals.append((stage.label, p, a.reason))
                if mode == .first { return .authenticated(p, plugins: [stage.label], reason: a.reason, answers: answers) }
            case .abstain(let a):
                if mode == .all {
                    return .refused(plugin: stage.label, reason: "\(stage.label) abstained: \(a.reason)",
                                    answers: answers, challenge: nil, status: 401)
                }
            case .reject(let a, let challenge, let status):
                return .refused(plugin: stage.label, reason: a.reason, answers: answers, challenge: challenge,
                                status: status)
            case .failed(let a):
                return .refused(plugin: stage.label, reason: a.reason, answers: answers, challenge: nil, status: 401)
            }
        }
        guard mode == .all, !principals.isEmpty else {
            return .refused(plugin: nil, reason: "no identity plugin authenticated the caller", answers: answers,
                            challenge: nil, status: 401)
        }
        switch Self.merge(principals.map { ($0.label, $0.principal) }) {
        case .success(let merged):
            return .authenticated(merged, plugins: principals.map(\.label),
                                  reason: principals.map(\.reason).joined(separator: "; "), answers: answers)
        case .failure(let conflict):
            return .refused(plugin: conflict.plugin, reason: conflict.reason, answers: answers, challenge: nil,
                            status: 401)
        }
    }

    struct MergeConflict: Error {
        var plugin: String
        var reason: String
    }

    /// The principal of an `all` chain: the id from the first plugin, groups unioned in order, the one tenant
    /// the plugins name (two different tenants are a conflict), attributes merged with the earlier plugin
    /// winning a key both set.
    static func merge(_ principals: [(label: String, principal: Principal)]) -> Result<Principal, MergeConflict> {
        guard var merged = principals.first?.principal else {
            return .failure(MergeConflict(plugin: "", reason: "no principal"))
        }
        var tenantFrom = principals[0].label
        var seen = Set(merged.groups)
        for (label, p) in principals.dropFirst() {
            for g in p.groups where seen.insert(g).inserted { merged.groups.append(g) }
            if let t = p.tenant {
                if let mine = merged.tenant, mine != t {
                    return .failure(MergeConflict(
                        plugin: label, reason: "tenant \"\(t)\" from \(label) disagrees with \"\(mine)\" from \(tenantFrom)"))
                }
                if merged.tenant == nil {
                    merged.tenant = t
                    tenantFrom = label
                }
            }
            for m in p.attributes where merged.attributes[m.key] == nil { merged.attributes[m.key] = m.value }
        }
        return .success(merged)
    }

    enum StageAnswer {
        case authenticated(Principal, IdentityAnswer)
        case abstain(IdentityAnswer)
        case reject(IdentityAnswer, AuthChallenge?, status: Int)
        case failed(IdentityAnswer)

        var answer: IdentityAnswer {
            switch self {
            case .authenticated(_, let a), .abstain(let a), .reject(let a, _, _), .failed(let a): return a
            }
        }
    }

    func ask(_ stage: Stage, _ request: JSON) async -> StageAnswer {
        func failed(_ why: String) -> StageAnswer {
            .failed(IdentityAnswer(plugin: stage.label, result: "error", reason: "identity plugin failed: \(why)"))
        }
        switch await stage.caller.call(op: "authenticate", request: request, timeout: timeout, emit: nil) {
        case .failure(let f):
            logger.error("identity plugin failed", metadata: ["mcpg.plugin.id": "\(stage.label)", "mcpg.error": "\(f.summary)"])
            return failed(f.summary)
        case .success(let answer):
            let reason = answer["reason"]?.stringValue ?? ""
            switch answer["result"]?.stringValue {
            case "authenticated":
                guard let p = answer["principal"].flatMap(Principal.init(json:)) else {
                    logger.error("identity plugin answered without a principal", metadata: ["mcpg.plugin.id": "\(stage.label)"])
                    return failed("no principal")
                }
                return .authenticated(p, IdentityAnswer(plugin: stage.label, result: "authenticated", reason: reason))
            case "abstain":
                return .abstain(IdentityAnswer(plugin: stage.label, result: "abstain", reason: reason))
            case "reject":
                let challenge = AuthChallenge(json: answer["challenge"])
                // Only insufficient scope is a 403 (AUTH-5); any other refusal is a 401, whatever else is asked.
                let status = challenge?.error == "insufficient_scope" ? 403 : 401
                return .reject(IdentityAnswer(plugin: stage.label, result: "reject", reason: reason), challenge,
                               status: status)
            default:
                logger.error("identity plugin answered an unknown result", metadata: ["mcpg.plugin.id": "\(stage.label)"])
                return failed("unknown result")
            }
        }
    }

    /// RFC 9728 protected resource metadata from the plugins that publish it (op `resource_metadata`; a plugin
    /// answering -32601 publishes none), merged: `authorization_servers`, `scopes_supported` and
    /// `bearer_methods_supported` are unions in chain order. Nil when no plugin publishes any. A plugin that
    /// fails otherwise is logged and skipped.
    public func resourceMetadata() async -> JSONObject? {
        var servers: [String] = []
        var scopes: [String] = []
        var methods: [String] = []
        var any = false
        func add(_ values: JSON?, to list: inout [String]) {
            for v in values?.arrayValue ?? [] {
                if let s = v.stringValue, !s.isEmpty, !list.contains(s) { list.append(s) }
            }
        }
        for stage in stages {
            switch await stage.caller.call(op: "resource_metadata", request: .object([:]), timeout: timeout, emit: nil) {
            case .failure(let f):
                if case .plugin(let code, _) = f.kind, code == -32601 { continue }
                logger.warning("identity plugin failed to give resource metadata",
                               metadata: ["mcpg.plugin.id": "\(stage.label)", "mcpg.error": "\(f.summary)"])
            case .success(let m):
                any = true
                add(m["authorization_servers"], to: &servers)
                add(m["scopes_supported"], to: &scopes)
                add(m["bearer_methods_supported"], to: &methods)
            }
        }
        guard any else { return nil }
        var o: JSONObject = ["authorization_servers": .array(servers.map { .string($0) })]
        if !scopes.isEmpty { o["scopes_supported"] = .array(scopes.map { .string($0) }) }
        o["bearer_methods_supported"] = .array((methods.isEmpty ? ["header"] : methods).map { .string($0) })
        return o
    }
}

extension Gateway {
    /// The identity plugins' RFC 9728 metadata, merged (see `IdentityChain.resourceMetadata`); the HTTP front
    /// serves it with its own `resource` URL. Asked once at boot.
    public func identityResourceMetadata() async -> JSONObject? { await identityChain.resourceMetadata() }

    /// How the identity chain combines its plugins' answers.
    public var identityMode: IdentityMode { identityChain.mode }
}
