import MCPGJSON

/// A condition over the context: `{left, op, right}` comparisons, combined with `all`, `any` and `not`.
///
/// `==` / `!=`: JSON equality (numbers by value, objects regardless of member order). `<`, `<=`, `>`, `>=`: both
/// numbers (by value) or both strings (by Unicode scalar order), otherwise false. `exists`: `left` is present and
/// not null (no `right`). `contains`: a string containing the string `right`, an array with an element equal
/// to `right`, or an object with the member named `right`.
public indirect enum Condition: Sendable, Equatable {
    public enum Op: String, Sendable, CaseIterable {
        case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=", exists, contains
    }
    case compare(ValueTemplate, Op, ValueTemplate?)
    case all([Condition])
    case any([Condition])
    case not(Condition)

    public init(_ json: JSON, at pointer: String) throws(ConfigError) {
        guard case .object(let o) = json else {
            throw ConfigError(pointer, "a condition is an object ({left, op, right}, all, any or not)")
        }
        if let all = o["all"] ?? o["any"] {
            let key = o["all"] != nil ? "all" : "any"
            guard o.count == 1, case .array(let items) = all, !items.isEmpty else {
                throw ConfigError(pointer, "\"\(key)\" is the only member, a non-empty array of conditions")
            }
            var cs: [Condition] = []
            for (i, c) in items.enumerated() { cs.append(try Condition(c, at: pointer + "/\(key)/\(i)")) }
            self = key == "all" ? .all(cs) : .any(cs)
            return
        }
        if let n = o["not"] {
            guard o.count == 1 else { throw ConfigError(pointer, "\"not\" is the only member") }
            self = .not(try Condition(n, at: pointer + "/not"))
            return
        }
        for k in o.keys where !["left", "op", "right"].contains(k) {
            throw ConfigError(
                pointer + "/" + escapePointer(k), "unknown key \"\(k)\" in a condition (left, op, right, all, any, not)"
            )
        }
        guard let left = o["left"] else { throw ConfigError(pointer, "a condition needs \"left\"") }
        guard let opName = o["op"]?.stringValue, let op = Op(rawValue: opName) else {
            throw ConfigError(
                pointer + (o["op"] == nil ? "" : "/op"),
                "\"op\" is one of " + Op.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let l = try ValueTemplate(left, at: pointer + "/left")
        if op == .exists {
            guard o["right"] == nil else { throw ConfigError(pointer + "/right", "\"exists\" takes no \"right\"") }
            self = .compare(l, op, nil)
        } else {
            guard let right = o["right"] else { throw ConfigError(pointer, "\"\(op.rawValue)\" needs \"right\"") }
            self = .compare(l, op, try ValueTemplate(right, at: pointer + "/right"))
        }
    }

    public var paths: [Path] {
        switch self {
        case .compare(let l, _, let r): return l.paths + (r?.paths ?? [])
        case .all(let cs), .any(let cs): return cs.flatMap(\.paths)
        case .not(let c): return c.paths
        }
    }

    public func holds(_ context: JSONObject) -> Bool {
        switch self {
        case .all(let cs): return cs.allSatisfy { $0.holds(context) }
        case .any(let cs): return cs.contains { $0.holds(context) }
        case .not(let c): return !c.holds(context)
        case .compare(let l, let op, let r):
            let a = l.evaluate(context)
            let b = r?.evaluate(context) ?? .null
            switch op {
            case .exists: return !a.isNull
            case .eq: return jsonEqual(a, b)
            case .ne: return !jsonEqual(a, b)
            case .lt, .le, .gt, .ge:
                guard let order = compareOrder(a, b) else { return false }
                switch op {
                case .lt: return order < 0
                case .le: return order <= 0
                case .gt: return order > 0
                default: return order >= 0
                }
            case .contains:
                switch a {
                case .string(let s): return b.stringValue.map { s.contains($0) } ?? false
                case .array(let items): return items.contains { jsonEqual($0, b) }
                case .object(let o): return b.stringValue.map { o[$0] != nil } ?? false
                default: return false
                }
            }
        }
    }
}

/// JSON equality with numbers compared by value (`1 == 1.0`).
public func jsonEqual(_ a: JSON, _ b: JSON) -> Bool {
    switch (a, b) {
    case (.int, .double), (.double, .int): return a.doubleValue == b.doubleValue
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { jsonEqual($0, $1) }
    case (.object(let x), .object(let y)):
        return x.count == y.count && x.allSatisfy { m in y[m.key].map { jsonEqual(m.value, $0) } ?? false }
    default: return a == b
    }
}

/// -1, 0 or 1 for two numbers or two strings; nil for anything else.
func compareOrder(_ a: JSON, _ b: JSON) -> Int? {
    if let x = a.doubleValue, let y = b.doubleValue, a.stringValue == nil { return x < y ? -1 : (x == y ? 0 : 1) }
    if let x = a.stringValue, let y = b.stringValue {
        let xs = Array(x.unicodeScalars.map(\.value))
        let ys = Array(y.unicodeScalars.map(\.value))
        return xs.lexicographicallyPrecedes(ys) ? -1 : (xs == ys ? 0 : 1)
    }
    return nil
}
