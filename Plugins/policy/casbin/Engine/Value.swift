import MCPGJSON

/// A value the matcher computes with: request fields, policy fields, literals and intermediate results.
///
/// Policy fields are always strings; request fields may be any JSON value, and objects give ABAC access
/// (`r.sub.Age`). Equality, ordering and truthiness follow the reference semantics: numbers compare across
/// int/double/bool, strings and lists order lexicographically, other mixes are unequal (and unordered).
public enum CasbinValue: Sendable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([CasbinValue])
    case object([String: CasbinValue])

    /// Converts a JSON request value; object member order does not matter to a matcher.
    public init(json: JSON) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(CasbinValue.init(json:)))
        case .object(let o):
            var d: [String: CasbinValue] = [:]
            for m in o { d[m.key] = CasbinValue(json: m.value) }
            self = .object(d)
        }
    }

    public var description: String {
        switch self {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return s
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object: return "<object>"
        }
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "string"
        case .array: return "list"
        case .object: return "object"
        }
    }

    /// Truthiness as `&&`, `||` and `!` see it. Objects are always true (they stand for request entities).
    var truthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object: return true
        }
    }

    /// The numeric view of ints, doubles and bools (bools count as 0/1 in arithmetic and comparisons).
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    var integer: Int64? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// `==` of the matcher language (not Swift's structural equality: 1 == 1.0 == True).
    func looselyEquals(_ other: CasbinValue) -> Bool {
        switch (self, other) {
        case (.string(let a), .string(let b)): return a == b
        case (.null, .null): return true
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            for i in a.indices where !a[i].looselyEquals(b[i]) { return false }
            return true
        case (.object(let a), .object(let b)): return a == b
        default:
            if let x = integer, let y = other.integer { return x == y }
            if let x = number, let y = other.number { return x == y }
            return false
        }
    }

    /// Ordering for `<`, `<=`, `>`, `>=`; nil when the two cannot be ordered (an evaluation error).
    func compare(_ other: CasbinValue) -> Int? {
        switch (self, other) {
        case (.string(let a), .string(let b)):
            // Code point order, not Unicode collation.
            var i = a.unicodeScalars.makeIterator()
            var j = b.unicodeScalars.makeIterator()
            while true {
                switch (i.next(), j.next()) {
                case (nil, nil): return 0
                case (nil, _): return -1
                case (_, nil): return 1
                case (let x?, let y?): if x != y { return x.value < y.value ? -1 : 1 }
                }
            }
        case (.array(let a), .array(let b)):
            for k in 0..<min(a.count, b.count) {
                if a[k].looselyEquals(b[k]) { continue }
                return a[k].compare(b[k])
            }
            return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
        default:
            if let x = integer, let y = other.integer { return x == y ? 0 : (x < y ? -1 : 1) }
            if let x = number, let y = other.number {
                if x.isNaN || y.isNaN { return 2 }  // unordered: every comparison false
                return x == y ? 0 : (x < y ? -1 : 1)
            }
            return nil
        }
    }
}

/// An error while deciding one request (a type mismatch, a missing attribute, a bad regex in a policy).
public struct CasbinEvalError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A model or policy that cannot be loaded, with where the problem is.
public struct CasbinLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file name (or "model" / "policy" for text given inline).
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(message)" }
}
