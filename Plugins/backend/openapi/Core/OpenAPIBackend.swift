import HTTPTools
import MCPGJSON
import PluginKit
import Synchronization

/// A backend whose tools are the operations of an OpenAPI 3.0/3.1 document (`spec_file`, JSON or YAML, read at
/// start; or `spec_url`, fetched on first use and again after a failure), called through the `http` backend's
/// machinery with the same connection and auth settings. See `ToolGenerator` for how operations become tools.
struct OpenAPIBackend: BackendPlugin {
    struct Config: Decodable, Sendable {
        var specFile: String?
        var specURL: String?
        var serverURL: String?
        var include: [String]?
        var exclude: [String]?
        var includeTags: [String]?
        var excludeTags: [String]?
        var connection: ConnectionConfig

        enum CodingKeys: String, CodingKey {
            case include, exclude
            case specFile = "spec_file", specURL = "spec_url", serverURL = "server_url"
            case includeTags = "include_tags", excludeTags = "exclude_tags"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            specFile = try c.decodeIfPresent(String.self, forKey: .specFile)
            specURL = try c.decodeIfPresent(String.self, forKey: .specURL)
            serverURL = try c.decodeIfPresent(String.self, forKey: .serverURL)
            include = try c.decodeIfPresent([String].self, forKey: .include)
            exclude = try c.decodeIfPresent([String].self, forKey: .exclude)
            includeTags = try c.decodeIfPresent([String].self, forKey: .includeTags)
            excludeTags = try c.decodeIfPresent([String].self, forKey: .excludeTags)
            connection = try ConnectionConfig(from: decoder)
        }
    }

    static let name = "openapi"
    static let version = "1.0.0"
    static var configSchema: JSON {
        var p = ConnectionConfig.schemaProperties
        p["spec_file"] = ["type": "string", "description": "The OpenAPI 3.0/3.1 document (JSON or YAML file)."]
        p["spec_url"] = ["type": "string", "description": "Where to fetch the document instead (http or https URL)."]
        p["server_url"] = [
            "type": "string", "description": "Base URL of the API, instead of the document's first server.",
        ]
        let globs: JSON = ["type": "array", "items": ["type": "string"]]
        func with(_ d: String) -> JSON {
            guard case .object(var o) = globs else { return globs }
            o["description"] = .string(d)
            return .object(o)
        }
        p["include"] = with("Only operations whose tool name or operationId matches one of these globs (or an include_tags tag).")
        p["exclude"] = with("Leave out operations whose tool name or operationId matches one of these globs.")
        p["include_tags"] = with("Only operations with one of these tags (or matching include).")
        p["exclude_tags"] = with("Leave out operations with one of these tags.")
        return ["type": "object", "additionalProperties": false, "properties": .object(p)]
    }

    let owner: OpenAPIOwner

    init(config: Config, host: Host) throws {
        do {
            guard (config.specFile == nil) != (config.specURL == nil) else {
                throw HTTPToolsError("give exactly one of spec_file and spec_url")
            }
            let caller = try HTTPCaller(config: config.connection, warn: { host.log(.warning, "openapi: \($0)") })
            let filter = ToolGenerator.Filter(
                include: config.include ?? [], exclude: config.exclude ?? [], includeTags: config.includeTags ?? [],
                excludeTags: config.excludeTags ?? [])
            owner = OpenAPIOwner(caller: caller, specURL: config.specURL, serverURL: config.serverURL, filter: filter)
            if let file = config.specFile {
                guard let bytes = readFile(file) else { throw HTTPToolsError("spec_file \(file): cannot read file") }
                let tools = try Self.tools(bytes, source: file, owner: owner)
                owner.cache.set(tools)
            }
        } catch let e as HTTPToolsError {
            throw PluginError(code: -32602, "openapi: \(e.message)")
        }
    }

    static func tools(_ bytes: [UInt8], source: String, owner: OpenAPIOwner) throws -> [HTTPTool] {
        let document = try SpecLoader.load(bytes, source: source)
        let generator = try ToolGenerator(document: document, serverURL: owner.serverURL)
        return try generator.tools(filter: owner.filter, auth: nil, timeoutMs: nil)
    }

    func listTools() async throws -> [JSON] { try await owner.tools().map(\.json) }

    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON {
        guard let tool = try await owner.tools().first(where: { $0.name == call.name }) else {
            throw PluginError(code: -32602, "unknown tool \(call.name)")
        }
        do {
            return try await owner.caller.call(tool, arguments: call.arguments, meta: call.meta)
        } catch let e as InvalidArguments {
            throw PluginError(code: -32602, e.message)
        }
    }
}

/// Owns the HTTP client and the generated tools.
final class OpenAPIOwner: Sendable {
    let caller: HTTPCaller
    let specURL: String?
    let serverURL: String?
    let filter: ToolGenerator.Filter
    let cache = ToolCache()

    init(caller: HTTPCaller, specURL: String?, serverURL: String?, filter: ToolGenerator.Filter) {
        self.caller = caller
        self.specURL = specURL
        self.serverURL = serverURL
        self.filter = filter
    }

    deinit {
        let caller = caller
        Task { await caller.shutdown() }
    }

    func tools() async throws -> [HTTPTool] {
        if let tools = cache.get() { return tools }
        guard let specURL else { return [] }
        let response: IncomingResponse
        do {
            response = try await caller.send(OutgoingRequest(method: "GET", url: specURL), auth: caller.defaultAuth)
        } catch let e as HTTPToolsError {
            throw PluginError(code: -32004, "openapi: fetching spec_url: \(e.message)")
        }
        guard (200..<300).contains(response.status) else {
            throw PluginError(code: -32004, "openapi: spec_url answered HTTP \(response.status)")
        }
        do {
            let tools = try OpenAPIBackend.tools(response.body, source: specURL, owner: self)
            cache.set(tools)
            return tools
        } catch let e as HTTPToolsError {
            throw PluginError(code: -32004, "openapi: \(e.message)")
        }
    }
}

/// The generated tools, once known.
final class ToolCache: Sendable {
    private let tools = Mutex<[HTTPTool]?>(nil)
    func get() -> [HTTPTool]? { tools.withLock { $0 } }
    func set(_ t: [HTTPTool]) { tools.withLock { $0 = t } }
}

/// The plugin descriptor, for the plugin module's `mcpg_plugin_v1` (kept there so that this library can be
/// linked into tests beside other plugins).
public enum OpenAPIPluginExport {
    public static func descriptor() -> UnsafeRawPointer { PluginExport.descriptor(for: OpenAPIBackend.self) }
}
