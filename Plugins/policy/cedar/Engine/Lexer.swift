/// One token of policy text.
enum TokenKind: Equatable, Sendable {
    case ident(String)
    /// Digits as written; range-checked by the parser, which knows about a leading `-`.
    case number(String)
    /// The text between the quotes, escapes not yet processed (patterns treat `\*` specially).
    case string(String)
    case slot(String)
    case punct(String)
    case eof
}

struct Token: Sendable {
    var kind: TokenKind
    var location: SourceLocation
}

/// Splits policy text into tokens; comments (`//` to end of line) and whitespace are skipped.
struct Lexer {
    let text: [Unicode.Scalar]
    var i = 0
    var line = 1
    var column = 1

    init(_ source: String) { text = Array(source.unicodeScalars) }

    static func tokenize(_ source: String) throws(CedarParseError) -> [Token] {
        var lx = Lexer(source)
        var out: [Token] = []
        while true {
            let t = try lx.next()
            out.append(t)
            if t.kind == .eof { return out }
        }
    }

    private var location: SourceLocation { SourceLocation(line: line, column: column) }

    private mutating func advance() {
        if text[i] == "\n" {
            line += 1
            column = 1
        } else {
            column += 1
        }
        i += 1
    }

    private func peek(_ off: Int = 0) -> Unicode.Scalar? { i + off < text.count ? text[i + off] : nil }

    private static func isIdentStart(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_"
    }
    private static func isIdentChar(_ c: Unicode.Scalar) -> Bool { isIdentStart(c) || (c >= "0" && c <= "9") }

    mutating func next() throws(CedarParseError) -> Token {
        while let c = peek() {
            if c.properties.isWhitespace {
                advance()
            } else if c == "/" && peek(1) == "/" {
                while let d = peek(), d != "\n", d != "\r" { advance() }
            } else {
                break
            }
        }
        let start = location
        guard let c = peek() else { return Token(kind: .eof, location: start) }
        if Self.isIdentStart(c) {
            var s = String.UnicodeScalarView()
            while let d = peek(), Self.isIdentChar(d) {
                s.append(d)
                advance()
            }
            return Token(kind: .ident(String(s)), location: start)
        }
        if c >= "0" && c <= "9" {
            var s = String.UnicodeScalarView()
            while let d = peek(), d >= "0" && d <= "9" {
                s.append(d)
                advance()
            }
            return Token(kind: .number(String(s)), location: start)
        }
        if c == "\"" {
            advance()
            var s = String.UnicodeScalarView()
            while true {
                guard let d = peek() else {
                    throw CedarParseError(location: start, message: "unterminated string literal")
                }
                if d == "\"" {
                    advance()
                    break
                }
                if d == "\\" {
                    guard let e = peek(1), e != "\n" else {
                        throw CedarParseError(location: location, message: "invalid escape in string literal")
                    }
                    s.append(d)
                    advance()
                    s.append(e)
                    advance()
                    continue
                }
                s.append(d)
                advance()
            }
            return Token(kind: .string(String(s)), location: start)
        }
        if c == "?" {
            advance()
            guard let d = peek(), Self.isIdentStart(d) else {
                throw CedarParseError(location: start, message: "unexpected character `?`")
            }
            var s = String.UnicodeScalarView()
            while let d = peek(), Self.isIdentChar(d) {
                s.append(d)
                advance()
            }
            return Token(kind: .slot(String(s)), location: start)
        }
        let two: [String] = ["::", "==", "!=", "<=", ">=", "||", "&&"]
        if let d = peek(1) {
            var pair = String(Character(c))
            pair.unicodeScalars.append(d)
            if two.contains(pair) {
                advance()
                advance()
                return Token(kind: .punct(pair), location: start)
            }
        }
        let one: Set<Unicode.Scalar> = [
            "@", ".", ",", ";", ":", "(", ")", "{", "}", "[", "]", "<", ">", "+", "-", "*", "/", "%", "!", "=",
        ]
        if one.contains(c) {
            advance()
            return Token(kind: .punct(String(Character(c))), location: start)
        }
        throw CedarParseError(location: start, message: "unexpected character `\(Character(c))`")
    }
}

/// Processes the escapes of a string literal: `\n \r \t \\ \0 \' \" \xHH \u{H…}`.
/// - Parameter pattern: when true, `\*` is a literal star and a bare `*` is a wildcard.
func unescape(_ raw: String, pattern: Bool) -> Result<[PatternElement], Failure> {
    let s = Array(raw.unicodeScalars)
    var out: [PatternElement] = []
    out.reserveCapacity(s.count)
    var i = 0
    while i < s.count {
        let c = s[i]
        if c != "\\" {
            if c == "\r" { return .failure("bare carriage return in string literal") }
            out.append(pattern && c == "*" ? .wildcard : .char(c))
            i += 1
            continue
        }
        guard i + 1 < s.count else { return .failure("the input `\\` is not a valid escape") }
        let e = s[i + 1]
        i += 2
        switch e {
        case "n": out.append(.char("\n"))
        case "r": out.append(.char("\r"))
        case "t": out.append(.char("\t"))
        case "\\": out.append(.char("\\"))
        case "0": out.append(.char("\0"))
        case "'": out.append(.char("'"))
        case "\"": out.append(.char("\""))
        case "*" where pattern: out.append(.char("*"))
        case "x":
            guard i + 1 < s.count, let h = hexValue(s[i]), let l = hexValue(s[i + 1]) else {
                return .failure("invalid hex escape")
            }
            let v = h * 16 + l
            guard v <= 0x7F, let sc = Unicode.Scalar(v) else { return .failure("out of range hex escape") }
            out.append(.char(sc))
            i += 2
        case "u":
            guard i < s.count, s[i] == "{" else { return .failure("invalid unicode escape") }
            i += 1
            var v: UInt32 = 0
            var n = 0
            while i < s.count, s[i] != "}" {
                if s[i] == "_" && n > 0 {
                    i += 1
                    continue
                }
                guard let d = hexValue(s[i]), n < 6 else { return .failure("invalid unicode escape") }
                v = v * 16 + d
                n += 1
                i += 1
            }
            guard i < s.count, n > 0, let sc = Unicode.Scalar(v) else { return .failure("invalid unicode escape") }
            i += 1
            out.append(.char(sc))
        default:
            return .failure("the input `\\\(Character(e))` is not a valid escape")
        }
    }
    return .success(out)
}

private func hexValue(_ c: Unicode.Scalar) -> UInt32? {
    switch c {
    case "0"..."9": return c.value - 48
    case "a"..."f": return c.value - 87
    case "A"..."F": return c.value - 55
    default: return nil
    }
}

func unescapeString(_ raw: String) -> Result<String, Failure> {
    switch unescape(raw, pattern: false) {
    case .failure(let e): return .failure(e)
    case .success(let elems):
        var s = String.UnicodeScalarView()
        for case .char(let c) in elems { s.append(c) }
        return .success(String(s))
    }
}
