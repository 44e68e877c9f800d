import MCPGJSON

/// A failure of one upstream request, as a JSON-RPC error: the upstream's own error (its code kept, so the
/// gateway relays -32602 and friends untouched) or a transport failure (`upstreamUnavailable`, -32004).
public struct MCPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The JSON-RPC error code.
    public var code: Int
    public var message: String
    /// The upstream error's `data`, if it had one.
    public var data: JSON?
    /// Set when an HTTP upstream answered 404 for our session (HTTP-13): the request may be retried once on a
    /// fresh session.
    var sessionExpired = false

    public init(code: Int, _ message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    /// -32004: the upstream cannot be reached, exited, timed out or broke the protocol.
    public static let unavailableCode = -32004

    /// A transport failure (-32004) with a reason.
    public static func unavailable(_ reason: String) -> MCPClientError {
        MCPClientError(code: unavailableCode, reason)
    }

    /// The error object of a JSON-RPC error response, as the upstream sent it.
    init(rpcError: JSON) {
        code = Int(rpcError["code"]?.intValue ?? -32603)
        message = rpcError["message"]?.stringValue ?? "upstream error"
        data = rpcError["data"]
    }

    /// The JSON-RPC error object.
    public var json: JSON {
        var o: JSONObject = ["code": .int(Int64(code)), "message": .string(message)]
        if let data { o["data"] = data }
        return .object(o)
    }

    public var description: String { "\(message) (\(code))" }

    public static func == (a: MCPClientError, b: MCPClientError) -> Bool {
        a.code == b.code && a.message == b.message && a.data == b.data
    }
}

/// A problem with the configuration, found when the client is built.
public struct MCPConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
