import HTTPTools
import MCPGJSON
import PluginKit

/// A backend whose tools are GraphQL operations on one endpoint: configured query/mutation documents
/// (their variables are the arguments), or, with `introspect: true`, one tool per field of the schema's
/// Query and Mutation types, found by the standard introspection query on first use. A response's `errors`
/// make the result an error with their messages; `data` is the structured result.
struct GraphQLBackend: BackendPlugin {
    struct Config: Decodable, Sendable {
        struct Operation: Decodable, Sendable {
            var name: String
            var title: String?
            var description: String?
            var query: String
            /// JSON Schemas of the variables by name; default: from the document's variable definitions.
            var variables: JSON?
            var outputSchema: JSON?
            var annotations: JSON?
        }
        var endpoint: String
        var operations: [Operation]?
        var introspect: Bool?
        var maxDepth: Int?
        var include: [String]?
        var exclude: [String]?
        var connection: ConnectionConfig

        enum CodingKeys: String, CodingKey {
            case endpoint, operations, introspect, include, exclude
            case maxDepth = "max_depth"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            endpoint = try c.decode(String.self, forKey: .endpoint)
            operations = try c.decodeIfPresent([Operation].self, forKey: .operations)
            introspect = try c.decodeIfPresent(Bool.self, forKey: .introspect)
            maxDepth = try c.decodeIfPresent(Int.self, forKey: .maxDepth)
            include = try c.decodeIfPresent([String].self, forKey: .include)
            exclude = try c.decodeIfPresent([String].self, forKey: .exclude)
            connection = try ConnectionConfig(from: decoder)
        }
    }

    static let name = "graphql"
    static let version = "1.0.0"
    static var configSchema: JSON {
        var properties = ConnectionConfig.schemaProperties
        properties["endpoint"] = ["type": "string", "description": "The GraphQL endpoint (http or https URL)."]
        properties["operations"] = [
            "type": "array", "description": "Configured operations, one tool each.",
            "items": [
                "type": "object", "additionalProperties": false, "required": ["name", "query"],
                "properties": [
                    "name": ["type": "string", "minLength": 1, "maxLength": 128, "description": "Tool name, unique."],
                    "title": ["type": "string", "description": "Human-readable title."],
                    "description": ["type": "string", "description": "What the tool does."],
                    "query": [
                        "type": "string", "description": "A query or mutation document; its variables are the arguments.",
                    ],
                    "variables": [
                        "type": "object", "additionalProperties": ["type": "object"],
                        "description":
                            "JSON Schemas of the variables by name (default: from the document's variable definitions).",
                    ],
                    "outputSchema": ["type": "object", "description": "JSON Schema of `data`."],
                    "annotations": ["type": "object", "description": "MCP tool annotations."],
                ],
            ],
        ]
        properties["introspect"] = [
            "type": "boolean",
            "description": "Make one tool per Query and Mutation field from the schema's introspection (default false).",
        ]
        properties["max_depth"] = [
            "type": "integer", "minimum": 1, "maximum": 5,
            "description": "Introspection: how deep object fields are selected in generated queries (default 2).",
        ]
        properties["include"] = [
            "type": "array", "items": ["type": "string"],
            "description": "Introspection: only fields whose tool name matches one of these globs.",
        ]
        properties["exclude"] = [
            "type": "array", "items": ["type": "string"],
            "description": "Introspection: leave out fields whose tool name matches one of these globs.",
        ]
        return [
            "type": "object", "additionalProperties": false, "required": ["endpoint"], "properties": .object(properties),
        ]
    }

    let owner: GraphQLOwner

    init(config: Config, host: Host) throws {
        do {
            guard config.endpoint.hasPrefix("http://") || config.endpoint.hasPrefix("https://") else {
                throw HTTPToolsError("endpoint must be an http or https URL")
            }
            let introspect = config.introspect ?? false
            guard introspect || !(config.operations ?? []).isEmpty else {
                throw HTTPToolsError("give operations, or introspect: true")
            }
            let caller = try HTTPCaller(config: config.connection, warn: { host.log(.warning, "graphql: \($0)") })
            var operations: [GraphQLOperation] = []
            for op in config.operations ?? [] {
                operations.append(try GraphQLOperation(op))
            }
            let names = operations.map(\.name)
            guard Set(names).count == names.count else { throw HTTPToolsError("an operation name is used twice") }
            owner = GraphQLOwner(
                caller: caller, endpoint: config.endpoint, configured: operations, introspect: introspect,
                maxDepth: config.maxDepth ?? 2, include: config.include ?? [], exclude: config.exclude ?? [])
        } catch let e as HTTPToolsError {
            throw PluginError(code: -32602, "graphql: \(e.message)")
        }
    }

    func listTools() async throws -> [JSON] {
        try await owner.operations().map(\.json)
    }

    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON {
        guard let op = try await owner.operations().first(where: { $0.name == call.name }) else {
            throw PluginError(code: -32602, "unknown tool \(call.name)")
        }
        if let e = SchemaValidator.firstError(.object(call.arguments), schema: op.inputSchema) {
            throw PluginError(code: -32602, "invalid arguments for \(op.name): \(e)")
        }
        return await owner.run(op.document, variables: call.arguments, outputSchema: op.outputSchema, meta: call.meta)
    }
}

/// One tool: a GraphQL document and the schema of its variables.
struct GraphQLOperation: Sendable {
    var name: String
    var title: String?
    var description: String?
    var document: String
    var inputSchema: JSON
    var outputSchema: JSON?
    var annotations: JSON?

    init(name: String, description: String?, document: String, inputSchema: JSON, annotations: JSON? = nil) {
        self.name = name
        self.description = description
        self.document = document
        self.inputSchema = inputSchema
        self.annotations = annotations
    }

    init(_ op: GraphQLBackend.Config.Operation) throws {
        guard HTTPTool.isValidName(op.name) else {
            throw HTTPToolsError("operation name \"\(op.name)\" must be 1-128 characters of A-Z a-z 0-9 _ - .")
        }
        name = op.name
        title = op.title
        description = op.description
        document = op.query
        annotations = op.annotations
        outputSchema = op.outputSchema
        if let o = outputSchema, o["type"]?.stringValue != "object" {
            throw HTTPToolsError("operation \(op.name): outputSchema must have type \"object\"")
        }
        let declared: [GraphQLVariable]
        do {
            declared = try GraphQLVariable.parse(op.query)
        } catch let e as HTTPToolsError {
            throw HTTPToolsError("operation \(op.name): \(e.message)")
        }
        var properties = JSONObject()
        var required: [JSON] = []
        for v in declared {
            properties[v.name] = op.variables?[v.name] ?? v.schema
            if v.required { required.append(.string(v.name)) }
        }
        for m in op.variables?.objectValue ?? [:] where properties[m.key] == nil {
            throw HTTPToolsError("operation \(op.name): variable \(m.key) is not declared in the query")
        }
        var schema: JSONObject = ["type": "object", "properties": .object(properties)]
        if !required.isEmpty { schema["required"] = .array(required) }
        schema["additionalProperties"] = false
        inputSchema = .object(schema)
    }

    var json: JSON {
        var o: JSONObject = ["name": .string(name)]
        if let title { o["title"] = .string(title) }
        if let description { o["description"] = .string(description) }
        o["inputSchema"] = inputSchema
        if let outputSchema { o["outputSchema"] = outputSchema }
        if let annotations { o["annotations"] = annotations }
        return .object(o)
    }
}

/// A variable definition of a GraphQL document: `$name: Type` with its JSON Schema.
struct GraphQLVariable: Sendable, Equatable {
    var name: String
    var required: Bool
    var schema: JSON

    /// The variable definitions of the document's first operation.
    /// - Throws: `HTTPToolsError` when the document has no operation or the definitions cannot be read.
    static func parse(_ document: String) throws -> [GraphQLVariable] {
        let chars = Array(document.unicodeScalars)
        guard let brace = chars.firstIndex(of: "{") else { throw HTTPToolsError("the query has no selection set") }
        let head = String(String.UnicodeScalarView(chars[..<brace]))
        guard let open = head.firstIndex(of: "(") else { return [] }
        guard let close = head.lastIndex(of: ")"), open < close else {
            throw HTTPToolsError("the variable definitions are not closed")
        }
        var out: [GraphQLVariable] = []
        let definitions = head[head.index(after: open)..<close]
        guard definitions.trimmingCharacters().isEmpty || definitions.trimmingCharacters().hasPrefix("$") else {
            throw HTTPToolsError("the variable definitions must start with $")
        }
        for def in definitions.split(separator: "$") {
            let parts = def.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { throw HTTPToolsError("variable $\(def) has no type") }
            let name = parts[0].trimmingCharacters()
            var type = parts[1].split(separator: "=", maxSplits: 1)[0].trimmingCharacters()
            while type.hasSuffix(",") { type = String(type.dropLast()).trimmingCharacters() }
            let hasDefault = parts[1].contains("=")
            out.append(
                GraphQLVariable(
                    name: name, required: type.hasSuffix("!") && !hasDefault, schema: schema(ofTypeText: type)))
        }
        return out
    }

    /// JSON Schema of a GraphQL type as written (`[Int!]!`): built-in scalars typed, other types unconstrained.
    static func schema(ofTypeText text: String) -> JSON {
        var t = text.trimmingCharacters()
        if t.hasSuffix("!") { t = String(t.dropLast()) }
        if t.hasPrefix("["), t.hasSuffix("]") {
            return ["type": "array", "items": schema(ofTypeText: String(t.dropFirst().dropLast()))]
        }
        return scalarSchema(t) ?? [:]
    }

    static func scalarSchema(_ name: String) -> JSON? {
        switch name {
        case "String", "ID": return ["type": "string"]
        case "Int": return ["type": "integer"]
        case "Float": return ["type": "number"]
        case "Boolean": return ["type": "boolean"]
        default: return nil
        }
    }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "," }
        guard let first = firstIndex(where: { !ws($0) }), let last = lastIndex(where: { !ws($0) }) else { return "" }
        return String(self[first...last])
    }
}

/// Owns the HTTP client and the operations (introspected once, on first use; retried after a failure).
final class GraphQLOwner: Sendable {
    let caller: HTTPCaller
    let endpoint: String
    let configured: [GraphQLOperation]
    let introspect: Bool
    let maxDepth: Int
    let include: [String]
    let exclude: [String]
    let introspected = IntrospectionCache()

    init(caller: HTTPCaller, endpoint: String, configured: [GraphQLOperation], introspect: Bool, maxDepth: Int,
         include: [String], exclude: [String]) {
        self.caller = caller
        self.endpoint = endpoint
        self.configured = configured
        self.introspect = introspect
        self.maxDepth = maxDepth
        self.include = include
        self.exclude = exclude
    }

    deinit {
        let caller = caller
        Task { await caller.shutdown() }
    }

    func operations() async throws -> [GraphQLOperation] {
        guard introspect else { return configured }
        let generated = try await introspected.get {
            let answer = await self.run(Introspection.query, variables: [:], outputSchema: nil)
            guard answer["isError"] != .bool(true), let schema = answer["structuredContent"]?["__schema"] else {
                throw PluginError(
                    code: -32004,
                    "graphql: introspection failed: \(answer["content"]?[0]?["text"]?.stringValue ?? "no __schema")")
            }
            return try Introspection.operations(schema, maxDepth: self.maxDepth)
        }
        let names = Set(configured.map(\.name))
        let included = GlobSet(include)
        let excluded = GlobSet(exclude)
        return configured
            + generated.filter { op in
                !names.contains(op.name) && (include.isEmpty || included.matches(op.name))
                    && (exclude.isEmpty || !excluded.matches(op.name))
            }
    }

    /// POSTs the document with its variables; `errors` → isError with their messages, `data` → structuredContent.
    func run(_ document: String, variables: JSONObject, outputSchema: JSON?, meta: JSONObject? = nil) async -> JSON {
        let body: JSON = ["query": .string(document), "variables": .object(variables)]
        var request = OutgoingRequest(
            method: "POST", url: endpoint,
            headers: [("Content-Type", "application/json"), ("Accept", "application/graphql-response+json, application/json")],
            body: body.serialized())
        request.addTraceContext(from: meta)
        let response: IncomingResponse
        do {
            response = try await caller.send(request, auth: caller.defaultAuth)
        } catch let e as HTTPToolsError {
            return toolResult(text: caller.scrub(e.message), isError: true)
        } catch {
            return toolResult(text: "cancelled", isError: true)
        }
        guard let json = try? JSON.parse(response.body), case .object = json else {
            if !(200..<300).contains(response.status) {
                return toolResult(text: "HTTP \(response.status) \(response.reason): \(caller.scrub(response.excerpt()))", isError: true)
            }
            return toolResult(text: "the GraphQL answer is not a JSON object: \(caller.scrub(response.excerpt()))", isError: true)
        }
        if let errors = json["errors"]?.arrayValue, !errors.isEmpty {
            let messages = errors.map { e -> String in
                var m = e["message"]?.stringValue ?? e.text
                if let path = e["path"]?.arrayValue { m += " (at \(path.map(\.plainText).joined(separator: ".")))" }
                return m
            }
            return toolResult(text: caller.scrub("GraphQL errors: " + messages.joined(separator: "; ")), isError: true)
        }
        guard (200..<300).contains(response.status) else {
            return toolResult(text: "HTTP \(response.status) \(response.reason): \(caller.scrub(response.excerpt()))", isError: true)
        }
        guard let data = json["data"], case .object = data else {
            return toolResult(text: "the GraphQL answer has no data", isError: true)
        }
        if let outputSchema, let e = SchemaValidator.firstError(data, schema: outputSchema, path: "data") {
            return toolResult(text: "the answer does not match the outputSchema: \(e)", isError: true)
        }
        return toolResult(text: data.text, structured: data)
    }
}

/// The introspected operations, computed once by the first caller (concurrent callers wait for it).
actor IntrospectionCache {
    private var value: [GraphQLOperation]?
    private var pending: Task<[GraphQLOperation], any Error>?

    func get(_ compute: @escaping @Sendable () async throws -> [GraphQLOperation]) async throws -> [GraphQLOperation] {
        if let value { return value }
        let task = pending ?? Task { try await compute() }
        pending = task
        do {
            let v = try await task.value
            value = v
            pending = nil
            return v
        } catch {
            pending = nil
            throw error
        }
    }
}

/// The plugin descriptor, for the plugin module's `mcpg_plugin_v1` (kept there so that this library can be
/// linked into tests beside other plugins).
public enum GraphQLPluginExport {
    public static func descriptor() -> UnsafeRawPointer { PluginExport.descriptor(for: GraphQLBackend.self) }
}
