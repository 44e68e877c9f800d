import MCPGJSON

/// A JSON-RPC request id: a string or an integer, never null (BASE-2).
public enum RequestID: Sendable, Hashable, CustomStringConvertible {
    case int(Int64)
    case string(String)

    public init?(_ json: JSON) {
        switch json {
        case .int(let i): self = .int(i)
        case .string(let s): self = .string(s)
        default: return nil
        }
    }

    public var json: JSON {
        switch self {
        case .int(let i): return .int(i)
        case .string(let s): return .string(s)
        }
    }

    public var description: String {
        switch self {
        case .int(let i): return String(i)
        case .string(let s): return s
        }
    }
}

/// One JSON-RPC 2.0 message as MCP uses it (BASE-1…BASE-5). Parsed once at the front; `params` is kept as the
/// parsed tree so stages read the few fields they route on and pass the rest along untouched.
public enum Frame: Sendable, Equatable {
    case request(id: RequestID, method: String, params: JSON?)
    case notification(method: String, params: JSON?)
    case response(id: RequestID, result: JSON)
    case errorResponse(id: RequestID?, error: RPCError)

    /// Parses one message. Batches (JSON arrays) are refused: MCP dropped batching in 2025-06-18 (BASE-5).
    /// - Throws: `RPCError` with -32700 (not JSON) or -32600 (not a valid JSON-RPC message); `id` is carried
    ///   in `FrameError.id` when it could be read, so the answer can name it (BASE-3).
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(FrameError) -> Frame {
        let json: JSON
        do {
            json = try JSON.parse(bytes)
        } catch {
            throw FrameError(id: nil, error: .parseError("Parse error: \(error.description)"))
        }
        return try parse(json)
    }

    /// Parses one message from a byte array (see `parse(_:)` for buffers).
    public static func parse(_ bytes: [UInt8]) throws(FrameError) -> Frame {
        try bytes.withUnsafeBufferPointer { b throws(FrameError) -> Frame in try parse(b) }
    }

    public static func parse(_ json: JSON) throws(FrameError) -> Frame {
        guard case .object(let o) = json else {
            if case .array = json {
                throw FrameError(id: nil, error: .invalidRequest("JSON-RPC batches are not supported"))
            }
            throw FrameError(id: nil, error: .invalidRequest("a JSON-RPC message must be an object"))
        }
        let rawID = o["id"]
        let id = rawID.flatMap(RequestID.init)
        guard o["jsonrpc"] == .string("2.0") else {
            throw FrameError(id: id, error: .invalidRequest("jsonrpc must be \"2.0\""))
        }
        if let rawID, id == nil {
            throw FrameError(id: nil, error: .invalidRequest("id must be a string or an integer, not \(rawID.typeName)"))
        }
        if let m = o["method"] {
            guard case .string(let method) = m, !method.isEmpty else {
                throw FrameError(id: id, error: .invalidRequest("method must be a non-empty string"))
            }
            let params = o["params"]
            if let params {
                switch params {
                case .object, .array: break
                default: throw FrameError(id: id, error: .invalidRequest("params must be an object"))
                }
            }
            if let id { return .request(id: id, method: method, params: params) }
            return .notification(method: method, params: params)
        }
        if let result = o["result"] {
            guard let id else { throw FrameError(id: nil, error: .invalidRequest("a response needs an id")) }
            return .response(id: id, result: result)
        }
        if let e = o["error"] {
            guard let code = e["code"]?.intValue, let message = e["message"]?.stringValue else {
                throw FrameError(id: id, error: .invalidRequest("error must have an integer code and a message"))
            }
            return .errorResponse(id: id, error: RPCError(code: Int(code), message: message, data: e["data"]))
        }
        throw FrameError(id: id, error: .invalidRequest("not a request, notification or response"))
    }

    /// Compact UTF-8 JSON of the message.
    public func serialized() -> [UInt8] { json.serialized() }

    public var json: JSON {
        switch self {
        case .request(let id, let method, let params):
            var o: JSONObject = ["jsonrpc": "2.0", "id": id.json, "method": .string(method)]
            if let params { o["params"] = params }
            return .object(o)
        case .notification(let method, let params):
            var o: JSONObject = ["jsonrpc": "2.0", "method": .string(method)]
            if let params { o["params"] = params }
            return .object(o)
        case .response(let id, let result):
            return .object(["jsonrpc": "2.0", "id": id.json, "result": result])
        case .errorResponse(let id, let error):
            return .object(["jsonrpc": "2.0", "id": id?.json ?? .null, "error": error.json])
        }
    }

    public var method: String? {
        switch self {
        case .request(_, let m, _), .notification(let m, _): return m
        default: return nil
        }
    }
}

/// A frame that could not be parsed, with the request id when it was readable.
public struct FrameError: Error, Sendable, Equatable {
    public var id: RequestID?
    public var error: RPCError
    public init(id: RequestID?, error: RPCError) {
        self.id = id
        self.error = error
    }
    /// The error response to send back.
    public var frame: Frame { .errorResponse(id: id, error: error) }
}
