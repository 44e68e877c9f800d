/// A position in a policy file, 1-based.
public struct SourcePos: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var col: Int
    public var description: String { "\(line):\(col)" }
}

/// A load or evaluation error. Load errors carry the file and position; evaluation errors carry a position
/// when one is known (the rule or expression that failed).
public struct RegoError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var pos: SourcePos?
    public var message: String

    public init(file: String = "", pos: SourcePos? = nil, _ message: String) {
        self.file = file
        self.pos = pos
        self.message = message
    }

    public var description: String {
        var s = ""
        if !file.isEmpty { s += file + ":" }
        if let pos { s += "\(pos.line):\(pos.col): " } else if !s.isEmpty { s += " " }
        return s + message
    }
}

enum TokenKind: Equatable {
    case ident(String)
    case string(String)
    case number(String)
    case op(String)
    case newline
    case eof
}

struct Token {
    var kind: TokenKind
    var pos: SourcePos
}

/// Splits policy text into tokens. Newlines are tokens because they end expressions in rule bodies.
struct Lexer {
    static func tokenize(_ text: String, file: String) throws(RegoError) -> [Token] {
        let b = Array(text.utf8)
        var i = 0, line = 1, lineStart = 0
        var out: [Token] = []
        func pos(_ at: Int) -> SourcePos { SourcePos(line: line, col: at - lineStart + 1) }
        func isIdentStart(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 }
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        while i < b.count {
            let c = b[i]
            if c == 10 {
                out.append(Token(kind: .newline, pos: pos(i)))
                i += 1
                line += 1
                lineStart = i
                continue
            }
            if c == 32 || c == 9 || c == 13 {
                i += 1
                continue
            }
            if c == 35 {  // '#': comment to end of line
                while i < b.count && b[i] != 10 { i += 1 }
                continue
            }
            let start = i
            if isIdentStart(c) {
                while i < b.count && (isIdentStart(b[i]) || isDigit(b[i])) { i += 1 }
                out.append(Token(kind: .ident(String(decoding: b[start..<i], as: UTF8.self)), pos: pos(start)))
                continue
            }
            if isDigit(c) {
                while i < b.count && isDigit(b[i]) { i += 1 }
                if i + 1 < b.count && b[i] == 46 && isDigit(b[i + 1]) {
                    i += 1
                    while i < b.count && isDigit(b[i]) { i += 1 }
                }
                if i < b.count && (b[i] == 101 || b[i] == 69) {
                    var j = i + 1
                    if j < b.count && (b[j] == 43 || b[j] == 45) { j += 1 }
                    if j < b.count && isDigit(b[j]) {
                        i = j
                        while i < b.count && isDigit(b[i]) { i += 1 }
                    }
                }
                out.append(Token(kind: .number(String(decoding: b[start..<i], as: UTF8.self)), pos: pos(start)))
                continue
            }
            if c == 34 {  // '"'
                i += 1
                var bytes: [UInt8] = []
                var closed = false
                while i < b.count {
                    let d = b[i]
                    if d == 34 {
                        closed = true
                        i += 1
                        break
                    }
                    if d == 10 { break }
                    if d == 92 {
                        guard i + 1 < b.count else { break }
                        let e = b[i + 1]
                        i += 2
                        switch e {
                        case 34: bytes.append(34)
                        case 92: bytes.append(92)
                        case 47: bytes.append(47)
                        case 98: bytes.append(8)
                        case 102: bytes.append(12)
                        case 110: bytes.append(10)
                        case 114: bytes.append(13)
                        case 116: bytes.append(9)
                        case 117:
                            guard i + 4 <= b.count, let cp = UInt32(String(decoding: b[i..<i + 4], as: UTF8.self),
                                                                      radix: 16)
                            else { throw RegoError(file: file, pos: pos(i - 2), "invalid \\u escape in string") }
                            i += 4
                            var scalar = Unicode.Scalar(cp)
                            // A surrogate pair encodes one scalar outside the basic plane.
                            if cp >= 0xD800 && cp < 0xDC00, i + 6 <= b.count, b[i] == 92, b[i + 1] == 117,
                               let lo = UInt32(String(decoding: b[i + 2..<i + 6], as: UTF8.self), radix: 16),
                               lo >= 0xDC00 && lo < 0xE000
                            {
                                scalar = Unicode.Scalar(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00))
                                i += 6
                            }
                            bytes.append(contentsOf: Array(String(Character(scalar ?? "\u{FFFD}")).utf8))
                        default:
                            throw RegoError(file: file, pos: pos(i - 2), "invalid escape in string")
                        }
                        continue
                    }
                    bytes.append(d)
                    i += 1
                }
                guard closed else { throw RegoError(file: file, pos: pos(start), "unterminated string") }
                out.append(Token(kind: .string(String(decoding: bytes, as: UTF8.self)), pos: pos(start)))
                continue
            }
            if c == 96 {  // '`': raw string, may span lines
                i += 1
                let s = i
                let startPos = pos(start)
                while i < b.count && b[i] != 96 {
                    if b[i] == 10 {
                        line += 1
                        lineStart = i + 1
                    }
                    i += 1
                }
                guard i < b.count else { throw RegoError(file: file, pos: startPos, "unterminated raw string") }
                out.append(Token(kind: .string(String(decoding: b[s..<i], as: UTF8.self)), pos: startPos))
                i += 1
                continue
            }
            let two = i + 1 < b.count ? String(decoding: b[i...i + 1], as: UTF8.self) : ""
            if [":=", "==", "!=", "<=", ">="].contains(two) {
                out.append(Token(kind: .op(two), pos: pos(i)))
                i += 2
                continue
            }
            let one = String(UnicodeScalar(c))
            if "{}[](),;:.=<>+-*/%|&!".contains(one) {
                out.append(Token(kind: .op(one), pos: pos(i)))
                i += 1
                continue
            }
            throw RegoError(file: file, pos: pos(i), "unexpected character \(JSONText.quote(one))")
        }
        out.append(Token(kind: .eof, pos: pos(i)))
        return out
    }
}

enum JSONText {
    static func quote(_ s: String) -> String { "\"" + s + "\"" }
}
