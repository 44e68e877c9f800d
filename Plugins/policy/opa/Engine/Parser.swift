/// Recursive-descent parser for the supported subset; every error names the file and line:col.
struct Parser {
    let file: String
    var tokens: [Token]
    var i = 0
    /// Whether newlines end expressions here (rule bodies) or are whitespace (inside brackets and literals).
    var newlineSignificant: [Bool] = [true]
    var wildcardCount = 0
    var nesting = 0
    /// Shared across the copies made for backtracking, so pathological input cannot backtrack exponentially.
    let backtracks = Counter()

    final class Counter {
        var n = 0
    }

    static let keywords: Set<String> = [
        "package", "import", "default", "if", "else", "some", "every", "in", "not", "with", "as",
    ]

    init(text: String, file: String) throws(RegoError) {
        self.file = file
        tokens = try Lexer.tokenize(text, file: file)
    }

    // MARK: tokens

    func index() -> Int {
        var p = i
        if newlineSignificant.last == false {
            while p < tokens.count - 1, tokens[p].kind == .newline { p += 1 }
        }
        return p
    }

    func peek() -> Token { tokens[index()] }

    func peekSkippingNewlines() -> Token {
        var p = i
        while p < tokens.count - 1, tokens[p].kind == .newline { p += 1 }
        return tokens[p]
    }

    mutating func next() -> Token {
        let p = index()
        i = min(p + 1, tokens.count - 1)
        return tokens[p]
    }

    mutating func skipNewlines() {
        while tokens[i].kind == .newline { i += 1 }
    }

    func error(_ message: String, at pos: SourcePos? = nil) -> RegoError {
        RegoError(file: file, pos: pos ?? peek().pos, message)
    }

    func isOp(_ s: String) -> Bool { peek().kind == .op(s) }
    func isIdent(_ s: String) -> Bool { peek().kind == .ident(s) }

    mutating func accept(_ s: String) -> Bool {
        if isOp(s) || isIdent(s) {
            _ = next()
            return true
        }
        return false
    }

    mutating func expect(_ s: String) throws(RegoError) {
        guard accept(s) else { throw error("expected \"\(s)\", found \(describe(peek()))") }
    }

    func describe(_ t: Token) -> String {
        switch t.kind {
        case .ident(let s): return "\"\(s)\""
        case .string: return "string"
        case .number(let n): return n
        case .op(let o): return "\"\(o)\""
        case .newline: return "end of line"
        case .eof: return "end of file"
        }
    }

    mutating func ident() throws(RegoError) -> String {
        let t = peek()
        guard case .ident(let s) = t.kind else { throw error("expected a name, found \(describe(t))") }
        if Self.keywords.contains(s) { throw error("unexpected keyword \"\(s)\"") }
        _ = next()
        return s
    }

    // MARK: module

    static func parseModule(_ text: String, file: String) throws(RegoError) -> Module {
        var p = try Parser(text: text, file: file)
        return try p.module()
    }

    mutating func module() throws(RegoError) -> Module {
        skipNewlines()
        try expect("package")
        var package = [try ident()]
        while true {
            if accept(".") {
                package.append(try ident())
            } else if isOp("[") {
                _ = next()
                guard case .string(let s) = next().kind else { throw error("expected a string in package path") }
                package.append(s)
                try expect("]")
            } else {
                break
            }
        }
        try endOfLine()
        var imports: [Import] = []
        var rules: [Rule] = []
        while true {
            skipNewlines()
            if peek().kind == .eof { break }
            if isIdent("import") {
                let pos = next().pos
                var path = [try ident()]
                while accept(".") {
                    // Keywords are valid path parts here (`import future.keywords.if`).
                    guard case .ident(let part) = next().kind else { throw error("expected a name in import path") }
                    path.append(part)
                }
                var alias = path[path.count - 1]
                if accept("as") { alias = try ident() }
                switch path[0] {
                case "rego" where path == ["rego", "v1"], "future" where path.count >= 2 && path[1] == "keywords":
                    break
                case "input", "data":
                    imports.append(Import(path: path, alias: alias, pos: pos))
                default:
                    throw error("unsupported: import of \(path.joined(separator: "."))", at: pos)
                }
                try endOfLine()
                continue
            }
            rules.append(try rule())
            try endOfLine()
        }
        return Module(file: file, package: package, imports: imports, rules: rules)
    }

    mutating func endOfLine() throws(RegoError) {
        let t = peek()
        switch t.kind {
        case .newline, .eof: return
        case .op(";"):
            _ = next()
        default: throw error("unexpected \(describe(t)) after rule")
        }
    }

    // MARK: rules

    mutating func rule() throws(RegoError) -> Rule {
        let isDefault = accept("default")
        let pos = peek().pos
        let name = try ident()
        if isOp(".") { throw error("unsupported: rule head with a dotted name (\(name).…)", at: pos) }
        var rule = Rule(kind: .complete, name: name, pos: pos, isDefault: isDefault)
        if isOp("(") {
            _ = next()
            rule.kind = .function
            newlineSignificant.append(false)
            if !isOp(")") {
                repeat { rule.args.append(try term()) } while accept(",")
            }
            try expect(")")
            newlineSignificant.removeLast()
            if accept(":=") || accept("=") { rule.value = try term() }
        } else if isOp("[") {
            _ = next()
            newlineSignificant.append(false)
            rule.key = try term()
            try expect("]")
            newlineSignificant.removeLast()
            guard accept(":=") || accept("=") else {
                throw error("unsupported: rule head \(name)[…] without a value (use `\(name) contains …`)", at: pos)
            }
            rule.kind = .partialObject
            rule.value = try term()
        } else if accept("contains") {
            rule.kind = .partialSet
            rule.key = try term()
        } else if accept(":=") || accept("=") {
            rule.value = try term()
        }
        if isDefault {
            guard rule.kind == .complete, rule.value != nil else {
                throw error("unsupported: default on anything but a complete rule with a value", at: pos)
            }
            return rule
        }
        if let body = try ruleBody() { rule.body = body }
        while peekSkippingNewlines().kind == .ident("else") {
            skipNewlines()
            let epos = next().pos
            guard rule.kind == .complete || rule.kind == .function else { throw error("else on a multi-value rule", at: epos) }
            var clause = ElseClause(value: nil, body: [], pos: epos)
            if accept(":=") || accept("=") { clause.value = try term() }
            if let body = try ruleBody() { clause.body = body }
            rule.elses.append(clause)
        }
        return rule
    }

    /// `if { … }`, `if <literal>`, `{ … }`, or nothing (nil).
    mutating func ruleBody() throws(RegoError) -> [Literal]? {
        if accept("if") {
            if isOp("{") { return try block() }
            return [try literal()]
        }
        if isOp("{") { return try block() }
        return nil
    }

    mutating func block() throws(RegoError) -> [Literal] {
        try expect("{")
        newlineSignificant.append(true)
        defer { newlineSignificant.removeLast() }
        var body: [Literal] = []
        while true {
            while peek().kind == .newline || isOp(";") { _ = next() }
            if accept("}") { break }
            body.append(try literal())
            let t = peek()
            switch t.kind {
            case .newline, .op(";"): _ = next()
            case .op("}"): break
            default: throw error("unexpected \(describe(t)) in rule body")
            }
        }
        guard !body.isEmpty else { throw error("empty rule body") }
        return body
    }

    /// Bounded nesting keeps a hostile policy from exhausting the stack.
    mutating func enter() throws(RegoError) {
        nesting += 1
        guard nesting < 100 else { throw error("expression nested too deeply") }
    }

    mutating func literal() throws(RegoError) -> Literal {
        let pos = peek().pos
        try enter()
        defer { nesting -= 1 }
        if accept("some") {
            var terms: [Term] = []
            repeat { terms.append(try relation()) } while accept(",")
            if accept("in") {
                guard terms.count <= 2 else { throw error("some: at most two variables before `in`", at: pos) }
                let coll = try relation()
                let expr = terms.count == 2 ? Expr.someIn(terms[0], terms[1], coll) : Expr.someIn(nil, terms[0], coll)
                return Literal(pos: pos, negated: false, expr: expr, withs: [])
            }
            var names: [String] = []
            for t in terms {
                guard case .variable(let n, _) = t else { throw error("some: expected variable names", at: pos) }
                names.append(n)
            }
            return Literal(pos: pos, negated: false, expr: .someDecl(names), withs: [])
        }
        if accept("every") {
            var vars = [try relation()]
            if accept(",") { vars.append(try relation()) }
            try expect("in")
            let coll = try relation()
            let body = try block()
            let expr = vars.count == 2 ? Expr.every(vars[0], vars[1], coll, body) : .every(nil, vars[0], coll, body)
            return Literal(pos: pos, negated: false, expr: expr, withs: [])
        }
        let negated = accept("not")
        let lhs = try term()
        var expr = Expr.term(lhs)
        if accept(":=") {
            expr = .assign(lhs, try term())
        } else if accept("=") {
            expr = .unify(lhs, try term())
        } else if isOp(",") {
            throw error("unsupported: `k, v in coll` outside `some`")
        }
        var withs: [With] = []
        while isIdent("with") {
            let wpos = next().pos
            let target = try postfix()
            guard let name = target.dottedName, name[0] == "input" || name[0] == "data" else {
                throw error("unsupported: `with` on anything but input or data paths", at: wpos)
            }
            try expect("as")
            withs.append(With(target: name, value: try term(), pos: wpos))
        }
        return Literal(pos: pos, negated: negated, expr: expr, withs: withs)
    }

    // MARK: terms, by precedence: in < relations < | < & < + - < * / % < unary

    mutating func term() throws(RegoError) -> Term { try membership(nil) }

    mutating func membership(_ lhs: Term?) throws(RegoError) -> Term {
        var l = try relation(lhs)
        while accept("in") { l = .membership(nil, l, try relation()) }
        return l
    }

    mutating func relation(_ lhs: Term? = nil) throws(RegoError) -> Term {
        var l = try union(lhs)
        while case .op(let o) = peek().kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
            let pos = next().pos
            l = .binary(o, l, try union(), pos)
        }
        return l
    }

    mutating func union(_ lhs: Term? = nil) throws(RegoError) -> Term {
        var l = try intersection(lhs)
        while isOp("|") {
            let pos = next().pos
            l = .binary("|", l, try intersection(), pos)
        }
        return l
    }

    mutating func intersection(_ lhs: Term? = nil) throws(RegoError) -> Term {
        var l: Term
        if let lhs { l = lhs } else { l = try arith() }
        while isOp("&") {
            let pos = next().pos
            l = .binary("&", l, try arith(), pos)
        }
        return l
    }

    mutating func arith() throws(RegoError) -> Term {
        var l = try factor()
        while case .op(let o) = peek().kind, o == "+" || o == "-" {
            let pos = next().pos
            l = .binary(o, l, try factor(), pos)
        }
        return l
    }

    mutating func factor() throws(RegoError) -> Term {
        var l = try unary()
        while case .op(let o) = peek().kind, o == "*" || o == "/" || o == "%" {
            let pos = next().pos
            l = .binary(o, l, try unary(), pos)
        }
        return l
    }

    mutating func unary() throws(RegoError) -> Term {
        if isOp("-") {
            let pos = next().pos
            try enter()
            defer { nesting -= 1 }
            let t = try unary()
            switch t {
            case .value(.int(let n)): return .value(.int(-n))
            case .value(.double(let d)): return .value(.number(-d))
            default: return .neg(t, pos)
            }
        }
        return try postfix()
    }

    mutating func postfix() throws(RegoError) -> Term {
        let start = peek().pos
        var t = try primary()
        while true {
            if isOp(".") {
                _ = next()
                let name = try ident()
                t = appendPath(t, .value(.string(name)))
            } else if isOp("[") {
                _ = next()
                newlineSignificant.append(false)
                let key = try term()
                try expect("]")
                newlineSignificant.removeLast()
                t = appendPath(t, key)
            } else if isOp("(") {
                let pos = start
                guard let name = t.dottedName else { throw error("unsupported: call of a computed value") }
                _ = next()
                newlineSignificant.append(false)
                var args: [Term] = []
                if !isOp(")") {
                    repeat { args.append(try term()) } while accept(",")
                }
                try expect(")")
                newlineSignificant.removeLast()
                t = .call(name, args, pos)
            } else {
                return t
            }
        }
    }

    func appendPath(_ t: Term, _ key: Term) -> Term {
        if case .ref(let head, let path) = t { return .ref(head, path + [key]) }
        return .ref(t, [key])
    }

    mutating func primary() throws(RegoError) -> Term {
        let tok = peek()
        try enter()
        defer { nesting -= 1 }
        switch tok.kind {
        case .number(let n):
            _ = next()
            if let i = Int64(n) { return .value(.int(i)) }
            guard let d = Double(n) else { throw error("invalid number \(n)", at: tok.pos) }
            return .value(.number(d))
        case .string(let s):
            _ = next()
            return .value(.string(s))
        case .ident(let s):
            switch s {
            case "true": _ = next(); return .value(.bool(true))
            case "false": _ = next(); return .value(.bool(false))
            case "null": _ = next(); return .value(.null)
            case "set" where tokens[min(index() + 1, tokens.count - 1)].kind == .op("("):
                _ = next()
                _ = next()
                try expect(")")
                return .value(.set([]))
            case "_":
                _ = next()
                wildcardCount += 1
                return .variable("$_\(wildcardCount)", tok.pos)
            default:
                if Self.keywords.contains(s) { throw error("unexpected keyword \"\(s)\"") }
                _ = next()
                return .variable(s, tok.pos)
            }
        case .op("("):
            _ = next()
            newlineSignificant.append(false)
            let t = try term()
            try expect(")")
            newlineSignificant.removeLast()
            return t
        case .op("["):
            _ = next()
            newlineSignificant.append(false)
            defer { newlineSignificant.removeLast() }
            if accept("]") { return .array([]) }
            let first = try intersection()
            if isOp("|") {
                // `[a | b]` is a comprehension when what follows `|` is a body, else a set union.
                let saved = self
                _ = next()
                if let body = try? comprehensionBody(close: "]") { return .arrayCompr(first, body) }
                self = saved
                backtracks.n += 1
                guard backtracks.n < 1000 else { throw error("expression too ambiguous") }
            }
            var items = [try membership(first)]
            while accept(",") {
                if isOp("]") { break }
                items.append(try term())
            }
            try expect("]")
            return .array(items)
        case .op("{"):
            _ = next()
            newlineSignificant.append(false)
            defer { newlineSignificant.removeLast() }
            if accept("}") { return .object([]) }
            let first = try intersection()
            if accept(":") {
                let v = try intersection()
                if accept("|") {
                    let body = try comprehensionBody(close: "}")
                    return .objectCompr(first, v, body)
                }
                var pairs = [(first, try membership(v))]
                while accept(",") {
                    if isOp("}") { break }
                    let k = try term()
                    try expect(":")
                    pairs.append((k, try term()))
                }
                try expect("}")
                return .object(pairs)
            }
            if isOp("|") {
                let saved = self
                _ = next()
                if let body = try? comprehensionBody(close: "}") { return .setCompr(first, body) }
                self = saved
                backtracks.n += 1
                guard backtracks.n < 1000 else { throw error("expression too ambiguous") }
            }
            var items = [try membership(first)]
            while accept(",") {
                if isOp("}") { break }
                items.append(try term())
            }
            try expect("}")
            return .set(items)
        default:
            throw error("unexpected \(describe(tok))")
        }
    }

    mutating func comprehensionBody(close: String) throws(RegoError) -> [Literal] {
        newlineSignificant.append(true)
        defer { newlineSignificant.removeLast() }
        var body: [Literal] = []
        while true {
            while peek().kind == .newline || isOp(";") { _ = next() }
            if accept(close) { break }
            body.append(try literal())
            let t = peek()
            switch t.kind {
            case .newline, .op(";"): _ = next()
            case .op(close): break
            default: throw error("unexpected \(describe(t)) in comprehension body")
            }
        }
        guard !body.isEmpty else { throw error("empty comprehension body") }
        return body
    }
}
