import MCPGJSON

extension ConfigSchema {
    /// The config file's JSON Schema (draft 2020-12), as `mcpg config schema` prints it. Editors that speak
    /// JSON Schema (e.g. through the YAML language server) use it for completion and checks; file existence
    /// and some address rules are only checked by mcpg itself.
    public static var jsonSchema: JSON {
        var defs = JSONObject()
        var schema = JSONObject()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = "mcpg configuration"
        for member in jsonSchema(of: root, defs: &defs) { schema[member.key] = member.value }
        schema["$defs"] = .object(defs)
        return .object(schema)
    }

    /// The JSON Schema of one node; nodes with a `definitionName` are put in `defs` and referenced.
    static func jsonSchema(of node: SchemaNode, defs: inout JSONObject) -> JSONObject {
        if let name = node.definitionName {
            if defs[name] == nil {
                defs[name] = .object([:])  // placeholder against self-reference
                var body = inlineSchema(of: node, defs: &defs)
                body["description"] = .string(node.description)
                defs[name] = .object(body)
            }
            return ["$ref": .string("#/$defs/\(name)")]
        }
        var body = inlineSchema(of: node, defs: &defs)
        if !node.description.isEmpty { body["description"] = .string(node.description) }
        return body
    }

    private static func inlineSchema(of node: SchemaNode, defs: inout JSONObject) -> JSONObject {
        var s = JSONObject()
        switch node.kind {
        case .string(let format):
            s["type"] = "string"
            if let pattern = format.jsonPattern { s["pattern"] = .string(pattern) }
            if case .path = format { s["minLength"] = 1 }
            if format == .trustedKey { s["minLength"] = 1 }
        case .integer(let minimum, let maximum):
            s["type"] = "integer"
            s["minimum"] = .int(minimum)
            s["maximum"] = .int(maximum)
        case .version(let version):
            s["type"] = "integer"
            s["const"] = .int(version)
        case .boolean:
            s["type"] = "boolean"
        case .enumeration(let values):
            s["type"] = "string"
            s["enum"] = .array(values.map { .string($0) })
        case .object(let fields):
            s["type"] = "object"
            var properties = JSONObject()
            for field in fields {
                var property = jsonSchema(of: field.node, defs: &defs)
                if field.node.definitionName != nil { property["description"] = .string(field.description) }
                if let value = field.defaultValue { property["default"] = value }
                properties[field.name] = .object(property)
            }
            s["properties"] = .object(properties)
            let required = fields.filter(\.required).map { JSON.string($0.name) }
            if !required.isEmpty { s["required"] = .array(required) }
            s["additionalProperties"] = false
        case .array(let items, let minItems):
            s["type"] = "array"
            s["items"] = .object(jsonSchema(of: items, defs: &defs))
            if minItems > 0 { s["minItems"] = .int(Int64(minItems)) }
        case .map(let keyFormat, let value, _):
            s["type"] = "object"
            if let pattern = keyFormat.jsonPattern { s["propertyNames"] = ["pattern": .string(pattern)] }
            s["additionalProperties"] = .object(jsonSchema(of: value, defs: &defs))
        case .pluginConfig:
            s["type"] = "object"
        }
        return s
    }
}

extension StringFormat {
    /// A JSON Schema `pattern` approximating the format (mcpg's own check is stricter), or nil.
    var jsonPattern: String? {
        switch self {
        case .text, .path, .trustedKey: return nil
        case .durability: return "^(sync|batch\\([0-9]{1,4}ms\\))$"
        case .name: return "^[a-z0-9_-]+$"
        case .listenAddress: return "^(\\[[0-9A-Fa-f:.]+(%[A-Za-z0-9]+)?\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$"
        case .urlPath: return "^/[^?#\\s]*$"
        case .origin: return "^[Hh][Tt][Tt][Pp][Ss]?://(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$"
        case .httpURL: return "^[Hh][Tt][Tt][Pp][Ss]?://(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[^?#\\s]*)?$"
        }
    }
}
