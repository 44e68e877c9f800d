import MCPGJSON
import PipelineEngine
import PluginKit

/// A backend whose tools are small programs of steps over the gateway's other tools (SPEC.md §6, `pipeline`).
///
/// Each configured tool runs its steps when called; `call` steps call gateway tools through the kernel as the
/// calling principal (policy, transforms, the ledger), which needs `calls_tools: true` on the backend's entry.
/// The config is compiled and checked when the plugin starts: a problem is reported with a JSON pointer to
/// the value at fault, which the kernel turns into the config file's line and column.
struct Pipeline: BackendPlugin {
    typealias Config = JSON

    static let name = "pipeline"
    static let version = "0.1.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["tools"],
            "properties": [
                "tools": [
                    "type": "array",
                    "description":
                        "Pipeline tools: {name, description, inputSchema, outputSchema?, steps}. Steps are checked when the plugin starts (see SPEC.md, the pipeline backend).",
                    "items": ["type": "object"],
                ],
                "limits": [
                    "type": "object", "additionalProperties": false,
                    "description": "Bounds every call keeps.",
                    "properties": [
                        "max_steps": [
                            "type": "integer", "minimum": 1, "description": "Steps executed per call (default 1000).",
                        ],
                        "max_depth": [
                            "type": "integer", "minimum": 1, "description": "Steps nested in steps (default 16).",
                        ],
                        "max_concurrency": [
                            "type": "integer", "minimum": 1,
                            "description": "Highest parallel/map concurrency (default 8).",
                        ],
                        "max_output_bytes": [
                            "type": "integer", "minimum": 1024,
                            "description": "Size of a result, the tool's or an inner call's (default 1 MiB).",
                        ],
                        "max_delay_ms": [
                            "type": "integer", "minimum": 0,
                            "description": "Longest delay, timeout or retry backoff (default 60000).",
                        ],
                        "max_cache_entries": [
                            "type": "integer", "minimum": 1,
                            "description": "Most entries a cache step keeps (default 1000).",
                        ],
                    ],
                ],
            ],
        ]
    }

    let program: Program
    let tools: [String: PipelineTool]
    let cache = CacheStore()

    init(config: JSON, host: Host) throws {
        do {
            program = try Program(config: config)
        } catch {
            throw PluginError(code: -32602, error.description)
        }
        var tools: [String: PipelineTool] = [:]
        for t in program.tools { tools[t.name] = t }
        self.tools = tools
    }

    func listTools() async throws -> [JSON] { program.tools.map(\.listing) }

    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON {
        guard let tool = tools[call.name] else { throw PluginError(code: -32602, "Unknown tool: \(call.name)") }
        let problems = SchemaCheck.problems(.object(call.arguments), tool.inputSchema)
        if !problems.isEmpty {
            throw PluginError(code: -32602, "invalid arguments for \(call.name): " + problems.joined(separator: "; "))
        }
        let runner = Runner(
            tool: tool, limits: program.limits, caller: GatewayCaller(context: context),
            cache: cache, principal: Self.cacheScope(call.principal))
        return try await runner.run(arguments: call.arguments)
    }
}

extension Pipeline {
    /// Whose `cache` entries a call may use: the principal's id within its tenant.
    static func cacheScope(_ principal: Principal?) -> String {
        guard let principal else { return "" }
        return (principal.tenant ?? "") + "\u{1}" + principal.id
    }
}

/// Calls gateway tools through the kernel, as the principal of the call being served.
struct GatewayCaller: ToolCaller {
    let context: CallContext

    func callTool(name: String, arguments: JSONObject) async throws -> JSON {
        do {
            return try await context.request(
                method: "tools/call", params: ["name": .string(name), "arguments": .object(arguments)])
        } catch let e as ClientError {
            throw CallFailure(code: e.code, message: e.message)
        } catch let e as PluginError where e.code == -32601 {
            throw CallFailure(
                code: e.code,
                message: "this backend may not call tools: set backends.<name>.calls_tools: true in its config entry")
        }
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Pipeline.self) }
