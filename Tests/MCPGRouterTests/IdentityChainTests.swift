import MCPGFrames
import MCPGJSON
import MCPGRouter
import Synchronization
import Testing

/// An identity plugin that always answers `answer`, and counts its calls.
final class FixedIdentity: PluginCaller {
    let answer: JSON
    let metadata: JSON?
    let calls = Mutex(0)
    init(_ answer: JSON, metadata: JSON? = nil) {
        self.answer = answer
        self.metadata = metadata
    }
    func call(op: String, request: JSON, timeout: Duration, emit: (@Sendable (JSON) -> Bool)?) async
        -> Result<JSON, StageFailure>
    {
        if op == "resource_metadata" {
            guard let metadata else { return .failure(StageFailure(.plugin(code: -32601, message: "no op"))) }
            return .success(metadata)
        }
        calls.withLock { $0 += 1 }
        return .success(answer)
    }
    var count: Int { calls.withLock { $0 } }
}

func authenticated(_ id: String, groups: [String] = [], tenant: String? = nil, attributes: JSONObject = [:]) -> JSON {
    var p: JSONObject = ["id": .string(id), "groups": .array(groups.map { .string($0) })]
    if let tenant { p["tenant"] = .string(tenant) }
    if !attributes.isEmpty { p["attributes"] = .object(attributes) }
    return ["result": "authenticated", "principal": .object(p), "reason": .string("as \(id)")]
}

let abstaining: JSON = ["result": "abstain", "reason": "nothing presented"]

@Suite struct IdentityChainModes {
    func run(_ plugins: [FixedIdentity], mode: IdentityMode) async throws -> (Harness, Result<Identity, AuthenticationFailure>) {
        let h = try Harness(identity: plugins, identityMode: mode)
        return (h, await h.gateway.authenticate(h.caller([:])))
    }

    /// `first`: a reject stops the chain before later plugins are asked (short-circuit), and the refusal is
    /// audited with every answer so far.
    @Test func firstModeRejectShortCircuits() async throws {
        let reject = FixedIdentity(["result": "reject", "reason": "unknown key"])
        let later = FixedIdentity(authenticated("bob"))
        let (h, r) = try await run([FixedIdentity(abstaining), reject, later], mode: .first)
        guard case .failure(let f) = r else { Issue.record("a reject let the caller in"); return }
        #expect(f.plugin == "identity[1]")
        #expect(f.status == 401)
        #expect(later.count == 0)
        let audit = try #require(h.trail.all.last)
        #expect(audit["identity"]?["mode"] == "first")
        #expect(audit["identity"]?["answers"]?.arrayValue?.map { $0["result"] } == ["abstain", "reject"])
        #expect(audit["identity"]?["abstained"]?[0]?["reason"] == "nothing presented")
    }

    /// `all`: every plugin must authenticate; the principal is merged (id from the first, groups unioned in
    /// order, tenant from whoever names it, attributes with the first plugin winning).
    @Test func allModeMergesPrincipals() async throws {
        let cert = FixedIdentity(authenticated("spiffe://acme/web", groups: ["svc", "eng"],
                                               attributes: ["source": "cert", "cn": "web"]))
        let key = FixedIdentity(authenticated("key-7", groups: ["eng", "ops"], tenant: "acme",
                                              attributes: ["source": "key", "key": "7"]))
        let (h, r) = try await run([cert, key], mode: .all)
        guard case .success(let i) = r else { Issue.record("both authenticated, yet refused"); return }
        #expect(i.principal.id == "spiffe://acme/web")
        #expect(i.principal.groups == ["svc", "eng", "ops"])
        #expect(i.principal.tenant == "acme")
        #expect(i.principal.attributes["source"] == "cert")
        #expect(i.principal.attributes["key"] == "7")
        #expect(i.principal.attributes["cn"] == "web")
        #expect(i.plugins == ["identity[0]", "identity[1]"])
        #expect(i.mode == .all)
        // The audit record of a call names both plugins.
        let s = try await h.open(i)
        _ = await h.request("tools/call", ["name": "echo", "arguments": ["text": "hi"]], as: i, session: s)
        let call = try #require(h.trail.all.last(where: { $0["type"] == "tools/call" }))
        #expect(call["identity"]?["plugins"] == ["identity[0]", "identity[1]"])
        #expect(call["identity"]?["answers"]?.arrayValue?.count == 2)
    }

    /// `all`: one abstain refuses the caller and names the plugin and its reason; later plugins are not asked.
    @Test func allModeAbstainRefuses() async throws {
        let later = FixedIdentity(authenticated("c"))
        let (h, r) = try await run([FixedIdentity(authenticated("a")), FixedIdentity(abstaining), later], mode: .all)
        guard case .failure(let f) = r else { Issue.record("an abstain passed in all mode"); return }
        #expect(f.plugin == "identity[1]")
        #expect(f.reason == "identity[1] abstained: nothing presented")
        #expect(later.count == 0)
        #expect(h.trail.all.last?["identity"]?["mode"] == "all")
    }

    /// `all`: two different tenants are a refusal, not a silent pick.
    @Test func allModeTenantConflictRefuses() async throws {
        let (_, r) = try await run([FixedIdentity(authenticated("a", tenant: "acme")),
                                    FixedIdentity(authenticated("a", tenant: "globex"))], mode: .all)
        guard case .failure(let f) = r else { Issue.record("conflicting tenants were merged"); return }
        #expect(f.plugin == "identity[1]")
        #expect(f.reason.contains("globex") && f.reason.contains("acme"))
        let (_, same) = try await run([FixedIdentity(authenticated("a", tenant: "acme")),
                                       FixedIdentity(authenticated("a", tenant: "acme"))], mode: .all)
        guard case .success(let i) = same else { Issue.record("agreeing tenants refused"); return }
        #expect(i.principal.tenant == "acme")
    }

    /// `all`: a broken plugin refuses (fail closed), even after others authenticated.
    @Test func allModeBrokenPluginFailsClosed() async throws {
        let broken = FakeCaller { _, _, _ in .failure(StageFailure(.timeout)) }
        let h = try Harness(identity: [FixedIdentity(authenticated("a")), broken], identityMode: .all)
        guard case .failure(let f) = await h.gateway.authenticate(h.caller([:])) else {
            Issue.record("a broken plugin let the caller in")
            return
        }
        #expect(f.plugin == "identity[1]")
        #expect(f.answers.last?.result == "error")
    }

    /// A reject's challenge is kept; only `insufficient_scope` becomes 403, whatever status the plugin asks for.
    @Test func challengesAndStatus() async throws {
        let scope = FixedIdentity(["result": "reject", "reason": "needs admin", "status": 403,
                                   "challenge": ["error": "insufficient_scope", "scope": "mcp:admin"]])
        let (_, r) = try await run([scope], mode: .first)
        guard case .failure(let f) = r else { Issue.record("reject passed"); return }
        #expect(f.status == 403)
        #expect(f.challenge == AuthChallenge(error: "insufficient_scope", scope: "mcp:admin"))
        let bogus = FixedIdentity(["result": "reject", "reason": "x", "status": 403,
                                   "challenge": ["error": "invalid_token", "error_description": "expired"]])
        let (_, r2) = try await run([bogus], mode: .first)
        guard case .failure(let f2) = r2 else { Issue.record("reject passed"); return }
        #expect(f2.status == 401)
        #expect(f2.challenge?.errorDescription == "expired")
        // An error code with characters outside RFC 6750's is dropped rather than passed on.
        let odd = FixedIdentity(["result": "reject", "reason": "x", "challenge": ["error": "bad\r\nheader"]])
        let (_, r3) = try await run([odd], mode: .first)
        guard case .failure(let f3) = r3 else { Issue.record("reject passed"); return }
        #expect(f3.challenge == nil)
    }

    /// RFC 9728 metadata is merged from the plugins that publish it; none publishing means none served.
    @Test func resourceMetadataIsMerged() async throws {
        let a = FixedIdentity(abstaining, metadata: ["authorization_servers": ["https://a.example"],
                                                     "scopes_supported": ["mcp:read"],
                                                     "bearer_methods_supported": ["header"]])
        let b = FixedIdentity(abstaining, metadata: ["authorization_servers": ["https://b.example", "https://a.example"],
                                                     "scopes_supported": ["mcp:write", "mcp:read"]])
        let h = try Harness(identity: [a, FixedIdentity(abstaining), b])
        let m = try #require(await h.gateway.identityResourceMetadata())
        #expect(m["authorization_servers"] == ["https://a.example", "https://b.example"])
        #expect(m["scopes_supported"] == ["mcp:read", "mcp:write"])
        #expect(m["bearer_methods_supported"] == ["header"])
        let none = try Harness(identity: [FixedIdentity(abstaining)])
        #expect(await none.gateway.identityResourceMetadata() == nil)
    }
}
