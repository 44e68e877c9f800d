import MCPGJSON

/// A JSON Schema subset: `type` (a name or a list), `properties`, `required`, `additionalProperties` (a boolean),
/// `enum`, `const`, `items`, `minimum`, `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`. Other keywords
/// are ignored (annotations such as `description` included).
public enum SchemaCheck {
    /// The keywords `problems` understands; a `validate` step's schema may use no others.
    public static let keywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "enum", "const", "items", "minimum", "maximum",
        "minLength", "maxLength", "minItems", "maxItems", "description", "title", "default", "$schema",
    ]

    /// What is wrong with `value`, each problem naming the JSON pointer of the value at fault (`""` is the root).
    public static func problems(_ value: JSON, _ schema: JSON, at path: String = "", limit: Int = 10) -> [String] {
        var out: [String] = []
        check(value, schema, path, &out, limit)
        return out
    }

    /// Whether `schema` only uses the subset (nested schemas included); the first unknown keyword's pointer.
    public static func unsupported(_ schema: JSON, at pointer: String) -> (pointer: String, message: String)? {
        guard case .object(let o) = schema else { return (pointer, "a schema is an object") }
        for m in o {
            let p = pointer + "/" + escapePointer(m.key)
            guard keywords.contains(m.key) else {
                return (
                    p,
                    "unsupported schema keyword \"\(m.key)\" (supported: "
                        + keywords.sorted().joined(separator: ", ") + ")"
                )
            }
            switch m.key {
            case "properties":
                guard case .object(let props) = m.value else { return (p, "properties is an object") }
                for prop in props {
                    if let bad = unsupported(prop.value, at: p + "/" + escapePointer(prop.key)) { return bad }
                }
            case "items":
                if let bad = unsupported(m.value, at: p) { return bad }
            case "type":
                let names = m.value.stringValue.map { [$0] } ?? m.value.arrayValue?.compactMap(\.stringValue) ?? []
                let known: Set<String> = ["string", "number", "integer", "boolean", "object", "array", "null"]
                guard !names.isEmpty, names.allSatisfy(known.contains) else {
                    return (p, "type is one of string, number, integer, boolean, object, array, null (or a list)")
                }
            default: break
            }
        }
        return nil
    }

    private static func check(_ value: JSON, _ schema: JSON, _ path: String, _ out: inout [String], _ limit: Int) {
        guard out.count < limit, case .object(let s) = schema else { return }
        let at = path.isEmpty ? "(root)" : path
        if let t = s["type"] {
            let names = t.stringValue.map { [$0] } ?? t.arrayValue?.compactMap(\.stringValue) ?? []
            if !names.isEmpty, !names.contains(where: { has(value, type: $0) }) {
                out.append("\(at): expected \(names.joined(separator: " or ")), got \(value.typeName)")
                return
            }
        }
        if let e = s["enum"]?.arrayValue, !e.contains(where: { jsonEqual($0, value) }) {
            out.append("\(at): must be one of " + e.map(\.text).joined(separator: ", "))
        }
        if let c = s["const"], !jsonEqual(c, value) { out.append("\(at): must be \(c.text)") }
        switch value {
        case .int, .double:
            let d = value.doubleValue ?? 0
            if let min = s["minimum"]?.doubleValue, d < min { out.append("\(at): must be >= \(s["minimum"]!.text)") }
            if let max = s["maximum"]?.doubleValue, d > max { out.append("\(at): must be <= \(s["maximum"]!.text)") }
        case .string(let str):
            let n = str.count
            if let min = s["minLength"]?.intValue, n < min { out.append("\(at): must be at least \(min) characters") }
            if let max = s["maxLength"]?.intValue, n > max { out.append("\(at): must be at most \(max) characters") }
        case .array(let items):
            if let min = s["minItems"]?.intValue, items.count < min {
                out.append("\(at): must have at least \(min) items")
            }
            if let max = s["maxItems"]?.intValue, items.count > max {
                out.append("\(at): must have at most \(max) items")
            }
            if let itemSchema = s["items"] {
                for (i, item) in items.enumerated() { check(item, itemSchema, path + "/\(i)", &out, limit) }
            }
        case .object(let o):
            for r in s["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where o[r] == nil {
                out.append("\(path + "/" + escapePointer(r)): required")
            }
            let props = s["properties"]?.objectValue ?? [:]
            for m in o {
                let p = path + "/" + escapePointer(m.key)
                if let ps = props[m.key] {
                    check(m.value, ps, p, &out, limit)
                } else if s["additionalProperties"]?.boolValue == false {
                    out.append("\(p): not allowed (additionalProperties is false)")
                }
            }
        default: break
        }
        if out.count > limit { out.removeLast(out.count - limit) }
    }

    /// Whether `value` is an instance of the JSON Schema type `type`.
    static func has(_ value: JSON, type: String) -> Bool {
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("null", .null), ("array", .array), ("object", .object),
            ("number", .int), ("number", .double), ("integer", .int):
            return true
        case ("integer", .double(let d)):
            return d.rounded() == d
        default:
            return false
        }
    }
}
