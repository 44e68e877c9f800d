// Tool-name globs, shared by the plugins that scope rules by tool (rules, redact, and user plugins).

/// Several globs: names without wildcards go in a set, a bare `*` matches all, the rest are compiled.
public struct GlobSet: Sendable {
    public let matchesAll: Bool
    public let exact: Set<String>
    public let globs: [Glob]

    public init(_ patterns: [String]) {
        var exact: Set<String> = []
        var globs: [Glob] = []
        var all = false
        for p in patterns {
            if p.utf8.allSatisfy({ $0 == UInt8(ascii: "*") }) {
                all = true
            } else if p.utf8.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }) {
                globs.append(Glob(p))
            } else {
                exact.insert(p)
            }
        }
        matchesAll = all
        self.exact = exact
        self.globs = globs
    }

    public func matches(_ name: String) -> Bool {
        if matchesAll || exact.contains(name) { return true }
        if globs.isEmpty { return false }
        var n = name
        return n.withUTF8 { text in globs.contains { $0.matches(text) } }
    }
}

/// A glob over UTF-8: `*` matches any run (also empty), `?` exactly one character (Unicode scalar), anything
/// else itself. Matching is iterative with a single backtrack point, so it is O(pattern × text) at worst,
/// never exponential.
public struct Glob: Sendable {
    public let pattern: [UInt8]

    public init(_ pattern: String) { self.pattern = Array(pattern.utf8) }

    public func matches(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let star = UInt8(ascii: "*")
        let any = UInt8(ascii: "?")
        let m = pattern.count
        let n = text.count
        var p = 0
        var t = 0
        var starP = -1
        var starT = 0
        while t < n {
            if p < m && pattern[p] == star {
                starP = p
                p += 1
                starT = t
            } else if p < m && pattern[p] == any {
                p += 1
                t = Self.nextScalar(text, after: t)
            } else if p < m && pattern[p] == text[t] {
                p += 1
                t += 1
            } else if starP >= 0 {
                // Let the last `*` swallow one more character and retry the rest of the pattern from there.
                p = starP + 1
                starT = Self.nextScalar(text, after: starT)
                t = starT
            } else {
                return false
            }
        }
        while p < m && pattern[p] == star { p += 1 }
        return p == m
    }

    /// The index after the scalar starting at `i` (skips UTF-8 continuation bytes).
    private static func nextScalar(_ text: UnsafeBufferPointer<UInt8>, after i: Int) -> Int {
        var j = i + 1
        while j < text.count && text[j] & 0xC0 == 0x80 { j += 1 }
        return j
    }
}
