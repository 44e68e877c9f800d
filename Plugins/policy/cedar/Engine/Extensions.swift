/// An IPv4 or IPv6 address with a prefix length (a single address has the full length).
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public var isV6: Bool
    /// The address bits; IPv4 uses the low 32.
    public var bits: UInt128
    public var prefix: UInt8

    public var description: String {
        if !isV6 {
            let v = UInt32(truncatingIfNeeded: bits)
            return "\(v >> 24).\((v >> 16) & 255).\((v >> 8) & 255).\(v & 255)/\(prefix)"
        }
        var groups: [String] = []
        for i in stride(from: 7, through: 0, by: -1) {
            groups.append(String(UInt16(truncatingIfNeeded: bits >> (UInt128(i) * 16)), radix: 16))
        }
        return groups.joined(separator: ":") + "/\(prefix)"
    }

    var isLoopback: Bool {
        if isV6 { return bits == 1 && prefix >= 128 }
        return (bits >> 24) & 0xFF == 127 && prefix >= 8
    }

    var isMulticast: Bool {
        if isV6 { return bits >> 120 == 0xFF && prefix >= 8 }
        return (bits >> 24) & 0xF0 == 0xE0 && prefix >= 4
    }

    func isInRange(_ other: IPAddress) -> Bool {
        guard isV6 == other.isV6 else { return false }
        let width: UInt8 = isV6 ? 128 : 32
        let all: UInt128 = isV6 ? .max : UInt128(UInt32.max)
        func netmask(_ p: UInt8) -> UInt128 { p == 0 ? 0 : (all << UInt128(width - p)) & all }
        func hostmask(_ p: UInt8) -> UInt128 { p >= width ? 0 : all >> UInt128(p) }
        let selfNet = bits & netmask(prefix)
        let otherNet = other.bits & netmask(other.prefix)
        let selfBroadcast = bits | hostmask(prefix)
        let otherBroadcast = other.bits | hostmask(other.prefix)
        return otherNet <= selfNet && selfBroadcast <= otherBroadcast
    }

    /// Parses `a.b.c.d`, an IPv6 address, or either with `/prefix`. IPv4 embedded in IPv6 is refused.
    public static func parse(_ s: String) -> IPAddress? {
        let u = Array(s.utf8)
        guard u.count <= 43 else { return nil }
        let colons = u.filter { $0 == UInt8(ascii: ":") }.count
        let dots = u.filter { $0 == UInt8(ascii: ".") }.count
        if colons >= 2 && dots >= 2 { return nil }
        if let slash = u.firstIndex(of: UInt8(ascii: "/")) {
            let addr = Array(u[..<slash])
            let pre = Array(u[(slash + 1)...])
            if let v4 = parseV4(addr) {
                guard let p = parsePrefix(pre, max: 32, maxLen: 2) else { return nil }
                return IPAddress(isV6: false, bits: UInt128(v4), prefix: p)
            }
            if let v6 = parseV6(addr) {
                guard let p = parsePrefix(pre, max: 128, maxLen: 3) else { return nil }
                return IPAddress(isV6: true, bits: v6, prefix: p)
            }
            return nil
        }
        if let v4 = parseV4(u) { return IPAddress(isV6: false, bits: UInt128(v4), prefix: 32) }
        if let v6 = parseV6(u) { return IPAddress(isV6: true, bits: v6, prefix: 128) }
        return nil
    }

    static func parsePrefix(_ s: [UInt8], max: UInt8, maxLen: Int) -> UInt8? {
        guard !s.isEmpty, s.count <= maxLen, s.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        if s[0] == 48 && s.count > 1 { return nil }
        var v = 0
        for c in s { v = v * 10 + Int(c - 48) }
        return v <= Int(max) ? UInt8(v) : nil
    }

    static func parseV4(_ s: [UInt8]) -> UInt32? {
        let parts = s.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            if p.first == 48 && p.count > 1 { return nil }
            var v: UInt32 = 0
            for c in p { v = v * 10 + UInt32(c - 48) }
            guard v <= 255 else { return nil }
            out = out << 8 | v
        }
        return out
    }

    static func parseV6(_ s: [UInt8]) -> UInt128? {
        func groups(_ part: ArraySlice<UInt8>) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for g in part.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4 else { return nil }
                var v: UInt16 = 0
                for c in g {
                    guard let d = hexDigit(c) else { return nil }
                    v = v << 4 | UInt16(d)
                }
                out.append(v)
            }
            return out
        }
        var head: [UInt16]
        var tail: [UInt16] = []
        var compressed = false
        if let r = findDoubleColon(s) {
            compressed = true
            guard let h = groups(s[..<r]), let t = groups(s[(r + 2)...]) else { return nil }
            // A second "::" leaves an empty group behind, which `groups` refuses.
            head = h
            tail = t
            guard head.count + tail.count <= 7 else { return nil }
        } else {
            guard let h = groups(s[...]), h.count == 8 else { return nil }
            head = h
        }
        var all = head
        if compressed { all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail }
        var v: UInt128 = 0
        for g in all { v = v << 16 | UInt128(g) }
        return v
    }

    static func findDoubleColon(_ s: [UInt8]) -> Int? {
        guard s.count >= 2 else { return nil }
        for i in 0..<(s.count - 1) where s[i] == UInt8(ascii: ":") && s[i + 1] == UInt8(ascii: ":") { return i }
        return nil
    }

    static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
}

enum ExtensionParse {
    /// `-?digits.digits` with at most four fraction digits, within the Int64 range after scaling.
    static func decimal(_ s: String) -> Result<Int64, Failure> {
        var u = Array(s.utf8)[...]
        let negative = u.first == UInt8(ascii: "-")
        if negative { u = u.dropFirst() }
        guard let dot = u.firstIndex(of: UInt8(ascii: ".")) else { return .failure("`\(s)` is not a well-formed decimal value") }
        let l = u[..<dot], r = u[(dot + 1)...]
        func isDigits(_ x: ArraySlice<UInt8>) -> Bool { !x.isEmpty && x.allSatisfy { $0 >= 48 && $0 <= 57 } }
        guard isDigits(l), isDigits(r) else { return .failure("`\(s)` is not a well-formed decimal value") }
        let overflow = Result<Int64, Failure>.failure("overflow when converting to decimal")
        guard let lv = Int64((negative ? "-" : "") + String(decoding: l, as: UTF8.self)) else { return overflow }
        let (ls, o1) = lv.multipliedReportingOverflow(by: 10_000)
        if o1 { return overflow }
        guard r.count <= 4 else { return .failure("too many digits after the decimal in `\(s)`") }
        guard var rv = Int64(String(decoding: r, as: UTF8.self)) else { return overflow }
        for _ in 0..<(4 - r.count) { rv *= 10 }
        let (sum, o2) = negative ? ls.subtractingReportingOverflow(rv) : ls.addingReportingOverflow(rv)
        return o2 ? overflow : .success(sum)
    }

    /// `-?` then quantity-unit pairs in the order d, h, m, s, ms (each optional, at least one).
    static func duration(_ s: String) -> Result<Int64, Failure> {
        let invalid = Result<Int64, Failure>.failure("invalid duration pattern")
        let overflow = Result<Int64, Failure>.failure("Duration overflows internal representation")
        let u = Array(s.utf8)
        if u.isEmpty || s == "-" { return invalid }
        var i = 0
        let negative = u[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        // Slots: d, h, m, s, ms.
        var values: [UInt64?] = [nil, nil, nil, nil, nil]
        var lastSlot = -1
        while i < u.count {
            let start = i
            while i < u.count, u[i] >= 48, u[i] <= 57 { i += 1 }
            guard i > start, i < u.count else { return invalid }
            let digits = String(decoding: u[start..<i], as: UTF8.self)
            let slot: Int
            switch u[i] {
            case UInt8(ascii: "d"): slot = 0; i += 1
            case UInt8(ascii: "h"): slot = 1; i += 1
            case UInt8(ascii: "m"):
                if i + 1 < u.count, u[i + 1] == UInt8(ascii: "s") { slot = 4; i += 2 } else { slot = 2; i += 1 }
            case UInt8(ascii: "s"): slot = 3; i += 1
            default: return invalid
            }
            guard slot > lastSlot else { return invalid }
            lastSlot = slot
            guard let n = UInt64(digits) else { return overflow }
            values[slot] = n
        }
        func num(_ k: Int) -> UInt64 { values[k] ?? 0 }
        var ms: Int64
        if negative {
            guard num(4) <= UInt64(Int64.max) + 1 else { return overflow }
            ms = num(4) == UInt64(Int64.max) + 1 ? .min : -Int64(num(4))
        } else {
            guard num(4) <= UInt64(Int64.max) else { return overflow }
            ms = Int64(num(4))
        }
        for (k, mul) in [(3, Int64(1000)), (2, 60_000), (1, 3_600_000), (0, 86_400_000)] {
            guard num(k) <= UInt64(Int64.max) else { return overflow }
            let (p, o) = Int64(num(k)).multipliedReportingOverflow(by: mul)
            if o { return overflow }
            let (r, o2) = negative ? ms.subtractingReportingOverflow(p) : ms.addingReportingOverflow(p)
            if o2 { return overflow }
            ms = r
        }
        return .success(ms)
    }

    /// `YYYY-MM-DD`, optionally `THH:MM:SS`, then `.SSS` optional and `Z` or `+hhmm`/`-hhmm`.
    static func datetime(_ s: String) -> Result<Int64, Failure> {
        let u = Array(s.utf8)
        func digits(_ from: Int, _ n: Int) -> Int? {
            guard from + n <= u.count else { return nil }
            var v = 0
            for k in from..<(from + n) {
                guard u[k] >= 48, u[k] <= 57 else { return nil }
                v = v * 10 + Int(u[k] - 48)
            }
            return v
        }
        guard let y = digits(0, 4), u.count > 4, u[4] == UInt8(ascii: "-"), let mo = digits(5, 2), u.count > 7,
            u[7] == UInt8(ascii: "-"), let d = digits(8, 2)
        else { return .failure("invalid date pattern") }
        let dateValid = mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth(y, mo)
        let days = daysFromCivil(y, mo, d)
        if u.count == 10 {
            return dateValid ? .success(Int64(days) * 86_400_000) : .failure("invalid date")
        }
        guard u.count > 10, u[10] == UInt8(ascii: "T"), let h = digits(11, 2), u.count > 13,
            u[13] == UInt8(ascii: ":"), let mi = digits(14, 2), u.count > 16, u[16] == UInt8(ascii: ":"),
            let sec = digits(17, 2)
        else { return .failure("invalid hour/minute/second pattern") }
        var i = 19
        var ms = 0
        if i < u.count, u[i] == UInt8(ascii: ".") {
            guard let v = digits(i + 1, 3) else { return .failure("invalid millisecond and/or offset pattern") }
            ms = v
            i += 4
        }
        var offsetSeconds = 0
        var offsetValid = true
        if i < u.count, u[i] == UInt8(ascii: "Z"), i + 1 == u.count {
        } else if i < u.count, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-"), u.count == i + 5,
            let oh = digits(i + 1, 2), let om = digits(i + 3, 2)
        {
            offsetValid = oh < 24 && om < 60
            offsetSeconds = (oh * 3600 + om * 60) * (u[i] == UInt8(ascii: "+") ? 1 : -1)
        } else {
            return .failure("invalid millisecond and/or offset pattern")
        }
        guard dateValid else { return .failure("invalid date") }
        guard h < 24, mi < 60, sec < 60 else { return .failure("invalid hour/minute/second") }
        guard offsetValid else { return .failure("invalid offset range") }
        let total = Int64(days) * 86_400_000 + Int64(h * 3_600_000 + mi * 60_000 + sec * 1000 + ms)
            - Int64(offsetSeconds) * 1000
        return .success(total)
    }

    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 1, 3, 5, 7, 8, 10, 12: return 31
        case 4, 6, 9, 11: return 30
        default: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        }
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar.
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
