import Foundation
import MCPGJSON
import RegoEngine

// `rego-eval --bench` prints throughput for a realistic policy set instead (build with -c release).
if CommandLine.arguments.contains("--bench") {
    runBenchmark()
    exit(0)
}

// One case per line: {"modules": [text, …], "data": {…}?, "input": …?, "query": "data.x.y"}.
// One answer per line: {"value": …} | {"undefined": true} | {"error": "…"} (load errors included).
while let line = readLine(strippingNewline: true) {
    guard !line.isEmpty else { continue }
    var answer: JSON
    do {
        let c = try JSON.parse(line)
        let texts = c["modules"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let policy = try RegoPolicy(
            modules: texts.enumerated().map { (name: "m\($0.offset).rego", text: $0.element) }, data: c["data"])
        let query = try policy.prepare(c["query"]?.stringValue ?? "data")
        let input = c["input"].map(Value.init(json:))
        switch policy.evaluate(query, input: input) {
        case .value(let v): answer = ["value": v.json]
        case .undefined: answer = ["undefined": true]
        case .error(let e): answer = ["error": .string(e)]
        }
    } catch {
        answer = ["error": .string("\(error)")]
    }
    print(answer.text)
}

/// About 50 rules over a three-level group tree, one principal, 10,000 tools.
func runBenchmark() {
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
    do {
        let policy = try RegoPolicy(modules: [(name: "bench.rego", text: text)], data: data)
        let a = try RegoAuthorizer(policy: policy, query: "data.mcpg.authz.allow",
                                   reasonsQuery: "data.mcpg.authz.reasons")
        let principal = RegoAuthorizer.principal(id: "alice", groups: ["org.team3.sre", "org.team7"], tenant: "acme",
                                                 attributes: ["level": 3])
        let queries = (0..<10_000).map {
            RegoAuthorizer.Query(action: "tools/list", type: "tool", name: "t\($0 % 50).tool\($0)",
                                 backend: "b\($0 % 45)")
        }
        let clock = ContinuousClock()
        var allowed = 0
        let single = clock.measure {
            for q in queries {
                let o = a.decide(principal: principal, context: ["transport": "http"], queries: [q])
                if o[0].effect == .allow { allowed += 1 }
            }
        }
        var batchAllowed = 0
        let batch = clock.measure {
            batchAllowed = a.decide(principal: principal, context: ["transport": "http"], queries: queries)
                .filter { $0.effect == .allow }.count
        }
        func secs(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        print("single-query calls: \(Int(10_000 / secs(single))) decisions/s (allowed \(allowed))")
        print("one 10,000-query call: \(Int(secs(batch) * 1000)) ms, \(Int(10_000 / secs(batch))) decisions/s "
            + "(allowed \(batchAllowed))")
    } catch {
        print("benchmark policy failed: \(error)")
    }
}
