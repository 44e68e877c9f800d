import MCPGJSON
import Synchronization

/// Requests a plugin sends to the client during a call (`sampling/createMessage`, `elicitation/create`,
/// `roots/list`), waiting for the client's answer.
///
/// The request is emitted on the call with an id PluginKit chooses; the kernel relays it to the client that made
/// the call under an id of its own, and hands the client's answer back through the op `client_response`
/// (`{"id": <the id emitted>, "result": {…}}` or `{"id": …, "error": {"code", "message", "data"?}}`), which
/// PluginKit answers itself for every plugin kind.
enum ClientRequests {
    /// A request's state from its id being reserved until it is answered, failed or cancelled (then removed).
    enum Slot {
        case reserved
        case cancelledEarly
        case waiting(CheckedContinuation<JSON, any Error>)
    }
    struct Table: ~Copyable {
        var next: UInt64 = 0
        var slots: [String: Slot] = [:]
    }
    static let table = Mutex(Table())

    /// Reserves a fresh id, so a cancel that comes before the waiter registers is not lost.
    static func reserve() -> String {
        table.withLock { t in
            t.next += 1
            let id = "mcpg-plugin-\(t.next)"
            t.slots[id] = .reserved
            return id
        }
    }

    /// Removes and returns the waiter of `id`, if it is waiting.
    static func take(_ id: String) -> CheckedContinuation<JSON, any Error>? {
        table.withLock { t in
            guard case .waiting(let c) = t.slots[id] else { return nil }
            t.slots[id] = nil
            return c
        }
    }

    /// Resolves the waiter of `payload["id"]`; answers unknown ids with -32602 (late or forged answers).
    static func deliver(_ payload: JSON) throws -> JSON {
        guard let id = payload["id"]?.stringValue else { throw PluginError.badRequest("client_response needs id") }
        guard let waiter = take(id) else {
            throw PluginError.badRequest("no client request \(id) is waiting")
        }
        if let result = payload["result"], case .object = result {
            waiter.resume(returning: result)
        } else if let error = payload["error"] {
            let code = error["code"]?.intValue ?? -32603
            waiter.resume(throwing: ClientError(
                code: Int(code), message: error["message"]?.stringValue ?? "client error", data: error["data"]))
        } else {
            waiter.resume(throwing: PluginError("client_response needs result (an object) or error"))
        }
        return .object([:])
    }
}

/// The error a client answered a request with, code and data kept so a backend can relay them untouched.
public struct ClientError: Error, Sendable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSON?
    public var description: String { "client error \(code): \(message)" }
    /// The JSON-RPC error object.
    public var json: JSON {
        var o: JSONObject = ["code": .int(Int64(code)), "message": .string(message)]
        if let data { o["data"] = data }
        return .object(o)
    }
}

extension CallContext {
    /// Sends a JSON-RPC request to the client that made this call and returns the client's `result`.
    ///
    /// Throws `ClientError` with the client's error, `PluginError` -32601 when the client cannot receive
    /// requests (it did not declare the capability, or the call is over), and `CancellationError` when the call
    /// is cancelled while waiting.
    public func request(method: String, params: JSON?) async throws -> JSON {
        let id = ClientRequests.reserve()
        var message: JSONObject = ["jsonrpc": "2.0", "id": .string(id), "method": .string(method)]
        if let params { message["params"] = params }
        let frame = JSON.object(message)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<JSON, any Error>) in
                let early = ClientRequests.table.withLock { t -> Bool in
                    if case .cancelledEarly = t.slots[id] { t.slots[id] = nil; return true }
                    t.slots[id] = .waiting(c)
                    return false
                }
                if early { c.resume(throwing: CancellationError()); return }
                // Registered before it is sent: the answer may arrive before `emit` returns.
                if !emit(frame) {
                    if let w = ClientRequests.take(id) {
                        w.resume(throwing: PluginError(code: -32601, "the client cannot receive \(method)"))
                    }
                }
            }
        } onCancel: {
            let w = ClientRequests.table.withLock { t -> CheckedContinuation<JSON, any Error>? in
                switch t.slots[id] {
                case .waiting(let c): t.slots[id] = nil; return c
                case .reserved: t.slots[id] = .cancelledEarly; return nil
                case .cancelledEarly, nil: return nil
                }
            }
            w?.resume(throwing: CancellationError())
        }
    }
}
