import MCPGJSON
import Testing

@testable import RegoEngine

private func eval(_ body: String, input: JSON? = nil, data: JSON? = nil, query: String = "data.t.x") throws
    -> RegoResult
{
    let policy = try RegoPolicy(modules: [(name: "t.rego", text: "package t\nimport rego.v1\n" + body)], data: data)
    return policy.evaluate(try policy.prepare(query), input: input.map(Value.init(json:)))
}

@Test func completeRulesDefaultsAndElse() throws {
    #expect(try eval("default x := false\nx if input.a == 1", input: ["a": 1]) == .value(.bool(true)))
    #expect(try eval("default x := false\nx if input.a == 1", input: ["a": 2]) == .value(.bool(false)))
    #expect(try eval("x if input.a == 1", input: ["a": 2]) == .undefined)
    let chain = "x := 1 if input.a == 1\nelse := 2 if input.a == 2\nelse := 3"
    #expect(try eval(chain, input: ["a": 2]) == .value(.int(2)))
    #expect(try eval(chain, input: ["a": 7]) == .value(.int(3)))
}

@Test func conflictingCompleteValuesAreAnError() throws {
    guard case .error(let e) = try eval("x := 1 if true\nx := 2 if input.a", input: ["a": true]) else {
        Issue.record("expected an error")
        return
    }
    #expect(e.contains("complete rules must not produce multiple outputs"))
    #expect(try eval("x := 1 if true\nx := 1 if input.a", input: ["a": true]) == .value(.int(1)))
}

@Test func partialRulesAndIteration() throws {
    #expect(
        try eval("x contains v if { some v in input.a; v > 1 }", input: ["a": [3, 1, 2, 3]])
            == .value(.set([.int(2), .int(3)])))
    let obj = try eval("x[k] := v * 10 if { some k, v in input.o }", input: ["o": ["b": 2, "a": 1]])
    #expect(obj == .value(.object(RegoObject(pairs: [(.string("a"), .int(10)), (.string("b"), .int(20))]))))
    #expect(try eval("x := [i | input.a[i] > 1]", input: ["a": [1, 5, 0, 7]]) == .value(.array([.int(1), .int(3)])))
}

@Test func bodiesAreReorderedForSafety() throws {
    #expect(try eval("x := y if { y > 1; y = input.a }", input: ["a": 5]) == .value(.int(5)))
}

@Test func functionsWithMultipleDefinitions() throws {
    let body = "f(a) := \"big\" if a > 10\nf(a) := \"small\" if a <= 10\nx := [f(1), f(11)]"
    #expect(try eval(body) == .value(.array([.string("small"), .string("big")])))
    guard case .error = try eval("f(a) := 1 if a > 0\nf(a) := 2 if a > 5\nx := f(7)") else {
        Issue.record("expected a conflict")
        return
    }
}

@Test func builtinTypeErrorsAreUndefined() throws {
    #expect(try eval("x := input.a + 1", input: ["a": "s"]) == .undefined)
    #expect(try eval("x := 1 / 0") == .undefined)
    #expect(try eval("x := count(input.a)", input: ["a": 5]) == .undefined)
}

@Test func withReplacesInputAndData() throws {
    #expect(try eval("y := input.a\nx := v if { v := y with input as {\"a\": 5} }", input: ["a": 1]) == .value(.int(5)))
    #expect(
        try eval("y := data.cfg.n\nx := v if { v := y with data.cfg.n as 3 }", data: ["cfg": ["n": 1]])
            == .value(.int(3)))
}

@Test func netCIDRContainsFollowsOPA() throws {
    #expect(try eval("x := net.cidr_contains(\"10.0.0.0/8\", \"10.9.8.7\")") == .value(.bool(true)))
    #expect(try eval("x := net.cidr_contains(\"10.0.0.0/8\", \"10.2.0.0/16\")") == .value(.bool(true)))
    #expect(try eval("x := net.cidr_contains(\"10.1.0.0/16\", \"10.0.0.0/8\")") == .value(.bool(false)))
    #expect(try eval("x := net.cidr_contains(\"fd00::/8\", \"fd12::1\")") == .value(.bool(true)))
    #expect(try eval("x := net.cidr_contains(\"bad\", \"10.0.0.1\")") == .undefined)
}

@Test func timeBuiltins() throws {
    #expect(try eval("x := time.parse_rfc3339_ns(\"1970-01-02T00:00:00Z\")") == .value(.int(86_400_000_000_000)))
    #expect(
        try eval("x := time.date(time.parse_rfc3339_ns(\"2024-02-29T12:00:00+00:00\"))")
            == .value(.array([.int(2024), .int(2), .int(29)])))
    #expect(try eval("x := time.weekday(0)") == .value(.string("Thursday")))
}

@Test func sessionsShareOnlyWhatTheInputsShare() throws {
    let policy = try RegoPolicy(modules: [
        (name: "t.rego", text: "package t\nimport rego.v1\nadmin if \"admins\" in input.principal.groups\n"
            + "x := [admin, input.resource]\n")
    ])
    let q = try policy.prepare("data.t.x")
    let session = RegoSession(policy: policy, sharedInputKeys: ["principal"])
    let p = Value(json: ["groups": ["admins"]])
    for r in ["a", "b"] {
        let input = Value.object(RegoObject(pairs: [(.string("principal"), p), (.string("resource"), .string(r))]))
        #expect(session.evaluate(q, input: input) == .value(.array([.bool(true), .string(r)])))
    }
}

@Test func equalityGuardsSkipOnlyDefinitionsThatCannotHold() throws {
    let body = """
        x := "a" if input.k == "a"
        x := "b" if { input.k == "b"; input.n > 1 }
        y := 1 if input.k == "z"
        else := 2
        s contains v if { input.k == "a"; some v in input.l }
        s contains 0 if input.k == "b"
        """
    let both: JSON = ["k": "b", "n": 2, "l": [7, 8]]
    #expect(try eval(body, input: both) == .value(.string("b")))
    #expect(try eval(body, input: ["k": "b", "n": 0]) == .undefined)
    #expect(try eval(body, input: both, query: "data.t.y") == .value(.int(2)))
    #expect(try eval(body, input: ["k": "a", "l": [7, 8]], query: "data.t.s") == .value(.set([.int(7), .int(8)])))
    #expect(try eval(body, input: both, query: "data.t.s") == .value(.set([.int(0)])))
}
