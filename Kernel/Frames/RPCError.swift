import MCPGJSON

/// A JSON-RPC error object (BASE-3, ERR-1). Standard codes mean what JSON-RPC says; gateway failures use
/// the server range, each listed once here and in SPEC.md.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSON?

    public init(code: Int, message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var json: JSON {
        var o: JSONObject = ["code": .int(Int64(code)), "message": .string(message)]
        if let data { o["data"] = data }
        return .object(o)
    }

    public var description: String { "\(code) \(message)" }

    /// Returns a copy whose `data` carries the correlation id that is also in the log and the audit record.
    public func withCorrelation(_ id: String) -> RPCError {
        var e = self
        var d = data?.objectValue ?? [:]
        d["correlationId"] = .string(id)
        e.data = .object(d)
        return e
    }

    // JSON-RPC 2.0
    public static func parseError(_ m: String = "Parse error") -> RPCError { .init(code: -32700, message: m) }
    public static func invalidRequest(_ m: String) -> RPCError { .init(code: -32600, message: m) }
    public static func methodNotFound(_ method: String) -> RPCError {
        .init(code: -32601, message: "Method not found: \(method)")
    }
    public static func invalidParams(_ m: String) -> RPCError { .init(code: -32602, message: m) }
    public static func internalError(_ m: String = "Internal error") -> RPCError { .init(code: -32603, message: m) }

    // Gateway codes (server range -32000…-32099).
    /// A plugin failed or answered something the kernel could not use.
    public static func pluginFailure(_ m: String = "Gateway plugin failure") -> RPCError {
        .init(code: -32000, message: m)
    }
    /// No identity plugin authenticated the caller (stdio; HTTP answers 401 instead).
    public static let unauthenticated = RPCError(code: -32001, message: "Authentication required")
    /// Policy denied the request. The message names no rule, backend or whether the tool exists.
    public static let forbidden = RPCError(code: -32003, message: "Not permitted")
    /// The backend serving the tool did not answer in time or is unavailable.
    public static func backendUnavailable(_ m: String = "Backend unavailable") -> RPCError {
        .init(code: -32004, message: m)
    }
    /// The gateway is shutting down or overloaded.
    public static let unavailable = RPCError(code: -32005, message: "Gateway unavailable")

    /// Error codes a backend's answer keeps on its way to the client: the upstream's own JSON-RPC errors
    /// (method or capability missing, bad params, resource not found, URL elicitation required).
    /// Anything else from a backend means it could not serve, which clients see as -32004.
    public static let relayedFromBackends: Set<Int> = [-32601, -32602, -32002, -32042]
}
