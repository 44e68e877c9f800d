import ArgumentSchema
import MCPGJSON
import PluginKit

#if canImport(Glibc)
import Glibc
#endif

/// A result set, as drivers return it.
struct Column: Sendable, Equatable {
    var name: String
    /// The database's type name (SQLite: the declared type, or the stored type of the first non-NULL value).
    var type: String
}

struct QueryResult: Sendable {
    var columns: [Column]
    var rows: [[JSON]]
    /// More rows existed than `max_rows`.
    var truncated: Bool
    /// For a statement that returns no columns: the rows it changed.
    var rowsAffected: Int?
}

struct QueryError: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}

/// One database behind the plugin.
protocol SQLDriver: Sendable {
    /// The placeholder marker the driver's SQL uses (`$` for `$1`, `?` for `?1`).
    var marker: Character { get }
    var listTablesSQL: String { get }
    /// One parameter, the table name; a row when it exists.
    var tableExistsSQL: String { get }
    /// One parameter, the table name; one row per column.
    var describeTableSQL: String { get }
    /// Refuses a statement that does not compile (at config load).
    func check(_ sql: String) async throws(QueryError)
    func run(_ sql: String, _ parameters: [JSON], maxRows: Int, timeoutMs: Int) async throws(QueryError) -> QueryResult
}

/// A backend whose tools are parameterized SQL statements against SQLite (embedded) or PostgreSQL.
///
/// A tool is one statement with `:name` placeholders; each is declared under `parameters` (a JSON Schema per
/// name, which becomes the tool's `inputSchema`) and bound as a statement parameter, never spliced into the SQL.
/// Statements are checked when the config loads. With `read_only` (the default) the connection refuses writes
/// (SQLite: opened read-only with `query_only`; PostgreSQL: every call in a `READ ONLY` transaction). A result is
/// `structuredContent` `{columns: [{name, type}], rows: [[…]], truncated}` (at most `max_rows` rows) plus a text
/// table. `generated_tools: true` adds `list_tables` and `describe_table` (the name is checked against the
/// catalog and bound as a parameter). A statement that fails (constraint, read-only, timeout) is a tool error
/// with the database's message.
struct SQL: BackendPlugin {
    struct Config: Decodable, Sendable {
        struct Tool: Decodable, Sendable {
            var name: String
            var title: String?
            var description: String?
            var statement: String
            var parameters: JSON?
            var annotations: JSON?
        }
        var driver: String?
        var path: String?
        var host: String?
        var port: Int?
        var database: String?
        var user: String?
        var password_file: String?
        var password_env: String?
        var tls: String?
        var read_only: Bool?
        var max_rows: Int?
        var timeout_ms: Int?
        var generated_tools: Bool?
        var tools: [Tool]?
    }

    static let name = "sql"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false,
            "properties": [
                "driver": [
                    "type": "string", "enum": ["sqlite", "postgres"],
                    "description": "The database: embedded SQLite (default) or a PostgreSQL server.",
                ],
                "path": ["type": "string", "description": "SQLite: the database file (must exist)."],
                "host": ["type": "string", "description": "PostgreSQL: server host. Default 127.0.0.1."],
                "port": ["type": "integer", "minimum": 1, "maximum": 65535, "description": "PostgreSQL: port. Default 5432."],
                "database": ["type": "string", "description": "PostgreSQL: database name."],
                "user": ["type": "string", "description": "PostgreSQL: user name."],
                "password_file": ["type": "string", "description": "PostgreSQL: file holding the password."],
                "password_env": [
                    "type": "string", "description": "PostgreSQL: environment variable holding the password.",
                ],
                "tls": [
                    "type": "string", "enum": ["disable", "prefer", "require"],
                    "description": "PostgreSQL: TLS to the server. Default disable.",
                ],
                "read_only": [
                    "type": "boolean",
                    "description": "Refuse writes at the connection (SQLite) or transaction (PostgreSQL). Default true.",
                ],
                "max_rows": [
                    "type": "integer", "minimum": 1, "maximum": 1_000_000,
                    "description": "Rows returned per call; more set `truncated`. Default 1000.",
                ],
                "timeout_ms": [
                    "type": "integer", "minimum": 1, "maximum": 86_400_000,
                    "description": "Statement time limit in milliseconds. Default 30000.",
                ],
                "generated_tools": [
                    "type": "boolean", "description": "Also serve `list_tables` and `describe_table`. Default false.",
                ],
                "tools": [
                    "type": "array", "description": "Tools, one parameterized statement each.",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["name", "statement"],
                        "properties": [
                            "name": ["type": "string", "minLength": 1, "description": "Tool name, unique."],
                            "title": ["type": "string", "description": "Human-readable title."],
                            "description": ["type": "string", "description": "What the tool does."],
                            "statement": [
                                "type": "string",
                                "description": "One SQL statement; `:name` placeholders are bound from the arguments.",
                            ],
                            "parameters": [
                                "type": "object",
                                "description":
                                    "JSON Schema per placeholder name (the tool's inputSchema properties); a parameter without `default` is required.",
                            ],
                            "annotations": ["type": "object", "description": "MCP tool annotations."],
                        ],
                    ],
                ],
            ],
        ]
    }

    /// One tool, ready to run.
    struct Tool: Sendable {
        let schema: ArgumentSchema
        let sql: String
        let names: [String]
        let defaults: [String: JSON]
    }

    static let outputSchema: JSON = [
        "type": "object", "required": ["columns", "rows", "truncated"],
        "properties": [
            "columns": [
                "type": "array",
                "items": [
                    "type": "object", "required": ["name", "type"],
                    "properties": ["name": ["type": "string"], "type": ["type": "string"]],
                ],
            ],
            "rows": ["type": "array", "items": ["type": "array"]],
            "truncated": ["type": "boolean"],
            "rows_affected": ["type": "integer"],
        ],
    ]

    let driver: any SQLDriver
    let listing: [JSON]
    let tools: [String: Tool]
    let generated: Bool
    let maxRows: Int
    let timeoutMs: Int
    let readOnly: Bool

    init(config: Config, host: Host) throws {
        readOnly = config.read_only ?? true
        maxRows = config.max_rows ?? 1000
        timeoutMs = config.timeout_ms ?? 30_000
        generated = config.generated_tools ?? false
        switch config.driver ?? "sqlite" {
        case "sqlite":
            guard let path = config.path else { throw PluginError(code: -32602, "/path: required for driver sqlite") }
            do {
                driver = try SQLiteDriver(path: path, readOnly: readOnly)
            } catch {
                throw PluginError(code: -32602, "/path: \(error.message)")
            }
        case "postgres":
            driver = try Self.postgres(config, host: host)
        default:
            throw PluginError(code: -32602, "/driver: must be sqlite or postgres")
        }
        var tools: [String: Tool] = [:]
        var listing: [JSON] = []
        for (i, t) in (config.tools ?? []).enumerated() {
            let at = "/tools/\(i)"
            guard tools[t.name] == nil, !(generated && ["list_tables", "describe_table"].contains(t.name)) else {
                throw PluginError(code: -32602, "\(at)/name: duplicate tool \"\(t.name)\"")
            }
            let parsed: ParsedStatement
            do {
                parsed = try ParsedStatement(t.statement, marker: driver.marker)
            } catch {
                throw PluginError(code: -32602, "\(at)/statement: \(error.message)")
            }
            guard case .object(let params) = t.parameters ?? .object([:]) else {
                throw PluginError(code: -32602, "\(at)/parameters: must be an object")
            }
            for name in parsed.names where params[name] == nil {
                throw PluginError(code: -32602, "\(at)/statement: placeholder :\(name) has no entry under parameters")
            }
            for m in params where !parsed.names.contains(m.key) {
                throw PluginError(code: -32602, "\(at)/parameters/\(pointerEscaped(m.key)): not used by the statement")
            }
            var defaults: [String: JSON] = [:]
            var required: [JSON] = []
            for m in params {
                if let d = m.value["default"] { defaults[m.key] = d } else { required.append(.string(m.key)) }
            }
            let input: JSON = [
                "type": "object", "properties": .object(params), "required": .array(required),
                "additionalProperties": false,
            ]
            let schema: ArgumentSchema
            do {
                schema = try ArgumentSchema(input, at: "\(at)/parameters")
            } catch {
                throw PluginError(code: -32602, error.message.replacing("/parameters/properties/", with: "/parameters/"))
            }
            let d = driver
            let numbered = parsed.numbered
            do {
                try Self.wait { try await d.check(numbered) }
            } catch let e as QueryError {
                throw PluginError(code: -32602, "\(at)/statement: \(e.message)")
            }
            var tool: JSONObject = ["name": .string(t.name)]
            if let title = t.title { tool["title"] = .string(title) }
            if let d = t.description { tool["description"] = .string(d) }
            tool["inputSchema"] = input
            tool["outputSchema"] = Self.outputSchema
            if let a = t.annotations { tool["annotations"] = a }
            listing.append(.object(tool))
            tools[t.name] = Tool(schema: schema, sql: parsed.numbered, names: parsed.names, defaults: defaults)
        }
        if generated {
            listing.append([
                "name": "list_tables", "description": "The database's tables and views.",
                "inputSchema": ["type": "object", "additionalProperties": false],
                "outputSchema": Self.outputSchema, "annotations": ["readOnlyHint": true],
            ])
            listing.append([
                "name": "describe_table", "description": "The columns of one table or view: name, type, nullable, default, primary key.",
                "inputSchema": [
                    "type": "object", "additionalProperties": false, "required": ["table"],
                    "properties": ["table": ["type": "string", "description": "A name list_tables returned."]],
                ],
                "outputSchema": Self.outputSchema, "annotations": ["readOnlyHint": true],
            ])
        }
        guard !listing.isEmpty else {
            throw PluginError(code: -32602, "/tools: no tools (declare tools or set generated_tools: true)")
        }
        self.listing = listing
        self.tools = tools
    }

    func listTools() async throws -> [JSON] { listing }

    func callTool(_ call: ToolCall, context: CallContext) async throws -> JSON {
        if generated, call.name == "list_tables" || call.name == "describe_table" {
            return try await generatedTool(call)
        }
        guard let tool = tools[call.name] else { throw PluginError(code: -32602, "unknown tool: \(call.name)") }
        let problems = tool.schema.problems(call.arguments)
        if !problems.isEmpty {
            throw PluginError(code: -32602, "invalid arguments: " + problems.joined(separator: "; "))
        }
        let values = tool.names.map { call.arguments[$0] ?? tool.defaults[$0] ?? .null }
        return try await execute(tool.sql, values)
    }

    private func generatedTool(_ call: ToolCall) async throws -> JSON {
        if call.name == "list_tables" {
            if !call.arguments.isEmpty { throw PluginError(code: -32602, "invalid arguments: list_tables takes none") }
            return try await execute(driver.listTablesSQL, [])
        }
        guard call.arguments.count == 1, let table = call.arguments["table"]?.stringValue else {
            throw PluginError(code: -32602, "invalid arguments: describe_table takes one string, \"table\"")
        }
        do {
            let found = try await driver.run(driver.tableExistsSQL, [.string(table)], maxRows: 1, timeoutMs: timeoutMs)
            if found.rows.isEmpty { return Self.failure("no table or view named \"\(table)\"") }
        } catch {
            if error.message == "cancelled" { throw CancellationError() }
            return Self.failure(error.message)
        }
        return try await execute(driver.describeTableSQL, [.string(table)])
    }

    private func execute(_ sql: String, _ values: [JSON]) async throws -> JSON {
        let result: QueryResult
        do {
            result = try await driver.run(sql, values, maxRows: maxRows, timeoutMs: timeoutMs)
        } catch {
            if error.message == "cancelled" { throw CancellationError() }
            return Self.failure(error.message)
        }
        var structured: JSONObject = [
            "columns": .array(result.columns.map { ["name": .string($0.name), "type": .string($0.type)] }),
            "rows": .array(result.rows.map { .array($0) }),
            "truncated": .bool(result.truncated),
        ]
        if let n = result.rowsAffected { structured["rows_affected"] = .int(Int64(n)) }
        return [
            "content": [["type": "text", "text": .string(Self.table(result))]],
            "structuredContent": .object(structured),
        ]
    }

    static func failure(_ text: String) -> JSON {
        ["content": [["type": "text", "text": .string(text)]], "isError": true]
    }

    /// The result as a plain text table (cells cut to 200 characters), with a line about truncation.
    static func table(_ r: QueryResult) -> String {
        if r.columns.isEmpty { return "\(r.rowsAffected ?? 0) row(s) affected" }
        func cell(_ v: JSON) -> String {
            var s: String
            switch v {
            case .string(let t): s = t
            case .null: s = "NULL"
            default: s = v.text
            }
            s = s.replacing("\n", with: "\\n").replacing("|", with: "\\|")
            return s.count > 200 ? String(s.prefix(200)) + "…" : s
        }
        var lines = ["| " + r.columns.map(\.name).joined(separator: " | ") + " |"]
        lines.append("|" + String(repeating: " --- |", count: r.columns.count))
        for row in r.rows { lines.append("| " + row.map(cell).joined(separator: " | ") + " |") }
        lines.append("(\(r.rows.count) row\(r.rows.count == 1 ? "" : "s")\(r.truncated ? ", truncated: more rows exist" : ""))")
        return lines.joined(separator: "\n")
    }

    /// Runs async work from the synchronous `init` (config load happens off the cooperative pool).
    static func wait(_ body: @escaping @Sendable () async throws -> Void) throws {
        let slot = WaitSlot()
        Task.detached {
            do { try await body() } catch { slot.error = error }
            sem_post(slot.done)
        }
        while sem_wait(slot.done) != 0 {}
        if let e = slot.error { throw e }
    }
}

/// Where `SQL.wait` receives the outcome of its Task (written before the semaphore is posted, read after).
final class WaitSlot: @unchecked Sendable {
    var error: (any Error)?
    let done = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    init() { sem_init(done, 0, 0) }
    deinit {
        sem_destroy(done)
        done.deallocate()
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: SQL.self) }
