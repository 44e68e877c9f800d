import MCPGJSON
import PluginKit

/// Allow/deny rules over principal, groups, tool name globs, backends and actions.
///
/// A rule matches a query when every field it has matches (absent = any). Per query: any matching deny rule
/// denies (reasons: the ids of all matching deny rules); else any matching allow rule allows (reasons: their
/// ids); else deny with "default deny". Rules are compiled once at `init`; per call, the principal's rules are
/// picked once and each query only checks action, backend and tool name, so a `tools/list` filter of 10,000
/// tools is one pass.
struct Rules: SyncPolicyPlugin {
    struct Config: Decodable, Sendable {
        struct Rule: Decodable, Sendable {
            enum Effect: String, Decodable, Sendable { case allow, deny }
            var id: String
            var effect: Effect
            var principals: [String]?
            var groups: [String]?
            var tools: [String]?
            var backends: [String]?
            var actions: [String]?
        }
        var rules: [Rule]
    }
    static let name = "rules"
    static let version = "1.0.0"
    static var configSchema: JSON {
        func list(_ description: String) -> JSON {
            ["type": "array", "minItems": 1, "items": ["type": "string"], "description": .string(description)]
        }
        return [
            "type": "object", "additionalProperties": false, "required": ["rules"],
            "properties": [
                "rules": [
                    "type": "array",
                    "description":
                        "Allow/deny rules. A matching deny wins over any allow; no matching rule denies.",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["id", "effect"],
                        "properties": [
                            "id": [
                                "type": "string", "minLength": 1,
                                "description": "Rule id, unique; reported as the reason of a decision.",
                            ],
                            "effect": [
                                "enum": ["allow", "deny"], "description": "What a match decides.",
                            ],
                            "principals": list("Principal ids the rule applies to; \"*\" for any. Absent: any."),
                            "groups": list("Applies when the principal is in any of these groups. Absent: any."),
                            "tools": list(
                                "Name globs (`*` any run, `?` one character) of the tool, prompt, resource URI or "
                                    + "resource template, e.g. \"admin.*\". Absent: any."),
                            "backends": list("Backend names (as in config) serving the tool. Absent: any."),
                            "actions": [
                                "type": "array", "minItems": 1,
                                "items": [
                                    "enum": [
                                        "tools/call", "tools/list", "prompts/get", "prompts/list", "resources/read",
                                        "resources/list", "resources/templates/list",
                                    ]
                                ],
                                "description": "MCP methods the rule applies to. Absent: any.",
                            ],
                        ],
                    ],
                ]
            ],
        ]
    }

    let rules: [CompiledRule]

    init(config: Config, host: Host) throws {
        var ids: Set<String> = []
        var rules: [CompiledRule] = []
        for (i, r) in config.rules.enumerated() {
            guard !r.id.isEmpty else { throw PluginError(code: -32602, "rules: rules[\(i)].id must not be empty") }
            guard ids.insert(r.id).inserted else {
                throw PluginError(code: -32602, "rules: duplicate rule id \"\(r.id)\" (rules[\(i)])")
            }
            for (field, value) in [
                ("principals", r.principals), ("groups", r.groups), ("tools", r.tools), ("backends", r.backends),
                ("actions", r.actions),
            ] where value?.isEmpty == true {
                throw PluginError(code: -32602, "rules: rule \"\(r.id)\": \(field) must not be empty (omit it for any)")
            }
            rules.append(CompiledRule(r))
        }
        self.rules = rules
    }

    func authorize(_ request: AuthorizeRequest) throws -> [Decision] {
        let principal = request.principal
        let groups = Set(principal.groups)
        let applicable = rules.filter { $0.applies(to: principal, groups: groups) }
        var decisions: [Decision] = []
        decisions.reserveCapacity(request.queries.count)
        for query in request.queries {
            var denies: [String] = []
            var allows: [String] = []
            for rule in applicable where rule.matches(query) {
                if rule.effect == .deny { denies.append(rule.id) } else { allows.append(rule.id) }
            }
            if !denies.isEmpty {
                decisions.append(Decision(.deny, reasons: denies))
            } else if !allows.isEmpty {
                decisions.append(Decision(.allow, reasons: allows))
            } else {
                decisions.append(Decision(.deny, reasons: ["default deny"]))
            }
        }
        return decisions
    }
}

/// A rule with its lists turned into sets and compiled globs; nil fields match anything.
struct CompiledRule: Sendable {
    let id: String
    let effect: Rules.Config.Rule.Effect
    /// nil: any principal (absent, or the list holds "*").
    let principals: Set<String>?
    let groups: Set<String>?
    let tools: GlobSet?
    let backends: Set<String>?
    let actions: Set<String>?

    init(_ r: Rules.Config.Rule) {
        id = r.id
        effect = r.effect
        principals = r.principals.flatMap { $0.contains("*") ? nil : Set($0) }
        groups = r.groups.map(Set.init)
        tools = r.tools.map(GlobSet.init)
        backends = r.backends.map(Set.init)
        actions = r.actions.map(Set.init)
    }

    /// The parts that depend only on the principal, checked once per call.
    func applies(to principal: Principal, groups held: Set<String>) -> Bool {
        if let principals, !principals.contains(principal.id) { return false }
        if let groups, groups.isDisjoint(with: held) { return false }
        return true
    }

    /// The parts that depend on the query.
    func matches(_ query: PolicyQuery) -> Bool {
        if let actions, !actions.contains(query.action) { return false }
        if let backends, !backends.contains(query.resource.backend) { return false }
        if let tools, !tools.matches(query.resource.name) { return false }
        return true
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Rules.self) }
