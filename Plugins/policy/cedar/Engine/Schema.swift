import MCPGJSON

/// The parts of a Cedar JSON schema this engine checks policies against: declared entity types and actions.
///
/// Format: `{"<namespace>": {"entityTypes": {"User": {…}, …}, "actions": {"read": {…}, …}}, …}`; the empty
/// namespace `""` holds unqualified names. A policy passes when every entity type it names (in entity
/// literals and `is`) is declared, and every `Action` entity it names is a declared action. Attribute types
/// are not checked.
public struct CedarSchema: Sendable {
    public private(set) var entityTypes: Set<String> = []
    public private(set) var actions: Set<EntityUID> = []

    public init(json: JSON) throws(CedarDataError) {
        guard case .object(let namespaces) = json else { throw CedarDataError("a schema must be a JSON object") }
        for ns in namespaces {
            guard case .object(let body) = ns.value else {
                throw CedarDataError("namespace `\(ns.key)` must be an object")
            }
            let prefix = ns.key.isEmpty ? "" : ns.key + "::"
            if let types = body["entityTypes"] {
                guard case .object(let t) = types else { throw CedarDataError("`entityTypes` must be an object") }
                for m in t { entityTypes.insert(prefix + m.key) }
            }
            if let acts = body["actions"] {
                guard case .object(let a) = acts else { throw CedarDataError("`actions` must be an object") }
                for m in a { actions.insert(EntityUID(type: prefix + "Action", id: m.key)) }
            }
        }
    }

    /// Problems with one policy; empty when it conforms.
    public func check(_ p: Policy) -> [String] {
        var problems: [String] = []
        func uid(_ u: EntityUID) {
            if u.type == "Action" || u.type.hasSuffix("::Action") {
                if !actions.contains(u) { problems.append("unrecognized action `\(u)`") }
            } else if !entityTypes.contains(u.type) {
                problems.append("unrecognized entity type `\(u.type)`")
            }
        }
        func type(_ t: String) {
            if !entityTypes.contains(t) { problems.append("unrecognized entity type `\(t)`") }
        }
        func scope(_ c: ScopeConstraint) {
            switch c {
            case .any, .slot: break
            case .eq(let u), .inEntity(let u): uid(u)
            case .isType(let t): type(t)
            case .isTypeIn(let t, let u):
                type(t)
                uid(u)
            }
        }
        func value(_ v: CedarValue) {
            switch v {
            case .entity(let u): uid(u)
            case .set(let s): s.forEach(value)
            case .record(let r): r.values.forEach(value)
            default: break
            }
        }
        func expr(_ e: Expr) {
            switch e {
            case .literal(let v): value(v)
            case .variable: break
            case .ifThenElse(let a, let b, let c):
                expr(a)
                expr(b)
                expr(c)
            case .and(let a, let b), .or(let a, let b), .binary(_, let a, let b):
                expr(a)
                expr(b)
            case .not(let a), .neg(let a), .isEmpty(let a), .getAttr(let a, _), .hasAttr(let a, _), .like(let a, _):
                expr(a)
            case .isType(let a, let t):
                expr(a)
                type(t)
            case .call(_, let args), .set(let args), .andAll(let args), .orAll(let args): args.forEach(expr)
            case .record(let items): items.forEach { expr($0.1) }
            }
        }
        scope(p.principal)
        switch p.action {
        case .any: break
        case .eq(let u): uid(u)
        case .inAny(let us): us.forEach(uid)
        }
        scope(p.resource)
        p.conditions.forEach(expr)
        return problems
    }
}
