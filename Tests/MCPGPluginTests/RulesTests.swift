import MCPGJSON
import MCPGLoader
import Testing

/// The rules policy plugin, loaded through the real loader.
@Suite struct RulesTests {
    static let config: JSON = [
        "rules": [
            ["id": "no-admin", "effect": "deny", "tools": ["admin.*"]],
            ["id": "no-drop", "effect": "deny", "groups": ["eng"], "tools": ["db.drop_?"]],
            ["id": "eng-all", "effect": "allow", "groups": ["eng"], "tools": ["*"]],
            ["id": "everyone-echo", "effect": "allow", "principals": ["*"], "tools": ["echo", "echo-v?"]],
            ["id": "carol-lists-b2", "effect": "allow", "principals": ["carol"], "backends": ["b2"],
             "actions": ["tools/list"]],
        ]
    ]

    func query(_ name: String, action: String = "tools/call", backend: String = "b1") -> JSON {
        ["action": .string(action), "resource": ["type": "tool", "name": .string(name), "backend": .string(backend)]]
    }

    func decide(_ principal: JSON, _ queries: [JSON]) async throws -> [JSON] {
        let p = try instance("rules", config: Self.config)
        let r = try await p.ok("authorize", ["principal": principal, "queries": .array(queries), "context": [:]])
        return try #require(r["decisions"]?.arrayValue)
    }

    @Test func denyBeatsAllowAndListsEveryMatchingDeny() async throws {
        let d = try await decide(
            ["id": "alice", "groups": ["eng"]], [query("admin.reset"), query("db.drop_x"), query("db.drop_xy")])
        #expect(d[0] == ["effect": "deny", "reasons": ["no-admin"]])
        #expect(d[1] == ["effect": "deny", "reasons": ["no-drop"]])
        // `?` is exactly one character, so db.drop_xy is not denied and eng-all allows it.
        #expect(d[2] == ["effect": "allow", "reasons": ["eng-all"]])
    }

    @Test func allowsListEveryMatchingAllowRule() async throws {
        let d = try await decide(["id": "alice", "groups": ["eng"]], [query("echo"), query("weather")])
        #expect(d[0] == ["effect": "allow", "reasons": ["eng-all", "everyone-echo"]])
        #expect(d[1] == ["effect": "allow", "reasons": ["eng-all"]])
    }

    @Test func globsAndDefaultDeny() async throws {
        let d = try await decide(
            ["id": "bob", "groups": []],
            [query("echo"), query("echo-v2"), query("echo-v10"), query("weather"), query("admin.x"), query("Echo")])
        #expect(d.map { $0["effect"] } == ["allow", "allow", "deny", "deny", "deny", "deny"])
        #expect(d[2]["reasons"] == ["default deny"])
        #expect(d[3]["reasons"] == ["default deny"])
        #expect(d[4]["reasons"] == ["no-admin"])
    }

    @Test func backendsAndActionsNarrowARule() async throws {
        let d = try await decide(
            ["id": "carol"],
            [query("x", action: "tools/list", backend: "b2"), query("x", action: "tools/call", backend: "b2"),
             query("x", action: "tools/list", backend: "b1")])
        #expect(d[0] == ["effect": "allow", "reasons": ["carol-lists-b2"]])
        #expect(d[1] == ["effect": "deny", "reasons": ["default deny"]])
        #expect(d[2] == ["effect": "deny", "reasons": ["default deny"]])
    }

    @Test func tenThousandQueriesAnsweredInOrder() async throws {
        let p = try instance("rules", config: Self.config)
        let names = (0..<10_000).map { i in i % 7 == 0 ? "admin.tool\(i)" : i % 7 == 1 ? "echo" : "tool\(i)" }
        let request: JSON = [
            "principal": ["id": "dave", "groups": ["sales"]],
            "queries": .array(names.map { query($0, action: "tools/list") }), "context": [:],
        ]
        let bytes = request.serialized()
        let start = ContinuousClock.now
        let reply = await p.call(op: "authorize", request: bytes, timeout: .seconds(30))
        let elapsed = ContinuousClock.now - start
        print("rules: authorize with 10,000 queries (\(bytes.count) bytes) took \(elapsed) through the loader")
        try #require(reply.ok)
        let decisions = try #require(reply.json?["decisions"]?.arrayValue)
        #expect(decisions.count == 10_000)
        for (i, d) in decisions.enumerated() {
            let expected: JSON =
                i % 7 == 0
                ? ["effect": "deny", "reasons": ["no-admin"]]
                : i % 7 == 1 ? ["effect": "allow", "reasons": ["everyone-echo"]]
                : ["effect": "deny", "reasons": ["default deny"]]
            if d != expected {
                Issue.record("decision \(i) for \(names[i]): \(d), expected \(expected)")
                break
            }
        }
    }

    @Test func duplicateRuleIDIsRefusedAtCreate() throws {
        let message = try creationError(
            "rules",
            config: ["rules": [["id": "a", "effect": "allow"], ["id": "a", "effect": "deny"]]])
        #expect(message.contains("duplicate rule id \"a\""), "\(message)")
    }

    @Test func unknownEffectIsRefusedAtCreate() throws {
        let message = try creationError("rules", config: ["rules": [["id": "a", "effect": "maybe"]]])
        #expect(message.contains("effect"), "\(message)")
    }
}
