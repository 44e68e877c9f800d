import MCPGFrames
import MCPGJSON
import MCPGRouter
import Testing

/// Denies prompts and resources whose name or URI contains "secret"; allows everything else.
let noSecrets = FakeCaller { op, req, _ in
    if op == "policy_version" { return .success(["version": "1"]) }
    let ds: [JSON] = (req["queries"]?.arrayValue ?? []).map { q in
        let name = q["resource"]?["name"]?.stringValue ?? ""
        return name.contains("secret") ? ["effect": "deny", "reasons": ["no-secrets"]] : ["effect": "allow"]
    }
    return .success(["decisions": .array(ds)])
}

@Suite struct PromptsResourcesTests {
    static func harness() throws -> Harness {
        try Harness(
            policy: [noSecrets],
            prompts: [["name": "review"], ["name": "secret-plan"], ["name": "gone"]],
            resources: [["uri": "file:///readme.md", "name": "readme"], ["uri": "file:///secret.txt", "name": "s"]],
            templates: [["uriTemplate": "db://tables/{table}", "name": "table"], ["uriTemplate": "logs://{+path}", "name": "logs"]])
    }

    /// PROMPT-1, RES-1: prompts and resources are announced because a backend serves them.
    @Test func capabilitiesNamePromptsAndResources() async throws {
        let h = try Self.harness()
        let who = try await h.identity("alice")
        let r = await h.request("initialize", ["protocolVersion": "2025-11-25", "capabilities": [:],
                                              "clientInfo": ["name": "t", "version": "1"]], as: who, session: nil)
        let caps = r?.result?["capabilities"]
        #expect(caps?["prompts"] != nil)
        #expect(caps?["resources"]?["subscribe"] == true)
        #expect(caps?["completions"] != nil && caps?["logging"] != nil)
        let bare = try Harness()
        let r2 = await bare.request("initialize", ["protocolVersion": "2025-11-25", "capabilities": [:],
                                                  "clientInfo": ["name": "t", "version": "1"]], as: who, session: nil)
        #expect(r2?.result?["capabilities"]?["prompts"] == nil)
    }

    /// PROMPT-2, RES-2, RES-4: lists are filtered by policy like tools/list, and audited with the hidden count.
    @Test func listsAreFilteredByPolicy() async throws {
        let h = try Self.harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let prompts = await h.request("prompts/list", nil, as: who, session: s)?.result?["prompts"]?.arrayValue
        #expect(prompts?.compactMap { $0["name"]?.stringValue } == ["review", "gone"])
        let resources = await h.request("resources/list", nil, as: who, session: s)?.result?["resources"]?.arrayValue
        #expect(resources?.compactMap { $0["uri"]?.stringValue } == ["file:///readme.md"])
        let templates = await h.request("resources/templates/list", nil, as: who, session: s)?.result?["resourceTemplates"]?
            .arrayValue
        #expect(templates?.count == 2)
        let listed = h.trail.all.filter { $0["type"] == "prompts/list" }
        #expect(listed.last?["decision"]?["hidden"] == 1)
    }

    /// PROMPT-3, PROMPT-4: prompts/get is authorized, relayed with the principal, audited; bad names are -32602.
    @Test func promptsGetIsAuthorizedRelayedAndAudited() async throws {
        let h = try Self.harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let ok = await h.request("prompts/get", ["name": "review", "arguments": ["lang": "swift"]], as: who, session: s)
        #expect(ok?.result?["messages"]?[0]?["content"]?["text"] == "prompt review for alice")
        let cid = ok?.result?["_meta"]?[correlationMetaKey]?.stringValue
        let record = h.trail.all.last
        #expect(record?["type"] == "prompts/get")
        #expect(record?["id"]?.stringValue == cid)
        #expect(record?["decision"]?["effect"] == "allow")

        let denied = await h.request("prompts/get", ["name": "secret-plan"], as: who, session: s, id: 2)
        #expect(denied?.error?.code == -32003)
        #expect(h.trail.all.last?["decision"]?["reasons"] == ["policy[0]:no-secrets"])
        #expect(await h.request("prompts/get", ["name": "nope"], as: who, session: s, id: 3)?.error?.code == -32602)
        #expect(await h.request("prompts/get", ["name": "gone"], as: who, session: s, id: 4)?.error?.code == -32602)
        #expect(await h.request("prompts/get", [:], as: who, session: s, id: 5)?.error?.code == -32602)
    }

    /// RES-3, RES-4, RES-8: resources/read by URI or template; unknown URIs are -32002; denied reads reveal nothing.
    @Test func resourcesReadByURIAndTemplate() async throws {
        let h = try Self.harness()
        let who = try await h.identity("alice")
        let s = try await h.open(who)
        let direct = await h.request("resources/read", ["uri": "file:///readme.md"], as: who, session: s)
        #expect(direct?.result?["contents"]?[0]?["text"] == "content of file:///readme.md")
        let viaTemplate = await h.request("resources/read", ["uri": "db://tables/users"], as: who, session: s, id: 2)
        #expect(viaTemplate?.result?["contents"]?[0]?["uri"] == "db://tables/users")
        #expect(h.trail.all.last?["template"] == "db://tables/{table}")
        // `{table}` takes no `/`; `{+path}` does.
        #expect(await h.request("resources/read", ["uri": "db://tables/a/b"], as: who, session: s, id: 3)?.error?.code == -32002)
        #expect(await h.request("resources/read", ["uri": "logs://a/b/c"], as: who, session: s, id: 4)?.result != nil)
        #expect(await h.request("resources/read", ["uri": "file:///secret.txt"], as: who, session: s, id: 5)?.error?.code == -32003)
    }

    @Test func collisionsAreReportedNotOverwrites() {
        let prompts = Catalog(listings: [BackendListing(name: "a", tools: [], prompts: [["name": "p"]]),
                                         BackendListing(name: "b", tools: [], prompts: [["name": "p"]])])
        #expect(prompts.prompt(named: "p")?.backend == "a")
        #expect(prompts.problems.map(\.backend) == ["b"])
        let resources = Catalog(listings: [
            BackendListing(name: "a", tools: [], resources: [["uri": "x://1", "name": "1"]]),
            BackendListing(name: "b", tools: [], resources: [["uri": "x://1", "name": "2"]]),
        ])
        #expect(resources.resources.map(\.item["name"]) == ["1"])
        #expect(resources.problems.first?.message == "resource x://1 is served by both backend a and backend b")
        let noURI = Catalog(listings: [BackendListing(name: "a", tools: [], resources: [["name": "no uri"]])])
        #expect(noURI.resources.isEmpty && noURI.problems.count == 1)
    }
}
