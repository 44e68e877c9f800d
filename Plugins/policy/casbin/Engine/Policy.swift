/// One policy or role line as loaded: its values and where it came from.
struct PolicyRow: Sendable {
    var values: [CasbinValue]
    var strings: [String]
    var line: Int
    var columns: [Int]
    /// For `eval(p.field)` matchers: the compiled rule of each field used that way (nil elsewhere).
    var rules: [Expr?] = []
}

/// Splits policy CSV into rows: `#` comments and blank lines are skipped, fields are trimmed, a field may be
/// double-quoted (`""` is a quote inside), and commas inside `(…)`/`[…]` do not split (so a rule such as
/// `r.sub.Age in (18, 20)` stays one field).
enum PolicyCSV {
    struct Line {
        var fields: [String]
        var columns: [Int]
        var line: Int
    }

    static func parse(_ text: String, file: String) throws(CasbinLoadError) -> [Line] {
        var out: [Line] = []
        var lineNo = 0
        for raw in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNo += 1
            let bytes = Array(raw)
            var i = 0
            var n = bytes.count
            while n > 0, bytes[n - 1] == 0x0D || bytes[n - 1] == 0x20 || bytes[n - 1] == 0x09 { n -= 1 }
            while i < n, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
            if i == n || bytes[i] == UInt8(ascii: "#") { continue }
            func fail(_ at: Int, _ message: String) -> CasbinLoadError {
                CasbinLoadError(file: file, line: lineNo, column: at + 1, message: message)
            }
            var fields: [String] = []
            var columns: [Int] = []
            while true {
                while i < n, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
                let start = i
                var field: [UInt8] = []
                if i < n, bytes[i] == 0x22 {
                    i += 1
                    var closed = false
                    while i < n {
                        if bytes[i] == 0x22 {
                            if i + 1 < n, bytes[i + 1] == 0x22 {
                                field.append(0x22)
                                i += 2
                                continue
                            }
                            closed = true
                            i += 1
                            break
                        }
                        field.append(bytes[i])
                        i += 1
                    }
                    guard closed else { throw fail(start, "unterminated quoted field") }
                    while i < n, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
                    guard i == n || bytes[i] == UInt8(ascii: ",") else { throw fail(i, "expected `,` after a quoted field") }
                } else {
                    var depth: [UInt8] = []
                    while i < n {
                        let c = bytes[i]
                        if c == UInt8(ascii: ","), depth.isEmpty { break }
                        if c == UInt8(ascii: "(") || c == UInt8(ascii: "[") { depth.append(c) }
                        if c == UInt8(ascii: ")") || c == UInt8(ascii: "]") {
                            guard depth.popLast() != nil else { throw fail(i, "unbalanced `\(UnicodeScalar(c))`") }
                        }
                        field.append(c)
                        i += 1
                    }
                    if !depth.isEmpty { throw fail(start, "unclosed bracket in field") }
                    while let last = field.last, last == 0x20 || last == 0x09 { field.removeLast() }
                }
                fields.append(String(decoding: field, as: UTF8.self))
                columns.append(start + 1)
                if i < n, bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                break
            }
            out.append(Line(fields: fields, columns: columns, line: lineNo))
        }
        return out
    }
}

/// The role links of one role definition (`g`, `g2`, …) and, for each user, every role it reaches.
///
/// A user reaches a role through at most `maxHops` links (role hierarchies deeper than that are cut off, as
/// the reference role manager does with its hierarchy level of 10 counting the user itself).
struct RoleGraph: Sendable {
    static let maxHops = 9
    let withDomains: Bool
    /// domain ("" without domains) → user → direct roles.
    var edges: [String: [String: [String]]] = [:]
    var reach: [String: [String: Set<String>]] = [:]

    init(withDomains: Bool) { self.withDomains = withDomains }

    mutating func add(_ user: String, _ role: String, domain: String) {
        edges[withDomains ? domain : "", default: [:]][user, default: []].append(role)
    }

    mutating func finish() {
        for (domain, users) in edges {
            var d: [String: Set<String>] = [:]
            for user in users.keys { d[user] = reachable(from: user, extra: [], domain: domain) }
            reach[domain] = d
        }
    }

    /// Roles `user` reaches in `domain`; `extra` are direct roles added for this request only.
    func reachable(from user: String, extra: [String], domain: String) -> Set<String> {
        let links = edges[withDomains ? domain : ""] ?? [:]
        var seen: Set<String> = [user]
        var result: Set<String> = []
        var frontier = [user]
        for hop in 1...Self.maxHops {
            var next: [String] = []
            if hop == 1 {
                for r in extra where seen.insert(r).inserted { next.append(r) }
            }
            for u in frontier {
                for r in links[u] ?? [] where seen.insert(r).inserted { next.append(r) }
            }
            if next.isEmpty { break }
            result.formUnion(next)
            frontier = next
        }
        return result
    }

    func hasLink(_ a: String, _ b: String, domain: String) -> Bool {
        if a == b { return true }
        return reach[withDomains ? domain : ""]?[a]?.contains(b) ?? false
    }
}
