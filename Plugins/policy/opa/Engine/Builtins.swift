import Foundation
import MCPGJSON
import Synchronization

extension Value {
    var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var objectValue: RegoObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    var intValue: Int64? {
        switch self {
        case .int(let i): return i
        default: return nil
        }
    }

    /// Elements of an array or a set (the collections string built-ins accept).
    var elements: [Value]? {
        switch self {
        case .array(let a), .set(let a): return a
        default: return nil
        }
    }
}

/// The built-in functions. Each returns nil when undefined; a wrong argument type is undefined too (non-strict
/// evaluation turns built-in errors into undefined).
enum Builtins {
    static let operatorNames: [String: String] = [
        "==": "equal", "!=": "neq", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "+": "plus", "-": "minus",
        "*": "mul", "/": "div", "%": "rem", "|": "or", "&": "and",
    ]

    static let arity: [String: Int] = [
        "count": 1, "sum": 1, "product": 1, "max": 1, "min": 1, "sort": 1, "concat": 2, "contains": 2,
        "startswith": 2, "endswith": 2, "lower": 1, "upper": 1, "split": 2, "replace": 3, "trim": 2,
        "trim_left": 2, "trim_right": 2, "trim_prefix": 2, "trim_suffix": 2, "trim_space": 1, "sprintf": 2,
        "indexof": 2, "substring": 3, "format_int": 2, "to_number": 1, "regex.match": 2, "glob.match": 3,
        "array.concat": 2, "array.slice": 3, "object.get": 3, "object.keys": 1, "object.union": 2,
        "object.remove": 2, "union": 1, "intersection": 1, "type_name": 1, "time.now_ns": 0,
        "time.parse_rfc3339_ns": 1, "time.date": 1, "time.clock": 1, "time.weekday": 1, "time.add_date": 4,
        "net.cidr_contains": 2, "json.marshal": 1, "json.unmarshal": 1, "base64.encode": 1, "base64.decode": 1,
        "base64url.encode": 1, "base64url.decode": 1, "strings.replace_n": 2, "units.parse_bytes": 1, "abs": 1,
        "round": 1, "ceil": 1, "floor": 1, "numbers.range": 2, "is_string": 1, "is_number": 1, "is_boolean": 1,
        "is_array": 1, "is_set": 1, "is_object": 1, "is_null": 1,
    ]

    static func num(_ v: Value) -> Double? { v.doubleValue }

    static func arith(_ a: Value, _ b: Value, _ i: (Int64, Int64) -> (Int64, Bool), _ d: (Double, Double) -> Double)
        -> Value?
    {
        if case .int(let x) = a, case .int(let y) = b {
            let (r, overflow) = i(x, y)
            if !overflow { return .int(r) }
        }
        guard let x = num(a), let y = num(b) else { return nil }
        return .number(d(x, y))
    }

    static let table: [String: BuiltinFn] = {
        var t: [String: BuiltinFn] = [:]
        t["equal"] = { .bool($0[0] == $0[1]) }
        t["neq"] = { .bool($0[0] != $0[1]) }
        t["lt"] = { .bool(Value.compare($0[0], $0[1]) < 0) }
        t["lte"] = { .bool(Value.compare($0[0], $0[1]) <= 0) }
        t["gt"] = { .bool(Value.compare($0[0], $0[1]) > 0) }
        t["gte"] = { .bool(Value.compare($0[0], $0[1]) >= 0) }
        t["plus"] = { arith($0[0], $0[1], { $0.addingReportingOverflow($1) }, +) }
        t["minus"] = { a in
            if case .set(let x) = a[0], case .set(let y) = a[1] { return .set(x.filter { !setContains(y, $0) }) }
            return arith(a[0], a[1], { $0.subtractingReportingOverflow($1) }, -)
        }
        t["mul"] = { arith($0[0], $0[1], { $0.multipliedReportingOverflow(by: $1) }, *) }
        t["div"] = { a in
            guard let x = num(a[0]), let y = num(a[1]), y != 0 else { return nil }
            if case .int(let p) = a[0], case .int(let q) = a[1], q != -1, p % q == 0 { return .int(p / q) }
            return .number(x / y)
        }
        t["rem"] = { a in
            guard case .int(let x) = a[0], case .int(let y) = a[1], y != 0, y != -1 else {
                if case .int = a[0], a[1] == .int(-1) { return .int(0) }
                return nil
            }
            return .int(x % y)
        }
        t["or"] = { a in
            guard case .set(let x) = a[0], case .set(let y) = a[1] else { return nil }
            return .makeSet(x + y)
        }
        t["and"] = { a in
            guard case .set(let x) = a[0], case .set(let y) = a[1] else { return nil }
            return .set(x.filter { setContains(y, $0) })
        }
        t["abs"] = { a in
            if case .int(let i) = a[0], i != .min { return .int(abs(i)) }
            return num(a[0]).map { .number(abs($0)) }
        }
        t["round"] = { a in num(a[0]).map { .number($0.rounded(.toNearestOrAwayFromZero)) } }
        t["ceil"] = { a in num(a[0]).map { .number($0.rounded(.up)) } }
        t["floor"] = { a in num(a[0]).map { .number($0.rounded(.down)) } }
        t["numbers.range"] = { a in
            guard let x = a[0].intValue, let y = a[1].intValue, case let (d, false) = y.subtractingReportingOverflow(x),
                  d.magnitude < 1_000_000
            else { return nil }
            return .array(x <= y ? (x...y).map { .int($0) } : (y...x).reversed().map { .int($0) })
        }
        t["count"] = { a in
            switch a[0] {
            case .string(let s): return .int(Int64(s.unicodeScalars.count))
            case .array(let x), .set(let x): return .int(Int64(x.count))
            case .object(let o): return .int(Int64(o.count))
            default: return nil
            }
        }
        t["sum"] = { a in
            guard let xs = a[0].elements else { return nil }
            var acc: Value = .int(0)
            for x in xs {
                guard let r = arith(acc, x, { $0.addingReportingOverflow($1) }, +) else { return nil }
                acc = r
            }
            return acc
        }
        t["product"] = { a in
            guard let xs = a[0].elements else { return nil }
            var acc: Value = .int(1)
            for x in xs {
                guard let r = arith(acc, x, { $0.multipliedReportingOverflow(by: $1) }, *) else { return nil }
                acc = r
            }
            return acc
        }
        t["max"] = { a in a[0].elements?.max { Value.compare($0, $1) < 0 } }
        t["min"] = { a in a[0].elements?.min { Value.compare($0, $1) < 0 } }
        t["sort"] = { a in a[0].elements.map { .array($0.sorted { Value.compare($0, $1) < 0 }) } }
        t["concat"] = { a in
            guard let d = a[0].stringValue, let xs = a[1].elements else { return nil }
            var parts: [String] = []
            for x in xs {
                guard let s = x.stringValue else { return nil }
                parts.append(s)
            }
            return .string(parts.joined(separator: d))
        }
        t["contains"] = str2 { s, sub in .bool(sub.isEmpty || s.utf8Contains(sub)) }
        t["startswith"] = str2 { s, p in .bool(s.utf8.starts(with: p.utf8)) }
        t["endswith"] = str2 { s, p in .bool(s.utf8.reversed().starts(with: p.utf8.reversed())) }
        t["lower"] = { a in a[0].stringValue.map { .string(mapCase($0, upper: false)) } }
        t["upper"] = { a in a[0].stringValue.map { .string(mapCase($0, upper: true)) } }
        t["split"] = str2 { s, d in .array(s.goSplit(d).map { .string($0) }) }
        t["replace"] = { a in
            guard let s = a[0].stringValue, let old = a[1].stringValue, let new = a[2].stringValue else { return nil }
            if old.isEmpty { return .string(s) }
            return .string(s.replacingOccurrences(of: old, with: new))
        }
        t["trim"] = str2 { s, cut in .string(s.trimLeft(Set(cut.unicodeScalars)).trimRight(Set(cut.unicodeScalars))) }
        t["trim_left"] = str2 { s, cut in .string(s.trimLeft(Set(cut.unicodeScalars))) }
        t["trim_right"] = str2 { s, cut in .string(s.trimRight(Set(cut.unicodeScalars))) }
        t["trim_prefix"] = str2 { s, p in
            .string(s.utf8.starts(with: p.utf8) ? String(decoding: Array(s.utf8).dropFirst(p.utf8.count), as: UTF8.self) : s)
        }
        t["trim_suffix"] = str2 { s, p in
            .string(s.utf8.reversed().starts(with: p.utf8.reversed())
                ? String(decoding: Array(s.utf8).dropLast(p.utf8.count), as: UTF8.self) : s)
        }
        t["trim_space"] = { a in
            a[0].stringValue.map { .string($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        t["indexof"] = str2 { s, sub in
            let hay = Array(s.unicodeScalars), needle = Array(sub.unicodeScalars)
            if needle.isEmpty { return .int(0) }
            if needle.count <= hay.count {
                for i in 0...(hay.count - needle.count) where Array(hay[i..<i + needle.count]) == needle {
                    return .int(Int64(i))
                }
            }
            return .int(-1)
        }
        t["substring"] = { a in
            guard let s = a[0].stringValue, let start = a[1].intValue, let len = a[2].intValue, start >= 0 else {
                return nil
            }
            let u = Array(s.unicodeScalars)
            if start >= u.count { return .string("") }
            let end = len < 0 ? u.count : min(u.count, Int(start) + Int(min(len, Int64(u.count))))
            var out = String.UnicodeScalarView()
            out.append(contentsOf: u[Int(start)..<end])
            return .string(String(out))
        }
        t["sprintf"] = { a in
            guard let f = a[0].stringValue, let args = a[1].elements, case .array = a[1] else { return nil }
            return .string(sprintf(f, args))
        }
        t["format_int"] = { a in
            guard let x = num(a[0]), let b = a[1].intValue, [2, 8, 10, 16].contains(b), abs(x) < 9e18 else {
                return nil
            }
            return .string(String(Int64(x.rounded(.towardZero)), radix: Int(b)))
        }
        t["to_number"] = { a in
            switch a[0] {
            case .null: return .int(0)
            case .bool(let b): return .int(b ? 1 : 0)
            case .int, .double: return a[0]
            case .string(let s):
                guard let j = try? JSON.parse(s) else { return nil }
                switch j {
                case .int(let i): return .int(i)
                case .double(let d): return .number(d)
                default: return nil
                }
            default: return nil
            }
        }
        t["regex.match"] = str2 { p, s in
            guard let re = RegexCache.shared.get(p) else { return nil }
            let r = NSRange(s.startIndex..., in: s)
            return .bool(re.firstMatch(in: s, range: r) != nil)
        }
        t["glob.match"] = { a in
            guard let p = a[0].stringValue, let s = a[2].stringValue else { return nil }
            var delims: [String]
            switch a[1] {
            case .null: delims = []
            case .array(let xs):
                delims = xs.compactMap(\.stringValue)
                guard delims.count == xs.count else { return nil }
                if delims.isEmpty { delims = ["."] }
            default: return nil
            }
            return Glob(pattern: p, delimiters: delims).map { .bool($0.matches(s)) }
        }
        t["array.concat"] = { a in
            guard case .array(let x) = a[0], case .array(let y) = a[1] else { return nil }
            return .array(x + y)
        }
        t["array.slice"] = { a in
            guard case .array(let x) = a[0], let s = a[1].intValue, let e = a[2].intValue else { return nil }
            let start = Int(max(0, min(s, Int64(x.count)))), end = Int(max(0, min(e, Int64(x.count))))
            return .array(start < end ? Array(x[start..<end]) : [])
        }
        t["object.get"] = { a in
            guard case .object = a[0] else { return nil }
            if case .array(let path) = a[1] {
                var cur = a[0]
                for p in path {
                    switch cur {
                    case .object(let o): guard let n = o[p] else { return a[2] }; cur = n
                    case .array(let arr):
                        guard let i = p.intValue, i >= 0, i < arr.count else { return a[2] }
                        cur = arr[Int(i)]
                    case .set(let s): guard setContains(s, p) else { return a[2] }; cur = p
                    default: return a[2]
                    }
                }
                return cur
            }
            return a[0].objectValue?[a[1]] ?? a[2]
        }
        t["object.keys"] = { a in a[0].objectValue.map { .set($0.keys) } }
        t["object.union"] = { a in
            guard case .object = a[0], case .object = a[1] else { return nil }
            return mergeObjects(a[0], a[1])
        }
        t["object.remove"] = { a in
            guard case .object(let o) = a[0] else { return nil }
            let drop: [Value]
            switch a[1] {
            case .array(let x), .set(let x): drop = x
            case .object(let k): drop = k.keys
            default: return nil
            }
            return .object(RegoObject(pairs: zip(o.keys, o.values).filter { !drop.contains($0.0) }))
        }
        t["union"] = { a in
            guard case .set(let sets) = a[0] else { return nil }
            var out: [Value] = []
            for s in sets {
                guard case .set(let x) = s else { return nil }
                out += x
            }
            return .makeSet(out)
        }
        t["intersection"] = { a in
            guard case .set(let sets) = a[0] else { return nil }
            guard let first = sets.first else { return .set([]) }
            guard case .set(var acc) = first else { return nil }
            for s in sets.dropFirst() {
                guard case .set(let x) = s else { return nil }
                acc = acc.filter { setContains(x, $0) }
            }
            return .set(acc)
        }
        for (name, type) in [
            ("is_string", "string"), ("is_number", "number"), ("is_boolean", "boolean"), ("is_array", "array"),
            ("is_set", "set"), ("is_object", "object"), ("is_null", "null"),
        ] {
            t[name] = { a in .bool(a[0].typeName == type) }
        }
        t["type_name"] = { a in .string(a[0].typeName) }
        t["time.now_ns"] = { _ in
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            return .int(Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
        }
        t["time.parse_rfc3339_ns"] = { a in a[0].stringValue.flatMap(Time.parseRFC3339).map { .int($0) } }
        t["time.date"] = { a in
            guard let (ns, off) = Time.nsArg(a[0]) else { return nil }
            let c = Time.civil(ns + off)
            return .array([.int(c.y), .int(c.m), .int(c.d)])
        }
        t["time.clock"] = { a in
            guard let (ns, off) = Time.nsArg(a[0]) else { return nil }
            let c = Time.civil(ns + off)
            return .array([.int(c.h), .int(c.min), .int(c.s)])
        }
        t["time.weekday"] = { a in
            guard let (ns, off) = Time.nsArg(a[0]) else { return nil }
            return .string(Time.weekday(ns + off))
        }
        t["time.add_date"] = { a in
            guard let ns = a[0].intValue, let y = a[1].intValue, let m = a[2].intValue, let d = a[3].intValue else {
                return nil
            }
            return Time.addDate(ns, y, m, d).map { .int($0) }
        }
        t["net.cidr_contains"] = { a in
            guard let c = a[0].stringValue, let x = a[1].stringValue else { return nil }
            return CIDR.contains(c, x).map { .bool($0) }
        }
        t["json.marshal"] = { a in .string(jsonText(a[0])) }
        t["json.unmarshal"] = { a in
            guard let s = a[0].stringValue, let j = try? JSON.parse(s) else { return nil }
            return Value(json: j)
        }
        t["base64.encode"] = { a in a[0].stringValue.map { .string(Data($0.utf8).base64EncodedString()) } }
        t["base64.decode"] = { a in
            guard let s = a[0].stringValue, let d = Data(base64Encoded: s) else { return nil }
            return .string(String(decoding: d, as: UTF8.self))
        }
        t["base64url.encode"] = { a in
            a[0].stringValue.map {
                .string(Data($0.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_"))
            }
        }
        t["base64url.decode"] = { a in
            guard var s = a[0].stringValue?.replacingOccurrences(of: "-", with: "+")
                .replacingOccurrences(of: "_", with: "/")
            else { return nil }
            while s.utf8.count % 4 != 0 { s += "=" }
            guard let d = Data(base64Encoded: s) else { return nil }
            return .string(String(decoding: d, as: UTF8.self))
        }
        t["strings.replace_n"] = { a in
            guard case .object(let o) = a[0], let s = a[1].stringValue else { return nil }
            var pats: [([UInt8], [UInt8])] = []
            for (k, v) in zip(o.keys, o.values) {
                guard let ks = k.stringValue, let vs = v.stringValue else { return nil }
                pats.append((Array(ks.utf8), Array(vs.utf8)))
            }
            return .string(replaceN(s, pats))
        }
        t["units.parse_bytes"] = { a in a[0].stringValue.flatMap(parseBytes) }
        return t
    }()

    static func str2(_ f: @escaping @Sendable (String, String) -> Value?) -> BuiltinFn {
        { a in
            guard let x = a[0].stringValue, let y = a[1].stringValue else { return nil }
            return f(x, y)
        }
    }

    /// Per-scalar case mapping: a scalar whose full mapping is several scalars (ß → SS) stays as it is, as
    /// simple case mapping does.
    static func mapCase(_ s: String, upper: Bool) -> String {
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            let m = upper ? u.properties.uppercaseMapping : u.properties.lowercaseMapping
            let scalars = m.unicodeScalars
            if scalars.count == 1, let only = scalars.first { out.append(only) } else { out.append(u) }
        }
        return String(out)
    }

    static func mergeObjects(_ a: Value, _ b: Value) -> Value {
        guard case .object(let x) = a, case .object(let y) = b else { return b }
        var out = x
        for (k, v) in zip(y.keys, y.values) {
            out = out.setting(k, x[k].map { mergeObjects($0, v) } ?? v)
        }
        return .object(out)
    }

    /// Compact JSON with object keys sorted; sets are written as arrays.
    static func jsonText(_ v: Value) -> String {
        switch v {
        case .object(let o):
            return "{" + zip(o.keys, o.values).map { k, v in
                (k.stringValue.map { JSON.string($0).text } ?? JSON.string(jsonText(k)).text) + ":" + jsonText(v)
            }.joined(separator: ",") + "}"
        case .array(let a), .set(let a): return "[" + a.map(jsonText).joined(separator: ",") + "]"
        case .double(let d): return Value.formatDouble(d)
        default: return v.json.text
        }
    }

    static func replaceN(_ s: String, _ pats: [([UInt8], [UInt8])]) -> String {
        let b = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        outer: while i < b.count {
            for (old, new) in pats where !old.isEmpty && i + old.count <= b.count && Array(b[i..<i + old.count]) == old {
                out += new
                i += old.count
                continue outer
            }
            out.append(b[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func parseBytes(_ raw: String) -> Value? {
        let s = raw.replacingOccurrences(of: "\"", with: "")
        var numPart = "", unit = ""
        for ch in s {
            if unit.isEmpty && (ch.isNumber || ch == ".") { numPart.append(ch) } else { unit.append(ch) }
        }
        guard let n = Double(numPart) else { return nil }
        let units: [String: Double] = [
            "": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
            "p": 1e15, "pb": 1e15, "e": 1e18, "eb": 1e18, "ki": 1024, "kib": 1024, "mi": 1048576, "mib": 1048576,
            "gi": 1073741824, "gib": 1073741824, "ti": 1099511627776, "tib": 1099511627776,
        ]
        guard let m = units[unit.lowercased()] else { return nil }
        return .number((n * m).rounded(.down))
    }

    /// `sprintf` with the verbs policies use: %s, %d, %v, %f, %x, %q and %%.
    static func sprintf(_ f: String, _ args: [Value]) -> String {
        var out = ""
        var it = f.makeIterator()
        var argIndex = 0
        func nextArg() -> Value? {
            defer { argIndex += 1 }
            return argIndex < args.count ? args[argIndex] : nil
        }
        func goName(_ v: Value) -> String {
            switch v {
            case .int: return "int"
            case .double: return "float64"
            case .string: return "string"
            case .bool: return "bool"
            default: return "ast.\(v.typeName.capitalized)"
            }
        }
        while let c = it.next() {
            guard c == "%" else {
                out.append(c)
                continue
            }
            guard let verb = it.next() else {
                out += "%!(NOVERB)"
                break
            }
            if verb == "%" {
                out += "%"
                continue
            }
            guard let arg = nextArg() else {
                out += "%!\(verb)(MISSING)"
                continue
            }
            switch (verb, arg) {
            case ("s", .string(let s)), ("v", .string(let s)): out += s
            case ("v", _), ("s", .array), ("s", .set), ("s", .object):
                out += arg.regoText
            case ("d", .int(let i)): out += String(i)
            case ("f", _) where arg.doubleValue != nil: out += String(format: "%f", arg.doubleValue ?? 0)
            case ("x", .int(let i)): out += String(i, radix: 16)
            case ("x", .string(let s)): out += s.utf8.map { String(format: "%02x", $0) }.joined()
            case ("q", .string(let s)): out += JSON.string(s).text
            case ("t", .bool(let b)): out += b ? "true" : "false"
            default:
                let text = arg.typeRank == 2 ? Value.formatDouble(arg.doubleValue ?? 0) : arg.regoText
                out += "%!\(verb)(\(goName(arg))=\(text))"
            }
        }
        if argIndex < args.count {
            out += "%!(EXTRA " + args[argIndex...].map { "\(goName($0))=\($0.regoText)" }.joined(separator: ", ") + ")"
        }
        return out
    }
}

/// Compiled regular expressions by pattern; patterns are almost always constants in the policy.
final class RegexCache: Sendable {
    static let shared = RegexCache()
    let cache = Mutex<[String: NSRegularExpression]>([:])

    func get(_ pattern: String) -> NSRegularExpression? {
        if let re = cache.withLock({ $0[pattern] }) { return re }
        guard let re = try? NSRegularExpression(pattern: pattern) else { return nil }
        cache.withLock { c in
            if c.count > 1000 { c.removeAll() }
            c[pattern] = re
        }
        return re
    }
}

extension String {
    func utf8Contains(_ sub: String) -> Bool {
        let h = Array(utf8), n = Array(sub.utf8)
        if n.count > h.count { return false }
        for i in 0...(h.count - n.count) where h[i] == n[0] && Array(h[i..<i + n.count]) == n { return true }
        return false
    }

    /// Splits like Go's strings.Split: an empty separator splits into characters.
    func goSplit(_ sep: String) -> [String] {
        if sep.isEmpty { return unicodeScalars.map { String($0) } }
        let h = Array(utf8), n = Array(sep.utf8)
        var parts: [String] = []
        var start = 0, i = 0
        while i + n.count <= h.count {
            if Array(h[i..<i + n.count]) == n {
                parts.append(String(decoding: h[start..<i], as: UTF8.self))
                i += n.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(String(decoding: h[start...], as: UTF8.self))
        return parts
    }

    func trimLeft(_ cut: Set<Unicode.Scalar>) -> String {
        var u = Substring(self).unicodeScalars
        while let f = u.first, cut.contains(f) { u.removeFirst() }
        return String(u)
    }

    func trimRight(_ cut: Set<Unicode.Scalar>) -> String {
        var u = Substring(self).unicodeScalars
        while let l = u.last, cut.contains(l) { u.removeLast() }
        return String(u)
    }
}
