import CSodium
import Logging
import MCPGFrames
import MCPGJSON
import Synchronization

/// Multi-round-trip requests (NEXT-6) bridged to backends that ask the client mid-call the handshake-era way.
///
/// A 2026-07-28 client cannot be sent requests. When a backend asks for sampling, elicitation or roots during
/// a `tools/call`, `prompts/get` or `resources/read`, the gateway parks the running call and answers
/// `{"resultType": "input_required", "inputRequests": {key: {method, params}}, "requestState": …}`. The client
/// retries the request with `inputResponses` and the `requestState` it got; the gateway hands each response to the
/// backend (op `client_response`) and goes on waiting for the same call. `requestState` is integrity-protected
/// (HMAC-SHA-256 over the parked call's token, principal and method, with a per-process key): a client can
/// neither forge nor redirect it, and a parked call is resumed only by the principal that started it.
public final class InputBridge: Sendable {
    struct Asked {
        var method: String
        var params: JSON
        var caller: any PluginCaller
        var pluginID: JSON
    }
    struct State {
        var asked: [String: Asked] = [:]
        var unsent: [String] = []
        var next = 0
        var waiter: CheckedContinuation<Void, Never>?
        var done = false
    }
    let state = Mutex(State())

    init() {}

    /// A backend's request: recorded under a new key, and whoever waits is woken.
    func add(method: String, params: JSON, caller: any PluginCaller, pluginID: JSON) {
        let w = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.next += 1
            let key = "r\(s.next)"
            s.asked[key] = Asked(method: method, params: params, caller: caller, pluginID: pluginID)
            s.unsent.append(key)
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume()
    }

    func finish() {
        let w = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.done = true
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume()
    }

    /// Waits until the call ends or asks something not yet sent to the client; returns the new requests (empty
    /// when the call ended).
    func nextRequests() async -> [String: JSON] {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.done || !s.unsent.isEmpty { return true }
                s.waiter = c
                return false
            }
            if now { c.resume() }
        }
        return state.withLock { s in
            guard !s.done || !s.unsent.isEmpty else { return [:] }
            var out: [String: JSON] = [:]
            for key in s.unsent {
                if let a = s.asked[key] { out[key] = ["method": .string(a.method), "params": a.params] }
            }
            s.unsent = []
            return out
        }
    }

    /// The request asked under `key`, removed.
    func take(_ key: String) -> Asked? { state.withLock { $0.asked.removeValue(forKey: key) } }
}

/// Calls parked while their client answers input requests, by token.
final class ParkedCalls: Sendable {
    struct Parked {
        var owner: String
        var method: String
        var bridge: InputBridge
        var task: Task<Reply, Never>
        var since: ContinuousClock.Instant
    }
    let parked = Mutex<[String: Parked]>([:])
    let key: [UInt8] = {
        var k = [UInt8](repeating: 0, count: 32)
        randombytes_buf(&k, k.count)
        return k
    }()
    static let lifetime: Duration = .seconds(300)

    func mac(_ token: String, owner: String, method: String) -> String {
        let message = Array("\(token)\n\(owner)\n\(method)".utf8)
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        _ = crypto_auth_hmacsha256(&out, message, UInt64(message.count), key)
        return out.map { b in String(b, radix: 16).count == 1 ? "0" + String(b, radix: 16) : String(b, radix: 16) }.joined()
    }

    func state(_ token: String, owner: String, method: String) -> String {
        "rs1.\(token).\(mac(token, owner: owner, method: method))"
    }

    /// The parked call a `requestState` names, removed, if the state is authentic and the call is the caller's.
    func take(_ requestState: String, owner: String, method: String) -> Parked? {
        let parts = requestState.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "rs1" else { return nil }
        let token = String(parts[1])
        let expected = Array(mac(token, owner: owner, method: method).utf8)
        let given = Array(parts[2].utf8)
        guard expected.count == given.count, sodium_memcmp(expected, given, expected.count) == 0 else { return nil }
        return parked.withLock { $0.removeValue(forKey: token) }
    }

    func put(_ token: String, _ p: Parked) {
        let now = ContinuousClock.now
        let stale = parked.withLock { t -> [Parked] in
            let old = t.filter { now - $0.value.since > Self.lifetime }
            for k in old.keys { t[k] = nil }
            t[token] = p
            return Array(old.values)
        }
        // Never resumed: the call is cancelled (and audited as such).
        for p in stale { p.task.cancel() }
    }
}

extension Gateway {
    static let inputRequiredMethods: Set<String> = ["tools/call", "prompts/get", "resources/read"]

    /// Runs a 2026-07-28 `tools/call`, `prompts/get` or `resources/read`, or resumes the parked one its
    /// `requestState` names, until it ends or asks the client something.
    func serveWithInput(id: RequestID, method: String, params: JSON?, identity: Identity, caller: Caller,
                        session: Session, emit: (@Sendable (JSON) -> Bool)?) async -> Reply {
        let owner = identity.principal.id
        let bridge: InputBridge
        let task: Task<Reply, Never>
        if let requestState = params?["requestState"]?.stringValue {
            guard let p = parkedCalls.take(requestState, owner: owner, method: method) else {
                return .frame(.errorResponse(id: id, error: .invalidParams("Unknown or expired requestState")))
            }
            (bridge, task) = (p.bridge, p.task)
            let responses = params?["inputResponses"]?.objectValue ?? [:]
            for m in responses.members {
                guard let asked = bridge.take(m.key) else { continue }
                // An error object (code + message) is the client's refusal; anything else is its result.
                var body: JSONObject = ["id": asked.pluginID]
                if m.value["code"]?.intValue != nil, m.value["message"]?.stringValue != nil {
                    body["error"] = m.value
                } else {
                    body["result"] = m.value
                }
                let timeout = settings.callTimeout
                _ = await asked.caller.call(op: "client_response", request: .object(body), timeout: timeout, emit: nil)
            }
        } else {
            bridge = session.inputBridge ?? InputBridge()
            task = Task {
                let r = await self.request(id: id, method: method, params: params, identity: identity, caller: caller,
                                           session: session, emit: emit)
                bridge.finish()
                return r
            }
        }
        let asked = await withTaskCancellationHandler {
            await bridge.nextRequests()
        } onCancel: {
            task.cancel()
            bridge.finish()
        }
        if asked.isEmpty {
            // The call ended: its answer, under this request's id.
            switch await task.value {
            case .frame(.response(_, let r)): return .frame(.response(id: id, result: r))
            case .frame(.errorResponse(_, let e)): return .frame(.errorResponse(id: id, error: e))
            default: return .none
            }
        }
        let token = RandomID.hex(bytes: 16)
        parkedCalls.put(token, ParkedCalls.Parked(owner: owner, method: method, bridge: bridge, task: task, since: .now))
        return .frame(.response(id: id, result: [
            "resultType": "input_required",
            "inputRequests": .object(JSONObject(asked.sorted { $0.key < $1.key }.map { JSONMember($0.key, $0.value) })),
            "requestState": .string(parkedCalls.state(token, owner: owner, method: method)),
        ]))
    }
}
