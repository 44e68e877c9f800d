import MCPGFrames
import MCPGJSON

/// How a plugin call failed, as the router sees it.
public struct StageFailure: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The plugin completed with an error status (`code`, `message` from its payload).
        case plugin(code: Int, message: String)
        /// The plugin did not complete before the kernel's deadline.
        case timeout
        /// The call was cancelled (client `notifications/cancelled`).
        case cancelled
        /// The plugin answered bytes that are not the JSON its op promises.
        case malformed(String)
    }
    public var kind: Kind
    public init(_ kind: Kind) { self.kind = kind }

    public var summary: String {
        switch kind {
        case .plugin(let code, let message): return "plugin error \(code): \(message)"
        case .timeout: return "timed out"
        case .cancelled: return "cancelled"
        case .malformed(let m): return "malformed answer: \(m)"
        }
    }
}

/// One plugin instance as the router calls it. In production this wraps the loader's `PluginInstance`; router
/// tests supply in-process implementations.
public protocol PluginCaller: Sendable {
    /// Runs `op` with a JSON payload and returns the plugin's JSON answer. `emit` receives messages the plugin
    /// sends to the client during the call (e.g. progress); it returns false when they cannot be delivered.
    func call(op: String, request: JSON, timeout: Duration, emit: (@Sendable (JSON) -> Bool)?) async
        -> Result<JSON, StageFailure>
}

/// A configured plugin in one chain position: its config name, a label for logs and audit, and the caller.
public struct Stage: Sendable {
    public var plugin: String
    public var label: String
    public var caller: any PluginCaller

    public init(plugin: String, label: String, caller: any PluginCaller) {
        self.plugin = plugin
        self.label = label
        self.caller = caller
    }
}
