import MCPGJSON

/// Turns step JSON into `Step`s, checking kinds, keys, required fields, references and nesting.
struct Compiler {
    let limits: Limits
    var cacheSlots = 0

    init(limits: Limits) { self.limits = limits }

    /// What a step may refer to where it stands.
    struct Scope {
        /// Step ids defined by earlier steps.
        var ids: Set<String> = []
        /// Variables set by earlier steps.
        var vars: Set<String> = []
        /// Declared argument names (nil: any).
        var args: Set<String>?
        /// Inside `map`, `filter`'s condition or `foreach`: `item` and `index` exist.
        var loop = false
        /// Inside a `fallback`'s `catch`: `error` exists.
        var caught = false
        /// Inside `parallel`, `map` or `cache`, where `return` cannot stop the tool.
        var noReturn: String?
    }

    static let common = ["id", "into", "comment"]
    /// Keys each kind takes besides its own name and the common ones.
    static let keys: [String: [String]] = [
        "call": ["arguments", "allow_error"], "sequence": [], "parallel": ["concurrency"],
        "map": ["do", "concurrency"],
        "filter": ["where"], "switch": ["default"], "set": [], "template": [], "select": ["path", "default"],
        "merge": ["deep"], "validate": ["schema"], "retry": ["attempts", "backoff_ms", "factor", "on"],
        "timeout": ["do"], "fallback": ["catch"], "cache": ["key", "ttl_ms", "max_entries"], "delay": [],
        "foreach": ["do"], "return": [],
    ]

    mutating func steps(_ json: JSON, at pointer: String, scope: inout Scope, depth: Int) throws(ConfigError) -> [Step]
    {
        switch json {
        case .array(let items):
            guard !items.isEmpty else { throw ConfigError(pointer, "an empty list of steps") }
            var out: [Step] = []
            for (i, s) in items.enumerated() {
                out.append(try step(s, at: pointer + "/\(i)", scope: &scope, depth: depth))
            }
            return out
        case .object:
            return [try step(json, at: pointer, scope: &scope, depth: depth)]
        default:
            throw ConfigError(pointer, "expected a step (an object) or a list of steps")
        }
    }

    mutating func step(_ json: JSON, at p: String, scope: inout Scope, depth: Int) throws(ConfigError) -> Step {
        guard depth <= limits.maxDepth else {
            throw ConfigError(p, "steps nest deeper than \(limits.maxDepth) levels (limits.max_depth)")
        }
        guard case .object(let o) = json else {
            throw ConfigError(p, "a step is an object with one of: " + Step.kinds.joined(separator: ", "))
        }
        let named = o.keys.filter { Step.kinds.contains($0) }
        guard named.count == 1, let kind = named.first else {
            if named.isEmpty {
                let known = Set(Self.common + Self.keys.values.flatMap { $0 })
                let unknown = o.keys.first { !known.contains($0) }
                let hint = unknown.map { "unknown step kind \"\($0)\"" } ?? "no step kind"
                throw ConfigError(p, hint + " (one of: " + Step.kinds.joined(separator: ", ") + ")")
            }
            throw ConfigError(p, "one step kind per step, not " + named.joined(separator: " and "))
        }
        let allowed = [kind] + Self.common + (Self.keys[kind] ?? [])
        for k in o.keys where !allowed.contains(k) {
            throw ConfigError(
                p + "/" + escapePointer(k),
                "unknown key \"\(k)\" in a \(kind) step (expected \(allowed.joined(separator: ", ")))")
        }
        let body = o[kind]!
        let kp = p + "/" + kind

        var id: String?
        if let v = o["id"] {
            guard let s = v.stringValue, Self.isName(s) else {
                throw ConfigError(p + "/id", "an id is letters, digits, _ and -")
            }
            guard !scope.ids.contains(s) else { throw ConfigError(p + "/id", "duplicate step id \"\(s)\"") }
            id = s
        }
        var into: String?
        if let v = o["into"] {
            guard kind != "return", kind != "set" else {
                throw ConfigError(p + "/into", "a \(kind) step takes no \"into\"")
            }
            guard let s = v.stringValue, Self.isName(s) else {
                throw ConfigError(p + "/into", "into names a variable: letters, digits, _ and -")
            }
            into = s
        }

        func value(_ j: JSON, _ at: String, _ s: Scope) throws(ConfigError) -> ValueTemplate {
            let t = try ValueTemplate(j, at: at)
            try checkStrings(j, at: at, s)
            return t
        }
        func int(_ key: String, _ range: ClosedRange<Int>, default d: Int? = nil) throws(ConfigError) -> Int {
            guard let v = o[key] else {
                if let d { return d }
                throw ConfigError(p, "a \(kind) step needs \"\(key)\"")
            }
            guard let n = v.intValue, range.contains(Int(n)) else {
                throw ConfigError(p + "/" + key, "\(key) is an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return Int(n)
        }
        func sub(_ key: String) throws(ConfigError) -> JSON {
            guard let v = o[key] else { throw ConfigError(p, "a \(kind) step needs \"\(key)\"") }
            return v
        }

        let k: Step.Kind
        switch kind {
        case "call":
            guard let name = body.stringValue, !name.isEmpty else {
                throw ConfigError(kp, "call names a tool (a string)")
            }
            let tool: Template
            do { tool = try Template(parsing: name) } catch { throw ConfigError(kp, error.message) }
            try check(tool.paths, at: kp, scope)
            let args = try value(o["arguments"] ?? .object([:]), p + "/arguments", scope)
            if let a = o["arguments"], a.objectValue == nil {
                throw ConfigError(p + "/arguments", "arguments is an object")
            }
            if let a = o["allow_error"], a.boolValue == nil {
                throw ConfigError(p + "/allow_error", "allow_error is a boolean")
            }
            k = .call(tool: tool, arguments: args, allowError: o["allow_error"]?.boolValue ?? false)
        case "sequence":
            guard body.arrayValue != nil else { throw ConfigError(kp, "sequence is a list of steps") }
            k = .sequence(try steps(body, at: kp, scope: &scope, depth: depth + 1))
        case "parallel":
            guard case .array(let branches) = body, !branches.isEmpty else {
                throw ConfigError(kp, "parallel is a non-empty list of steps (branches)")
            }
            let c = try int("concurrency", 1...limits.maxConcurrency, default: limits.maxConcurrency)
            var out: [Step] = []
            var after = scope
            for (i, b) in branches.enumerated() {
                var s = scope
                s.noReturn = "parallel"
                out.append(try step(b, at: kp + "/\(i)", scope: &s, depth: depth + 1))
                after.ids.formUnion(s.ids)
                after.vars.formUnion(s.vars)
            }
            scope.ids = after.ids
            scope.vars = after.vars
            k = .parallel(out, concurrency: c)
        case "map", "foreach":
            let list = try value(body, kp, scope)
            var s = scope
            s.loop = true
            if kind == "map" { s.noReturn = "map" }
            let steps = try steps(try sub("do"), at: p + "/do", scope: &s, depth: depth + 1)
            if kind == "map" {
                k = .map(list, body: steps, concurrency: try int("concurrency", 1...limits.maxConcurrency, default: 1))
            } else {
                // foreach runs for its effects: variables it sets stay set.
                scope.vars.formUnion(s.vars)
                scope.ids.formUnion(s.ids)
                k = .foreach(list, body: steps)
            }
        case "filter":
            let list = try value(body, kp, scope)
            var s = scope
            s.loop = true
            let cond = try Condition(try sub("where"), at: p + "/where")
            try checkStrings(try sub("where"), at: p + "/where", s)
            k = .filter(list, where: cond)
        case "switch":
            guard case .array(let cases) = body, !cases.isEmpty else {
                throw ConfigError(kp, "switch is a non-empty list of {when, do}")
            }
            var out: [(Condition, [Step])] = []
            var after = scope
            for (i, c) in cases.enumerated() {
                let cp = kp + "/\(i)"
                guard case .object(let co) = c else { throw ConfigError(cp, "a case is {when, do}") }
                try Program.onlyKeys(co, ["when", "do"], at: cp)
                guard let w = co["when"] else { throw ConfigError(cp, "a case needs \"when\"") }
                guard let d = co["do"] else { throw ConfigError(cp, "a case needs \"do\"") }
                let cond = try Condition(w, at: cp + "/when")
                try checkStrings(w, at: cp + "/when", scope)
                var s = scope
                let steps = try steps(d, at: cp + "/do", scope: &s, depth: depth + 1)
                after.ids.formUnion(s.ids)
                after.vars.formUnion(s.vars)
                out.append((cond, steps))
            }
            var otherwise: [Step]?
            if let d = o["default"] {
                var s = scope
                otherwise = try steps(d, at: p + "/default", scope: &s, depth: depth + 1)
                after.ids.formUnion(s.ids)
                after.vars.formUnion(s.vars)
            }
            scope.ids = after.ids
            scope.vars = after.vars
            k = .switchCases(out, otherwise: otherwise)
        case "set":
            guard case .object(let members) = body, !members.isEmpty else {
                throw ConfigError(kp, "set is an object of variable: value")
            }
            var out: [(String, ValueTemplate)] = []
            for m in members {
                guard Self.isName(m.key) else {
                    throw ConfigError(kp + "/" + escapePointer(m.key), "a variable name is letters, digits, _ and -")
                }
                // Every value sees the variables as they were before the step.
                out.append((m.key, try value(m.value, kp + "/" + escapePointer(m.key), scope)))
            }
            for (name, _) in out { scope.vars.insert(name) }
            k = .set(out)
        case "template":
            guard into != nil || id != nil else {
                throw ConfigError(p, "a template step needs \"into\" (or an \"id\")")
            }
            k = .template(try value(body, kp, scope))
        case "select":
            let from = try value(body, kp, scope)
            guard let path = try sub("path").stringValue else { throw ConfigError(p + "/path", "path is a string") }
            let segments: [Path.Segment]
            do { segments = try Self.selectPath(path) } catch { throw ConfigError(p + "/path", error.message) }
            k = .select(
                from, path: segments,
                otherwise: try o["default"].map { j throws(ConfigError) in try value(j, p + "/default", scope) })
        case "merge":
            guard case .array(let items) = body, items.count >= 1 else {
                throw ConfigError(kp, "merge is a list of values (objects or arrays)")
            }
            var out: [ValueTemplate] = []
            for (i, item) in items.enumerated() { out.append(try value(item, kp + "/\(i)", scope)) }
            if let d = o["deep"], d.boolValue == nil { throw ConfigError(p + "/deep", "deep is a boolean") }
            k = .merge(out, deep: o["deep"]?.boolValue ?? false)
        case "validate":
            let v = try value(body, kp, scope)
            let schema = try sub("schema")
            if let bad = SchemaCheck.unsupported(schema, at: p + "/schema") {
                throw ConfigError(bad.pointer, bad.message)
            }
            k = .validate(v, schema: schema)
        case "retry":
            let attempts = try int("attempts", 1...10, default: 3)
            let backoff = try int("backoff_ms", 0...limits.maxDelayMs, default: 100)
            var factor = 2.0
            if let f = o["factor"] {
                guard let d = f.doubleValue, d >= 1, d <= 10 else {
                    throw ConfigError(p + "/factor", "factor is a number in 1...10")
                }
                factor = d
            }
            var on: Set<ErrorKind> = [.toolError, .callError, .timeout]
            if let list = o["on"] {
                guard case .array(let names) = list, !names.isEmpty else {
                    throw ConfigError(p + "/on", "on is a non-empty list of error kinds")
                }
                on = []
                for (i, n) in names.enumerated() {
                    guard let s = n.stringValue, let e = ErrorKind(rawValue: s) else {
                        throw ConfigError(
                            p + "/on/\(i)",
                            "an error kind is one of " + ErrorKind.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    on.insert(e)
                }
            }
            k = .retry(
                try steps(body, at: kp, scope: &scope, depth: depth + 1), attempts: attempts, backoffMs: backoff,
                factor: factor, on: on)
        case "timeout":
            guard let ms = body.intValue, ms >= 1, ms <= limits.maxDelayMs else {
                throw ConfigError(kp, "timeout is milliseconds in 1...\(limits.maxDelayMs)")
            }
            k = .timeout(ms: Int(ms), body: try steps(try sub("do"), at: p + "/do", scope: &scope, depth: depth + 1))
        case "fallback":
            var tried = scope
            let primary = try steps(body, at: kp, scope: &tried, depth: depth + 1)
            var caught = scope
            caught.caught = true
            let handler = try steps(try sub("catch"), at: p + "/catch", scope: &caught, depth: depth + 1)
            scope.ids = tried.ids.union(caught.ids)
            scope.vars = tried.vars.union(caught.vars)
            k = .fallback(primary, catch: handler)
        case "cache":
            guard let keySource = try sub("key").stringValue else {
                throw ConfigError(p + "/key", "key is a template string")
            }
            let key: Template
            do { key = try Template(parsing: keySource) } catch { throw ConfigError(p + "/key", error.message) }
            try check(key.paths, at: p + "/key", scope)
            let ttl = try int("ttl_ms", 1...86_400_000)
            let max = try int("max_entries", 1...limits.maxCacheEntries, default: min(100, limits.maxCacheEntries))
            var s = scope
            s.noReturn = "cache"
            let inner = try steps(body, at: kp, scope: &s, depth: depth + 1)
            scope.ids.formUnion(s.ids)
            scope.vars.formUnion(s.vars)
            k = .cache(inner, key: key, ttlMs: ttl, maxEntries: max, slot: cacheSlots)
            cacheSlots += 1
        case "delay":
            guard let ms = body.intValue, ms >= 0, ms <= limits.maxDelayMs else {
                throw ConfigError(kp, "delay is milliseconds in 0...\(limits.maxDelayMs) (limits.max_delay_ms)")
            }
            k = .delay(ms: Int(ms))
        case "return":
            if let where_ = scope.noReturn {
                throw ConfigError(p, "return cannot stand inside \(where_): it would not end the tool")
            }
            guard case .object(let r) = body else { throw ConfigError(kp, "return is {text?, structured?, is_error?}") }
            try Program.onlyKeys(r, ["text", "structured", "is_error"], at: kp)
            guard r["text"] != nil || r["structured"] != nil else {
                throw ConfigError(kp, "return needs \"text\" or \"structured\"")
            }
            var text: Template?
            if let t = r["text"] {
                guard let s = t.stringValue else { throw ConfigError(kp + "/text", "text is a template string") }
                do { text = try Template(parsing: s) } catch { throw ConfigError(kp + "/text", error.message) }
                try check(text!.paths, at: kp + "/text", scope)
            }
            let structured = try r["structured"].map { j throws(ConfigError) in try value(j, kp + "/structured", scope)
            }
            if let e = r["is_error"], e.boolValue == nil {
                throw ConfigError(kp + "/is_error", "is_error is a boolean")
            }
            k = .returns(text: text, structured: structured, isError: r["is_error"]?.boolValue ?? false)
        default:
            throw ConfigError(p, "unknown step kind \"\(kind)\"")
        }
        if let id { scope.ids.insert(id) }
        if let into { scope.vars.insert(into) }
        return Step(pointer: p, id: id, into: into, kind: k)
    }

    /// Checks that every path refers to something that exists where it stands.
    func check(_ paths: [Path], at pointer: String, _ scope: Scope) throws(ConfigError) {
        for path in paths {
            switch path.root {
            case "steps":
                guard let id = path.firstMember else {
                    throw ConfigError(pointer, "\"steps\" needs a step id: steps.<id>.result")
                }
                guard scope.ids.contains(id) else {
                    throw ConfigError(pointer, "steps.\(id): no earlier step has id \"\(id)\"")
                }
            case "vars":
                guard let v = path.firstMember else { throw ConfigError(pointer, "\"vars\" needs a name: vars.<name>") }
                guard scope.vars.contains(v) else {
                    throw ConfigError(pointer, "vars.\(v): no earlier step sets variable \"\(v)\"")
                }
            case "args":
                if let a = path.firstMember, let declared = scope.args, !declared.contains(a) {
                    throw ConfigError(pointer, "args.\(a): the inputSchema declares no property \"\(a)\"")
                }
            case "item", "index":
                guard scope.loop else {
                    throw ConfigError(pointer, "\(path.root) exists only inside map, filter and foreach")
                }
            case "error":
                guard scope.caught else { throw ConfigError(pointer, "error exists only inside a fallback's catch") }
            default: break
            }
        }
    }

    /// `check` for every template string in `json`, each at its own pointer.
    func checkStrings(_ json: JSON, at pointer: String, _ scope: Scope) throws(ConfigError) {
        switch json {
        case .string(let s):
            guard let t = try? Template(parsing: s) else { return }
            try check(t.paths, at: pointer, scope)
        case .array(let a):
            for (i, v) in a.enumerated() { try checkStrings(v, at: pointer + "/\(i)", scope) }
        case .object(let o):
            for m in o { try checkStrings(m.value, at: pointer + "/" + escapePointer(m.key), scope) }
        default: break
        }
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
    }

    /// A `select` path: a JSON pointer (`/items/0/name`), or a dotted path (`items[0].name`, `$.items[0].name`).
    static func selectPath(_ source: String) throws(ExpressionError) -> [Path.Segment] {
        if source.isEmpty || source == "$" { return [] }
        if source.hasPrefix("/") {
            return source.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { token in
                let key = String(token).replacing("~1", with: "/").replacing("~0", with: "~")
                if let n = Int(key), n >= 0, key.allSatisfy(\.isASCII) { return .index(n) }
                return .member(key)
            }
        }
        var rest = source
        if rest.hasPrefix("$.") { rest.removeFirst(2) } else if rest.hasPrefix("$[") { rest.removeFirst(1) }
        // Parse as a path under a stand-in root, so both spellings share one grammar.
        let parsed = try Path(parsing: rest.hasPrefix("[") ? "item" + rest : "item." + rest)
        return parsed.segments
    }
}
