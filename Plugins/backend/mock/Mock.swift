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
        var tools: [Tool]
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
                ]
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
    }

    func listTools() async throws -> [JSON] { listing }

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
