/// The safety check: every variable must be bound before it is used. Like the language's compiler, it first
/// reorders each body (stable, greedy) so that a literal that binds a variable runs before the ones that use
/// it; a variable that nothing can bind is a load error ("var x is unsafe") naming the line:col.
struct Safety {
    let file: String

    static func isWildcard(_ n: String) -> Bool { n.hasPrefix("$_") }

    /// Variables in pattern position (a variable, or inside array/object literals), bindable by unification.
    func patternVars(_ t: Term, _ out: inout Set<String>, _ inputs: inout Set<String>, _ outer: Set<String>) {
        switch t {
        case .local(let n): out.insert(n)
        case .array(let items): for i in items { patternVars(i, &out, &inputs, outer) }
        case .object(let pairs):
            for (k, v) in pairs {
                var o: Set<String> = []
                termVars(k, &inputs, &o, outer)
                patternVars(v, &out, &inputs, outer)
            }
        default: termVars(t, &inputs, &out, outer)
        }
    }

    func isPatternTerm(_ t: Term) -> Bool {
        switch t {
        case .local, .array, .object: return true
        default: return false
        }
    }

    /// Variables a term needs bound (`inputs`) and those it binds by iteration (`outputs`, the ref path
    /// positions). A comprehension needs only the variables of the enclosing body (`outer`) it mentions.
    func termVars(_ t: Term, _ inputs: inout Set<String>, _ outputs: inout Set<String>, _ outer: Set<String>) {
        switch t {
        case .local(let n): inputs.insert(n)
        case .ref(let head, let path):
            termVars(head, &inputs, &outputs, outer)
            for p in path {
                if isPatternTerm(p) { patternVars(p, &outputs, &inputs, outer) } else { termVars(p, &inputs, &outputs, outer) }
            }
        case .array(let items), .set(let items): for i in items { termVars(i, &inputs, &outputs, outer) }
        case .object(let pairs):
            for (k, v) in pairs {
                termVars(k, &inputs, &outputs, outer)
                termVars(v, &inputs, &outputs, outer)
            }
        case .arrayCompr, .setCompr, .objectCompr:
            var all: Set<String> = []
            allVars(t, &all)
            inputs.formUnion(all.intersection(outer))
        case .builtin(_, _, let args), .userCall(_, let args, _), .call(_, let args, _):
            for a in args { termVars(a, &inputs, &outputs, outer) }
        case .membership(let k, let v, let c):
            if let k { termVars(k, &inputs, &outputs, outer) }
            termVars(v, &inputs, &outputs, outer)
            termVars(c, &inputs, &outputs, outer)
        case .binary(_, let a, let b, _):
            termVars(a, &inputs, &outputs, outer)
            termVars(b, &inputs, &outputs, outer)
        case .neg(let a, _): termVars(a, &inputs, &outputs, outer)
        case .value, .input, .data, .variable: break
        }
    }

    func allVars(_ t: Term, _ out: inout Set<String>) {
        switch t {
        case .local(let n): out.insert(n)
        case .ref(let h, let p):
            allVars(h, &out)
            for x in p { allVars(x, &out) }
        case .array(let a), .set(let a): for x in a { allVars(x, &out) }
        case .object(let pairs):
            for (k, v) in pairs {
                allVars(k, &out)
                allVars(v, &out)
            }
        case .arrayCompr(let h, let b), .setCompr(let h, let b):
            allVars(h, &out)
            for l in b { literalVars(l, &out) }
        case .objectCompr(let k, let v, let b):
            allVars(k, &out)
            allVars(v, &out)
            for l in b { literalVars(l, &out) }
        case .builtin(_, _, let a), .userCall(_, let a, _), .call(_, let a, _): for x in a { allVars(x, &out) }
        case .membership(let k, let v, let c):
            if let k { allVars(k, &out) }
            allVars(v, &out)
            allVars(c, &out)
        case .binary(_, let a, let b, _):
            allVars(a, &out)
            allVars(b, &out)
        case .neg(let a, _): allVars(a, &out)
        case .value, .input, .data, .variable: break
        }
    }

    func literalVars(_ l: Literal, _ out: inout Set<String>) {
        switch l.expr {
        case .term(let t): allVars(t, &out)
        case .unify(let a, let b), .assign(let a, let b):
            allVars(a, &out)
            allVars(b, &out)
        case .someDecl(let names): out.formUnion(names)
        case .someIn(let k, let v, let c):
            if let k { allVars(k, &out) }
            allVars(v, &out)
            allVars(c, &out)
        case .every(let k, let v, let c, let body):
            if let k { allVars(k, &out) }
            allVars(v, &out)
            allVars(c, &out)
            for x in body { literalVars(x, &out) }
        }
        for w in l.withs { allVars(w.value, &out) }
    }

    /// (needs bound, can bind) for one literal.
    func analyze(_ l: Literal, _ outer: Set<String>) -> (Set<String>, Set<String>) {
        var inputs: Set<String> = [], outputs: Set<String> = []
        switch l.expr {
        case .term(let t): termVars(t, &inputs, &outputs, outer)
        case .unify(let a, let b):
            for side in [a, b] {
                if isPatternTerm(side) { patternVars(side, &outputs, &inputs, outer) } else { termVars(side, &inputs, &outputs, outer) }
            }
        case .assign(let a, let b):
            patternVars(a, &outputs, &inputs, outer)
            termVars(b, &inputs, &outputs, outer)
        case .someDecl: break
        case .someIn(let k, let v, let c):
            if let k { patternVars(k, &outputs, &inputs, outer) }
            patternVars(v, &outputs, &inputs, outer)
            termVars(c, &inputs, &outputs, outer)
        case .every(_, _, let c, let body):
            termVars(c, &inputs, &outputs, outer)
            var all: Set<String> = []
            for x in body { literalVars(x, &all) }
            inputs.formUnion(all.intersection(outer))
            outputs = []
        }
        for w in l.withs {
            var o: Set<String> = []
            termVars(w.value, &inputs, &o, outer)
        }
        if l.negated {
            inputs.formUnion(outputs.filter { !Self.isWildcard($0) })
            outputs = []
        }
        // A variable the literal itself binds by iteration (`input.a[i] == i`) needs no earlier binding.
        return (inputs.subtracting(outputs), outputs)
    }

    /// Reorders `body` so each literal's inputs are bound, and checks nested bodies with what is bound there.
    func order(_ body: [Literal], bound initial: Set<String>) throws(RegoError) -> ([Literal], Set<String>) {
        var outer = initial
        for l in body {
            outer.formUnion(analyze(l, []).1)
            if case .someDecl(let names) = l.expr { outer.formUnion(names) }
        }
        var remaining = body.map { ($0, analyze($0, outer)) }
        var bound = initial
        var result: [Literal] = []
        while !remaining.isEmpty {
            guard let i = remaining.firstIndex(where: { $0.1.0.isSubset(of: bound) }) else {
                let (lit, (inputs, _)) = remaining[0]
                let name = inputs.subtracting(bound).sorted().first ?? "?"
                throw RegoError(file: file, pos: lit.pos, "var \(name) is unsafe")
            }
            let (lit, (_, outputs)) = remaining.remove(at: i)
            if case .someDecl(let names) = lit.expr { bound.subtract(names) }
            result.append(try fix(lit, bound))
            if case .every = lit.expr {} else { bound.formUnion(outputs) }
        }
        return (result, bound)
    }

    func fix(_ l: Literal, _ bound: Set<String>) throws(RegoError) -> Literal {
        var out = l
        switch l.expr {
        case .term(let t): out.expr = .term(try fix(t, bound, l.pos))
        case .unify(let a, let b): out.expr = .unify(try fix(a, bound, l.pos), try fix(b, bound, l.pos))
        case .assign(let a, let b): out.expr = .assign(a, try fix(b, bound, l.pos))
        case .someDecl: break
        case .someIn(let k, let v, let c): out.expr = .someIn(k, v, try fix(c, bound, l.pos))
        case .every(let k, let v, let c, let body):
            var inner = bound
            var ins: Set<String> = []
            if let k { patternVars(k, &inner, &ins, []) }
            patternVars(v, &inner, &ins, [])
            out.expr = .every(k, v, try fix(c, bound, l.pos), try order(body, bound: inner).0)
        }
        return out
    }

    func fix(_ t: Term, _ bound: Set<String>, _ pos: SourcePos) throws(RegoError) -> Term {
        switch t {
        case .arrayCompr(let h, let b):
            let (body, after) = try order(b, bound: bound)
            try checkHead([h], after, pos)
            return .arrayCompr(try fix(h, after, pos), body)
        case .setCompr(let h, let b):
            let (body, after) = try order(b, bound: bound)
            try checkHead([h], after, pos)
            return .setCompr(try fix(h, after, pos), body)
        case .objectCompr(let k, let v, let b):
            let (body, after) = try order(b, bound: bound)
            try checkHead([k, v], after, pos)
            return .objectCompr(k, try fix(v, after, pos), body)
        case .ref(let h, let p):
            return .ref(try fix(h, bound, pos), try p.map { (x) throws(RegoError) in try fix(x, bound, pos) })
        case .array(let a): return .array(try a.map { (x) throws(RegoError) in try fix(x, bound, pos) })
        case .set(let a): return .set(try a.map { (x) throws(RegoError) in try fix(x, bound, pos) })
        case .object(let pairs):
            return .object(try pairs.map { (p) throws(RegoError) in (try fix(p.0, bound, pos), try fix(p.1, bound, pos)) })
        case .builtin(let n, let f, let a):
            return .builtin(n, f, try a.map { (x) throws(RegoError) in try fix(x, bound, pos) })
        case .userCall(let p, let a, let cp):
            return .userCall(p, try a.map { (x) throws(RegoError) in try fix(x, bound, pos) }, cp)
        case .membership(let k, let v, let c):
            return .membership(try k.map { (x) throws(RegoError) in try fix(x, bound, pos) }, try fix(v, bound, pos),
                               try fix(c, bound, pos))
        default: return t
        }
    }

    /// Head terms may only use variables the body bound.
    func checkHead(_ terms: [Term], _ bound: Set<String>, _ pos: SourcePos) throws(RegoError) {
        // Comprehensions bind their own variables, and ref positions in a head iterate (`p := input.a[_]`).
        var inputs: Set<String> = [], outputs: Set<String> = []
        for t in terms { termVars(t, &inputs, &outputs, bound) }
        if let v = inputs.subtracting(bound).subtracting(outputs).sorted().first {
            throw RegoError(file: file, pos: pos, "var \(v) is unsafe")
        }
    }

    /// Checks and reorders one resolved rule definition.
    func rule(_ r: Rule) throws(RegoError) -> Rule {
        var out = r
        var argVars: Set<String> = []
        for a in r.args { allVars(a, &argVars) }
        let (body, after) = try order(r.body, bound: argVars)
        out.body = body
        let head = [r.key, r.value].compactMap { $0 }
        try checkHead(head, after, r.pos)
        if let k = r.key { out.key = try fix(k, after, r.pos) }
        if let v = r.value { out.value = try fix(v, after, r.pos) }
        out.elses = []
        for e in r.elses {
            var clause = e
            let (b, a) = try order(e.body, bound: argVars)
            clause.body = b
            if let v = e.value {
                try checkHead([v], a, e.pos)
                clause.value = try fix(v, a, e.pos)
            }
            out.elses.append(clause)
        }
        return out
    }
}
