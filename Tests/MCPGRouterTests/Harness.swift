import Logging
import MCPGFrames
import MCPGJSON
import MCPGRouter
import Synchronization

/// In-process stand-ins for plugins: each answers the op's JSON exactly as SPEC.md documents it.
struct FakeCaller: PluginCaller {
    let body: @Sendable (String, JSON, (@Sendable (JSON) -> Bool)?) async -> Result<JSON, StageFailure>
    func call(op: String, request: JSON, timeout: Duration, emit: (@Sendable (JSON) -> Bool)?) async
        -> Result<JSON, StageFailure>
    {
        await body(op, request, emit)
    }
}

/// Authenticates `x-user: NAME` (groups from `x-groups`), rejects `x-user: bad`, abstains otherwise.
let headerIdentity = FakeCaller { _, req, _ in
    guard let user = req["headers"]?["x-user"]?.stringValue else { return .success(["result": "abstain", "reason": "no header"]) }
    if user == "bad" { return .success(["result": "reject", "reason": "bad user"]) }
    let groups = (req["headers"]?["x-groups"]?.stringValue ?? "").split(separator: ",").map { JSON.string(String($0)) }
    return .success(["result": "authenticated", "principal": ["id": .string(user), "groups": .array(groups)], "reason": "header"])
}

/// Denies tools whose name starts with "secret" unless the principal is in group "admins"; allows the rest.
let prefixPolicy = FakeCaller { _, req, _ in
    let admin = req["principal"]?["groups"]?.arrayValue?.contains("admins") ?? false
    let ds: [JSON] = (req["queries"]?.arrayValue ?? []).map { q in
        let name = q["resource"]?["name"]?.stringValue ?? ""
        return name.hasPrefix("secret") && !admin ? ["effect": "deny", "reasons": ["no-secrets"]] : ["effect": "allow", "reasons": ["ok"]]
    }
    return .success(["decisions": .array(ds)])
}

/// Records every audit event; can be told to fail.
final class MemoryTrail: AuditTrail {
    let events = Mutex<[JSON]>([])
    let failing = Mutex(false)
    struct Down: Error {}
    func record(_ event: JSON) async throws {
        if failing.withLock({ $0 }) { throw Down() }
        events.withLock { $0.append(event) }
    }
    var all: [JSON] { events.withLock { $0 } }
}

func tool(_ name: String) -> JSON { ["name": .string(name), "inputSchema": ["type": "object"]] }

/// A backend that echoes arguments, knows `slow` (waits until cancelled) and `progress` (emits two notifications).
let echoBackend = FakeCaller { op, req, emit in
    switch req["name"]?.stringValue {
    case "slow":
        do { try await Task.sleep(for: .seconds(30)) } catch { return .failure(StageFailure(.cancelled)) }
        return .success(["content": []])
    case "progress":
        _ = emit?(["jsonrpc": "2.0", "method": "notifications/progress", "params": ["progress": 1]])
        _ = emit?(["jsonrpc": "2.0", "id": 99, "method": "sampling/createMessage"])
        return .success(["content": [["type": "text", "text": "done"]]])
    default:
        if op == "get_prompt" {
            let name = req["name"]?.stringValue ?? ""
            guard name != "gone" else { return .failure(StageFailure(.plugin(code: -32602, message: "Unknown prompt: gone"))) }
            let text = "prompt \(name) for \(req["principal"]?["id"]?.stringValue ?? "?")"
            return .success(["messages": [["role": "user", "content": ["type": "text", "text": .string(text)]]]])
        }
        if op == "read_resource" {
            let uri = req["uri"]?.stringValue ?? ""
            return .success(["contents": [["uri": .string(uri), "text": .string("content of \(uri)")]]])
        }
        let text = req["arguments"]?["text"]?.stringValue ?? ""
        return .success(["content": [["type": "text", "text": .string(text)]]])
    }
}

struct Harness {
    let gateway: Gateway
    let trail = MemoryTrail()

    init(tools: [String] = ["echo", "secret.reset", "slow", "progress"], pageSize: Int = 100,
         identity: [any PluginCaller] = [headerIdentity], policy: [any PluginCaller] = [prefixPolicy],
         transforms: [any PluginCaller] = [], sessionLimit: Int = 10_000, policyMode: PolicyMode = .all,
         identityMode: IdentityMode = .first,
         prompts: [JSON] = [], resources: [JSON] = [], templates: [JSON] = [],
         refusalLimits: RefusalLimits = RefusalLimits()) throws {
        func stages(_ cs: [any PluginCaller], _ kind: String) -> [Stage] {
            cs.enumerated().map { Stage(plugin: "p\($0.offset)", label: "\(kind)[\($0.offset)]", caller: $0.element) }
        }
        gateway = Gateway(
            identity: stages(identity, "identity"), policy: stages(policy, "policy"),
            transforms: stages(transforms, "transforms"),
            backends: ["demo": Stage(plugin: "fake", label: "backends.demo", caller: echoBackend)],
            catalog: Catalog(listings: [BackendListing(name: "demo", tools: tools.map(tool), prompts: prompts,
                                                          resources: resources, templates: templates)]),
            audit: trail,
            settings: GatewaySettings(pageSize: pageSize, callTimeout: .seconds(5), serverVersion: "test", policyMode: policyMode,
                                     identityMode: identityMode, refusalLimits: refusalLimits),
            sessions: SessionTable(idleTimeout: .seconds(60), limit: sessionLimit), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func caller(_ headers: [String: String]) -> Caller {
        Caller(transport: "http", peer: "127.0.0.1:1", peerIsLoopback: true, headers: headers)
    }

    func identity(_ user: String, groups: String = "") async throws -> Identity {
        switch await gateway.authenticate(caller(["x-user": user, "x-groups": groups])) {
        case .success(let i): return i
        case .failure(let f): throw RPCError(code: 0, message: f.reason)
        }
    }

    /// initialize + initialized for `who`; returns the session.
    func open(_ who: Identity) async throws -> Session {
        let reply = await gateway.handle(
            .request(id: .int(0), method: "initialize",
                     params: ["protocolVersion": "2025-11-25", "capabilities": [:], "clientInfo": ["name": "t", "version": "1"]]),
            identity: who, caller: caller([:]), session: nil)
        guard case .initialized(_, let s) = reply else { throw RPCError(code: 0, message: "no session") }
        gateway.sessions.insert(s)
        _ = await gateway.handle(.notification(method: "notifications/initialized", params: nil), identity: who,
                                 caller: caller([:]), session: s)
        return s
    }

    func request(_ method: String, _ params: JSON?, as who: Identity, session: Session?, id: Int64 = 1,
                 emit: (@Sendable (JSON) -> Bool)? = nil) async -> Frame? {
        let frame = Frame.request(id: .int(id), method: method, params: params)
        let reply = await gateway.serve(.int(id), in: session) {
            await self.gateway.handle(frame, identity: who, caller: self.caller([:]), session: session, emit: emit)
        }
        switch reply {
        case .frame(let f)?: return f
        case .initialized(let f, _)?: return f
        default: return nil
        }
    }
}

extension Frame {
    var result: JSON? { if case .response(_, let r) = self { return r } else { return nil } }
    var error: RPCError? { if case .errorResponse(_, let e) = self { return e } else { return nil } }
}
