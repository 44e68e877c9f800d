/// "Did you mean …?" for unknown keys.
enum Suggestion {
    /// The candidate closest to `word`, if it is close enough to be a likely typo: same letters ignoring case
    /// and `-`/`_`, within an edit distance that grows with the word's length (1 up to 4 characters, 2 up
    /// to 8, else 3), or a prefix of the candidate at least 3 characters long ("warn" for "warning").
    static func closest(to word: String, in candidates: [String]) -> String? {
        let w = normalized(word)
        let limit = w.count <= 4 ? 1 : w.count <= 8 ? 2 : 3
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let c = normalized(candidate)
            var d = distance(w, c)
            if w.count >= 3, c.starts(with: w) { d = min(d, limit) }
            if d <= limit, d < (best?.distance ?? .max) { best = (candidate, d) }
        }
        return best?.name
    }

    /// `"; did you mean "x"?"`, or empty when nothing is close.
    static func hint(for word: String, in candidates: [String]) -> String {
        closest(to: word, in: candidates).map { "; did you mean \(quoted($0))?" } ?? ""
    }

    private static func normalized(_ s: String) -> [Character] {
        Array(s.lowercased().map { $0 == "-" ? "_" : $0 })
    }

    /// Levenshtein distance, with a transposition of neighbours counting as one edit.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}
