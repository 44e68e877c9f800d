import MCPGJSON
import Synchronization

/// `return` ending the program (a control transfer, never seen outside the runner).
struct Returned: Error, Sendable {
    let result: JSON
}

/// What the steps may see: the evaluation context's parts.
struct Scope: Sendable {
    var args: JSONObject
    var vars: JSONObject = [:]
    var steps: JSONObject = [:]
    var item: JSON?
    var index: Int?
    var error: JSON?

    var context: JSONObject {
        var c: JSONObject = ["args": .object(args), "vars": .object(vars), "steps": .object(steps)]
        if let item { c["item"] = item }
        if let index { c["index"] = .int(Int64(index)) }
        if let error { c["error"] = error }
        return c
    }
}

/// Runs one call of a pipeline tool.
public struct Runner: Sendable {
    let tool: PipelineTool
    let limits: Limits
    let caller: any ToolCaller
    let cache: CacheStore
    /// Cache keys are kept apart per caller: a cached value never reaches a caller whose own call was not made.
    let principal: String
    let executed = Counter()

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    public init(tool: PipelineTool, limits: Limits, caller: any ToolCaller, cache: CacheStore, principal: String) {
        self.tool = tool
        self.limits = limits
        self.caller = caller
        self.cache = cache
        self.principal = principal
    }

    /// Steps executed so far.
    public var stepsExecuted: Int { executed.value.load(ordering: .relaxed) }

    /// The tool's `CallToolResult`. Arguments must already be valid. Step failures and bounds become results
    /// with `isError: true`; only cancellation is thrown.
    public func run(arguments: JSONObject) async throws -> JSON {
        var scope = Scope(args: arguments)
        var result: JSON
        do {
            let last = try await run(tool.steps, &scope)
            result = Self.resultFromValue(last)
        } catch let r as Returned {
            result = r.result
        } catch let e as StepError {
            return Self.errorResult("step \(e.step) failed (\(e.kind.rawValue)): \(e.message)")
        } catch let e as LimitExceeded {
            return Self.errorResult(e.message)
        }
        if result["isError"]?.boolValue != true, let schema = tool.outputSchema {
            guard let structured = result["structuredContent"] else {
                return Self.errorResult(
                    "the pipeline's result has no structured content, and the tool declares an outputSchema")
            }
            let problems = SchemaCheck.problems(structured, schema)
            if !problems.isEmpty {
                return Self.errorResult(
                    "the pipeline's result does not match the outputSchema: " + problems.joined(separator: "; "))
            }
        }
        let size = result.serialized().count
        if size > limits.maxOutputBytes {
            return Self.errorResult(
                "the pipeline's result is \(size) bytes, over limits.max_output_bytes (\(limits.maxOutputBytes))")
        }
        return result
    }

    static func errorResult(_ text: String) -> JSON {
        ["content": [["type": "text", "text": .string(text)]], "isError": true]
    }

    /// A result from the last step's value: an object is structured content (and its JSON text), a string is text.
    static func resultFromValue(_ value: JSON) -> JSON {
        switch value {
        case .object: return ["content": [["type": "text", "text": .string(value.text)]], "structuredContent": value]
        case .string(let s): return ["content": [["type": "text", "text": .string(s)]]]
        case .null: return ["content": []]
        default: return ["content": [["type": "text", "text": .string(value.text)]]]
        }
    }

    func run(_ steps: [Step], _ scope: inout Scope) async throws -> JSON {
        var last = JSON.null
        for s in steps { last = try await run(s, &scope) }
        return last
    }

    func run(_ step: Step, _ scope: inout Scope) async throws -> JSON {
        try Task.checkCancellation()
        let n = executed.value.add(1, ordering: .relaxed).newValue
        guard n <= limits.maxSteps else {
            throw LimitExceeded(message: "the pipeline ran more than \(limits.maxSteps) steps (limits.max_steps)")
        }
        let value = try await execute(step, &scope)
        if let id = step.id { scope.steps[id] = value.record }
        if let into = step.into { scope.vars[into] = value.result }
        return value.result
    }

    /// A step's value, and for calls the rest of what `steps.<id>` shows.
    struct Value {
        var result: JSON
        var extra: JSONObject = [:]
        var record: JSON {
            var o = extra
            o["result"] = result
            return .object(o)
        }
    }

    func fail(_ step: Step, _ kind: ErrorKind, _ message: String, code: Int? = nil) -> StepError {
        StepError(
            kind: kind, message: message, step: step.id.map { "\"\($0)\" (\(step.pointer))" } ?? step.pointer,
            code: code)
    }

    func list(_ t: ValueTemplate, _ step: Step, _ scope: Scope) throws -> [JSON] {
        let v = t.evaluate(scope.context)
        guard case .array(let items) = v else {
            throw fail(step, .type, "expected a list, got \(v.typeName)")
        }
        return items
    }

    func execute(_ step: Step, _ scope: inout Scope) async throws -> Value {
        switch step.kind {
        case .call(let toolT, let argsT, let allowError):
            let ctx = scope.context
            let name = toolT.render(ctx)
            guard case .object(let args) = argsT.evaluate(ctx) else {
                throw fail(step, .type, "arguments are not an object")
            }
            let answer: JSON
            do {
                answer = try await caller.callTool(name: name, arguments: args)
            } catch let f as CallFailure {
                if f.code == -32003 {
                    throw fail(step, .denied, "calling \"\(name)\" was denied: \(f.message)", code: f.code)
                }
                throw fail(step, .callError, "calling \"\(name)\" failed: \(f.message)", code: f.code)
            }
            let size = answer.serialized().count
            if size > limits.maxOutputBytes {
                throw LimitExceeded(
                    message: "step \(step.pointer): \"\(name)\" answered \(size) bytes, over limits.max_output_bytes")
            }
            let text = (answer["content"]?.arrayValue ?? []).compactMap {
                $0["type"] == "text" ? $0["text"]?.stringValue : nil
            }
            .joined(separator: "\n")
            let isError = answer["isError"]?.boolValue ?? false
            if isError && !allowError {
                throw fail(step, .toolError, "\"\(name)\" answered with an error: \(text.isEmpty ? "(no text)" : text)")
            }
            let result = answer["structuredContent"] ?? .string(text)
            return Value(result: result, extra: ["text": .string(text), "is_error": .bool(isError)])

        case .sequence(let steps):
            return Value(result: try await run(steps, &scope))

        case .parallel(let branches, let concurrency):
            let base = scope
            let outcomes = try await bounded(branches.count, concurrency) { i in
                var s = base
                let v = try await self.run(branches[i], &s)
                return (v, s)
            }
            // Branches' ids and variables are merged in branch order.
            for (_, s) in outcomes {
                for m in s.steps where base.steps[m.key] == nil { scope.steps[m.key] = m.value }
                for m in s.vars { scope.vars[m.key] = m.value }
            }
            return Value(result: .array(outcomes.map(\.0)))

        case .map(let listT, let body, let concurrency):
            let items = try list(listT, step, scope)
            let base = scope
            let outcomes = try await bounded(items.count, concurrency) { i in
                var s = base
                s.item = items[i]
                s.index = i
                return (try await self.run(body, &s), s)
            }
            return Value(result: .array(outcomes.map(\.0)))

        case .foreach(let listT, let body):
            let items = try list(listT, step, scope)
            let (outerItem, outerIndex) = (scope.item, scope.index)
            for (i, item) in items.enumerated() {
                scope.item = item
                scope.index = i
                _ = try await run(body, &scope)
            }
            scope.item = outerItem
            scope.index = outerIndex
            return Value(result: .int(Int64(items.count)))

        case .filter(let listT, let cond):
            let items = try list(listT, step, scope)
            var s = scope
            var kept: [JSON] = []
            for (i, item) in items.enumerated() {
                s.item = item
                s.index = i
                if cond.holds(s.context) { kept.append(item) }
            }
            return Value(result: .array(kept))

        case .switchCases(let cases, let otherwise):
            let ctx = scope.context
            for (cond, body) in cases where cond.holds(ctx) {
                return Value(result: try await run(body, &scope))
            }
            if let otherwise { return Value(result: try await run(otherwise, &scope)) }
            return Value(result: .null)

        case .set(let assignments):
            let ctx = scope.context
            var set: JSONObject = [:]
            for (name, t) in assignments { set[name] = t.evaluate(ctx) }
            for m in set { scope.vars[m.key] = m.value }
            return Value(result: .object(set))

        case .template(let t):
            return Value(result: t.evaluate(scope.context))

        case .select(let fromT, let path, let otherwise):
            let ctx = scope.context
            var v: JSON? = fromT.evaluate(ctx)
            for seg in path {
                guard let cur = v else { break }
                switch (seg, cur) {
                case (.index(let n), .object(let o)): v = o[String(n)]
                default: v = Path.step(cur, seg)
                }
            }
            return Value(result: v ?? otherwise?.evaluate(ctx) ?? .null)

        case .merge(let parts, let deep):
            let values = parts.map { $0.evaluate(scope.context) }
            if values.allSatisfy({ $0.arrayValue != nil }) {
                return Value(result: .array(values.flatMap { $0.arrayValue! }))
            }
            var out = JSONObject()
            for (i, v) in values.enumerated() {
                if v.isNull { continue }
                guard case .object(let o) = v else {
                    throw fail(step, .type, "merge takes all objects or all arrays; item \(i) is \(v.typeName)")
                }
                out = deep ? Self.deepMerge(out, o) : JSONObject(out.members.filter { o[$0.key] == nil } + o.members)
            }
            return Value(result: .object(out))

        case .validate(let t, let schema):
            let v = t.evaluate(scope.context)
            let problems = SchemaCheck.problems(v, schema)
            if !problems.isEmpty { throw fail(step, .validation, problems.joined(separator: "; ")) }
            return Value(result: v)

        case .retry(let body, let attempts, let backoffMs, let factor, let on):
            var wait = Double(backoffMs)
            for attempt in 1...attempts {
                var s = scope
                do {
                    let v = try await run(body, &s)
                    scope = s
                    return Value(result: v, extra: ["attempts": .int(Int64(attempt))])
                } catch let e as StepError where on.contains(e.kind) && attempt < attempts {
                    let ms = min(Int(wait), limits.maxDelayMs)
                    if ms > 0 { try await Task.sleep(for: .milliseconds(ms)) }
                    wait *= factor
                }
            }
            throw LimitExceeded(message: "step \(step.pointer): retry ended without a result")

        case .timeout(let ms, let body):
            let base = scope
            let outcome: (JSON, Scope)? = try await withThrowingTaskGroup(of: (JSON, Scope)?.self) { group in
                group.addTask {
                    var s = base
                    return (try await self.run(body, &s), s)
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(ms))
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            guard let (v, s) = outcome else { throw fail(step, .timeout, "did not finish within \(ms) ms") }
            scope = s
            return Value(result: v)

        case .fallback(let primary, let handler):
            var s = scope
            do {
                let v = try await run(primary, &s)
                scope = s
                return Value(result: v)
            } catch let e as StepError {
                let outer = scope.error
                scope.error = e.json
                defer { scope.error = outer }
                return Value(result: try await run(handler, &scope), extra: ["error": e.json])
            }

        case .cache(let body, let keyT, let ttlMs, let maxEntries, let slot):
            let key = principal + "\u{0}" + keyT.render(scope.context)
            if let hit = cache.get(slot, key) {
                scope = Self.overlay(scope, hit.scope)
                return Value(result: hit.value, extra: ["cached": true])
            }
            let before = scope
            let v = try await run(body, &scope)
            // Only what the body added is remembered (its ids and variables), not the caller's arguments.
            var added = Scope(args: [:])
            for m in scope.steps where before.steps[m.key] == nil { added.steps[m.key] = m.value }
            for m in scope.vars where before.vars[m.key] != m.value { added.vars[m.key] = m.value }
            cache.put(slot, key, .init(value: v, scope: added, expires: .now + .milliseconds(ttlMs)), max: maxEntries)
            return Value(result: v, extra: ["cached": false])

        case .delay(let ms):
            if ms > 0 { try await Task.sleep(for: .milliseconds(ms)) }
            return Value(result: .null)

        case .returns(let textT, let structuredT, let isError):
            let ctx = scope.context
            var result: JSONObject = [:]
            let structured = structuredT?.evaluate(ctx)
            if let structured, structured.objectValue == nil {
                throw fail(step, .type, "structured must be an object, got \(structured.typeName)")
            }
            let text = textT?.render(ctx) ?? structured?.text ?? ""
            result["content"] = [["type": "text", "text": .string(text)]]
            if let structured { result["structuredContent"] = structured }
            if isError { result["isError"] = true }
            throw Returned(result: .object(result))
        }
    }

    static func overlay(_ scope: Scope, _ added: Scope) -> Scope {
        var s = scope
        for m in added.steps { s.steps[m.key] = m.value }
        for m in added.vars { s.vars[m.key] = m.value }
        return s
    }

    static func deepMerge(_ a: JSONObject, _ b: JSONObject) -> JSONObject {
        var out = a
        for m in b {
            if case .object(let x)? = out[m.key], case .object(let y) = m.value {
                out[m.key] = .object(deepMerge(x, y))
            } else {
                out[m.key] = m.value
            }
        }
        return out
    }

    /// Runs `count` jobs, at most `limit` at once, and returns their outcomes in order. The first failure
    /// cancels the others and is thrown.
    func bounded(
        _ count: Int, _ limit: Int, _ job: @escaping @Sendable (Int) async throws -> (JSON, Scope)
    )
        async throws -> [(JSON, Scope)]
    {
        if count == 0 { return [] }
        return try await withThrowingTaskGroup(of: (Int, JSON, Scope).self) { group in
            var results = [(JSON, Scope)?](repeating: nil, count: count)
            var next = 0
            func start() {
                let i = next
                next += 1
                group.addTask {
                    let (v, s) = try await job(i)
                    return (i, v, s)
                }
            }
            while next < min(limit, count) { start() }
            while let (i, v, s) = try await group.next() {
                results[i] = (v, s)
                if next < count { start() }
            }
            return results.map { $0! }
        }
    }
}
