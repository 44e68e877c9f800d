/// Parses Cedar policy text into policies. Every error names the line and column where it was found.
public enum CedarParser {
    /// Parses a whole policy file (zero or more policies).
    public static func parsePolicies(_ source: String) throws(CedarParseError) -> [Policy] {
        var p = Parser(tokens: try Lexer.tokenize(source))
        var out: [Policy] = []
        while !p.atEOF { out.append(try p.parsePolicy()) }
        return out
    }

    /// Parses an entity reference such as `User::"alice"` or `A::B::"x"`.
    public static func parseEntityUID(_ source: String) throws(CedarParseError) -> EntityUID {
        var p = Parser(tokens: try Lexer.tokenize(source))
        let uid = try p.parseEntityRef()
        guard p.atEOF else { throw p.error("unexpected token after the entity reference") }
        return uid
    }

    /// Parses an entity type name such as `User` or `A::B`, as used in entity JSON.
    public static func parseTypeName(_ source: String) throws(CedarParseError) -> String {
        var p = Parser(tokens: try Lexer.tokenize(source))
        let (path, loc) = try p.parsePath()
        guard p.atEOF else { throw p.error("unexpected token after the type name") }
        return try Parser.validName(path, loc)
    }
}

/// An expression before it is known to be one: names, string literals and variables mean different things
/// depending on where they end up (a `has` operand, a record key, a method receiver).
enum Node {
    case expr(Expr, SourceLocation)
    case name([String], SourceLocation)
    case string(String, SourceLocation)
    case number(String, SourceLocation)
    case variable(Variable, SourceLocation)
}

private let reservedWords: Set<String> = ["true", "false", "if", "then", "else", "in", "is", "has", "like"]
private let builtinMethods: Set<String> = ["contains", "containsAll", "containsAny", "isEmpty", "getTag", "hasTag"]

struct Parser {
    let tokens: [Token]
    var i = 0
    /// Token index where the current `when`/`unless` body began. The body's length bounds the depth of its
    /// expression tree, so capping it keeps parsing, evaluation and deallocation (all recursive) off the
    /// end of the stack whatever the input.
    var clauseStart = Int.max
    static let maxClauseTokens = 1000
    /// Parenthesised, `if`, set, record and argument nesting; each level is several parser frames.
    var nesting = 0
    static let maxNesting = 32
    /// Deepest expression tree a condition may have (evaluation recurses once per level).
    static let maxTreeDepth = 200

    init(tokens: [Token]) { self.tokens = tokens }

    var tok: Token { tokens[min(i, tokens.count - 1)] }
    var atEOF: Bool { tok.kind == .eof }

    func error(_ message: String, at loc: SourceLocation? = nil) -> CedarParseError {
        CedarParseError(location: loc ?? tok.location, message: message)
    }

    func budget() throws(CedarParseError) {
        if i > clauseStart && i - clauseStart > Self.maxClauseTokens {
            throw error("condition is too long (more than \(Self.maxClauseTokens) tokens)")
        }
    }

    func isPunct(_ p: String) -> Bool { tok.kind == .punct(p) }
    func isIdent(_ s: String) -> Bool { tok.kind == .ident(s) }

    mutating func take() -> Token {
        let t = tok
        if i < tokens.count - 1 { i += 1 }
        return t
    }

    mutating func expect(_ p: String) throws(CedarParseError) {
        guard isPunct(p) else { throw error("expected `\(p)`, found \(describe(tok))") }
        _ = take()
    }

    func describe(_ t: Token) -> String {
        switch t.kind {
        case .ident(let s): return "`\(s)`"
        case .number(let s): return "`\(s)`"
        case .string(let s): return "\"\(s)\""
        case .slot(let s): return "`?\(s)`"
        case .punct(let s): return "`\(s)`"
        case .eof: return "end of input"
        }
    }

    mutating func anyIdent() throws(CedarParseError) -> (String, SourceLocation) {
        guard case .ident(let s) = tok.kind else { throw error("expected an identifier, found \(describe(tok))") }
        let loc = take().location
        return (s, loc)
    }

    /// Parses `a, b, c` with an optional trailing comma, up to (not including) `close`.
    mutating func commaList<T>(
        until close: String, _ item: (inout Parser) throws(CedarParseError) -> T
    ) throws(CedarParseError) -> [T] {
        var out: [T] = []
        while !isPunct(close) {
            out.append(try item(&self))
            if isPunct(",") { _ = take() } else { break }
        }
        return out
    }

    /// `Ident {:: Ident}` (stops before a `::` that is followed by a string).
    mutating func parsePath() throws(CedarParseError) -> ([String], SourceLocation) {
        let (first, loc) = try anyIdent()
        var path = [first]
        while isPunct("::"), i + 1 < tokens.count, case .ident(let s) = tokens[i + 1].kind {
            _ = take()
            _ = take()
            path.append(s)
        }
        return (path, loc)
    }

    /// Validates a type name: no reserved words, no `__cedar` namespace.
    static func validName(_ path: [String], _ loc: SourceLocation) throws(CedarParseError) -> String {
        for p in path where reservedWords.contains(p) {
            throw CedarParseError(location: loc, message: "this identifier is reserved and cannot be used: \(p)")
        }
        if path.contains("__cedar") {
            throw CedarParseError(
                location: loc, message: "The name `\(path.joined(separator: "::"))` contains `__cedar`, which is reserved")
        }
        return path.joined(separator: "::")
    }

    static func unescaped(_ raw: String, _ loc: SourceLocation) throws(CedarParseError) -> String {
        switch unescapeString(raw) {
        case .success(let s): return s
        case .failure(let m): throw CedarParseError(location: loc, message: m.message)
        }
    }

    /// `Path::"id"`.
    mutating func parseEntityRef() throws(CedarParseError) -> EntityUID {
        let (path, loc) = try parsePath()
        guard isPunct("::") else { throw error("expected an entity reference like `Type::\"id\"`", at: loc) }
        _ = take()
        guard case .string(let raw) = tok.kind else { throw error("invalid entity literal", at: loc) }
        let sloc = take().location
        return EntityUID(type: try Self.validName(path, loc), id: try Self.unescaped(raw, sloc))
    }

    // MARK: Expressions

    /// The depth of an expression tree, measured without recursion.
    func treeDepth(_ root: Expr) -> Int {
        var stack: [(Expr, Int)] = [(root, 1)]
        var deepest = 0
        while let (e, d) = stack.popLast() {
            deepest = max(deepest, d)
            if deepest > Self.maxTreeDepth { return deepest }
            switch e {
            case .literal, .variable: break
            case .ifThenElse(let a, let b, let c): stack += [(a, d + 1), (b, d + 1), (c, d + 1)]
            case .and(let a, let b), .or(let a, let b), .binary(_, let a, let b): stack += [(a, d + 1), (b, d + 1)]
            case .not(let a), .neg(let a), .isEmpty(let a), .getAttr(let a, _), .hasAttr(let a, _), .like(let a, _),
                .isType(let a, _):
                stack.append((a, d + 1))
            case .andAll(let xs), .orAll(let xs), .call(_, let xs), .set(let xs): stack += xs.map { ($0, d + 1) }
            case .record(let items): stack += items.map { ($0.1, d + 1) }
            }
        }
        return deepest
    }

    func toExpr(_ n: Node) throws(CedarParseError) -> Expr {
        switch n {
        case .expr(let e, _): return e
        case .variable(let v, _): return .variable(v)
        case .string(let raw, let loc): return .literal(.string(try Self.unescaped(raw, loc)))
        case .number(let digits, let loc):
            guard let v = Int64(digits) else { throw error("integer literal `\(digits)` is too large", at: loc) }
            return .literal(.long(v))
        case .name(let path, let loc):
            if path.count == 1 {
                if reservedWords.contains(path[0]) {
                    throw error("this identifier is reserved and cannot be used: \(path[0])", at: loc)
                }
                throw error("invalid variable: \(path[0])", at: loc)
            }
            throw error("`\(path.joined(separator: "::"))` is not a valid expression", at: loc)
        }
    }

    func location(_ n: Node) -> SourceLocation {
        switch n {
        case .expr(_, let l), .name(_, let l), .string(_, let l), .number(_, let l), .variable(_, let l): return l
        }
    }

    mutating func parseExpr() throws(CedarParseError) -> Node {
        try budget()
        nesting += 1
        defer { nesting -= 1 }
        if nesting > Self.maxNesting { throw error("expression nested too deeply (more than \(Self.maxNesting) levels)") }
        if isIdent("if") {
            let loc = take().location
            let c = try toExpr(try parseExpr())
            guard isIdent("then") else { throw error("expected `then`, found \(describe(tok))") }
            _ = take()
            let t = try toExpr(try parseExpr())
            guard isIdent("else") else { throw error("expected `else`, found \(describe(tok))") }
            _ = take()
            let e = try toExpr(try parseExpr())
            return .expr(.ifThenElse(c, t, e), loc)
        }
        return try parseOr()
    }

    mutating func parseOr() throws(CedarParseError) -> Node {
        let first = try parseAnd()
        guard isPunct("||") else { return first }
        var items = [try toExpr(first)]
        while isPunct("||") {
            try budget()
            _ = take()
            items.append(try toExpr(try parseAnd()))
        }
        return .expr(items.count == 2 ? .or(items[0], items[1]) : .orAll(items), location(first))
    }

    mutating func parseAnd() throws(CedarParseError) -> Node {
        let first = try parseRelation()
        guard isPunct("&&") else { return first }
        var items = [try toExpr(first)]
        while isPunct("&&") {
            try budget()
            _ = take()
            items.append(try toExpr(try parseRelation()))
        }
        return .expr(items.count == 2 ? .and(items[0], items[1]) : .andAll(items), location(first))
    }

    func relOp() -> String? {
        switch tok.kind {
        case .punct(let p) where ["==", "!=", "<", "<=", ">", ">=", "="].contains(p): return p
        case .ident("in"): return "in"
        default: return nil
        }
    }

    mutating func parseRelation() throws(CedarParseError) -> Node {
        let first = try parseAdd()
        let loc = location(first)
        if let op = relOp() {
            let opLoc = take().location
            if op == "=" { throw error("'=' is not a valid operator in Cedar", at: opLoc) }
            let a = try toExpr(first)
            let b = try toExpr(try parseAdd())
            if relOp() != nil {
                throw error(
                    "multiple relational operators (>, ==, in, etc.) must be used with parentheses to make ordering explicit",
                    at: loc)
            }
            let e: Expr
            switch op {
            case "==": e = .binary(.eq, a, b)
            case "!=": e = .not(.binary(.eq, a, b))
            case "<": e = .binary(.less, a, b)
            case "<=": e = .binary(.lessEq, a, b)
            case ">": e = .binary(.less, b, a)
            case ">=": e = .binary(.lessEq, b, a)
            default: e = .binary(.inOp, a, b)
            }
            return .expr(e, loc)
        }
        if isIdent("has") {
            _ = take()
            let target = try toExpr(first)
            var attrs: [String] = []
            switch tok.kind {
            case .string(let raw):
                let sloc = take().location
                attrs = [try Self.unescaped(raw, sloc)]
            case .ident(let s):
                let sloc = take().location
                if reservedWords.contains(s) {
                    throw error("this identifier is reserved and cannot be used: \(s)", at: sloc)
                }
                attrs = [s]
                while isPunct(".") {
                    try budget()
                    _ = take()
                    let (n, nloc) = try anyIdent()
                    if reservedWords.contains(n) {
                        throw error("this identifier is reserved and cannot be used: \(n)", at: nloc)
                    }
                    attrs.append(n)
                }
            default:
                throw error("invalid RHS of a `has` operation: \(describe(tok))")
            }
            if isPunct(".") || isPunct("[") || isPunct("(") || isPunct("::") {
                throw error("invalid RHS of a `has` operation")
            }
            var e: Expr = .hasAttr(target, attrs[0])
            var base: Expr = target
            for k in 1..<max(attrs.count, 1) where k < attrs.count {
                base = .getAttr(base, attrs[k - 1])
                e = .and(e, .hasAttr(base, attrs[k]))
            }
            return .expr(e, loc)
        }
        if isIdent("like") {
            _ = take()
            let target = try toExpr(first)
            guard case .string(let raw) = tok.kind else {
                throw error("right hand side of a `like` expression must be a pattern literal")
            }
            let ploc = take().location
            if isPunct(".") || isPunct("[") || isPunct("(") {
                throw error("right hand side of a `like` expression must be a pattern literal", at: ploc)
            }
            switch unescape(raw, pattern: true) {
            case .success(let pat): return .expr(.like(target, pat), loc)
            case .failure(let m): throw error(m.message, at: ploc)
            }
        }
        if isIdent("is") {
            _ = take()
            let target = try toExpr(first)
            guard case .ident = tok.kind else {
                throw error("right hand side of an `is` expression must be an entity type name")
            }
            let (path, ploc) = try parsePath()
            if isPunct("::") || isPunct(".") || isPunct("(") || isPunct("[") {
                throw error("right hand side of an `is` expression must be an entity type name", at: ploc)
            }
            if path.count == 1, ["principal", "action", "resource", "context"].contains(path[0]) {
                throw error("right hand side of an `is` expression must be an entity type name", at: ploc)
            }
            let type = try Self.validName(path, ploc)
            if isIdent("in") {
                _ = take()
                let rhs = try toExpr(try parseAdd())
                return .expr(.and(.isType(target, type), .binary(.inOp, target, rhs)), loc)
            }
            return .expr(.isType(target, type), loc)
        }
        return first
    }

    mutating func parseAdd() throws(CedarParseError) -> Node {
        let first = try parseMult()
        guard isPunct("+") || isPunct("-") else { return first }
        var e = try toExpr(first)
        while isPunct("+") || isPunct("-") {
            try budget()
            let plus = take().kind == .punct("+")
            let r = try toExpr(try parseMult())
            e = .binary(plus ? .add : .sub, e, r)
        }
        return .expr(e, location(first))
    }

    mutating func parseMult() throws(CedarParseError) -> Node {
        let first = try parseUnary()
        guard isPunct("*") || isPunct("/") || isPunct("%") else { return first }
        var e = try toExpr(first)
        while isPunct("*") || isPunct("/") || isPunct("%") {
            try budget()
            let t = take()
            if t.kind == .punct("/") { throw error("division is not supported", at: t.location) }
            if t.kind == .punct("%") { throw error("remainder/modulo is not supported", at: t.location) }
            e = .binary(.mul, e, try toExpr(try parseUnary()))
        }
        return .expr(e, location(first))
    }

    mutating func parseUnary() throws(CedarParseError) -> Node {
        let loc = tok.location
        if isPunct("!") {
            var n = 0
            while isPunct("!") {
                try budget()
                _ = take()
                n += 1
            }
            let m = try parseMember()
            if n > 4 { throw error("too many occurrences of `!`", at: loc) }
            var e = try toExpr(m)
            for _ in 0..<n { e = .not(e) }
            return .expr(e, loc)
        }
        if isPunct("-") {
            var n = 0
            while isPunct("-") {
                try budget()
                _ = take()
                n += 1
            }
            let m = try parseMember()
            if n > 4 { throw error("too many occurrences of `-`", at: loc) }
            var e: Expr
            var rest = n
            if case .number(let digits, let nloc) = m {
                guard let mag = UInt64(digits), mag <= UInt64(Int64.max) + 1 else {
                    throw error("integer literal `\(digits)` is too large", at: nloc)
                }
                e = .literal(.long(mag == UInt64(Int64.max) + 1 ? .min : -Int64(mag)))
                rest -= 1
            } else {
                e = try toExpr(m)
            }
            for _ in 0..<rest { e = .neg(e) }
            return .expr(e, loc)
        }
        return try parseMember()
    }

    enum Accessor {
        case field(String, SourceLocation)
        case call([Expr], SourceLocation)
        case index(String, SourceLocation)
    }

    mutating func parseMember() throws(CedarParseError) -> Node {
        let prim = try parsePrimary()
        var acc: [Accessor] = []
        while true {
            try budget()
            if isPunct(".") {
                _ = take()
                let (name, loc) = try anyIdent()
                if reservedWords.contains(name) {
                    throw error("this identifier is reserved and cannot be used: \(name)", at: loc)
                }
                acc.append(.field(name, loc))
            } else if isPunct("(") {
                let loc = take().location
                let args = try commaList(until: ")") { (p: inout Parser) throws(CedarParseError) -> Expr in
                    try p.toExpr(try p.parseExpr())
                }
                try expect(")")
                acc.append(.call(args, loc))
            } else if isPunct("[") {
                let loc = take().location
                let inner = try parseExpr()
                guard case .string(let raw, let sloc) = inner else {
                    throw error("the contents of an index expression must be a string literal", at: loc)
                }
                try expect("]")
                acc.append(.index(try Self.unescaped(raw, sloc), loc))
            } else {
                break
            }
        }
        if acc.isEmpty { return prim }
        let loc = location(prim)
        var head: Expr
        var k = 0
        switch prim {
        case .name(let path, let nloc):
            switch acc[0] {
            case .call(let args, let cloc):
                head = try functionCall(path, args, nloc, cloc)
                k = 1
            case .field(let f, _):
                if acc.count > 1, case .call = acc[1] {
                    throw error(
                        "attempted to call `\(path.joined(separator: "::")).\(f)(...)`, but it does not have any methods",
                        at: nloc)
                }
                throw error("invalid member access `\(path.joined(separator: "::")).\(f)`", at: nloc)
            case .index:
                throw error("invalid indexing expression on `\(path.joined(separator: "::"))`", at: nloc)
            }
        case .variable(let v, _):
            if case .call = acc[0] { throw error("variables cannot be called as functions", at: loc) }
            head = .variable(v)
        default:
            head = try toExpr(prim)
        }
        while k < acc.count {
            switch acc[k] {
            case .call(_, let cloc):
                throw error("function calls must be of the form `<name>(arg1, arg2, ...)`", at: cloc)
            case .field(let name, let floc):
                if k + 1 < acc.count, case .call(let args, _) = acc[k + 1] {
                    head = try methodCall(name, head, args, floc)
                    k += 2
                } else {
                    head = .getAttr(head, name)
                    k += 1
                }
            case .index(let s, _):
                head = .getAttr(head, s)
                k += 1
            }
        }
        return .expr(head, loc)
    }

    func functionCall(
        _ path: [String], _ args: [Expr], _ loc: SourceLocation, _ cloc: SourceLocation
    ) throws(CedarParseError) -> Expr {
        let name = path.joined(separator: "::")
        if path.count == 1 {
            if builtinMethods.contains(name) || ExtensionFunction(rawValue: name)?.isMethod == true {
                throw error("`\(name)` is a method, not a function", at: loc)
            }
            if let f = ExtensionFunction(rawValue: name) { return .call(f, args) }
        }
        throw error("`\(name)` is not a valid function", at: loc)
    }

    func methodCall(_ name: String, _ recv: Expr, _ args: [Expr], _ loc: SourceLocation) throws(CedarParseError)
        -> Expr
    {
        func one() throws(CedarParseError) -> Expr {
            guard args.count == 1 else {
                throw error(
                    "call to `\(name)` requires exactly 1 argument, but got \(args.count) argument\(args.count == 1 ? "" : "s")",
                    at: loc)
            }
            return args[0]
        }
        switch name {
        case "contains": return .binary(.contains, recv, try one())
        case "containsAll": return .binary(.containsAll, recv, try one())
        case "containsAny": return .binary(.containsAny, recv, try one())
        case "getTag": return .binary(.getTag, recv, try one())
        case "hasTag": return .binary(.hasTag, recv, try one())
        case "isEmpty":
            guard args.isEmpty else {
                throw error(
                    "call to `isEmpty` requires exactly 0 arguments, but got \(args.count) argument\(args.count == 1 ? "" : "s")",
                    at: loc)
            }
            return .isEmpty(recv)
        default:
            guard let f = ExtensionFunction(rawValue: name) else { throw error("`\(name)` is not a valid method", at: loc) }
            guard f.isMethod else { throw error("`\(name)` is a function, not a method", at: loc) }
            return .call(f, [recv] + args)
        }
    }

    mutating func parsePrimary() throws(CedarParseError) -> Node {
        let t = tok
        switch t.kind {
        case .number(let digits):
            _ = take()
            return .number(digits, t.location)
        case .string(let raw):
            _ = take()
            return .string(raw, t.location)
        case .slot(let s):
            throw error("found template slot ?\(s) in an expression", at: t.location)
        case .punct("("):
            _ = take()
            let inner = try toExpr(try parseExpr())
            try expect(")")
            return .expr(inner, t.location)
        case .punct("["):
            _ = take()
            let items = try commaList(until: "]") { (p: inout Parser) throws(CedarParseError) -> Expr in
                try p.toExpr(try p.parseExpr())
            }
            try expect("]")
            return .expr(.set(items), t.location)
        case .punct("{"):
            _ = take()
            let items = try commaList(until: "}") { (p: inout Parser) throws(CedarParseError) -> (String, Expr) in
                let keyNode = try p.parseExpr()
                let key: String
                switch keyNode {
                case .string(let raw, let loc): key = try Self.unescaped(raw, loc)
                case .variable(let v, _): key = "\(v)"
                case .name(let path, let loc) where path.count == 1:
                    if reservedWords.contains(path[0]) {
                        throw p.error("this identifier is reserved and cannot be used: \(path[0])", at: loc)
                    }
                    key = path[0]
                default:
                    throw p.error("invalid attribute name", at: p.location(keyNode))
                }
                try p.expect(":")
                return (key, try p.toExpr(try p.parseExpr()))
            }
            try expect("}")
            var seen: Set<String> = []
            for (k, _) in items where !seen.insert(k).inserted {
                throw error("duplicate key `\(k)` in record literal", at: t.location)
            }
            return .expr(.record(items), t.location)
        case .ident(let s):
            if s == "true" || s == "false" {
                _ = take()
                if isPunct("::") { throw error("this identifier is reserved and cannot be used: \(s)", at: t.location) }
                return .expr(.literal(.bool(s == "true")), t.location)
            }
            if s == "if" { throw error("this identifier is reserved and cannot be used: if", at: t.location) }
            let (path, loc) = try parsePath()
            if isPunct("::") {
                _ = take()
                guard case .string(let raw) = tok.kind else { throw error("invalid entity literal", at: loc) }
                let sloc = take().location
                let type = try Self.validName(path, loc)
                return .expr(.literal(.entity(EntityUID(type: type, id: try Self.unescaped(raw, sloc)))), loc)
            }
            if path.count == 1 {
                switch s {
                case "principal": return .variable(.principal, loc)
                case "action": return .variable(.action, loc)
                case "resource": return .variable(.resource, loc)
                case "context": return .variable(.context, loc)
                default: break
                }
            } else {
                _ = try Self.validName(path, loc)
            }
            return .name(path, loc)
        default:
            throw error("unexpected token \(describe(t))")
        }
    }
}
