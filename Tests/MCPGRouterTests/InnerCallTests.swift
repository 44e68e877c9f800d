import Logging
import MCPGFrames
import MCPGJSON
import MCPGRouter
import Synchronization
import Testing

/// A backend that, serving `relay`, calls the gateway's tool named in its arguments and answers with what came
/// back: what a pipeline step does.
final class RelayBackend: Sendable {
    let answers = Mutex<[String: JSON]>([:])
    let counter = Mutex(0)

    var caller: FakeCaller {
        FakeCaller { [self] op, req, emit in
            switch op {
            case "list_tools": return .success(["tools": [tool("relay"), tool("secret_relay")]])
            case "list_prompts", "list_resources", "list_resource_templates":
                return .failure(StageFailure(.plugin(code: -32601, message: "none")))
            case "client_response":
                if let id = req["id"]?.stringValue { answers.withLock { $0[id] = req } }
                return .success([:])
            case "call_tool":
                let id = "inner-\(counter.withLock { $0 += 1; return $0 })"
                let target: JSON = req["arguments"]?["target"] ?? "echo"
                let next: JSON = target == "pipe__relay" ? "pipe__relay" : "echo"
                let sent = emit?(["jsonrpc": "2.0", "id": .string(id), "method": "tools/call",
                                  "params": ["name": target, "arguments": ["target": next]]]) ?? false
                guard sent else { return .success(["content": [["type": "text", "text": "refused"]], "isError": true]) }
                for _ in 0..<250 {
                    if let a = answers.withLock({ $0[id] }) {
                        if let error = a["error"] {
                            return .success(["content": [["type": "text", "text": .string("error \(error["code"]?.intValue ?? 0)")]],
                                             "isError": true])
                        }
                        let text = a["result"]?["content"]?[0]?["text"]?.stringValue ?? "?"
                        return .success(["content": [["type": "text", "text": .string("got " + text)]]])
                    }
                    do { try await Task.sleep(for: .milliseconds(20)) } catch { return .failure(StageFailure(.cancelled)) }
                }
                return .success(["content": [["type": "text", "text": "no answer"]], "isError": true])
            default: return .failure(StageFailure(.plugin(code: -32601, message: "no op \(op)")))
            }
        }
    }
}

@Suite struct InnerCallTests {
    /// `pipe` may call tools (`calls_tools`), `rogue` may not; `b` serves `echo` and `secret_data` (no prefix).
    private func gateway(_ h: Harness) async -> Gateway {
        let pipe = RelayBackend()
        let rogue = RelayBackend()
        let b = LiveBackend(tools: ["echo", "secret_data"])
        let store = CatalogStore(settings: [
            BackendSettings(name: "pipe", prefix: "pipe", callsTools: true),
            BackendSettings(name: "rogue", prefix: "rogue"),
            BackendSettings(name: "b"),
        ])
        let gateway = Gateway(
            identity: [Stage(plugin: "p", label: "identity[0]", caller: headerIdentity)],
            policy: [Stage(plugin: "p", label: "policy[0]", caller: prefixPolicy)], transforms: [],
            backends: ["pipe": Stage(plugin: "fake", label: "backends.pipe", caller: pipe.caller),
                       "rogue": Stage(plugin: "fake", label: "backends.rogue", caller: rogue.caller),
                       "b": Stage(plugin: "fake", label: "backends.b", caller: b.caller)],
            store: store, audit: h.trail,
            settings: GatewaySettings(pageSize: 100, callTimeout: .seconds(5), serverVersion: "test"),
            sessions: SessionTable(idleTimeout: .seconds(60)),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        for name in ["pipe", "rogue", "b"] { await gateway.refresh(name) }
        return gateway
    }

    private func call(_ g: Gateway, _ h: Harness, _ who: Identity, _ name: String, target: String) async throws -> JSON {
        let session = try await open(g, h, who)
        let reply = await g.handle(
            .request(id: .int(5), method: "tools/call", params: ["name": .string(name), "arguments": ["target": .string(target)]]),
            identity: who, caller: h.caller([:]), session: session)
        guard case .frame(let f) = reply else { throw RPCError(code: 0, message: "no frame") }
        return f.json
    }

    private func open(_ g: Gateway, _ h: Harness, _ who: Identity) async throws -> Session {
        let reply = await g.handle(
            .request(id: .int(0), method: "initialize",
                     params: ["protocolVersion": "2025-11-25", "capabilities": [:], "clientInfo": ["name": "t", "version": "1"]]),
            identity: who, caller: h.caller([:]), session: nil)
        guard case .initialized(_, let s) = reply else { throw RPCError(code: 0, message: "no session") }
        g.sessions.insert(s)
        return s
    }

    @Test func aBackendAllowedToCallToolsCallsThemAsTheCallerAndBothCallsAreRecorded() async throws {
        let h = try Harness()
        let g = await gateway(h)
        let alice = try await h.identity("alice")
        let answer = try await call(g, h, alice, "pipe__relay", target: "echo")
        #expect(answer["result"]?["content"]?[0]?["text"] == "got echo")
        let calls = h.trail.all.filter { $0["type"] == "tools/call" }
        let outer = try #require(calls.first { $0["tool"] == "pipe__relay" })
        let inner = try #require(calls.first { $0["tool"] == "echo" })
        #expect(inner["parent"] == outer["id"])
        #expect(inner["via"] == "pipe")
        #expect(inner["principal"]?["id"] == "alice")
        #expect(inner["decision"]?["effect"] == "allow")
    }

    @Test func anInnerCallIsAuthorizedAsTheCallerAndADenialComesBackToTheBackend() async throws {
        let h = try Harness()
        let g = await gateway(h)
        let alice = try await h.identity("alice")
        let denied = try await call(g, h, alice, "pipe__relay", target: "secret_data")
        #expect(denied["result"]?["content"]?[0]?["text"] == "error -32003")
        #expect(denied["result"]?["isError"] == true)
        let inner = try #require(h.trail.all.first { $0["tool"] == "secret_data" })
        #expect(inner["decision"]?["effect"] == "deny")
        #expect(inner["parent"] != nil)
        // An admin gets through the same pipeline.
        let admin = try await h.identity("root", groups: "admins")
        let allowed = try await call(g, h, admin, "pipe__relay", target: "secret_data")
        #expect(allowed["result"]?["content"]?[0]?["text"] == "got secret_data")
    }

    @Test func aBackendNotAllowedToCallToolsCannot() async throws {
        let h = try Harness()
        let g = await gateway(h)
        let alice = try await h.identity("alice")
        let answer = try await call(g, h, alice, "rogue__relay", target: "echo")
        #expect(answer["result"]?["content"]?[0]?["text"] == "refused")
        #expect(!h.trail.all.contains { $0["tool"] == "echo" })
    }

    @Test func pipelinesCallingThemselvesStopAtTheDepthLimit() async throws {
        let h = try Harness()
        let g = await gateway(h)
        let alice = try await h.identity("alice")
        // relay → relay → … : each level waits for the next, the deepest gets an error, and all unwind.
        let answer = try await call(g, h, alice, "pipe__relay", target: "pipe__relay")
        let text = answer["result"]?["content"]?[0]?["text"]?.stringValue ?? ""
        #expect(text.hasPrefix("got ") || text.hasPrefix("error"), "\(answer)")
        let relays = h.trail.all.filter { $0["tool"] == "pipe__relay" }
        #expect(relays.count == 8)
    }
}
