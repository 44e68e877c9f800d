extension YAMLScalar {
    /// Resolves a plain (unquoted) scalar by YAML 1.1 rules, as PyYAML and libyaml-based loaders do:
    ///
    /// - null: empty, `~`, `null`, `Null`, `NULL`;
    /// - bool: `true`/`false`, `yes`/`no`, `on`/`off`, each lowercase, capitalised or uppercase;
    /// - int: decimal, `0x` hex, `0b` binary, leading-`0` octal, base 60 (`1:30` is 90), `_` separators,
    ///   optional sign; values beyond 64 bits stay strings;
    /// - float: digits with a `.` and optional exponent, `.inf`, `-.inf`, `.nan`;
    /// - anything else: a string.
    public static func resolve(plain text: String) -> Value {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return .bool(true)
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
        case ".nan", ".NaN", ".NAN": return .float(.nan)
        default: break
        }
        if let i = integer(text) { return .int(i) }
        if let d = float(text) { return .float(d) }
        return .string(text)
    }

    private static func integer(_ text: String) -> Int64? {
        var body = Substring(text)
        var negative = false
        if let first = body.first, first == "-" || first == "+" {
            negative = first == "-"
            body = body.dropFirst()
        }
        guard let first = body.first, first.isASCII, first.isNumber else { return nil }
        let magnitude: UInt64?
        if body.hasPrefix("0x") {
            magnitude = digits(body.dropFirst(2), radix: 16)
        } else if body.hasPrefix("0b") {
            magnitude = digits(body.dropFirst(2), radix: 2)
        } else if body.contains(":") {
            magnitude = sexagesimal(body)
        } else if body.count > 1 && first == "0" {
            magnitude = digits(body.dropFirst(), radix: 8)
        } else {
            magnitude = digits(body, radix: 10)
        }
        guard let magnitude else { return nil }
        if negative {
            return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// Digits with optional `_` separators (at least one digit); nil on overflow or a bad digit.
    private static func digits(_ text: Substring, radix: UInt64) -> UInt64? {
        var value: UInt64 = 0
        var any = false
        for c in text {
            if c == "_" { continue }
            guard let d = c.hexDigitValue, UInt64(d) < radix else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: radix)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2 else { return nil }
            value = s
            any = true
        }
        return any ? value : nil
    }

    /// `[1-9][0-9_]*(:[0-5]?[0-9])+`.
    private static func sexagesimal(_ text: Substring) -> UInt64? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard let head = parts.first, head.first != "0", var value = digits(head, radix: 10) else { return nil }
        for part in parts.dropFirst() {
            guard (1...2).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let d = UInt64(part), d < 60
            else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 60)
            let (s, o2) = m.addingReportingOverflow(d)
            guard !o1, !o2 else { return nil }
            value = s
        }
        return value
    }

    /// `[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?` with at least one digit before the exponent.
    private static func float(_ text: String) -> Double? {
        var mantissa = ""
        var exponent = ""
        var seenDot = false
        var seenDigit = false
        var inExponent = false
        for (i, c) in text.enumerated() {
            if inExponent {
                guard c.isASCII, c.isNumber || ((c == "-" || c == "+") && exponent.isEmpty) else { return nil }
                exponent.append(c)
            } else if c == "_" {
                continue
            } else if c.isASCII && c.isNumber {
                mantissa.append(c)
                seenDigit = true
            } else if c == "." && !seenDot {
                mantissa.append(c)
                seenDot = true
            } else if (c == "-" || c == "+") && i == 0 {
                mantissa.append(c)
            } else if (c == "e" || c == "E") && seenDot && seenDigit {
                inExponent = true
            } else {
                return nil
            }
        }
        guard seenDot, seenDigit, !inExponent || exponent.contains(where: \.isNumber) else { return nil }
        return Double(mantissa + (inExponent ? "e" + exponent : ""))
    }
}
