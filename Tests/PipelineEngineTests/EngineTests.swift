import MCPGJSON
import PipelineEngine
import Synchronization
import Testing

/// A stand-in for the gateway: tools as closures, every call recorded, concurrency measured.
final class FakeGateway: ToolCaller {
    typealias Tool = @Sendable (JSONObject) async throws -> JSON
    let tools: [String: Tool]
    let calls = Mutex<[(String, JSONObject)]>([])
    let inFlight = Mutex((now: 0, peak: 0))

    init(_ tools: [String: Tool]) { self.tools = tools }

    func callTool(name: String, arguments: JSONObject) async throws -> JSON {
        calls.withLock { $0.append((name, arguments)) }
        inFlight.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
        defer { inFlight.withLock { $0.now -= 1 } }
        guard let tool = tools[name] else { throw CallFailure(code: -32602, message: "Unknown tool: \(name)") }
        return try await tool(arguments)
    }

    var callCount: Int { calls.withLock { $0.count } }
    var peak: Int { inFlight.withLock { $0.peak } }

    static func text(_ s: String, error: Bool = false) -> JSON {
        error ? ["content": [["type": "text", "text": .string(s)]], "isError": true]
            : ["content": [["type": "text", "text": .string(s)]]]
    }

    /// `echo` (text = message), `weather` (structured), `fail` (isError), `denied` (-32003), `slow` (sleeps `ms`).
    static func standard() -> FakeGateway {
        FakeGateway([
            "echo": { a in text(a["message"]?.stringValue ?? a["message"]?.text ?? "") },
            "weather": { a in
                let city = a["city"] ?? "?"
                return ["content": [["type": "text", "text": "ok"]],
                        "structuredContent": ["city": city, "temperature_c": 21, "conditions": "sunny"]]
            },
            "fail": { _ in text("it broke", error: true) },
            "denied": { _ in throw CallFailure(code: -32003, message: "denied by policy") },
            "slow": { a in
                try await Task.sleep(for: .milliseconds(Int(a["ms"]?.intValue ?? 100)))
                return text("slow done")
            },
        ])
    }
}

func json(_ s: String) -> JSON { try! JSON.parse(Array(s.utf8)) }

/// A one-tool config from its steps (JSON text) and optional input properties.
func config(_ steps: String, properties: String = #"{"city": {"type": "string"}, "n": {"type": "integer"}, "items": {"type": "array"}, "message": {"type": "string"}}"#,
            output: String? = nil, limits: String? = nil) -> JSON {
    var tool = #"{"name": "t", "inputSchema": {"type": "object", "properties": \#(properties)}, "steps": \#(steps)"#
    if let output { tool += #", "outputSchema": \#(output)"# }
    tool += "}"
    return json(#"{"tools": [\#(tool)]"# + (limits.map { #", "limits": \#($0)"# } ?? "") + "}")
}

func run(_ steps: String, args: JSON = [:], gateway: FakeGateway = .standard(), output: String? = nil,
         limits: String? = nil, cache: CacheStore = CacheStore(), principal: String = "alice") async throws -> JSON {
    let program = try Program(config: config(steps, output: output, limits: limits))
    let runner = Runner(tool: program.tools[0], limits: program.limits, caller: gateway, cache: cache, principal: principal)
    return try await runner.run(arguments: args.objectValue ?? [:])
}

func text(_ result: JSON) -> String { result["content"]?[0]?["text"]?.stringValue ?? "" }
func configError(_ steps: String, properties: String? = nil) -> ConfigError? {
    do {
        _ = try Program(config: properties.map { config(steps, properties: $0) } ?? config(steps))
        return nil
    } catch { return error }
}

@Suite struct StepKindTests {
    @Test func callTemplatesArgumentsAndReturnUsesTheResult() async throws {
        let g = FakeGateway.standard()
        let r = try await run(#"""
            [{"call": "weather", "id": "w", "arguments": {"city": "{{ args.city }}"}},
             {"return": {"text": "{{ steps.w.result.city }} is {{steps.w.result.conditions}}", "structured": "{{ steps.w.result }}"}}]
            """#, args: ["city": "Paris"], gateway: g)
        #expect(text(r) == "Paris is sunny")
        #expect(r["structuredContent"]?["temperature_c"] == 21)
        #expect(r["isError"] == nil)
        #expect(g.calls.withLock { $0[0].1["city"] } == "Paris")
    }

    @Test func aLonePlaceholderKeepsTheValueType() async throws {
        let g = FakeGateway(["echo": { a in ["content": [], "structuredContent": .object(a)] }])
        let r = try await run(#"[{"call": "echo", "arguments": {"n": "{{args.n}}", "s": "n={{args.n}}", "missing": "{{args.city}}"}}]"#,
                              args: ["n": 5], gateway: g)
        #expect(r["structuredContent"] == ["n": 5, "s": "n=5", "missing": nil])
    }

    @Test func sequenceSetAndTemplate() async throws {
        let r = try await run(#"""
            [{"sequence": [{"set": {"greeting": "hello", "n": "{{ args.n }}"}},
                           {"template": {"msg": "{{vars.greeting}} {{args.city}}", "count": "{{vars.n}}"}, "into": "out"}]},
             {"return": {"structured": "{{vars.out}}"}}]
            """#, args: ["city": "Oslo", "n": 3])
        #expect(r["structuredContent"] == ["msg": "hello Oslo", "count": 3])
        #expect(text(r) == #"{"msg":"hello Oslo","count":3}"#)
    }

    @Test func selectByPointerAndByDottedPath() async throws {
        let r = try await run(#"""
            [{"set": {"doc": {"a": {"list": [{"name": "x"}, {"name": "y"}], "k/ey": 1}}}},
             {"select": "{{vars.doc}}", "path": "/a/list/1/name", "into": "p"},
             {"select": "{{vars.doc}}", "path": "$.a.list[-1].name", "into": "d"},
             {"select": "{{vars.doc}}", "path": "/a/k~1ey", "into": "e"},
             {"select": "{{vars.doc}}", "path": "a.nothing", "default": "none", "into": "m"},
             {"return": {"text": "{{vars.p}} {{vars.d}} {{vars.e}} {{vars.m}}"}}]
            """#)
        #expect(text(r) == "y y 1 none")
    }

    @Test func parallelKeepsItsConcurrencyLimitAndBranchOrder() async throws {
        let g = FakeGateway.standard()
        let r = try await run(#"""
            [{"parallel": [{"call": "slow", "arguments": {"ms": 60}, "id": "a"},
                           {"call": "slow", "arguments": {"ms": 10}, "id": "b"},
                           {"call": "echo", "arguments": {"message": "third"}, "id": "c"},
                           {"call": "slow", "arguments": {"ms": 30}}], "concurrency": 2, "into": "all"},
             {"return": {"text": "{{steps.c.result}} {{vars.all[0]}} {{vars.all[2]}}"}}]
            """#, gateway: g)
        #expect(text(r) == "third slow done third")
        #expect(g.peak == 2)
        #expect(g.callCount == 4)
    }

    @Test func mapOverAListWithConcurrency() async throws {
        let g = FakeGateway.standard()
        let r = try await run(#"""
            [{"map": "{{args.items}}", "concurrency": 3, "do": [
                {"call": "weather", "arguments": {"city": "{{item}}"}, "id": "w"},
                {"template": "{{index}}:{{steps.w.result.city}}", "id": "line"}], "into": "lines"},
             {"return": {"structured": {"lines": "{{vars.lines}}"}}}]
            """#, args: ["items": ["A", "B", "C", "D", "E"]], gateway: g)
        #expect(r["structuredContent"]?["lines"] == ["0:A", "1:B", "2:C", "3:D", "4:E"])
        #expect(g.peak <= 3)
        #expect(g.callCount == 5)
    }

    @Test func mapOverANonListIsATypeError() async throws {
        let r = try await run(#"[{"map": "{{args.city}}", "do": {"delay": 0}}]"#, args: ["city": "x"])
        #expect(r["isError"] == true)
        #expect(text(r).contains("/tools/0/steps/0"))
        #expect(text(r).contains("expected a list, got string"))
    }

    @Test(arguments: [
        (#"{"left": "{{item.n}}", "op": "==", "right": 2}"#, [2]),
        (#"{"left": "{{item.n}}", "op": "!=", "right": 2}"#, [1, 3, 10]),
        (#"{"left": "{{item.n}}", "op": "<", "right": 3}"#, [1, 2]),
        (#"{"left": "{{item.n}}", "op": "<=", "right": 3}"#, [1, 2, 3]),
        (#"{"left": "{{item.n}}", "op": ">", "right": 2.5}"#, [3, 10]),
        (#"{"left": "{{item.n}}", "op": ">=", "right": 3}"#, [3, 10]),
        (#"{"left": "{{item.tag}}", "op": "exists"}"#, [1, 10]),
        (#"{"left": "{{item.tag}}", "op": "contains", "right": "ol"}"#, [10]),
        (#"{"left": "{{item.tags}}", "op": "contains", "right": "x"}"#, [2]),
        (#"{"any": [{"left": "{{item.n}}", "op": "==", "right": 1}, {"not": {"left": "{{index}}", "op": "<", "right": 3}}]}"#, [1, 10]),
        (#"{"all": [{"left": "{{item.n}}", "op": ">", "right": 1}, {"left": "{{item.n}}", "op": "<", "right": 10}]}"#, [2, 3]),
    ] as [(String, [Int64])])
    func filterConditions(_ condition: String, _ kept: [Int64]) async throws {
        let r = try await run(#"""
            [{"set": {"list": [{"n": 1, "tag": "a"}, {"n": 2, "tags": ["x"]}, {"n": 3}, {"n": 10, "tag": "gold"}]}},
             {"filter": "{{vars.list}}", "where": \#(condition), "into": "kept"},
             {"map": "{{vars.kept}}", "do": {"template": "{{item.n}}", "id": "n"}, "into": "ns"},
             {"return": {"structured": {"ns": "{{vars.ns}}"}}}]
            """#)
        #expect(r["structuredContent"]?["ns"] == .array(kept.map { .int($0) }), "\(condition)")
    }

    @Test func comparisonsOfMixedTypesAreFalseAndStringsCompareByScalars() async throws {
        let r = try await run(#"""
            [{"set": {"l": [{"v": "b"}, {"v": 2}, {"v": "a"}, {"v": null}]}},
             {"filter": "{{vars.l}}", "where": {"left": "{{item.v}}", "op": ">", "right": "a"}, "into": "k"},
             {"return": {"structured": {"k": "{{vars.k}}"}}}]
            """#)
        #expect(r["structuredContent"]?["k"] == [["v": "b"]])
    }

    @Test(arguments: [("gold", "G"), ("silver", "S"), ("other", "D")])
    func switchPicksTheFirstMatchingCaseElseTheDefault(_ plan: String, _ expected: String) async throws {
        let r = try await run(#"""
            [{"switch": [{"when": {"left": "{{args.city}}", "op": "==", "right": "gold"}, "do": {"set": {"x": "G"}}},
                         {"when": {"left": "{{args.city}}", "op": "contains", "right": "silv"}, "do": [{"set": {"x": "S"}}]}],
              "default": {"set": {"x": "D"}}},
             {"return": {"text": "{{vars.x}}"}}]
            """#, args: ["city": .string(plan)])
        #expect(text(r) == expected)
    }

    @Test func mergeObjectsShallowDeepAndArrays() async throws {
        let r = try await run(#"""
            [{"set": {"a": {"x": 1, "o": {"p": 1, "q": 1}}, "b": {"y": 2, "o": {"q": 2}}, "l1": [1], "l2": [2, 3]}},
             {"merge": ["{{vars.a}}", "{{vars.b}}"], "into": "shallow"},
             {"merge": ["{{vars.a}}", "{{vars.b}}"], "deep": true, "into": "deep"},
             {"merge": ["{{vars.l1}}", "{{vars.l2}}"], "into": "list"},
             {"return": {"structured": {"shallow": "{{vars.shallow}}", "deep": "{{vars.deep}}", "list": "{{vars.list}}"}}}]
            """#)
        #expect(r["structuredContent"]?["shallow"] == ["x": 1, "y": 2, "o": ["q": 2]])
        #expect(r["structuredContent"]?["deep"] == ["x": 1, "y": 2, "o": ["p": 1, "q": 2]])
        #expect(r["structuredContent"]?["list"] == [1, 2, 3])

        let bad = try await run(#"[{"set": {"a": {"x": 1}}}, {"merge": ["{{vars.a}}", [1]]}]"#)
        #expect(bad["isError"] == true)
        #expect(text(bad).contains("(type)"))
    }

    @Test func validateNamesThePathThatFailed() async throws {
        let steps = #"""
            [{"call": "weather", "arguments": {"city": "{{args.city}}"}, "id": "w"},
             {"validate": "{{steps.w.result}}", "schema": {"type": "object", "required": ["city", "wind"],
                "properties": {"city": {"type": "string", "minLength": 3, "enum": ["Paris", "Rome"]},
                               "temperature_c": {"type": "number", "maximum": 15}}}}]
            """#
        let r = try await run(steps, args: ["city": "Oz"])
        #expect(r["isError"] == true)
        let t = text(r)
        #expect(t.contains("(validation)"))
        #expect(t.contains("/wind: required"))
        #expect(t.contains("/city: must be at least 3 characters"))
        #expect(t.contains("/city: must be one of"))
        #expect(t.contains("/temperature_c: must be <= 15"))
    }

    @Test func validatePassesAValueThrough() async throws {
        let r = try await run(#"""
            [{"set": {"v": {"tags": ["a", "b"], "n": 3}}},
             {"validate": "{{vars.v}}", "schema": {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}, "n": {"type": "integer", "minimum": 1}}}, "into": "ok"},
             {"return": {"structured": "{{vars.ok}}"}}]
            """#)
        #expect(r["structuredContent"]?["n"] == 3)
    }

    @Test func retryTriesAgainWithBackoffThenSucceeds() async throws {
        let attempts = Mutex(0)
        let g = FakeGateway(["flaky": { _ in
            let n = attempts.withLock { $0 += 1; return $0 }
            return n < 3 ? FakeGateway.text("try again", error: true) : FakeGateway.text("fine on \(n)")
        }])
        let start = ContinuousClock.now
        let r = try await run(#"""
            [{"retry": {"call": "flaky", "id": "f"}, "attempts": 4, "backoff_ms": 20, "factor": 2, "id": "r"},
             {"return": {"text": "{{steps.f.result}} after {{steps.r.attempts}}"}}]
            """#, gateway: g)
        #expect(text(r) == "fine on 3 after 3")
        #expect(ContinuousClock.now - start >= .milliseconds(60))  // 20 + 40
    }

    @Test func retryGivesUpAfterItsAttemptsAndSkipsKindsNotListed() async throws {
        let g = FakeGateway.standard()
        let r = try await run(#"[{"retry": {"call": "fail"}, "attempts": 3, "backoff_ms": 0}]"#, gateway: g)
        #expect(r["isError"] == true)
        #expect(g.callCount == 3)

        let g2 = FakeGateway.standard()
        let denied = try await run(#"[{"retry": {"call": "denied"}, "attempts": 3, "backoff_ms": 0}]"#, gateway: g2)
        #expect(denied["isError"] == true)
        #expect(g2.callCount == 1)  // denials are not retried unless `on` lists them
    }

    @Test func timeoutStopsASlowStep() async throws {
        let start = ContinuousClock.now
        let r = try await run(#"[{"timeout": 50, "do": {"call": "slow", "arguments": {"ms": 600000}}}]"#)
        #expect(r["isError"] == true)
        #expect(text(r).contains("(timeout)"))
        // Far below the step's own 600 s: the timeout ended it. The bound is loose because a loaded test run (other
        // suites holding the cooperative threads) has delayed this 50 ms timeout by more than 30 s.
        #expect(ContinuousClock.now - start < .seconds(120))

        let fast = try await run(#"[{"timeout": 2000, "do": {"call": "slow", "arguments": {"ms": 5}, "id": "s"}}, {"return": {"text": "{{steps.s.result}}"}}]"#)
        #expect(text(fast) == "slow done")
    }

    @Test func fallbackRunsItsCatchWithTheError() async throws {
        let r = try await run(#"""
            [{"fallback": [{"call": "fail", "id": "f"}], "catch": {"set": {"why": "{{error.kind}}: {{error.message}}"}}},
             {"return": {"text": "{{vars.why}}"}}]
            """#)
        #expect(text(r) == #"tool_error: "fail" answered with an error: it broke"#)
        #expect(r["isError"] == nil)

        let ok = try await run(#"[{"fallback": {"call": "echo", "arguments": {"message": "fine"}}, "catch": {"set": {"x": 1}}}]"#)
        #expect(text(ok) == "fine")
    }

    @Test func cacheReusesAResultPerCallerUntilItExpires() async throws {
        let g = FakeGateway.standard()
        let store = CacheStore()
        let steps = #"""
            [{"cache": {"call": "weather", "arguments": {"city": "{{args.city}}"}, "id": "w"}, "key": "w:{{args.city}}", "ttl_ms": 300, "id": "c"},
             {"return": {"text": "{{steps.w.result.city}} cached={{steps.c.cached}}"}}]
            """#
        #expect(text(try await run(steps, args: ["city": "Rome"], gateway: g, cache: store)) == "Rome cached=false")
        #expect(text(try await run(steps, args: ["city": "Rome"], gateway: g, cache: store)) == "Rome cached=true")
        #expect(g.callCount == 1)
        // Another caller does not see alice's entry.
        _ = try await run(steps, args: ["city": "Rome"], gateway: g, cache: store, principal: "bob")
        #expect(g.callCount == 2)
        _ = try await run(steps, args: ["city": "Oslo"], gateway: g, cache: store)
        #expect(g.callCount == 3)
        try await Task.sleep(for: .milliseconds(350))
        #expect(text(try await run(steps, args: ["city": "Rome"], gateway: g, cache: store)) == "Rome cached=false")
        #expect(g.callCount == 4)
    }

    @Test func cacheKeepsAtMostMaxEntries() async throws {
        let store = CacheStore()
        let steps = #"[{"cache": {"call": "echo", "arguments": {"message": "{{args.city}}"}}, "key": "{{args.city}}", "ttl_ms": 60000, "max_entries": 2}]"#
        for city in ["a", "b", "c", "d"] { _ = try await run(steps, args: ["city": .string(city)], cache: store) }
        #expect(store.count(0) == 2)
    }

    @Test func delayWaits() async throws {
        let start = ContinuousClock.now
        let r = try await run(#"[{"delay": 80}, {"return": {"text": "done"}}]"#)
        #expect(text(r) == "done")
        #expect(ContinuousClock.now - start >= .milliseconds(80))
    }

    @Test func foreachRunsInOrderAndItsEffectsStay() async throws {
        let g = FakeGateway.standard()
        let r = try await run(#"""
            [{"set": {"acc": []}},
             {"foreach": "{{args.items}}", "do": [
                {"call": "echo", "arguments": {"message": "{{index}}-{{item}}"}, "id": "e"},
                {"merge": ["{{vars.acc}}", ["{{steps.e.result}}"]], "into": "acc"}]},
             {"return": {"structured": {"acc": "{{vars.acc}}"}}}]
            """#, args: ["items": ["x", "y", "z"]], gateway: g)
        #expect(r["structuredContent"]?["acc"] == ["0-x", "1-y", "2-z"])
        #expect(g.peak == 1)
    }

    @Test func returnEndsTheProgramEarlyAndCanBeAnError() async throws {
        let g = FakeGateway.standard()
        let r = try await run(#"""
            [{"switch": [{"when": {"left": "{{args.city}}", "op": "exists"}, "do": {"return": {"text": "no {{args.city}}", "is_error": true}}}]},
             {"call": "echo", "arguments": {"message": "never"}}]
            """#, args: ["city": "Atlantis"], gateway: g)
        #expect(r["isError"] == true)
        #expect(text(r) == "no Atlantis")
        #expect(g.callCount == 0)
    }

    @Test func withoutReturnTheLastValueIsTheResult() async throws {
        let r = try await run(#"[{"call": "weather", "arguments": {"city": "Rome"}}]"#)
        #expect(r["structuredContent"]?["city"] == "Rome")
        let t = try await run(#"[{"call": "echo", "arguments": {"message": "plain"}}]"#)
        #expect(text(t) == "plain")
        #expect(t["structuredContent"] == nil)
    }

    @Test func theOutputSchemaIsChecked() async throws {
        let output = #"{"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}"#
        let good = try await run(#"[{"return": {"structured": {"city": "Rome"}}}]"#, output: output)
        #expect(good["isError"] == nil)
        let bad = try await run(#"[{"return": {"structured": {"town": "Rome"}}}]"#, output: output)
        #expect(bad["isError"] == true)
        #expect(text(bad).contains("/city: required"))
        let none = try await run(#"[{"return": {"text": "Rome"}}]"#, output: output)
        #expect(none["isError"] == true)
    }
}

@Suite struct StepDetailTests {
    @Test func setValuesSeeTheVariablesAsTheyWereBefore() async throws {
        let r = try await run(#"[{"set": {"a": 1}}, {"set": {"a": 2, "b": "{{vars.a}}"}}, {"return": {"text": "{{vars.a}} {{vars.b}}"}}]"#)
        #expect(text(r) == "2 1")
    }

    @Test func parallelBranchesVariablesAreMergedAfter() async throws {
        let r = try await run(#"""
            [{"parallel": [{"set": {"x": "from0"}}, {"set": {"y": "from1"}}, {"template": "t", "into": "z"}]},
             {"return": {"text": "{{vars.x}} {{vars.y}} {{vars.z}}"}}]
            """#)
        #expect(text(r) == "from0 from1 t")
    }

    @Test func retryRetriesDenialsWhenAsked() async throws {
        let g = FakeGateway.standard()
        let r = try await run(#"[{"retry": {"call": "denied"}, "attempts": 2, "backoff_ms": 0, "on": ["denied"]}]"#, gateway: g)
        #expect(r["isError"] == true)
        #expect(g.callCount == 2)
    }

    @Test func allowErrorKeepsAnErrorResult() async throws {
        let r = try await run(#"""
            [{"call": "fail", "id": "f", "allow_error": true},
             {"return": {"text": "{{steps.f.is_error}}: {{steps.f.text}}"}}]
            """#)
        #expect(r["isError"] == nil)
        #expect(text(r) == "true: it broke")
    }

    @Test func aSwitchWithoutAMatchOrDefaultIsNull() async throws {
        let r = try await run(#"""
            [{"switch": [{"when": {"left": 1, "op": "==", "right": 2}, "do": {"set": {"x": 1}}}], "into": "s"},
             {"return": {"structured": {"s": "{{vars.s}}", "x": "{{vars.x}}"}}}]
            """#)
        #expect(r["structuredContent"] == ["s": nil, "x": nil])
    }

    @Test func limitsAreCheckedAtLoad() {
        #expect(throws: ConfigError("/limits/max_steps", "max_steps is an integer in 1...1000000")) {
            try Program(config: config(#"[{"delay": 0}]"#, limits: #"{"max_steps": 0}"#))
        }
        #expect(throws: ConfigError("/limits/max_stepz", "unknown key \"max_stepz\" (expected one of max_steps, max_depth, max_concurrency, max_output_bytes, max_delay_ms, max_cache_entries)")) {
            try Program(config: config(#"[{"delay": 0}]"#, limits: #"{"max_stepz": 3}"#))
        }
        #expect(configError(#"[{"parallel": [{"delay": 0}], "concurrency": 9}]"#)?.pointer == "/tools/0/steps/0/concurrency")
    }
}

@Suite struct RunTimeErrorTests {
    @Test func aDenialSaysSoAndNamesTheStep() async throws {
        let r = try await run(#"[{"call": "denied", "id": "secret"}]"#)
        #expect(r["isError"] == true)
        #expect(text(r) == #"step "secret" (/tools/0/steps/0) failed (denied): calling "denied" was denied: denied by policy"#)
    }

    @Test func aDenialCanBeCaught() async throws {
        let r = try await run(#"""
            [{"fallback": {"call": "denied"}, "catch": {"return": {"text": "fallback: {{error.kind}} {{error.code}}"}}}]
            """#)
        #expect(text(r) == "fallback: denied -32003")
    }

    @Test func anUnknownToolNamesTheStep() async throws {
        let r = try await run(#"[{"set": {"x": 1}}, {"call": "no_such_tool"}]"#)
        #expect(r["isError"] == true)
        #expect(text(r).contains("/tools/0/steps/1"))
        #expect(text(r).contains(#"calling "no_such_tool" failed: Unknown tool: no_such_tool"#))
    }

    @Test func theStepBudgetStopsLoops() async throws {
        let r = try await run(#"[{"foreach": "{{args.items}}", "do": {"set": {"x": "{{item}}"}}}]"#,
                              args: ["items": .array((0..<50).map { .int($0) })], limits: #"{"max_steps": 20}"#)
        #expect(r["isError"] == true)
        #expect(text(r).contains("more than 20 steps"))
    }

    @Test func theBudgetCannotBeCaughtByFallback() async throws {
        let r = try await run(#"""
            [{"fallback": {"foreach": "{{args.items}}", "do": {"delay": 0}}, "catch": {"return": {"text": "caught"}}}]
            """#, args: ["items": [1, 2, 3, 4, 5]], limits: #"{"max_steps": 4}"#)
        #expect(text(r).contains("limits.max_steps"))
    }

    @Test func theOutputSizeIsBounded() async throws {
        let big = String(repeating: "x", count: 3000)
        let g = FakeGateway(["big": { _ in FakeGateway.text(big) }])
        let r = try await run(#"[{"call": "big"}]"#, gateway: g, limits: #"{"max_output_bytes": 2048}"#)
        #expect(r["isError"] == true)
        #expect(text(r).contains("max_output_bytes"))
        let built = try await run(#"[{"template": "{{args.city}}{{args.city}}", "into": "x"}]"#,
                                  args: ["city": .string(String(repeating: "y", count: 1500))],
                                  limits: #"{"max_output_bytes": 2048}"#)
        #expect(built["isError"] == true)
    }

    @Test func cancellationStopsTheProgram() async throws {
        let g = FakeGateway.standard()
        let program = try Program(config: config(#"[{"delay": 59000}, {"call": "echo"}]"#))
        let runner = Runner(tool: program.tools[0], limits: program.limits, caller: g, cache: CacheStore(), principal: "a")
        let task = Task { try await runner.run(arguments: [:]) }
        try await Task.sleep(for: .milliseconds(50))
        let start = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // Far below the 59 s the steps would take: cancellation ended them (loose, for loaded machines).
        #expect(ContinuousClock.now - start < .seconds(30))
        #expect(g.callCount == 0)
    }

    @Test func cancellationReachesParallelBranches() async throws {
        let g = FakeGateway.standard()
        let program = try Program(config: config(#"[{"parallel": [{"call": "slow", "arguments": {"ms": 59000}}, {"call": "slow", "arguments": {"ms": 59000}}]}]"#))
        let runner = Runner(tool: program.tools[0], limits: program.limits, caller: g, cache: CacheStore(), principal: "a")
        let task = Task { try await runner.run(arguments: [:]) }
        try await Task.sleep(for: .milliseconds(50))
        let start = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // Far below the 59 s the steps would take: cancellation ended them (loose, for loaded machines).
        #expect(ContinuousClock.now - start < .seconds(30))
    }
}

@Suite struct ConfigErrorTests {
    @Test(arguments: [
        (#"[{"cal": "echo"}]"#, "/tools/0/steps/0", #"unknown step kind "cal""#),
        (#"[{"call": "echo", "argumnts": {}}]"#, "/tools/0/steps/0/argumnts", #"unknown key "argumnts""#),
        (#"[{"call": "echo", "set": {"x": 1}}]"#, "/tools/0/steps/0", "one step kind per step"),
        (#"[{"set": {"x": 1}}, {"call": "echo", "arguments": {"m": "{{steps.w.result}}"}}]"#, "/tools/0/steps/1/arguments/m", #"no earlier step has id "w""#),
        (#"[{"call": "echo", "arguments": {"m": "{{steps.later.result}}"}}, {"call": "echo", "id": "later"}]"#, "/tools/0/steps/0/arguments/m", "no earlier step"),
        (#"[{"return": {"text": "{{vars.nope}}"}}]"#, "/tools/0/steps/0/return/text", #"no earlier step sets variable "nope""#),
        (#"[{"return": {"text": "{{args.town}}"}}]"#, "/tools/0/steps/0/return/text", #"declares no property "town""#),
        (#"[{"return": {"text": "{{item}}"}}]"#, "/tools/0/steps/0/return/text", "only inside map, filter and foreach"),
        (#"[{"set": {"e": "{{error.message}}"}}]"#, "/tools/0/steps/0/set/e", "only inside a fallback's catch"),
        (#"[{"timeout": 100}]"#, "/tools/0/steps/0", #"needs "do""#),
        (#"[{"cache": {"call": "echo"}, "key": "k"}]"#, "/tools/0/steps/0", #"needs "ttl_ms""#),
        (#"[{"filter": "{{args.items}}"}]"#, "/tools/0/steps/0", #"needs "where""#),
        (#"[{"select": "{{args.items}}"}]"#, "/tools/0/steps/0", #"needs "path""#),
        (#"[{"template": "x"}]"#, "/tools/0/steps/0", #"needs "into""#),
        (#"[{"delay": 99999999}]"#, "/tools/0/steps/0/delay", "delay is milliseconds"),
        (#"[{"parallel": [{"return": {"text": "x"}}]}]"#, "/tools/0/steps/0/parallel/0", "return cannot stand inside parallel"),
        (#"[{"call": "echo", "arguments": {"m": "{{ args.city"}}]"#, "/tools/0/steps/0/arguments/m", "unclosed"),
        (#"[{"call": "echo", "arguments": {"m": "{{ env.HOME }}"}}]"#, "/tools/0/steps/0/arguments/m", #"unknown root "env""#),
        (#"[{"filter": "{{args.items}}", "where": {"left": "{{item}}", "op": "=~", "right": 1}}]"#, "/tools/0/steps/0/where/op", #""op" is one of"#),
        (#"[{"retry": {"call": "x"}, "on": ["bogus"]}]"#, "/tools/0/steps/0/on/0", "an error kind is one of"),
        (#"[{"validate": "{{args.n}}", "schema": {"type": "integer", "pattern": "x"}}]"#, "/tools/0/steps/0/schema/pattern", "unsupported schema keyword"),
        (#"[{"call": "a", "id": "x"}, {"call": "b", "id": "x"}]"#, "/tools/0/steps/1/id", "duplicate step id"),
        (#"[]"#, "/tools/0/steps", "non-empty"),
    ] as [(String, String, String)])
    func errorsCarryAPointer(_ steps: String, _ pointer: String, _ message: String) {
        let e = configError(steps)
        #expect(e?.pointer == pointer, "\(steps)")
        #expect(e?.message.contains(message) == true, "\(e?.message ?? "no error") for \(steps)")
        #expect(e?.description.hasPrefix(pointer + ": ") == true)
    }

    @Test func nestingIsBounded() {
        var steps = #"{"delay": 0}"#
        for _ in 0..<5 { steps = #"{"sequence": [\#(steps)]}"# }
        let program = json(#"{"tools": [{"name": "t", "inputSchema": {"type": "object"}, "steps": [\#(steps)]}], "limits": {"max_depth": 4}}"#)
        #expect(throws: ConfigError.self) { try Program(config: program) }
        do { _ = try Program(config: program) } catch { #expect(error.message.contains("max_depth")) }
    }

    @Test func toolLevelErrors() {
        #expect((try? Program(config: json(#"{"tools": [{"name": "t", "steps": [{"delay": 1}]}]}"#))) == nil)
        do {
            _ = try Program(config: json(#"{"tools": [{"name": "t", "inputSchema": {"type": "object"}, "steps": [{"delay": 1}], "bogus": 1}]}"#))
            Issue.record("accepted an unknown key")
        } catch { #expect(error.pointer == "/tools/0/bogus") }
        do {
            _ = try Program(config: json(#"{"tools": [{"name": "t", "inputSchema": {"type": "object"}, "steps": [{"delay": 1}]}, {"name": "t", "inputSchema": {"type": "object"}, "steps": [{"delay": 1}]}]}"#))
            Issue.record("accepted a duplicate tool")
        } catch { #expect(error.pointer == "/tools/1/name") }
    }

    @Test func referencesFollowTheProgramsShape() throws {
        // Ids from parallel branches, switch cases and foreach bodies are visible after them; map's are not.
        #expect(configError(#"[{"parallel": [{"call": "a", "id": "x"}, {"call": "b", "id": "y"}]}, {"return": {"text": "{{steps.x.result}}{{steps.y.result}}"}}]"#) == nil)
        #expect(configError(#"[{"foreach": "{{args.items}}", "do": {"set": {"v": "{{item}}"}}}, {"return": {"text": "{{vars.v}}"}}]"#) == nil)
        #expect(configError(#"[{"map": "{{args.items}}", "do": {"call": "a", "id": "inner"}}, {"return": {"text": "{{steps.inner.result}}"}}]"#)?.pointer == "/tools/0/steps/1/return/text")
        // A parallel branch does not see its siblings.
        #expect(configError(#"[{"parallel": [{"call": "a", "id": "x"}, {"call": "b", "arguments": {"v": "{{steps.x.result}}"}}]}]"#)?.pointer == "/tools/0/steps/0/parallel/1/arguments/v")
        // item is fine inside a filter's condition and map's body.
        #expect(configError(#"[{"map": "{{args.items}}", "do": {"filter": "{{item}}", "where": {"left": "{{item}}", "op": "exists"}}}]"#) == nil)
    }
}
