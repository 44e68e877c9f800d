import Foundation
import MCPGJSON
import Testing

@testable import CedarEngine

private func uid(_ s: String) -> EntityUID {
    (try? CedarParser.parseEntityUID(s)) ?? EntityUID(type: "Invalid", id: s)
}

private func decide(_ policies: String, _ entities: JSON = [], principal: String = #"User::"alice""#,
                    action: String = #"Action::"read""#, resource: String = #"Doc::"d1""#,
                    context: [String: CedarValue] = [:]) throws -> CedarResponse {
    let set = try CedarPolicySet(text: policies)
    let store = try EntityStore.fromJSON(entities)
    return set.isAuthorized(
        CedarRequest(principal: uid(principal), action: uid(action), resource: uid(resource), context: context),
        entities: store)
}

private func parseError(_ text: String) -> CedarParseError? {
    do {
        _ = try CedarParser.parsePolicies(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct ParserTests {
    @Test func errorsCarryLineAndColumn() throws {
        let e = try #require(parseError("permit(principal, action, resource)\nwhen { 1 / 2 };"))
        #expect(e.location == SourceLocation(line: 2, column: 10))
        #expect(e.message.contains("division"))
        #expect(e.description.hasPrefix("2:10: "))
    }

    @Test func missingSemicolonIsReportedAtEnd() throws {
        let e = try #require(parseError("permit(principal, action, resource)"))
        #expect(e.location == SourceLocation(line: 1, column: 36))
    }

    @Test func scopeMustNameTheThreeVariables() throws {
        #expect(parseError("permit(principal, action);") != nil)
        #expect(parseError("permit(action, principal, resource);") != nil)
        #expect(parseError("permit(principal, action == User::\"x\", resource);") != nil)
        #expect(parseError("permit(principal, action, resource,);") == nil)
    }

    @Test func rejectsAmbiguousAndUnsupportedSyntax() {
        for text in [
            "permit(principal, action, resource) when { 1 < 2 < 3 };",
            "permit(principal, action, resource) when { 5 % 2 == 1 };",
            "permit(principal, action, resource) when { !!!!!true };",
            "permit(principal, action, resource) when { foo };",
            "permit(principal, action, resource) when { isIpv4(ip(\"1.2.3.4\")) };",
            "permit(principal, action, resource) when { {a: 1, a: 2} has a };",
            "permit(principal, action, resource) when { \"\\q\" == \"q\" };",
            "permit(principal, action, resource) when { 9223372036854775808 > 0 };",
            "@id(\"a\") @id(\"b\") permit(principal, action, resource);",
            "permit(principal, action, resource) when { principal == ?principal };",
        ] {
            #expect(parseError(text) != nil, "\(text)")
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() throws {
        let deep = "permit(principal, action, resource) when { " + String(repeating: "(", count: 100_000) + "true"
            + String(repeating: ")", count: 100_000) + " };"
        let e = try #require(parseError(deep))
        #expect(e.message.contains("nested too deeply"))
        let chain = "permit(principal, action, resource) when { true" + String(repeating: " && true", count: 50_000) + " };"
        #expect(try #require(parseError(chain)).message.contains("too long"))
        let sum = "permit(principal, action, resource) when { 1" + String(repeating: " + 1", count: 300) + " > 0 };"
        #expect(try #require(parseError(sum)).message.contains("nested too deeply"))
        // Long flat boolean chains stay shallow, and realistic nesting is fine.
        let ors = "permit(principal, action, resource) when { false" + String(repeating: " || false", count: 400) + " };"
        #expect(parseError(ors) == nil)
        let fine = "permit(principal, action, resource) when { " + String(repeating: "(", count: 20) + "true"
            + String(repeating: ")", count: 20) + " };"
        #expect(parseError(fine) == nil)
    }

    @Test func annotationsAndTemplates() throws {
        let ps = try CedarParser.parsePolicies(
            "@id(\"first\") @advice permit(principal == ?principal, action, resource);")
        #expect(ps.count == 1)
        #expect(ps[0].idAnnotation == "first")
        #expect(ps[0].isTemplate)
    }

    @Test func entityReferences() throws {
        #expect(try CedarParser.parseEntityUID(#"A::B::"x\ty""#) == EntityUID(type: "A::B", id: "x\ty"))
        #expect(throws: CedarParseError.self) { try CedarParser.parseEntityUID(#"in::"x""#) }
    }
}

@Suite struct EvaluationTests {
    let groups: JSON = [
        ["uid": ["type": "User", "id": "alice"], "attrs": ["age": 30, "tags": ["a", "b"]],
         "parents": [["type": "Group", "id": "eng"]]],
        ["uid": ["type": "Group", "id": "eng"], "attrs": [:], "parents": [["type": "Group", "id": "all"]]],
        ["uid": ["type": "Group", "id": "all"], "attrs": [:], "parents": []],
    ]

    @Test func forbidOverridesPermitAndDefaultIsDeny() throws {
        let r = try decide("permit(principal, action, resource); forbid(principal == User::\"alice\", action, resource);")
        #expect(r.decision == .deny)
        #expect(r.reasons == ["policy1"])
        let none = try decide("permit(principal == User::\"bob\", action, resource);")
        #expect(none.decision == .deny)
        #expect(none.reasons.isEmpty)
    }

    @Test func hierarchyIsTransitive() throws {
        let r = try decide("permit(principal in Group::\"all\", action, resource);", groups)
        #expect(r.decision == .allow)
        #expect(r.reasons == ["policy0"])
        let unknown = try decide("permit(principal in Group::\"all\", action, resource);", groups,
                                 principal: #"User::"zed""#)
        #expect(unknown.decision == .deny)
    }

    @Test func erroringPolicyIsSkippedAndReported() throws {
        let r = try decide("""
            permit(principal, action, resource) when { principal.age + 9223372036854775807 > 0 };
            forbid(principal, action, resource) when { principal.nope };
            permit(principal, action, resource) when { principal.tags.contains("a") };
            """, groups)
        #expect(r.decision == .allow)
        #expect(r.reasons == ["policy2"])
        #expect(r.errors.map(\.policy) == ["policy0", "policy1"])
        #expect(r.errors[0].message.contains("overflow"))
    }

    @Test func shortCircuitAvoidsErrors() throws {
        let r = try decide("permit(principal, action, resource) when { false && (1 + \"a\" == 2) };")
        #expect(r.errors.isEmpty)
        let t = try decide("permit(principal, action, resource) when { true || principal.missing };", groups)
        #expect(t.decision == .allow)
    }

    @Test func likeHasAndSets() throws {
        let policy = """
            permit(principal, action, resource) when {
              "a*b" like "a\\*b" && "abc" like "a*" && !("axb" like "a\\*b") &&
              principal has age && !(principal has nope) && [1, 2] == [2, 1, 1] &&
              [1, 2, 3].containsAll([1, 3]) && {a: {b: 1}} has a.b
            };
            """
        #expect(try decide(policy, groups).decision == .allow)
    }

    @Test func extensionValues() throws {
        #expect(IPAddress.parse("10.0.0.1/8")?.prefix == 8)
        #expect(IPAddress.parse("01.2.3.4") == nil)
        #expect(IPAddress.parse("::ffff:1.2.3.4") == nil)
        #expect(IPAddress.parse("1:2:3:4:5:6:7::") != nil)
        #expect(try ExtensionParse.decimal("-0.5").get() == -5000)
        #expect((try? ExtensionParse.decimal("1.23456").get()) == nil)
        #expect(try ExtensionParse.duration("1d2h").get() == 93_600_000)
        #expect((try? ExtensionParse.duration("1m1h").get()) == nil)
        #expect(try ExtensionParse.datetime("1970-01-02T00:00:00+0100").get() == 82_800_000)
        #expect((try? ExtensionParse.datetime("2023-02-29").get()) == nil)
        let r = try decide("""
            permit(principal, action, resource) when {
              ip("10.1.2.3").isInRange(ip("10.0.0.0/8")) && decimal("1.5").lessThan(decimal("2.0")) &&
              datetime("2024-01-01").offset(duration("1d")) == datetime("2024-01-02")
            };
            """)
        #expect(r.decision == .allow)
    }

    @Test func entityJSONRejectsCyclesAndNulls() {
        #expect(throws: CedarDataError.self) {
            try EntityStore.fromJSON([["uid": ["type": "G", "id": "a"], "attrs": [:], "parents": [["type": "G", "id": "a"]]]])
        }
        #expect(throws: CedarDataError.self) {
            try EntityStore.fromJSON([["uid": ["type": "G", "id": "a"], "attrs": ["x": nil], "parents": []]])
        }
    }
}

@Suite struct GatewayMappingTests {
    static let entities = """
        [
          {"uid": {"type": "Group", "id": "eng"}, "attrs": {}, "parents": [{"type": "Group", "id": "staff"}]},
          {"uid": {"type": "Group", "id": "staff"}, "attrs": {}, "parents": [{"type": "Group", "id": "all"}]},
          {"uid": {"type": "Tool", "id": "rm"}, "attrs": {"risk": "high"}, "parents": []}
        ]
        """

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cedar-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func write(_ dir: URL, _ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test func mapsPrincipalResourceAndContext() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pol = try write(dir, "main.cedar", """
            @id("all-staff-read") permit(principal in Group::"all", action == Action::"tools/call", resource is Tool)
              when { resource.backend == "git" && resource in Backend::"git" && principal.tenant == "acme" &&
                     principal.groups.contains("eng") && principal.level == 3 && context.arguments.force == false };
            forbid(principal, action, resource) when { resource has risk && resource.risk == "high" };
            permit(principal, action == Action::"tools/list", resource) when { context.score.greaterThan(decimal("1.0")) };
            """)
        let ent = try write(dir, "entities.json", Self.entities)
        let policy = try CedarGatewayPolicy.load(policyFiles: [pol], entitiesFile: ent)
        let who = CedarGatewayPolicy.Principal(id: "alice", groups: ["eng"], tenant: "acme", attributes: ["level": 3])
        let ctx: JSONObject = ["arguments": ["force": false, "gone": nil], "score": 1.5, "tiny": 1e-7]
        let out = policy.decide(principal: who, queries: [
            .init(action: "tools/call", resourceType: "tool", name: "log", backend: "git"),
            .init(action: "tools/call", resourceType: "tool", name: "rm", backend: "git"),
            .init(action: "tools/call", resourceType: "prompt", name: "log", backend: "git"),
            .init(action: "tools/list", resourceType: "tool", name: "x", backend: "other"),
            .init(action: "tools/call", resourceType: "widget", name: "x", backend: "git"),
        ], context: ctx)
        #expect(out[0] == .allow(["all-staff-read"]))
        #expect(out[1] == .deny(["main.cedar#1"]))
        #expect(out[2] == .noMatch)
        #expect(out[3] == .allow(["main.cedar#2"]))
        guard case .deny = out[4] else {
            Issue.record("an unknown resource type must deny")
            return
        }
        let c = CedarGatewayPolicy.context(ctx)
        #expect(c["tiny"] == .string("1e-07"))
        #expect(c["arguments"] == .record(["force": .bool(false)]))
        let p = policy.principalEntity(who)
        #expect(p.ancestors == [EntityUID(type: "Group", id: "eng"), EntityUID(type: "Group", id: "staff"),
                                EntityUID(type: "Group", id: "all")])
    }

    @Test func failedPoliciesDenyWithReasons() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pol = try write(dir, "p.cedar", "permit(principal, action, resource) when { principal.missing };")
        let policy = try CedarGatewayPolicy.load(policyFiles: [pol], entitiesFile: nil)
        let out = policy.decide(principal: .init(id: "bob"), queries: [
            .init(action: "tools/call", resourceType: "tool", name: "t", backend: "b")
        ], context: [:])
        guard case .deny(let reasons) = out[0] else {
            Issue.record("expected a deny, got \(out[0])")
            return
        }
        #expect(reasons.count == 1)
        #expect(reasons[0].hasPrefix("p.cedar#0: error: "))
    }

    @Test func loadErrorsNameFileLineAndColumn() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try write(dir, "good.cedar", "permit(principal, action, resource);")
        let bad = try write(dir, "bad.cedar", "permit(principal, action, resource);\nforbid(principal, action resource);")
        do {
            _ = try CedarGatewayPolicy.load(policyFiles: [good, bad], entitiesFile: nil)
            Issue.record("a bad policy file must not load")
        } catch {
            #expect(error.description.hasPrefix("\(bad):2:26: "))
        }
        let ents = try write(dir, "e.json", "[\n  {\"uid\": }\n]")
        do {
            _ = try CedarGatewayPolicy.load(policyFiles: [good], entitiesFile: ents)
            Issue.record("bad entity JSON must not load")
        } catch {
            #expect(error.description.hasPrefix("\(ents):2:11: "))
        }
        // After the file is fixed, it loads again: the plugin's reload keeps the old set until then.
        _ = try write(dir, "bad.cedar", "forbid(principal, action, resource);")
        let fixed = try CedarGatewayPolicy.load(policyFiles: [good, bad], entitiesFile: nil)
        #expect(fixed.policySet.ids == ["good.cedar#0", "bad.cedar#0"])
    }

    @Test func schemaChecksTypesAndActions() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let schema = try write(dir, "schema.json", """
            {"": {"entityTypes": {"User": {}, "Group": {}, "Tool": {}},
                  "actions": {"tools/call": {}, "tools/list": {}}}}
            """)
        let ok = try write(dir, "ok.cedar",
                           "permit(principal in Group::\"eng\", action == Action::\"tools/call\", resource is Tool);")
        _ = try CedarGatewayPolicy.load(policyFiles: [ok], entitiesFile: nil, schemaFile: schema)
        let bad = try write(dir, "bad.cedar", "\n  permit(principal, action == Action::\"tools/delete\", resource);")
        do {
            _ = try CedarGatewayPolicy.load(policyFiles: [bad], entitiesFile: nil, schemaFile: schema)
            Issue.record("an undeclared action must be refused")
        } catch {
            #expect(error.description.hasPrefix("\(bad):2:3: "))
            #expect(error.message.contains("tools/delete"))
        }
    }
}

@Suite struct SpeedTests {
    /// Prints decisions per second for ~50 policies over a 3-level group hierarchy and a 10,000-query batch.
    @Test func measureBatch() throws {
        var text = ""
        for i in 0..<50 {
            switch i % 5 {
            case 0: text += "permit(principal in Group::\"team\(i)\", action == Action::\"tools/call\", resource is Tool) when { resource.backend == \"b\(i % 7)\" };\n"
            case 1: text += "forbid(principal, action, resource == Tool::\"danger\(i)\");\n"
            case 2: text += "permit(principal in Group::\"org\(i % 3)\", action in [Action::\"tools/list\", Action::\"tools/call\"], resource) when { resource.name like \"read_*\" };\n"
            case 3: text += "permit(principal, action, resource in Backend::\"b\(i % 7)\") when { principal.groups.contains(\"team\(i)\") && context.transport == \"http\" };\n"
            default: text += "forbid(principal, action, resource) unless { principal has id };\n"
            }
        }
        var ents: [JSON] = []
        for t in 0..<50 {
            ents.append(["uid": ["type": "Group", "id": .string("team\(t)")], "attrs": [:],
                         "parents": [["type": "Group", "id": .string("org\(t % 3)")]]])
        }
        for o in 0..<3 {
            ents.append(["uid": ["type": "Group", "id": .string("org\(o)")], "attrs": [:],
                         "parents": [["type": "Group", "id": "company"]]])
        }
        let set = try CedarPolicySet(text: text)
        let policy = CedarGatewayPolicy(policySet: set, entities: try EntityStore.fromJSON(.array(ents)))
        let queries = (0..<10_000).map {
            CedarGatewayPolicy.Query(action: "tools/list", resourceType: "tool", name: $0 % 2 == 0 ? "read_\($0)" : "w\($0)",
                                     backend: "b\($0 % 7)")
        }
        let who = CedarGatewayPolicy.Principal(id: "alice", groups: ["team10", "team20"], tenant: "acme")
        let ctx: JSONObject = ["transport": "http", "peer": "127.0.0.1", "time": "2026-11-25T22:40:01.123Z"]
        _ = policy.decide(principal: who, queries: Array(queries.prefix(100)), context: ctx)
        let start = ContinuousClock.now
        let out = policy.decide(principal: who, queries: queries, context: ctx)
        let elapsed = ContinuousClock.now - start
        let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("cedar speed: 50 policies, 10,000-query batch in \(secs * 1000) ms = \(Int(Double(out.count) / secs)) decisions/s")
    }
}
