/// A compiled matcher expression. Names are resolved when compiling: request and policy fields become
/// slots, function names become built-ins or role lookups, so evaluation does no string lookups.
indirect enum Expr: Sendable {
    case literal(CasbinValue)
    case request(Int)
    case policy(Int)
    case attribute(Expr, String)
    case index(Expr, Expr)
    case not(Expr)
    case negate(Expr)
    /// `a && b && …`, flat so long chains do not nest: the first falsy operand, else the last.
    case and([Expr])
    /// `a || b || …`: the first truthy operand, else the last.
    case or([Expr])
    /// `a op b op c …` with Python chaining: each adjacent pair must hold.
    case compare([Expr], [CompareOp])
    case arithmetic(ArithOp, Expr, Expr)
    case list([Expr])
    case call(Builtin, [Expr])
    /// `g(…)` of the role definition at this index in `CasbinEnforcer.roleKeys`.
    case role(Int, [Expr])
    /// `eval(p.field)`: the rule text in that policy field, compiled per policy row.
    case evalRule(Int)
}

enum CompareOp: Sendable { case eq, ne, lt, le, gt, ge, isIn, notIn }
enum ArithOp: Sendable { case add, sub, mul, div, mod }

enum Builtin: String, Sendable, CaseIterable {
    case keyMatch, keyMatch2, keyMatch3, keyMatch4, keyMatch5, keyGet, keyGet2, keyGet3, regexMatch, globMatch
    case ipMatch, timeMatch

    var arity: Int {
        switch self {
        case .keyGet2, .keyGet3: return 3
        default: return 2
        }
    }
}

/// What names a matcher may use.
struct NameScope {
    var requestKey: String
    var requestTokens: [String]
    var policyKey: String
    var policyTokens: [String]
    var roleKeys: [String]
    var allowEval: Bool
}

private enum Token: Equatable {
    case ident(String)
    case number(CasbinValue)
    case string(String)
    case op(String)
    case end
}

/// Lexer + recursive-descent parser over UTF-8 bytes. Errors carry the byte offset, mapped to line:col by
/// the caller. Precedence, lowest first: `||`/`or`, `&&`/`and`, `!`/`not`, comparisons (incl. `in`),
/// `+ -`, `* / %`, unary minus, call/attribute.
struct ExprParser {
    struct Failure: Error {
        var offset: Int
        var message: String
    }

    private let bytes: [UInt8]
    private var tokens: [(Token, Int)] = []
    private var pos = 0
    private var depth = 0
    private let scope: NameScope
    /// Nesting and length limits keep parsing and evaluation recursion far from the stack's end.
    static let maxDepth = 64
    static let maxTokens = 2048

    static func parse(_ text: String, scope: NameScope) throws(Failure) -> Expr {
        var p = ExprParser(bytes: Array(text.utf8), scope: scope)
        try p.lex()
        guard p.tokens.count <= maxTokens else {
            throw Failure(offset: 0, message: "expression longer than \(maxTokens) tokens")
        }
        let e = try p.parseOr()
        guard case .end = p.peek else { throw Failure(offset: p.offset, message: "unexpected \(p.describe(p.peek))") }
        return e
    }

    private init(bytes: [UInt8], scope: NameScope) {
        self.bytes = bytes
        self.scope = scope
    }

    private var peek: Token { tokens[pos].0 }
    private var offset: Int { tokens[pos].1 }

    private func describe(_ t: Token) -> String {
        switch t {
        case .ident(let s): return "`\(s)`"
        case .number(let v): return "number \(v)"
        case .string(let s): return "string \"\(s)\""
        case .op(let s): return "`\(s)`"
        case .end: return "end of expression"
        }
    }

    private mutating func lex() throws(Failure) {
        var i = 0
        let n = bytes.count
        func isIdentStart(_ c: UInt8) -> Bool { c == 0x5F || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) }
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        while i < n {
            let c = bytes[i]
            if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1; continue }
            let start = i
            if isIdentStart(c) {
                while i < n, isIdentStart(bytes[i]) || isDigit(bytes[i]) { i += 1 }
                tokens.append((.ident(String(decoding: bytes[start..<i], as: UTF8.self)), start))
            } else if isDigit(c) || (c == 0x2E && i + 1 < n && isDigit(bytes[i + 1])) {
                var isFloat = false
                while i < n, isDigit(bytes[i]) { i += 1 }
                if i < n, bytes[i] == 0x2E {
                    isFloat = true
                    i += 1
                    while i < n, isDigit(bytes[i]) { i += 1 }
                }
                if i < n, bytes[i] | 0x20 == 0x65 {
                    var j = i + 1
                    if j < n, bytes[j] == 0x2B || bytes[j] == 0x2D { j += 1 }
                    if j < n, isDigit(bytes[j]) {
                        isFloat = true
                        i = j
                        while i < n, isDigit(bytes[i]) { i += 1 }
                    }
                }
                let text = String(decoding: bytes[start..<i], as: UTF8.self)
                if !isFloat, let v = Int64(text) {
                    tokens.append((.number(.int(v)), start))
                } else if let d = Double(text) {
                    tokens.append((.number(.double(d)), start))
                } else {
                    throw Failure(offset: start, message: "bad number \(text)")
                }
            } else if c == 0x22 || c == 0x27 {
                i += 1
                var out: [UInt8] = []
                var closed = false
                while i < n {
                    let d = bytes[i]
                    if d == c { closed = true; i += 1; break }
                    if d == 0x0A { break }
                    if d == 0x5C, i + 1 < n {
                        let e = bytes[i + 1]
                        switch e {
                        case UInt8(ascii: "n"): out.append(0x0A)
                        case UInt8(ascii: "t"): out.append(0x09)
                        case UInt8(ascii: "r"): out.append(0x0D)
                        case 0x5C, 0x22, 0x27: out.append(e)
                        default: out.append(0x5C); out.append(e)
                        }
                        i += 2
                        continue
                    }
                    out.append(d)
                    i += 1
                }
                guard closed else { throw Failure(offset: start, message: "unterminated string") }
                tokens.append((.string(String(decoding: out, as: UTF8.self)), start))
            } else {
                let two = i + 1 < n ? String(decoding: bytes[i...i + 1], as: UTF8.self) : ""
                if ["&&", "||", "==", "!=", "<=", ">="].contains(two) {
                    tokens.append((.op(two), start))
                    i += 2
                } else if "!<>+-*/%(),.[]".utf8.contains(c) {
                    tokens.append((.op(String(UnicodeScalar(c))), start))
                    i += 1
                } else {
                    throw Failure(offset: start, message: "unexpected character `\(String(decoding: [c], as: UTF8.self))`")
                }
            }
        }
        tokens.append((.end, n))
    }

    private mutating func accept(_ op: String) -> Bool {
        if case .op(let o) = peek, o == op { pos += 1; return true }
        return false
    }

    private mutating func acceptWord(_ w: String) -> Bool {
        if case .ident(let o) = peek, o == w { pos += 1; return true }
        return false
    }

    private mutating func expect(_ op: String) throws(Failure) {
        guard accept(op) else { throw Failure(offset: offset, message: "expected `\(op)`, got \(describe(peek))") }
    }

    private mutating func parseOr() throws(Failure) -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw Failure(offset: offset, message: "expression nested too deeply") }
        var items = [try parseAnd()]
        while accept("||") || acceptWord("or") { items.append(try parseAnd()) }
        return items.count == 1 ? items[0] : .or(items)
    }

    private mutating func parseAnd() throws(Failure) -> Expr {
        var items = [try parseNot()]
        while accept("&&") || acceptWord("and") { items.append(try parseNot()) }
        return items.count == 1 ? items[0] : .and(items)
    }

    private mutating func parseNot() throws(Failure) -> Expr {
        if accept("!") || acceptWord("not") {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw Failure(offset: offset, message: "expression nested too deeply") }
            return .not(try parseNot())
        }
        return try parseComparison()
    }

    private mutating func parseComparison() throws(Failure) -> Expr {
        let first = try parseSum()
        var operands = [first]
        var ops: [CompareOp] = []
        while true {
            let op: CompareOp
            if accept("==") { op = .eq }
            else if accept("!=") { op = .ne }
            else if accept("<=") { op = .le }
            else if accept(">=") { op = .ge }
            else if accept("<") { op = .lt }
            else if accept(">") { op = .gt }
            else if acceptWord("in") { op = .isIn }
            else if case .ident("not") = peek, pos + 1 < tokens.count, tokens[pos + 1].0 == .ident("in") {
                pos += 2
                op = .notIn
            } else { break }
            ops.append(op)
            operands.append(try parseSum())
        }
        return ops.isEmpty ? first : .compare(operands, ops)
    }

    private mutating func parseSum() throws(Failure) -> Expr {
        var l = try parseTerm()
        while true {
            if accept("+") { l = .arithmetic(.add, l, try parseTerm()) }
            else if accept("-") { l = .arithmetic(.sub, l, try parseTerm()) }
            else { return l }
        }
    }

    private mutating func parseTerm() throws(Failure) -> Expr {
        var l = try parseUnary()
        while true {
            if accept("*") { l = .arithmetic(.mul, l, try parseUnary()) }
            else if accept("/") { l = .arithmetic(.div, l, try parseUnary()) }
            else if accept("%") { l = .arithmetic(.mod, l, try parseUnary()) }
            else { return l }
        }
    }

    private mutating func parseUnary() throws(Failure) -> Expr {
        if case .op(let o) = peek, o == "-" || o == "+" {
            pos += 1
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw Failure(offset: offset, message: "expression nested too deeply") }
            let x = try parseUnary()
            return o == "-" ? .negate(x) : .arithmetic(.add, .literal(.int(0)), x)
        }
        return try parsePostfix()
    }

    private mutating func parsePostfix() throws(Failure) -> Expr {
        var e = try parseAtom()
        while true {
            if accept(".") {
                let at = offset
                guard case .ident(let name) = peek else { throw Failure(offset: at, message: "expected a name after `.`") }
                pos += 1
                e = .attribute(e, name)
            } else if accept("[") {
                let i = try parseOr()
                try expect("]")
                e = .index(e, i)
            } else if case .op("(") = peek {
                throw Failure(offset: offset, message: "only named functions can be called")
            } else {
                return e
            }
        }
    }

    private mutating func parseArguments() throws(Failure) -> [Expr] {
        var args: [Expr] = []
        if accept(")") { return args }
        repeat { args.append(try parseOr()) } while accept(",")
        try expect(")")
        return args
    }

    private mutating func parseAtom() throws(Failure) -> Expr {
        let at = offset
        switch peek {
        case .number(let v):
            pos += 1
            return .literal(v)
        case .string(let s):
            pos += 1
            return .literal(.string(s))
        case .op("("):
            pos += 1
            let first = try parseOr()
            if accept(")") { return first }
            var items = [first]
            while accept(",") {
                if case .op(")") = peek { break }
                items.append(try parseOr())
            }
            try expect(")")
            return .list(items)
        case .op("["):
            pos += 1
            var items: [Expr] = []
            if !accept("]") {
                repeat {
                    if case .op("]") = peek { break }
                    items.append(try parseOr())
                } while accept(",")
                try expect("]")
            }
            return .list(items)
        case .ident(let name):
            pos += 1
            if accept("(") { return try call(name, at: at) }
            return try resolve(name, at: at)
        default:
            throw Failure(offset: at, message: "unexpected \(describe(peek))")
        }
    }

    private mutating func call(_ name: String, at: Int) throws(Failure) -> Expr {
        let argsAt = offset
        let args = try parseArguments()
        if name == "eval" {
            guard scope.allowEval else { throw Failure(offset: at, message: "eval() cannot be nested in a rule") }
            guard args.count == 1, case .policy(let i) = args[0] else {
                throw Failure(offset: argsAt, message: "eval() takes one policy field, like eval(p.rule)")
            }
            return .evalRule(i)
        }
        if let r = scope.roleKeys.firstIndex(of: name) {
            guard args.count == 2 || args.count == 3 else {
                throw Failure(offset: argsAt, message: "\(name)() takes 2 or 3 arguments, got \(args.count)")
            }
            return .role(r, args)
        }
        guard let b = Builtin(rawValue: name) else { throw Failure(offset: at, message: "unknown function `\(name)`") }
        guard args.count == b.arity else {
            throw Failure(offset: argsAt, message: "\(name)() takes \(b.arity) arguments, got \(args.count)")
        }
        return .call(b, args)
    }

    private mutating func resolve(_ name: String, at: Int) throws(Failure) -> Expr {
        switch name {
        case "true", "True": return .literal(.bool(true))
        case "false", "False": return .literal(.bool(false))
        case "None", "nil": return .literal(.null)
        default: break
        }
        // Both `r.sub` and the escaped `r_sub` spelling name a field.
        for (key, tokens, isRequest) in [(scope.requestKey, scope.requestTokens, true),
                                         (scope.policyKey, scope.policyTokens, false)] {
            var field: String?
            if name == key {
                guard accept(".") else { throw Failure(offset: at, message: "`\(name)` needs a field, like \(name).\(tokens.first ?? "sub")") }
                guard case .ident(let f) = peek else { throw Failure(offset: offset, message: "expected a field name after `\(name).`") }
                pos += 1
                field = f
            } else if name.hasPrefix(key + "_") {
                field = String(name.dropFirst(key.count + 1))
            }
            guard let field else { continue }
            guard let i = tokens.firstIndex(of: field) else {
                throw Failure(offset: at, message: "`\(key)` has no field `\(field)` (fields: \(tokens.joined(separator: ", ")))")
            }
            return isRequest ? .request(i) : .policy(i)
        }
        throw Failure(offset: at, message: "unknown name `\(name)`")
    }
}
