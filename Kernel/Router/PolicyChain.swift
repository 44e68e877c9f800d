import Logging
import MCPGJSON

/// How the answers of several policy plugins combine (`chains.policy` in config).
public enum PolicyMode: String, Sendable, CaseIterable {
    /// Every plugin is asked; any deny wins; at least one plugin must allow. A plugin that abstains has no say.
    case all
    /// Plugins are asked in order; the first one that does not abstain decides.
    case first
}

/// What a policy decision is about: a tool, prompt, resource or resource template, and the backend serving it.
public struct PolicyTarget: Sendable, Equatable {
    /// MCP method: "tools/call", "tools/list", "prompts/get", …
    public var action: String
    /// "tool", "prompt", "resource" or "resource_template".
    public var type: String
    public var name: String
    public var backend: String

    public init(action: String, type: String = "tool", name: String, backend: String) {
        self.action = action
        self.type = type
        self.name = name
        self.backend = backend
    }

    var json: JSON {
        ["action": .string(action), "resource": ["type": .string(type), "name": .string(name), "backend": .string(backend)]]
    }
}

/// The chain's verdict on one target, with every plugin's answer (they go into the audit record).
public struct PolicyVerdict: Sendable, Equatable {
    public struct Answer: Sendable, Equatable {
        public var plugin: String
        /// "allow", "deny", "abstain", or "error" when the plugin failed (counted as deny).
        public var effect: String
        public var reasons: [String]
    }
    public var allow: Bool
    /// The plugins asked, in order. Plugins not asked (the query was already decided) are absent.
    public var answers: [Answer] = []
    /// False when a plugin failed and the verdict is a fail-closed deny (not worth caching).
    public var settled = true

    /// The reasons in one list, each prefixed with its plugin's label ("cedar:eng-tools"); "default deny" when no
    /// plugin had an opinion.
    public var reasons: [String] {
        var r: [String] = []
        for a in answers where a.effect != "abstain" {
            r += (a.reasons.isEmpty ? [a.effect] : a.reasons).map { "\(a.plugin):\($0)" }
        }
        if r.isEmpty { r.append("default deny") }
        return r
    }

    /// The `decision` object of an audit record.
    public func auditJSON(mode: PolicyMode) -> JSON {
        [
            "effect": .string(allow ? "allow" : "deny"), "mode": .string(mode.rawValue),
            "reasons": .array(reasons.map { .string($0) }),
            "plugins": .array(answers.map { a in
                ["plugin": .string(a.plugin), "effect": .string(a.effect), "reasons": .array(a.reasons.map { .string($0) })]
            }),
        ]
    }
}

/// The policy chain: asks its plugins about a batch of targets and combines their answers. Deny by default:
/// a target no plugin allows is denied, and a failing or malformed plugin denies (fail closed).
public struct PolicyChain: Sendable {
    public let stages: [Stage]
    public let mode: PolicyMode
    let timeout: Duration
    let logger: Logger

    public init(stages: [Stage], mode: PolicyMode, timeout: Duration, logger: Logger) {
        self.stages = stages
        self.mode = mode
        self.timeout = timeout
        self.logger = logger
    }

    /// Decides every target for one principal and context. In `all` mode a target stops being asked about
    /// after its first deny; in `first` mode after its first allow or deny.
    public func decide(_ principal: Principal, _ targets: [PolicyTarget], context: JSONObject) async -> [PolicyVerdict] {
        var verdicts = [PolicyVerdict](repeating: PolicyVerdict(allow: false), count: targets.count)
        // Targets still open, as indices into `targets`.
        var open = Array(targets.indices)
        var allowed = [Bool](repeating: false, count: targets.count)
        let principalJSON = principal.json
        for stage in stages where !open.isEmpty {
            let request: JSON = [
                "principal": principalJSON,
                "queries": .array(open.map { targets[$0].json }),
                "context": .object(context),
            ]
            let answer = await stage.caller.call(op: "authorize", request: request, timeout: timeout, emit: nil)
            guard case .success(let a) = answer, let ds = a["decisions"]?.arrayValue, ds.count == open.count else {
                let why: String
                if case .failure(let f) = answer {
                    why = f.summary
                    logger.error("policy plugin failed", metadata: ["mcpg.plugin.id": "\(stage.label)", "mcpg.error": "\(why)"])
                } else {
                    why = "malformed decisions"
                    logger.error("policy plugin answered malformed decisions", metadata: ["mcpg.plugin.id": "\(stage.label)"])
                }
                for i in open {
                    verdicts[i].answers.append(.init(plugin: stage.label, effect: "error", reasons: ["policy plugin failed: \(why)"]))
                    verdicts[i].settled = false
                    allowed[i] = false
                }
                open = []
                break
            }
            var stillOpen: [Int] = []
            stillOpen.reserveCapacity(open.count)
            for (k, i) in open.enumerated() {
                let d = ds[k]
                let reasons = d["reasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
                // Anything but an explicit allow or abstain is a deny: an unknown effect must not let a call through.
                let effect: String
                switch d["effect"]?.stringValue {
                case "allow": effect = "allow"
                case "abstain": effect = "abstain"
                default: effect = "deny"
                }
                verdicts[i].answers.append(.init(plugin: stage.label, effect: effect, reasons: reasons))
                switch (mode, effect) {
                case (_, "deny"):
                    allowed[i] = false
                    verdicts[i].allow = false
                    continue  // decided
                case (.first, "allow"):
                    allowed[i] = true
                    verdicts[i].allow = true
                    continue  // decided
                case (.all, "allow"):
                    allowed[i] = true
                default:
                    break
                }
                stillOpen.append(i)
            }
            open = stillOpen
        }
        for i in open { verdicts[i].allow = allowed[i] }
        return verdicts
    }

    /// A key naming the decisions every plugin would give now (their `policy_version` answers), or nil when a
    /// plugin cannot say, which means its decisions must not be cached.
    public func versionKey() async -> String? {
        var key = ""
        for stage in stages {
            let r = await stage.caller.call(op: "policy_version", request: .object([:]), timeout: timeout, emit: nil)
            guard case .success(let a) = r, let v = a["version"]?.stringValue else { return nil }
            key += stage.label + "=" + v + "\u{0}"
        }
        return key
    }
}
