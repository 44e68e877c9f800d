import MCPGJSON

/// A tool's `inputSchema`, compiled once at config load, that checks call arguments before anything runs.
///
/// The subset of JSON Schema it understands: `type` (one name or a list), `properties`, `required`,
/// `additionalProperties: false`, `enum`, `const`, `items`, `minItems`/`maxItems`, `minimum`/`maximum`,
/// `exclusiveMinimum`/`exclusiveMaximum`, `minLength`/`maxLength` (in characters) and `pattern` (Swift `Regex`
/// syntax, unanchored like JSON Schema's). Other keywords (`description`, `title`, `default`, `format` …) are
/// accepted and not checked. A keyword with a value of the wrong type is a config error.
public struct ArgumentSchema: Sendable {
    final class Node: Sendable {
        let types: [String]?
        let properties: [(String, Node)]
        let required: [String]
        let closed: Bool
        let choices: [JSON]?
        let items: Node?
        let minItems: Int?
        let maxItems: Int?
        let minimum: Double?
        let maximum: Double?
        let exclusiveMinimum: Double?
        let exclusiveMaximum: Double?
        let minLength: Int?
        let maxLength: Int?
        let pattern: String?

        init(_ schema: JSON, at path: String) throws(ArgumentSchemaError) {
            let o: JSONObject
            switch schema {
            case .object(let members): o = members
            case .bool(true): o = [:]
            default: throw ArgumentSchemaError("\(path): must be an object")
            }
            func strings(_ key: String) throws(ArgumentSchemaError) -> [String]? {
                switch o[key] {
                case nil: return nil
                case .string(let s)?: return [s]
                case .array(let a)?:
                    let s = a.compactMap(\.stringValue)
                    guard s.count == a.count else { throw ArgumentSchemaError("\(path)/\(key): must list strings") }
                    return s
                default: throw ArgumentSchemaError("\(path)/\(key): must be a string or a list of strings")
                }
            }
            func number(_ key: String) throws(ArgumentSchemaError) -> Double? {
                guard let v = o[key] else { return nil }
                guard let d = v.doubleValue else { throw ArgumentSchemaError("\(path)/\(key): must be a number") }
                return d
            }
            func count(_ key: String) throws(ArgumentSchemaError) -> Int? {
                guard let v = o[key] else { return nil }
                guard let i = v.intValue, i >= 0 else {
                    throw ArgumentSchemaError("\(path)/\(key): must be a non-negative integer")
                }
                return Int(i)
            }
            let known: Set = ["string", "integer", "number", "boolean", "array", "object", "null"]
            types = try strings("type")
            for t in types ?? [] where !known.contains(t) {
                throw ArgumentSchemaError("\(path)/type: unknown type \"\(t)\"")
            }
            var properties: [(String, Node)] = []
            if let p = o["properties"] {
                guard case .object(let members) = p else { throw ArgumentSchemaError("\(path)/properties: must be an object") }
                for m in members { properties.append((m.key, try Node(m.value, at: "\(path)/properties/\(pointerEscaped(m.key))"))) }
            }
            self.properties = properties
            required = try strings("required") ?? []
            switch o["additionalProperties"] {
            case .bool(false)?: closed = true
            default: closed = false
            }
            if let e = o["enum"] {
                guard case .array(let a) = e else { throw ArgumentSchemaError("\(path)/enum: must be a list") }
                choices = a
            } else if let c = o["const"] {
                choices = [c]
            } else {
                choices = nil
            }
            items = try o["items"].map { v throws(ArgumentSchemaError) in try Node(v, at: "\(path)/items") }
            minItems = try count("minItems")
            maxItems = try count("maxItems")
            minimum = try number("minimum")
            maximum = try number("maximum")
            exclusiveMinimum = try number("exclusiveMinimum")
            exclusiveMaximum = try number("exclusiveMaximum")
            minLength = try count("minLength")
            maxLength = try count("maxLength")
            if let p = o["pattern"] {
                guard let s = p.stringValue else { throw ArgumentSchemaError("\(path)/pattern: must be a string") }
                do {
                    _ = try Regex(s)
                } catch {
                    throw ArgumentSchemaError("\(path)/pattern: is not a valid regular expression: \(error)")
                }
                pattern = s
            } else {
                pattern = nil
            }
        }

        func check(_ value: JSON, _ path: String, _ problems: inout [String]) {
            let name = path.isEmpty ? "arguments" : "argument \"\(path)\""
            if let types, !types.contains(where: { ArgumentSchema.has(value, type: $0) }) {
                problems.append("\(name) must be \(types.joined(separator: " or ")), not \(value.typeName)")
                return
            }
            if let choices, !choices.contains(where: { ArgumentSchema.same($0, value) }) {
                problems.append("\(name) must be one of \(JSON.array(choices).text)")
            }
            switch value {
            case .object(let o):
                for r in required where o[r] == nil {
                    problems.append("missing required argument \"\(path.isEmpty ? r : path + "." + r)\"")
                }
                for m in o {
                    let sub = path.isEmpty ? m.key : path + "." + m.key
                    if let node = properties.first(where: { $0.0 == m.key })?.1 {
                        node.check(m.value, sub, &problems)
                    } else if closed {
                        problems.append("unknown argument \"\(sub)\"")
                    }
                }
            case .array(let a):
                if let minItems, a.count < minItems { problems.append("\(name) needs at least \(minItems) items") }
                if let maxItems, a.count > maxItems { problems.append("\(name) allows at most \(maxItems) items") }
                if let items {
                    for (i, v) in a.enumerated() { items.check(v, "\(path)[\(i)]", &problems) }
                }
            case .int, .double:
                let d = value.doubleValue ?? 0
                if let minimum, d < minimum { problems.append("\(name) must be at least \(show(minimum))") }
                if let maximum, d > maximum { problems.append("\(name) must be at most \(show(maximum))") }
                if let exclusiveMinimum, d <= exclusiveMinimum {
                    problems.append("\(name) must be greater than \(show(exclusiveMinimum))")
                }
                if let exclusiveMaximum, d >= exclusiveMaximum {
                    problems.append("\(name) must be less than \(show(exclusiveMaximum))")
                }
            case .string(let s):
                if let minLength, s.count < minLength { problems.append("\(name) must have at least \(minLength) characters") }
                if let maxLength, s.count > maxLength { problems.append("\(name) must have at most \(maxLength) characters") }
                if let pattern, let regex = try? Regex(pattern), (try? regex.firstMatch(in: s)) == nil {
                    problems.append("\(name) must match the pattern \(pattern)")
                }
            default:
                break
            }
        }

        private func show(_ d: Double) -> String {
            d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        }
    }

    let root: Node
    /// The schema as given (for `tools/list`).
    public let json: JSON
    /// Names declared under the root's `properties`, in order.
    public var propertyNames: [String] { root.properties.map(\.0) }
    /// The root's `required` names.
    public var requiredNames: [String] { root.required }

    /// Compiles `schema`; `path` names it in errors (e.g. "tools[0].inputSchema").
    public init(_ schema: JSON, at path: String) throws(ArgumentSchemaError) {
        guard case .object(let o) = schema else { throw ArgumentSchemaError("\(path): must be an object") }
        if let t = o["type"], t != .string("object") {
            throw ArgumentSchemaError("\(path)/type: must be \"object\" (tool arguments are an object)")
        }
        root = try Node(schema, at: path)
        json = schema
    }

    /// The declared type names of a root property (empty when it declares none or is not declared).
    public func types(of property: String) -> [String] {
        root.properties.first(where: { $0.0 == property })?.1.types ?? []
    }

    /// What is wrong with `arguments`; empty when they conform.
    public func problems(_ arguments: JSONObject) -> [String] {
        var problems: [String] = []
        root.check(.object(arguments), "", &problems)
        return problems
    }

    /// Whether `value` is an instance of the JSON Schema type `type`.
    public static func has(_ value: JSON, type: String) -> Bool {
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("null", .null), ("array", .array), ("object", .object),
            ("number", .int), ("number", .double), ("integer", .int):
            return true
        case ("integer", .double(let d)):
            return d.rounded() == d && abs(d) < 9.2e18
        default:
            return false
        }
    }

    /// JSON equality where 1 and 1.0 are the same number.
    static func same(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case (.int, .double), (.double, .int): return a.doubleValue == b.doubleValue
        default: return a == b
        }
    }
}

/// A schema keyword with a value this validator cannot use; `message` names it by JSON pointer.
public struct ArgumentSchemaError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `key` as one JSON pointer segment (RFC 6901: `~` → `~0`, `/` → `~1`).
public func pointerEscaped(_ key: String) -> String {
    key.replacing("~", with: "~0").replacing("/", with: "~1")
}
