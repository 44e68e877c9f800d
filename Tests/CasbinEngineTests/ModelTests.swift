import Testing
@testable import CasbinEngine

let aclModel = """
    [request_definition]
    r = sub, obj, act

    [policy_definition]
    p = sub, obj, act

    [policy_effect]
    e = some(where (p.eft == allow))

    [matchers]
    m = r.sub == p.sub && r.obj == p.obj && r.act == p.act
    """

func loadError(_ model: String, _ policy: String = "") -> CasbinLoadError? {
    do {
        _ = try CasbinEnforcer(modelText: model, policyText: policy)
        return nil
    } catch {
        return error
    }
}

@Suite struct ModelTests {
    @Test func parsesSectionsCommentsAndContinuations() throws {
        let text = """
            # comment
            [request_definition]
            r = sub, obj, act
            ; other comment
            [policy_definition]
            p = sub, obj, act, eft
            p2 = sub, act
            [role_definition]
            g = _, _
            g2 = _, _, _
            [policy_effect]
            e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
            [matchers]
            m = g(r.sub, p.sub) && \\
                r.obj == p.obj # trailing comment
            """
        let m = try CasbinModel(text: text)
        #expect(m.requests["r"] == ["sub", "obj", "act"])
        #expect(m.policies["p"] == ["sub", "obj", "act", "eft"])
        #expect(m.policies["p2"] == ["sub", "act"])
        #expect(m.roles == ["g": 2, "g2": 3])
        #expect(m.effects["e"] == .allowAndDeny)
        #expect(m.matchers["m"]?.value == "g(r.sub, p.sub) && r.obj == p.obj")
    }

    @Test func windowsLineEndings() throws {
        let e = try CasbinEnforcer(modelText: aclModel.replacingOccurrences(of: "\n", with: "\r\n"),
                                   policyText: "p, alice, data1, read\r\np, bob, data2, write\r\n")
        #expect(try e.enforce(req("bob", "data2", "write")).explain == ["bob", "data2", "write"])
        let bad = aclModel.replacingOccurrences(of: "\n", with: "\r\n").replacingOccurrences(of: "p = sub", with: "p sub")
        #expect(loadError(bad)?.line == 5)
    }

    @Test func missingEqualsHasLineAndColumn() {
        let e = loadError(aclModel.replacingOccurrences(of: "p = sub", with: "  p sub"))
        #expect(e?.description.hasPrefix("model:5:3:") == true)
    }

    @Test func unknownSectionIsAnError() {
        let e = loadError("[matcher]\nm = true\n" + aclModel)
        #expect(e?.line == 1)
        #expect(e?.message.contains("unknown section") == true)
    }

    @Test func unsupportedEffectPointsAtIt() {
        let e = loadError(aclModel.replacingOccurrences(of: "== allow", with: "== maybe"))
        #expect(e?.line == 8)
        #expect(e?.column == 5)
    }

    @Test func matcherErrorOnContinuationLine() {
        let model = aclModel.replacingOccurrences(
            of: "m = r.sub == p.sub && r.obj == p.obj && r.act == p.act",
            with: "m = r.sub == p.sub && \\\n    r.obj == p.nope")
        let e = loadError(model)
        #expect(e?.line == 12)
        #expect(e?.column == 14)
        #expect(e?.message.contains("no field `nope`") == true)
    }

    @Test func unknownFunctionAndBadSyntax() {
        let m1 = aclModel.replacingOccurrences(of: "r.act == p.act", with: "frob(r.act)")
        #expect(loadError(m1)?.message.contains("unknown function `frob`") == true)
        let m2 = aclModel.replacingOccurrences(of: "r.act == p.act", with: "(r.act == p.act")
        #expect(loadError(m2)?.message.contains("expected `)`") == true)
        let m3 = aclModel.replacingOccurrences(of: "r.act == p.act", with: "r.act == 'x")
        #expect(loadError(m3)?.message.contains("unterminated string") == true)
        let deep = String(repeating: "(", count: 200) + "1" + String(repeating: ")", count: 200)
        let m4 = aclModel.replacingOccurrences(of: "r.act == p.act", with: deep)
        #expect(loadError(m4)?.message.contains("nested too deeply") == true)
        let nots = aclModel.replacingOccurrences(of: "r.act == p.act", with: String(repeating: "!", count: 500) + "1")
        #expect(loadError(nots)?.message.contains("nested too deeply") == true)
    }

    @Test func missingSectionIsAnError() {
        let e = loadError(aclModel.components(separatedBy: "[matchers]")[0])
        #expect(e?.message.contains("m = ") == true)
    }
}

@Suite struct PolicyCSVTests {
    @Test func wrongFieldCountPointsAtTheField() {
        let e = loadError(aclModel, "p, alice, data1\n")
        #expect(e?.description.hasPrefix("policy:1:11:") == true)
    }

    @Test func unknownTypeAndUnterminatedQuote() {
        #expect(loadError(aclModel, "\n# x\nq, a, b, c\n")?.description.hasPrefix("policy:3:1:") == true)
        #expect(loadError(aclModel, "p, a, \"b, c\n")?.description.hasPrefix("policy:1:7:") == true)
        #expect(loadError(aclModel, "p, a, b), c\n")?.message.contains("unbalanced") == true)
    }

    @Test func quotedFieldsCommentsAndParens() throws {
        let lines = try PolicyCSV.parse("# c\n\n  p, \"a, b\" , \"say \"\"hi\"\"\", f(x, y)  \n", file: "policy")
        #expect(lines.count == 1)
        #expect(lines[0].fields == ["p", "a, b", "say \"hi\"", "f(x, y)"])
        #expect(lines[0].line == 3)
        #expect(lines[0].columns == [3, 6, 15, 29])
    }
}
