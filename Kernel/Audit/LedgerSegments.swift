#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Segment files: a ledger rotates by renaming its file `<ledger>` to `<ledger>.<first seq>` (12 digits, zero
/// padded) right after a checkpoint, and continuing in a new `<ledger>` whose first record is a `segment` record.
/// The chain and the Merkle tree run on across segments.
public enum LedgerSegments {
    static let digits = 12

    /// The closed segment name (file name only) for a segment of `ledger` starting at `firstSeq`.
    public static func fileName(ledger: String, firstSeq: Int64) -> String {
        let number = String(firstSeq)
        return baseName(ledger) + "." + String(repeating: "0", count: max(0, digits - number.count)) + number
    }

    /// The closed segments of `ledger`, oldest first: (first seq from the name, full path).
    public static func closed(of ledger: String) -> [(firstSeq: Int64, path: String)] {
        let dir = directory(ledger)
        let prefix = baseName(ledger) + "."
        guard let handle = opendir(dir) else { return [] }
        defer { closedir(handle) }
        var found: [(Int64, String)] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix(prefix) else { continue }
            let tail = name.dropFirst(prefix.count)
            guard tail.count == digits, tail.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seq = Int64(tail),
                seq >= 1
            else { continue }
            found.append((seq, dir == "." && !ledger.hasPrefix("./") ? name : dir + "/" + name))
        }
        return found.sorted { $0.0 < $1.0 }
    }

    /// Every file of `ledger` in chain order: the closed segments, then the ledger file itself.
    public static func all(of ledger: String) -> [String] {
        closed(of: ledger).map(\.path) + [ledger]
    }

    static func directory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
