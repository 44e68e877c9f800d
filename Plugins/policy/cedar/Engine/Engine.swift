/// Allow or deny, as Cedar decides: a satisfied `forbid` wins, else a satisfied `permit` allows, else deny.
public enum CedarDecision: String, Sendable {
    case allow = "Allow"
    case deny = "Deny"
}

/// The answer to one request.
public struct CedarResponse: Sendable {
    public var decision: CedarDecision
    /// Ids of the policies that decided: the satisfied forbids on a deny, the satisfied permits on an allow;
    /// empty on a default deny.
    public var reasons: [String]
    /// Policies whose evaluation failed (they were skipped), with the error.
    public var errors: [(policy: String, message: String)]
}

/// An immutable, ordered set of policies with their ids.
public struct CedarPolicySet: Sendable {
    public let policies: [Policy]
    /// The id reported for each policy, index for index.
    public let ids: [String]

    /// Policies with ids of your choosing (e.g. `@id` annotations); `ids.count` must equal `policies.count`.
    public init(policies: [Policy], ids: [String]) {
        self.policies = policies
        self.ids = ids.count == policies.count ? ids : policies.indices.map { "policy\($0)" }
    }

    /// Parses policy text; policies get positional ids `policy0`, `policy1`, ….
    public init(text: String) throws(CedarParseError) {
        let ps = try CedarParser.parsePolicies(text)
        self.init(policies: ps, ids: ps.indices.map { "policy\($0)" })
    }

    /// Decides one request. `local` entities (made for this request) shadow those in `entities`.
    /// - Parameter candidates: indices of the policies whose principal and action scope are known to match
    ///   this request (from `candidates(principal:action:)`); nil to consider every policy.
    public func isAuthorized(_ request: CedarRequest, entities: EntityStore, local: [Entity] = [],
                             candidates: [Int]? = nil) -> CedarResponse {
        let ev = Evaluator(request: request, store: entities, local: local)
        var permits: [String] = []
        var forbids: [String] = []
        var errors: [(policy: String, message: String)] = []
        func consider(_ k: Int, scopeChecked: Bool) {
            let p = policies[k]
            do {
                if try ev.satisfied(p, scopeChecked: scopeChecked) {
                    if p.effect == .permit { permits.append(ids[k]) } else { forbids.append(ids[k]) }
                }
            } catch {
                errors.append((ids[k], error.message))
            }
        }
        if let candidates {
            for k in candidates { consider(k, scopeChecked: true) }
        } else {
            for k in policies.indices { consider(k, scopeChecked: false) }
        }
        if !forbids.isEmpty { return CedarResponse(decision: .deny, reasons: forbids, errors: errors) }
        if !permits.isEmpty { return CedarResponse(decision: .allow, reasons: permits, errors: errors) }
        return CedarResponse(decision: .deny, reasons: [], errors: errors)
    }

    /// The policies (by index, in order) whose principal and action scope match: the part of the scope that
    /// is the same for every query of a batch, worked out once for the batch.
    public func candidates(principal: Entity, action: EntityUID, actionEntity: Entity?) -> [Int] {
        policies.indices.filter {
            Evaluator.matches(policies[$0].principal, principal.uid, principal)
                && Evaluator.matchesAction(policies[$0].action, action, actionEntity)
        }
    }
}
