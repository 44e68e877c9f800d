/// An entity's identity: its type (possibly namespaced, `A::B`) and its id.
///
/// The hash of both strings is computed once: uids are hashed and compared for every `in` test and entity
/// lookup, far more often than they are made.
public struct EntityUID: Hashable, Sendable, CustomStringConvertible {
    public let type: String
    public let id: String
    private let key: Int

    public init(type: String, id: String) {
        self.type = type
        self.id = id
        var h = Hasher()
        h.combine(type)
        h.combine(id)
        key = h.finalize()
    }

    public static func == (a: EntityUID, b: EntityUID) -> Bool { a.key == b.key && a.type == b.type && a.id == b.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    /// Cedar syntax, e.g. `User::"alice"`.
    public var description: String { "\(type)::\"\(escapeCedarString(id))\"" }
}

/// A Cedar runtime value. Sets and records compare structurally, as the language defines.
public enum CedarValue: Hashable, Sendable, CustomStringConvertible {
    case bool(Bool)
    case long(Int64)
    case string(String)
    case entity(EntityUID)
    case set(Set<CedarValue>)
    case record([String: CedarValue])
    case ext(ExtensionValue)

    /// The type name used in error messages.
    public var typeName: String {
        switch self {
        case .bool: return "bool"
        case .long: return "long"
        case .string: return "string"
        case .entity: return "entity"
        case .set: return "set"
        case .record: return "record"
        case .ext(let e): return e.typeName
        }
    }

    public var description: String {
        switch self {
        case .bool(let b): return String(b)
        case .long(let i): return String(i)
        case .string(let s): return "\"\(escapeCedarString(s))\""
        case .entity(let e): return e.description
        case .set(let s): return "[" + s.map(\.description).sorted().joined(separator: ", ") + "]"
        case .record(let r):
            return "{" + r.sorted { $0.key < $1.key }.map { "\"\(escapeCedarString($0.key))\": \($0.value)" }
                .joined(separator: ", ") + "}"
        case .ext(let e): return e.description
        }
    }
}

/// Values of the extension types: `ipaddr`, `decimal`, `datetime` and `duration`.
public enum ExtensionValue: Hashable, Sendable, CustomStringConvertible {
    case ip(IPAddress)
    /// Fixed point with four decimal digits: the value times 10,000.
    case decimal(Int64)
    /// Milliseconds since the Unix epoch.
    case datetime(Int64)
    /// Milliseconds.
    case duration(Int64)

    public var typeName: String {
        switch self {
        case .ip: return "ipaddr"
        case .decimal: return "decimal"
        case .datetime: return "datetime"
        case .duration: return "duration"
        }
    }

    public var description: String {
        switch self {
        case .ip(let a): return "ip(\"\(a)\")"
        case .decimal(let d): return "decimal(\"\(formatDecimal(d))\")"
        case .datetime(let ms): return "datetime(\(ms)ms since epoch)"
        case .duration(let ms): return "duration(\"\(ms)ms\")"
        }
    }
}

func formatDecimal(_ v: Int64) -> String {
    let neg = v < 0
    let mag = v.magnitude
    let frac = String(mag % 10_000)
    return (neg ? "-" : "") + String(mag / 10_000) + "." + String(repeating: "0", count: 4 - frac.count) + frac
}

/// Escapes a string for display in Cedar syntax (quotes, backslashes and control characters).
func escapeCedarString(_ s: String) -> String {
    var out = ""
    for ch in s.unicodeScalars {
        switch ch {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\0": out += "\\0"
        default: out.unicodeScalars.append(ch)
        }
    }
    return out
}

/// A failure message from a small parser (extension literals, string escapes).
struct Failure: Error, ExpressibleByStringInterpolation {
    var message: String
    init(stringLiteral value: String) { message = value }
    init(stringInterpolation: DefaultStringInterpolation) { message = String(stringInterpolation: stringInterpolation) }
}
