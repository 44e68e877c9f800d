import MCPGJSON

/// A config problem: a JSON pointer into the plugin's config and what is wrong there. Its text
/// (`/tools/0/steps/2/call: …`) is what the kernel places at that value's line and column.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var pointer: String
    public var message: String
    public init(_ pointer: String, _ message: String) {
        self.pointer = pointer
        self.message = message
    }
    public var description: String { "\(pointer.isEmpty ? "/" : pointer): \(message)" }
}

/// Bounds every call of every tool keeps.
public struct Limits: Sendable, Equatable {
    /// Steps executed per call, loops and branches included.
    public var maxSteps = 1000
    /// Steps nested inside steps.
    public var maxDepth = 16
    /// The highest `concurrency` of a `parallel` or `map` (and the default when a step gives none).
    public var maxConcurrency = 8
    /// The serialized size of the tool's result and of each inner call's result.
    public var maxOutputBytes = 1 << 20
    /// The longest `delay`, `timeout` and retry backoff, in milliseconds.
    public var maxDelayMs = 60_000
    /// The most entries a `cache` step keeps.
    public var maxCacheEntries = 1000
    public init() {}
}

/// Kinds of step failure, as `retry`'s `on` and a `fallback`'s `error.kind` name them.
public enum ErrorKind: String, Sendable, CaseIterable {
    /// The tool answered with `isError: true`.
    case toolError = "tool_error"
    /// The call could not be made (unknown tool, bad arguments, the backend is down).
    case callError = "call_error"
    /// Policy denied the call for this caller.
    case denied
    /// A `timeout` step ran out of time.
    case timeout
    /// A `validate` step's value did not match its schema.
    case validation
    /// A value of the wrong type (`map` over a non-array, `merge` of an object and an array …).
    case type
}

/// One step of a pipeline, compiled.
public struct Step: Sendable {
    /// Where it is in the config, for errors.
    public let pointer: String
    /// `steps.<id>.result` holds its value.
    public let id: String?
    /// `vars.<into>` receives its value.
    public let into: String?
    public let kind: Kind

    public indirect enum Kind: Sendable {
        case call(tool: Template, arguments: ValueTemplate, allowError: Bool)
        case sequence([Step])
        case parallel([Step], concurrency: Int)
        case map(ValueTemplate, body: [Step], concurrency: Int)
        case filter(ValueTemplate, where: Condition)
        case switchCases([(Condition, [Step])], otherwise: [Step]?)
        case set([(String, ValueTemplate)])
        case template(ValueTemplate)
        case select(ValueTemplate, path: [Path.Segment], otherwise: ValueTemplate?)
        case merge([ValueTemplate], deep: Bool)
        case validate(ValueTemplate, schema: JSON)
        case retry([Step], attempts: Int, backoffMs: Int, factor: Double, on: Set<ErrorKind>)
        case timeout(ms: Int, body: [Step])
        case fallback([Step], catch: [Step])
        case cache([Step], key: Template, ttlMs: Int, maxEntries: Int, slot: Int)
        case delay(ms: Int)
        case foreach(ValueTemplate, body: [Step])
        case returns(text: Template?, structured: ValueTemplate?, isError: Bool)
    }

    /// The names of the 18 step kinds, as config spells them.
    public static let kinds: [String] = [
        "call", "sequence", "parallel", "map", "filter", "switch", "set", "template", "select", "merge", "validate",
        "retry", "timeout", "fallback", "cache", "delay", "foreach", "return",
    ]
}

/// One pipeline tool, compiled.
public struct PipelineTool: Sendable {
    public let name: String
    /// The MCP `Tool` object tools/list shows.
    public let listing: JSON
    public let inputSchema: JSON
    public let outputSchema: JSON?
    public let steps: [Step]
}

/// The whole config, compiled: tools by name, limits, the number of cache slots.
public struct Program: Sendable {
    public let tools: [PipelineTool]
    public let limits: Limits
    public let cacheSlots: Int

    /// Compiles and checks the plugin's config; every problem is a `ConfigError` with a pointer.
    public init(config: JSON) throws(ConfigError) {
        guard case .object(let root) = config else { throw ConfigError("", "the config is an object with \"tools\"") }
        try Self.onlyKeys(root, ["tools", "limits"], at: "")
        var limits = Limits()
        if let l = root["limits"] {
            guard case .object(let lo) = l else { throw ConfigError("/limits", "limits is an object") }
            try Self.onlyKeys(
                lo,
                [
                    "max_steps", "max_depth", "max_concurrency", "max_output_bytes", "max_delay_ms",
                    "max_cache_entries",
                ], at: "/limits")
            func read(_ key: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
                guard let v = lo[key] else { return nil }
                guard let n = v.intValue, range.contains(Int(n)) else {
                    throw ConfigError(
                        "/limits/\(key)", "\(key) is an integer in \(range.lowerBound)...\(range.upperBound)")
                }
                return Int(n)
            }
            limits.maxSteps = try read("max_steps", 1...1_000_000) ?? limits.maxSteps
            limits.maxDepth = try read("max_depth", 1...64) ?? limits.maxDepth
            limits.maxConcurrency = try read("max_concurrency", 1...256) ?? limits.maxConcurrency
            limits.maxOutputBytes = try read("max_output_bytes", 1024...(64 << 20)) ?? limits.maxOutputBytes
            limits.maxDelayMs = try read("max_delay_ms", 0...3_600_000) ?? limits.maxDelayMs
            limits.maxCacheEntries = try read("max_cache_entries", 1...1_000_000) ?? limits.maxCacheEntries
        }
        guard case .array(let toolsJSON)? = root["tools"] else {
            throw ConfigError(root["tools"] == nil ? "" : "/tools", "\"tools\" is an array of pipeline tools")
        }
        var tools: [PipelineTool] = []
        var compiler = Compiler(limits: limits)
        var names: Set<String> = []
        for (i, t) in toolsJSON.enumerated() {
            let at = "/tools/\(i)"
            guard case .object(let o) = t else { throw ConfigError(at, "a tool is an object") }
            try Self.onlyKeys(
                o, ["name", "title", "description", "inputSchema", "outputSchema", "annotations", "steps"], at: at)
            guard let name = o["name"]?.stringValue, !name.isEmpty else {
                throw ConfigError(at + (o["name"] == nil ? "" : "/name"), "a tool needs a non-empty \"name\"")
            }
            guard names.insert(name).inserted else { throw ConfigError(at + "/name", "duplicate tool \"\(name)\"") }
            guard case .object(let input)? = o["inputSchema"], input["type"]?.stringValue == "object" else {
                throw ConfigError(
                    at + (o["inputSchema"] == nil ? "" : "/inputSchema"),
                    "a tool needs an \"inputSchema\" object with type: object")
            }
            if let bad = SchemaCheck.unsupported(.object(input), at: at + "/inputSchema") {
                throw ConfigError(bad.pointer, bad.message)
            }
            if let out = o["outputSchema"] {
                guard out.objectValue?["type"]?.stringValue == "object" else {
                    throw ConfigError(at + "/outputSchema", "outputSchema is an object schema with type: object")
                }
                if let bad = SchemaCheck.unsupported(out, at: at + "/outputSchema") {
                    throw ConfigError(bad.pointer, bad.message)
                }
            }
            for key in ["description", "title"] where o[key] != nil && o[key]?.stringValue == nil {
                throw ConfigError(at + "/\(key)", "\(key) is a string")
            }
            if let a = o["annotations"], a.objectValue == nil {
                throw ConfigError(at + "/annotations", "annotations is an object")
            }
            guard case .array(let stepsJSON)? = o["steps"], !stepsJSON.isEmpty else {
                throw ConfigError(at + (o["steps"] == nil ? "" : "/steps"), "a tool needs \"steps\", a non-empty array")
            }
            var scope = Compiler.Scope()
            scope.args = input["properties"]?.objectValue.map { Set($0.keys) }
            let steps = try compiler.steps(.array(stepsJSON), at: at + "/steps", scope: &scope, depth: 1)

            var listing: JSONObject = ["name": .string(name)]
            if let v = o["title"] { listing["title"] = v }
            if let v = o["description"] { listing["description"] = v }
            listing["inputSchema"] = .object(input)
            if let v = o["outputSchema"] { listing["outputSchema"] = v }
            if let v = o["annotations"] { listing["annotations"] = v }
            tools.append(
                PipelineTool(
                    name: name, listing: .object(listing), inputSchema: .object(input),
                    outputSchema: o["outputSchema"], steps: steps))
        }
        self.tools = tools
        self.limits = limits
        self.cacheSlots = compiler.cacheSlots
    }

    static func onlyKeys(_ o: JSONObject, _ allowed: [String], at pointer: String) throws(ConfigError) {
        for k in o.keys where !allowed.contains(k) {
            throw ConfigError(
                pointer + "/" + escapePointer(k),
                "unknown key \"\(k)\" (expected one of \(allowed.joined(separator: ", ")))")
        }
    }
}
