import Logging
import MCPGFrames
import MCPGJSON
import MCPGRouter
import Synchronization
import Testing

/// A backend whose lists can be changed while the gateway runs, and which records every op it is asked.
final class LiveBackend: Sendable {
    let tools = Mutex<[JSON]>([])
    let prompts = Mutex<[JSON]>([])
    let down = Mutex(false)
    let asked = Mutex<[(op: String, request: JSON)]>([])

    init(tools: [String], prompts: [String] = []) {
        self.tools.withLock { $0 = tools.map(tool) }
        self.prompts.withLock { $0 = prompts.map { ["name": .string($0)] } }
    }

    var caller: FakeCaller {
        FakeCaller { [self] op, req, emit in
            asked.withLock { $0.append((op, req)) }
            if down.withLock({ $0 }) { return .failure(StageFailure(.plugin(code: -32004, message: "upstream is down"))) }
            switch op {
            case "list_tools": return .success(["tools": .array(tools.withLock { $0 })])
            case "list_prompts": return .success(["prompts": .array(prompts.withLock { $0 })])
            case "list_resources":
                return .success(["resources": [["uri": "mem://notes", "name": "notes"]]])
            case "list_resource_templates": return .failure(StageFailure(.plugin(code: -32601, message: "none")))
            case "complete":
                if req["ref"]?["name"] == "plain" { return .failure(StageFailure(.plugin(code: -32601, message: "none"))) }
                return .success(["completion": ["values": ["py", "pyc"], "hasMore": false]])
            case "subscribe", "unsubscribe": return .success([:])
            case "call_tool":
                if req["name"] == "ask_wait" {
                    // Asks the client and waits for its answer (a handshake-era backend).
                    let sent = emit?(["jsonrpc": "2.0", "id": "up-8", "method": "sampling/createMessage",
                                      "params": ["messages": [], "maxTokens": 5]]) ?? false
                    guard sent else { return .success(["content": [["type": "text", "text": "refused"]]]) }
                    for _ in 0..<250 {
                        if let a = ops("client_response").first(where: { $0["id"] == "up-8" }) {
                            let model = a["result"]?["model"]?.stringValue ?? "error \(a["error"]?["code"]?.intValue ?? 0)"
                            return .success(["content": [["type": "text", "text": .string(model)]]])
                        }
                        do { try await Task.sleep(for: .milliseconds(20)) } catch { return .failure(StageFailure(.cancelled)) }
                    }
                    return .success(["content": [["type": "text", "text": "no answer"]], "isError": true])
                }
                if req["name"] == "ask" {
                    // A server→client request in the middle of a call; the answer comes back as `client_response`.
                    let sent = emit?(["jsonrpc": "2.0", "id": "up-7", "method": "sampling/createMessage",
                                      "params": ["messages": [], "maxTokens": 5]]) ?? false
                    _ = emit?(["jsonrpc": "2.0", "method": "notifications/message", "params": ["level": "debug", "data": "d"]])
                    _ = emit?(["jsonrpc": "2.0", "method": "notifications/message", "params": ["level": "error", "data": "e"]])
                    return .success(["content": [["type": "text", "text": .string(sent ? "sent" : "refused")]]])
                }
                return .success(["content": [["type": "text", "text": .string("\(req["name"]?.stringValue ?? "")")]]])
            case "client_response": return .success([:])
            default: return .failure(StageFailure(.plugin(code: -32601, message: "no op \(op)")))
            }
        }
    }

    func ops(_ op: String) -> [JSON] { asked.withLock { $0.filter { $0.op == op }.map(\.request) } }
}

/// Collects what a session is sent outside requests (what a GET stream would carry).
final class Inbox: Sendable {
    let messages = Mutex<[JSON]>([])
    func withLock<T: Sendable>(_ body: (inout [JSON]) -> T) -> T { messages.withLock { body(&$0) } }
}

/// Two backends, `a` (prefix `a`) and `b` (prefix `b`), that both serve `echo`.
struct Federation {
    let a = LiveBackend(tools: ["echo", "ask", "weird.name!", "ask_wait"], prompts: ["review", "plain"])
    let b = LiveBackend(tools: ["echo"])
    let gateway: Gateway
    let h: Harness

    init(grace: Duration = .seconds(30)) async throws {
        h = try Harness()
        let store = CatalogStore(settings: [
            BackendSettings(name: "a", prefix: "a", grace: grace), BackendSettings(name: "b", prefix: "b", grace: grace),
        ])
        gateway = Gateway(
            identity: [Stage(plugin: "p", label: "identity[0]", caller: headerIdentity)],
            policy: [Stage(plugin: "p", label: "policy[0]", caller: prefixPolicy)], transforms: [],
            backends: ["a": Stage(plugin: "fake", label: "backends.a", caller: a.caller),
                       "b": Stage(plugin: "fake", label: "backends.b", caller: b.caller)],
            store: store, audit: h.trail,
            settings: GatewaySettings(pageSize: 100, callTimeout: .seconds(5), serverVersion: "test"),
            sessions: SessionTable(idleTimeout: .seconds(60)), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        await gateway.refresh("a")
        await gateway.refresh("b")
    }

    func identity() async throws -> Identity {
        guard case .success(let i) = await gateway.authenticate(h.caller(["x-user": "alice"])) else { throw RPCError(code: 0, message: "no") }
        return i
    }

    /// An initialized session whose unsolicited messages (a GET stream's) are collected in `inbox`.
    func open(_ who: Identity, capabilities: JSON = [:], inbox: Inbox? = nil) async throws -> Session {
        let reply = await gateway.handle(
            .request(id: .int(0), method: "initialize",
                     params: ["protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": ["name": "t", "version": "1"]]),
            identity: who, caller: h.caller([:]), session: nil)
        guard case .initialized(_, let s) = reply else { throw RPCError(code: 0, message: "no session") }
        gateway.sessions.insert(s)
        _ = await gateway.handle(.notification(method: "notifications/initialized", params: nil), identity: who,
                                 caller: h.caller([:]), session: s)
        if let inbox { _ = s.attachOutbound { m in inbox.messages.withLock { $0.append(m) }; return true } }
        return s
    }

    func request(_ method: String, _ params: JSON?, as who: Identity, session: Session, id: Int64 = 1,
                 emit: (@Sendable (JSON) -> Bool)? = nil) async -> Frame? {
        let reply = await gateway.handle(.request(id: .int(id), method: method, params: params), identity: who,
                                         caller: h.caller([:]), session: session, emit: emit)
        if case .frame(let f) = reply { return f }
        return nil
    }

    func toolNames(_ who: Identity, _ s: Session) async -> [String] {
        let r = await request("tools/list", nil, as: who, session: s)?.result
        return r?["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
    }
}

@Suite struct ExposedNames {
    @Test func prefixedAndSanitizedNamesMatchTheFunctionNameAlphabet() {
        #expect(ToolName.exposed("echo", prefix: "gh") == "gh__echo")
        #expect(ToolName.exposed("admin.reset", prefix: nil) == "admin_reset")
        #expect(ToolName.exposed("héllo wörld", prefix: "x") == "x__h__llo_w__rld")
        let long1 = ToolName.exposed(String(repeating: "a", count: 80) + "1", prefix: "p")
        let long2 = ToolName.exposed(String(repeating: "a", count: 80) + "2", prefix: "p")
        #expect(long1.utf8.count == 64 && long2.utf8.count == 64 && long1 != long2)
        for n in ["gh__echo", "admin_reset", long1, long2] {
            #expect(n.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D
            })
        }
    }
}

@Suite struct FederatedCatalog {
    @Test func twoBackendsServeTheSameNameUnderTheirPrefixes() async throws {
        let f = try await Federation()
        let who = try await f.identity()
        let s = try await f.open(who)
        #expect(await f.toolNames(who, s) == ["a__echo", "a__ask", "a__weird_name_", "a__ask_wait", "b__echo"])
        let r = await f.request("tools/call", ["name": "b__echo", "arguments": [:]], as: who, session: s)?.result
        #expect(r?["content"]?[0]?["text"] == "echo")
        // The backend is asked for its own name; the audit record has the exposed one.
        #expect(f.b.ops("call_tool").last?["name"] == "echo")
        #expect(f.a.ops("call_tool").isEmpty)
        #expect(f.h.trail.all.last?["tool"] == "b__echo")
        _ = await f.request("tools/call", ["name": "a__weird_name_"], as: who, session: s, id: 2)
        #expect(f.a.ops("call_tool").last?["name"] == "weird.name!")
        // Prompts are prefixed too, and prompts/get reaches the backend under the backend's name.
        let p = await f.request("prompts/list", nil, as: who, session: s, id: 3)?.result
        #expect(p?["prompts"]?.arrayValue?.map { $0["name"] } == ["a__review", "a__plain"])
    }

    @Test func aChangedBackendIsAnnouncedAndOldCursorsAreRefused() async throws {
        let f = try await Federation()
        let who = try await f.identity()
        let inbox = Inbox()
        let s = try await f.open(who, inbox: inbox)
        let generation = f.gateway.store.current.generation
        f.b.tools.withLock { $0.append(tool("added")) }
        await f.gateway.refresh("b")
        #expect(await f.toolNames(who, s).contains("b__added"))
        #expect(f.gateway.store.current.generation != generation)
        #expect(inbox.withLock { $0.map { $0["method"] } } == ["notifications/tools/list_changed"])
        // Nothing changed: nothing announced.
        await f.gateway.refresh("b")
        #expect(inbox.withLock { $0.count } == 1)
    }

    @Test func aDownBackendKeepsItsEntriesForTheGracePeriodThenLosesThem() async throws {
        let f = try await Federation(grace: .milliseconds(200))
        let who = try await f.identity()
        let inbox = Inbox()
        let s = try await f.open(who, inbox: inbox)
        f.b.down.withLock { $0 = true }
        await f.gateway.refresh("b")
        #expect(await f.toolNames(who, s).contains("b__echo"))
        let e = await f.request("tools/call", ["name": "b__echo"], as: who, session: s)?.error
        #expect(e?.code == -32004)
        // The other backend keeps working.
        #expect(await f.request("tools/call", ["name": "a__echo"], as: who, session: s, id: 2)?.result != nil)
        let keeper = Task { await f.gateway.maintainCatalog() }
        defer { keeper.cancel() }
        var gone = false
        for _ in 0..<50 where !gone {
            try await Task.sleep(for: .milliseconds(100))
            gone = !(await f.toolNames(who, s).contains("b__echo"))
        }
        #expect(gone)
        #expect(inbox.withLock { $0.contains { $0["method"] == "notifications/tools/list_changed" } })
        // It comes back when the backend does (the keeper retries a down backend).
        f.b.down.withLock { $0 = false }
        var back = false
        for _ in 0..<50 where !back {
            try await Task.sleep(for: .milliseconds(100))
            back = await f.toolNames(who, s).contains("b__echo")
        }
        #expect(back)
    }
}

@Suite struct ClientMessages {
    @Test func aBackendRequestReachesAClientThatCanAnswerAndTheAnswerComesBack() async throws {
        let f = try await Federation()
        let who = try await f.identity()
        let s = try await f.open(who, capabilities: ["sampling": [:]])
        let seen = Mutex<[JSON]>([])
        let r = await f.request("tools/call", ["name": "a__ask"], as: who, session: s) { m in
            seen.withLock { $0.append(m) }
            return true
        }?.result
        #expect(r?["content"]?[0]?["text"] == "sent")
        let request = try #require(seen.withLock { $0.first { $0["method"] == "sampling/createMessage" } })
        // The client sees the gateway's id, not the backend's (GW-5).
        let id = try #require(request["id"]?.stringValue)
        #expect(id != "up-7")
        _ = await f.gateway.handle(.response(id: .string(id), result: ["role": "assistant", "model": "m"]), identity: who,
                                   caller: f.h.caller([:]), session: s)
        for _ in 0..<50 where f.a.ops("client_response").isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        let answer = try #require(f.a.ops("client_response").first)
        #expect(answer["id"] == "up-7")
        #expect(answer["result"]?["model"] == "m")
        // A second answer with the same id is ignored.
        _ = await f.gateway.handle(.response(id: .string(id), result: [:]), identity: who, caller: f.h.caller([:]), session: s)
        try await Task.sleep(for: .milliseconds(100))
        #expect(f.a.ops("client_response").count == 1)
    }

    @Test func requestsTheClientDidNotDeclareAreRefusedAndLogsFollowSetLevel() async throws {
        let f = try await Federation()
        let who = try await f.identity()
        let s = try await f.open(who)
        #expect(await f.request("logging/setLevel", ["level": "warning"], as: who, session: s, id: 9)?.result != nil)
        #expect(await f.request("logging/setLevel", ["level": "loud"], as: who, session: s, id: 10)?.error?.code == -32602)
        let seen = Mutex<[JSON]>([])
        let r = await f.request("tools/call", ["name": "a__ask"], as: who, session: s) { m in
            seen.withLock { $0.append(m) }
            return true
        }?.result
        #expect(r?["content"]?[0]?["text"] == "refused")
        #expect(seen.withLock { $0.map { $0["params"]?["level"] } } == ["error"])
    }

    @Test func clientCapabilityRules() {
        #expect(Gateway.clientCan("elicitation/create", params: ["mode": "url"], capabilities: ["elicitation": [:]]) == false)
        #expect(Gateway.clientCan("elicitation/create", params: [:], capabilities: ["elicitation": [:]]))
        #expect(Gateway.clientCan("elicitation/create", params: ["mode": "url"], capabilities: ["elicitation": ["url": [:]]]))
        #expect(Gateway.clientCan("sampling/createMessage", params: ["tools": []], capabilities: ["sampling": [:]]) == false)
        #expect(Gateway.clientCan("roots/list", params: nil, capabilities: [:]) == false)
        #expect(Gateway.clientCan("tools/call", params: nil, capabilities: ["sampling": [:]]) == false)
    }
}

@Suite struct CompletionAndSubscriptions {
    @Test func completionGoesToThePromptsBackendUnderItsOwnName() async throws {
        let f = try await Federation()
        let who = try await f.identity()
        let s = try await f.open(who)
        let ok = await f.request("completion/complete", ["ref": ["type": "ref/prompt", "name": "a__review"],
                                                          "argument": ["name": "lang", "value": "p"]], as: who, session: s)
        #expect(ok?.result?["completion"]?["values"] == ["py", "pyc"])
        #expect(f.a.ops("complete").last?["ref"]?["name"] == "review")
        // A backend without completions: an empty list, not an error.
        let none = await f.request("completion/complete", ["ref": ["type": "ref/prompt", "name": "a__plain"],
                                                            "argument": ["name": "x", "value": ""]], as: who, session: s, id: 2)
        #expect(none?.result?["completion"]?["values"] == .array([]))
        let unknown = await f.request("completion/complete", ["ref": ["type": "ref/prompt", "name": "nope"],
                                                               "argument": ["name": "x", "value": ""]], as: who, session: s, id: 3)
        #expect(unknown?.error?.code == -32602)
    }

    @Test func updatesReachOnlySubscribedSessions() async throws {
        let f = try await Federation()
        let who = try await f.identity()
        let inbox1 = Inbox(), inbox2 = Inbox()
        let s1 = try await f.open(who, inbox: inbox1)
        _ = try await f.open(who, inbox: inbox2)
        #expect(await f.request("resources/subscribe", ["uri": "mem://notes"], as: who, session: s1)?.result != nil)
        #expect(f.a.ops("subscribe").last?["uri"] == "mem://notes")
        #expect(await f.request("resources/subscribe", ["uri": "mem://nothing"], as: who, session: s1, id: 2)?.error?.code == -32002)
        f.gateway.sessions.broadcastResourceUpdate("mem://notes")
        #expect(inbox1.withLock { $0.map { $0["params"]?["uri"] } } == ["mem://notes"])
        #expect(inbox2.withLock { $0.isEmpty })
        #expect(await f.request("resources/unsubscribe", ["uri": "mem://notes"], as: who, session: s1, id: 3)?.result != nil)
        f.gateway.sessions.broadcastResourceUpdate("mem://notes")
        #expect(inbox1.withLock { $0.count } == 1)
    }
}

/// NEXT-6: a 2026-07-28 client gets a backend's mid-call request as an input request, and its retry resumes the
/// same call.
@Suite struct MultiRoundTrip {
    func modern(_ f: Federation, _ who: Identity, id: Int64, params: JSON, capabilities: JSON = ["sampling": [:]]) async -> Frame? {
        var p = params.objectValue ?? [:]
        p["_meta"] = ["io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": capabilities]
        let reply = await f.gateway.handleModern(.request(id: .int(id), method: "tools/call", params: .object(p)),
                                                 identity: who, caller: f.h.caller([:]), headers: nil, emit: nil)
        if case .frame(let fr) = reply { return fr }
        return nil
    }

    @Test func anInputRequestIsAnsweredByTheRetry() async throws {
        let f = try await Federation()
        let who = try await f.identity()
        let first = try #require(await modern(f, who, id: 1, params: ["name": "a__ask_wait", "arguments": [:]])?.result)
        #expect(first["resultType"] == "input_required")
        let asked = try #require(first["inputRequests"]?.objectValue)
        #expect(asked.members.count == 1)
        let (key, request) = (asked.members[0].key, asked.members[0].value)
        #expect(request["method"] == "sampling/createMessage")
        let state = try #require(first["requestState"]?.stringValue)

        // A forged state, or someone else's retry, resumes nothing.
        let forged = await modern(f, who, id: 2, params: ["name": "a__ask_wait", "requestState": .string(state + "0")])
        #expect(forged?.error?.code == -32602)
        guard case .success(let mallory) = await f.gateway.authenticate(f.h.caller(["x-user": "mallory"])) else { return }
        let stolen = await modern(f, mallory, id: 3, params: ["name": "a__ask_wait", "requestState": .string(state)])
        #expect(stolen?.error?.code == -32602)

        let done = try #require(await modern(f, who, id: 4, params: [
            "name": "a__ask_wait", "requestState": .string(state),
            "inputResponses": .object(JSONObject([JSONMember(key, ["role": "assistant", "model": "m-1", "content": ["type": "text", "text": "x"]])])),
        ])?.result)
        #expect(done["resultType"] == "complete")
        #expect(done["content"]?[0]?["text"] == "m-1")
        #expect(f.a.ops("client_response").first?["id"] == "up-8")
        // The state is single-use.
        #expect(await modern(f, who, id: 5, params: ["name": "a__ask_wait", "requestState": .string(state)])?.error?.code == -32602)
    }

    @Test func aClientWithoutTheCapabilityIsNotAsked() async throws {
        let f = try await Federation()
        let who = try await f.identity()
        let r = try #require(await modern(f, who, id: 1, params: ["name": "a__ask_wait", "arguments": [:]], capabilities: [:])?.result)
        #expect(r["resultType"] == "complete")
        #expect(r["content"]?[0]?["text"] == "refused")
    }
}
