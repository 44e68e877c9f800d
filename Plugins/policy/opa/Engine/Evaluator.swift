typealias Env = [String: Value]

/// Top-down evaluation with backtracking, written in continuation-passing style: every term or body hands
/// each solution to a continuation, which returns true to stop the search (e.g. `not` needs only one).
///
/// One evaluator serves one query (or one batch, sharing values that do not depend on `input`). Rule values
/// are cached for the life of the evaluator, so a rule used by many others is computed once.
final class Evaluator {
    let root: PackageNode
    let baseData: Value
    var input: Value?
    var dataOverrides: [([String], Value)] = []
    /// Rule id → value (nil: undefined) for the current input.
    var cache: [Int: Value?] = [:]
    /// Values of rules that read no input beyond `sharedKeys`, kept across the queries of a session.
    var sharedCache: [Int: Value?]
    let sharedKeys: Set<String>
    var inProgress: Set<Int> = []
    var depth = 0
    /// Nested user-function calls allowed; deeper means runaway recursion, which the language forbids.
    static let maxDepth = 100

    init(root: PackageNode, baseData: Value, input: Value?, sharedCache: [Int: Value?] = [:],
         sharedKeys: Set<String> = []) {
        self.sharedKeys = sharedKeys
        self.root = root
        self.baseData = baseData
        self.input = input
        self.sharedCache = sharedCache
    }

    func err(_ message: String, _ pos: SourcePos? = nil) -> RegoError { RegoError(pos: pos, message) }

    func err(_ message: String, at def: Rule?) -> RegoError {
        RegoError(file: def?.file ?? "", pos: def?.pos, message)
    }

    // MARK: terms

    @discardableResult
    func eval(_ t: Term, _ env: Env, _ k: (Value, Env) throws -> Bool) throws -> Bool {
        switch t {
        case .value(let v): return try k(v, env)
        case .local(let n):
            guard let v = env[n] else { throw err("var \(n) is unsafe") }
            return try k(v, env)
        case .input:
            guard let input else { return false }
            return try k(input, env)
        case .data: return try evalData(root, baseData, [], [], 0, env, k)
        case .ref(let head, let path): return try evalRef(head, path, env, k)
        case .array(let items):
            return try evalList(items, env) { vals, e in try k(.array(vals), e) }
        case .set(let items):
            return try evalList(items, env) { vals, e in try k(.makeSet(vals), e) }
        case .object(let pairs):
            return try evalList(pairs.flatMap { [$0.0, $0.1] }, env) { vals, e in
                var kv: [(Value, Value)] = []
                var i = 0
                while i + 1 < vals.count {
                    kv.append((vals[i], vals[i + 1]))
                    i += 2
                }
                return try k(.object(RegoObject(pairs: kv)), e)
            }
        case .arrayCompr(let head, let body):
            var out: [Value] = []
            try evalBody(body, 0, env) { e in
                try self.eval(head, e) { v, _ in
                    out.append(v)
                    return false
                }
                return false
            }
            return try k(.array(out), env)
        case .setCompr(let head, let body):
            var out: [Value] = []
            try evalBody(body, 0, env) { e in
                try self.eval(head, e) { v, _ in
                    out.append(v)
                    return false
                }
                return false
            }
            return try k(.makeSet(out), env)
        case .objectCompr(let kt, let vt, let body):
            var pairs: [Value: Value] = [:]
            var order: [(Value, Value)] = []
            try evalBody(body, 0, env) { e in
                try self.evalList([kt, vt], e) { kv, _ in
                    if let old = pairs[kv[0]] {
                        if old != kv[1] { throw self.err("object keys must be unique") }
                        return false
                    }
                    pairs[kv[0]] = kv[1]
                    order.append((kv[0], kv[1]))
                    return false
                }
                return false
            }
            return try k(.object(RegoObject(pairs: order)), env)
        case .builtin(_, let fn, let args):
            return try evalList(args, env) { vals, e in
                guard let v = fn(vals) else { return false }
                return try k(v, e)
            }
        case .userCall(let path, let args, let pos):
            return try evalList(args, env) { vals, e in
                guard let v = try self.callFunction(path, vals, pos) else { return false }
                return try k(v, e)
            }
        case .membership(_, let x, let coll):
            return try evalList([x, coll], env) { vals, e in
                let found: Bool
                switch vals[1] {
                case .array(let a): found = a.contains(vals[0])
                case .set(let s): found = setContains(s, vals[0])
                case .object(let o): found = o.values.contains(vals[0])
                default: found = false
                }
                return try k(.bool(found), e)
            }
        case .variable(let n, let pos): throw err("unresolved name \(n)", pos)
        case .call(let name, _, let pos): throw err("unresolved call \(name.joined(separator: "."))", pos)
        case .binary(let op, _, _, let pos): throw err("unresolved operator \(op)", pos)
        case .neg(_, let pos): throw err("unresolved negation", pos)
        }
    }

    @discardableResult
    func evalList(_ terms: [Term], _ env: Env, _ k: ([Value], Env) throws -> Bool) throws -> Bool {
        var acc: [Value] = []
        acc.reserveCapacity(terms.count)
        func step(_ i: Int, _ e: Env) throws -> Bool {
            if i == terms.count { return try k(acc, e) }
            return try eval(terms[i], e) { v, e2 in
                acc.append(v)
                defer { acc.removeLast() }
                return try step(i + 1, e2)
            }
        }
        return try step(0, env)
    }

    // MARK: refs

    func evalRef(_ head: Term, _ path: [Term], _ env: Env, _ k: (Value, Env) throws -> Bool) throws -> Bool {
        switch head {
        case .data: return try evalData(root, baseData, [], path, 0, env, k)
        case .input:
            guard let input else { return false }
            return try walk(input, path, 0, env, k)
        default:
            return try eval(head, env) { v, e in try self.walk(v, path, 0, e, k) }
        }
    }

    func isPattern(_ t: Term, _ env: Env) -> Bool {
        switch t {
        case .local(let n): return env[n] == nil
        case .array(let items): return items.contains { isPattern($0, env) }
        case .object(let pairs): return pairs.contains { isPattern($0.1, env) }
        default: return false
        }
    }

    func children(_ v: Value) -> [(Value, Value)] {
        switch v {
        case .array(let a): return a.enumerated().map { (.int(Int64($0.offset)), $0.element) }
        case .set(let s): return s.map { ($0, $0) }
        case .object(let o): return Array(zip(o.keys, o.values))
        default: return []
        }
    }

    func index(_ v: Value, _ key: Value) -> Value? {
        switch (v, key) {
        case (.array(let a), .int(let i)): return i >= 0 && i < a.count ? a[Int(i)] : nil
        case (.object(let o), _): return o[key]
        case (.set(let s), _): return setContains(s, key) ? key : nil
        default: return nil
        }
    }

    func walk(_ v: Value, _ path: [Term], _ i: Int, _ env: Env, _ k: (Value, Env) throws -> Bool) throws -> Bool {
        if i == path.count { return try k(v, env) }
        let p = path[i]
        if isPattern(p, env) {
            for (key, child) in children(v) {
                if try unify(p, key, env, assign: false, { e in try self.walk(child, path, i + 1, e, k) }) {
                    return true
                }
            }
            return false
        }
        if case .value(let key) = p {
            guard let child = index(v, key) else { return false }
            return try walk(child, path, i + 1, env, k)
        }
        return try eval(p, env) { key, e in
            guard let child = self.index(v, key) else { return false }
            return try self.walk(child, path, i + 1, e, k)
        }
    }

    func override(_ prefix: [String]) -> Value? {
        for (p, v) in dataOverrides.reversed() where p == prefix { return v }
        return nil
    }

    func evalData(_ node: PackageNode?, _ base: Value?, _ prefix: [String], _ path: [Term], _ i: Int, _ env: Env,
                  _ k: (Value, Env) throws -> Bool) throws -> Bool
    {
        if !dataOverrides.isEmpty, let v = override(prefix) { return try walk(v, path, i, env, k) }
        guard let node else {
            guard let base else { return false }
            return try walk(base, path, i, env, k)
        }
        if i == path.count { return try k(materialize(node, base, prefix), env) }
        let p = path[i]
        if isPattern(p, env) { return try walk(materialize(node, base, prefix), path, i, env, k) }
        return try eval(p, env) { key, e in
            guard case .string(let s) = key else { return false }
            if let rs = node.rules[s], dataOverrides.isEmpty || self.override(prefix + [s]) == nil {
                if rs.kind == .function { throw self.err("function \(rs.path.joined(separator: ".")) used as a value") }
                guard let v = try self.ruleValue(rs) else { return false }
                return try self.walk(v, path, i + 1, e, k)
            }
            var sub = base.flatMap { self.index($0, key) }
            if !self.dataOverrides.isEmpty {
                // `with data.a.b as v` under plain base data: patch the base document.
                let here = prefix + [s]
                for (p, v) in self.dataOverrides where p.count > here.count && p.starts(with: here) {
                    sub = Self.setPath(sub, p.dropFirst(here.count)[...], v)
                }
            }
            if let child = node.children[s] {
                return try self.evalData(child, sub, prefix + [s], path, i + 1, e, k)
            }
            if !self.dataOverrides.isEmpty, let v = self.override(prefix + [s]) {
                return try self.walk(v, path, i + 1, e, k)
            }
            guard let sub else { return false }
            return try self.walk(sub, path, i + 1, e, k)
        }
    }

    /// The whole subtree as one object: base data under it, plus every defined rule and sub-package.
    func materialize(_ node: PackageNode, _ base: Value?, _ prefix: [String]) throws -> Value {
        var obj: RegoObject
        if case .object(let o) = base { obj = o } else { obj = RegoObject() }
        for (name, rs) in node.rules where rs.kind != .function {
            if let v = try ruleValue(rs) { obj = obj.setting(.string(name), v) }
        }
        for (name, child) in node.children {
            let sub = obj[string: name]
            obj = obj.setting(.string(name), try materialize(child, sub, prefix + [name]))
        }
        for (p, v) in dataOverrides where p.count > prefix.count && p.starts(with: prefix) {
            obj = Self.setPath(.object(obj), p.dropFirst(prefix.count)[...], v).objectValue ?? obj
        }
        return .object(obj)
    }

    static func setPath(_ base: Value?, _ path: ArraySlice<String>, _ v: Value) -> Value {
        guard let first = path.first else { return v }
        var obj: RegoObject
        if case .object(let o) = base { obj = o } else { obj = RegoObject() }
        return .object(obj.setting(.string(first), setPath(obj[string: first], path.dropFirst(), v)))
    }

    // MARK: rules

    func ruleValue(_ rs: RuleSet) throws -> Value? {
        let shared = dataOverrides.isEmpty && isShared(rs)
        if shared, let c = sharedCache[rs.id] { return c }
        if let c = cache[rs.id] { return c }
        guard !inProgress.contains(rs.id) else {
            throw err("recursion through rule \(rs.path.joined(separator: "."))", at: rs.defs.first)
        }
        inProgress.insert(rs.id)
        defer { inProgress.remove(rs.id) }
        let v = try computeRule(rs)
        if shared { sharedCache[rs.id] = v } else { cache[rs.id] = v }
        return v
    }

    /// False when a guard of the definition fails, i.e. its body cannot hold for this input.
    func guardsHold(_ def: Rule) -> Bool {
        for (path, want) in def.guards {
            guard var v = input else { return false }
            for key in path {
                guard case .object(let o) = v, let next = o[string: key] else { return false }
                v = next
            }
            if v != want { return false }
        }
        return true
    }

    /// Whether the rule reads only input keys that every input of the session shares.
    func isShared(_ rs: RuleSet) -> Bool {
        guard let keys = rs.inputKeys else { return false }
        if keys.isEmpty { return true }
        if sharedKeys.isEmpty { return false }
        return keys.isSubset(of: sharedKeys)
    }

    func computeRule(_ rs: RuleSet) throws -> Value? {
        switch rs.kind {
        case .complete:
            var result: Value?
            for def in rs.defs where !def.elses.isEmpty || guardsHold(def) {
                try definitionValues(def, [:]) { v in
                    if let r = result, r != v {
                        throw self.err("complete rules must not produce multiple outputs (\(rs.path.joined(separator: ".")))",
                                       at: def)
                    }
                    result = v
                }
            }
            if result == nil, let d = rs.defaultValue {
                try eval(d, [:]) { v, _ in
                    result = v
                    return true
                }
            }
            return result
        case .partialSet:
            var out: [Value] = []
            for def in rs.defs where guardsHold(def) {
                guard let key = def.key else { continue }
                try evalBody(def.body, 0, [:]) { e in
                    try self.eval(key, e) { v, _ in
                        out.append(v)
                        return false
                    }
                    return false
                }
            }
            return .makeSet(out)
        case .partialObject:
            var seen: [Value: Value] = [:]
            var order: [(Value, Value)] = []
            for def in rs.defs where guardsHold(def) {
                guard let key = def.key else { continue }
                let valueTerm = def.value ?? .value(.bool(true))
                try evalBody(def.body, 0, [:]) { e in
                    try self.evalList([key, valueTerm], e) { kv, _ in
                        if let old = seen[kv[0]] {
                            if old != kv[1] {
                                throw self.err("object keys must be unique (\(rs.path.joined(separator: ".")))", at: def)
                            }
                            return false
                        }
                        seen[kv[0]] = kv[1]
                        order.append((kv[0], kv[1]))
                        return false
                    }
                    return false
                }
            }
            return .object(RegoObject(pairs: order))
        case .function:
            return nil
        }
    }

    /// Hands every value one definition produces (body first, then the first `else` that holds) to `sink`.
    func definitionValues(_ def: Rule, _ env: Env, _ sink: (Value) throws -> Void) throws {
        let valueTerm = def.value ?? .value(.bool(true))
        var matched = false
        try evalBody(def.body, 0, env) { e in
            matched = true
            try self.eval(valueTerm, e) { v, _ in
                try sink(v)
                return false
            }
            return false
        }
        if matched { return }
        for clause in def.elses {
            let t = clause.value ?? .value(.bool(true))
            try evalBody(clause.body, 0, env) { e in
                matched = true
                try self.eval(t, e) { v, _ in
                    try sink(v)
                    return false
                }
                return false
            }
            if matched { return }
        }
    }

    func callFunction(_ path: [String], _ args: [Value], _ pos: SourcePos) throws -> Value? {
        guard let rs = root.ruleSet(at: path), rs.kind == .function else {
            throw err("unknown function \(path.joined(separator: "."))", pos)
        }
        depth += 1
        defer { depth -= 1 }
        guard depth < Self.maxDepth else { throw err("function call depth exceeded (recursion?)", pos) }
        var result: Value?
        for def in rs.defs where def.args.count == args.count {
            func bindArgs(_ i: Int, _ env: Env) throws -> Bool {
                if i == args.count {
                    try definitionValues(def, env) { v in
                        if let r = result, r != v {
                            throw self.err("functions must not produce multiple outputs for same inputs (\(path.joined(separator: ".")))", at: def)
                        }
                        result = v
                    }
                    return false
                }
                return try unify(def.args[i], args[i], env, assign: false) { e in try bindArgs(i + 1, e) }
            }
            _ = try bindArgs(0, [:])
        }
        if result == nil, let d = rs.defaultValue {
            try eval(d, [:]) { v, _ in
                result = v
                return true
            }
        }
        return result
    }

    // MARK: bodies

    @discardableResult
    func evalBody(_ body: [Literal], _ i: Int, _ env: Env, _ k: (Env) throws -> Bool) throws -> Bool {
        if i == body.count { return try k(env) }
        let lit = body[i]
        if lit.withs.isEmpty {
            return try evalLiteral(lit, env) { e in try self.evalBody(body, i + 1, e, k) }
        }
        // `with` changes input or data for this one expression: collect its solutions under the changed
        // documents (with a fresh cache), then go on with the originals.
        var newInput = input
        var newOverrides = dataOverrides
        for w in lit.withs {
            var value: Value?
            try eval(w.value, env) { v, _ in
                value = v
                return true
            }
            guard let value else { return false }
            if w.target[0] == "input" {
                newInput = w.target.count == 1 ? value : Self.setPath(newInput, w.target.dropFirst(), value)
            } else {
                newOverrides.append((Array(w.target.dropFirst()), value))
            }
        }
        let saved = (input, dataOverrides, cache)
        input = newInput
        dataOverrides = newOverrides
        cache = [:]
        var solutions: [Env] = []
        do {
            try evalLiteral(lit, env) { e in
                solutions.append(e)
                return false
            }
        } catch {
            (input, dataOverrides, cache) = saved
            throw error
        }
        (input, dataOverrides, cache) = saved
        for e in solutions where try evalBody(body, i + 1, e, k) { return true }
        return false
    }

    @discardableResult
    func evalLiteral(_ lit: Literal, _ env: Env, _ k: (Env) throws -> Bool) throws -> Bool {
        if lit.negated {
            var found = false
            try evalExpr(lit.expr, env) { _ in
                found = true
                return true
            }
            return found ? false : try k(env)
        }
        return try evalExpr(lit.expr, env, k)
    }

    @discardableResult
    func evalExpr(_ expr: Expr, _ env: Env, _ k: (Env) throws -> Bool) throws -> Bool {
        switch expr {
        case .term(let t):
            return try eval(t, env) { v, e in v.isFalse ? false : try k(e) }
        case .unify(let a, let b):
            return try unifyTerms(a, b, env, k)
        case .assign(let a, let b):
            return try eval(b, env) { v, e in try self.unify(a, v, e, assign: true, k) }
        case .someDecl(let names):
            var e = env
            for n in names { e.removeValue(forKey: n) }
            return try k(e)
        case .someIn(let kt, let vt, let coll):
            return try eval(coll, env) { c, e in
                for (key, val) in self.children(c) {
                    let stop = try self.unify(vt, val, e, assign: true) { e2 in
                        guard let kt else { return try k(e2) }
                        return try self.unify(kt, key, e2, assign: true, k)
                    }
                    if stop { return true }
                }
                return false
            }
        case .every(let kt, let vt, let coll, let body):
            return try eval(coll, env) { c, e in
                for (key, val) in self.children(c) {
                    var holds = false
                    try self.unify(vt, val, e, assign: true) { e2 in
                        let inner: (Env) throws -> Bool = { e3 in
                            try self.evalBody(body, 0, e3) { _ in
                                holds = true
                                return true
                            }
                        }
                        guard let kt else { return try inner(e2) }
                        return try self.unify(kt, key, e2, assign: true, inner)
                    }
                    if !holds { return false }
                }
                return try k(e)
            }
        }
    }

    func unifyTerms(_ a: Term, _ b: Term, _ env: Env, _ k: (Env) throws -> Bool) throws -> Bool {
        if case .array(let xs) = a, case .array(let ys) = b {
            guard xs.count == ys.count else { return false }
            func step(_ i: Int, _ e: Env) throws -> Bool {
                if i == xs.count { return try k(e) }
                return try unifyTerms(xs[i], ys[i], e) { e2 in try step(i + 1, e2) }
            }
            return try step(0, env)
        }
        if isPattern(a, env) {
            if isPattern(b, env) {
                if case .local(let n) = a, case .local(let m) = b {
                    throw err("vars \(n) and \(m) are unsafe")
                }
            }
            return try eval(b, env) { v, e in try self.unify(a, v, e, assign: false, k) }
        }
        return try eval(a, env) { v, e in try self.unify(b, v, e, assign: false, k) }
    }

    /// Matches `pattern` against `v`, binding unbound variables (all variables when `assign`).
    @discardableResult
    func unify(_ pattern: Term, _ v: Value, _ env: Env, assign: Bool, _ k: (Env) throws -> Bool) throws -> Bool {
        switch pattern {
        case .local(let n):
            if !assign, let bound = env[n] { return bound == v ? try k(env) : false }
            var e = env
            e[n] = v
            return try k(e)
        case .array(let items):
            guard case .array(let vals) = v, vals.count == items.count else { return false }
            func step(_ i: Int, _ e: Env) throws -> Bool {
                if i == items.count { return try k(e) }
                return try unify(items[i], vals[i], e, assign: assign) { e2 in try step(i + 1, e2) }
            }
            return try step(0, env)
        case .object(let pairs) where isPattern(pattern, env) || assign:
            guard case .object(let o) = v, o.count == pairs.count else { return false }
            func step(_ i: Int, _ e: Env) throws -> Bool {
                if i == pairs.count { return try k(e) }
                return try eval(pairs[i].0, e) { key, e2 in
                    guard let sub = o[key] else { return false }
                    return try self.unify(pairs[i].1, sub, e2, assign: assign) { e3 in try step(i + 1, e3) }
                }
            }
            return try step(0, env)
        default:
            return try eval(pattern, env) { x, e in x == v ? try k(e) : false }
        }
    }
}
