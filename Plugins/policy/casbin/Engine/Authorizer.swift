import MCPGJSON

/// Maps gateway authorization questions onto an enforcer: which request values fill `r`'s tokens, how the
/// principal's groups become roles, and what a decision means for the gateway.
///
/// Built once per loaded policy; `prepare` does the per-principal work once per call, `decide` is per query.
public struct CasbinAuthorizer: Sendable {
    /// A request value that can fill one of `r`'s tokens.
    public enum Field: String, Sendable, CaseIterable {
        case principalID = "principal.id"
        case principalTenant = "principal.tenant"
        /// `{id, groups, tenant, …attributes}` for ABAC (`r.sub.Dept`).
        case principal
        case action
        case resourceName = "resource.name"
        case resourceType = "resource.type"
        case resourceBackend = "resource.backend"
        /// `{type, name, backend}`.
        case resource
        case context
    }

    /// The gateway's view of a decision.
    public enum Outcome: Sendable, Equatable {
        case allow(reason: String)
        /// A matched rule denied (the reason is that rule), or the request could not be evaluated.
        case deny(reason: String)
        /// No rule decided; the caller applies its `on_no_match`.
        case noMatch
    }

    /// The per-call part of a request: the principal and context values and the principal's role grant.
    public struct Prepared: Sendable {
        let principalID: String
        let tenant: String
        let principal: CasbinValue
        let context: CasbinValue
        let grant: RoleGrant?
    }

    public let enforcer: CasbinEnforcer
    public let fields: [Field]
    public let groupsAsRoles: Bool

    /// - Parameter fields: names from `Field` for `r`'s tokens in order; nil picks by token count (3:
    ///   principal.id, resource.name, action; 4: principal.id, principal.tenant, resource.name, action).
    /// - Throws: a message when a name is unknown or the count does not fit the model's `r`.
    public init(enforcer: CasbinEnforcer, fields: [String]?, groupsAsRoles: Bool = true) throws(CasbinEvalError) {
        self.enforcer = enforcer
        self.groupsAsRoles = groupsAsRoles
        let tokens = enforcer.requestTokens()
        if let fields {
            var out: [Field] = []
            for f in fields {
                guard let field = Field(rawValue: f) else {
                    throw CasbinEvalError("unknown request field \"\(f)\" (one of: "
                        + Field.allCases.map(\.rawValue).joined(separator: ", ") + ")")
                }
                out.append(field)
            }
            guard out.count == tokens.count else {
                throw CasbinEvalError("request has \(out.count) fields but the model's r has \(tokens.count) ("
                    + tokens.joined(separator: ", ") + ")")
            }
            self.fields = out
        } else {
            switch tokens.count {
            case 3: self.fields = [.principalID, .resourceName, .action]
            case 4: self.fields = [.principalID, .principalTenant, .resourceName, .action]
            default:
                throw CasbinEvalError("the model's r has \(tokens.count) fields; set `request` to say what fills them")
            }
        }
    }

    /// The per-principal work of one call.
    public func prepare(principalID: String, groups: [String], tenant: String?, attributes: JSONObject,
                        context: JSONObject) -> Prepared {
        var p: [String: CasbinValue] = [:]
        for m in attributes { p[m.key] = CasbinValue(json: m.value) }
        p["id"] = .string(principalID)
        p["groups"] = .array(groups.map { .string($0) })
        p["tenant"] = tenant.map { .string($0) } ?? .null
        let grant = groupsAsRoles
            ? enforcer.grant(user: principalID, roles: groups, domain: enforcer.roleDomains ? (tenant ?? "") : "")
            : nil
        return Prepared(principalID: principalID, tenant: tenant ?? "", principal: .object(p),
                        context: CasbinValue(json: .object(context)), grant: grant)
    }

    /// Decides one query. Never throws: an evaluation error is a deny that names the error.
    public func decide(_ call: Prepared, action: String, resourceType: String, resourceName: String,
                       resourceBackend: String) -> Outcome {
        var request: [CasbinValue] = []
        request.reserveCapacity(fields.count)
        for f in fields {
            switch f {
            case .principalID: request.append(.string(call.principalID))
            case .principalTenant: request.append(.string(call.tenant))
            case .principal: request.append(call.principal)
            case .action: request.append(.string(action))
            case .resourceName: request.append(.string(resourceName))
            case .resourceType: request.append(.string(resourceType))
            case .resourceBackend: request.append(.string(resourceBackend))
            case .resource:
                request.append(.object(["type": .string(resourceType), "name": .string(resourceName),
                                        "backend": .string(resourceBackend)]))
            case .context: request.append(call.context)
            }
        }
        let d: CasbinDecision
        do { d = try enforcer.enforce(request, grant: call.grant) } catch {
            return .deny(reason: "policy evaluation failed: \(error.message)")
        }
        if d.allowed {
            return .allow(reason: d.explainLine ?? d.firstAllow ?? "allowed: no deny rule matched")
        }
        if let line = d.explainLine { return .deny(reason: line) }
        return .noMatch
    }
}
