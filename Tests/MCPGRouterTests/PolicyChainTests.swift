import Logging
import MCPGFrames
import MCPGJSON
import MCPGRouter
import Synchronization
import Testing

/// A policy plugin that answers a fixed effect per tool name ("abstain" for names it does not list) and counts
/// the queries it was asked.
final class ScriptedPolicy: PluginCaller {
    let effects: [String: String]
    let asked = Mutex<[String]>([])
    init(_ effects: [String: String]) { self.effects = effects }

    func call(op: String, request: JSON, timeout: Duration, emit: (@Sendable (JSON) -> Bool)?) async
        -> Result<JSON, StageFailure>
    {
        if op == "policy_version" { return .success(["version": "1"]) }
        let names = (request["queries"]?.arrayValue ?? []).map { $0["resource"]?["name"]?.stringValue ?? "" }
        asked.withLock { $0 += names }
        return .success(["decisions": .array(names.map { n in
            ["effect": .string(effects[n] ?? "abstain"), "reasons": .array([.string("rule-\(n)")])]
        })])
    }
}

/// A policy whose decisions and version change when told (a reloaded policy file).
final class ReloadingPolicy: PluginCaller {
    let state = Mutex((version: 1, denied: Set<String>()))
    func deny(_ name: String) { state.withLock { $0.version += 1; $0.denied.insert(name) } }

    func call(op: String, request: JSON, timeout: Duration, emit: (@Sendable (JSON) -> Bool)?) async
        -> Result<JSON, StageFailure>
    {
        let (version, denied) = state.withLock { ($0.version, $0.denied) }
        if op == "policy_version" { return .success(["version": .string(String(version))]) }
        let ds: [JSON] = (request["queries"]?.arrayValue ?? []).map { q in
            denied.contains(q["resource"]?["name"]?.stringValue ?? "") ? ["effect": "deny"] : ["effect": "allow"]
        }
        return .success(["decisions": .array(ds)])
    }
}

let failingPolicy = FakeCaller { _, _, _ in .failure(StageFailure(.plugin(code: -32000, message: "engine down"))) }

func chain(_ mode: PolicyMode, _ callers: [any PluginCaller]) -> PolicyChain {
    PolicyChain(
        stages: callers.enumerated().map { Stage(plugin: "p", label: "policy[\($0.offset)]", caller: $0.element) },
        mode: mode, timeout: .seconds(5), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
}

func targets(_ names: [String]) -> [PolicyTarget] {
    names.map { PolicyTarget(action: "tools/call", name: $0, backend: "demo") }
}

@Suite struct PolicyChainTests {
    let alice = Principal(id: "alice", groups: ["eng"])

    @Test func allModeAnyDenyWinsAbstainHasNoSay() async {
        let a = ScriptedPolicy(["x": "allow", "y": "allow", "z": "abstain", "w": "deny"])
        let b = ScriptedPolicy(["x": "deny", "y": "abstain", "z": "abstain", "w": "allow"])
        let v = await chain(.all, [a, b]).decide(alice, targets(["x", "y", "z", "w"]), context: [:])
        #expect(v.map(\.allow) == [false, true, false, false])
        // x: both answers recorded, the deny decides.
        #expect(v[0].answers.map(\.effect) == ["allow", "deny"])
        #expect(v[0].reasons == ["policy[0]:rule-x", "policy[1]:rule-x"])
        // z: nobody had an opinion, so deny by default.
        #expect(v[2].reasons == ["default deny"])
        // w: denied by the first plugin, so the second is not asked about it.
        #expect(v[3].answers.map(\.plugin) == ["policy[0]"])
        #expect(b.asked.withLock { $0 } == ["x", "y", "z"])
    }

    @Test func firstModeFirstOpinionDecides() async {
        let a = ScriptedPolicy(["x": "allow", "y": "deny"])
        let b = ScriptedPolicy(["x": "deny", "y": "allow", "z": "allow", "q": "abstain"])
        let v = await chain(.first, [a, b]).decide(alice, targets(["x", "y", "z", "q"]), context: [:])
        #expect(v.map(\.allow) == [true, false, true, false])
        #expect(b.asked.withLock { $0 } == ["z", "q"])
        #expect(v[2].answers.map(\.effect) == ["abstain", "allow"])
        #expect(v[3].reasons == ["default deny"])
    }

    @Test func aFailingPluginDeniesEverythingStillOpenAndIsNotSettled() async {
        let after = ScriptedPolicy(["x": "allow"])
        for mode in PolicyMode.allCases {
            let v = await chain(mode, [ScriptedPolicy(["x": "allow"]), failingPolicy, after]).decide(
                alice, targets(["x"]), context: [:])
            #expect(v[0].allow == (mode == .first))
            if mode == .all {
                #expect(!v[0].settled)
                #expect(v[0].answers.last?.effect == "error")
                #expect(v[0].reasons.last?.contains("engine down") == true)
            }
        }
        #expect(after.asked.withLock { $0 }.isEmpty)
    }

    @Test func unknownEffectsDeny() async {
        let odd = FakeCaller { _, _, _ in .success(["decisions": [["effect": "maybe"]]]) }
        let v = await chain(.all, [ScriptedPolicy(["x": "allow"]), odd]).decide(alice, targets(["x"]), context: [:])
        #expect(v[0].allow == false)
        #expect(v[0].answers.last?.effect == "deny")
    }

    @Test func auditJSONNamesModeAndEveryAnswer() async {
        let v = await chain(.all, [ScriptedPolicy(["x": "allow"]), ScriptedPolicy(["x": "deny"])]).decide(
            alice, targets(["x"]), context: [:])
        let j = v[0].auditJSON(mode: .all)
        #expect(j["effect"] == "deny")
        #expect(j["mode"] == "all")
        #expect(j["plugins"]?.arrayValue?.map { $0["effect"]?.stringValue ?? "" } == ["allow", "deny"])
    }

    @Test func versionKeyIsNilWhenAPluginCannotSay() async {
        #expect(await chain(.all, [ScriptedPolicy([:])]).versionKey() != nil)
        #expect(await chain(.all, [ScriptedPolicy([:]), failingPolicy]).versionKey() == nil)
    }

    @Test func reloadedPolicyChangesTheFilteredListAtOnce() async throws {
        let policy = ReloadingPolicy()
        let h = try Harness(tools: ["echo", "other"], policy: [policy])
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        func listed() async -> [String] {
            let r = await h.request("tools/list", nil, as: who, session: s)
            return r?.result?["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        }
        #expect(await listed() == ["echo", "other"])
        #expect(await listed() == ["echo", "other"])  // served from the cache
        policy.deny("other")
        #expect(await listed() == ["echo"])
    }

    @Test func firstModeThroughTheGateway() async throws {
        let h = try Harness(policy: [ScriptedPolicy(["echo": "abstain"]), ScriptedPolicy(["echo": "allow"])],
                            policyMode: .first)
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let r = await h.request("tools/call", ["name": "echo", "arguments": ["text": "hi"]], as: who, session: s)
        #expect(r?.result?["content"]?[0]?["text"] == "hi")
        let decision = h.trail.all.last?["decision"]
        #expect(decision?["mode"] == "first")
        #expect(decision?["plugins"]?.arrayValue?.count == 2)
    }
}

@Suite struct CallerTests {
    @Test func peerAddressDropsThePort() {
        func peer(_ p: String) -> String { Caller(transport: "http", peer: p, peerIsLoopback: false, headers: [:]).peerAddress }
        #expect(peer("10.1.2.3:5000") == "10.1.2.3")
        #expect(peer("[::1]:8080") == "::1")
        #expect(peer("stdio") == "stdio")
    }
}
