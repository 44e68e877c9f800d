import MCPClient
import MCPGJSON
import PluginKit

/// A backend that is one upstream MCP server, reached over stdio (a child process), Streamable HTTP or the
/// 2024-11-05 HTTP+SSE transport; the upstream's tools, prompts, resources, templates and completions are
/// relayed untouched (full lists: every page is read).
///
/// One connection and MCP session per instance, shared by every call and re-established in the background
/// with backoff (a stdio process is restarted); `create` does not wait for it. While the upstream is down,
/// calls fail at once with -32004 and the reason. The upstream's JSON-RPC errors keep their code (-32602 for
/// an unknown tool is relayed as such). A call's `_meta` goes upstream as is, except `progressToken`, which is
/// replaced by one of ours; progress comes back under the client's token. `sampling/createMessage`,
/// `elicitation/create` and `roots/list` from the upstream are relayed to the client of the call they belong
/// to (`CallContext.request`) and the client's answer or error goes back upstream. `notifications/message`
/// on a call's stream goes to that call's client; others go to the host log. `watch` reports the upstream's
/// list_changed and resources/updated notifications and `notifications/mcpg/health`; subscriptions are
/// renewed after a reconnect.
struct MCPBackend: BackendPlugin {
    typealias Config = MCPClient.Config

    static let name = "mcp"
    static let version = "1.0.0"
    static var configSchema: JSON { MCPClient.configSchema }

    let owner: Owner

    init(config: Config, host: Host) throws {
        let client: MCPClient
        do {
            client = try MCPClient(config: config, clientVersion: Self.version) { level, message, metadata in
                host.log(level.hostLevel, message, metadata)
            }
        } catch let e as MCPConfigError {
            throw PluginError(code: -32602, "mcp: \(e.message)")
        }
        client.start()
        owner = Owner(client)
    }

    var client: MCPClient { owner.client }

    func listTools() async throws -> [JSON] { try await relay { try await client.listTools() } }
    func listPrompts() async throws -> [JSON] { try await relay { try await client.listPrompts() } }
    func listResources() async throws -> [JSON] { try await relay { try await client.listResources() } }
    func listResourceTemplates() async throws -> [JSON] {
        try await relay { try await client.listResourceTemplates() }
    }

    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON {
        var params: JSONObject = ["name": .string(call.name), "arguments": .object(call.arguments)]
        let token = Self.addMeta(call.meta, to: &params)
        return try await relay {
            try await client.request("tools/call", params: .object(params), hooks: Self.hooks(context, token))
        }
    }

    func getPrompt(name: String, arguments: JSONObject, request: JSON, context: CallContext) async throws -> JSON {
        var params: JSONObject = ["name": .string(name)]
        if !arguments.isEmpty { params["arguments"] = .object(arguments) }
        let token = Self.addMeta(request["_meta"]?.objectValue, to: &params)
        return try await relay {
            try await client.request("prompts/get", params: .object(params), hooks: Self.hooks(context, token))
        }
    }

    func readResource(uri: String, request: JSON, context: CallContext) async throws -> JSON {
        var params: JSONObject = ["uri": .string(uri)]
        let token = Self.addMeta(request["_meta"]?.objectValue, to: &params)
        return try await relay {
            try await client.request("resources/read", params: .object(params), hooks: Self.hooks(context, token))
        }
    }

    func complete(_ request: JSON, context: CallContext) async throws -> JSON {
        var params: JSONObject = [:]
        for key in ["ref", "argument", "context"] { if let v = request[key] { params[key] = v } }
        let token = Self.addMeta(request["_meta"]?.objectValue, to: &params)
        return try await relay { try await client.complete(.object(params), hooks: Self.hooks(context, token)) }
    }

    func subscribe(uri: String, context: CallContext) async throws {
        try await relay { try await client.subscribe(uri: uri) }
    }

    func unsubscribe(uri: String, context: CallContext) async throws {
        try await relay { try await client.unsubscribe(uri: uri) }
    }

    func watch(context: CallContext) async throws {
        for await event in client.events() {
            if !context.emit(event) { return }
        }
    }

    /// Copies the client's `_meta` into `params` without its `progressToken`, which is returned: the client
    /// core asks the upstream for progress under a token of its own.
    static func addMeta(_ meta: JSONObject?, to params: inout JSONObject) -> JSON? {
        guard var meta else { return nil }
        let token = meta["progressToken"]
        meta["progressToken"] = nil
        if !meta.isEmpty { params["_meta"] = .object(meta) }
        return token
    }

    /// Relays progress and log messages to the call's client, and the upstream's requests through it.
    static func hooks(_ context: CallContext, _ progressToken: JSON?) -> MCPClient.CallHooks {
        MCPClient.CallHooks(
            progressToken: progressToken,
            notify: { message in context.emit(message) },
            request: { method, params in
                do {
                    return try await context.request(method: method, params: params)
                } catch let e as ClientError {
                    throw MCPClientError(code: e.code, e.message, data: e.data)
                } catch let e as PluginError {
                    throw MCPClientError(code: e.code, e.message)
                }
            })
    }

    /// Runs `body`, turning the client's errors into `PluginError`s with the same code.
    func relay<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as MCPClientError {
            throw PluginError(code: e.code, e.message)
        }
    }
}

/// Owns the client for the plugin instance: when the instance is destroyed, the connection is shut down
/// (stdin closed, SIGTERM, SIGKILL for a process; DELETE for an HTTP session).
final class Owner: Sendable {
    let client: MCPClient
    init(_ client: MCPClient) { self.client = client }
    deinit {
        let client = client
        Task { await client.close() }
    }
}

extension MCPClient.LogLevel {
    var hostLevel: LogLevel {
        switch self {
        case .debug: return .debug
        case .info: return .info
        case .notice: return .notice
        case .warning: return .warning
        case .error: return .error
        }
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: MCPBackend.self) }
