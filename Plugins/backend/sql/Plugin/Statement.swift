/// A tool's SQL with its `:name` placeholders found, outside string literals, quoted identifiers, comments and
/// dollar-quoted strings (`::` casts are left alone). Arguments are always bound as parameters, never spliced in.
struct ParsedStatement: Sendable, Equatable {
    /// The text with each placeholder replaced by `$1`, `$2` … (PostgreSQL) or `?1`, `?2` … (SQLite): one number
    /// per distinct name, first use first.
    let numbered: String
    /// Parameter names in number order.
    let names: [String]

    struct Problem: Error {
        var message: String
    }

    init(_ sql: String, marker: Character) throws(Problem) {
        let s = Array(sql.unicodeScalars)
        var out = String.UnicodeScalarView()
        var names: [String] = []
        var i = 0
        func isIdentStart(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic }
        func isIdent(_ c: Unicode.Scalar) -> Bool { isIdentStart(c) || ("0"..."9").contains(c) }
        /// Copies from `i` up to and including the terminator `end` (doubled terminators stay inside).
        func copyQuoted(_ end: Unicode.Scalar) throws(Problem) {
            out.append(s[i])
            i += 1
            while i < s.count {
                out.append(s[i])
                if s[i] == end {
                    if i + 1 < s.count, s[i + 1] == end {
                        out.append(s[i + 1])
                        i += 2
                        continue
                    }
                    i += 1
                    return
                }
                i += 1
            }
            throw Problem(message: "unterminated \(end == "'" ? "string literal" : "quoted identifier")")
        }
        while i < s.count {
            let c = s[i]
            let next: Unicode.Scalar? = i + 1 < s.count ? s[i + 1] : nil
            if c == "'" || c == "\"" || c == "`" {
                try copyQuoted(c)
            } else if c == "-", next == "-" {
                while i < s.count, s[i] != "\n" {
                    out.append(s[i])
                    i += 1
                }
            } else if c == "/", next == "*" {
                guard let close = (i + 2..<max(i + 2, s.count)).first(where: { $0 + 1 < s.count && s[$0] == "*" && s[$0 + 1] == "/" })
                else { throw Problem(message: "unterminated /* comment") }
                for k in i...(close + 1) { out.append(s[k]) }
                i = close + 2
            } else if c == "$", let n = next, n == "$" || isIdentStart(n) {
                // A dollar-quoted string: $tag$ … $tag$.
                var j = i + 1
                while j < s.count, s[j] != "$", isIdent(s[j]) { j += 1 }
                guard j < s.count, s[j] == "$" else {
                    out.append(c)
                    i += 1
                    continue
                }
                let tag = Array(s[i...j])
                var k = j + 1
                var found = -1
                while k + tag.count <= s.count {
                    if Array(s[k..<(k + tag.count)]) == tag {
                        found = k
                        break
                    }
                    k += 1
                }
                guard found >= 0 else { throw Problem(message: "unterminated dollar-quoted string") }
                for m in i..<(found + tag.count) { out.append(s[m]) }
                i = found + tag.count
            } else if c == ":", next == ":" {
                out.append(c)
                out.append(":")
                i += 2
            } else if c == ":", let n = next, isIdentStart(n) {
                var j = i + 1
                while j < s.count, isIdent(s[j]) { j += 1 }
                let name = String(String.UnicodeScalarView(s[(i + 1)..<j]))
                let number: Int
                if let k = names.firstIndex(of: name) {
                    number = k + 1
                } else {
                    names.append(name)
                    number = names.count
                }
                out.append(contentsOf: "\(marker)\(number)".unicodeScalars)
                i = j
            } else if c == "?" || (c == "$" && next.map { ("0"..."9").contains($0) } == true) {
                throw Problem(message: "use :name placeholders (positional ? and $N are not accepted)")
            } else {
                out.append(c)
                i += 1
            }
        }
        numbered = String(out)
        self.names = names
    }
}
