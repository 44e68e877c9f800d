import MCPGJSON
import PluginKit

/// A backend whose tools are declared in config, with canned or templated results: for demos, examples and
/// tests of everything in front of a backend.
///
/// `{{arg}}` in a result's text or in any string of its structured content is replaced by that argument
/// (strings as is, other JSON serialized; absent → empty); a string that is exactly one `{{arg}}` takes the
/// argument's JSON value (a number stays a number). Arguments are checked against the tool's
/// `inputSchema` (`required`, and the `type` of declared properties); a failure is a tool result with
/// `isError: true` (MCP: input validation errors are tool results). With `progress_steps` and a request
/// `_meta.progressToken`, one `notifications/progress` per step is sent before the answer.
struct Mock: BackendPlugin {
    struct Config: Decodable, Sendable {
        struct Tool: Decodable, Sendable {
            struct Result: Decodable, Sendable {
                var text: String?
                var structured: JSON?
                var is_error: Bool?
            }
            var name: String
            var title: String?
            var description: String?
            var inputSchema: JSON?
            var outputSchema: JSON?
            var annotations: JSON?
            var result: Result?
            var progress_steps: Int?
            var delay_ms: Int?
        }
        struct Prompt: Decodable, Sendable {
            struct Argument: Decodable, Sendable {
                var name: String
                var description: String?
                var required: Bool?
            }
            var name: String
            var title: String?
            var description: String?
            var arguments: [Argument]?
            var text: String
        }
        struct Resource: Decodable, Sendable {
            var uri: String
            var name: String
            var title: String?
            var description: String?
            var mimeType: String?
            var text: String
        }
        struct ResourceTemplate: Decodable, Sendable {
            var uriTemplate: String
            var name: String
            var description: String?
            var mimeType: String?
            var text: String
        }
        var tools: [Tool]
        var prompts: [Prompt]?
        var resources: [Resource]?
        var resource_templates: [ResourceTemplate]?
    }
    static let name = "mock"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["tools"],
            "properties": [
                "tools": [
                    "type": "array", "description": "The tools this backend serves.",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["name"],
                        "properties": [
                            "name": ["type": "string", "minLength": 1, "description": "Tool name, unique."],
                            "title": ["type": "string", "description": "Human-readable title."],
                            "description": ["type": "string", "description": "What the tool does."],
                            "inputSchema": [
                                "type": "object",
                                "description":
                                    "JSON Schema of the arguments (root type object). Default: {\"type\": \"object\"}.",
                            ],
                            "outputSchema": [
                                "type": "object", "description": "JSON Schema of the structured result.",
                            ],
                            "annotations": [
                                "type": "object",
                                "description": "MCP tool annotations (readOnlyHint, destructiveHint, …).",
                            ],
                            "result": [
                                "type": "object", "additionalProperties": false,
                                "description": "The answer; `{{arg}}` in strings is replaced by that argument.",
                                "properties": [
                                    "text": [
                                        "type": "string",
                                        "description":
                                            "Text content. Default: the serialized structured content, if any.",
                                    ],
                                    "structured": [
                                        "type": "object", "description": "structuredContent of the result.",
                                    ],
                                    "is_error": [
                                        "type": "boolean", "description": "Answer as a tool error (isError).",
                                    ],
                                ],
                            ],
                            "progress_steps": [
                                "type": "integer", "minimum": 0, "maximum": 10000,
                                "description": "Progress notifications sent when the call asks for progress.",
                            ],
                            "delay_ms": [
                                "type": "integer", "minimum": 0, "maximum": 3_600_000,
                                "description": "Milliseconds to wait before answering (spread over the steps).",
                            ],
                        ],
                    ],
                ],
                "prompts": [
                    "type": "array", "description": "The prompts this backend serves.",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["name", "text"],
                        "properties": [
                            "name": ["type": "string", "minLength": 1, "description": "Prompt name, unique."],
                            "title": ["type": "string", "description": "Human-readable title."],
                            "description": ["type": "string", "description": "What the prompt is for."],
                            "arguments": [
                                "type": "array", "description": "The prompt's arguments.",
                                "items": [
                                    "type": "object", "additionalProperties": false, "required": ["name"],
                                    "properties": [
                                        "name": ["type": "string", "description": "Argument name."],
                                        "description": ["type": "string", "description": "What it means."],
                                        "required": ["type": "boolean", "description": "Whether it must be given."],
                                    ],
                                ],
                            ],
                            "text": [
                                "type": "string",
                                "description": "The user message prompts/get returns; `{{arg}}` is replaced by that argument.",
                            ],
                        ],
                    ],
                ],
                "resources": [
                    "type": "array", "description": "The resources this backend serves (text content).",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["uri", "name", "text"],
                        "properties": [
                            "uri": ["type": "string", "minLength": 1, "description": "Resource URI, unique."],
                            "name": ["type": "string", "description": "Resource name."],
                            "title": ["type": "string", "description": "Human-readable title."],
                            "description": ["type": "string", "description": "What it holds."],
                            "mimeType": ["type": "string", "description": "MIME type of the text."],
                            "text": ["type": "string", "description": "The content resources/read returns."],
                        ],
                    ],
                ],
                "resource_templates": [
                    "type": "array", "description": "Resource templates (RFC 6570) this backend serves.",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["uriTemplate", "name", "text"],
                        "properties": [
                            "uriTemplate": ["type": "string", "minLength": 1, "description": "URI template."],
                            "name": ["type": "string", "description": "Template name."],
                            "description": ["type": "string", "description": "What its resources hold."],
                            "mimeType": ["type": "string", "description": "MIME type of the text."],
                            "text": [
                                "type": "string",
                                "description": "The content of any URI it matches; `{{uri}}` is replaced by the URI.",
                            ],
                        ],
                    ],
                ],
            ],
        ]
    }

    /// One tool, ready to list and call.
    struct ToolSpec: Sendable {
        let required: [String]
        /// Declared property name → allowed JSON Schema type names.
        let types: [String: [String]]
        let text: Template?
        let structured: JSON?
        let isError: Bool
        let progressSteps: Int
        let delayMs: Int
    }

    let listing: [JSON]
    let tools: [String: ToolSpec]
    let promptListing: [JSON]
    let prompts: [String: (required: [String], text: Template)]
    let resourceListing: [JSON]
    let resources: [String: (mimeType: String?, text: String)]
    let templateListing: [JSON]
    let templates: [(prefix: String, mimeType: String?, text: Template)]

    init(config: Config, host: Host) throws {
        var tools: [String: ToolSpec] = [:]
        var listing: [JSON] = []
        for (i, t) in config.tools.enumerated() {
            let label = "mock: tools[\(i)] (\"\(t.name)\")"
            guard !t.name.isEmpty else { throw PluginError(code: -32602, "mock: tools[\(i)].name must not be empty") }
            guard tools[t.name] == nil else { throw PluginError(code: -32602, "mock: duplicate tool \"\(t.name)\"") }
            let input = t.inputSchema ?? ["type": "object"]
            guard case .object(let schema) = input else {
                throw PluginError(code: -32602, "\(label): inputSchema must be an object")
            }
            for (field, value) in [("outputSchema", t.outputSchema), ("annotations", t.annotations)] {
                if let value, value.objectValue == nil {
                    throw PluginError(code: -32602, "\(label): \(field) must be an object")
                }
            }
            if let s = t.result?.structured, s.objectValue == nil {
                throw PluginError(code: -32602, "\(label): result.structured must be an object")
            }
            let steps = t.progress_steps ?? 0
            let delay = t.delay_ms ?? 0
            guard steps >= 0, delay >= 0 else {
                throw PluginError(code: -32602, "\(label): progress_steps and delay_ms must not be negative")
            }

            var tool: JSONObject = ["name": .string(t.name)]
            if let title = t.title { tool["title"] = .string(title) }
            if let description = t.description { tool["description"] = .string(description) }
            tool["inputSchema"] = input
            if let o = t.outputSchema { tool["outputSchema"] = o }
            if let a = t.annotations { tool["annotations"] = a }
            listing.append(.object(tool))

            var types: [String: [String]] = [:]
            for m in schema["properties"]?.objectValue ?? [:] {
                switch m.value["type"] {
                case .string(let s)?: types[m.key] = [s]
                case .array(let a)?: types[m.key] = a.compactMap(\.stringValue)
                default: break
                }
            }
            tools[t.name] = ToolSpec(
                required: schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                types: types,
                text: t.result?.text.map(Template.init),
                structured: t.result?.structured,
                isError: t.result?.is_error ?? false,
                progressSteps: steps,
                delayMs: delay)
        }
        self.listing = listing
        self.tools = tools

        var prompts: [String: (required: [String], text: Template)] = [:]
        var promptListing: [JSON] = []
        for p in config.prompts ?? [] {
            guard prompts[p.name] == nil else { throw PluginError(code: -32602, "mock: duplicate prompt \"\(p.name)\"") }
            var item: JSONObject = ["name": .string(p.name)]
            if let t = p.title { item["title"] = .string(t) }
            if let d = p.description { item["description"] = .string(d) }
            if let args = p.arguments {
                item["arguments"] = .array(args.map { a in
                    var o: JSONObject = ["name": .string(a.name)]
                    if let d = a.description { o["description"] = .string(d) }
                    if let r = a.required { o["required"] = .bool(r) }
                    return .object(o)
                })
            }
            promptListing.append(.object(item))
            prompts[p.name] = ((p.arguments ?? []).filter { $0.required == true }.map(\.name), Template(p.text))
        }
        var resources: [String: (mimeType: String?, text: String)] = [:]
        var resourceListing: [JSON] = []
        for r in config.resources ?? [] {
            guard resources[r.uri] == nil else { throw PluginError(code: -32602, "mock: duplicate resource \"\(r.uri)\"") }
            var item: JSONObject = ["uri": .string(r.uri), "name": .string(r.name)]
            if let t = r.title { item["title"] = .string(t) }
            if let d = r.description { item["description"] = .string(d) }
            if let m = r.mimeType { item["mimeType"] = .string(m) }
            resourceListing.append(.object(item))
            resources[r.uri] = (r.mimeType, r.text)
        }
        var templates: [(prefix: String, mimeType: String?, text: Template)] = []
        var templateListing: [JSON] = []
        for t in config.resource_templates ?? [] {
            var item: JSONObject = ["uriTemplate": .string(t.uriTemplate), "name": .string(t.name)]
            if let d = t.description { item["description"] = .string(d) }
            if let m = t.mimeType { item["mimeType"] = .string(m) }
            templateListing.append(.object(item))
            // The mock serves any URI that starts with the template's text before its first expression.
            let prefix = String(t.uriTemplate.prefix { $0 != "{" })
            templates.append((prefix, t.mimeType, Template(t.text)))
        }
        self.promptListing = promptListing
        self.prompts = prompts
        self.resourceListing = resourceListing
        self.resources = resources
        self.templateListing = templateListing
        self.templates = templates
    }

    func listTools() async throws -> [JSON] { listing }
    func listPrompts() async throws -> [JSON] { promptListing }
    func listResources() async throws -> [JSON] { resourceListing }
    func listResourceTemplates() async throws -> [JSON] { templateListing }

    func getPrompt(name: String, arguments: JSONObject, request: JSON, context: CallContext) async throws -> JSON {
        guard let p = prompts[name] else { throw PluginError(code: -32602, "Unknown prompt: \(name)") }
        for r in p.required where arguments[r] == nil {
            throw PluginError(code: -32602, "prompt \(name): missing required argument \"\(r)\"")
        }
        return ["messages": [["role": "user", "content": ["type": "text", "text": .string(p.text.render(arguments))]]]]
    }

    func readResource(uri: String, request: JSON, context: CallContext) async throws -> JSON {
        func contents(_ mimeType: String?, _ text: String) -> JSON {
            var c: JSONObject = ["uri": .string(uri), "text": .string(text)]
            if let mimeType { c["mimeType"] = .string(mimeType) }
            return ["contents": [.object(c)]]
        }
        if let r = resources[uri] { return contents(r.mimeType, r.text) }
        if let t = templates.first(where: { uri.hasPrefix($0.prefix) && uri.count > $0.prefix.count }) {
            return contents(t.mimeType, t.text.render(["uri": .string(uri)]))
        }
        throw PluginError(code: -32002, "Resource not found: \(uri)")
    }

    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON {
        guard let tool = tools[call.name] else { throw PluginError(code: -32602, "unknown tool: \(call.name)") }
        let problems = Self.validate(call.arguments, against: tool)
        if !problems.isEmpty {
            return [
                "content": [
                    ["type": "text", "text": .string("invalid arguments: " + problems.joined(separator: "; "))]
                ],
                "isError": true,
            ]
        }

        let token = call.meta?["progressToken"]
        let steps = token == nil ? 0 : tool.progressSteps
        if steps > 0, let token {
            // The delay is spread over the steps, so progress arrives while the call is running.
            let pause = tool.delayMs / steps
            for i in 1...steps {
                if pause > 0 { try await Task.sleep(for: .milliseconds(pause)) }
                try Task.checkCancellation()
                context.emit([
                    "jsonrpc": "2.0", "method": "notifications/progress",
                    "params": ["progressToken": token, "progress": .int(Int64(i)), "total": .int(Int64(steps))],
                ])
            }
        } else if tool.delayMs > 0 {
            try await Task.sleep(for: .milliseconds(tool.delayMs))
        }

        var result: JSONObject = [:]
        let structured = tool.structured.map { Self.fill($0, call.arguments) }
        if let text = tool.text {
            result["content"] = [["type": "text", "text": .string(text.render(call.arguments))]]
        } else if let structured {
            result["content"] = [["type": "text", "text": .string(structured.text)]]
        } else {
            result["content"] = []
        }
        if let structured { result["structuredContent"] = structured }
        if tool.isError { result["isError"] = true }
        return .object(result)
    }

    /// What is wrong with `arguments`: missing required ones and declared ones of the wrong JSON type.
    private static func validate(_ arguments: JSONObject, against tool: ToolSpec) -> [String] {
        var problems: [String] = []
        for name in tool.required where arguments[name] == nil {
            problems.append("missing required argument \"\(name)\"")
        }
        for m in arguments {
            guard let allowed = tool.types[m.key], !allowed.isEmpty else { continue }
            if !allowed.contains(where: { has(m.value, type: $0) }) {
                problems.append(
                    "argument \"\(m.key)\" must be \(allowed.joined(separator: " or ")), not \(m.value.typeName)")
            }
        }
        return problems
    }

    /// Whether `value` is an instance of the JSON Schema type `type`.
    private static func has(_ value: JSON, type: String) -> Bool {
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

    /// `value` with the templates in its strings filled in (object keys are left alone).
    private static func fill(_ value: JSON, _ arguments: JSONObject) -> JSON {
        switch value {
        case .string(let s):
            let template = Template(s)
            // A string that is exactly one placeholder takes the argument's JSON value, so `"{{n}}"` can fill a
            // number or an object that an outputSchema requires.
            if template.parts.count == 1, case .argument(let name) = template.parts[0], let v = arguments[name] {
                return v
            }
            return .string(template.render(arguments))
        case .array(let a): return .array(a.map { fill($0, arguments) })
        case .object(let o): return .object(JSONObject(o.members.map { JSONMember($0.key, fill($0.value, arguments)) }))
        default: return value
        }
    }
}

/// A string with `{{name}}` placeholders, split once into literal and argument parts.
struct Template: Sendable {
    enum Part: Sendable {
        case literal(String)
        case argument(String)
    }
    let parts: [Part]

    init(_ source: String) {
        var parts: [Part] = []
        var rest = source[...]
        while let open = rest.firstRange(of: "{{"), let close = rest[open.upperBound...].firstRange(of: "}}") {
            if open.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<open.lowerBound]))) }
            let name = rest[open.upperBound..<close.lowerBound].filter { $0 != " " }
            parts.append(.argument(String(name)))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
    }

    func render(_ arguments: JSONObject) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let s): out += s
            case .argument(let name):
                switch arguments[name] {
                case nil: break
                case .string(let s)?: out += s
                case let v?: out += v.text
                }
            }
        }
        return out
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Mock.self) }
