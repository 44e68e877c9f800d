import Foundation
import MCPGJSON
import Testing

@testable import RegoEngine

private let policyText = """
    package mcpg.authz
    import rego.v1

    default allow := false
    allow if {
        not deny
        input.resource.name in data.tools[input.principal.groups[_]]
    }
    allow := "maybe" if input.resource.name == "odd"
    deny if input.principal.id in data.blocked
    reasons contains "blocked" if deny
    reasons contains sprintf("group %s", [g]) if {
        some g in input.principal.groups
        input.resource.name in data.tools[g]
    }
    """

private func authorizer(_ text: String = policyText, query: String = "data.mcpg.authz.allow",
                        reasons: String? = "data.mcpg.authz.reasons") throws -> RegoAuthorizer
{
    let data: JSON = ["tools": ["devs": ["search", "db.query"], "ops": ["db.query"]], "blocked": ["eve"]]
    let policy = try RegoPolicy(modules: [(name: "authz.rego", text: text)], data: data)
    return try RegoAuthorizer(policy: policy, query: query, reasonsQuery: reasons)
}

private func decide(_ a: RegoAuthorizer, id: String, groups: [String], tool: String) -> RegoAuthorizer.Outcome {
    let p = RegoAuthorizer.principal(id: id, groups: groups, tenant: nil, attributes: [:])
    let q = RegoAuthorizer.Query(action: "tools/call", type: "tool", name: tool, backend: "main")
    return a.decide(principal: p, context: ["transport": "http"], queries: [q])[0]
}

@Test func allowTakesReasonsFromTheReasonsQuery() throws {
    let a = try authorizer()
    #expect(decide(a, id: "bob", groups: ["devs", "ops"], tool: "db.query")
        == .init(.allow, ["group devs", "group ops"]))
}

@Test func denyTakesReasonsOrNamesTheQuery() throws {
    #expect(decide(try authorizer(), id: "eve", groups: ["devs"], tool: "search") == .init(.deny, ["blocked", "group devs"]))
    #expect(decide(try authorizer(reasons: nil), id: "bob", groups: [], tool: "search")
        == .init(.deny, ["denied by data.mcpg.authz.allow"]))
    #expect(decide(try authorizer(reasons: nil), id: "bob", groups: ["devs"], tool: "search")
        == .init(.allow, ["data.mcpg.authz.allow"]))
}

@Test func undefinedIsNoMatchAndOddValuesDeny() throws {
    let a = try authorizer(query: "data.mcpg.authz.nothing")
    #expect(decide(a, id: "bob", groups: [], tool: "search") == .init(.noMatch, ["data.mcpg.authz.nothing undefined"]))
    let odd = decide(try authorizer(), id: "bob", groups: [], tool: "odd")
    #expect(odd.effect == .deny)
}

@Test func evaluationErrorsDenyWithTheError() throws {
    let text = "package mcpg.authz\nimport rego.v1\nallow := true if input.resource.name\nallow := false if input.action\n"
    let o = decide(try authorizer(text), id: "bob", groups: [], tool: "x")
    #expect(o.effect == .deny)
    #expect(o.reasons.first?.contains("complete rules must not produce multiple outputs") == true)
}

@Test func loadReportsFileLineAndColumnAndTheOldPolicyKeepsWorking() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rego-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("authz.rego").path
    try "package mcpg.authz\nimport rego.v1\nallow if input.principal.id == \"bob\"\n"
        .write(toFile: file, atomically: true, encoding: .utf8)
    let good = try RegoAuthorizer.load(policyFiles: [file], dataFile: nil, query: "data.mcpg.authz.allow",
                                       reasonsQuery: nil)
    try "package mcpg.authz\nimport rego.v1\nallow if {\n  input.x ==\n}\n".write(toFile: file, atomically: true,
                                                                                 encoding: .utf8)
    #expect(throws: RegoError.self) {
        _ = try RegoAuthorizer.load(policyFiles: [file], dataFile: nil, query: "data.mcpg.authz.allow",
                                    reasonsQuery: nil)
    }
    do {
        _ = try RegoAuthorizer.load(policyFiles: [file], dataFile: nil, query: "data.mcpg.authz.allow",
                                    reasonsQuery: nil)
    } catch {
        #expect(error.description == "\(file):4:13: unexpected end of line")
    }
    #expect(decide(good, id: "bob", groups: [], tool: "t").effect == .allow)
}

/// Prints throughput for a realistic policy set (about 50 rules, a three-level group tree); asserts nothing
/// about time.
@Test func measureThroughput() throws {
    var text = """
        package mcpg.authz
        import rego.v1

        default allow := false
        groups contains g if some g in input.principal.groups
        groups contains p if { some g in input.principal.groups; p := data.parents[g] }
        groups contains p if { some g in input.principal.groups; p := data.parents[data.parents[g]] }
        deny if input.principal.id in data.blocked
        deny if { startswith(input.resource.name, "admin."); not "org.admins" in groups }
        allow if {
            not deny
            some g in groups
            some pattern in data.grants[g]
            glob.match(pattern, ["."], input.resource.name)
        }
        reasons contains "blocked" if deny

        """
    for i in 0..<45 {
        text += "allow if { input.resource.backend == \"b\(i)\"; \"org.team\(i)\" in groups; input.action == \"tools/call\" }\n"
    }
    var grants: [JSONMember] = []
    var parents: [JSONMember] = []
    for i in 0..<45 {
        parents.append(JSONMember("org.team\(i)", "org"))
        parents.append(JSONMember("org.team\(i).sre", .string("org.team\(i)")))
        grants.append(JSONMember("org.team\(i)", .array([.string("t\(i).*"), .string("shared.read")])))
    }
    let data: JSON = ["grants": .object(JSONObject(grants)), "parents": .object(JSONObject(parents)),
                      "blocked": ["mallory"]]
    let policy = try RegoPolicy(modules: [(name: "bench.rego", text: text)], data: data)
    let a = try RegoAuthorizer(policy: policy, query: "data.mcpg.authz.allow", reasonsQuery: "data.mcpg.authz.reasons")
    let principal = RegoAuthorizer.principal(id: "alice", groups: ["org.team3.sre", "org.team7"], tenant: "acme",
                                             attributes: ["level": 3])
    let queries = (0..<10_000).map {
        RegoAuthorizer.Query(action: "tools/list", type: "tool", name: "t\($0 % 50).tool\($0)", backend: "b\($0 % 45)")
    }
    let clock = ContinuousClock()
    var allowed = 0
    let single = clock.measure {
        for q in queries.prefix(2000) {
            allowed += a.decide(principal: principal, context: ["transport": "http"], queries: [q])[0].effect == .allow ? 1 : 0
        }
    }
    var batchAllowed = 0
    let batch = clock.measure {
        batchAllowed = a.decide(principal: principal, context: ["transport": "http"], queries: queries)
            .filter { $0.effect == .allow }.count
    }
    func perSecond(_ n: Int, _ d: Duration) -> Int {
        Int(Double(n) / (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18))
    }
    print("rego: \(perSecond(2000, single)) single decisions/s; 10,000-query batch in \(batch) "
        + "(\(perSecond(10_000, batch)) decisions/s); allowed \(allowed)/2000, \(batchAllowed)/10000")
}
