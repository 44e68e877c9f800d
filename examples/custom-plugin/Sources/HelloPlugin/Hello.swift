import MCPGJSON
import PluginKit

/// A backend with one tool, `hello`, that greets the `name` it is given. The smallest useful custom plugin:
/// a type conforming to `BackendPlugin` and the one export line at the bottom.
struct Hello: BackendPlugin {
    struct Config: Decodable, Sendable {
        /// The greeting's template; `{{name}}` is replaced by the argument.
        var greeting: String?
    }
    static let name = "hello"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false,
            "properties": [
                "greeting": [
                    "type": "string", "default": .string(defaultGreeting),
                    "description": "Text of the answer; {{name}} is replaced by the `name` argument.",
                ]
            ],
        ]
    }
    static let defaultGreeting = "Hello, {{name}} from a custom plugin"

    let greeting: String

    init(config: Config, host: Host) throws {
        greeting = config.greeting ?? Self.defaultGreeting
        host.log(.info, "hello plugin ready")
    }

    func listTools() async throws -> [JSON] {
        [
            [
                "name": "hello",
                "description": "Greets someone, from a plugin built outside the mcpg package.",
                "inputSchema": [
                    "type": "object",
                    "properties": ["name": ["type": "string", "description": "Who to greet."]],
                    "required": ["name"],
                ],
            ]
        ]
    }

    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON {
        guard call.name == "hello" else { throw PluginError(code: -32602, "unknown tool: \(call.name)") }
        // A tool's own failure is a result with isError, not a thrown error (MCP: input validation errors).
        guard case .string(let name)? = call.arguments["name"] else {
            return [
                "content": [["type": "text", "text": "invalid arguments: \"name\" must be a string"]],
                "isError": true,
            ]
        }
        let text = greeting.replacing("{{name}}", with: name)
        return ["content": [["type": "text", "text": .string(text)]]]
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Hello.self) }
