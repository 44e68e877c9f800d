import ArgumentSchema
import MCPGJSON
import PluginKit

#if canImport(Glibc)
import Glibc
#endif

/// A backend whose tools run local programs: each tool is an argv template, never a shell command line.
///
/// The program (`argv[0]`, a literal) is resolved at config load, by absolute path or through the gateway's
/// `PATH`; a missing or non-executable program is a config error. Every other element may hold `{name}`
/// placeholders for arguments declared in the tool's `inputSchema` (`{{` and `}}` are literal braces). An element
/// becomes exactly one argv element, whatever the argument holds (spaces, quotes, `;`, `$(…)`, newlines): there is
/// no shell to interpret them. An element that starts with a placeholder refuses a value starting with `-`
/// ("would be read as an option", -32602), unless the placeholder is written `{name:flag}` or the element comes
/// after a literal `--`. An element whose argument is absent (or null) is left out; an array argument filling a
/// whole element becomes one element per item. Arguments are checked against the `inputSchema` before anything
/// runs. The program's environment is only the `env_allow` names copied from the gateway's plus `env`.
///
/// A run: its own process group; stdout and stderr read concurrently, each kept up to `max_output_bytes` (the rest
/// is discarded and the result says so); at `timeout_ms` the group gets SIGTERM, then SIGKILL a second later
/// (result: isError "timed out after N ms"); a cancelled call kills the group the same way. An exit code
/// outside `success_exit_codes` is a tool error with the code and the end of stderr. With an `outputSchema`, stdout
/// must be a JSON object, which becomes `structuredContent`.
struct Command: BackendPlugin {
    struct Config: Decodable, Sendable {
        struct Tool: Decodable, Sendable {
            var name: String
            var title: String?
            var description: String?
            var argv: [String]
            var inputSchema: JSON?
            var outputSchema: JSON?
            var annotations: JSON?
            var env_allow: [String]?
            var env: [String: String]?
            var cwd: String?
            var timeout_ms: Int?
            var max_output_bytes: Int?
            var stdin: String?
            var success_exit_codes: [Int]?
        }
        var tools: [Tool]
    }

    static let name = "command"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["tools"],
            "properties": [
                "tools": [
                    "type": "array", "description": "The tools this backend serves, one program each.",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["name", "argv"],
                        "properties": [
                            "name": ["type": "string", "minLength": 1, "description": "Tool name, unique."],
                            "title": ["type": "string", "description": "Human-readable title."],
                            "description": ["type": "string", "description": "What the tool does."],
                            "argv": [
                                "type": "array", "minItems": 1, "items": ["type": "string"],
                                "description":
                                    "The program (absolute path or a name found on PATH at load) and its arguments; `{name}` is replaced by that argument, each element stays one argument. `{name:flag}` (or a position after a literal `--`) lets a value start with `-`.",
                            ],
                            "inputSchema": [
                                "type": "object",
                                "description": "JSON Schema of the arguments (root type object). Default: {\"type\": \"object\"}.",
                            ],
                            "outputSchema": [
                                "type": "object",
                                "description": "JSON Schema of the structured result: stdout must then be a JSON object.",
                            ],
                            "annotations": ["type": "object", "description": "MCP tool annotations."],
                            "env_allow": [
                                "type": "array", "items": ["type": "string"],
                                "description": "Names of the gateway's environment variables the program gets.",
                            ],
                            "env": [
                                "type": "object", "additionalProperties": ["type": "string"],
                                "description": "Environment variables set for the program.",
                            ],
                            "cwd": ["type": "string", "description": "Working directory. Default: the gateway's."],
                            "timeout_ms": [
                                "type": "integer", "minimum": 1, "maximum": 86_400_000,
                                "description": "Milliseconds before the program's group is killed. Default 30000.",
                            ],
                            "max_output_bytes": [
                                "type": "integer", "minimum": 1, "maximum": 1_073_741_824,
                                "description": "Bytes of stdout (and of stderr) kept; the rest is discarded. Default 1048576.",
                            ],
                            "stdin": [
                                "type": "string",
                                "description": "Text written to the program's stdin (`{name}` placeholders filled). Default: /dev/null.",
                            ],
                            "success_exit_codes": [
                                "type": "array", "items": ["type": "integer", "minimum": 0, "maximum": 255],
                                "description": "Exit codes that mean success. Default [0].",
                            ],
                        ],
                    ],
                ],
            ],
        ]
    }

    /// One tool, ready to run.
    struct Tool: Sendable {
        let schema: ArgumentSchema
        let path: String
        let argv: [Element]
        let stdin: [Part]?
        let environment: [String]
        let cwd: String?
        let timeoutMs: Int
        let maxOutputBytes: Int
        let success: Set<Int32>
        let structured: Bool
    }

    /// A piece of an argv element or of the stdin template.
    enum Part: Sendable, Equatable {
        case literal(String)
        case argument(String)
    }

    /// One argv element after the program.
    struct Element: Sendable {
        let parts: [Part]
        /// A value may start with `-` here (`{name:flag}`, or after `--`).
        let flagsAllowed: Bool
    }

    let listing: [JSON]
    let tools: [String: Tool]
    let host: Host

    init(config: Config, host: Host) throws {
        self.host = host
        var tools: [String: Tool] = [:]
        var listing: [JSON] = []
        let gatewayPath = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for (i, t) in config.tools.enumerated() {
            let at = "/tools/\(i)"
            guard tools[t.name] == nil else { throw PluginError(code: -32602, "\(at)/name: duplicate tool \"\(t.name)\"") }
            let input = t.inputSchema ?? ["type": "object"]
            let schema: ArgumentSchema
            do {
                schema = try ArgumentSchema(input, at: "\(at)/inputSchema")
            } catch {
                throw PluginError(code: -32602, error.message)
            }
            let declared = Set(schema.propertyNames)
            guard let program = t.argv.first else { throw PluginError(code: -32602, "\(at)/argv: must name a program") }
            guard !program.contains("{") else {
                throw PluginError(code: -32602, "\(at)/argv/0: the program must be literal, not a placeholder")
            }
            let path = try Self.resolve(program, searchPath: gatewayPath, at: "\(at)/argv/0")
            var elements: [Element] = []
            var afterDashes = false
            for (j, raw) in t.argv.enumerated().dropFirst() {
                let (parts, flags) = try Self.parse(raw, at: "\(at)/argv/\(j)", declared: declared)
                elements.append(Element(parts: parts, flagsAllowed: flags || afterDashes))
                if raw == "--" { afterDashes = true }
            }
            let stdin = try t.stdin.map { try Self.parse($0, at: "\(at)/stdin", declared: declared).0 }
            var environment: [String] = []
            for name in t.env_allow ?? [] where t.env?[name] == nil {
                guard !name.isEmpty, !name.contains("=") else {
                    throw PluginError(code: -32602, "\(at)/env_allow: \"\(name)\" is not a variable name")
                }
                if let v = getenv(name) { environment.append("\(name)=\(String(cString: v))") }
            }
            for (k, v) in (t.env ?? [:]).sorted(by: { $0.key < $1.key }) {
                guard !k.isEmpty, !k.contains("="), !k.utf8.contains(0), !v.utf8.contains(0) else {
                    throw PluginError(code: -32602, "\(at)/env/\(pointerEscaped(k)): not a valid variable")
                }
                environment.append("\(k)=\(v)")
            }
            if let cwd = t.cwd {
                var st = stat()
                guard stat(cwd, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                    throw PluginError(code: -32602, "\(at)/cwd: \(cwd) is not a directory")
                }
            }
            if let o = t.outputSchema, o.objectValue == nil {
                throw PluginError(code: -32602, "\(at)/outputSchema: must be an object")
            }
            var tool: JSONObject = ["name": .string(t.name)]
            if let title = t.title { tool["title"] = .string(title) }
            if let d = t.description { tool["description"] = .string(d) }
            tool["inputSchema"] = input
            if let o = t.outputSchema { tool["outputSchema"] = o }
            if let a = t.annotations { tool["annotations"] = a }
            listing.append(.object(tool))
            tools[t.name] = Tool(
                schema: schema, path: path, argv: elements, stdin: stdin, environment: environment, cwd: t.cwd,
                timeoutMs: t.timeout_ms ?? 30_000, maxOutputBytes: t.max_output_bytes ?? 1 << 20,
                success: Set((t.success_exit_codes ?? [0]).map { Int32($0) }), structured: t.outputSchema != nil)
        }
        self.listing = listing
        self.tools = tools
    }

    func listTools() async throws -> [JSON] { listing }

    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON {
        guard let tool = tools[call.name] else { throw PluginError(code: -32602, "unknown tool: \(call.name)") }
        let problems = tool.schema.problems(call.arguments)
        if !problems.isEmpty {
            throw PluginError(code: -32602, "invalid arguments: " + problems.joined(separator: "; "))
        }
        let argv = try Self.render(tool, call.arguments)
        let stdin = tool.stdin.map { parts in Array(parts.map { Self.fill($0, call.arguments) }.joined().utf8) }
        let spec = RunSpec(
            path: tool.path, argv: argv, environment: tool.environment, cwd: tool.cwd, stdin: stdin,
            timeoutMs: tool.timeoutMs, maxOutputBytes: tool.maxOutputBytes)
        let outcome: RunOutcome
        do {
            outcome = try await ProcessRun().run(spec)
        } catch {
            host.log(.error, "command: cannot start the program", ["tool": call.name, "error": error.message])
            return Self.failure("cannot start the program: \(error.message)")
        }
        if outcome.cancelled { throw CancellationError() }
        return Self.result(outcome, tool)
    }

    /// The tool result for a finished run.
    static func result(_ o: RunOutcome, _ tool: Tool) -> JSON {
        let stdout = String(decoding: o.stdout, as: UTF8.self)
        var notes: [String] = []
        if o.stdoutTruncated { notes.append("stdout truncated at \(tool.maxOutputBytes) bytes") }
        if o.stderrTruncated { notes.append("stderr truncated at \(tool.maxOutputBytes) bytes") }
        var meta: JSONObject = ["truncated": .bool(o.stdoutTruncated || o.stderrTruncated)]
        switch o.status {
        case .exited(let code): meta["exit_code"] = .int(Int64(code))
        case .signaled(let s): meta["signal"] = .int(Int64(s))
        }
        func content(_ text: String) -> JSON {
            .array([["type": "text", "text": .string(text)]] + notes.map { ["type": "text", "text": .string("[\($0)]")] })
        }
        if o.timedOut {
            var r = failure("timed out after \(tool.timeoutMs) ms" + excerpt(o.stderr))
            r = addMeta(r, meta)
            return r
        }
        switch o.status {
        case .exited(let code) where tool.success.contains(code):
            var result: JSONObject = ["content": content(stdout), "_meta": ["dev.mcpg/command": .object(meta)]]
            if tool.structured {
                guard !o.stdoutTruncated, let parsed = try? JSON.parse(o.stdout), case .object = parsed else {
                    return addMeta(
                        failure("the program's output is not a JSON object (the tool declares an outputSchema)"), meta)
                }
                result["structuredContent"] = parsed
            }
            return .object(result)
        case .exited(let code):
            return addMeta(failure("exit code \(code)" + excerpt(o.stderr)), meta)
        case .signaled(let s):
            return addMeta(failure("killed by signal \(s)" + excerpt(o.stderr)), meta)
        }
    }

    static func failure(_ text: String) -> JSON {
        ["content": [["type": "text", "text": .string(text)]], "isError": true]
    }

    static func addMeta(_ result: JSON, _ meta: JSONObject) -> JSON {
        guard case .object(var o) = result else { return result }
        o["_meta"] = ["dev.mcpg/command": .object(meta)]
        return .object(o)
    }

    /// The last 2000 bytes of stderr, as ": …" (empty when there is none).
    static func excerpt(_ stderr: [UInt8]) -> String {
        let tail = stderr.suffix(2000)
        var text = String(decoding: tail, as: UTF8.self)
        while let last = text.last, last.isWhitespace { text.removeLast() }
        if text.isEmpty { return "" }
        return ": " + (stderr.count > 2000 ? "…" : "") + text
    }

    /// The argv for a call: the program, then each element filled in (one element each).
    static func render(_ tool: Tool, _ arguments: JSONObject) throws -> [String] {
        var argv = [tool.path]
        for e in tool.argv {
            // Left out when an argument it needs is absent.
            let names = e.parts.compactMap { p -> String? in if case .argument(let n) = p { return n } else { return nil } }
            if names.contains(where: { arguments[$0] == nil || arguments[$0] == .null }) { continue }
            var values: [String]
            if e.parts.count == 1, case .argument(let n) = e.parts[0], case .array(let items) = arguments[n]! {
                values = items.map(text)
            } else {
                values = [e.parts.map { fill($0, arguments) }.joined()]
            }
            for v in values {
                if v.utf8.contains(0) {
                    throw PluginError(code: -32602, "argument \"\(names.joined(separator: ", "))\" contains a NUL byte")
                }
                if !e.flagsAllowed, case .argument(let n)? = e.parts.first, v.hasPrefix("-") {
                    throw PluginError(
                        code: -32602,
                        "argument \"\(n)\" would be read as an option (it starts with \"-\"); this tool does not allow options there")
                }
            }
            argv += values
        }
        return argv
    }

    static func fill(_ part: Part, _ arguments: JSONObject) -> String {
        switch part {
        case .literal(let s): return s
        case .argument(let n): return arguments[n].map(text) ?? ""
        }
    }

    /// An argument as program text: strings as they are, other values as JSON.
    static func text(_ value: JSON) -> String {
        switch value {
        case .string(let s): return s
        case .null: return ""
        default: return value.text
        }
    }

    /// Splits a template into literals and `{name}` / `{name:flag}` placeholders; returns whether a placeholder
    /// at the start allows flags.
    static func parse(_ raw: String, at: String, declared: Set<String>) throws -> ([Part], Bool) {
        var parts: [Part] = []
        var literal = ""
        var flags = false
        var i = raw.startIndex
        while i < raw.endIndex {
            let c = raw[i]
            let next = raw.index(after: i)
            if c == "{", next < raw.endIndex, raw[next] == "{" {
                literal.append("{")
                i = raw.index(after: next)
            } else if c == "}", next < raw.endIndex, raw[next] == "}" {
                literal.append("}")
                i = raw.index(after: next)
            } else if c == "{" {
                guard let close = raw[next...].firstIndex(of: "}") else {
                    throw PluginError(code: -32602, "\(at): unclosed \"{\" (write \"{{\" for a literal brace)")
                }
                var name = String(raw[next..<close])
                var flag = false
                if name.hasSuffix(":flag") {
                    name.removeLast(5)
                    flag = true
                }
                guard declared.contains(name) else {
                    throw PluginError(
                        code: -32602, "\(at): placeholder {\(name)} is not a property of the tool's inputSchema")
                }
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                if parts.isEmpty { flags = flag }
                parts.append(.argument(name))
                i = raw.index(after: close)
            } else if c == "}" {
                throw PluginError(code: -32602, "\(at): unmatched \"}\" (write \"}}\" for a literal brace)")
            } else {
                literal.append(c)
                i = next
            }
        }
        if !literal.isEmpty || parts.isEmpty { parts.append(.literal(literal)) }
        return (parts, flags)
    }

    /// The absolute path of an executable `program`: itself when absolute, else the first match on `searchPath`.
    static func resolve(_ program: String, searchPath: String, at: String) throws -> String {
        if program.hasPrefix("/") {
            guard access(program, X_OK) == 0 else {
                throw PluginError(code: -32602, "\(at): \(program) is not an executable file")
            }
            return program
        }
        guard !program.contains("/") else {
            throw PluginError(code: -32602, "\(at): \(program): give an absolute path or a name found on PATH")
        }
        for dir in searchPath.split(separator: ":") where dir.hasPrefix("/") {
            let candidate = "\(dir)/\(program)"
            var st = stat()
            if stat(candidate, &st) == 0, st.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw PluginError(code: -32602, "\(at): program \"\(program)\" not found on PATH")
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Command.self) }
