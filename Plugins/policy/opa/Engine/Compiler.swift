import MCPGJSON

/// All definitions of one rule (`data.<package>.<name>`), resolved and ready to evaluate.
final class RuleSet: Sendable {
    let id: Int
    let path: [String]
    let kind: RuleKind
    let defs: [Rule]
    let defaultValue: Term?
    /// The top-level `input` keys the rule reads (nil: any). A session whose inputs share those keys computes
    /// the value once for all its queries.
    let inputKeys: Set<String>?

    init(id: Int, path: [String], kind: RuleKind, defs: [Rule], defaultValue: Term?, inputKeys: Set<String>?) {
        self.id = id
        self.path = path
        self.kind = kind
        self.defs = defs
        self.defaultValue = defaultValue
        self.inputKeys = inputKeys
    }
}

/// The rule tree under `data`: packages nest, each holds its rules by name.
struct PackageNode: Sendable {
    var children: [String: PackageNode] = [:]
    var rules: [String: RuleSet] = [:]

    func node(at path: ArraySlice<String>) -> PackageNode? {
        guard let first = path.first else { return self }
        return children[first]?.node(at: path.dropFirst())
    }

    func ruleSet(at path: [String]) -> RuleSet? {
        guard let last = path.last else { return nil }
        return node(at: path.dropLast()[...])?.rules[last]
    }

    mutating func insert(_ rs: RuleSet, at path: ArraySlice<String>) {
        if path.count == 1, let name = path.first {
            rules[name] = rs
            return
        }
        guard let first = path.first else { return }
        var child = children[first] ?? PackageNode()
        child.insert(rs, at: path.dropFirst())
        children[first] = child
    }
}

/// Turns parsed modules into a rule tree: resolves every name to a local variable, a ref into `input`/`data`,
/// a built-in or a user function, and rejects what the engine does not support.
struct Compiler {
    let modules: [Module]
    /// Package path → rule name → kind, for name resolution across modules of one package.
    var ruleKinds: [[String]: [String: RuleKind]] = [:]

    static func compile(_ modules: [Module]) throws(RegoError) -> PackageNode {
        var c = Compiler(modules: modules)
        var grouped: [[String]: [(Module, Rule)]] = [:]
        var order: [[String]] = []
        for m in modules {
            for r in m.rules {
                let path = m.package + [r.name]
                if let k = c.ruleKinds[m.package]?[r.name], k != r.kind, !(r.isDefault && k == .complete) {
                    throw RegoError(file: m.file, pos: r.pos, "rule \(r.name) is defined with different kinds")
                }
                if c.ruleKinds[m.package]?[r.name] == nil || !r.isDefault {
                    c.ruleKinds[m.package, default: [:]][r.name] = r.kind
                }
                if grouped[path] == nil { order.append(path) }
                grouped[path, default: []].append((m, r))
            }
        }
        // Resolve all rules first, then work out input dependence over the resolved bodies.
        var resolved: [[String]: (kind: RuleKind, defs: [Rule], def: Term?)] = [:]
        for path in order {
            guard let entries = grouped[path] else { continue }
            var defs: [Rule] = []
            var defaultValue: Term?
            var kind = RuleKind.complete
            for (m, r) in entries {
                var rr = try Safety(file: m.file).rule(try c.resolveRule(r, in: m))
                rr.guards = Self.guards(rr.body)
                rr.file = m.file
                if rr.isDefault {
                    if defaultValue != nil {
                        throw RegoError(file: m.file, pos: r.pos, "multiple default rules for \(r.name)")
                    }
                    defaultValue = rr.value
                } else {
                    kind = rr.kind
                    defs.append(rr)
                }
            }
            resolved[path] = (kind, defs, defaultValue)
        }
        var dependence = InputDependence(rules: resolved.mapValues { $0.defs })
        var root = PackageNode()
        for (n, path) in order.enumerated() {
            guard let r = resolved[path] else { continue }
            let rs = RuleSet(id: n, path: path, kind: r.kind, defs: r.defs, defaultValue: r.def,
                             inputKeys: dependence.keys(path))
            root.insert(rs, at: path[...])
        }
        return root
    }

    /// Equality tests between a constant input path and a constant, from unconditional body literals.
    static func guards(_ body: [Literal]) -> [([String], Value)] {
        func inputPath(_ t: Term) -> [String]? {
            guard case .ref(.input, let path) = t else { return nil }
            var out: [String] = []
            for p in path {
                guard case .value(.string(let s)) = p else { return nil }
                out.append(s)
            }
            return out
        }
        var out: [([String], Value)] = []
        for l in body where !l.negated && l.withs.isEmpty {
            let pair: (Term, Term)
            switch l.expr {
            case .term(.builtin("equal", _, let args)) where args.count == 2: pair = (args[0], args[1])
            case .unify(let a, let b): pair = (a, b)
            default: continue
            }
            if let p = inputPath(pair.0), case .value(let v) = pair.1 { out.append((p, v)) }
            if let p = inputPath(pair.1), case .value(let v) = pair.0 { out.append((p, v)) }
        }
        return out
    }

    /// Resolves a standalone query term (no package, no imports).
    static func resolveQuery(_ t: Term, root: PackageNode) throws(RegoError) -> Term {
        let c = Compiler(modules: [])
        var scope = Scope(module: Module(file: "query", package: [], imports: [], rules: []), locals: [])
        return try c.resolve(t, &scope)
    }

    struct Scope {
        var module: Module
        var locals: Set<String>
    }

    func resolveRule(_ r: Rule, in m: Module) throws(RegoError) -> Rule {
        var out = r
        var scope = Scope(module: m, locals: [])
        for a in r.args { declareVars(a, &scope) }
        out.args = try r.args.map { (a) throws(RegoError) in try resolve(a, &scope) }
        let argScope = scope
        out.body = try resolveBody(r.body, &scope)
        if let k = r.key { out.key = try resolve(k, &scope) }
        if let v = r.value { out.value = try resolve(v, &scope) }
        out.elses = []
        for e in r.elses {
            var s = argScope
            var clause = e
            clause.body = try resolveBody(e.body, &s)
            if let v = e.value { clause.value = try resolve(v, &s) }
            out.elses.append(clause)
        }
        return out
    }

    func declareVars(_ t: Term, _ scope: inout Scope) {
        switch t {
        case .variable(let n, _): scope.locals.insert(n)
        case .array(let items): for i in items { declareVars(i, &scope) }
        case .object(let pairs): for (_, v) in pairs { declareVars(v, &scope) }
        default: break
        }
    }

    func resolveBody(_ body: [Literal], _ scope: inout Scope) throws(RegoError) -> [Literal] {
        var out: [Literal] = []
        for lit in body {
            var l = lit
            switch lit.expr {
            case .term(let t): l.expr = .term(try resolve(t, &scope))
            case .unify(let a, let b): l.expr = .unify(try resolve(a, &scope), try resolve(b, &scope))
            case .assign(let a, let b):
                let rb = try resolve(b, &scope)
                guard isAssignable(a) else {
                    throw RegoError(file: scope.module.file, pos: lit.pos, "cannot assign to a non-variable")
                }
                declareVars(a, &scope)
                l.expr = .assign(try resolve(a, &scope), rb)
            case .someDecl(let names):
                for n in names { scope.locals.insert(n) }
            case .someIn(let k, let v, let coll):
                let rc = try resolve(coll, &scope)
                if let k { declareVars(k, &scope) }
                declareVars(v, &scope)
                l.expr = .someIn(try k.map { (k) throws(RegoError) in try resolve(k, &scope) }, try resolve(v, &scope), rc)
            case .every(let k, let v, let coll, let body):
                let rc = try resolve(coll, &scope)
                var inner = scope
                if let k { declareVars(k, &inner) }
                declareVars(v, &inner)
                let rk = try k.map { (k) throws(RegoError) in try resolve(k, &inner) }
                let rv = try resolve(v, &inner)
                l.expr = .every(rk, rv, rc, try resolveBody(body, &inner))
            }
            l.withs = try lit.withs.map { (w) throws(RegoError) in
                var w2 = w
                w2.value = try resolve(w.value, &scope)
                return w2
            }
            out.append(l)
        }
        return out
    }

    func isAssignable(_ t: Term) -> Bool {
        switch t {
        case .variable: return true
        case .array(let items): return items.allSatisfy { isAssignable($0) || isConstant($0) }
        case .object(let pairs): return pairs.allSatisfy { isAssignable($0.1) || isConstant($0.1) }
        default: return false
        }
    }

    func isConstant(_ t: Term) -> Bool {
        if case .value = t { return true }
        return false
    }

    func path(_ parts: [String]) -> Term {
        let head: Term = parts[0] == "input" ? .input : .data
        if parts.count == 1 { return head }
        return .ref(head, parts.dropFirst().map { .value(.string($0)) })
    }

    func resolve(_ t: Term, _ scope: inout Scope) throws(RegoError) -> Term {
        let m = scope.module
        switch t {
        case .variable(let n, _):
            if scope.locals.contains(n) { return .local(n) }
            if n == "input" { return .input }
            if n == "data" { return .data }
            if let imp = m.imports.first(where: { $0.alias == n }) { return path(imp.path) }
            if ruleKinds[m.package]?[n] != nil { return path(["data"] + m.package + [n]) }
            return .local(n)
        case .ref(let head, let p):
            let rh = try resolve(head, &scope)
            let rp = try p.map { (x) throws(RegoError) in try resolve(x, &scope) }
            if case .ref(let h2, let p2) = rh { return .ref(h2, p2 + rp) }
            return .ref(rh, rp)
        case .array(let items): return .array(try items.map { (x) throws(RegoError) in try resolve(x, &scope) })
        case .set(let items): return .set(try items.map { (x) throws(RegoError) in try resolve(x, &scope) })
        case .object(let pairs):
            return .object(try pairs.map { (p) throws(RegoError) in (try resolve(p.0, &scope), try resolve(p.1, &scope)) })
        case .arrayCompr(let h, let body):
            var inner = scope
            let rb = try resolveBody(body, &inner)
            return .arrayCompr(try resolve(h, &inner), rb)
        case .setCompr(let h, let body):
            var inner = scope
            let rb = try resolveBody(body, &inner)
            return .setCompr(try resolve(h, &inner), rb)
        case .objectCompr(let k, let v, let body):
            var inner = scope
            let rb = try resolveBody(body, &inner)
            return .objectCompr(try resolve(k, &inner), try resolve(v, &inner), rb)
        case .membership(let k, let v, let c):
            return .membership(try k.map { (x) throws(RegoError) in try resolve(x, &scope) },
                               try resolve(v, &scope), try resolve(c, &scope))
        case .binary(let op, let a, let b, let pos):
            let name = Builtins.operatorNames[op] ?? op
            guard let fn = Builtins.table[name] else {
                throw RegoError(file: m.file, pos: pos, "unsupported: operator \(op)")
            }
            return .builtin(name, fn, [try resolve(a, &scope), try resolve(b, &scope)])
        case .neg(let a, _):
            return .builtin("minus", Builtins.table["minus"] ?? { _ in nil }, [.value(.int(0)), try resolve(a, &scope)])
        case .call(let name, let args, let pos):
            let rargs = try args.map { (x) throws(RegoError) in try resolve(x, &scope) }
            var full = name
            if name.count == 1, ruleKinds[m.package]?[name[0]] == .function {
                return .userCall(m.package + name, rargs, pos)
            }
            if let imp = m.imports.first(where: { $0.alias == name[0] }), !scope.locals.contains(name[0]) {
                full = imp.path + name.dropFirst()
            }
            if full[0] == "data" {
                let p = Array(full.dropFirst())
                guard let last = p.last, ruleKinds[Array(p.dropLast())]?[last] == .function else {
                    throw RegoError(file: m.file, pos: pos, "unknown function \(full.joined(separator: "."))")
                }
                return .userCall(p, rargs, pos)
            }
            let joined = name.joined(separator: ".")
            guard let fn = Builtins.table[joined] else {
                throw RegoError(file: m.file, pos: pos, "unsupported: unknown function \(joined)")
            }
            if let arity = Builtins.arity[joined], arity != rargs.count {
                throw RegoError(file: m.file, pos: pos, "\(joined): expects \(arity) arguments, got \(rargs.count)")
            }
            return .builtin(joined, fn, rargs)
        case .value, .local, .input, .data, .builtin, .userCall:
            return t
        }
    }
}

/// Which top-level keys of `input` each rule reads, directly or through the rules and functions it uses
/// (nil: the whole input, or keys only known at run time).
struct InputDependence {
    let rules: [[String]: [Rule]]
    var memo: [[String]: Set<String>?] = [:]

    init(rules: [[String]: [Rule]]) { self.rules = rules }

    static func merge(_ a: Set<String>?, _ b: Set<String>?) -> Set<String>? {
        guard let a, let b else { return nil }
        return a.union(b)
    }

    mutating func keys(_ path: [String]) -> Set<String>? {
        if let m = memo[path] { return m }
        // Cycles are errors at run time; meanwhile take the conservative answer.
        memo[path] = .some(nil)
        var result: Set<String>? = []
        for r in rules[path] ?? [] {
            var terms: [Term] = r.args
            if let k = r.key { terms.append(k) }
            if let v = r.value { terms.append(v) }
            for t in terms { result = Self.merge(result, term(t)) }
            result = Self.merge(result, body(r.body))
            for e in r.elses {
                result = Self.merge(result, body(e.body))
                if let v = e.value { result = Self.merge(result, term(v)) }
            }
        }
        memo[path] = .some(result)
        return result
    }

    mutating func body(_ b: [Literal]) -> Set<String>? {
        var acc: Set<String>? = []
        for l in b {
            if !l.withs.isEmpty { return nil }
            switch l.expr {
            case .term(let t): acc = Self.merge(acc, term(t))
            case .unify(let a, let c), .assign(let a, let c): acc = Self.merge(acc, Self.merge(term(a), term(c)))
            case .someDecl: break
            case .someIn(let k, let v, let c):
                acc = Self.merge(acc, Self.merge(term(v), term(c)))
                if let k { acc = Self.merge(acc, term(k)) }
            case .every(let k, let v, let c, let inner):
                acc = Self.merge(acc, Self.merge(Self.merge(term(v), term(c)), body(inner)))
                if let k { acc = Self.merge(acc, term(k)) }
            }
            if acc == nil { return nil }
        }
        return acc
    }

    mutating func terms(_ ts: [Term]) -> Set<String>? {
        var acc: Set<String>? = []
        for t in ts { acc = Self.merge(acc, term(t)) }
        return acc
    }

    mutating func term(_ t: Term) -> Set<String>? {
        switch t {
        case .input, .data: return nil
        case .value, .local, .variable: return []
        case .ref(let h, let p):
            if case .input = h {
                guard case .value(.string(let k))? = p.first else { return nil }
                return Self.merge([k], terms(Array(p.dropFirst())))
            }
            if case .data = h {
                // A constant path names the rules it can reach; anything else is taken as reading all input.
                var parts: [String] = []
                for (i, x) in p.enumerated() {
                    // Past the last package prefix the ref reads base data only.
                    if !rules.keys.contains(where: { $0.starts(with: parts) }) { return terms(Array(p[i...])) }
                    guard case .value(.string(let s)) = x else { return nil }
                    parts.append(s)
                    if rules[parts] != nil { return Self.merge(keys(parts), terms(Array(p[(i + 1)...]))) }
                }
                return rules.keys.contains { $0.starts(with: parts) } ? nil : []
            }
            return Self.merge(term(h), terms(p))
        case .array(let a), .set(let a): return terms(a)
        case .object(let pairs): return terms(pairs.flatMap { [$0.0, $0.1] })
        case .arrayCompr(let h, let b), .setCompr(let h, let b): return Self.merge(term(h), body(b))
        case .objectCompr(let k, let v, let b): return Self.merge(terms([k, v]), body(b))
        case .call(_, let args, _), .builtin(_, _, let args): return terms(args)
        case .userCall(let p, let args, _): return Self.merge(keys(p), terms(args))
        case .membership(let k, let v, let c): return Self.merge(terms([v, c]), k.map { term($0) } ?? [])
        case .binary(_, let a, let b, _): return terms([a, b])
        case .neg(let a, _): return term(a)
        }
    }
}
