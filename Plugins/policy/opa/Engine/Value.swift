#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MCPGJSON

/// A Rego value: JSON plus sets and objects with non-string keys.
///
/// Sets and objects are kept sorted by the language's total order, so equality and hashing are structural and
/// iteration follows the order the language defines (sets and object keys ascending). Integral numbers are always
/// stored as `.int`, so `1 == 1.0` holds structurally.
public indirect enum Value: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([Value])
    /// Sorted, no duplicates.
    case set([Value])
    case object(RegoObject)

    /// A number, stored as `.int` when it is integral and fits.
    public static func number(_ d: Double) -> Value {
        if d.rounded() == d, abs(d) < 9.2e18 { return .int(Int64(d)) }
        return .double(d)
    }

    /// Builds a set from any elements (sorts and removes duplicates).
    public static func makeSet(_ elements: [Value]) -> Value {
        .set(sortedUnique(elements))
    }

    static func sortedUnique(_ elements: [Value]) -> [Value] {
        if elements.count < 2 { return elements }
        let sorted = elements.sorted { compare($0, $1) < 0 }
        var out: [Value] = [sorted[0]]
        out.reserveCapacity(sorted.count)
        for v in sorted.dropFirst() where v != out[out.count - 1] { out.append(v) }
        return out
    }

    var typeRank: Int {
        switch self {
        case .null: return 0
        case .bool: return 1
        case .int, .double: return 2
        case .string: return 3
        case .array: return 4
        case .object: return 5
        case .set: return 6
        }
    }

    /// The language's name for the type, as `type_name` returns it.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        case .set: return "set"
        }
    }

    var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// Total order over all values: null < booleans < numbers < strings < arrays < objects < sets.
    static func compare(_ a: Value, _ b: Value) -> Int {
        let ra = a.typeRank, rb = b.typeRank
        if ra != rb { return ra < rb ? -1 : 1 }
        switch (a, b) {
        case (.null, .null): return 0
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (!x ? -1 : 1)
        case (.int(let x), .int(let y)): return x == y ? 0 : (x < y ? -1 : 1)
        case (.string(let x), .string(let y)):
            // Byte order, as the language compares strings.
            return compareBytes(x, y)
        case (.array(let x), .array(let y)), (.set(let x), .set(let y)):
            for (u, v) in zip(x, y) {
                let c = compare(u, v)
                if c != 0 { return c }
            }
            return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
        case (.object(let x), .object(let y)):
            for i in 0..<min(x.keys.count, y.keys.count) {
                let c = compare(x.keys[i], y.keys[i])
                if c != 0 { return c }
                let d = compare(x.values[i], y.values[i])
                if d != 0 { return d }
            }
            return x.keys.count == y.keys.count ? 0 : (x.keys.count < y.keys.count ? -1 : 1)
        default:
            let x = a.doubleValue ?? 0, y = b.doubleValue ?? 0
            return x == y ? 0 : (x < y ? -1 : 1)
        }
    }

    /// Byte order of the UTF-8 encodings.
    static func compareBytes(_ x: String, _ y: String) -> Int {
        var a = x, b = y
        return a.withUTF8 { p in
            b.withUTF8 { q in
                let n = min(p.count, q.count)
                if n > 0, let pa = p.baseAddress, let qa = q.baseAddress {
                    let c = memcmp(pa, qa, n)
                    if c != 0 { return c < 0 ? -1 : 1 }
                }
                return p.count == q.count ? 0 : (p.count < q.count ? -1 : 1)
            }
        }
    }

    /// Converts a JSON value.
    public init(json: JSON) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .number(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(Value.init(json:)))
        case .object(let o):
            self = .object(RegoObject(pairs: o.members.map { (.string($0.key), Value(json: $0.value)) }))
        }
    }

    /// JSON for output: sets become sorted arrays, non-string object keys are written in their JSON form.
    public var json: JSON {
        switch self {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array(let a), .set(let a): return .array(a.map(\.json))
        case .object(let o):
            var obj = JSONObject()
            for (k, v) in zip(o.keys, o.values) {
                if case .string(let s) = k { obj[s] = v.json } else { obj[k.json.text] = v.json }
            }
            return .object(obj)
        }
    }

    /// The value in policy-language syntax (used by `sprintf("%v")` and messages).
    public var regoText: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return Value.formatDouble(d)
        case .string(let s): return JSON.string(s).text
        case .array(let a): return "[" + a.map(\.regoText).joined(separator: ", ") + "]"
        case .set(let a): return a.isEmpty ? "set()" : "{" + a.map(\.regoText).joined(separator: ", ") + "}"
        case .object(let o):
            return "{" + zip(o.keys, o.values).map { "\($0.regoText): \($1.regoText)" }.joined(separator: ", ") + "}"
        }
    }

    static func formatDouble(_ d: Double) -> String {
        if d.rounded() == d, abs(d) < 9.2e18, let i = Int64(exactly: d) { return String(i) }
        return "\(d)"
    }

    /// Truthiness of an expression's value: everything but `false` succeeds.
    var isFalse: Bool {
        if case .bool(false) = self { return true }
        return false
    }
}

/// An object with keys of any type, kept sorted by key for lookup by binary search and ordered iteration.
public struct RegoObject: Hashable, Sendable {
    public private(set) var keys: [Value]
    public private(set) var values: [Value]

    public init() {
        keys = []
        values = []
    }

    /// Later pairs with an equal key replace earlier ones.
    public init(pairs: [(Value, Value)]) {
        let sorted = pairs.enumerated().sorted {
            let c = Value.compare($0.element.0, $1.element.0)
            return c != 0 ? c < 0 : $0.offset < $1.offset
        }
        keys = []
        values = []
        keys.reserveCapacity(sorted.count)
        values.reserveCapacity(sorted.count)
        for (_, (k, v)) in sorted {
            if let last = keys.last, last == k {
                values[values.count - 1] = v
            } else {
                keys.append(k)
                values.append(v)
            }
        }
    }

    public var count: Int { keys.count }

    func index(of key: Value) -> Int? {
        var lo = 0, hi = keys.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            let c = Value.compare(keys[mid], key)
            if c == 0 { return mid }
            if c < 0 { lo = mid + 1 } else { hi = mid - 1 }
        }
        return nil
    }

    public subscript(key: Value) -> Value? {
        guard let i = index(of: key) else { return nil }
        return values[i]
    }

    subscript(string key: String) -> Value? { self[.string(key)] }

    /// Returns a copy with `key` set to `value` (or removed for nil).
    func setting(_ key: Value, _ value: Value?) -> RegoObject {
        var pairs = Array(zip(keys, values)).filter { $0.0 != key }
        if let value { pairs.append((key, value)) }
        return RegoObject(pairs: pairs)
    }
}

func setContains(_ elements: [Value], _ v: Value) -> Bool {
    var lo = 0, hi = elements.count - 1
    while lo <= hi {
        let mid = (lo + hi) / 2
        let c = Value.compare(elements[mid], v)
        if c == 0 { return true }
        if c < 0 { lo = mid + 1 } else { hi = mid - 1 }
    }
    return false
}
