import Foundation
import Synchronization

/// Compiled regular expressions by (function, pattern argument). Patterns come from policy rows (a few
/// hundred distinct ones at most), so the cache is bounded by the policy size plus a cap for request-built
/// patterns. Keying by the raw argument means a policy pattern is translated and compiled once.
final class RegexCache: Sendable {
    struct Entry: Sendable {
        var regex: NSRegularExpressionBox?
        var names: [String]
        var pattern: String
    }

    private let entries = Mutex<[String: Entry]>([:])

    /// The compiled form of `raw` for function `kind`; `translate` turns it into a regex and placeholder names.
    func compiled(_ kind: String, _ raw: String, _ translate: (String) -> (String, [String]))
        throws(CasbinEvalError) -> (NSRegularExpression, [String])
    {
        let key = kind + "\u{0}" + raw
        let hit = entries.withLock { $0[key] }
        let entry: Entry
        if let hit {
            entry = hit
        } else {
            let (pattern, names) = translate(raw)
            entry = Entry(regex: (try? NSRegularExpression(pattern: pattern)).map(NSRegularExpressionBox.init),
                          names: names, pattern: pattern)
            entries.withLock { e in
                if e.count > 10_000 { e.removeAll() }
                e[key] = entry
            }
        }
        guard let r = entry.regex else { throw CasbinEvalError("invalid regular expression \"\(entry.pattern)\"") }
        return (r.regex, entry.names)
    }

    func regex(_ pattern: String) throws(CasbinEvalError) -> NSRegularExpression {
        try compiled("re", pattern) { ($0, []) }.0
    }
}

/// Carries a compiled regex across threads. NSRegularExpression is immutable once built and its matching
/// methods are documented thread-safe.
struct NSRegularExpressionBox: @unchecked Sendable {
    let regex: NSRegularExpression
}

extension NSRegularExpression {
    /// Search semantics: true when the pattern matches anywhere in `s`.
    func found(in s: String) -> Bool {
        firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    /// The capture groups of the first match (nil when there is none).
    func groups(in s: String) -> [String]? {
        guard let m = firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) else { return nil }
        var out: [String] = []
        for g in 1..<max(1, m.numberOfRanges) {
            if let r = Range(m.range(at: g), in: s) { out.append(String(s[r])) } else { out.append("") }
        }
        return out
    }
}

/// The matching functions of the matcher language.
enum Builtins {
    /// `keyMatch("/foo/bar", "/foo/*")`: `*` at the first star matches the rest.
    static func keyMatch(_ key1: String, _ key2: String) -> Bool {
        // Same as comparing code points up to the star: key1 must start with the part before it.
        guard let star = key2.utf8.firstIndex(of: UInt8(ascii: "*")) else { return key1.utf8.elementsEqual(key2.utf8) }
        return key1.utf8.starts(with: key2.utf8[..<star])
    }

    static func keyGet(_ key1: String, _ key2: String) -> String {
        let k1 = Array(key1.unicodeScalars), k2 = Array(key2.unicodeScalars)
        guard let i = k2.firstIndex(of: "*") else { return "" }
        if k1.count > i, k1[..<i] == k2[..<i] {
            var s = String.UnicodeScalarView()
            s.append(contentsOf: k1[i...])
            return String(s)
        }
        return ""
    }

    /// Replaces each `open…close` placeholder (as the reference's lazy/greedy regex substitutions do) by `with`.
    /// `colon`: `:name` runs up to the next `/`. Otherwise `{name}`: `greedy` takes the last `}` before a `/`.
    static func replacePlaceholders(_ s: String, colon: Bool, greedy: Bool, with: String,
                                    names: inout [String]) -> String {
        let c = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < c.count {
            if colon, c[i] == ":", i + 1 < c.count, c[i + 1] != "/" {
                var j = i + 1
                while j < c.count, c[j] != "/" { j += 1 }
                var n = String.UnicodeScalarView(); n.append(contentsOf: c[(i + 1)..<j]); names.append(String(n))
                out.append(contentsOf: with.unicodeScalars)
                i = j
                continue
            }
            if !colon, c[i] == "{" {
                var end: Int?
                var j = i + 1
                while j < c.count, c[j] != "/" {
                    if c[j] == "}", j >= i + 2 {
                        end = j
                        if !greedy { break }
                    }
                    j += 1
                }
                if let end {
                    var n = String.UnicodeScalarView(); n.append(contentsOf: c[(i + 1)..<end]); names.append(String(n))
                    out.append(contentsOf: with.unicodeScalars)
                    i = end + 1
                    continue
                }
            }
            out.append(c[i])
            i += 1
        }
        return String(out)
    }

    /// The anchored regex for a key pattern: `/*` → `/.*`, placeholders → `with`; `star`: a lone `*` is `(.*)`.
    static func translate(_ key2: String, colon: Bool, greedy: Bool, with: String, star: Bool) -> (String, [String]) {
        var names: [String] = []
        var p = replacePlaceholders(key2.replacingOccurrences(of: "/*", with: "/.*"), colon: colon, greedy: greedy,
                                    with: with, names: &names)
        if star && p == "*" { p = "(.*)" }
        return ("^" + p + "$", names)
    }

    static func keyMatch2(_ key1: String, _ key2: String, _ cache: RegexCache) throws(CasbinEvalError) -> Bool {
        try cache.compiled("k2", key2) { translate($0, colon: true, greedy: true, with: "[^/]+", star: true) }
            .0.found(in: key1)
    }

    static func keyGet2(_ key1: String, _ key2: String, _ name: String, _ cache: RegexCache) throws(CasbinEvalError) -> String {
        let (re, names) = try cache.compiled("g2", key2) {
            translate($0, colon: true, greedy: true, with: "([^/]+)", star: true)
        }
        guard let groups = re.groups(in: key1) else { return "" }
        for (i, n) in names.enumerated() where n == name && i < groups.count { return groups[i] }
        return ""
    }

    static func keyMatch3(_ key1: String, _ key2: String, _ cache: RegexCache) throws(CasbinEvalError) -> Bool {
        try cache.compiled("k3", key2) { translate($0, colon: false, greedy: false, with: "[^/]+", star: false) }
            .0.found(in: key1)
    }

    static func keyGet3(_ key1: String, _ key2: String, _ name: String, _ cache: RegexCache) throws(CasbinEvalError) -> String {
        let (re, names) = try cache.compiled("g3", key2) {
            translate($0, colon: false, greedy: false, with: "([^/]+?)", star: true)
        }
        guard let groups = re.groups(in: key1) else { return "" }
        for (i, n) in names.enumerated() where n == name && i < groups.count { return groups[i] }
        return ""
    }

    /// Like keyMatch3, and a placeholder used twice must match the same text both times.
    static func keyMatch4(_ key1: String, _ key2: String, _ cache: RegexCache) throws(CasbinEvalError) -> Bool {
        let (re, names) = try cache.compiled("k4", key2) {
            translate($0, colon: false, greedy: true, with: "([^/]+)", star: false)
        }
        guard let groups = re.groups(in: key1) else { return false }
        var seen: [String: String] = [:]
        for (i, n) in names.enumerated() where i < groups.count {
            if let prev = seen[n] { if prev != groups[i] { return false } } else { seen[n] = groups[i] }
        }
        return true
    }

    /// Like keyMatch3 on the path without its query string.
    static func keyMatch5(_ key1: String, _ key2: String, _ cache: RegexCache) throws(CasbinEvalError) -> Bool {
        var k1 = key1
        if let q = k1.firstIndex(of: "?") { k1 = String(k1[..<q]) }
        return try cache.compiled("k5", key2) {
            translate($0, colon: false, greedy: true, with: "[^/]+", star: false)
        }.0.found(in: k1)
    }

    /// Search semantics: the pattern may match anywhere unless anchored with `^`/`$`.
    static func regexMatch(_ key1: String, _ pattern: String, _ cache: RegexCache) throws(CasbinEvalError) -> Bool {
        try cache.regex(pattern).found(in: key1)
    }

    // MARK: glob

    static func globMatch(_ string: String, _ pattern: String) -> Bool {
        glob(Array(string.unicodeScalars)[...], Array(pattern.unicodeScalars)[...])
    }

    /// `*` matches a run of characters other than `/`, `?` one such character, `[a-z]`/`[!a-z]` a class,
    /// `\\` escapes the next character.
    private static func glob(_ s: ArraySlice<Unicode.Scalar>, _ p: ArraySlice<Unicode.Scalar>) -> Bool {
        var pi = p.startIndex, si = s.startIndex
        let pe = p.endIndex, se = s.endIndex
        while pi != pe {
            let c = p[pi]
            switch c {
            case "*":
                pi += 1
                while pi != pe && p[pi] == "*" { pi += 1 }
                if pi == pe { return !s[si...].contains("/") }
                var k = si
                while true {
                    if glob(s[k...], p[pi...]) { return true }
                    if k == se || s[k] == "/" { return false }
                    k += 1
                }
            case "?":
                if si == se || s[si] == "/" { return false }
                si += 1
                pi += 1
            case "[":
                if si == se || s[si] == "/" { return false }
                guard let next = rangeMatch(p, pi + 1, s[si]) else { return false }
                pi = next
                si += 1
            default:
                var lit = c
                pi += 1
                if c == "\\", pi != pe {
                    lit = p[pi]
                    pi += 1
                }
                if si == se || s[si] != lit { return false }
                si += 1
            }
        }
        return si == se
    }

    private static func rangeMatch(_ p: ArraySlice<Unicode.Scalar>, _ start: Int, _ test: Unicode.Scalar) -> Int? {
        var pi = start
        let pe = p.endIndex
        if pi == pe { return nil }
        let negate = p[pi] == "!" || p[pi] == "^"
        if negate { pi += 1 }
        var ok = false
        while pi != pe {
            var c = p[pi]
            pi += 1
            if c == "]" { break }
            if c == "\\" {
                if pi == pe { return nil }
                c = p[pi]
                pi += 1
            }
            if pi != pe, p[pi] == "-", pi + 1 != pe, p[pi + 1] != "]" {
                var c2 = p[pi + 1]
                pi += 2
                if c2 == "\\" {
                    if pi == pe { return nil }
                    c2 = p[pi]
                    pi += 1
                }
                if c.value <= test.value && test.value <= c2.value { ok = true }
            } else if c == test {
                ok = true
            }
        }
        return ok == negate ? nil : pi
    }

    // MARK: time

    /// `timeMatch("2026-01-01 00:00:00", "_")`: now is after the start and before the end (local time);
    /// `_` leaves that side open.
    static func timeMatch(_ start: String, _ end: String, now: Date) throws(CasbinEvalError) -> Bool {
        if start != "_" {
            guard let s = parseLocalTime(start) else { throw CasbinEvalError("timeMatch: bad time \"\(start)\"") }
            if !(now > s) { return false }
        }
        if end != "_" {
            guard let e = parseLocalTime(end) else { throw CasbinEvalError("timeMatch: bad time \"\(end)\"") }
            if !(now < e) { return false }
        }
        return true
    }

    /// `YYYY-MM-DD HH:MM:SS` in the process's time zone.
    static func parseLocalTime(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 19, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x20, b[13] == 0x3A, b[16] == 0x3A else { return nil }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10), let h = num(11..<13),
              let mi = num(14..<16), let s = num(17..<19), (1...12).contains(mo), (1...31).contains(d), h < 24,
              mi < 60, s < 60 else { return nil }
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour, c.minute, c.second) = (y, mo, d, h, mi, s)
        let cal = Calendar(identifier: .gregorian)
        guard let date = cal.date(from: c), cal.component(.day, from: date) == d else { return nil }
        return date
    }

    // MARK: ip

    /// `ipMatch("192.168.2.123", "192.168.2.0/24")`; the second may be an address or a CIDR block.
    static func ipMatch(_ ip1: String, _ ip2: String) throws(CasbinEvalError) -> Bool {
        guard let a = parseIP(ip1) else { throw CasbinEvalError("ipMatch: \"\(ip1)\" is not an IP address") }
        var addr = ip2
        var prefix: Int?
        if let slash = ip2.firstIndex(of: "/") {
            addr = String(ip2[..<slash])
            let p = String(ip2[ip2.index(after: slash)...])
            if let n = Int(p), p.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                prefix = n
            } else if let mask = parseIP(p), mask.count == 4 {
                // A netmask such as 255.255.255.0 must be contiguous ones.
                var bits = 0
                var seenZero = false
                for byte in mask {
                    for k in (0..<8).reversed() {
                        if byte >> UInt8(k) & 1 == 1 { if seenZero { return false }; bits += 1 } else { seenZero = true }
                    }
                }
                prefix = bits
            } else {
                return false
            }
        }
        guard let net = parseIP(addr) else { return false }
        let bits = prefix ?? net.count * 8
        guard bits >= 0, bits <= net.count * 8 else { return false }
        guard a.count == net.count else { return false }
        for i in 0..<a.count {
            let remaining = bits - i * 8
            if remaining <= 0 { break }
            let mask: UInt8 = remaining >= 8 ? 0xFF : UInt8(0xFF) << UInt8(8 - remaining)
            if a[i] & mask != net[i] & mask { return false }
        }
        return true
    }

    /// IPv4 dotted quad (no leading zeros) or IPv6 (with `::` and a trailing dotted quad); nil otherwise.
    static func parseIP(_ s: String) -> [UInt8]? {
        if s.contains(":") { return parseIPv6(s) }
        return parseIPv4(Substring(s))
    }

    private static func parseIPv4(_ s: Substring) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            if p.count > 1 && p.hasPrefix("0") { return nil }
            guard let v = UInt8(p) else { return nil }
            out.append(v)
        }
        return out
    }

    private static func parseIPv6(_ s: String) -> [UInt8]? {
        var text = Substring(s)
        if let pct = text.firstIndex(of: "%") { text = text[..<pct] }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, allowV4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            for (k, item) in items.enumerated() {
                if allowV4 && k == items.count - 1 && item.contains(".") {
                    guard let v4 = parseIPv4(item) else { return nil }
                    out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard !item.isEmpty, item.count <= 4, let v = UInt16(item, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        var words: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowV4: false), let tail = groups(halves[1], allowV4: true),
                  head.count + tail.count < 8 else { return nil }
            words = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let all = groups(halves[0], allowV4: true), all.count == 8 else { return nil }
            words = all
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}
