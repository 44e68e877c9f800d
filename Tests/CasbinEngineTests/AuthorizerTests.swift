import Foundation
import MCPGJSON
import Testing
@testable import CasbinEngine

@Suite struct AuthorizerTests {
    func authorizer(_ model: String, _ policy: String, fields: [String]? = nil, groups: Bool = true) throws
        -> CasbinAuthorizer
    {
        try CasbinAuthorizer(enforcer: try enforcer(model, policy), fields: fields, groupsAsRoles: groups)
    }

    @Test func defaultFieldsByTokenCount() throws {
        #expect(try authorizer(aclModel, "").fields == [.principalID, .resourceName, .action])
        let four = aclModel.replacingOccurrences(of: "r = sub, obj, act", with: "r = sub, dom, obj, act")
            .replacingOccurrences(of: "r.act == p.act", with: "r.act == p.act && r.dom != ''")
        #expect(try authorizer(four, "").fields == [.principalID, .principalTenant, .resourceName, .action])
    }

    @Test func badFieldsAreRejected() throws {
        #expect(throws: CasbinEvalError.self) { try authorizer(aclModel, "", fields: ["principal.id", "nope", "action"]) }
        #expect(throws: CasbinEvalError.self) { try authorizer(aclModel, "", fields: ["principal.id", "action"]) }
    }

    @Test func groupsBecomeRolesAndReasonsAreRows() throws {
        let a = try authorizer(rbacModel, "p, admins, search, tools/call\np, root, delete, tools/call\ng, admins, root\n")
        let call = a.prepare(principalID: "alice", groups: ["admins"], tenant: nil, attributes: [:], context: [:])
        func decide(_ name: String) -> CasbinAuthorizer.Outcome {
            a.decide(call, action: "tools/call", resourceType: "tool", resourceName: name, resourceBackend: "b")
        }
        #expect(decide("search") == .allow(reason: "p, admins, search, tools/call"))
        // Two levels: alice → admins (from the principal) → root (from the policy).
        #expect(decide("delete") == .allow(reason: "p, root, delete, tools/call"))
        #expect(decide("other") == .noMatch)
        let off = try authorizer(rbacModel, "p, admins, search, tools/call\n", groups: false)
        let c2 = off.prepare(principalID: "alice", groups: ["admins"], tenant: nil, attributes: [:], context: [:])
        #expect(off.decide(c2, action: "tools/call", resourceType: "tool", resourceName: "search",
                           resourceBackend: "b") == .noMatch)
    }

    @Test func groupsAreRolesInTheTenantDomain() throws {
        let model = """
            [request_definition]
            r = sub, dom, obj, act
            [policy_definition]
            p = sub, dom, obj, act
            [role_definition]
            g = _, _, _
            [policy_effect]
            e = some(where (p.eft == allow))
            [matchers]
            m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
            """
        let a = try authorizer(model, "p, ops, t1, search, tools/call\np, ops, t2, search, tools/list\n")
        let call = a.prepare(principalID: "alice", groups: ["ops"], tenant: "t1", attributes: [:], context: [:])
        #expect(a.decide(call, action: "tools/call", resourceType: "tool", resourceName: "search",
                         resourceBackend: "") == .allow(reason: "p, ops, t1, search, tools/call"))
        let other = a.prepare(principalID: "alice", groups: ["ops"], tenant: "t2", attributes: [:], context: [:])
        #expect(a.decide(other, action: "tools/call", resourceType: "tool", resourceName: "search",
                         resourceBackend: "") == .noMatch)
    }

    @Test func denyRowsAndEvaluationErrorsDeny() throws {
        let model = aclModel.replacingOccurrences(of: "p = sub, obj, act", with: "p = sub, obj, act, eft")
            .replacingOccurrences(of: "e = some(where (p.eft == allow))", with: "e = !some(where (p.eft == deny))")
            .replacingOccurrences(of: "r.sub == p.sub", with: "r.sub.dept == p.sub")
        let a = try authorizer(model, "p, hr, payroll, tools/call, deny\n",
                               fields: ["principal", "resource.name", "action"])
        let hr = a.prepare(principalID: "bob", groups: [], tenant: nil, attributes: ["dept": "hr"], context: [:])
        #expect(a.decide(hr, action: "tools/call", resourceType: "tool", resourceName: "payroll", resourceBackend: "")
            == .deny(reason: "p, hr, payroll, tools/call, deny"))
        #expect(a.decide(hr, action: "tools/call", resourceType: "tool", resourceName: "x", resourceBackend: "")
            == .allow(reason: "allowed: no deny rule matched"))
        let none = a.prepare(principalID: "eve", groups: [], tenant: nil, attributes: [:], context: [:])
        guard case .deny(let reason) = a.decide(none, action: "tools/call", resourceType: "tool",
                                                 resourceName: "payroll", resourceBackend: "") else {
            Issue.record("expected a deny")
            return
        }
        #expect(reason.contains("no attribute `dept`"))
    }

    @Test func contextAndResourceObjects() throws {
        let model = aclModel.replacingOccurrences(of: "r = sub, obj, act", with: "r = sub, obj, ctx")
            .replacingOccurrences(of: "r.sub == p.sub && r.obj == p.obj && r.act == p.act",
                                  with: "r.sub == p.sub && r.obj.backend == p.obj && ipMatch(r.ctx.peer, p.act)")
        let a = try authorizer(model, "p, alice, files, 10.0.0.0/8\n", fields: ["principal.id", "resource", "context"])
        let inside = a.prepare(principalID: "alice", groups: [], tenant: nil, attributes: [:],
                               context: ["peer": "10.1.2.3"])
        #expect(a.decide(inside, action: "tools/call", resourceType: "tool", resourceName: "x",
                         resourceBackend: "files") == .allow(reason: "p, alice, files, 10.0.0.0/8"))
        let outside = a.prepare(principalID: "alice", groups: [], tenant: nil, attributes: [:],
                                context: ["peer": "192.168.1.1"])
        #expect(a.decide(outside, action: "tools/call", resourceType: "tool", resourceName: "x",
                         resourceBackend: "files") == .noMatch)
    }

    /// A fixed policy that failed to load leaves the previous enforcer untouched (the plugin keeps serving
    /// the snapshot it has; PluginKit's Reloadable swaps only on success).
    @Test func failedLoadLeavesPreviousEnforcerWorking() throws {
        let good = try enforcer(aclModel, "p, alice, data1, read\n")
        #expect(throws: CasbinLoadError.self) { try enforcer(aclModel, "p, alice, data1\n") }
        #expect(try good.enforce(req("alice", "data1", "read")).allowed)
    }

    /// Measures, never asserts: ~50 rows, 3-level groups, a 10,000-query tools/list batch.
    @Test func throughput() throws {
        var policy = ""
        for i in 0..<40 { policy += "p, role\(i % 8), tool\(i * 7 % 200), tools/call\n" }
        for i in 0..<10 { policy += "p, dept\(i % 3), tool\(i * 13 % 200), tools/list\n" }
        for i in 0..<8 { policy += "g, role\(i), dept\(i % 3)\n" }
        for i in 0..<3 { policy += "g, dept\(i), org\n" }
        let a = try authorizer(rbacModel, policy)
        let started = ContinuousClock.now
        let call = a.prepare(principalID: "alice", groups: ["role1", "role5"], tenant: nil, attributes: [:],
                             context: [:])
        var allowed = 0
        for q in 0..<10_000 {
            if case .allow = a.decide(call, action: q % 2 == 0 ? "tools/call" : "tools/list", resourceType: "tool",
                                      resourceName: "tool\(q % 200)", resourceBackend: "b") {
                allowed += 1
            }
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("casbin: 10,000-query batch over 50 rows + 11 links (indexed on r.obj == p.obj): \(elapsed), "
            + "\(Int(10_000 / seconds)) decisions/s, \(allowed) allowed")

        // The same policy with keyMatch on the object: no index, every row is evaluated per query.
        let scan = try authorizer(
            rbacModel.replacingOccurrences(of: "r.obj == p.obj", with: "keyMatch(r.obj, p.obj)"), policy)
        let t2 = ContinuousClock.now
        let call2 = scan.prepare(principalID: "alice", groups: ["role1", "role5"], tenant: nil, attributes: [:],
                                 context: [:])
        allowed = 0
        for q in 0..<10_000 {
            if case .allow = scan.decide(call2, action: q % 2 == 0 ? "tools/call" : "tools/list", resourceType: "tool",
                                         resourceName: "tool\(q % 200)", resourceBackend: "b") {
                allowed += 1
            }
        }
        let e2 = ContinuousClock.now - t2
        let s2 = Double(e2.components.seconds) + Double(e2.components.attoseconds) / 1e18
        print("casbin: same batch, full scan (keyMatch matcher): \(e2), \(Int(10_000 / s2)) decisions/s, \(allowed) allowed")
    }
}
