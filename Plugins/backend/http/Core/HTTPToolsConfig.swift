import MCPGJSON

/// The `http` backend's config: connection settings (timeouts, retries, TLS, auth …) and the tools.
public struct HTTPToolsConfig: Decodable, Sendable {
    public struct Tool: Decodable, Sendable {
        public struct Response: Decodable, Sendable {
            /// JSON pointer or dotted path into a JSON answer.
            public var select: String?
        }
        public var name: String
        public var title: String?
        public var description: String?
        public var method: String?
        public var url: String
        public var query: JSON?
        public var headers: JSON?
        public var body: JSON?
        public var bodyEncoding: String?
        /// Schemas of arguments by name, for the generated inputSchema.
        public var params: JSON?
        /// Arguments required besides the URL's placeholders.
        public var required: [String]?
        public var inputSchema: JSON?
        public var outputSchema: JSON?
        public var response: Response?
        public var annotations: JSON?
        public var auth: AuthConfig?
        public var timeoutMs: Int?

        enum CodingKeys: String, CodingKey {
            case name, title, description, method, url, query, headers, body, params, required, inputSchema
            case outputSchema, response, annotations, auth
            case bodyEncoding = "body_encoding", timeoutMs = "timeout_ms"
        }
    }

    public var baseURL: String?
    public var tools: [Tool]
    public var connection: ConnectionConfig

    enum CodingKeys: String, CodingKey {
        case tools
        case baseURL = "base_url"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
        tools = try c.decode([Tool].self, forKey: .tools)
        connection = try ConnectionConfig(from: decoder)
    }

    public static var schema: JSON {
        let tool: JSON = [
            "type": "object", "additionalProperties": false, "required": ["name", "url"],
            "properties": [
                "name": ["type": "string", "minLength": 1, "maxLength": 128, "description": "Tool name, unique."],
                "title": ["type": "string", "description": "Human-readable title."],
                "description": ["type": "string", "description": "What the tool does (shown to the model)."],
                "method": [
                    "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                    "description": "HTTP method (default GET).",
                ],
                "url": [
                    "type": "string",
                    "description":
                        "URL template, absolute or relative to base_url; {name} is replaced by that argument, percent-encoded as one path segment or query value.",
                ],
                "query": [
                    "type": "object", "additionalProperties": ["type": "string"],
                    "description":
                        "Query parameters: name → template. \"{arg}\" alone is left out when arg is absent; an array repeats the parameter.",
                ],
                "headers": [
                    "type": "object", "additionalProperties": ["type": "string"],
                    "description": "Request headers: name → template, left out like query parameters.",
                ],
                "body": [
                    "description":
                        "JSON template of the body: a string that is exactly \"{arg}\" takes the argument's JSON value. Default for POST, PUT and PATCH: the arguments not used elsewhere, as an object.",
                ],
                "body_encoding": [
                    "enum": ["json", "form"], "description": "json (default) or application/x-www-form-urlencoded.",
                ],
                "params": [
                    "type": "object", "additionalProperties": ["type": "object"],
                    "description":
                        "JSON Schemas of arguments by name, for the generated inputSchema (default {\"type\": \"string\"} per placeholder).",
                ],
                "required": [
                    "type": "array", "items": ["type": "string"],
                    "description": "Arguments required besides the URL's placeholders (always required).",
                ],
                "inputSchema": [
                    "type": "object", "description": "The whole inputSchema, instead of the generated one.",
                ],
                "outputSchema": [
                    "type": "object",
                    "description": "Schema of the JSON answer (after response.select); the answer becomes structuredContent.",
                ],
                "response": [
                    "type": "object", "additionalProperties": false, "description": "What of the answer is the result.",
                    "properties": [
                        "select": [
                            "type": "string",
                            "description": "JSON pointer (/a/0/b) or dotted path (a.0.b) into a JSON answer.",
                        ]
                    ],
                ],
                "annotations": ["type": "object", "description": "MCP tool annotations."],
                "auth": AuthConfig.schema,
                "timeout_ms": ["type": "integer", "minimum": 1, "maximum": 3_600_000, "description": "This tool's deadline."],
            ],
        ]
        var properties = ConnectionConfig.schemaProperties
        properties["base_url"] = [
            "type": "string", "description": "Prefix of relative tool URLs, e.g. https://api.example.com/v1.",
        ]
        properties["tools"] = ["type": "array", "minItems": 1, "items": tool, "description": "The tools."]
        return ["type": "object", "additionalProperties": false, "required": ["tools"], "properties": .object(properties)]
    }

    /// Builds the caller and the tools.
    /// - Throws: `HTTPToolsError` naming the tool and the bad key.
    public func build(warn: (String) -> Void = { _ in }) throws -> (HTTPCaller, [HTTPTool]) {
        let caller = try HTTPCaller(config: connection, warn: warn)
        var names = Set<String>()
        var out: [HTTPTool] = []
        for t in tools {
            guard HTTPTool.isValidName(t.name) else {
                throw HTTPToolsError("tool name \"\(t.name)\" must be 1-128 characters of A-Z a-z 0-9 _ - .")
            }
            guard names.insert(t.name).inserted else { throw HTTPToolsError("tool \(t.name) is defined twice") }
            out.append(try tool(t, caller: caller))
        }
        return (caller, out)
    }

    func tool(_ t: Tool, caller: HTTPCaller) throws -> HTTPTool {
        let method = (t.method ?? "GET").uppercased()
        var urlText = t.url
        if !urlText.contains("://") {
            guard let base = baseURL else {
                throw HTTPToolsError("tool \(t.name): url \"\(t.url)\" is relative and base_url is not set")
            }
            urlText = (base.hasSuffix("/") ? String(base.dropLast()) : base) + (urlText.hasPrefix("/") ? "" : "/") + urlText
        }
        let url = Template(urlText)
        try HTTPTool.checkURL(url, tool: t.name)
        func templates(_ o: JSON?, _ what: String) throws -> [(String, Template)] {
            try (o?.objectValue ?? [:]).map { m in
                guard let s = m.value.stringValue else {
                    throw HTTPToolsError("tool \(t.name): \(what).\(m.key) must be a string template")
                }
                if what == "headers" { try HTTPCaller.checkHeader(m.key, s) }
                return (m.key, Template(s))
            }
        }
        let query = try templates(t.query, "query")
        let headers = try templates(t.headers, "headers")
        let body: HTTPTool.Body
        if let b = t.body {
            body = .template(b)
        } else if ["POST", "PUT", "PATCH"].contains(method) {
            body = .remainingArguments
        } else {
            body = .none
        }
        let encoding = t.bodyEncoding ?? "json"
        guard encoding == "json" || encoding == "form" else {
            throw HTTPToolsError("tool \(t.name): body_encoding must be json or form")
        }
        let inputSchema: JSON
        if let given = t.inputSchema {
            guard given["type"]?.stringValue == "object" else {
                throw HTTPToolsError("tool \(t.name): inputSchema must have type \"object\"")
            }
            inputSchema = given
        } else {
            var names = url.placeholders
            for (_, q) in query + headers { names += q.placeholders }
            if case .template(let b) = body { names += b.templatePlaceholders }
            let params = t.params?.objectValue ?? [:]
            names += params.keys
            var properties = JSONObject()
            for n in names where properties[n] == nil {
                properties[n] = params[n] ?? ["type": "string"]
            }
            var required = url.placeholders
            for r in t.required ?? [] {
                guard properties[r] != nil else {
                    throw HTTPToolsError("tool \(t.name): required argument \(r) is used nowhere and not in params")
                }
                if !required.contains(r) { required.append(r) }
            }
            var schema: JSONObject = ["type": "object", "properties": .object(properties)]
            if !required.isEmpty { schema["required"] = .array(required.map { .string($0) }) }
            schema["additionalProperties"] = false
            inputSchema = .object(schema)
        }
        if let o = t.outputSchema, o["type"]?.stringValue != "object" {
            throw HTTPToolsError("tool \(t.name): outputSchema must have type \"object\"")
        }
        let auth: Authenticator?
        do {
            auth = try t.auth.map { try caller.makeAuthenticator($0) }
        } catch let e as HTTPToolsError {
            throw HTTPToolsError("tool \(t.name): \(e.message)")
        }
        return HTTPTool(
            name: t.name, title: t.title, description: t.description, method: method, url: url, query: query,
            headers: headers, body: body, bodyEncoding: encoding, inputSchema: inputSchema,
            outputSchema: t.outputSchema, select: t.response?.select, annotations: t.annotations, auth: auth,
            timeoutMs: t.timeoutMs)
    }
}
