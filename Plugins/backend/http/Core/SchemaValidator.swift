import MCPGJSON

/// Checks arguments against the JSON Schema subset the HTTP tools generate and accept: `type` (one or a
/// list), `properties`, `required`, `additionalProperties: false`, `enum`, `const`, `items`,
/// `minimum`/`maximum`, `minLength`/`maxLength`, `minItems`/`maxItems`, and local `$ref`s into `$defs` or
/// `definitions`. Other keywords are ignored (the upstream has the last word).
public enum SchemaValidator {
    /// The first violation as "`path`: reason", or nil when `value` conforms.
    public static func firstError(_ value: JSON, schema: JSON, root: JSON? = nil, path: String = "arguments")
        -> String?
    {
        validate(value, schema, root: root ?? schema, path: path, depth: 0)
    }

    static func validate(_ value: JSON, _ schema: JSON, root: JSON, path: String, depth: Int) -> String? {
        guard depth < 64, case .object(let s) = schema else { return nil }
        if let ref = s["$ref"]?.stringValue {
            guard ref.hasPrefix("#"), let target = root.select(String(ref.dropFirst())) else { return nil }
            return validate(value, target, root: root, path: path, depth: depth + 1)
        }
        if let types = s["type"] {
            let names = types.arrayValue?.compactMap(\.stringValue) ?? [types.stringValue].compactMap { $0 }
            if !names.isEmpty, !names.contains(where: { matches(value, $0) }) {
                return "\(path): expected \(names.joined(separator: " or ")), got \(value.typeName)"
            }
        }
        if let allowed = s["enum"]?.arrayValue, !allowed.contains(where: { equal($0, value) }) {
            return "\(path): must be one of \(JSON.array(allowed).text)"
        }
        if let c = s["const"], !equal(c, value) { return "\(path): must be \(c.text)" }
        switch value {
        case .int, .double:
            let x = value.doubleValue ?? 0
            if let min = s["minimum"]?.doubleValue, x < min { return "\(path): must be at least \(s["minimum"]!.text)" }
            if let max = s["maximum"]?.doubleValue, x > max { return "\(path): must be at most \(s["maximum"]!.text)" }
        case .string(let text):
            let n = text.count
            if let min = s["minLength"]?.intValue, n < min { return "\(path): shorter than \(min) characters" }
            if let max = s["maxLength"]?.intValue, n > max { return "\(path): longer than \(max) characters" }
        case .array(let items):
            if let min = s["minItems"]?.intValue, items.count < min { return "\(path): fewer than \(min) items" }
            if let max = s["maxItems"]?.intValue, items.count > max { return "\(path): more than \(max) items" }
            if let itemSchema = s["items"], case .object = itemSchema {
                for (i, item) in items.enumerated() {
                    if let e = validate(item, itemSchema, root: root, path: "\(path)[\(i)]", depth: depth + 1) {
                        return e
                    }
                }
            }
        case .object(let o):
            for name in s["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where o[name] == nil {
                return "\(path): missing required property \"\(name)\""
            }
            let properties = s["properties"]?.objectValue ?? [:]
            for member in o {
                if let p = properties[member.key] {
                    if let e = validate(member.value, p, root: root, path: "\(path).\(member.key)", depth: depth + 1) {
                        return e
                    }
                } else if s["additionalProperties"] == .bool(false) {
                    return "\(path): unknown property \"\(member.key)\""
                } else if let extra = s["additionalProperties"], case .object = extra {
                    if let e = validate(member.value, extra, root: root, path: "\(path).\(member.key)", depth: depth + 1) {
                        return e
                    }
                }
            }
        default:
            break
        }
        return nil
    }

    static func matches(_ value: JSON, _ type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object):
            return true
        case ("number", .int), ("number", .double), ("integer", .int): return true
        case ("integer", .double(let d)): return d.rounded() == d && abs(d) < 9.0e15
        default: return false
        }
    }

    /// JSON equality where 1 and 1.0 are the same number.
    static func equal(_ a: JSON, _ b: JSON) -> Bool {
        if isNumber(a), isNumber(b) { return a.doubleValue == b.doubleValue }
        return a == b
    }

    static func isNumber(_ v: JSON) -> Bool {
        switch v {
        case .int, .double: return true
        default: return false
        }
    }
}
