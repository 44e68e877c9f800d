import MCPGJSON

/// Calls a gateway tool on behalf of a pipeline: returns the `CallToolResult`, or throws `CallFailure`.
public protocol ToolCaller: Sendable {
    func callTool(name: String, arguments: JSONObject) async throws -> JSON
}

/// A tool call that got no result: a JSON-RPC error (`code` -32003 is a policy denial).
public struct CallFailure: Error, Sendable, Equatable {
    public var code: Int
    public var message: String
    public init(code: Int, message: String) {
        self.code = code
        self.message = message
    }
}

/// A step's failure: catchable by `fallback`, retried by `retry`.
public struct StepError: Error, Sendable, Equatable {
    public var kind: ErrorKind
    public var message: String
    /// The pointer of the step that failed.
    public var step: String
    public var code: Int?

    /// The `error` value a `fallback`'s `catch` sees.
    public var json: JSON {
        var o: JSONObject = ["kind": .string(kind.rawValue), "message": .string(message), "step": .string(step)]
        if let code { o["code"] = .int(Int64(code)) }
        return .object(o)
    }
}

/// A bound was exceeded: not catchable, the tool fails.
public struct LimitExceeded: Error, Sendable, Equatable {
    public var message: String
}

