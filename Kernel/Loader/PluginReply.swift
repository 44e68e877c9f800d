import MCPGJSON

/// A plugin's answer to one call: the result payload, or an error object `{"code": <int>, "message": "..."}`.
public struct PluginReply: Sendable, Equatable {
    /// True when the plugin completed with MCPG_STATUS_OK.
    public var ok: Bool
    /// The response bytes (UTF-8 JSON), copied out of the plugin.
    public var body: [UInt8]

    /// A reply.
    public init(ok: Bool, body: [UInt8]) {
        self.ok = ok
        self.body = body
    }

    /// An error reply made by the kernel (timeout, cancellation, bad plugin output).
    public static func error(code: Int, message: String) -> PluginReply {
        PluginReply(ok: false, body: JSON.object(["code": .int(Int64(code)), "message": .string(message)]).serialized())
    }

    /// The call did not complete within its deadline.
    public static let timeoutCode = -32001
    /// The awaiting task was cancelled (JSON-RPC's "request cancelled").
    public static let cancelledCode = -32800

    /// The body parsed as JSON, or nil when it is not valid JSON.
    public var json: JSON? { try? JSON.parse(body) }

    /// For an error reply: its `code` (nil for success or a malformed error body).
    public var errorCode: Int? {
        guard !ok, let c = json?["code"]?.intValue else { return nil }
        return Int(c)
    }

    /// For an error reply: its `message` (nil for success or a malformed error body).
    public var errorMessage: String? { ok ? nil : json?["message"]?.stringValue }

    /// True for the kernel's timeout reply.
    public var isTimeout: Bool { errorCode == Self.timeoutCode }
}
