import HTTPTools
import MCPGJSON
import PluginKit

/// A backend whose tools are HTTP requests declared in config: a URL template, query, header and body
/// mapping from the arguments, outbound auth (static header, bearer, basic, OAuth2 client credentials),
/// timeouts, retries of idempotent requests, a response size limit and TLS options. Arguments are checked
/// against the tool's inputSchema first (-32602 when they do not conform); an upstream failure or a non-2xx
/// answer is a result with `isError: true`.
struct HTTPBackend: BackendPlugin {
    typealias Config = HTTPToolsConfig

    static let name = "http"
    static let version = "1.0.0"
    static var configSchema: JSON { HTTPToolsConfig.schema }

    let owner: CallerOwner
    let tools: [String: HTTPTool]
    let listed: [JSON]

    init(config: Config, host: Host) throws {
        let built: (HTTPCaller, [HTTPTool])
        do {
            built = try config.build(warn: { host.log(.warning, "http: \($0)") })
        } catch let e as HTTPToolsError {
            throw PluginError(code: -32602, "http: \(e.message)")
        }
        owner = CallerOwner(built.0)
        tools = Dictionary(built.1.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        listed = built.1.map(\.json)
    }

    func listTools() async throws -> [JSON] { listed }

    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON {
        guard let tool = tools[call.name] else { throw PluginError(code: -32602, "unknown tool \(call.name)") }
        do {
            return try await owner.caller.call(tool, arguments: call.arguments, meta: call.meta)
        } catch let e as InvalidArguments {
            throw PluginError(code: -32602, e.message)
        }
    }
}

/// Owns the HTTP client for the plugin instance and shuts it down with the instance.
final class CallerOwner: Sendable {
    let caller: HTTPCaller
    init(_ caller: HTTPCaller) { self.caller = caller }
    deinit {
        let caller = caller
        Task { await caller.shutdown() }
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: HTTPBackend.self) }
