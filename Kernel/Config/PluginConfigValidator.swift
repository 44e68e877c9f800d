import MCPGJSON

/// Validates a plugin's `config` block against the JSON Schema (2020-12) the plugin publishes, reporting each
/// problem at the YAML line and column of the offending key or value.
///
/// Supported keywords: `type`, `enum`, `const`, `properties`, `required`, `additionalProperties` (boolean or
/// schema), `patternProperties`, `minProperties`/`maxProperties`, `items`, `prefixItems`,
/// `minItems`/`maxItems`, `uniqueItems`, `minimum`/`maximum`, `exclusiveMinimum`/`exclusiveMaximum`,
/// `minLength`/`maxLength` (in Unicode scalars), `pattern` (Swift `Regex`, unanchored), `allOf`, `anyOf`,
/// `oneOf`, `not`, local `$ref` (`#/$defs/…`, `#/definitions/…`) and boolean schemas. Other keywords
/// (`format`, `if`/`then`/`else`, `dependentRequired`, …) are ignored, as annotations are.
///
/// Messages never echo string values from the block (it may hold secrets); they name keys, types and limits.
public enum PluginConfigValidator {
    /// Deepest schema/value nesting followed; deeper (or cyclic `$ref`) parts are reported once.
    public static let maxDepth = 64

    /// Checks `ref.config` against `schema`.
    ///
    /// - Parameters:
    ///   - ref: the config entry; its `configNode` gives positions (problems in an absent block are reported at
    ///     the entry).
    ///   - schema: the JSON Schema the plugin publishes for its config.
    ///   - pluginName: the plugin's name for messages (`plugin "apikey" config: …`).
    /// - Returns: every problem found, in file order; empty when the block is valid. Problems in the schema
    ///   itself (bad `pattern`, unresolvable `$ref`) are reported too, at the entry.
    public static func validate(_ ref: PluginRef, schema: JSON, pluginName: String) -> [ConfigDiagnostic] {
        var walker = SchemaWalker(root: schema, entry: ref.pluginLocation)
        let owner = ref.configNode?.location ?? ref.location
        let problems = walker.check(ref.config, ref.configNode, schema, owner: owner, depth: 0)
        let prefix = "plugin \(quoted(pluginName)) config: "
        let all = problems + walker.schemaProblems
        return ConfigDiagnostic.sorted(all.map { ConfigDiagnostic($0.location, prefix + $0.message) })
    }
}

/// Walks a JSON value, its YAML node (for positions) and a schema together.
private struct SchemaWalker {
    let root: JSON
    let entry: SourceLocation
    var schemaProblems: [ConfigDiagnostic] = []
    var regexes: [String: Regex<AnyRegexOutput>?] = [:]

    init(root: JSON, entry: SourceLocation) {
        self.root = root
        self.entry = entry
    }

    mutating func schemaProblem(_ message: String) {
        let d = ConfigDiagnostic(entry, "the plugin's schema is invalid: \(message)")
        if !schemaProblems.contains(d) { schemaProblems.append(d) }
    }

    /// The problems of `value` against `schema`, with messages not yet prefixed.
    mutating func check(_ value: JSON, _ node: YAMLNode?, _ schema: JSON, owner: SourceLocation, depth: Int)
        -> [ConfigDiagnostic]
    {
        let here = node?.location ?? owner
        guard depth < PluginConfigValidator.maxDepth else {
            schemaProblem("nesting deeper than \(PluginConfigValidator.maxDepth) levels (a cyclic $ref?)")
            return []
        }
        switch schema {
        case .bool(true): return []
        case .bool(false): return [ConfigDiagnostic(here, "no value is allowed here")]
        case .object: break
        default:
            schemaProblem("a schema must be an object or a boolean, found \(schema.typeName)")
            return []
        }
        var problems: [ConfigDiagnostic] = []

        if let reference = schema["$ref"]?.stringValue {
            if let target = resolve(reference) {
                problems += check(value, node, target, owner: owner, depth: depth + 1)
            } else {
                schemaProblem("cannot resolve $ref \(quoted(reference))")
            }
        }

        if let type = schema["type"] {
            let names = type.stringValue.map { [$0] } ?? type.arrayValue?.compactMap(\.stringValue) ?? []
            if !names.isEmpty, !names.contains(where: { Self.matches(value, type: $0) }) {
                let expected = names.map(Self.article).joined(separator: " or ")
                problems.append(ConfigDiagnostic(here, "expected \(expected), found \(Self.describe(value, node))"))
                return problems
            }
        }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(where: { Self.equal($0, value) }) {
            let list = allowed.map(Self.show).joined(separator: ", ")
            let hint = value.stringValue.map { Suggestion.hint(for: $0, in: allowed.compactMap(\.stringValue)) } ?? ""
            problems.append(ConfigDiagnostic(here, "invalid value; expected one of: \(list)\(hint)"))
        }
        if let constant = schema["const"], !Self.equal(constant, value) {
            problems.append(ConfigDiagnostic(here, "expected \(Self.show(constant))"))
        }

        switch value {
        case .int, .double: problems += numberProblems(value, schema, at: here)
        case .string(let s): problems += stringProblems(s, schema, at: here)
        case .array(let items): problems += arrayProblems(items, node, schema, at: here, depth: depth)
        case .object(let object): problems += objectProblems(object, node, schema, owner: owner, depth: depth)
        case .null, .bool: break
        }

        for sub in schema["allOf"]?.arrayValue ?? [] {
            problems += check(value, node, sub, owner: owner, depth: depth + 1)
        }
        if let branches = schema["anyOf"]?.arrayValue {
            problems += alternatives(value, node, branches, exactlyOne: false, owner: owner, depth: depth)
        }
        if let branches = schema["oneOf"]?.arrayValue {
            problems += alternatives(value, node, branches, exactlyOne: true, owner: owner, depth: depth)
        }
        if let negated = schema["not"], check(value, node, negated, owner: owner, depth: depth + 1).isEmpty {
            problems.append(ConfigDiagnostic(here, "this value is not allowed here"))
        }
        return problems
    }

    mutating func numberProblems(_ value: JSON, _ schema: JSON, at here: SourceLocation) -> [ConfigDiagnostic] {
        guard let n = value.doubleValue else { return [] }
        var problems: [ConfigDiagnostic] = []
        let found = value.text
        if let limit = schema["minimum"], let m = limit.doubleValue, n < m {
            problems.append(ConfigDiagnostic(here, "must be at least \(limit.text), found \(found)"))
        }
        if let limit = schema["maximum"], let m = limit.doubleValue, n > m {
            problems.append(ConfigDiagnostic(here, "must be at most \(limit.text), found \(found)"))
        }
        if let limit = schema["exclusiveMinimum"], let m = limit.doubleValue, n <= m {
            problems.append(ConfigDiagnostic(here, "must be greater than \(limit.text), found \(found)"))
        }
        if let limit = schema["exclusiveMaximum"], let m = limit.doubleValue, n >= m {
            problems.append(ConfigDiagnostic(here, "must be less than \(limit.text), found \(found)"))
        }
        return problems
    }

    mutating func stringProblems(_ s: String, _ schema: JSON, at here: SourceLocation) -> [ConfigDiagnostic] {
        var problems: [ConfigDiagnostic] = []
        let length = s.unicodeScalars.count
        if let m = schema["minLength"]?.intValue, length < m {
            let what = m == 1 ? "must not be empty" : "must be at least \(m) characters long"
            problems.append(ConfigDiagnostic(here, what))
        }
        if let m = schema["maxLength"]?.intValue, length > m {
            problems.append(ConfigDiagnostic(here, "must be at most \(m) characters long"))
        }
        if let pattern = schema["pattern"]?.stringValue, let regex = regex(pattern),
            (try? regex.firstMatch(in: s)) == nil
        {
            problems.append(ConfigDiagnostic(here, "does not match the pattern \(quoted(pattern))"))
        }
        return problems
    }

    mutating func arrayProblems(_ items: [JSON], _ node: YAMLNode?, _ schema: JSON, at here: SourceLocation, depth: Int)
        -> [ConfigDiagnostic]
    {
        var problems: [ConfigDiagnostic] = []
        if let m = schema["minItems"]?.intValue, items.count < m {
            problems.append(ConfigDiagnostic(here, "needs at least \(m) \(m == 1 ? "entry" : "entries")"))
        }
        if let m = schema["maxItems"]?.intValue, items.count > m {
            problems.append(ConfigDiagnostic(here, "takes at most \(m) \(m == 1 ? "entry" : "entries")"))
        }
        let nodes = node?.items
        let prefix = schema["prefixItems"]?.arrayValue ?? []
        for (i, item) in items.enumerated() {
            let itemNode = nodes.flatMap { $0.indices.contains(i) ? $0[i] : nil }
            let itemSchema = i < prefix.count ? prefix[i] : schema["items"]
            if let itemSchema {
                problems += check(item, itemNode, itemSchema, owner: itemNode?.location ?? here, depth: depth + 1)
            }
        }
        if schema["uniqueItems"]?.boolValue == true {
            for i in items.indices {
                if let j = items[..<i].firstIndex(where: { Self.equal($0, items[i]) }) {
                    let at = nodes.flatMap { $0.indices.contains(i) ? $0[i].location : nil } ?? here
                    problems.append(
                        ConfigDiagnostic(at, "entry \(i + 1) repeats entry \(j + 1); entries must be unique"))
                }
            }
        }
        return problems
    }

    mutating func objectProblems(
        _ object: JSONObject, _ node: YAMLNode?, _ schema: JSON, owner: SourceLocation, depth: Int
    )
        -> [ConfigDiagnostic]
    {
        let here = node?.location ?? owner
        var problems: [ConfigDiagnostic] = []
        let properties = schema["properties"]?.objectValue ?? JSONObject()
        let patterns = schema["patternProperties"]?.objectValue ?? JSONObject()
        for member in object {
            let pair = node?.pair(forKey: member.key)
            let keyAt = pair?.key.location ?? here
            var known = false
            if let sub = properties[member.key] {
                known = true
                problems += check(member.value, pair?.value, sub, owner: keyAt, depth: depth + 1)
            }
            for p in patterns {
                guard let regex = regex(p.key), (try? regex.firstMatch(in: member.key)) != nil else { continue }
                known = true
                problems += check(member.value, pair?.value, p.value, owner: keyAt, depth: depth + 1)
            }
            if known { continue }
            switch schema["additionalProperties"] {
            case .bool(false)?:
                let hint = Suggestion.hint(for: member.key, in: properties.keys)
                problems.append(ConfigDiagnostic(keyAt, "unknown key \(quoted(member.key))\(hint)"))
            case let sub? where sub.objectValue != nil:
                problems += check(member.value, pair?.value, sub, owner: keyAt, depth: depth + 1)
            default:
                break
            }
        }
        for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[name] == nil {
            problems.append(ConfigDiagnostic(owner, "missing required key \(quoted(name))"))
        }
        if let m = schema["minProperties"]?.intValue, object.count < m {
            problems.append(ConfigDiagnostic(here, "needs at least \(m) \(m == 1 ? "key" : "keys")"))
        }
        if let m = schema["maxProperties"]?.intValue, object.count > m {
            problems.append(ConfigDiagnostic(here, "takes at most \(m) \(m == 1 ? "key" : "keys")"))
        }
        return problems
    }

    /// `anyOf` / `oneOf`. When no branch fits, reports the problems of the one branch that fits best, or one
    /// summary when several fit equally badly (or all branches are plain value lists).
    mutating func alternatives(
        _ value: JSON, _ node: YAMLNode?, _ branches: [JSON], exactlyOne: Bool, owner: SourceLocation, depth: Int
    ) -> [ConfigDiagnostic] {
        let here = node?.location ?? owner
        let results = branches.map { check(value, node, $0, owner: owner, depth: depth + 1) }
        let passing = results.filter(\.isEmpty).count
        if passing == 1 || (passing > 1 && !exactlyOne) { return [] }
        if passing > 1 {
            return [ConfigDiagnostic(here, "matches \(passing) of the alternatives; exactly one is allowed")]
        }
        guard !results.isEmpty else { return [] }
        let constants = branches.compactMap { b -> [JSON]? in
            if let c = b["const"] { return [c] }
            return b["enum"]?.arrayValue
        }
        if constants.count == branches.count {
            let list = constants.joined().map(Self.show).joined(separator: ", ")
            return [ConfigDiagnostic(here, "invalid value; expected one of: \(list)")]
        }
        // Prefer branches whose declared type fits the value, then the fewest problems.
        func typeFits(_ b: JSON) -> Bool {
            guard let type = b["type"] else { return true }
            let names = type.stringValue.map { [$0] } ?? type.arrayValue?.compactMap(\.stringValue) ?? []
            return names.contains { Self.matches(value, type: $0) }
        }
        let ranked = zip(branches, results).map { (fits: typeFits($0.0), problems: $0.1) }
        let candidates = ranked.contains(where: \.fits) ? ranked.filter(\.fits) : ranked
        let fewest = candidates.map(\.problems.count).min() ?? 0
        let best = candidates.filter { $0.problems.count == fewest }
        if best.count == 1 { return best[0].problems }
        let summary = best.compactMap { $0.problems.first?.message }.joined(separator: "; or ")
        return [ConfigDiagnostic(here, "matches none of the allowed alternatives: \(summary)")]
    }

    mutating func regex(_ pattern: String) -> Regex<AnyRegexOutput>? {
        if let cached = regexes[pattern] { return cached }
        let compiled = try? Regex(pattern)
        if compiled == nil { schemaProblem("the pattern \(quoted(pattern)) is not a valid regular expression") }
        regexes[pattern] = .some(compiled)
        return compiled
    }

    /// A local reference: `#`, `#/$defs/name`, `#/definitions/name` or any JSON pointer into the schema.
    func resolve(_ reference: String) -> JSON? {
        guard reference.hasPrefix("#") else { return nil }
        var target = root
        for token in reference.dropFirst().split(separator: "/", omittingEmptySubsequences: true) {
            let key = String(token).replacing("~1", with: "/").replacing("~0", with: "~")
            if let next = target[key] {
                target = next
            } else if let index = Int(key), let next = target[index] {
                target = next
            } else {
                return nil
            }
        }
        return target
    }

    static func matches(_ value: JSON, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object),
            ("number", .int), ("number", .double), ("integer", .int):
            return true
        case ("integer", .double(let d)): return d.rounded() == d
        default: return false
        }
    }

    /// A JSON type as messages name it, with YAML words for collections: "a mapping", "an integer".
    static func article(_ type: String) -> String {
        switch type {
        case "object": return "a mapping"
        case "array": return "a sequence"
        case "integer": return "an integer"
        case "null": return "null"
        default: return "a \(type)"
        }
    }

    static func describe(_ value: JSON, _ node: YAMLNode?) -> String {
        if let node { return node.typeDescription }
        switch value {
        case .double: return "a number"
        default: return article(value.typeName)
        }
    }

    /// A constant from the schema as messages show it: strings bare, anything else as JSON.
    static func show(_ value: JSON) -> String {
        value.stringValue ?? value.text
    }

    /// JSON equality where `1` and `1.0` are the same number.
    static func equal(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case (.int, .double), (.double, .int), (.double, .double): return a.doubleValue == b.doubleValue
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { m in y[m.key].map { equal(m.value, $0) } ?? false }
        default: return a == b
        }
    }
}
