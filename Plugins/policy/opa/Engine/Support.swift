#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// `glob.match` patterns: `*` (any run without a delimiter), `**` (any run), `?` (one non-delimiter),
/// `[abc]`, `[a-z]`, `[!…]`, `{a,b}` alternatives and `\` escapes. Compiled once per pattern and cached;
/// matching backtracks over Unicode scalars with a step budget, so no pattern can stall a request.
struct Glob {
    indirect enum Token: Sendable {
        case literal(Unicode.Scalar)
        case star
        case superStar
        case single
        case set([(Unicode.Scalar, Unicode.Scalar)], negated: Bool)
        case alternatives([[Token]])
    }

    let tokens: [Token]
    let delimiters: Set<Unicode.Scalar>
    static let cache = Mutex<[String: [Token]]>([:])

    init?(pattern: String, delimiters: [String]) {
        self.delimiters = Set(delimiters.flatMap { $0.unicodeScalars })
        if let t = Self.cache.withLock({ $0[pattern] }) {
            tokens = t
            return
        }
        var chars = Array(pattern.unicodeScalars)[...]
        guard let t = Self.parse(&chars, inAlternative: false), chars.isEmpty else { return nil }
        tokens = t
        Self.cache.withLock { c in
            if c.count > 1000 { c.removeAll() }
            c[pattern] = t
        }
    }

    /// Parses up to the end, or (inside `{…}`) up to an unconsumed `,` or `}`.
    static func parse(_ c: inout ArraySlice<Unicode.Scalar>, inAlternative: Bool) -> [Token]? {
        var out: [Token] = []
        while let ch = c.first {
            if inAlternative && (ch == "," || ch == "}") { return out }
            c.removeFirst()
            switch ch {
            case "*":
                if c.first == "*" {
                    c.removeFirst()
                    out.append(.superStar)
                } else {
                    out.append(.star)
                }
            case "?": out.append(.single)
            case "[":
                var negated = false
                if c.first == "!" {
                    negated = true
                    c.removeFirst()
                }
                var ranges: [(Unicode.Scalar, Unicode.Scalar)] = []
                var closed = false
                while let x = c.popFirst() {
                    if x == "]" {
                        closed = true
                        break
                    }
                    if c.first == "-", c.count >= 2, let hi = c.dropFirst().first, hi != "]" {
                        c.removeFirst(2)
                        ranges.append((x, hi))
                    } else {
                        ranges.append((x, x))
                    }
                }
                guard closed, !ranges.isEmpty else { return nil }
                out.append(.set(ranges, negated: negated))
            case "{":
                var alts: [[Token]] = []
                while true {
                    guard let alt = parse(&c, inAlternative: true), let end = c.popFirst() else { return nil }
                    alts.append(alt)
                    if end == "}" { break }
                }
                out.append(.alternatives(alts))
            case "\\":
                guard let x = c.popFirst() else { return nil }
                out.append(.literal(x))
            default: out.append(.literal(ch))
            }
        }
        return inAlternative ? nil : out
    }

    func matches(_ s: String) -> Bool {
        var budget = 100_000
        return match(tokens[...], Array(s.unicodeScalars)[...], &budget)
    }

    func match(_ t: ArraySlice<Token>, _ s: ArraySlice<Unicode.Scalar>, _ budget: inout Int) -> Bool {
        budget -= 1
        guard budget > 0 else { return false }
        guard let tok = t.first else { return s.isEmpty }
        let rest = t.dropFirst()
        switch tok {
        case .literal(let x):
            guard s.first == x else { return false }
            return match(rest, s.dropFirst(), &budget)
        case .single:
            guard let x = s.first, !delimiters.contains(x) else { return false }
            return match(rest, s.dropFirst(), &budget)
        case .set(let ranges, let negated):
            guard let x = s.first else { return false }
            let inSet = ranges.contains { $0.0 <= x && x <= $0.1 }
            guard inSet != negated else { return false }
            return match(rest, s.dropFirst(), &budget)
        case .star, .superStar:
            var i = s.startIndex
            while true {
                if match(rest, s[i...], &budget) { return true }
                guard i < s.endIndex else { return false }
                if case .star = tok, delimiters.contains(s[i]) { return false }
                i += 1
            }
        case .alternatives(let alts):
            for a in alts where match(a[...] + rest, s, &budget) { return true }
            return false
        }
    }
}

/// Calendar arithmetic in UTC on nanoseconds since the epoch (proleptic Gregorian, as Go's time package).
enum Time {
    static let nsPerDay: Int64 = 86_400_000_000_000

    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(_ ns: Int64) -> (y: Int64, m: Int64, d: Int64, h: Int64, min: Int64, s: Int64) {
        var days = ns / nsPerDay
        var rem = ns % nsPerDay
        if rem < 0 {
            rem += nsPerDay
            days -= 1
        }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        let secs = rem / 1_000_000_000
        return (y, m, d, secs / 3600, (secs / 60) % 60, secs % 60)
    }

    static func weekday(_ ns: Int64) -> String {
        var days = ns / nsPerDay
        if ns % nsPerDay < 0 { days -= 1 }
        let names = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"]
        return names[Int(((days % 7) + 7) % 7)]
    }

    /// The nanoseconds and zone offset of a time argument: a number, or `[ns, "UTC"]`. Other zones are not
    /// supported (undefined).
    static func nsArg(_ v: Value) -> (Int64, Int64)? {
        switch v {
        case .int(let i): return (i, 0)
        case .double(let d) where abs(d) < 9.2e18: return (Int64(d), 0)
        case .array(let a) where a.count == 2:
            guard let ns = a[0].intValue, let tz = a[1].stringValue, tz == "UTC" || tz == "" else { return nil }
            return (ns, 0)
        default: return nil
        }
    }

    static func addDate(_ ns: Int64, _ y: Int64, _ m: Int64, _ d: Int64) -> Int64? {
        guard abs(y) < 100_000, abs(m) < 1_200_000, abs(d) < 40_000_000 else { return nil }
        let c = civil(ns)
        let months = (c.y + y) * 12 + (c.m - 1) + m
        let ny = months >= 0 ? months / 12 : (months - 11) / 12
        let nm = months - ny * 12 + 1
        let days = daysFromCivil(ny, nm, 1) + (c.d - 1) + d
        var rem = ns % nsPerDay
        if rem < 0 { rem += nsPerDay }
        let (r, o1) = days.multipliedReportingOverflow(by: nsPerDay)
        guard !o1 else { return nil }
        let (t, o2) = r.addingReportingOverflow(rem)
        return o2 ? nil : t
    }

    /// RFC 3339 with optional fraction and `Z` or `±hh:mm` offset.
    static func parseRFC3339(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        func digits(_ at: Int, _ n: Int) -> Int64? {
            guard at + n <= b.count else { return nil }
            var v: Int64 = 0
            for i in at..<at + n {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard b.count >= 20, let y = digits(0, 4), b[4] == 45, let mo = digits(5, 2), b[7] == 45,
              let d = digits(8, 2), b[10] == 84 || b[10] == 116, let h = digits(11, 2), b[13] == 58,
              let mi = digits(14, 2), b[16] == 58, let se = digits(17, 2)
        else { return nil }
        guard (1...12).contains(mo), d >= 1, h < 24, mi < 60, se < 60 else { return nil }
        let monthDays: [Int64] = [31, (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31]
        guard d <= monthDays[Int(mo - 1)] else { return nil }
        var i = 19
        var frac: Int64 = 0
        if i < b.count && b[i] == 46 {
            i += 1
            var n = 0
            while i < b.count && b[i] >= 48 && b[i] <= 57 {
                if n < 9 { frac = frac * 10 + Int64(b[i] - 48) }
                n += 1
                i += 1
            }
            guard n > 0 else { return nil }
            for _ in n..<max(n, 9) { frac *= 10 }
        }
        var offset: Int64 = 0
        guard i < b.count else { return nil }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45 {
            guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == 58, let om = digits(i + 4, 2), oh < 24,
                  om < 60
            else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == 45 ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let secs = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset
        return secs * 1_000_000_000 + frac
    }
}

/// IP prefixes for `net.cidr_contains`.
enum CIDR {
    /// Address bytes and prefix length; a plain address is a full-length prefix.
    static func parse(_ s: String, requirePrefix: Bool) -> ([UInt8], Int)? {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, !(requirePrefix && parts.count != 2) else { return nil }
        let addr = String(parts[0])
        var bytes: [UInt8]
        if addr.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, addr, &a) == 1 else { return nil }
            bytes = withUnsafeBytes(of: &a) { Array($0) }
        } else {
            var a = in_addr()
            guard inet_pton(AF_INET, addr, &a) == 1 else { return nil }
            bytes = withUnsafeBytes(of: &a) { Array($0) }
        }
        var len = bytes.count * 8
        if parts.count == 2 {
            guard let n = Int(parts[1]), n >= 0, n <= len, !parts[1].hasPrefix("+") else { return nil }
            len = n
        }
        return (bytes, len)
    }

    static func masked(_ b: [UInt8], _ len: Int) -> [UInt8] {
        b.enumerated().map { i, byte in
            let bits = max(0, min(8, len - i * 8))
            return bits == 8 ? byte : byte & ~UInt8(truncatingIfNeeded: 0xFF >> bits)
        }
    }

    /// Whether `inner` (an address or a prefix) lies within `outer`; nil when either does not parse.
    static func contains(_ outer: String, _ inner: String) -> Bool? {
        guard let (ob, ol) = parse(outer, requirePrefix: true), let (ib, il) = parse(inner, requirePrefix: false)
        else { return nil }
        guard ob.count == ib.count else { return false }
        return il >= ol && masked(ib, ol) == masked(ob, ol)
    }
}
