import CMCPGPlugin
import MCPGJSON

/// The five plugin kinds; the raw values are the ABI's `mcpg_kind`.
public enum PluginKind: UInt32, Sendable, CaseIterable {
    case identity = 1
    case policy = 2
    case transform = 3
    case backend = 4
    case sink = 5

    /// The word config and SPEC.md use for the kind.
    public var name: String {
        switch self {
        case .identity: return "identity"
        case .policy: return "policy"
        case .transform: return "transform"
        case .backend: return "backend"
        case .sink: return "sink"
        }
    }
}

/// What every plugin is: a named, versioned type built from its `config` block.
///
/// Lifecycle: the kernel verifies and loads the `.so`, validates the config block against
/// `configSchema`, then calls `init(config:host:)` once per config entry that uses the plugin. After that
/// the kind's method (e.g. `authenticate`) is called concurrently from any thread; each call runs in its own
/// Swift `Task` inside the plugin's runtime. Errors thrown from `init` refuse the config at boot; errors
/// thrown from a call become an error status for that call (`PluginError` keeps its code and message).
/// Nothing is ever unloaded.
public protocol Plugin: Sendable {
    /// The plugin's `config` block, decoded from JSON.
    associatedtype Config: Decodable & Sendable = NoConfig

    static var kind: PluginKind { get }
    /// The name config refers to (`plugin: apikey`): lowercase letters, digits, `_` and `-`.
    static var name: String { get }
    /// Semantic version of the plugin.
    static var version: String { get }
    /// JSON Schema (2020-12) of `Config`, published through the ABI; the kernel validates against it
    /// before `init`, so errors carry the config file's line and column.
    static var configSchema: JSON { get }

    /// - Throws: anything; the message is shown at boot as a config error for this plugin.
    init(config: Config, host: Host) throws

    /// Dispatches one ABI operation. Each kind protocol implements this; plugin authors do not.
    func handle(op: String, request: JSON, context: CallContext) async throws -> JSON
}

extension Plugin where Config == NoConfig {
    public static var configSchema: JSON { ["type": "object", "additionalProperties": false] }
}

/// The `Config` of a plugin that takes none.
public struct NoConfig: Decodable, Sendable {
    public init() {}
}

/// An error a plugin reports for one call: its `code` and `message` reach the kernel as is.
public struct PluginError: Error, Sendable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public init(code: Int = -32603, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }

    /// A request payload that does not have the shape SPEC.md documents for the op.
    public static func badRequest(_ message: String) -> PluginError { PluginError(code: -32602, message) }
}
