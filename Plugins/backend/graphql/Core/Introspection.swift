import HTTPTools
import MCPGJSON

/// Tools from a GraphQL schema's introspection: one per field of the Query and Mutation types.
enum Introspection {
    /// The standard introspection query, trimmed to what tool generation reads.
    static let query = """
        query IntrospectionQuery {
          __schema {
            queryType { name }
            mutationType { name }
            types {
              kind name description
              fields(includeDeprecated: false) {
                name description
                args { name description type { ...TypeRef } defaultValue }
                type { ...TypeRef }
              }
              inputFields { name description type { ...TypeRef } defaultValue }
              enumValues(includeDeprecated: false) { name }
            }
          }
        }
        fragment TypeRef on __Type {
          kind name
          ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
        }
        """

    /// One operation per Query field (tool name: the field name) and per Mutation field (same, unless a Query
    /// field has it: then `mutation_<name>`).
    static func operations(_ schema: JSON, maxDepth: Int) throws -> [GraphQLOperation] {
        var types: [String: JSON] = [:]
        for t in schema["types"]?.arrayValue ?? [] {
            if let n = t["name"]?.stringValue { types[n] = t }
        }
        var out: [GraphQLOperation] = []
        var used = Set<String>()
        for (keyword, root) in [("query", schema["queryType"]?["name"]), ("mutation", schema["mutationType"]?["name"])] {
            guard let rootName = root?.stringValue, let type = types[rootName] else { continue }
            for field in type["fields"]?.arrayValue ?? [] {
                guard let fieldName = field["name"]?.stringValue, !fieldName.hasPrefix("__") else { continue }
                var name = fieldName
                if used.contains(name) { name = "\(keyword)_\(fieldName)" }
                guard HTTPTool.isValidName(name), used.insert(name).inserted else { continue }
                var properties = JSONObject()
                var required: [JSON] = []
                var definitions: [String] = []
                var arguments: [String] = []
                for arg in field["args"]?.arrayValue ?? [] {
                    guard let argName = arg["name"]?.stringValue, let ref = arg["type"] else { continue }
                    var s = schemaOf(ref, types: types, depth: 0)
                    if let d = arg["description"]?.stringValue, case .object(var o) = s {
                        o["description"] = .string(d)
                        s = .object(o)
                    }
                    properties[argName] = s
                    if ref["kind"]?.stringValue == "NON_NULL", arg["defaultValue"]?.stringValue == nil {
                        required.append(.string(argName))
                    }
                    definitions.append("$\(argName): \(typeText(ref))")
                    arguments.append("\(argName): $\(argName)")
                }
                var document = "\(keyword) \(fieldName.prefix(1).uppercased() + fieldName.dropFirst())Tool"
                if !definitions.isEmpty { document += "(" + definitions.joined(separator: ", ") + ")" }
                document += " { \(fieldName)"
                if !arguments.isEmpty { document += "(" + arguments.joined(separator: ", ") + ")" }
                if let selection = selection(of: field["type"] ?? .null, types: types, depth: maxDepth) {
                    document += " " + selection
                }
                document += " }"
                var input: JSONObject = ["type": "object", "properties": .object(properties)]
                if !required.isEmpty { input["required"] = .array(required) }
                input["additionalProperties"] = false
                let description = field["description"]?.stringValue ?? "GraphQL \(keyword) \(fieldName)."
                out.append(
                    GraphQLOperation(
                        name: name, description: description, document: document, inputSchema: .object(input),
                        annotations: keyword == "query" ? ["readOnlyHint": true] : nil))
            }
        }
        return out
    }

    /// A type reference as GraphQL writes it: `[Int!]!`.
    static func typeText(_ ref: JSON) -> String {
        switch ref["kind"]?.stringValue {
        case "NON_NULL": return typeText(ref["ofType"] ?? .null) + "!"
        case "LIST": return "[" + typeText(ref["ofType"] ?? .null) + "]"
        default: return ref["name"]?.stringValue ?? "String"
        }
    }

    /// JSON Schema of an input type reference (input objects to a bounded depth).
    static func schemaOf(_ ref: JSON, types: [String: JSON], depth: Int) -> JSON {
        switch ref["kind"]?.stringValue {
        case "NON_NULL": return schemaOf(ref["ofType"] ?? .null, types: types, depth: depth)
        case "LIST": return ["type": "array", "items": schemaOf(ref["ofType"] ?? .null, types: types, depth: depth)]
        case "ENUM":
            let values = types[ref["name"]?.stringValue ?? ""]?["enumValues"]?.arrayValue?.compactMap { $0["name"] } ?? []
            return values.isEmpty ? ["type": "string"] : ["type": "string", "enum": .array(values)]
        case "INPUT_OBJECT":
            guard depth < 4, let t = types[ref["name"]?.stringValue ?? ""] else { return ["type": "object"] }
            var properties = JSONObject()
            var required: [JSON] = []
            for f in t["inputFields"]?.arrayValue ?? [] {
                guard let n = f["name"]?.stringValue, let r = f["type"] else { continue }
                properties[n] = schemaOf(r, types: types, depth: depth + 1)
                if r["kind"]?.stringValue == "NON_NULL", f["defaultValue"]?.stringValue == nil { required.append(.string(n)) }
            }
            var o: JSONObject = ["type": "object", "properties": .object(properties)]
            if !required.isEmpty { o["required"] = .array(required) }
            return .object(o)
        default:
            return GraphQLVariable.scalarSchema(ref["name"]?.stringValue ?? "") ?? [:]
        }
    }

    /// The selection set of an output type: its scalar and enum fields, object fields to `depth` levels; fields
    /// that need arguments are left out. Nil for scalars (no selection set).
    static func selection(of ref: JSON, types: [String: JSON], depth: Int) -> String? {
        var r = ref
        while let kind = r["kind"]?.stringValue, kind == "NON_NULL" || kind == "LIST" { r = r["ofType"] ?? .null }
        guard let kind = r["kind"]?.stringValue, kind == "OBJECT" || kind == "INTERFACE" || kind == "UNION" else {
            return nil
        }
        guard depth > 0, let t = types[r["name"]?.stringValue ?? ""] else { return "{ __typename }" }
        var parts: [String] = []
        for f in t["fields"]?.arrayValue ?? [] {
            guard let n = f["name"]?.stringValue, let ft = f["type"] else { continue }
            if (f["args"]?.arrayValue ?? []).contains(where: { $0["type"]?["kind"]?.stringValue == "NON_NULL" }) { continue }
            var inner = ft
            while let k = inner["kind"]?.stringValue, k == "NON_NULL" || k == "LIST" { inner = inner["ofType"] ?? .null }
            switch inner["kind"]?.stringValue {
            case "SCALAR", "ENUM": parts.append(n)
            default:
                if depth > 1, let sub = selection(of: ft, types: types, depth: depth - 1) { parts.append("\(n) \(sub)") }
            }
        }
        if parts.isEmpty { parts = ["__typename"] }
        return "{ " + parts.joined(separator: " ") + " }"
    }
}
