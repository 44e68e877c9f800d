import Foundation
import Testing
@testable import CasbinEngine

func enforcer(_ model: String, _ policy: String) throws -> CasbinEnforcer {
    try CasbinEnforcer(modelText: model, policyText: policy)
}

func req(_ values: String...) -> [CasbinValue] { values.map { .string($0) } }

let rbacModel = """
    [request_definition]
    r = sub, obj, act
    [policy_definition]
    p = sub, obj, act
    [role_definition]
    g = _, _
    [policy_effect]
    e = some(where (p.eft == allow))
    [matchers]
    m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
    """

@Suite struct EnforcerTests {
    @Test func aclAllowsWithExplain() throws {
        let e = try enforcer(aclModel, "p, alice, data1, read\np, bob, data2, write\n")
        let d = try e.enforce(req("bob", "data2", "write"))
        #expect(d.allowed)
        #expect(d.explain == ["bob", "data2", "write"])
        #expect(d.explainLine == "p, bob, data2, write")
        #expect(d.line == 2)
        #expect(try e.enforce(req("bob", "data1", "write")) == CasbinDecision(allowed: false, explain: []))
    }

    @Test func roleHierarchyStopsAtTheDepthLimit() throws {
        let chain = (0..<12).map { "g, u\($0), u\($0 + 1)" }.joined(separator: "\n")
        for k in 1...11 {
            let e = try enforcer(rbacModel, "p, u\(k), data1, read\n" + chain)
            #expect(try e.enforce(req("u0", "data1", "read")).allowed == (k <= 9), "depth \(k)")
        }
    }

    @Test func domainsKeepRolesApart() throws {
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
        let e = try enforcer(model, "p, admin, t1, data1, read\np, admin, t2, data2, read\ng, alice, admin, t1\n")
        #expect(try e.enforce(req("alice", "t1", "data1", "read")).allowed)
        #expect(!(try e.enforce(req("alice", "t2", "data2", "read")).allowed))
    }

    @Test func denyRuleWinsAndIsTheExplain() throws {
        let model = rbacModel.replacingOccurrences(of: "p = sub, obj, act", with: "p = sub, obj, act, eft")
            .replacingOccurrences(of: "e = some(where (p.eft == allow))",
                                  with: "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))")
        let e = try enforcer(model, "p, admin, data1, read, allow\np, alice, data1, read, deny\ng, alice, admin\n")
        let d = try e.enforce(req("alice", "data1", "read"))
        #expect(!d.allowed)
        #expect(d.explainLine == "p, alice, data1, read, deny")
        let ok = try e.enforce(req("admin", "data1", "read"))
        #expect(ok.allowed && ok.explain.isEmpty && ok.firstAllow == "p, admin, data1, read, allow")
    }

    @Test func priorityOrdersRowsNumerically() throws {
        let model = rbacModel.replacingOccurrences(of: "p = sub, obj, act", with: "p = priority, sub, obj, act, eft")
            .replacingOccurrences(of: "e = some(where (p.eft == allow))", with: "e = priority(p.eft) || deny")
        let e = try enforcer(model, "p, 10, alice, data1, read, allow\np, 9, admin, data1, read, deny\ng, alice, admin\n")
        let d = try e.enforce(req("alice", "data1", "read"))
        #expect(!d.allowed)
        #expect(d.explain == ["9", "admin", "data1", "read", "deny"])
    }

    @Test func abacAttributesAndEvalRules() throws {
        let model = aclModel.replacingOccurrences(of: "p = sub, obj, act", with: "p = sub_rule, obj, act")
            .replacingOccurrences(of: "r.sub == p.sub", with: "eval(p.sub_rule)")
        let e = try enforcer(model, "p, r.sub.Age > 18 && r.sub.Dept in ('eng', 'ops'), data1, read\n")
        let adult: CasbinValue = .object(["Age": .int(30), "Dept": .string("ops")])
        let child: CasbinValue = .object(["Age": .int(12), "Dept": .string("ops")])
        #expect(try e.enforce([adult, .string("data1"), .string("read")]).allowed)
        #expect(!(try e.enforce([child, .string("data1"), .string("read")]).allowed))
        #expect(throws: CasbinEvalError.self) { try e.enforce([.string("x"), .string("data1"), .string("read")]) }
    }

    @Test func badEvalRuleIsALoadErrorAtItsColumn() {
        let model = aclModel.replacingOccurrences(of: "p = sub, obj, act", with: "p = sub_rule, obj, act")
            .replacingOccurrences(of: "r.sub == p.sub", with: "eval(p.sub_rule)")
        let e = loadError(model, "p, r.sub.Age >, data1, read\n")
        #expect(e?.description.hasPrefix("policy:1:15:") == true)
    }

    @Test func wrongRequestSizeThrows() throws {
        let e = try enforcer(aclModel, "p, a, b, c\n")
        #expect(throws: CasbinEvalError.self) { try e.enforce(req("a", "b")) }
    }

    @Test func expressionSemantics() throws {
        func check(_ matcher: String, _ r: [CasbinValue] = req("a", "b", "c")) throws -> Bool {
            let m = aclModel.replacingOccurrences(of: "r.sub == p.sub && r.obj == p.obj && r.act == p.act", with: matcher)
            return try enforcer(m, "p, a, b, c\n").enforce(r).allowed
        }
        #expect(try check("1 + 2 * 3 == 7 && 7 / 2 == 3.5 && -7 % 3 == 2"))
        #expect(try check("r.sub + r.obj == 'ab' && r.sub in ('a', 'z') && r.obj not in ['a']"))
        #expect(try check("!r.sub == 'x'"))
        #expect(try check("1 < 2 < 3 && !(3 > 2 > 2)"))
        #expect(try check("r.sub.N[1] == 'y'", [.object(["N": .array([.string("x"), .string("y")])]), .string("b"), .string("c")]))
        #expect(throws: CasbinEvalError.self) { try check("r.sub > 1") }
        #expect(throws: CasbinEvalError.self) { try check("r.sub") }
    }
}

@Suite struct BuiltinTests {
    let cache = RegexCache()

    @Test func keyMatchFamily() throws {
        #expect(Builtins.keyMatch("/foo/bar", "/foo/*"))
        #expect(!Builtins.keyMatch("/foo", "/bar*"))
        #expect(try Builtins.keyMatch2("/resource1", "/:resource", cache))
        #expect(!(try Builtins.keyMatch2("/a/b", "/:resource", cache)))
        #expect(try Builtins.keyMatch2("/alice_data/x/y", "/alice_data/*", cache))
        #expect(try Builtins.keyMatch3("/api/users/42", "/api/users/{id}", cache))
        #expect(try Builtins.keyMatch4("/pen/1/pen/1", "/pen/{id}/pen/{id}", cache))
        #expect(!(try Builtins.keyMatch4("/pen/1/pen/2", "/pen/{id}/pen/{id}", cache)))
        #expect(try Builtins.keyMatch5("/api/users/42?x=1", "/api/users/{id}", cache))
        #expect(Builtins.keyGet("/foo/bar/baz", "/foo/*") == "bar/baz")
        #expect(try Builtins.keyGet2("/api/items/7", "/api/:res/:id", "id", cache) == "7")
        #expect(try Builtins.keyGet3("/api/items/7", "/api/{res}/{id}", "res", cache) == "items")
    }

    @Test func regexSearchesAndRejectsBadPatterns() throws {
        #expect(try Builtins.regexMatch("abbbc", "b+", cache))
        #expect(!(try Builtins.regexMatch("abbbc", "^b", cache)))
        #expect(throws: CasbinEvalError.self) { try Builtins.regexMatch("a", "[", cache) }
    }

    @Test func glob() {
        #expect(Builtins.globMatch("/files/a.txt", "/files/*.txt"))
        #expect(!Builtins.globMatch("/files/a/b.txt", "/files/*.txt"))
        #expect(!Builtins.globMatch("/a/b.txt", "/a/*a.txt"))
        #expect(Builtins.globMatch("/api/items/7", "/api/items/[0-9]"))
        #expect(!Builtins.globMatch("/api/items/7", "/api/items/[!0-9]"))
        #expect(Builtins.globMatch("a?", "a\\?"))
    }

    @Test func timeMatch() throws {
        let now = try #require(Builtins.parseLocalTime("2026-06-01 12:00:00"))
        #expect(try Builtins.timeMatch("2026-06-01 11:59:59", "2026-06-01 12:00:01", now: now))
        #expect(!(try Builtins.timeMatch("2026-06-01 12:00:00", "_", now: now)))
        #expect(try Builtins.timeMatch("_", "_", now: now))
        #expect(throws: CasbinEvalError.self) { try Builtins.timeMatch("2026-02-30 00:00:00", "_", now: now) }
    }

    @Test func ipMatch() throws {
        #expect(try Builtins.ipMatch("192.168.2.123", "192.168.2.0/24"))
        #expect(!(try Builtins.ipMatch("192.168.3.1", "192.168.2.0/24")))
        #expect(try Builtins.ipMatch("10.1.2.3", "10.0.0.0/255.0.0.0"))
        #expect(try Builtins.ipMatch("2001:db8::1", "2001:db8::/32"))
        #expect(!(try Builtins.ipMatch("::1", "127.0.0.1")))
        #expect(!(try Builtins.ipMatch("10.0.0.1", "garbage")))
        #expect(throws: CasbinEvalError.self) { try Builtins.ipMatch("300.1.1.1", "10.0.0.0/8") }
    }
}
