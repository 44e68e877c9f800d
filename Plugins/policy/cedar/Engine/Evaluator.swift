/// An error while evaluating one policy; the policy is then skipped (it neither permits nor forbids).
public struct CedarEvalError: Error, Sendable, CustomStringConvertible {
    public var message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }

    static func type(_ expected: String, _ got: CedarValue) -> CedarEvalError {
        CedarEvalError("type error: expected \(expected), got \(got.typeName)")
    }
}

/// The question: may `principal` do `action` on `resource`, given `context`?
public struct CedarRequest: Sendable {
    public var principal: EntityUID
    public var action: EntityUID
    public var resource: EntityUID
    public var context: [String: CedarValue]

    public init(principal: EntityUID, action: EntityUID, resource: EntityUID, context: [String: CedarValue] = [:]) {
        self.principal = principal
        self.action = action
        self.resource = resource
        self.context = context
    }
}

/// Evaluates expressions for one request. `local` entities (made for this request, e.g. the principal)
/// shadow the store's.
struct Evaluator {
    let request: CedarRequest
    let store: EntityStore
    let contextValue: CedarValue
    // The three request entities are looked up once; most lookups during evaluation are for them.
    let principalEntity: Entity?
    let actionEntity: Entity?
    let resourceEntity: Entity?

    init(request: CedarRequest, store: EntityStore, local: [Entity]) {
        self.request = request
        self.store = store
        contextValue = .record(request.context)
        func find(_ uid: EntityUID) -> Entity? {
            for e in local where e.uid == uid { return e }
            return store[uid]
        }
        principalEntity = find(request.principal)
        actionEntity = find(request.action)
        resourceEntity = find(request.resource)
        localExtra = local.filter { $0.uid != request.principal && $0.uid != request.action && $0.uid != request.resource }
    }

    /// Request-made entities other than the three request variables (rare).
    let localExtra: [Entity]

    @inline(__always)
    func entity(_ uid: EntityUID) -> Entity? {
        if uid == request.principal { return principalEntity }
        if uid == request.resource { return resourceEntity }
        if uid == request.action { return actionEntity }
        for e in localExtra where e.uid == uid { return e }
        return store[uid]
    }

    func isIn(_ uid: EntityUID, _ target: EntityUID) -> Bool {
        if uid == target { return true }
        return entity(uid)?.ancestors.contains(target) ?? false
    }

    @inline(__always)
    static func matches(_ c: ScopeConstraint, _ uid: EntityUID, _ ent: Entity?) -> Bool {
        switch c {
        case .any: return true
        case .eq(let t): return uid == t
        case .inEntity(let t): return uid == t || (ent?.ancestors.contains(t) ?? false)
        case .isType(let ty): return uid.type == ty
        case .isTypeIn(let ty, let t): return uid.type == ty && (uid == t || (ent?.ancestors.contains(t) ?? false))
        case .slot: return false
        }
    }

    @inline(__always)
    static func matchesAction(_ c: ActionConstraint, _ uid: EntityUID, _ ent: Entity?) -> Bool {
        switch c {
        case .any: return true
        case .eq(let t): return uid == t
        case .inAny(let ts):
            for t in ts where uid == t || (ent?.ancestors.contains(t) ?? false) { return true }
            return false
        }
    }

    /// Whether the policy is satisfied: scope first (never errors), then each condition in order.
    /// - Parameter scopeChecked: the principal and action parts of the scope are known to match.
    func satisfied(_ p: Policy, scopeChecked: Bool = false) throws(CedarEvalError) -> Bool {
        if !scopeChecked {
            guard Self.matches(p.principal, request.principal, principalEntity),
                Self.matchesAction(p.action, request.action, actionEntity)
            else { return false }
        }
        guard Self.matches(p.resource, request.resource, resourceEntity) else { return false }
        for c in p.conditions {
            guard try bool(try eval(c)) else { return false }
        }
        return true
    }

    func bool(_ v: CedarValue) throws(CedarEvalError) -> Bool {
        if case .bool(let b) = v { return b }
        throw .type("bool", v)
    }

    func long(_ v: CedarValue) throws(CedarEvalError) -> Int64 {
        if case .long(let i) = v { return i }
        throw .type("long", v)
    }

    func entityUID(_ v: CedarValue) throws(CedarEvalError) -> EntityUID {
        if case .entity(let u) = v { return u }
        throw .type("entity", v)
    }

    func set(_ v: CedarValue) throws(CedarEvalError) -> Set<CedarValue> {
        if case .set(let s) = v { return s }
        throw .type("set", v)
    }

    func eval(_ e: Expr) throws(CedarEvalError) -> CedarValue {
        switch e {
        case .literal(let v): return v
        case .variable(let v):
            switch v {
            case .principal: return .entity(request.principal)
            case .action: return .entity(request.action)
            case .resource: return .entity(request.resource)
            case .context: return contextValue
            }
        case .ifThenElse(let c, let t, let f):
            return try bool(try eval(c)) ? try eval(t) : try eval(f)
        case .and(let a, let b):
            guard try bool(try eval(a)) else { return .bool(false) }
            return .bool(try bool(try eval(b)))
        case .or(let a, let b):
            if try bool(try eval(a)) { return .bool(true) }
            return .bool(try bool(try eval(b)))
        case .andAll(let items):
            for x in items where !(try bool(try eval(x))) { return .bool(false) }
            return .bool(true)
        case .orAll(let items):
            for x in items where try bool(try eval(x)) { return .bool(true) }
            return .bool(false)
        case .not(let a):
            return .bool(!(try bool(try eval(a))))
        case .neg(let a):
            let i = try long(try eval(a))
            guard i != .min else { throw CedarEvalError("integer overflow while attempting to negate \(i)") }
            return .long(-i)
        case .isEmpty(let a):
            return .bool(try set(try eval(a)).isEmpty)
        case .binary(let op, let a, let b):
            return try binary(op, try eval(a), try eval(b))
        case .getAttr(let a, let name):
            switch try eval(a) {
            case .record(let r):
                guard let v = r[name] else { throw CedarEvalError("record does not have the attribute `\(name)`") }
                return v
            case .entity(let uid):
                guard let ent = entity(uid) else { throw CedarEvalError("entity `\(uid)` does not exist") }
                guard let v = ent.attributes[name] else {
                    throw CedarEvalError("`\(uid)` does not have the attribute `\(name)`")
                }
                return v
            case let v: throw .type("record or entity", v)
            }
        case .hasAttr(let a, let name):
            switch try eval(a) {
            case .record(let r): return .bool(r[name] != nil)
            case .entity(let uid): return .bool(entity(uid)?.attributes[name] != nil)
            case let v: throw .type("record or entity", v)
            }
        case .like(let a, let pattern):
            let v = try eval(a)
            guard case .string(let s) = v else { throw .type("string", v) }
            return .bool(wildcardMatch(s.unicodeScalars, pattern))
        case .isType(let a, let type):
            return .bool(try entityUID(try eval(a)).type == type)
        case .call(let f, let args):
            var vals: [CedarValue] = []
            vals.reserveCapacity(args.count)
            for x in args { vals.append(try eval(x)) }
            return try Self.callExtension(f, vals)
        case .set(let items):
            var s = Set<CedarValue>(minimumCapacity: items.count)
            for x in items { s.insert(try eval(x)) }
            return .set(s)
        case .record(let items):
            var r: [String: CedarValue] = [:]
            r.reserveCapacity(items.count)
            for (k, x) in items { r[k] = try eval(x) }
            return .record(r)
        }
    }

    func binary(_ op: BinaryOp, _ a: CedarValue, _ b: CedarValue) throws(CedarEvalError) -> CedarValue {
        switch op {
        case .eq: return .bool(a == b)
        case .less, .lessEq:
            let strict = op == .less
            switch (a, b) {
            case (.long(let x), .long(let y)): return .bool(strict ? x < y : x <= y)
            case (.ext(.datetime(let x)), .ext(.datetime(let y))), (.ext(.duration(let x)), .ext(.duration(let y))):
                return .bool(strict ? x < y : x <= y)
            case (.long, _): throw .type("long", b)
            case (_, .long): throw .type("long", a)
            case (.ext(.datetime), _), (.ext(.duration), _): throw .type(a.typeName, b)
            case (_, .ext(.datetime)), (_, .ext(.duration)): throw .type(b.typeName, a)
            default: throw .type("one of [long, datetime, duration]", a)
            }
        case .add, .sub, .mul:
            let x = try long(a), y = try long(b)
            let (r, o): (Int64, Bool)
            switch op {
            case .add: (r, o) = x.addingReportingOverflow(y)
            case .sub: (r, o) = x.subtractingReportingOverflow(y)
            default: (r, o) = x.multipliedReportingOverflow(by: y)
            }
            if o { throw CedarEvalError("integer overflow while attempting to apply `\(op)` to \(x) and \(y)") }
            return .long(r)
        case .inOp:
            let uid = try entityUID(a)
            switch b {
            case .entity(let t): return .bool(isIn(uid, t))
            case .set(let s):
                var targets: [EntityUID] = []
                targets.reserveCapacity(s.count)
                for v in s { targets.append(try entityUID(v)) }
                if targets.contains(uid) { return .bool(true) }
                guard let anc = entity(uid)?.ancestors, !anc.isEmpty else { return .bool(false) }
                for t in targets where anc.contains(t) { return .bool(true) }
                return .bool(false)
            default: throw .type("set or entity", b)
            }
        case .contains:
            return .bool(try set(a).contains(b))
        case .containsAll:
            let x = try set(a), y = try set(b)
            return .bool(y.isSubset(of: x))
        case .containsAny:
            let x = try set(a), y = try set(b)
            return .bool(!x.isDisjoint(with: y))
        case .getTag, .hasTag:
            let uid = try entityUID(a)
            guard case .string(let tag) = b else { throw .type("string", b) }
            guard let ent = entity(uid) else {
                if op == .hasTag { return .bool(false) }
                throw CedarEvalError("entity `\(uid)` does not exist")
            }
            if op == .hasTag { return .bool(ent.tags[tag] != nil) }
            guard let v = ent.tags[tag] else { throw CedarEvalError("`\(uid)` does not have the tag `\(tag)`") }
            return v
        }
    }

    /// Applies an extension function or method to evaluated arguments (the receiver first for methods).
    static func callExtension(_ f: ExtensionFunction, _ args: [CedarValue]) throws(CedarEvalError) -> CedarValue {
        guard args.count == f.arity else {
            throw CedarEvalError(
                "wrong number of arguments provided to extension function `\(f.rawValue)`: expected \(f.arity), got \(args.count)"
            )
        }
        func str(_ v: CedarValue) throws(CedarEvalError) -> String {
            if case .string(let s) = v { return s }
            throw .type("string", v)
        }
        func ip(_ v: CedarValue) throws(CedarEvalError) -> IPAddress {
            if case .ext(.ip(let a)) = v { return a }
            throw .type("ipaddr", v)
        }
        func dec(_ v: CedarValue) throws(CedarEvalError) -> Int64 {
            if case .ext(.decimal(let d)) = v { return d }
            throw .type("decimal", v)
        }
        func dt(_ v: CedarValue) throws(CedarEvalError) -> Int64 {
            if case .ext(.datetime(let d)) = v { return d }
            throw .type("datetime", v)
        }
        func dur(_ v: CedarValue) throws(CedarEvalError) -> Int64 {
            if case .ext(.duration(let d)) = v { return d }
            throw .type("duration", v)
        }
        switch f {
        case .ip:
            let s = try str(args[0])
            guard let a = IPAddress.parse(s) else { throw CedarEvalError("invalid IP address: \(s)") }
            return .ext(.ip(a))
        case .isIpv4: return .bool(!(try ip(args[0])).isV6)
        case .isIpv6: return .bool(try ip(args[0]).isV6)
        case .isLoopback: return .bool(try ip(args[0]).isLoopback)
        case .isMulticast: return .bool(try ip(args[0]).isMulticast)
        case .isInRange:
            let a = try ip(args[0])
            return .bool(a.isInRange(try ip(args[1])))
        case .decimal:
            switch ExtensionParse.decimal(try str(args[0])) {
            case .success(let d): return .ext(.decimal(d))
            case .failure(let m): throw CedarEvalError(m.message)
            }
        case .lessThan: return .bool(try dec(args[0]) < dec(args[1]))
        case .lessThanOrEqual: return .bool(try dec(args[0]) <= dec(args[1]))
        case .greaterThan: return .bool(try dec(args[0]) > dec(args[1]))
        case .greaterThanOrEqual: return .bool(try dec(args[0]) >= dec(args[1]))
        case .datetime:
            switch ExtensionParse.datetime(try str(args[0])) {
            case .success(let d): return .ext(.datetime(d))
            case .failure(let m): throw CedarEvalError(m.message)
            }
        case .duration:
            switch ExtensionParse.duration(try str(args[0])) {
            case .success(let d): return .ext(.duration(d))
            case .failure(let m): throw CedarEvalError(m.message)
            }
        case .offset:
            let a = try dt(args[0])
            let (r, o) = a.addingReportingOverflow(try dur(args[1]))
            if o { throw CedarEvalError("overflows when adding an offset") }
            return .ext(.datetime(r))
        case .durationSince:
            let a = try dt(args[0])
            let (r, o) = a.subtractingReportingOverflow(try dt(args[1]))
            if o { throw CedarEvalError("overflows when computing the duration") }
            return .ext(.duration(r))
        case .toDate:
            let a = try dt(args[0])
            let day: Int64 = 86_400_000
            var rem = a % day
            if rem < 0 { rem += day }
            let (r, o) = a.subtractingReportingOverflow(rem)
            if o { throw CedarEvalError("overflows when computing the date") }
            return .ext(.datetime(r))
        case .toTime:
            let a = try dt(args[0])
            let day: Int64 = 86_400_000
            var rem = a % day
            if rem < 0 { rem += day }
            return .ext(.duration(rem))
        case .toMilliseconds: return .long(try dur(args[0]))
        case .toSeconds: return .long(try dur(args[0]) / 1000)
        case .toMinutes: return .long(try dur(args[0]) / 60_000)
        case .toHours: return .long(try dur(args[0]) / 3_600_000)
        case .toDays: return .long(try dur(args[0]) / 86_400_000)
        }
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
func wildcardMatch(_ s: String.UnicodeScalarView, _ p: [PatternElement]) -> Bool {
    var si = s.startIndex, pi = 0
    var starP = -1, starS = s.startIndex
    while si < s.endIndex {
        if pi < p.count, case .char(let c) = p[pi], c == s[si] {
            si = s.index(after: si)
            pi += 1
        } else if pi < p.count, p[pi] == .wildcard {
            starP = pi
            starS = si
            pi += 1
        } else if starP >= 0 {
            pi = starP + 1
            starS = s.index(after: starS)
            si = starS
        } else {
            return false
        }
    }
    while pi < p.count, p[pi] == .wildcard { pi += 1 }
    return pi == p.count
}
